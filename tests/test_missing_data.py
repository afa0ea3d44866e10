"""Missing pixels (``mask=``, NaN, NumPy masked arrays) are restored from their neighbours.

Two kinds of reference, both independent of the code under test:

* the weighted EM update and the weighted l1 problem written out with the
  dense reflect-boundary blur matrix (explicit sums) and, for FISTA, the
  minimiser found by SciPy's L-BFGS-B;
* the same map restored *with* the bad pixels' true counts: leaving the
  pixels out must change the restoration far from them by no more than the
  stated fraction of its range, and must restore the missing pixels about
  as close to the truth as the complete data do.
"""

from pathlib import Path

import numpy as np
import pytest
from conftest import assert_array, to_numpy
from scipy import ndimage, optimize

import xrfgpu
from xrfgpu.phantom import observe

BACKGROUND = 140.0


def dense_matrix(shape, psf):
    from test_extended_engine import dense_reflect_matrix

    return dense_reflect_matrix(shape, psf)


def weighted_rl_reference(y, w, A, num_iter, background):
    """x ← x · Aᵀ(w y / max(Ax + b, ε)) / Aᵀw where Aᵀw > 1e-6 (elsewhere x keeps its value), started at the
    mean measured count minus b (float64); then each barely seen pixel (κ = min(1, max(w, s / 0.1)) < 1, s = Aᵀw)
    is set to κ x + (1 − κ) F, F = Aᵀ(g x) / Aᵀg (g = 1 at the other pixels) where that reaches it, its value
    before the update elsewhere (the fill of docs/algorithms.md)."""
    y, w = y.ravel(), w.ravel()
    level = float((w * y).sum() / w.sum())
    x = np.full_like(y, max(level - background, 1e-3 * level))
    share = A.T @ w
    kappa = np.minimum(np.maximum(share / 0.1, w), 1.0)
    barely = kappa < 1.0
    source = (~barely).astype(float)
    reach = A.T @ source
    reached = reach > 1e-6
    for _ in range(num_iter):
        ratio = w * y / np.maximum(A @ x + background, 1e-6 * level)
        before = x
        x = x * np.where(share > 1e-6, (A.T @ ratio) / np.where(share > 1e-6, share, 1.0), 1.0)
        anchor = np.where(reached, (A.T @ (source * x)) / np.where(reached, reach, 1.0), before)
        x = np.where(barely, kappa * x + (1.0 - kappa) * anchor, x)
    return x


@pytest.fixture(scope="module")
def small():
    counts, truth, _ = observe((14, 12), 1.2, seed=5, signal_counts=150, background_counts=BACKGROUND)
    return counts.astype(np.float64)


@pytest.mark.parametrize("psf_kind", ["symmetric", "asymmetric"])
def test_weighted_rl_equals_dense_matrix_loop(xp, small, psf_kind):
    """mask= weights: the EM update for data observed only where w = 1, against the dense blur matrix."""
    psf = (xrfgpu.psf.gaussian(5, 1.2) if psf_kind == "symmetric"
           else xrfgpu.psf.gaussian(7, 1.2, 1.6, rho=0.4))
    w = np.ones(small.shape)
    w[3, 4] = w[7, 7] = w[8, 7] = w[0, 11] = 0.0
    y = small.copy()
    y[w == 0] = 1e6  # garbage under the mask must not matter
    got = xrfgpu.richardson_lucy(xp.asarray(y), xp.asarray(psf), num_iter=12, background=BACKGROUND,
                                 mask=xp.asarray(w))
    ref = weighted_rl_reference(small, w, dense_matrix(small.shape, psf), 12, BACKGROUND)
    assert_array(got, ref.reshape(small.shape), xp, rtol=1e-9, dtype=xp.float64)


def test_weighted_rl_in_a_hole_wider_than_the_psf_equals_dense_matrix_loop(xp, small):
    """A 5 × 5 hole under a 5 × 5 PSF: pixels at its centre see no measured pixel, those between see a small
    share (both lean on the pixels around them), the rest most of their PSF."""
    psf = xrfgpu.psf.gaussian(5, 1.2)
    w = np.ones(small.shape)
    w[4:9, 3:8] = 0.0
    A = dense_matrix(small.shape, psf)
    share = A.T @ w.ravel()
    assert np.any((share > 1e-6) & (share < 0.1)) and np.any(share <= 1e-6)  # every case of the step is here
    got = xrfgpu.richardson_lucy(xp.asarray(np.where(w > 0, small, np.nan)), xp.asarray(psf), num_iter=12,
                                 background=BACKGROUND)
    ref = weighted_rl_reference(small, w, A, 12, BACKGROUND)
    assert_array(got, ref.reshape(small.shape), xp, rtol=1e-9, dtype=xp.float64)


