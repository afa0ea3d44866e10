"""Richardson–Lucy against an independent loop, scikit-image, and the phantom's truth."""

import numpy as np
import pytest
from conftest import assert_array, to_numpy
from scipy import ndimage

import xrfgpu
from xrfgpu.fft import Convolution
from xrfgpu.phantom import observe


def reference_rl(image, psf, num_iter, background, mode, canvas_pad=None):
    """Plain-loop RL with scipy.ndimage (wrap) on a NumPy canvas, float64."""
    y = np.asarray(image, dtype=np.float64)
    if canvas_pad is not None:
        (pr, pc), canvas = canvas_pad
        y = np.pad(y, ((pr, canvas[0] - y.shape[0] - pr), (pc, canvas[1] - y.shape[1] - pc)), mode="symmetric")
    x = np.full_like(y, max(image.mean() - background, 1e-3 * image.mean()))
    for _ in range(num_iter):
        hx = ndimage.convolve(x, psf, mode=mode) + background
        ratio = y / np.maximum(hx, 1e-6 * image.mean())
        x = x * ndimage.correlate(ratio, psf, mode=mode)
    if canvas_pad is not None:
        x = x[pr : pr + image.shape[0], pc : pc + image.shape[1]]
    return x


@pytest.fixture(scope="module")
def small_map():
    counts, truth, psf = observe((40, 36), 1.5, seed=2, signal_counts=150, background_counts=140)
    return counts.astype(np.float64), truth, psf


def test_periodic_equals_plain_loop(xp, small_map):
    counts, _, psf = small_map
    got = xrfgpu.richardson_lucy(xp.asarray(counts), xp.asarray(psf), num_iter=15, background=140.0, boundary="periodic")
    assert_array(got, reference_rl(counts, psf, 15, 140.0, "wrap"), xp, rtol=1e-9, dtype=xp.float64)


def test_reflect_equals_plain_loop_on_mirror_canvas(xp, small_map):
    """Symmetric PSF: the exact reflect operator = circular RL on the full mirror image (2N canvas)."""
    counts, _, psf = small_map
    got = xrfgpu.richardson_lucy(xp.asarray(counts), xp.asarray(psf), num_iter=10, background=140.0)
    mirror = (2 * counts.shape[0], 2 * counts.shape[1])
    ref = reference_rl(counts, psf, 10, 140.0, "wrap", canvas_pad=((0, 0), mirror))
    assert_array(got, ref, xp, rtol=1e-9, dtype=xp.float64)


def test_reflect_with_asymmetric_psf_equals_dense_matrix_loop(xp, small_map):
    """Default: the exact reflect operator (extended engine) = RL with the dense blur matrix and its transpose."""
    from test_extended_engine import dense_reflect_matrix

    counts, _, _ = small_map
    psf = xrfgpu.psf.gaussian(9, 1.5, 2.0, rho=0.4)
    assert Convolution(psf, counts.shape, iterative=True).engine == "extended"
    got = xrfgpu.richardson_lucy(xp.asarray(counts), xp.asarray(psf), num_iter=10, background=140.0)
    A = dense_reflect_matrix(counts.shape, psf)
    y = counts.ravel()
    x = np.full_like(y, max(counts.mean() - 140.0, 1e-3 * counts.mean()))
    for _ in range(10):
        x = x * (A.T @ (y / np.maximum(A @ x + 140.0, 1e-6 * counts.mean())))
    assert_array(got, x.reshape(counts.shape), xp, rtol=1e-9, dtype=xp.float64)


def test_reflect_with_explicit_pad_equals_plain_loop_on_padded_canvas(xp, small_map):
    """``pad=`` asks for the extended-domain model: RL on the reflect-padded canvas, cropped."""
    counts, _, _ = small_map
    psf = xrfgpu.psf.gaussian(9, 1.5, 2.0, rho=0.4)
    op = Convolution(psf, counts.shape, boundary="reflect", pad=18)
    assert op.engine == "padded"
    got = xrfgpu.richardson_lucy(xp.asarray(counts), xp.asarray(psf), num_iter=10, background=140.0, pad=18)
    ref = reference_rl(counts, psf, 10, 140.0, "wrap", canvas_pad=((op.pad, op.pad), op.canvas_shape))
    assert_array(got, ref, xp, rtol=1e-9, dtype=xp.float64)


def test_matches_scikit_image_on_compact_object():
    """skimage's RL uses zero-padded linear convolution ('same') and starts from 0.5.

    They agree with our periodic RL exactly when the object sits in a zero
    margin wider than twice the PSF (no wrap-around, no zero-padding effect)
    and the start is any constant (RL's first step is invariant to the start's
    scale); background 0, no clipping.
    """
    from skimage.restoration import richardson_lucy as sk_rl

    rng = np.random.default_rng(0)
    image = np.zeros((64, 64))
    image[24:40, 20:44] = rng.random((16, 24)) + 0.5
    psf = xrfgpu.psf.gaussian(9, 1.5)
    blurred = ndimage.convolve(image, psf, mode="constant")
    ours = xrfgpu.richardson_lucy(blurred, psf, num_iter=20, boundary="periodic", filter_epsilon=1e-12)
    theirs = sk_rl(blurred, psf, num_iter=20, clip=False)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-9)


