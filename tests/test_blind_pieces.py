"""Pieces of the L0 blind method against independent references.

MATLAB conventions (psf2otf/otf2psf, conv2 'valid', imresize bicubic,
opt_fft_size), the image step's closed form against a dense linear solve,
the kernel CG against a dense regularised least-squares solve, and the
kernel clean-up steps.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import assert_array, to_numpy
from scipy import signal

from xrfgpu.blind import pyramid_plan
from xrfgpu.blind.image_step import l0_gradient, l0_intensity_gradient
from xrfgpu.blind.kernel_step import center_kernel, fix_size, kernel_cg, prune_kernel, select_gradients
from xrfgpu.blind.matlab import (
    imresize_bicubic,
    opt_fft_size,
    otf2psf,
    psf2otf,
    pyramid_downsample,
    round_half_away,
    valid_gradients,
    wrap_boundary,
)


# --------------------------------------------------------------------------- psf2otf / otf2psf


def _reference_otf(k, shape):
    """MATLAB psf2otf written out: k[i, j] goes to ((i − kr//2) mod N, (j − kc//2) mod M)."""
    canvas = np.zeros(shape)
    kr, kc = k.shape
    for i in range(kr):
        for j in range(kc):
            canvas[(i - kr // 2) % shape[0], (j - kc // 2) % shape[1]] += k[i, j]
    return np.fft.fft2(canvas)


@pytest.mark.parametrize("kshape", [(3, 3), (5, 4), (4, 6), (1, 2), (2, 1)])
@pytest.mark.parametrize("shape", [(9, 8), (10, 11)])
def test_psf2otf_matlab_convention_and_round_trip(xp, kshape, shape):
    rng = np.random.default_rng(sum(kshape) + sum(shape))
    k = rng.random(kshape)
    expected = _reference_otf(k, shape)
    kx = xp.asarray(k)
    full = psf2otf(kx, shape, xp=xp)
    assert_array(full, expected, xp, atol=1e-12)
    half = psf2otf(kx, shape, xp=xp, half=True)
    assert_array(half, expected[:, : shape[1] // 2 + 1], xp, atol=1e-12)
    # otf2psf inverts psf2otf for odd and even kernel sizes (MATLAB roll by +size//2)
    assert_array(otf2psf(full, kshape, xp=xp), k, xp, atol=1e-12)
    assert_array(otf2psf(half, kshape, xp=xp, canvas_shape=shape), k, xp, atol=1e-12)


def test_psf2otf_centre_pixel_has_flat_otf(xp):
    for n in (4, 5):
        k = np.zeros((n, n))
        k[n // 2, n // 2] = 1.0  # MATLAB's centre for odd and even sizes
        otf = to_numpy(psf2otf(xp.asarray(k), (12, 13), xp=xp))
        np.testing.assert_allclose(otf, np.ones((12, 13)), atol=1e-12)


def test_otf2psf_is_adjoint_crop_of_psf2otf(xp):
    """⟨psf2otf(x), Y⟩ = ⟨x, otf2psf(Y)⟩ in the real inner product: the CG operator is symmetric."""
    rng = np.random.default_rng(3)
    shape = (10, 12)
    x = rng.standard_normal((5, 5))
    y = rng.standard_normal(shape)
    spectrum = np.fft.fft2(y)
    ax = np.real(np.fft.ifft2(_reference_otf(x, shape)))
    lhs = float(np.sum(ax * y))
    rhs = float(np.sum(x * to_numpy(otf2psf(xp.asarray(spectrum), (5, 5), xp=xp))))
    assert math.isclose(lhs, rhs, rel_tol=1e-10)


# --------------------------------------------------------------------------- valid gradients


def test_valid_gradients_match_conv2_valid(xp):
    rng = np.random.default_rng(0)
    x = rng.random((7, 9))
    gx, gy = valid_gradients(xp.asarray(x), xp=xp)
    assert_array(gx, signal.convolve2d(x, np.array([[-1.0, 1.0], [0.0, 0.0]]), mode="valid"), xp, atol=1e-14)
    assert_array(gy, signal.convolve2d(x, np.array([[-1.0, 0.0], [1.0, 0.0]]), mode="valid"), xp, atol=1e-14)


# --------------------------------------------------------------------------- sizes and rounding


def test_opt_fft_size_examples():
    assert [opt_fft_size(n) for n in (50, 70, 99, 142, 148)] == [50, 70, 99, 144, 150]
    assert opt_fft_size((142, 148)) == (144, 150)
    # 2^a 3^b 5^c 7^d times at most one 11 or 13: 121 = 11², 169 = 13² and 143 = 11·13 are skipped
    assert opt_fft_size(121) == 125
    assert opt_fft_size(143) == 144
    with pytest.raises(ValueError, match="4096"):
        opt_fft_size(5000)


def test_round_half_away_from_zero():
    assert [round_half_away(v) for v in (0.5, 1.5, 2.5, -0.5, -2.5, 1.49, -1.51)] == [1, 2, 3, -1, -3, 1, -2]


def test_pyramid_plan_and_level_sizes():
    assert pyramid_plan(15) == (15, 11, 9, 7)
    assert pyramid_plan(21) == (21, 15, 11, 9, 7)
    assert pyramid_plan(25) == (25, 19, 13, 9, 7)
    assert pyramid_plan(35) == (35, 25, 19, 13, 9, 7)
    assert pyramid_plan(55) == (55, 39, 29, 21, 15, 11, 7)
    assert pyramid_plan(7) == (7,)
    shapes = [pyramid_downsample(np.zeros((128, 128)), math.sqrt(0.5) ** s).shape for s in range(4)]
    assert shapes == [(128, 128), (89, 89), (62, 62), (44, 44)]


def test_pyramid_downsample_dims_constant_by_truncated_filter_gain():
    """A constant image keeps its value times the (not renormalised) 2-D filter gain."""
    level = pyramid_downsample(np.ones((40, 40)), 0.5)
    taps = np.exp(-2 * 0.25 * np.arange(-50, 51) ** 2)
    taps /= taps.sum()
    gain = taps[48:53].sum() ** 2  # five taps survive for scale 0.5
    np.testing.assert_allclose(level, gain, rtol=1e-12)
    assert math.isclose(gain, 0.982, abs_tol=1e-3)


# --------------------------------------------------------------------------- imresize bicubic


def _keys(t):
    t = abs(t)
    if t <= 1:
        return 1.5 * t**3 - 2.5 * t**2 + 1
    if t <= 2:
        return -0.5 * t**3 + 2.5 * t**2 - 4 * t + 2
    return 0.0


def _imresize_reference_1d(v, scale):
    """MATLAB imresize bicubic along one axis, written from its definition with plain loops."""
    n = len(v)
    n_out = math.ceil(n * scale)
    out = []
    for x in range(1, n_out + 1):
        u = x / scale + 0.5 * (1 - 1 / scale)
        first = math.floor(u - 2)
        total, weight_sum = 0.0, 0.0
        for j in range(first, first + 6):
            w = _keys(u - j)
            m = j  # mirror into 1..n: 0 -> 1, -1 -> 2, n+1 -> n
            while m < 1 or m > n:
                m = 1 - m if m < 1 else 2 * n + 1 - m
            total += w * v[m - 1]
            weight_sum += w
        out.append(total / weight_sum)
    return np.array(out)


@pytest.mark.parametrize("shape", [(7, 7), (9, 11), (5, 8)])
def test_imresize_bicubic_matches_matlab_definition(shape):
    rng = np.random.default_rng(shape[0] * 31 + shape[1])
    k = rng.random(shape)
    scale = 1 / math.sqrt(0.5)
    rows_done = np.stack([_imresize_reference_1d(col, scale) for col in k.T], axis=1)
    expected = np.stack([_imresize_reference_1d(row, scale) for row in rows_done], axis=0)
    got = imresize_bicubic(k, scale)
    assert got.shape == (math.ceil(shape[0] * scale), math.ceil(shape[1] * scale))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)


def test_imresize_bicubic_keeps_constants_and_linear_ramps_inside():
    got = imresize_bicubic(np.full((7, 7), 0.3), 2.0)
    np.testing.assert_allclose(got, 0.3, rtol=1e-12)
    ramp = np.tile(np.arange(9.0), (3, 1))
    out = imresize_bicubic(ramp, 2.0)
    # output column x samples u = x/2 + 1/4 (1-based): the Keys kernel reproduces linear data
    u = np.arange(1, 19) / 2 + 0.25 - 1
    np.testing.assert_allclose(out[1, 4:-4], u[4:-4], atol=1e-12)


# --------------------------------------------------------------------------- wrap_boundary


def test_wrap_boundary_is_harmonic_and_periodic_smooth():
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[:20, :24]
    img = np.sin(yy / 5.0) + np.cos(xx / 7.0) + 0.01 * rng.standard_normal((20, 24))
    out = wrap_boundary(img, (30, 33))
    assert out.shape == (30, 33)
    np.testing.assert_array_equal(out[:20, :24], img)
    # the bottom block starts with a copy of the last image row (the reference's quirk)
    np.testing.assert_array_equal(out[20, :24], img[-1, :])
    # the right block solves the 5-point Laplace equation (periodic neighbours) in its interior
    lap = (np.roll(out, 1, 0) + np.roll(out, -1, 0) + np.roll(out, 1, 1) + np.roll(out, -1, 1) - 4 * out)
    np.testing.assert_allclose(lap[1:19, 24:33], 0.0, atol=1e-10)
    # periodic seams are as smooth as the image itself
    seam = max(np.abs(np.diff(out, axis=0, append=out[:1])).max(), np.abs(np.diff(out, axis=1, append=out[:, :1])).max())
    inside = max(np.abs(np.diff(img, axis=0)).max(), np.abs(np.diff(img, axis=1)).max())
    assert seam < 2 * inside


# --------------------------------------------------------------------------- image step


def _circulant_matrices(k, shape):
    """Dense circular convolution K and forward differences Dx, Dy on a flattened (N, M) grid."""
    n, m = shape
    size = n * m
    kr, kc = k.shape
    K = np.zeros((size, size))
    Dx = np.zeros((size, size))
    Dy = np.zeros((size, size))
    for i in range(n):
        for j in range(m):
            p = i * m + j
            for a in range(kr):
                for b in range(kc):
                    q = ((i - (a - kr // 2)) % n) * m + (j - (b - kc // 2)) % m
                    K[p, q] += k[a, b]
            Dx[p, i * m + (j + 1) % m] += 1
            Dx[p, p] -= 1
            Dy[p, ((i + 1) % n) * m + j] += 1
            Dy[p, p] -= 1
    return K, Dx, Dy


def test_image_step_one_pass_equals_dense_solve(xp):
    """One HQS pass: (KᵀK + β DᵀD + β_p I) S = KᵀB + β Dᵀg + β_p u, solved densely."""
    rng = np.random.default_rng(11)
    shape = (7, 6)
    b = rng.random(shape)
    k = rng.random((3, 3))
    k /= k.sum()
    lam_p, lam_g = 0.05, 0.02
    beta_p, beta = 2 * lam_p, 2 * lam_g
    # caps just above the start values: exactly one outer and one inner pass
    got = l0_intensity_gradient(
        xp.asarray(b), xp.asarray(k), lam_p, lam_g, xp=xp, beta_pixel_max=beta_p * 1.5, beta_max=beta * 1.5
    )
    K, Dx, Dy = _circulant_matrices(k, shape)
    flat = b.ravel()
    u = np.where(flat**2 < lam_p / beta_p, 0.0, flat)
    h, v = Dx @ flat, Dy @ flat
    zero = h**2 + v**2 < lam_g / beta
    h[zero] = 0
    v[zero] = 0
    lhs = K.T @ K + beta * (Dx.T @ Dx + Dy.T @ Dy) + beta_p * np.eye(flat.size)
    rhs = K.T @ flat + beta * (Dx.T @ h + Dy.T @ v) + beta_p * u
    expected = np.linalg.solve(lhs, rhs).reshape(shape)
    assert_array(got, expected, xp, rtol=1e-9, atol=1e-12)


def test_gradient_only_step_equals_dense_solve_over_two_passes(xp):
    rng = np.random.default_rng(12)
    shape = (6, 8)
    b = rng.random(shape)
    k = rng.random((3, 3))
    k /= k.sum()
    lam = 0.01
    got = l0_gradient(xp.asarray(b), xp.asarray(k), lam, xp=xp, beta_max=2 * lam * 2 * 1.5)  # two passes
    K, Dx, Dy = _circulant_matrices(k, shape)
    s = b.ravel()
    beta = 2 * lam
    for _ in range(2):
        h, v = Dx @ s, Dy @ s
        zero = h**2 + v**2 < lam / beta
        h[zero] = 0
        v[zero] = 0
        lhs = K.T @ K + beta * (Dx.T @ Dx + Dy.T @ Dy)
        s = np.linalg.solve(lhs, K.T @ b.ravel() + beta * (Dx.T @ h + Dy.T @ v))
        beta *= 2
    assert_array(got, s.reshape(shape), xp, rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------- kernel step


@pytest.mark.parametrize("size", [3, 5])
def test_kernel_cg_equals_dense_regularised_least_squares(xp, size):
    rng = np.random.default_rng(size)
    shape = (11, 9)
    sx, sy = rng.standard_normal(shape), rng.standard_normal(shape)
    truth = rng.random((size, size))
    c = size // 2

    def columns(s):  # circular convolution s ⊛ e_q for a centred kernel pixel q = (a, b)
        return np.stack([np.roll(s, (a - c, b - c), axis=(0, 1)).ravel() for a in range(size) for b in range(size)], 1)

    A = np.vstack([columns(sx), columns(sy)])
    data = A @ truth.ravel() + 0.1 * rng.standard_normal(A.shape[0])
    bx, by = data[: sx.size].reshape(shape), data[sx.size :].reshape(shape)
    gamma = 2.0
    expected = np.linalg.solve(A.T @ A + gamma * np.eye(size * size), A.T @ data).reshape(size, size)
    got = kernel_cg(*(xp.asarray(v) for v in (bx, by, sx, sy)), size, xp=xp, gamma=gamma, max_iter=200, tol=1e-12)
    assert_array(got, expected, xp, rtol=1e-8, atol=1e-10)
    if size == 3:  # 9 unknowns: the reference's 20 iterations converge exactly
        got = kernel_cg(*(xp.asarray(v) for v in (bx, by, sx, sy)), size, xp=xp, gamma=gamma)
        assert_array(got, expected, xp, rtol=1e-6, atol=1e-8)


def test_select_gradients_threshold_and_decay(xp):
    rng = np.random.default_rng(2)
    img = rng.random((9, 9))
    gx, gy = signal.convolve2d(img, [[-1, 1], [0, 0]], "valid"), signal.convolve2d(img, [[-1, 0], [1, 0]], "valid")
    tau = float(np.median(gx**2 + gy**2))
    sx, sy, new_tau = select_gradients(xp.asarray(img), tau, xp=xp)
    keep = gx**2 + gy**2 >= tau
    assert_array(sx, np.where(keep, gx, 0), xp, atol=1e-14)
    assert_array(sy, np.where(keep, gy, 0), xp, atol=1e-14)
    assert math.isclose(new_tau, tau / 1.1)
    # τ above every magnitude shrinks by 0.81 until one pixel passes
    peak = float((gx**2 + gy**2).max())
    _, _, tau2 = select_gradients(xp.asarray(img), peak * 1.5, xp=xp)
    assert math.isclose(tau2, peak * 1.5 * 0.81**2 / 1.1)


# --------------------------------------------------------------------------- kernel clean-up


def test_center_kernel_moves_centroid_with_matlab_rounding():
    k = np.zeros((7, 7))
    k[1, 5] = 1.0
    np.testing.assert_array_equal(np.argwhere(center_kernel(k)), [[3, 3]])
    # centroid at column 1.5 (0-based): shift 1.5 rounds away from zero to 2
    k = np.zeros((7, 7))
    k[3, 1] = k[3, 2] = 0.5
    out = center_kernel(k)
    np.testing.assert_allclose(out[3, 3:5], [0.5, 0.5])
    assert math.isclose(out.sum(), 1.0)


def test_prune_kernel_drops_light_components():
    k = np.zeros((9, 9))
    k[3:6, 3:6] = 0.1  # mass 0.9, one 8-connected component
    k[0, 8] = 0.05  # isolated, mass < 0.1
    k[8, 0] = 0.05
    out = prune_kernel(k)
    assert out[0, 8] == 0 and out[8, 0] == 0
    np.testing.assert_allclose(out[3:6, 3:6], 1 / 9)
    # diagonal neighbours are connected (8-connectivity)
    k2 = np.zeros((5, 5))
    k2[1, 1] = k2[2, 2] = 0.06
    k2[4, 4] = 0.88
    assert prune_kernel(k2)[1, 1] > 0


def test_fix_size_trims_lighter_side():
    k = np.arange(100.0).reshape(10, 10)
    out = fix_size(k, 9)
    np.testing.assert_array_equal(out, k[1:, 1:])  # first row/column are lighter
