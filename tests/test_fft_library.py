"""The NumPy path's two FFT libraries (ducc0, scipy.fft) give the same numbers.

Each transform is checked against :mod:`numpy.fft` (an independent
implementation), and a whole restoration is run under both libraries.
"""

import numpy as np
import pytest

import xrfgpu
import xrfgpu._backend as backend

ducc0 = pytest.importorskip("ducc0")


@pytest.fixture(params=["ducc0", "scipy"])
def library(request, monkeypatch):
    monkeypatch.setattr(backend, "_LIBRARY", request.param)
    return request.param


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-12), (np.float32, 2e-5)])
def test_real_fft_pair_matches_numpy(library, dtype, rtol):
    x = np.random.default_rng(0).random((3, 30, 44)).astype(dtype)
    spectrum = backend.rfft2(x, xp=np)
    expected = np.fft.rfft2(x.astype(np.float64))
    np.testing.assert_allclose(spectrum, expected, rtol=rtol, atol=rtol * np.abs(expected).max())
    assert spectrum.dtype == (np.complex64 if dtype == np.float32 else np.complex128)
    padded = backend.rfft2(x, xp=np, s=(40, 50))
    np.testing.assert_allclose(padded, np.fft.rfft2(x.astype(np.float64), s=(40, 50)), rtol=rtol,
                               atol=rtol * np.abs(expected).max())
    back = backend.irfft2(spectrum.copy(), (30, 44), xp=np, overwrite=True)
    np.testing.assert_allclose(back, x, rtol=rtol, atol=rtol)
    out = np.empty((3, 30, 44), dtype)
    if library == "ducc0":
        assert backend.irfft2(spectrum, (30, 44), xp=np, out=out) is out


def test_dct_pair_matches_scipy_reference(library):
    from scipy.fft import dctn

    x = np.random.default_rng(1).random((17, 24))
    np.testing.assert_allclose(backend.dct2(x, xp=np), dctn(x, type=2), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(backend.idct2(backend.dct2(x, xp=np), xp=np), x, rtol=1e-12, atol=1e-12)


def _dct_matrix(n):
    """Unnormalised DCT-II as an explicit matrix: y[k] = 2 Σ x[m] cos(πk(2m + 1)/2n)."""
    k, m = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    return 2.0 * np.cos(np.pi * k * (2 * m + 1) / (2 * n))


@pytest.mark.parametrize("shape,dtype,rtol", [((2, 6, 1024), np.float32, 2e-5), ((5, 512), np.float64, 1e-12),
                                              ((3, 768), np.float32, 2e-5)])
def test_dct_of_cache_aliasing_widths_matches_explicit_sums(library, shape, dtype, rtol):
    """Rows of 2 KiB multiples are copied to a wider buffer before the transform (ducc0): same numbers."""
    x = np.random.default_rng(2).standard_normal(shape).astype(dtype)
    rows, cols = shape[-2:]
    expected = np.einsum("km,...mn,ln->...kl", _dct_matrix(rows), x.astype(np.float64), _dct_matrix(cols))
    got = backend.dct2(x, xp=np)
    assert got.shape == x.shape and got.dtype == dtype
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * np.abs(expected).max())
    back = backend.idct2(got, xp=np)
    np.testing.assert_allclose(back, x, rtol=rtol, atol=10 * rtol * np.abs(x).max())
    np.testing.assert_array_equal(x, np.random.default_rng(2).standard_normal(shape).astype(dtype))  # input kept


def test_restorations_agree_across_libraries(monkeypatch):
    from xrfgpu.phantom import observe

    counts, _, psf = observe((60, 70), 2.0, seed=5, signal_counts=150, background_counts=140)
    asym = xrfgpu.psf.gaussian(None, 2.0, 1.5, rho=0.3)
    results = {}
    for lib in ("ducc0", "scipy"):
        monkeypatch.setattr(backend, "_LIBRARY", lib)
        results[lib] = [
            xrfgpu.richardson_lucy(counts, psf, num_iter=30, background=140.0),
            xrfgpu.richardson_lucy(counts, asym, num_iter=30, background=140.0),
            xrfgpu.wiener(counts, asym, balance=0.01, background=140.0),
            xrfgpu.fista(counts, psf, num_iter=20, background=140.0),
        ]
    for a, b in zip(results["ducc0"], results["scipy"]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * float(np.abs(b).max()))


def test_library_choice_from_environment(monkeypatch):
    monkeypatch.setenv("XRFGPU_FFT_LIBRARY", "scipy")
    assert backend._choose_fft_library() == "scipy"
    monkeypatch.setenv("XRFGPU_FFT_LIBRARY", "ducc0")
    assert backend._choose_fft_library() == "ducc0"
    monkeypatch.setenv("XRFGPU_FFT_LIBRARY", "mkl")
    with pytest.raises(ValueError, match="XRFGPU_FFT_LIBRARY"):
        backend._choose_fft_library()