def test_flux_is_preserved(xp):
    """Σx → Σ(y − b) as RL converges (positivity biases faint pixels up on the way)."""
    counts, _, psf = observe((64, 64), 3.0, seed=4, signal_counts=150, background_counts=140)
    got = to_numpy(xrfgpu.richardson_lucy(xp.asarray(counts), xp.asarray(psf), num_iter=150, background=140.0))
    assert got.sum() == pytest.approx(float(np.sum(counts - 140.0)), rel=0.01)
    assert got.min() >= 0


def test_dtypes(xp):
    counts, _, psf = observe((24, 24), 1.0, seed=1)
    out32 = xrfgpu.richardson_lucy(xp.asarray(counts), xp.asarray(psf), num_iter=2)
    assert out32.dtype == xp.float32
    out64 = xrfgpu.richardson_lucy(xp.asarray(counts.astype(np.float64)), xp.asarray(psf), num_iter=2)
    assert out64.dtype == xp.float64
    outint = xrfgpu.richardson_lucy(xp.asarray(counts.astype(np.int32)), xp.asarray(psf), num_iter=2)
    assert outint.dtype == xp.float32
    np.testing.assert_allclose(to_numpy(outint), to_numpy(out64), rtol=1e-4)


@pytest.fixture(scope="module")
def phantom():
    counts, truth, psf = observe((96, 96), 4.0, seed=11, signal_counts=150, background_counts=140)
    return counts, truth, psf


def _mse(a, b):
    return float(np.mean((np.asarray(a, dtype=np.float64) - b) ** 2))


def test_accelerated_reaches_plain_divergence_in_fewer_iterations(xp, phantom):
    counts, _, psf = phantom
    target = {}

    def plain_cb(it, est, div):
        target["div"] = div

    xrfgpu.richardson_lucy(xp.asarray(counts), xp.asarray(psf), num_iter=50, background=140.0, tol=1e-12, callback=plain_cb)
    hits = []

    def acc_cb(it, est, div):
        if div <= target["div"]:
            hits.append(it)

    xrfgpu.richardson_lucy(xp.asarray(counts), xp.asarray(psf), num_iter=50, background=140.0, tol=1e-12, accelerate=True, callback=acc_cb)
    assert hits, "accelerated RL never reached the divergence of 50 plain iterations"
    assert hits[0] <= 25


def test_tv_lowers_error_against_truth(phantom):
    """Run long, where plain RL amplifies noise: TV holds the error down (measured 290 vs 336)."""
    counts, truth, psf = phantom
    plain = xrfgpu.richardson_lucy(counts, psf, num_iter=600, background=140.0)
    tv = xrfgpu.richardson_lucy(counts, psf, num_iter=600, background=140.0, tv=0.01)
    assert _mse(tv, truth) < 0.92 * _mse(plain, truth)


def test_restoration_lowers_error_against_truth(phantom):
    counts, truth, psf = phantom
    raw = _mse(counts - 140.0, truth)
    restored = xrfgpu.richardson_lucy(counts, psf, num_iter=60, background=140.0)
    assert _mse(restored, truth) < 0.75 * raw


def test_tol_stops_early():
    counts, _, psf = observe((48, 48), 2.0, seed=3)
    seen = []
    xrfgpu.richardson_lucy(counts, psf, num_iter=500, background=100.0, tol=1e-3, callback=lambda i, e, d: seen.append(d))
    assert len(seen) < 500
    assert abs(seen[-1] - seen[-2]) <= 1e-3 * seen[-1]


def test_discrepancy_stops_when_model_fits_noise():
    counts, _, psf = observe((64, 64), 3.0, seed=5)
    seen = []
    xrfgpu.richardson_lucy(counts, psf, num_iter=500, background=100.0, discrepancy=1.0, callback=lambda i, e, d: seen.append(d))
    n = counts.size
    assert len(seen) < 500
    assert 2 * seen[-1] / n <= 1.0 < 2 * seen[0] / n


def test_poisson_divergence_analytic(xp):
    y = np.array([[0.0, 1.0], [2.0, 4.0]])
    mu = np.array([[1.0, 1.0], [1.0, 2.0]])
    expected = (0 - 0 + 1) + (0 - 1 + 1) + (2 * np.log(2) - 2 + 1) + (4 * np.log(2) - 4 + 2)
    assert xrfgpu.poisson_divergence(xp.asarray(y), xp.asarray(mu), xp=xp) == pytest.approx(expected)


def test_tv_same_numbers_on_every_namespace(xp, small_map):
    """RL-TV on the DCT engine (NumPy) equals the mirror canvas (other namespaces): Neumann differences."""
    counts, _, psf = small_map
    got = xrfgpu.richardson_lucy(xp.asarray(counts), xp.asarray(psf), num_iter=8, background=140.0, tv=0.01)
    ref = xrfgpu.richardson_lucy(counts, psf, num_iter=8, background=140.0, tv=0.01)
    assert_array(got, ref, xp, rtol=1e-9, dtype=xp.float64)
