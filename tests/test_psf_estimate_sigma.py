"""estimate_sigma: blind σ from the blurred map alone (straight edges, blurred-mosaic fit, spectrum).

The issue asks for ±10 % on grains + veins and on a bar chart at σ = 4, 6.5
and 10 px, and the demo needs it on the USAF chart. Where the map has long
straight edges (the bar chart at σ = 4, the USAF chart) the edge stage
reaches a few per cent and is held to 6 %. Measured σ_est/σ_true, seeds 0–4
(seeds 5–9 in brackets, not tested here): grains at σ = 4 0.98–1.04
(0.98–1.05) and at σ = 6.5 0.99–1.06 (0.96–1.05), held to ±10 % per seed;
grains at σ = 10 0.95–1.06 (0.90–1.02, seed 6 at 0.897 misses), held to
±10 % per seed (Richardson–Lucy seeds split at intensity dips, fit chosen
by BIC; before: 0.83–1.01 with two misses). Bar chart at σ = 6.5: mosaic
fit on Richardson–Lucy seeds, 0.98–1.00 (0.92–1.03, edges or mosaic); at
σ = 10: 0.96–1.08 (0.92–1.01): both held to ±10 % per estimate.

Estimates are computed once per (scene, σ, seed) and shared across tests.
"""

from __future__ import annotations

import functools
import itertools
import warnings

import numpy as np
import pytest
from psf_scenes import BACKGROUND, bar_scan, grains_scan

from xrfgpu.psf import estimate_sigma
from xrfgpu.psf.blind_sigma import SigmaUncertainWarning

SHAPE = (200, 200)


def _slow(*seeds):
    """Further seeds of an accuracy sweep: run with -m slow (CI), one seed stays in the default run."""
    return [pytest.param(s, marks=pytest.mark.slow) for s in seeds]


@functools.cache
def _estimate(scene, sigma, seed):
    scan = {"grains": grains_scan, "bars": bar_scan}[scene]
    return estimate_sigma(scan(SHAPE, sigma, seed=seed), thorough=True)


# The mosaic fit is opt-in (``thorough=True``) since issue 14: its seed sweeps run with -m slow (CI), and the
# default run keeps one grain map that is fast (σ 4 on a 160² map below; σ 6.5 seed 5 runs with -m slow).
@pytest.mark.parametrize("sigma", [4.0, pytest.param(6.5, marks=pytest.mark.slow)])
@pytest.mark.parametrize("seed", _slow(0, 1, 2, 3, 4))
def test_grains_within_ten_percent(sigma, seed):
    est = _estimate("grains", sigma, seed)
    assert est.method == "mosaic-scene"
    assert est.sigma == pytest.approx(sigma, rel=0.10)


@pytest.mark.slow
def test_grains_within_ten_percent_on_a_smaller_map():
    # the default run's check of the thorough path: a 160² grain map at σ 4 (seeds 0–2 read 3.98, 4.04, 4.22 px,
    # about 2 s each; the 200² sweep above, 3–4 s a seed, runs with -m slow)
    est = estimate_sigma(grains_scan((160, 160), 4.0, seed=0), thorough=True)
    assert est.method == "mosaic-scene"
    assert est.sigma == pytest.approx(4.0, rel=0.10)


@pytest.mark.parametrize("seed", _slow(0, 1, 2, 3, 4))
def test_grains_at_sigma_10(seed):
    # seeds 0–4 gave 0.95–1.06 × truth (seeds 1 and 4, 0.83 and 0.86 before the dip split and BIC choice). Seed 4
    # is flagged uncertain since the sixteenth session (a warning): its edge profiles read 6.3 px with a spread of
    # 0.28 in ln σ, outside the spectral interval, and the stages' disagreement is said even where the mosaic fit
    # is right
    import warnings

    from xrfgpu.psf.blind_sigma import SigmaUncertainWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SigmaUncertainWarning)
        est = _estimate("grains", 10.0, seed)
    assert est.method == "mosaic-scene"
    assert est.sigma == pytest.approx(10.0, rel=0.10)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [3, 4])
def test_bar_chart_within_ten_percent_at_sigma_4(seed):
    assert _estimate("bars", 4.0, seed).sigma == pytest.approx(4.0, rel=0.10)


