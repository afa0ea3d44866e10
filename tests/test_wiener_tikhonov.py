"""Wiener and Tikhonov against scikit-image and a dense normal-equation solve."""

import numpy as np
import pytest
from conftest import assert_array
from scipy import ndimage

import xrfgpu
from xrfgpu.phantom import observe


def dense_operator(psf, shape, mode="wrap"):
    """Matrix of x ↦ ndimage.convolve(x, psf, mode) built column by column."""
    n = shape[0] * shape[1]
    A = np.empty((n, n))
    for k in range(n):
        e = np.zeros(n)
        e[k] = 1.0
        A[:, k] = ndimage.convolve(e.reshape(shape), psf, mode=mode).ravel()
    return A


def derivative_matrix(order, shape):
    n = shape[0] * shape[1]
    if order == 0:
        return np.eye(n)
    if order == 1:
        dx = dense_operator(np.array([[1.0, -1.0, 0.0]]), shape)  # x[j+1] - x[j] (convolution flips the kernel)
        dy = dense_operator(np.array([[1.0], [-1.0], [0.0]]), shape)
        return np.vstack([dx, dy])
    lap = np.array([[0.0, -1.0, 0.0], [-1.0, 4.0, -1.0], [0.0, -1.0, 0.0]])
    return dense_operator(lap, shape)


@pytest.mark.parametrize("order", [0, 1, 2])
def test_tikhonov_equals_normal_equations(xp, order):
    rng = np.random.default_rng(order)
    shape = (10, 12)
    psf = xrfgpu.psf.gaussian(5, 1.2)
    y = rng.random(shape) * 10
    lam = 0.05
    H = dense_operator(psf, shape)
    L = derivative_matrix(order, shape)
    x = np.linalg.solve(H.T @ H + lam * L.T @ L, H.T @ y.ravel()).reshape(shape)
    got = xrfgpu.tikhonov(xp.asarray(y), xp.asarray(psf), lam=lam, order=order, boundary="periodic")
    assert_array(got, x, xp, rtol=1e-8, atol=1e-9)


def test_first_order_matrix_is_forward_difference():
    x = np.arange(12.0).reshape(3, 4) ** 2
    dx = dense_operator(np.array([[1.0, -1.0, 0.0]]), (3, 4)) @ x.ravel()
    np.testing.assert_allclose(dx.reshape(3, 4), np.roll(x, -1, axis=1) - x)


@pytest.mark.parametrize("balance", [0.003, 0.1])
def test_wiener_laplacian_matches_scikit_image(balance):
    from skimage.restoration import wiener as sk_wiener

    counts, _, psf = observe((48, 50), 2.0, seed=1)
    y = counts.astype(np.float64)
    ours = xrfgpu.wiener(y, psf, balance=balance, boundary="periodic")
    theirs = sk_wiener(y, psf, balance, clip=False)
    np.testing.assert_allclose(ours, theirs, rtol=1e-8, atol=1e-8 * np.abs(theirs).max())


def test_wiener_identity_is_one_over_snr_form(xp):
    rng = np.random.default_rng(2)
    y = rng.random((16, 16))
    psf = xrfgpu.psf.gaussian(5, 1.0)
    H = dense_operator(psf, y.shape)
    x = np.linalg.solve(H.T @ H + 0.02 * np.eye(y.size), H.T @ y.ravel()).reshape(y.shape)
    got = xrfgpu.wiener(xp.asarray(y), xp.asarray(psf), balance=0.02, regularizer="identity", boundary="periodic")
    assert_array(got, x, xp, rtol=1e-8, atol=1e-9)


def test_wiener_equals_tikhonov_order_2(xp):
    counts, _, psf = observe((30, 30), 1.5, seed=3)
    a = xrfgpu.wiener(xp.asarray(counts), xp.asarray(psf), balance=0.01, background=100.0)
    b = xrfgpu.tikhonov(xp.asarray(counts), xp.asarray(psf), lam=0.01, order=2, background=100.0)
    from conftest import to_numpy

    assert_array(a, to_numpy(b), xp, rtol=1e-5, atol=1e-3)


def test_background_is_subtracted(xp):
    counts, _, psf = observe((30, 30), 1.5, seed=3)
    a = xrfgpu.wiener(xp.asarray(counts), xp.asarray(psf), balance=0.01, background=100.0)
    b = xrfgpu.wiener(xp.asarray(counts - 100.0), xp.asarray(psf), balance=0.01)
    from conftest import to_numpy

    assert_array(a, to_numpy(b), xp, rtol=1e-4, atol=1e-3)


def test_restoration_lowers_error_against_truth():
    counts, truth, psf = observe((96, 96), 4.0, seed=11, signal_counts=150, background_counts=140)
    raw = float(np.mean((counts - 140.0 - truth) ** 2))
    w = xrfgpu.wiener(counts, psf, balance=0.1, background=140.0)
    t = xrfgpu.tikhonov(counts, psf, lam=0.05, order=1, background=140.0)
    assert float(np.mean((w - truth) ** 2)) < 0.8 * raw
    assert float(np.mean((t - truth) ** 2)) < 0.85 * raw


def test_bad_parameters():
    y = np.ones((10, 10))
    h = np.ones((3, 3))
    with pytest.raises(ValueError, match="balance"):
        xrfgpu.wiener(y, h, balance=-1)
    with pytest.raises(ValueError, match="regularizer"):
        xrfgpu.wiener(y, h, regularizer="tv")
    with pytest.raises(ValueError, match="order"):
        xrfgpu.tikhonov(y, h, order=3)
