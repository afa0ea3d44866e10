"""The phase-aware σ stage: blurred-step fits of short profiles across the map's strongest edges.

References are the σ each scene was blurred with (scipy's Gaussian filter on a larger canvas) and,
for a thin line, the analytic width of a box of width d blurred by σ: variance σ² + d²/12.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from conftest import random_ellipses

from xrfgpu.psf import estimate_sigma
from xrfgpu.psf.blind_sigma import SigmaUncertainWarning
from xrfgpu.psf.edge_profiles import combine_profile_sigmas, local_edge_profiles, profiles_on_thinned_halves


def _blurred(scene, sigma, pad):
    from scipy import ndimage

    return ndimage.gaussian_filter(scene, sigma, mode="nearest", truncate=6.0)[pad:-pad, pad:-pad]


def _ellipse_scene(n, sigma, seed, signal=2000.0, background=100.0):
    """Random uniform ellipses (sharp edges, sizes 8–30 px), blurred by σ, Poisson counts."""
    rng = np.random.default_rng(seed)
    pad = int(5 * sigma) + 8
    m = n + 2 * pad
    scene = random_ellipses(m, int(30 * (m / 200) ** 2), (8, 30), rng)
    return rng.poisson(background + signal * _blurred(scene, sigma, pad)).astype(np.float64)


@pytest.mark.parametrize("sigma", [2.5, 5.0])
def test_profiles_across_a_curved_edge_find_the_blur(sigma):
    # a disc of radius 50 px: every profile crosses a curved edge (curvature 1/50 px⁻¹, a bias of order
    # σ²κ/… ≪ 1 %); 2000 counts over 100
    n, pad = 192, 40
    yy, xx = np.mgrid[0 : n + 2 * pad, 0 : n + 2 * pad]
    scene = (np.hypot(yy - pad - n / 2, xx - pad - n / 2) < 50).astype(np.float64)
    counts = np.random.default_rng(1).poisson(100.0 + 2000.0 * _blurred(scene, sigma, pad)).astype(np.float64)
    fits = profiles_on_thinned_halves(counts, sigma, 1000.0)
    combined = combine_profile_sigmas(fits)
    assert combined is not None and combined["n"] >= 10
    assert combined["sigma"] == pytest.approx(sigma, rel=0.03)


def test_a_thin_line_reads_as_the_width_of_a_blurred_box():
    # a straight line 2 px wide blurred by σ = 3 px is a box ⊛ Gaussian: its profile has the variance
    # σ² + d²/12 (d = 2), which is what a 2-step fit whose steps are closer than 2σ reports
    sigma, width, n, pad = 3.0, 2, 160, 30
    scene = np.zeros((n + 2 * pad, n + 2 * pad))
    mid = (n + 2 * pad) // 2
    scene[:, mid : mid + width] = 1.0
    counts = np.random.default_rng(2).poisson(100.0 + 4000.0 * _blurred(scene, sigma, pad)).astype(np.float64)
    combined = combine_profile_sigmas(profiles_on_thinned_halves(counts, sigma, 300.0))
    assert combined is not None
    assert combined["sigma"] == pytest.approx(math.sqrt(sigma**2 + width**2 / 12.0), rel=0.03)


def test_thinned_halves_remove_the_selection_bias():
    # fitting the same noisy pixels that were chosen for their strong gradient favours the noise that
    # sharpens an edge; finding the edges on one Poisson half and fitting the other removes that bias.
    # Measured on seeds 0-3 (150 counts over 140, σ = 2 px): same pixels 0.88 / 0.88 / 0.93 / 0.95 × truth,
    # halves 0.98 / 0.98 / 0.99 / 1.02
    sigma = 2.0
    counts = _ellipse_scene(192, sigma, seed=0, signal=150.0, background=140.0)
    same = combine_profile_sigmas(local_edge_profiles(counts, sigma, 190.0))
    halves = combine_profile_sigmas(profiles_on_thinned_halves(counts, sigma, 190.0))
    assert abs(halves["sigma"] / sigma - 1.0) < 0.04
    assert same["sigma"] / sigma < 0.93


def test_maps_that_are_not_counts_are_fitted_without_thinning():
    # a fitted map (µg/cm², not integers) cannot be split binomially: the profiles are fitted on the map
    counts = _ellipse_scene(160, 3.0, seed=5)
    fitted = 0.0137 * counts
    combined = combine_profile_sigmas(profiles_on_thinned_halves(fitted, 3.0, 0.0137**2 * 600.0))
    assert combined is not None
    assert combined["sigma"] == pytest.approx(3.0, rel=0.05)


def test_estimate_sigma_decides_by_edge_profiles_on_sharp_shapes(xp):
    # ellipses at 2000 counts over 100: straight edges are too short for a consensus, and the profiles
    # agree (spread of ln σ ≤ 0.1) inside the spectral interval, so they decide
    counts = _ellipse_scene(192, 3.0, seed=6)
    est = estimate_sigma(xp.asarray(counts))
    assert est.method == "edge-profiles"
    assert est.sigma == pytest.approx(3.0, rel=0.05)
    assert est.interval[0] <= 3.0 <= est.interval[1]
    assert est.reliable
    assert est.details["edge_profiles"]["n"] >= 8


@pytest.mark.slow
def test_smooth_fields_are_not_decided_by_edge_profiles():
    # a smooth Gaussian random field has no sharp edges: its gradations would be read as blur, so the
    # profiles must not decide (their σ's spread widely)
    rng = np.random.default_rng(7)
    n = 192
    k2 = np.fft.fftfreq(n)[:, None] ** 2 + np.fft.fftfreq(n)[None, :] ** 2
    field = np.real(np.fft.ifft2((k2 + (2.0 / n) ** 2) ** -0.85 * np.fft.fft2(rng.normal(size=(n, n)))))
    field = (field - field.min()) / (field.max() - field.min())
    from scipy import ndimage

    counts = rng.poisson(100.0 + 2000.0 * ndimage.gaussian_filter(field, 3.0, mode="wrap")).astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SigmaUncertainWarning)
        est = estimate_sigma(counts)
    assert est.method != "edge-profiles"
    # nor share the answer with the spectrum (sixth round): they spread by more than 0.3 in ln σ
    assert est.details["edge_profiles"].get("log_spread", math.inf) > 0.3
    assert est.method == "whittle" and est.sigma == est.details["whittle_sigma"]