@pytest.mark.parametrize("seed", _slow(0, 2, 4))
def test_bar_chart_at_sigma_6_5(seed):
    # mosaic fit seeded by Richardson–Lucy, 0.98–1.00 on seeds 0–4 (three tested, for time; seed 2 was
    # once decided by a minority of short edges at 0.87)
    est = _estimate("bars", 6.5, seed)
    assert est.sigma == pytest.approx(6.5, rel=0.10)
    assert est.method == "mosaic-scene"
    assert est.details["mosaic"]["init"] == "richardson-lucy"


@pytest.mark.parametrize("seed", _slow(0, 1))
def test_bar_chart_at_sigma_10(seed):
    # RL-seeded mosaic fit, 0.96–1.08 on seeds 0–4 (χ² 1.01–1.26: a few bar groups merged by the blur)
    est = _estimate("bars", 10.0, seed)
    assert est.method == "mosaic-scene"
    assert est.sigma == pytest.approx(10.0, rel=0.10)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bar_chart_edges_within_six_percent(seed):
    est = _estimate("bars", 4.0, seed)
    assert est.method == "straight-edges"
    assert est.sigma == pytest.approx(4.0, rel=0.06)
    assert len(est.details["edges_used"]) >= 3


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_usaf_chart_scan(seed):
    # the demo's chart and scanner (Poisson, background, 3 µm stage jitter, drift); truth σ = 6.5 px
    from xrfgpu import simulate, usaf
    from xrfgpu.psf import gaussian

    chart = usaf.chart(5.0, groups=range(3, 5))
    counts = simulate.scan(chart.image, gaussian(None, 6.5), seed=seed)
    est = estimate_sigma(counts)
    assert est.method == "straight-edges"
    assert est.sigma == pytest.approx(6.5, rel=0.06)
    # the spectral stage alone is biased low on this chart (about -29 %)
    assert est.details["whittle_sigma"] < est.sigma


@pytest.mark.slow  # a second thorough (mosaic) fit, 6 s on 2 cores; the default run keeps σ 4 seed 0 above
def test_grain_map_has_no_long_edges_and_uses_the_mosaic_fit():
    est = estimate_sigma(grains_scan(SHAPE, 6.5, seed=5), thorough=True)
    assert est.method == "mosaic-scene"
    assert est.sigma == est.details["mosaic"]["sigma"]
    assert est.details["mosaic"]["reduced_chi2"] < 1.35
    assert est.sigma == pytest.approx(6.5, rel=0.10)


@pytest.mark.slow  # a four-σ sweep (about 40 s on 2 cores); CI runs it with -m slow
def test_ordering_follows_the_blur():
    sigmas = [3.0, 5.0, 8.0, 12.0]
    est = [_estimate("grains", s, 4).sigma for s in sigmas]
    assert all(a < b for a, b in itertools.pairwise(est))


@pytest.mark.slow
@pytest.mark.parametrize("thorough", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_background_invariance_and_argument(thorough):
    # a flat offset given as background leaves σ alone: the thorough mosaic fit's σ (7 s on 2 cores: with
    # -m slow), and in the default run the default path's spectral stage. (Its edge profiles split the counts
    # binomially, and the counts + 500 are not Poisson counts: their halves differ, so its final σ may too:
    # 3.55 against 3.45 px here.)
    counts = grains_scan(SHAPE, 4.0, seed=0)
    a = _estimate("grains", 4.0, 0) if thorough else estimate_sigma(counts, background=BACKGROUND)
    b = estimate_sigma(counts + 500.0, background=BACKGROUND + 500.0, thorough=thorough)
    if thorough:
        assert b.sigma == pytest.approx(a.sigma, rel=1e-3)
    else:
        assert b.details["whittle_sigma"] == pytest.approx(a.details["whittle_sigma"], rel=1e-6)
        assert b.details["spectral_interval"] == pytest.approx(a.details["spectral_interval"], rel=1e-6)
    with pytest.raises(ValueError, match="background"):
        estimate_sigma(counts, background=-1.0)


@pytest.mark.slow
def test_elliptical_spot():
    # anisotropic blur of a grains scene through the phantom's bordered window
    from xrfgpu import phantom
    from xrfgpu.psf import gaussian

    psf = gaussian(None, 4.0, 8.0)
    scene = phantom.grains_and_veins((256 + psf.shape[0] + 8, 256 + psf.shape[1] + 8), seed=2)
    blurred, _ = phantom.blurred_window(scene, psf, (256, 256))
    counts = np.random.default_rng(2).poisson(150.0 * blurred + BACKGROUND).astype(float)
    est = estimate_sigma(counts, elliptical=True, pixel_size_um=5.0)
    assert est.sigma_u < est.sigma_v
    assert est.sigma_u == pytest.approx(4.0, rel=0.25)
    assert est.sigma_v == pytest.approx(8.0, rel=0.25)
    assert est.sigma_um == pytest.approx(5.0 * est.sigma)
    assert est.psf().shape[0] > est.psf().shape[1]


def test_array_api_input_and_float(xp):
    counts = grains_scan((96, 96), 4.0, seed=1)
    # a 96² map is small: the spectral interval of this one is a factor 2.0 wide (flagged uncertain),
    # which this test of the input/output types does not judge
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SigmaUncertainWarning)
        est = estimate_sigma(xp.asarray(counts, dtype=xp.float32))
    assert isinstance(est.sigma, float)
    assert float(est) == est.sigma
    assert 2.5 < est.sigma < 6.0


