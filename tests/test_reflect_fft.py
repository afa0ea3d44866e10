"""The "dctfft" engine: the exact reflect blur of a symmetric PSF by real FFTs of the map's own size.

Independent references: SciPy's DCT-II (``scipy.fft.dctn``) for Makhoul's
formulas, ``scipy.ndimage.convolve(mode="reflect")`` (half-sample
symmetric, the engines' rule) for the blur and its adjoint, and the DCT
engine's Richardson–Lucy for the whole iteration. The CUDA kernel of the
spectrum step is checked against the same NumPy formulas in
``tests/test_kernels_host.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft
from conftest import assert_array, to_numpy
from scipy import ndimage

from xrfgpu._problem import Problem
import array_api_compat.numpy as xnp

from xrfgpu._reflect_fft import apply_reference, inverse_order, makhoul_order, spectrum_filter
from xrfgpu.fft import Convolution, gpu_fft_cost_factor, gpu_fft_size, psf_to_dct_eigenvalues
from xrfgpu.psf import gaussian
from xrfgpu.richardson_lucy import run_richardson_lucy

SHAPES = [(32, 40), (33, 27), (20, 21), (9, 16)]


@pytest.mark.parametrize("shape", SHAPES)
def test_makhoul_formulas_give_scipy_dct(shape):
    rng = np.random.default_rng(sum(shape))
    x = rng.random(shape)
    n1, n2 = shape
    v = x[makhoul_order(n1)][:, makhoul_order(n2)]
    V = np.fft.fft2(v)
    k1, k2 = np.arange(n1)[:, None], np.arange(n2)[None, :]
    w1, w2 = np.exp(-1j * np.pi * k1 / (2 * n1)), np.exp(-1j * np.pi * k2 / (2 * n2))
    X = 2 * np.real(w2 * (w1 * V + np.conj(w1) * V[(-np.arange(n1)) % n1]))
    np.testing.assert_allclose(X, scipy.fft.dctn(x, type=2), atol=1e-12 * np.abs(X).max())
    assert np.array_equal(v[inverse_order(n1)][:, inverse_order(n2)], x)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("sigma", [1.0, 2.5])
def test_reference_blur_equals_ndimage_reflect(shape, sigma):
    rng = np.random.default_rng(1)
    x = rng.random((2,) + shape)
    h = gaussian(None, sigma)
    h = h / h.sum()
    if max(h.shape) // 2 > min(shape):
        pytest.skip("PSF reaches past the mirror image")
    lam = psf_to_dct_eigenvalues(h, shape, xp=np)
    expected = np.stack([ndimage.convolve(m, h, mode="reflect") for m in x])
    np.testing.assert_allclose(apply_reference(x, lam), expected, atol=1e-12)


def test_spectrum_filter_is_the_blur_on_reordered_maps():
    rng = np.random.default_rng(2)
    x = rng.random((24, 30))
    h = gaussian(None, 2.0)
    lam = psf_to_dct_eigenvalues(h, x.shape, xp=np)
    v = x[makhoul_order(24)][:, makhoul_order(30)]
    out = np.fft.irfft2(spectrum_filter(np.fft.rfft2(v), lam, xp=xnp), s=v.shape)
    expected = ndimage.convolve(x, h / h.sum(), mode="reflect")
    np.testing.assert_allclose(out[inverse_order(24)][:, inverse_order(30)], expected, atol=1e-12)


@pytest.mark.parametrize("shape", [(32, 40), (33, 27)])
def test_engine_forward_and_adjoint(xp, shape):
    rng = np.random.default_rng(3)
    x = rng.random(shape)
    r = rng.random(shape)
    h = gaussian(None, 2.0)
    h = h / h.sum()
    op = Convolution(xp.asarray(h), shape, iterative=True, engine="dctfft")
    assert op.engine == "dctfft" and op.canvas_shape == shape
    blurred = op.crop(op.forward(op.embed(xp.asarray(x))))
    assert_array(blurred, ndimage.convolve(x, h, mode="reflect"), xp, rtol=0, atol=1e-10)
    # ⟨A x, r⟩ = ⟨x, Aᵀ r⟩ through the reordered canvas
    ax = to_numpy(op.crop(op.forward(op.embed(xp.asarray(x)))))
    atr = to_numpy(op.crop(op.adjoint(op.embed(xp.asarray(r)))))
    assert abs(float(np.sum(ax * r)) - float(np.sum(x * atr))) < 1e-10 * float(np.sum(ax * r))
    with pytest.raises(TypeError, match="dctfft"):
        op.transform(op.embed(xp.asarray(x)))


def test_engine_refuses_asymmetric_psf():
    h = np.zeros((5, 5))
    h[2, 2], h[2, 3] = 1.0, 0.5
    with pytest.raises(ValueError, match="symmetric"):
        Convolution(h, (20, 20), iterative=True, engine="dctfft")


@pytest.mark.parametrize("accelerate", [False, True])
def test_richardson_lucy_on_dctfft_equals_extended_engine(xp, accelerate):
    """The whole RL iteration on the reordered canvas gives the extended engine's restoration."""
    from xrfgpu.phantom import observe

    counts, _, psf = observe((48, 56), 2.0, seed=4, background_counts=50.0)
    h = (psf / psf.sum()).astype(np.float64)
    y = counts.astype(np.float64)
    results = []
    for engine in ("extended", "dctfft"):
        op = Convolution(xp.asarray(h), y.shape, iterative=True, engine=engine)
        image = xp.asarray(y)
        pb = Problem(xp=xp, image=image, psf=xp.asarray(h), background=50.0, op=op, _data=None,
                     canvas_background=50.0)
        results.append(to_numpy(run_richardson_lucy(pb, num_iter=15, accelerate=accelerate)))
    np.testing.assert_allclose(results[1], results[0], rtol=1e-9, atol=1e-9 * results[0].max())


