"""fit_dot: the paper's Cr-dot measurement on Poisson scans with known anisotropic spot."""

from __future__ import annotations

import math

import numpy as np
import pytest
from psf_scenes import BACKGROUND, dot_scan

from xrfgpu.psf import fit_dot

STEP_UM = 5.0
SU, SV, RHO = 6.0, 7.5, 0.3  # 30 µm and 37.5 µm at a 5 µm step, like the paper's Cr-Kα spot


@pytest.mark.parametrize("poisson", [False, True], ids=["ols", "poisson"])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_anisotropic_spot_within_5_percent(seed, poisson):
    counts, (r0, c0) = dot_scan((61, 61), SU, SV, RHO, seed=seed)
    fit = fit_dot(counts, pixel_size_um=STEP_UM, poisson=poisson)
    assert fit.sigma_u == pytest.approx(SU, rel=0.05)
    assert fit.sigma_v == pytest.approx(SV, rel=0.05)
    assert fit.rho == pytest.approx(RHO, abs=0.05)
    assert fit.mu_u == pytest.approx(c0, abs=0.5)
    assert fit.mu_v == pytest.approx(r0, abs=0.5)
    assert fit.beta == pytest.approx(BACKGROUND, rel=0.03)
    assert fit.sigma_u_um == pytest.approx(SU * STEP_UM, rel=0.05)
    assert fit.fwhm_v_um == pytest.approx(SV * STEP_UM * 2 * math.sqrt(2 * math.log(2)), rel=0.05)
    # the standard errors describe the scatter: the truth lies within 4 of them
    assert abs(fit.sigma_u - SU) < 4 * fit.stderr["sigma_u"]
    assert abs(fit.rho - RHO) < 4 * fit.stderr["rho"]
    # residual map: data − model, mean ≈ 0, variance ≈ Poisson variance (≈ the counts)
    assert fit.residual.shape == counts.shape
    np.testing.assert_allclose(fit.residual, counts - fit.model)
    assert abs(fit.residual.mean()) < 1.0
    assert fit.residual.var() == pytest.approx(counts.mean(), rel=0.15)


@pytest.mark.slow
def test_standard_errors_match_scatter_over_seeds():
    fits = [fit_dot(dot_scan((61, 61), SU, SV, RHO, seed=100 + s)[0]) for s in range(12)]
    spread = np.std([f.sigma_u for f in fits], ddof=1)
    mean_se = np.mean([f.stderr["sigma_u"] for f in fits])
    assert 0.5 < spread / mean_se < 2.0


def test_confidence_ellipses_match_eigen_decomposition():
    counts, _ = dot_scan((61, 61), SU, SV, RHO, seed=5)
    fit = fit_dot(counts)
    a, c = fit.sigma_u**2, fit.sigma_v**2
    b = fit.rho * fit.sigma_u * fit.sigma_v
    # closed-form eigenvalues and major-axis angle of a symmetric 2×2 matrix
    half_sum, half_diff = (a + c) / 2, math.hypot((a - c) / 2, b)
    angle = 0.5 * math.degrees(math.atan2(2 * b, a - c))
    for k, e in zip((1, 2, 3), fit.ellipses()):
        assert e["semi_major"] == pytest.approx(k * math.sqrt(half_sum + half_diff), rel=1e-9)
        assert e["semi_minor"] == pytest.approx(k * math.sqrt(half_sum - half_diff), rel=1e-9)
        assert e["angle_deg"] == pytest.approx(angle, abs=1e-6)
        assert e["mass"] == pytest.approx(1 - math.exp(-k * k / 2))
        assert e["center"] == (fit.mu_u, fit.mu_v)


def test_dot_size_correction():
    # a 20 µm disk (4 px at 5 µm) widens the image by D²/16 per axis; the correction removes it
    counts, _ = dot_scan((61, 61), SU, SV, 0.0, seed=3, dot_radius_px=2.0, peak=400.0)
    raw = fit_dot(counts, pixel_size_um=STEP_UM)
    corrected = fit_dot(counts, pixel_size_um=STEP_UM, dot_diameter_um=20.0)
    # D²/16 = 1 px² is removed; the 13-pixel disk of the scene has 14/13 px² per axis
    assert raw.sigma_u**2 - corrected.sigma_u**2 == pytest.approx(1.0, rel=1e-9)
    assert abs(corrected.sigma_u / SU - 1) < abs(raw.sigma_u / SU - 1) + 1e-9
    assert corrected.sigma_u == pytest.approx(SU, rel=0.03)
    assert corrected.sigma_v == pytest.approx(SV, rel=0.03)
    with pytest.raises(ValueError, match="pixel_size_um"):
        fit_dot(counts, dot_diameter_um=20.0)


def test_fixed_background_and_array_api(xp):
    counts, _ = dot_scan((41, 41), 4.0, 5.0, 0.3, seed=2)
    fit = fit_dot(xp.asarray(counts), background=BACKGROUND)
    assert fit.beta == BACKGROUND
    assert fit.stderr["beta"] == 0.0
    assert fit.sigma_u == pytest.approx(4.0, rel=0.06)


@pytest.mark.parametrize(
    ("image", "error", "match"),
    [
        (np.full((21, 21), 140.0), ValueError, "flat"),
        (np.ones((4, 21)), ValueError, "5×5"),
        (np.ones(21), ValueError, "2-D"),
        (np.where(np.eye(21) > 0, np.nan, 140.0), ValueError, "NaN"),
        ("dot.tif", TypeError, "array"),
    ],
)
def test_bad_input(image, error, match):
    with pytest.raises(error, match=match):
        fit_dot(image)


def test_noise_without_dot_is_refused():
    noise = np.random.default_rng(0).poisson(140.0, (41, 41)).astype(float)
    with pytest.raises(ValueError, match="no significant spot|no signal"):
        fit_dot(noise)