@pytest.mark.parametrize(
    ("image", "error", "match"),
    [
        (np.full((64, 64), 140.0), ValueError, "flat"),
        (np.ones((16, 64)), ValueError, "32×32"),
        (np.where(np.eye(64) > 0, np.nan, 1.0), ValueError, "NaN"),
        (np.ones(64), ValueError, "2-D"),
        ("map.tif", TypeError, "array"),
    ],
)
def test_bad_input(image, error, match):
    with pytest.raises(error, match=match):
        estimate_sigma(image)


def test_region_split_at_intensity_dips():
    # two overlapping discs of levels 1 and 0.5, blurred: one bright region, two domes of dynamic ≈ 0.5
    from scipy import ndimage

    from xrfgpu.psf.region_split import split_regions

    yy, xx = np.mgrid[:64, :96].astype(float)
    left = (yy - 32) ** 2 + (xx - 34) ** 2 <= 12**2
    right = (yy - 32) ** 2 + (xx - 60) ** 2 <= 12**2
    scene = np.where(left, 1.0, np.where(right, 0.5, 0.0))
    rest = ndimage.gaussian_filter(scene, 3.0)
    mask = rest > 0.1
    assert ndimage.label(mask)[1] == 1
    labels, n = split_regions(rest, mask, 0.05)
    assert n == 2
    assert labels[32, 30] != labels[32, 64]
    # a single disc has one dome; a dip shallower than h does not split
    assert split_regions(ndimage.gaussian_filter(left * 1.0, 3.0), mask & left, 0.05)[1] == 1
    assert split_regions(rest, mask, 2.0)[1] == 1