def test_a_hole_does_not_grow_spikes_under_many_iterations(xp):
    """Deep in a hole wider than the PSF a pixel's share of measured pixels is small but not 0; its EM
    correction, the average ratio of the few pixels it reaches at full strength, grew it without bound before
    the barely seen pixels were filled from their well-seen neighbours (a 12 × 12 hole, σ 1.5 px, 2000 counts
    over 100, 150 accelerated iterations: 3.7 × the largest restored measured pixel before, 0.85 × now; the
    hole's RMS error 4.7 × the measured pixels' before, 1.6 × now)."""
    counts, truth, _ = observe((64, 64), 1.5, seed=1, signal_counts=2000, background_counts=100)
    y = counts.astype(np.float64)
    hole = np.zeros(y.shape, bool)
    hole[26:38, 30:42] = True
    y[hole] = np.nan
    out = to_numpy(xrfgpu.richardson_lucy(xp.asarray(y), xp.asarray(xrfgpu.psf.gaussian(None, 1.5)), num_iter=150,
                                          background=100.0, accelerate=True))
    assert np.all(np.isfinite(out))
    assert out[hole].max() < 1.25 * out[~hole].max()  # before: 17059 against 4643
    rms_hole = np.sqrt(np.mean((out[hole] - truth[hole]) ** 2))
    rms_measured = np.sqrt(np.mean((out[~hole] - truth[~hole]) ** 2))
    assert rms_hole < 2.0 * rms_measured


def test_nan_pixels_and_bool_mask_are_the_same_missing_data(xp, small):
    psf = xrfgpu.psf.gaussian(5, 1.2)
    w = np.ones(small.shape, dtype=bool)
    w[2, 2] = w[9, 5] = False
    with_nan = small.copy()
    with_nan[~w] = np.nan
    a = xrfgpu.richardson_lucy(xp.asarray(with_nan), xp.asarray(psf), num_iter=8, background=BACKGROUND)
    b = xrfgpu.richardson_lucy(xp.asarray(small), xp.asarray(psf), num_iter=8, background=BACKGROUND,
                               mask=xp.asarray(w))
    assert_array(a, to_numpy(b), xp, rtol=1e-12)


def test_weighted_fista_converges_to_the_weighted_l1_minimiser(xp):
    """min ‖w^½(Ax − (y − b))‖² + λ Σx over x ≥ 0, solved independently by L-BFGS-B."""
    counts, _, _ = observe((10, 9), 0.7, seed=7, signal_counts=150, background_counts=BACKGROUND)
    y = counts.astype(np.float64)
    psf = xrfgpu.psf.gaussian(5, 0.7)
    w = np.ones(y.shape)
    w[4, 4] = w[2, 7] = 0.0
    lam = 20.0
    A = dense_matrix(y.shape, psf)
    target = (y - BACKGROUND).ravel()
    wv = w.ravel()

    def objective(x):
        r = A @ x - target
        return float(np.sum(wv * r * r) + lam * np.sum(x)), 2.0 * (A.T @ (wv * r)) + lam

    sol = optimize.minimize(objective, np.full(y.size, 10.0), jac=True, method="L-BFGS-B",
                            bounds=[(0.0, None)] * y.size, options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 20000})
    y_missing = y.copy()
    y_missing[w == 0] = np.nan
    got = xrfgpu.fista(xp.asarray(y_missing), xp.asarray(psf), lam=lam, num_iter=600, background=BACKGROUND)
    scale = float(np.abs(sol.x).max())
    assert_array(got, sol.x.reshape(y.shape), xp, rtol=0, atol=1e-4 * scale)


# -- against the same map with the bad pixels' true counts ---------------------------------------

@pytest.fixture(scope="module")
def scene():
    counts, truth, psf = observe((64, 64), 2.0, seed=3, signal_counts=150, background_counts=BACKGROUND)
    bad = np.random.default_rng(0).random(counts.shape) < 0.05  # 5 % dead pixels
    bad[30:33, 40:43] = True  # a 3 x 3 beam dump
    far = ~ndimage.binary_dilation(bad, iterations=6)  # 3 sigma away from any bad pixel
    return counts.astype(np.float64), truth, psf, bad, far