def test_gpu_cost_model_prefers_powers_of_two_and_avoids_large_primes():
    assert gpu_fft_size(4156) == 4320  # 2^5 3^3 5: cheaper than 4200 (has 7) and than 8192
    assert gpu_fft_size(4000) == 4096
    assert gpu_fft_cost_factor(1021) > 3 * gpu_fft_cost_factor(1024)


def test_cupy_picks_dctfft_for_symmetric_psf_on_smooth_maps(monkeypatch):
    """Engine choice on CuPy follows the GPU cost model (simulated: the namespace test is patched)."""
    import xrfgpu.fft as fft

    monkeypatch.setattr(fft, "is_cupy_namespace", lambda xp: True)
    monkeypatch.setattr(fft, "has_axis_convolution", lambda xp, dtype: False)  # CuPy has no ducc0 lines
    h = gaussian(None, 7.5)
    assert Convolution(h, (1024, 1024), iterative=True).engine == "dctfft"
    assert Convolution(h, (1021, 1021), iterative=True).engine == "extended"  # prime length: Bluestein
    tilted = gaussian(None, 7.5, 5.0, rho=0.3)
    assert Convolution(tilted, (1024, 1024), iterative=True).engine == "extended"


@pytest.mark.parametrize("shape", [(64, 80), (9, 16), (33, 27)])
@pytest.mark.parametrize("batch", [False, True])
def test_device_eigenvalues_by_matrix_products_equal_the_host_dct(shape, batch):
    """The GPU route to the DCT eigenvalues (two small matrix products), run here with NumPy arrays."""
    import array_api_compat.numpy as xnp

    from xrfgpu import fft

    h = gaussian(None, 2.0)
    h = h / h.sum()
    if batch:
        other = gaussian(h.shape, 1.5)
        h = np.stack([h, other / other.sum()])
    host = psf_to_dct_eigenvalues(h, shape, xp=np)
    original = fft.is_cupy_namespace
    try:
        fft.is_cupy_namespace = lambda xp: True
        device = psf_to_dct_eigenvalues(xnp.asarray(h), shape, xp=xnp)
    finally:
        fft.is_cupy_namespace = original
    np.testing.assert_allclose(np.asarray(device), host, rtol=0, atol=1e-12)


def test_separable_psf_keeps_per_axis_eigenvalues_whose_product_is_the_table(xp):
    """A Gaussian spot (ρ = 0): λ = λ_rows ⊗ λ_cols, and the table formed on demand equals the 2-D computation."""
    import pickle

    shape = (40, 36)
    h = gaussian(None, 2.0)
    h = h / h.sum()
    op = Convolution(xp.asarray(h), shape, iterative=True, engine="dctfft")
    assert op.dct_factors is not None
    rows_l, cols_l = op.dct_factors
    assert tuple(rows_l.shape) == (shape[0], 1) and tuple(cols_l.shape) == (1, shape[1])
    full = psf_to_dct_eigenvalues(h, shape, xp=np)
    np.testing.assert_allclose(to_numpy(op.otf), full, rtol=0, atol=1e-12)
    np.testing.assert_allclose(to_numpy(op.otf_conj), full, rtol=0, atol=1e-12)
    tilted = gaussian(None, 2.0, 1.5, rho=0.0)
    assert Convolution(xp.asarray(tilted / tilted.sum()), shape, iterative=True, engine="dctfft").dct_factors is not None
    if xp.__name__.endswith("numpy"):
        again = pickle.loads(pickle.dumps(op))
        np.testing.assert_allclose(to_numpy(again.otf), full, atol=1e-12)