def _disc_scene(shape, sigma, seed):
    # an independent scene (not psf_scenes): random discs, blurred by scipy's Gaussian filter
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    pad = int(5 * sigma) + 8
    rows, cols = shape[0] + 2 * pad, shape[1] + 2 * pad
    yy, xx = np.mgrid[0:rows, 0:cols]
    scene = np.zeros((rows, cols))
    for _ in range(40):
        cy, cx, r = rng.uniform(0, rows), rng.uniform(0, cols), rng.uniform(4, 20)
        scene[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = rng.uniform(0.2, 1.0)
    blurred = ndimage.gaussian_filter(scene, sigma, mode="wrap", truncate=6.0)[pad:-pad, pad:-pad]
    return rng.poisson(140.0 + 150.0 * blurred).astype(float)


@pytest.mark.slow
@pytest.mark.parametrize("sigma", [3.0, 6.0])
def test_fast_path_interval_covers_the_truth(sigma):
    est = estimate_sigma(_disc_scene((128, 128), sigma, seed=int(sigma)))
    lo, hi = est.interval
    assert lo <= sigma <= hi
    assert lo <= est.sigma <= hi
    assert est.reliable and est.evidence
    assert "mosaic" not in est.details  # the fast path runs no mosaic fit


def test_pure_noise_has_no_sigma_information():
    # Poisson noise on a flat mean: no blur can be measured; the estimator must say so
    from xrfgpu.psf.blind_sigma import SigmaUncertainWarning

    counts = np.random.default_rng(3).poisson(140.0, (96, 96)).astype(float)
    with pytest.warns(SigmaUncertainWarning, match="no σ information"):
        est = estimate_sigma(counts)
    assert not est.reliable
    with pytest.raises(ValueError, match="uncertain"):
        estimate_sigma(counts, strict=True)


def _lines_scan(n, sigma, seed):
    """Thin straight lines (one pixel wide, random level) on an empty matrix, Gaussian blur σ, Poisson
    counts 2000 over 100: a scene whose ring spectrum falls as k^-1, far from the mosaic law k^-3."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    pad = int(5 * sigma) + 8
    m = n + 2 * pad
    scene = np.zeros((m, m))
    for _ in range(25):
        y0, x0 = rng.uniform(0, m, 2)
        angle, length = rng.uniform(0, np.pi), rng.uniform(0.3, 1.0) * m
        t = np.linspace(-length / 2, length / 2, int(4 * length))
        r = np.round(y0 + t * np.sin(angle)).astype(int)
        c = np.round(x0 + t * np.cos(angle)).astype(int)
        ok = (r >= 0) & (r < m) & (c >= 0) & (c < m)
        scene[r[ok], c[ok]] = rng.uniform(0.5, 1.0)
    blurred = ndimage.gaussian_filter(scene, sigma, mode="wrap", truncate=6.0)[pad:-pad, pad:-pad]
    return rng.poisson(100.0 + 2000.0 * blurred).astype(float)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scene_exponent_is_fitted_on_line_scenes(seed):
    # truth: the σ = 3 px blur applied. With the scene law fixed at k^-3 the spectral σ was 2.46-2.56
    # (15-18 % low) on these three maps; with the exponent fitted under its prior 2.85-2.95. The local
    # edge profiles (a 1-px line blurred by 3 px has the width √(9 + 1/12) = 3.01) decide seeds 0 and 2
    # (3.07, 3.01), and share the answer with the spectrum on seed 1 (spread 0.16 in ln σ); the spectral σ is
    # checked on its own
    est = estimate_sigma(_lines_scan(128, 3.0, seed))
    assert est.method in ("whittle", "edge-profiles", "whittle+edge-profiles")
    assert abs(est.details["whittle_sigma"] / 3.0 - 1.0) < 0.08
    assert abs(est.sigma / 3.0 - 1.0) < 0.08
    assert est.interval[0] <= 3.0 <= est.interval[1]
    assert 2.0 <= est.details["scene_exponent"] <= 4.0


@pytest.mark.parametrize("with_exponent", [False, True])
def test_spectral_likelihood_gradient_matches_finite_differences(with_exponent):
    from xrfgpu.psf.blind_sigma import _ring_spectrum, _spectral_nll

    k2, power, weight = _ring_spectrum(_disc_scene((96, 96), 3.0, seed=5))
    power = power / np.median(power)
    theta = np.array([-4.0, 0.3, 0.1, np.log(2.5)] + ([2.6] if with_exponent else []))
    prior = (3.0, 0.2) if with_exponent else None
    _, grad = _spectral_nll(theta, k2, power, weight, 3.0, prior)
    numeric = np.empty_like(theta)
    for i in range(theta.size):
        step = np.zeros_like(theta)
        step[i] = 1e-6
        numeric[i] = (_spectral_nll(theta + step, k2, power, weight, 3.0, prior)[0]
                      - _spectral_nll(theta - step, k2, power, weight, 3.0, prior)[0]) / 2e-6
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("sigma", [1.3, 2.2, 3.1, 4.7, 7.3, 11.0])
def test_spectral_profile_finds_sigma_on_its_expected_spectrum(sigma):
    # known truth: the ring spectrum of a 256² map equal to its expectation under the model (scene law
    # k^-3 with corner frequency 0.003, white noise), so the likelihood's minimum is at the true σ and
    # what is left is the grid and its parabola: measured 1.1-2.1 % low at these σ (off the grid points)
    # with the 31-point grid, 0.3-1.2 % low with 61 points
    from xrfgpu.psf.blind_sigma import _BETA_PRIOR, _ring_spectrum, _sigma_grid, _spectral_profile

    shape = (256, 256)
    k2, _, weight = _ring_spectrum(np.random.default_rng(0).normal(size=shape))
    expected = 1e-3 * (k2 + 0.003**2) ** -1.5 * np.exp(-4.0 * np.pi**2 * sigma**2 * k2) + 1.0
    found, _, _ = _spectral_profile(k2, expected / np.median(expected), weight, _BETA_PRIOR[0], _sigma_grid(shape),
                                    _BETA_PRIOR)
    assert -0.025 < found / sigma - 1.0 < 0.005


def test_edge_profile_jacobian_matches_finite_differences():
    # the Jacobian the step fits hand MINPACK (unit weights, no data: the model's own derivatives)
    from xrfgpu.psf.blind_sigma import _steps_model, _StepsResiduals

    def _steps_jacobian(t, p, k):
        return _StepsResiduals(t, np.zeros_like(t), np.ones_like(t), k).jacobian(p)

    t = np.linspace(-15.0, 15.0, 61)
    for p in ([10.0, 2.5, 30.0, -1.0], [140.0, -3.0, 50.0, -4.0, -20.0, 5.5]):
        p = np.array(p)
        k = (p.size - 2) // 2
        numeric = np.empty((t.size, p.size))
        for i in range(p.size):
            step = np.zeros_like(p)
            step[i] = 1e-6
            numeric[:, i] = (_steps_model(t, p + step, k) - _steps_model(t, p - step, k)) / 2e-6
        np.testing.assert_allclose(_steps_jacobian(t, p, k), numeric, rtol=1e-5, atol=1e-6)


def _two_blur_scan(n, sigma_left, sigma_right, seed):
    """Discs blurred by σ_left in the left half of the map and by σ_right in the right half (a PSF that
    changes across the scan: no single σ is true), Poisson counts 150 over 140."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    pad = int(5 * max(sigma_left, sigma_right)) + 8
    m = n + 2 * pad
    yy, xx = np.mgrid[0:m, 0:m]
    scene = np.zeros((m, m))
    for _ in range(int(40 * (m / 150) ** 2)):
        cy, cx, r = rng.uniform(0, m), rng.uniform(0, m), rng.uniform(4, 20)
        scene[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = rng.uniform(0.2, 1.0)
    left = ndimage.gaussian_filter(scene, sigma_left, mode="wrap", truncate=6.0)
    right = ndimage.gaussian_filter(scene, sigma_right, mode="wrap", truncate=6.0)
    blurred = np.where(xx < m // 2, left, right)[pad:-pad, pad:-pad]
    return rng.poisson(140.0 + 150.0 * blurred).astype(float)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_submaps_that_disagree_flag_the_estimate(seed):
    # truth: σ = 2 px on the left half, 6 px on the right. The whole map's spectrum is ruled by the sharp
    # half (σ 1.4-1.9 on these seeds, an interval of 1.1-2.3 px without the sub-maps); the corner
    # sub-maps see each half (1.8-2.4 and 3.6-5.4 px), so the interval must reach both and be flagged. The
    # edge profiles, which read both halves, spread too much to decide and share the answer with the spectrum;
    # the interval and the flag stay the spectrum's
    counts = _two_blur_scan(192, 2.0, 6.0, seed)
    with pytest.warns(SigmaUncertainWarning, match="uncertain"):
        est = estimate_sigma(counts)
    assert est.method in ("whittle", "whittle+edge-profiles")
    assert est.interval == pytest.approx(est.details["spectral_interval_with_submaps"])
    assert not est.reliable
    subs = est.details["submap_sigmas"]
    assert len(subs) == 4
    assert min(subs) <= 2.5 and max(subs) >= 3.5
    lo, hi = est.interval
    assert lo <= 2.0 and hi >= 3.5


@pytest.mark.slow
def test_submaps_agree_on_a_stationary_map():
    # one σ = 3 px over the whole map: the four corner sub-maps find it too (±25 %), and the estimate
    # stays reliable
    est = estimate_sigma(_disc_scene((192, 192), 3.0, seed=7))
    subs = est.details["submap_sigmas"]
    assert len(subs) == 4
    np.testing.assert_allclose(subs, 3.0, rtol=0.25)
    assert est.reliable
    assert est.interval[0] <= 3.0 <= est.interval[1]


def test_submaps_are_skipped_on_small_maps():
    # sub-maps of 0.625 × 48 = 30 px would be under the 32 px minimum (the σ of so small a map may be
    # flagged; only the skipped sub-maps are checked here)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SigmaUncertainWarning)
        est = estimate_sigma(_disc_scene((48, 48), 2.0, seed=1))
    assert est.details["submap_sigmas"] == []
