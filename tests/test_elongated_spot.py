"""Elongated spots (σ along the rows ≠ σ along the columns) through estimate_sigma, the front door and the CLI.

Known truths: random sharp ellipses of random angle blurred by an exact elliptical Gaussian
(transfer exp(−2π² kᵀΣk) on a canvas 40 px wider on each side, then cropped) at 2000 counts of
signal over 100 of background. Measured on 128² maps, seeds 0–1: σu, σv within 4 % of the truth
(ratio 1.6 along either axis, and a rotated spot with ρ = 0.4); the same scene blurred round
(σ 1.6 and 2.5 px) stays round, its profiles' axis-ratio interval reaching down to 1.01–1.02.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from conftest import random_ellipses, to_numpy
from xrfgpu.psf import estimate_sigma, gaussian
from xrfgpu.psf.blind_sigma import SigmaUncertainWarning
from xrfgpu.psf.elongation import covariance_to_axes, directional_edge_fit, spectral_ellipse


def _ellipses_scene(n, seed):
    """Random uniform ellipses (semi-axes 5–25 px, any angle, levels 0.2–1) on 0, n × n."""
    return random_ellipses(n, int(40 * (n / 256) ** 2) + 10, (5, 25), np.random.default_rng(seed))


def elongated_counts(n, sigma_u, sigma_v, rho, seed, *, signal=2000.0, background=100.0):
    """Poisson counts of the ellipses scene blurred by the elliptical Gaussian (σu columns, σv rows, ρ), float64."""
    margin = 40
    scene = _ellipses_scene(n + 2 * margin, seed)
    ky = np.fft.fftfreq(scene.shape[0])[:, None]
    kx = np.fft.rfftfreq(scene.shape[1])[None, :]
    quad = sigma_u**2 * kx * kx + sigma_v**2 * ky * ky + 2.0 * rho * sigma_u * sigma_v * kx * ky
    blurred = np.fft.irfft2(np.fft.rfft2(scene) * np.exp(-2.0 * math.pi**2 * quad), s=scene.shape)
    mean = background + signal * np.clip(blurred[margin:-margin, margin:-margin], 0.0, None)
    return np.random.default_rng(seed + 1).poisson(mean).astype(np.float64)


def _estimate(counts, xp):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SigmaUncertainWarning)
        est = estimate_sigma(xp.asarray(counts), elongation=True)
    return est, [str(w.message) for w in caught if issubclass(w.category, SigmaUncertainWarning)]


@pytest.mark.slow
@pytest.mark.slow_on_strict
def test_an_elongated_spot_is_measured_within_ten_percent(xp):
    _check_elongated(xp, 2.0, 3.2, 0.0)


@pytest.mark.slow
@pytest.mark.parametrize(("sigma_u", "sigma_v", "rho"), [(3.2, 2.0, 0.0), (3.0, 3.0, 0.4)])
def test_the_long_axis_along_the_columns_or_rotated(sigma_u, sigma_v, rho):
    import array_api_compat.numpy as xnp

    _check_elongated(xnp, sigma_u, sigma_v, rho)


def _check_elongated(xp, sigma_u, sigma_v, rho):
    est, messages = _estimate(elongated_counts(128, sigma_u, sigma_v, rho, seed=0), xp)
    assert est.method.startswith("elliptical"), est.evidence
    assert est.sigma_u == pytest.approx(sigma_u, rel=0.10)
    assert est.sigma_v == pytest.approx(sigma_v, rel=0.10)
    assert est.rho == pytest.approx(rho, abs=0.08)
    assert est.sigma == pytest.approx(math.sqrt(est.sigma_u * est.sigma_v))
    assert "elongated" in est.evidence and not messages


def test_a_round_spot_stays_round(xp):
    _check_round(xp, 2.5)


def test_a_small_round_spot_stays_round():
    import array_api_compat.numpy as xnp

    _check_round(xnp, 1.6)


def _check_round(xp, sigma):
    est, messages = _estimate(elongated_counts(128, sigma, sigma, 0.0, seed=1), xp)
    assert est.sigma_u == est.sigma_v == est.sigma and est.rho == 0.0
    assert not est.method.startswith("elliptical")
    assert est.details["elongation"]["verdict"] == "round"
    assert not any("elongated" in m for m in messages)
    assert est.sigma == pytest.approx(sigma, rel=0.10)


def test_a_doubtful_spot_is_warned_about_naming_both_axes(monkeypatch):
    # the same elongated map with the evidence bars raised out of reach: not restored as an ellipse, but said
    from xrfgpu.psf import blind_sigma

    counts = elongated_counts(128, 2.0, 3.2, 0.0, seed=0)
    monkeypatch.setattr(blind_sigma, "_ELONGATION_RATIO", 10.0)
    monkeypatch.setattr(blind_sigma, "_ELONGATION_SPECTRAL_LOW", 10.0)
    with pytest.warns(SigmaUncertainWarning, match="may be elongated") as caught:
        est = estimate_sigma(counts, elongation=True)
    assert est.sigma_u == est.sigma_v and est.rho == 0.0
    message = next(str(w.message) for w in caught if "elongated" in str(w.message))
    # both axis σ's are named, and they are the measured ones (2.0 and 3.2 px within 10 %)
    su = float(message.split("σu ")[1].split(" px")[0])
    sv = float(message.split("σv ")[1].split(" px")[0])
    assert su == pytest.approx(2.0, rel=0.10) and sv == pytest.approx(3.2, rel=0.10)
    assert "compromise" in message


def test_the_front_door_restores_with_the_ellipse_it_records(xp):
    import xrfgpu
    from xrfgpu import richardson_lucy

    counts = elongated_counts(128, 2.0, 3.2, 0.0, seed=0)
    restored, info = xrfgpu.restore(xp.asarray(counts), return_info=True, elongation=True)
    su, sv, rho = info["sigma_u"], info["sigma_v"], info["rho"]
    # goal "resolution": 0.9 × each estimated axis
    assert su == pytest.approx(0.9 * 2.0, rel=0.10) and sv == pytest.approx(0.9 * 3.2, rel=0.10)
    assert info["sigma_u_estimated"] == pytest.approx(su / 0.9) and info["sigma_v_estimated"] == pytest.approx(sv / 0.9)
    assert info["sigma"] == pytest.approx(math.sqrt(su * sv))
    assert "elliptical" in info["sigma_source"]
    h = gaussian(None, su, sv, rho, xp=xp, dtype=xp.float64)
    assert info["psf_shape"] == tuple(h.shape)
    expected = richardson_lucy(xp.asarray(counts), h, num_iter=info["iterations"], background=info["background"],
                               accelerate=True)
    np.testing.assert_allclose(to_numpy(restored), to_numpy(expected), rtol=1e-6, atol=1e-9)


@pytest.mark.slow
def test_the_command_line_records_the_same_ellipse(tmp_path):
    import tifffile

    import xrfgpu
    from xrfgpu.cli import main

    counts = elongated_counts(128, 3.2, 2.0, 0.0, seed=1)
    path = tmp_path / "scan_Fe_K.tif"
    tifffile.imwrite(path, counts.astype(np.float32))
    out = tmp_path / "o.tif"
    assert main(["restore", str(path), "-o", str(out), "--psf-auto", "--elongated-spot", "-q"]) == 0
    record = json.loads(Path(str(out) + ".json").read_text())["xrfgpu"]["provenance"]
    source = record["psf"]["Fe_K"]["source"]
    _, info = xrfgpu.restore(counts.astype(np.float32), return_info=True, elongation=True)
    assert source["sigma_u_px"] == pytest.approx(info["sigma_u"])
    assert source["sigma_v_px"] == pytest.approx(info["sigma_v"])
    assert source["rho"] == pytest.approx(info["rho"])
    assert record["psf"]["Fe_K"]["sigma_px"] == pytest.approx(info["sigma"])
    assert source["sigma_u_px"] > 1.4 * source["sigma_v_px"]
    expected = xrfgpu.restore(counts.astype(np.float32), background=record["parameters"]["per_element"]["Fe_K"]
                              ["background"], elongation=True)
    np.testing.assert_allclose(tifffile.imread(out), np.asarray(expected), rtol=1e-5,
                               atol=1e-6 * float(np.max(expected)))


def test_covariance_to_axes_of_a_rotated_ellipse():
    # Σ = R diag(a², b²) Rᵀ with a = 3, b = 1.5 at 30°: analytic σu, σv, ρ
    a, b, phi = 3.0, 1.5, math.radians(30.0)
    suu = a * a * math.cos(phi) ** 2 + b * b * math.sin(phi) ** 2
    svv = a * a * math.sin(phi) ** 2 + b * b * math.cos(phi) ** 2
    suv = (a * a - b * b) * math.sin(phi) * math.cos(phi)
    (su, sv, rho), (major, minor, angle) = covariance_to_axes(suu, svv, suv)
    assert (su, sv, rho) == pytest.approx((math.sqrt(suu), math.sqrt(svv), suv / math.sqrt(suu * svv)))
    assert (major, minor, angle) == pytest.approx((3.0, 1.5, 30.0))


def test_directional_edge_fit_recovers_an_exact_form():
    # profiles whose σ(θ)² is exactly nᵀΣn at 40 normals: the fit returns Σ and an interval about its ratio
    a, b, phi = 4.0, 2.0, math.radians(120.0)
    suu = a * a * math.cos(phi) ** 2 + b * b * math.sin(phi) ** 2
    svv = a * a * math.sin(phi) ** 2 + b * b * math.cos(phi) ** 2
    suv = (a * a - b * b) * math.sin(phi) * math.cos(phi)
    rng = np.random.default_rng(0)
    fits = []
    for theta in rng.uniform(0, 2 * math.pi, 40):
        nu, nv = math.cos(theta), math.sin(theta)
        sigma = math.sqrt(suu * nu * nu + svv * nv * nv + 2 * suv * nu * nv) * (1 + 0.01 * rng.normal())
        fits.append({"sigma": sigma, "stderr": 0.02 * sigma, "reduced_chi2": 1.0, "normal": (nu, nv)})
    fit = directional_edge_fit(fits)
    assert fit["covariance"] == pytest.approx((suu, svv, suv), rel=0.05, abs=0.1)
    assert fit["ratio"] == pytest.approx(2.0, rel=0.05) and fit["angle"] == pytest.approx(120.0, abs=3.0)
    assert fit["ratio_interval"][0] < fit["ratio"] < fit["ratio_interval"][1]
    assert fit["log_spread"] < 0.02 < fit["round_log_spread"]


def test_spectral_ellipse_reads_the_long_axis_of_a_blurred_mosaic():
    # a random mosaic (the spectral model's scene) blurred 2:1 along the rows: the directional spectrum's axis
    from scipy import ndimage

    n = 256
    rng = np.random.default_rng(3)
    labels = ndimage.zoom(rng.integers(0, 400, (24, 24)), n / 24 + 1, order=0)[:n + 80, :n + 80]
    scene = rng.uniform(0.0, 1.0, 400)[labels]
    ky = np.fft.fftfreq(scene.shape[0])[:, None]
    kx = np.fft.rfftfreq(scene.shape[1])[None, :]
    blurred = np.fft.irfft2(np.fft.rfft2(scene) * np.exp(-2.0 * math.pi**2 * (2.0**2 * kx * kx + 4.0**2 * ky * ky)),
                            s=scene.shape)[40:-40, 40:-40]
    counts = np.random.default_rng(4).poisson(100.0 + 2000.0 * blurred).astype(np.float64)
    fit = spectral_ellipse(counts, 3.0)
    assert fit["ratio"] > 1.4 and abs(fit["angle"] - 90.0) < 15.0
    assert fit["sigma_v"] > 1.4 * fit["sigma_u"]


@pytest.mark.slow
def test_tiles_restore_with_the_same_ellipse(tmp_path):
    # --tile builds the PSF itself (xrfgpu.cli._run_tiled): it must be the front door's ellipse, not the round σ
    import h5py

    from xrfgpu.cli import main

    src = tmp_path / "map.npy"
    np.save(src, elongated_counts(128, 2.0, 3.2, 0.0, seed=0))
    runs = {}
    for name, extra in (("whole", []), ("tiled", ["--tile", "64"])):
        out = tmp_path / f"{name}.h5"
        assert main(["restore", str(src), "-o", str(out), "--psf-auto", "--elongated-spot", "-q", *extra]) == 0
        with h5py.File(out, "r") as f:
            runs[name] = (f["xrfgpu/maps"][0], json.loads(f["xrfgpu"].attrs["provenance"]))
    (whole, prov_whole), (tiled, prov_tiled) = runs["whole"], runs["tiled"]
    for prov in (prov_whole, prov_tiled):
        source = prov["psf"]["map"]["source"]
        assert source["sigma_v_px"] > 1.4 * source["sigma_u_px"]
    assert prov_tiled["parameters"]["per_element"]["map"]["tile"] == 64
    assert np.abs(tiled - whole).max() <= 1e-4 * np.abs(whole).max()


@pytest.mark.slow
@pytest.mark.parametrize("rho", [0.3, -0.003])
def test_tiled_rl_equals_the_whole_map_for_a_rotated_ellipse(rho):
    # xrfgpu.dask_rl once took Dask's reflect halo at the map's edges, whose adjoint is exact only for PSFs
    # mirror-symmetric along both axes: at ρ = 0.3 its tiles differed from the whole map by 87 % of the maximum
    from xrfgpu import richardson_lucy
    from xrfgpu.dask_rl import richardson_lucy as tiled_rl

    counts = elongated_counts(128, 2.0, 3.2, 0.0, seed=0)
    h = np.asarray(gaussian(None, 1.8, 2.9, rho))
    whole = np.asarray(richardson_lucy(counts, h, num_iter=20, background=100.0, accelerate=True))
    for tile in (64, 50):
        tiled = np.asarray(tiled_rl(counts, h, tile=tile, num_iter=20, background=100.0, accelerate=True,
                                    scheduler="synchronous"))
        np.testing.assert_allclose(tiled, whole, rtol=0, atol=1e-9 * float(whole.max()))


@pytest.mark.slow
def test_the_check_is_off_by_default(tmp_path):
    # the elongation check is opt-in (it misread a held-out map, and warned on round phantoms): by default an
    # elongated map gets the round σ, exactly as before the check existed
    import xrfgpu

    counts = elongated_counts(128, 2.0, 3.2, 0.0, seed=0)
    est, messages = _estimate_default(counts)
    assert est.sigma_u == est.sigma_v == est.sigma and est.rho == 0.0 and "elongation" not in est.details
    assert not any("elongated" in m for m in messages)
    _, info = xrfgpu.restore(counts, return_info=True)
    assert "sigma_u" not in info


def _estimate_default(counts):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SigmaUncertainWarning)
        est = estimate_sigma(counts)
    return est, [str(w.message) for w in caught if issubclass(w.category, SigmaUncertainWarning)]


def test_the_elliptical_psf_is_cut_to_the_map_per_axis():
    # ±4 σ per axis: σv 5 px needs 41 rows, cut to the 30-row map's largest odd side 29; σu 2 px keeps 17 columns
    from xrfgpu.psf import gaussian_for_map

    h = np.asarray(gaussian_for_map(2.0, (30, 200), sigma_v=5.0, rho=0.2))
    assert h.shape == (29, 17)
    np.testing.assert_allclose(h, np.asarray(gaussian((29, 17), 2.0, 5.0, 0.2)), rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match="sigma_v=300 px is wider than the whole 30 x 200 map"):
        gaussian_for_map(2.0, (30, 200), sigma_v=300.0)