# name: (function, options, |missing − complete| far from bad pixels, RMS at bad pixels, both / range)
CASES = {
    "rl": (xrfgpu.richardson_lucy, {"num_iter": 50}, 0.01, 0.05),
    "rl-accelerated": (xrfgpu.richardson_lucy, {"num_iter": 30, "accelerate": True}, 0.02, 0.07),
    "fista": (xrfgpu.fista, {"num_iter": 50}, 0.05, 0.12),
    "wiener": (xrfgpu.wiener, {}, 0.06, 0.07),
    "tikhonov": (xrfgpu.tikhonov, {"lam": 0.05}, 0.03, 0.05),
}


@pytest.mark.parametrize("name", list(CASES))
def test_missing_pixels_restored_like_the_complete_map(xp, scene, name):
    """Measured (64², σ = 2 px, 5 % dead pixels + a 3×3 dump, NumPy): far 0.003/0.009/0.026/0.037/0.012,
    RMS at the bad pixels 0.033/0.048/0.090/0.044/0.034 of the range; truth RMSE at the bad pixels within
    3 % of the complete map's; filling the bad pixels with 0 instead gives 0.66–3.0 of the range."""
    counts, truth, psf, bad, far = scene
    func, options, far_tol, at_tol = CASES[name]
    complete = to_numpy(func(xp.asarray(counts), xp.asarray(psf), background=BACKGROUND, **options))
    missing = counts.copy()
    missing[bad] = np.nan
    got = func(xp.asarray(missing), xp.asarray(psf), background=BACKGROUND, **options)
    got = to_numpy(got)
    span = float(complete.max() - complete.min())
    assert np.all(np.isfinite(got))
    assert float(np.abs(got - complete)[far].max()) <= far_tol * span
    rms_at_bad = float(np.sqrt(np.mean((got - complete)[bad] ** 2)))
    assert rms_at_bad <= at_tol * span
    rmse_complete = np.sqrt(np.mean((complete - truth)[bad] ** 2))
    rmse_missing = np.sqrt(np.mean((got - truth)[bad] ** 2))
    assert rmse_missing <= 1.1 * rmse_complete
    # the check can fail: dead pixels read as 0 counts are far off
    zeros = counts.copy()
    zeros[bad] = 0.0
    naive = to_numpy(func(xp.asarray(zeros), xp.asarray(psf), background=BACKGROUND, **options))
    assert float(np.sqrt(np.mean((naive - complete)[bad] ** 2))) > 2 * rms_at_bad


def test_numpy_masked_array_is_missing_data(scene):
    counts, _, psf, bad, _ = scene
    with_nan = counts.copy()
    with_nan[bad] = np.nan
    masked = np.ma.masked_array(counts.copy(), mask=bad)
    masked.data[bad] = np.nan  # masked NaN: the reported silent-NaN case
    before = masked.data.copy()
    for func in (xrfgpu.richardson_lucy, xrfgpu.fista, xrfgpu.wiener, xrfgpu.tikhonov):
        got = func(masked, psf, background=BACKGROUND)
        ref = func(with_nan, psf, background=BACKGROUND)
        assert not isinstance(got, np.ma.MaskedArray)
        np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(masked.data, before)  # input unchanged
    np.testing.assert_array_equal(masked.mask, bad)


def test_mask_none_runs_the_unweighted_code(xp, scene):
    """No mask, no NaN: the unweighted update, unchanged (the plain float64 reference loop)."""
    from test_richardson_lucy import reference_rl

    counts, _, psf, _, _ = scene
    got = xrfgpu.richardson_lucy(xp.asarray(counts), xp.asarray(psf), num_iter=5, background=BACKGROUND,
                                 boundary="periodic", mask=None)
    assert_array(got, reference_rl(counts, psf, 5, BACKGROUND, "wrap"), xp, rtol=1e-9)


def test_hole_wider_than_the_psf_stays_finite(xp):
    counts, _, psf = observe((48, 48), 1.5, seed=1)
    y = counts.astype(np.float32)
    y[10:30, 10:30] = np.nan  # 20 px hole, PSF reaches 6 px
    for func in (xrfgpu.richardson_lucy, xrfgpu.fista, xrfgpu.wiener, xrfgpu.tikhonov):
        out = to_numpy(func(xp.asarray(y), xp.asarray(psf), background=100.0))
        assert np.all(np.isfinite(out)), func.__name__


