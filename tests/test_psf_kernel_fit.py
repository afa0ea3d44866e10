"""sigma_from_kernel: the paper's g = α·h + β fit reduces a kernel to σu, σv, ρ."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xrfgpu.psf import gaussian, sigma_from_kernel


@pytest.mark.parametrize(
    ("shape", "su", "sv", "rho"),
    [((41, 41), 5.0, 5.0, 0.0), ((45, 39), 4.0, 6.5, 0.3), ((60, 60), 9.0, 7.0, -0.4), ((25, 25), 1.5, 2.5, 0.1)],
)
def test_sampled_gaussian_is_recovered_to_1_percent(xp, shape, su, sv, rho):
    # Independent reference: the analytic Gaussian, written out here rather than via psf.gaussian.
    rows, cols = shape
    v = (np.arange(rows) - rows // 2)[:, None] / sv
    u = (np.arange(cols) - cols // 2)[None, :] / su
    k = np.exp(-(u * u + v * v - 2 * rho * u * v) / (2 * (1 - rho * rho)))
    k /= k.sum()
    fit = sigma_from_kernel(xp.asarray(k))
    assert fit.sigma_u == pytest.approx(su, rel=0.01)
    assert fit.sigma_v == pytest.approx(sv, rel=0.01)
    assert fit.rho == pytest.approx(rho, abs=0.01)
    assert fit.mu_u == pytest.approx(cols // 2, abs=0.01)
    assert fit.mu_v == pytest.approx(rows // 2, abs=0.01)
    assert fit.alpha == pytest.approx(1.0, rel=0.02)
    assert fit.sigma == pytest.approx(math.sqrt(su * sv), rel=0.01)


def test_floor_is_absorbed_by_beta():
    k = gaussian(41, 4.0, 6.0, rho=0.2)
    floored = (k + 2e-3) / (k + 2e-3).sum()  # a flat floor, as coarse blind kernels have
    fit = sigma_from_kernel(floored)
    assert fit.sigma_u == pytest.approx(4.0, rel=0.01)
    assert fit.sigma_v == pytest.approx(6.0, rel=0.01)
    assert fit.beta == pytest.approx(2e-3 / (k + 2e-3).sum(), rel=0.02)
    # naive second moments are biased by the floor: the fit is what removes it
    rows, cols = floored.shape
    vv, uu = np.mgrid[:rows, :cols]
    naive = math.sqrt(float((floored * (uu - cols // 2) ** 2).sum()))
    assert naive > 1.5 * 4.0


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_noisy_kernel_within_5_percent(seed):
    rng = np.random.default_rng(seed)
    su, sv, rho = 5.0, 6.5, 0.25
    k = gaussian(41, su, sv, rho)
    noisy = k + rng.normal(0.0, 0.03 * k.max(), k.shape) + 0.02 * k.max() * rng.random(k.shape)
    noisy = np.clip(noisy, 0.0, None)  # blind kernels are projected on k >= 0 and renormalised
    noisy /= noisy.sum()
    fit = sigma_from_kernel(noisy)
    assert fit.sigma_u == pytest.approx(su, rel=0.05)
    assert fit.sigma_v == pytest.approx(sv, rel=0.05)
    assert fit.rho == pytest.approx(rho, abs=0.05)
    assert fit.stderr["sigma_u"] > 0


def test_um_twins_and_psf():
    fit = sigma_from_kernel(gaussian(33, 4.0), pixel_size_um=5.0)
    assert fit.sigma_um == pytest.approx(20.0, rel=1e-6)
    assert fit.fwhm_um == pytest.approx(20.0 * 2 * math.sqrt(2 * math.log(2)), rel=1e-6)
    np.testing.assert_allclose(fit.psf(33), gaussian(33, 4.0), atol=1e-9)
    with pytest.raises(AttributeError, match="pixel_size_um"):
        _ = sigma_from_kernel(gaussian(33, 4.0)).sigma_um


@pytest.mark.parametrize(
    ("kernel", "error", "match"),
    [
        (np.full((9, 9), 0.1), ValueError, "flat"),
        (np.ones((2, 9)), ValueError, "3×3"),
        (np.ones(9), ValueError, "2-D"),
        (np.where(np.eye(9) > 0, np.nan, 1.0), ValueError, "NaN"),
        ([[0, 1], [1, 0]], TypeError, "array"),
    ],
)
def test_bad_kernels(kernel, error, match):
    with pytest.raises(error, match=match):
        sigma_from_kernel(kernel)
