"""The convolution operator against scipy.ndimage / direct sums, and its adjoint."""

import numpy as np
import pytest
from conftest import assert_array, to_numpy
from scipy import ndimage

from xrfgpu._backend import fft_size
from xrfgpu.fft import Convolution, reflect_indices


def direct_convolution(image, psf, mode):
    """Σ h[a, b] y[i − (a − a0), j − (b − b0)], centre (a0, b0) = (kr//2, kc//2), by explicit loops over the
    PSF's taps; ``image`` (rows, cols) or a stack (..., rows, cols), each map on its own."""
    rows, cols = image.shape[-2:]
    kr, kc = psf.shape
    a0, b0 = kr // 2, kc // 2
    out = np.zeros_like(image, dtype=np.float64)
    for a in range(kr):
        for b in range(kc):
            ri = np.arange(rows) - (a - a0)
            ci = np.arange(cols) - (b - b0)
            if mode == "wrap":
                ri, ci = ri % rows, ci % cols
            else:  # half-sample symmetric
                ri = np.where(ri < 0, -ri - 1, np.where(ri >= rows, 2 * rows - ri - 1, ri))
                ci = np.where(ci < 0, -ci - 1, np.where(ci >= cols, 2 * cols - ci - 1, ci))
            out += psf[a, b] * image[..., ri[:, None], ci[None, :]]
    return out