@pytest.mark.parametrize("mask,error,match", [
    (np.ones((5, 5)), ValueError, "mask has shape"),
    (np.full((48, 48), 2.0), ValueError, r"weights in \[0, 1\]"),
    (np.full((48, 48), np.nan), ValueError, "mask contains NaN"),
    (np.zeros((48, 48)), ValueError, "every pixel of image is missing"),
    ("dead.tif", TypeError, "mask must be an array"),
])
def test_bad_mask_is_refused(mask, error, match):
    counts, _, psf = observe((48, 48), 1.5, seed=1)
    for func in (xrfgpu.richardson_lucy, xrfgpu.fista, xrfgpu.wiener, xrfgpu.tikhonov):
        with pytest.raises(error, match=match):
            func(counts, psf, mask=mask)


def test_all_nan_map_is_refused():
    with pytest.raises(ValueError, match="every pixel of image is missing"):
        xrfgpu.richardson_lucy(np.full((16, 16), np.nan), np.ones((3, 3)) / 9)


# -- the command line: --mask FILE and NaN pixels --------------------------------------------------------

def test_cli_restore_with_mask_file_and_nan_pixels(tmp_path):
    import hashlib

    from xrfgpu.cli import main

    counts, _, _ = observe((40, 44), 2.0, seed=9, signal_counts=150, background_counts=100)
    y = counts.astype(np.float32)
    y[5, 6] = np.nan  # a drop-out
    weights = np.ones(y.shape, dtype=np.float32)
    weights[20:23, 30:33] = 0.0  # a beam dump, marked in the mask file
    y[20:23, 30:33] = 5000.0  # whose counts are garbage
    np.save(tmp_path / "map.npy", y)
    np.save(tmp_path / "dead.npy", weights)
    digest = hashlib.sha256((tmp_path / "map.npy").read_bytes()).hexdigest()
    rc = main(["restore", str(tmp_path / "map.npy"), "-o", str(tmp_path / "out.npy"), "--psf-sigma", "20um",
               "--pixel-size", "10um", "--background", "100", "--iterations", "20",
               "--mask", str(tmp_path / "dead.npy"), "-q"])
    assert rc == 0
    got = np.load(tmp_path / "out.npy")
    expected_weights = weights.copy()
    expected_weights[5, 6] = 0.0
    ref = xrfgpu.richardson_lucy(np.nan_to_num(y), xrfgpu.psf.gaussian(None, 2.0), num_iter=20, background=100.0,
                                 accelerate=True, mask=expected_weights)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-3)
    assert np.all(np.isfinite(got)) and float(got[20:23, 30:33].max()) < 1000.0
    assert hashlib.sha256((tmp_path / "map.npy").read_bytes()).hexdigest() == digest


@pytest.mark.parametrize("mask,match", [(np.ones((3, 3)), "shape"), (np.full((40, 44), 2.0), "weights in")])
def test_cli_bad_mask_file(tmp_path, capsys, mask, match):
    from xrfgpu.cli import main

    counts, _, _ = observe((40, 44), 2.0, seed=9)
    np.save(tmp_path / "map.npy", counts.astype(np.float32))
    np.save(tmp_path / "bad.npy", mask)
    rc = main(["restore", str(tmp_path / "map.npy"), "-o", str(tmp_path / "out.npy"), "--psf-sigma", "20um",
               "--pixel-size", "10um", "--mask", str(tmp_path / "bad.npy")])
    assert rc != 0  # the CLI's exit status for an error the user can fix
    assert match in capsys.readouterr().err
    assert not (tmp_path / "out.npy").exists()


def test_deep_inside_a_hole_float32_gives_the_float64_numbers(xp):
    """A 6-row hole at σ 0.6 px: its middle rows see 4e-6 of their PSF weight on measured pixels.

    There the correction is the ratio of two small sums; a float32 blur errs on each by about 5e-7 (its
    rounding is relative to the line's largest value), which made the float32 restoration differ from the
    float64 one by several per cent of the maximum (2.6 % on the HXN Fe map with a 4 × 30 hole). The two
    sums are taken in float64 (``WeightedCorrection``): the float64 run is the reference.
    """
    counts, _, _ = observe((48, 40), 0.6, seed=11, signal_counts=150, background_counts=BACKGROUND)
    psf = xrfgpu.psf.gaussian(None, 0.6)
    y = counts.astype(np.float64)
    y[20:26, 5:35] = np.nan
    ref = xrfgpu.richardson_lucy(xp.asarray(y), xp.asarray(psf), num_iter=10, background=BACKGROUND,
                                 accelerate=True)
    got = xrfgpu.richardson_lucy(xp.asarray(y.astype(np.float32)), xp.asarray(psf.astype(np.float32)),
                                 num_iter=10, background=BACKGROUND, accelerate=True)
    ref, got = to_numpy(ref), to_numpy(got)
    assert got.dtype == np.float32
    hole = np.isnan(y)
    assert np.abs(got - ref)[hole].max() <= 1e-5 * np.abs(ref).max()
    assert np.abs(got - ref)[~hole].max() <= 1e-5 * np.abs(ref).max()


