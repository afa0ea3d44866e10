"""fit_knife_edge: straight and slanted edges on Poisson scans, ESF and LSF fits."""

from __future__ import annotations

import math

import numpy as np
import pytest
from psf_scenes import BACKGROUND, SIGNAL, edge_scan
from scipy.special import erf

from xrfgpu.psf import EdgeAngleWarning, fit_knife_edge


@pytest.mark.parametrize("sigma", [4.0, 6.5, 10.0])
@pytest.mark.parametrize("angle", [0.0, 5.0, 30.0, 90.0, -30.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_edges_at_any_angle_within_5_percent(sigma, angle, seed):
    image = edge_scan((96, 96), sigma, angle, seed=seed)
    fit = fit_knife_edge(image, pixel_size_um=5.0)
    # a step sampled on the pixel grid adds ~1/12 px² to σ², well inside 5 %
    assert fit.sigma == pytest.approx(sigma, rel=0.05)
    assert abs(fit.sigma - sigma) < 5 * fit.sigma_stderr
    # edge normal: defined modulo 180°
    assert (fit.angle - angle + 90.0) % 180.0 - 90.0 == pytest.approx(0.0, abs=1.0)
    assert abs(fit.alpha) == pytest.approx(SIGNAL, rel=0.05)
    assert fit.sigma_um == pytest.approx(5.0 * fit.sigma)
    assert fit.fwhm == pytest.approx(fit.sigma * 2 * math.sqrt(2 * math.log(2)))


@pytest.mark.parametrize("sigma", [4.0, 10.0])
@pytest.mark.parametrize("angle", [0.0, 30.0])
def test_paper_lsf_variant(sigma, angle):
    errors = []
    for seed in range(3):
        fit = fit_knife_edge(edge_scan((96, 96), sigma, angle, seed=seed), model="lsf")
        assert fit.model == "lsf"
        errors.append(fit.sigma / sigma - 1)
    # the gradient of the ESF is noisier than the ESF; its mean over seeds is still within 5 %
    assert abs(np.mean(errors)) < 0.05
    assert max(abs(e) for e in errors) < 0.10


def test_given_angle_is_used():
    image = edge_scan((96, 96), 6.0, 30.0, seed=4)
    fit = fit_knife_edge(image, angle=30.0)
    assert fit.angle == 30.0
    assert fit.sigma == pytest.approx(6.0, rel=0.05)
    with pytest.warns(EdgeAngleWarning, match="30"):  # and the map's own angle says so
        wrong = fit_knife_edge(image, angle=0.0)  # projecting on the wrong normal widens the ESF
    assert wrong.sigma > 1.3 * fit.sigma


def test_elliptical_spot_gives_sigma_along_the_normal():
    su, sv, rho, angle = 4.0, 8.0, 0.3, 30.0
    image = edge_scan((120, 120), su, angle, sigma_y=sv, rho=rho, seed=1)
    th = math.radians(angle)
    expected = math.sqrt(su**2 * math.cos(th) ** 2 + sv**2 * math.sin(th) ** 2 + 2 * rho * su * sv * math.sin(th) * math.cos(th))
    assert fit_knife_edge(image).sigma == pytest.approx(expected, rel=0.05)


def test_noise_free_profile_matches_erf_exactly(xp):
    t = np.arange(90.0)
    profile = BACKGROUND + SIGNAL * 0.5 * (1 + erf((t - 41.3) / (math.sqrt(2) * 7.2)))
    fit = fit_knife_edge(xp.asarray(profile), poisson=False)
    assert fit.sigma == pytest.approx(7.2, rel=1e-6)
    assert fit.edge == pytest.approx(41.3, abs=1e-6)
    assert fit.alpha == pytest.approx(SIGNAL, rel=1e-6)
    assert fit.beta == pytest.approx(BACKGROUND, rel=1e-6)
    falling = fit_knife_edge(profile[::-1].copy(), poisson=False)
    assert falling.sigma == pytest.approx(7.2, rel=1e-6)
    assert falling.alpha == pytest.approx(-SIGNAL, rel=1e-6)


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        (np.full((40, 40), 140.0), ValueError, "flat"),
        (np.where(np.eye(40) > 0, np.nan, 1.0), ValueError, "NaN"),
        (np.arange(5.0), ValueError, "too small"),
        (np.ones((3, 3, 3)), ValueError, "1-D profile or a 2-D map"),
        ("edge.tif", TypeError, "array"),
    ],
)
def test_bad_input(data, error, match):
    with pytest.raises(error, match=match):
        fit_knife_edge(data)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_edge_is_refused(seed):
    noise = np.random.default_rng(seed).poisson(BACKGROUND, (64, 64)).astype(float)
    with pytest.raises(ValueError, match="no significant edge|no edge"):
        fit_knife_edge(noise)
    with pytest.raises(ValueError, match="no significant edge|no edge"):
        fit_knife_edge(noise[20])


def test_bad_model_name():
    with pytest.raises(ValueError, match="model"):
        fit_knife_edge(np.arange(20.0), model="gauss")