@pytest.mark.parametrize("psf_shape", [(5, 5), (4, 6), (7, 4), (1, 3)])
@pytest.mark.parametrize("boundary", ["periodic", "reflect"])
def test_forward_matches_direct_sum(xp, psf_shape, boundary):
    rng = np.random.default_rng(3)
    image = rng.random((23, 18))
    psf = rng.random(psf_shape)
    psf /= psf.sum()
    op = Convolution(xp.asarray(psf), image.shape, boundary=boundary)
    got = op.crop(op.forward(op.embed(xp.asarray(image))))
    mode = "wrap" if boundary == "periodic" else "reflect"
    assert_array(got, direct_convolution(image, psf, mode), xp, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("boundary,mode", [("periodic", "wrap"), ("reflect", "reflect")])
def test_odd_psf_matches_ndimage(xp, boundary, mode):
    rng = np.random.default_rng(4)
    image = rng.random((40, 31))
    psf = rng.random((9, 7))
    psf /= psf.sum()
    op = Convolution(xp.asarray(psf), image.shape, boundary=boundary)
    got = op.crop(op.forward(op.embed(xp.asarray(image))))
    assert_array(got, ndimage.convolve(image, psf, mode=mode), xp, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("map_shape,psf_shape", [((23, 18), (5, 7)), ((12, 9), (11, 9)), ((30, 40), (1, 9))])
def test_symmetric_psf_uses_exact_mirror_operator(xp, map_shape, psf_shape):
    """Axis-symmetric PSFs: DCT (NumPy/CuPy) or 2× mirror canvas (others), = ndimage reflect.

    The (12, 9) map with an (11, 9) PSF reaches past the far edge, so the
    mirror images of the corner impulse fold more than once.
    """
    rng = np.random.default_rng(9)
    image = rng.random(map_shape)
    half = rng.random(((psf_shape[0] + 1) // 2, (psf_shape[1] + 1) // 2))
    psf = np.concatenate([half, half[:-1][::-1]], axis=0)
    psf = np.concatenate([psf, psf[:, :-1][:, ::-1]], axis=1)
    psf /= psf.sum()
    op = Convolution(xp.asarray(psf), image.shape, boundary="reflect")
    assert op.engine in ("dct", "mirror")
    expected = direct_convolution(image, psf, "reflect")
    got = op.crop(op.forward(op.embed(xp.asarray(image))))
    assert_array(got, expected, xp, rtol=1e-10, atol=1e-12)
    adj = op.crop(op.adjoint(op.embed(xp.asarray(image))))
    assert_array(adj, expected, xp, rtol=1e-10, atol=1e-12)  # symmetric PSF: Hᵀ = H


@pytest.mark.parametrize("psf_shape", [(5, 5), (6, 4)])
def test_delta_gives_the_psf_centred(xp, psf_shape):
    rng = np.random.default_rng(5)
    psf = rng.random(psf_shape)
    psf /= psf.sum()
    image = np.zeros((20, 20))
    image[10, 9] = 1.0
    op = Convolution(xp.asarray(psf), image.shape, boundary="periodic")
    got = to_numpy(op.forward(xp.asarray(image)))
    kr, kc = psf_shape
    expected = np.zeros_like(image)
    expected[10 - kr // 2 : 10 - kr // 2 + kr, 9 - kc // 2 : 9 - kc // 2 + kc] = psf
    np.testing.assert_allclose(got, expected, atol=1e-14)


@pytest.mark.parametrize("boundary", ["periodic", "reflect"])
def test_adjoint_dot_test(xp, boundary):
    """⟨Hx, y⟩ = ⟨x, Hᵀy⟩ on the canvas (PyLops-style dot test)."""
    rng = np.random.default_rng(6)
    psf = rng.random((6, 5))
    psf /= psf.sum()
    op = Convolution(xp.asarray(psf), (17, 22), boundary=boundary)
    x = rng.standard_normal(op.canvas_shape)
    y = rng.standard_normal(op.canvas_shape)
    lhs = float(np.sum(to_numpy(op.forward(xp.asarray(x))) * y))
    rhs = float(np.sum(x * to_numpy(op.adjoint(xp.asarray(y)))))
    assert lhs == pytest.approx(rhs, rel=1e-10)


def test_adjoint_is_correlation(xp):
    rng = np.random.default_rng(7)
    image = rng.random((25, 25))
    psf = rng.random((5, 5))
    psf /= psf.sum()
    op = Convolution(xp.asarray(psf), image.shape, boundary="periodic")
    got = op.adjoint(xp.asarray(image))
    assert_array(got, ndimage.correlate(image, psf, mode="wrap"), xp, rtol=1e-10, atol=1e-12)


def test_batch_psf_broadcasts(xp):
    rng = np.random.default_rng(8)
    images = rng.random((3, 16, 20))
    psfs = rng.random((3, 5, 5))
    psfs /= psfs.sum(axis=(1, 2), keepdims=True)
    op = Convolution(xp.asarray(psfs), images.shape[-2:], boundary="reflect")
    got = to_numpy(op.crop(op.forward(op.embed(xp.asarray(images)))))
    for k in range(3):
        np.testing.assert_allclose(got[k], ndimage.convolve(images[k], psfs[k], mode="reflect"), rtol=1e-10, atol=1e-12)


def test_unit_sum_psf_preserves_sum_and_lipschitz(xp):
    psf = np.ones((3, 3)) / 9.0
    op = Convolution(xp.asarray(psf), (12, 12), boundary="periodic")
    assert op.lipschitz == pytest.approx(1.0)
    x = np.random.default_rng(0).random((12, 12))
    assert float(np.sum(to_numpy(op.forward(xp.asarray(x))))) == pytest.approx(x.sum())


def test_reflect_indices_match_numpy_symmetric_pad():
    for n, before, after in [(5, 2, 3), (4, 9, 11), (1, 3, 2)]:
        expected = np.pad(np.arange(n), (before, after), mode="symmetric")
        np.testing.assert_array_equal(reflect_indices(n, before, after), expected)


def test_canvas_is_fast_and_large_enough():
    op = Convolution(np.ones((61, 61)) / 61**2, (1024, 1000), boundary="reflect", pad=122)
    assert op.engine == "padded"
    for n, c in zip((1024, 1000), op.canvas_shape):
        assert c >= n + 2 * op.pad
        assert c == fft_size(c)
    m = fft_size(1025)
    assert m >= 1025 and m % 2 == 0
    assert all(f in (2, 3, 5, 7) for f in _factors(m))
    assert fft_size(1024) != 1024  # powers of two >= 512 are skipped


def _factors(n):
    out, p = [], 2
    while n > 1:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    return out


def test_bad_boundary_and_pad():
    with pytest.raises(ValueError, match="boundary"):
        Convolution(np.ones((3, 3)) / 9, (10, 10), boundary="wrap")
    with pytest.raises(ValueError, match="half-width"):
        Convolution(np.ones((9, 9)) / 81, (30, 30), boundary="reflect", pad=2)