@pytest.mark.slow
@pytest.mark.slow_on_strict
def test_stray_measured_pixels_in_a_hole_grow_no_spikes(xp):
    """A 21 × 21 hole with three measured pixels left inside it (seventh QA pass): an isolated measured pixel
    keeps its EM step and explains its own count, and the missing pixels around it are pulled to their
    neighbours (a first version of the fill froze them out of reach and let the tail pixels grow to 2.8e3 × the
    map's largest value)."""
    import tifffile

    fe = tifffile.imread(Path(__file__).parent / "data" / "hxn_nanoparticles_xrf" / "SUM_maps_XRF_Fe_K.tiff")
    fe = fe.astype(np.float64)
    w = np.ones(fe.shape)
    w[68:89, 68:89] = 0
    w[72, 78] = w[78, 72] = w[84, 84] = 1
    # what the front door runs (xrfgpu.restore(fe, psf=..., mask=w)): effective counts (gain 5.97e-5, background
    # 0.00998 in map units) and the cross-validated 408 accelerated iterations
    gain = 5.9748618545458564e-05
    out = to_numpy(xrfgpu.richardson_lucy(xp.asarray(fe / gain), xp.asarray(xrfgpu.psf.gaussian(None, 1.5)),
                                          num_iter=408, background=0.009980692318461609 / gain, accelerate=True,
                                          mask=xp.asarray(w)))
    assert np.all(np.isfinite(out))
    assert out[w == 0].max() < out[w > 0].max()


def test_partial_weights_and_structure_the_data_see_are_restored_by_their_data():
    """Measured pixels of small weight are not filled (a 24² region of weight 0.24 and 0.26 restores alike, as
    before the fill; a first version filled them below 0.25: RMS from the complete map's restoration 135 → 562),
    and a particle inside four lost rows, which the PSF's tails see, is recovered (1388 where the complete map
    has 2052; the first version: 140)."""
    from xrfgpu.fft import Convolution

    counts, _, _ = observe((64, 64), 1.0, seed=1, signal_counts=2000, background_counts=100)
    h = xrfgpu.psf.gaussian(None, 1.0)
    results = []
    for weight in (0.24, 0.26):
        w = np.ones((64, 64))
        w[20:44, 20:44] = weight
        results.append(xrfgpu.richardson_lucy(counts.astype(np.float64), h, num_iter=150, background=100.0,
                                              accelerate=True, mask=w))
    region = (slice(20, 44), slice(20, 44))
    assert np.sqrt(np.mean((results[0][region] - results[1][region]) ** 2)) < 0.1 * np.abs(results[1][region]).max()
    h = xrfgpu.psf.gaussian(None, 1.5)
    truth = np.full((64, 64), 10.0)
    truth[32, 40] = 3000.0
    y = np.random.default_rng(0).poisson(Convolution(h, (64, 64)).forward(truth) + 20.0).astype(np.float64)
    w = np.ones((64, 64))
    w[30:34] = 0
    masked = xrfgpu.richardson_lucy(y, h, num_iter=100, background=20.0, accelerate=True, mask=w)
    complete = xrfgpu.richardson_lucy(y, h, num_iter=100, background=20.0, accelerate=True)
    assert masked[32, 40] > 0.5 * complete[32, 40]


def test_a_hole_of_tiny_weights_is_held_like_a_hole_of_zeros():
    """Weights 1e-9 and 1e-6 in a 16 × 16 hole (a beam dump's live-time fraction) restore as weight 0 does (a pixel's
    κ = max(w, s/τ)); before, they counted as measured and grew to 202303 and 19767 where weight 0 gives 3162
    (seventh QA pass)."""
    counts, _, _ = observe((64, 64), 2.0, seed=1, signal_counts=2000, background_counts=100)
    h = xrfgpu.psf.gaussian(None, 2.0)
    peaks = []
    for weight in (0.0, 1e-9, 1e-6):
        w = np.ones((64, 64))
        w[24:40, 24:40] = weight
        out = xrfgpu.richardson_lucy(counts.astype(np.float64), h, num_iter=150, background=100.0, accelerate=True,
                                     mask=w)
        peaks.append(out[24:40, 24:40].max())
        assert out[24:40, 24:40].max() < out[w == 1].max()
    assert peaks[1] == pytest.approx(peaks[0], rel=1e-2) and peaks[2] == pytest.approx(peaks[0], rel=1e-2)
