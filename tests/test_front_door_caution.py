"""The front door's caution: a cross-validated count of 60 or more at an estimated σ distrusts that σ.

Richardson–Lucy at a σ larger than the true one amplifies the map's high
frequencies without bound and the held-out half keeps rewarding it, so the CV
count runs long; the front door then restores at the lower end of the σ
interval for that σ's own CV count (:func:`xrfgpu.front_door.caution_sigma`).
Checked against the known truth of a phantom (MSE to the unblurred scene
against the raw map's), and against references built from the pieces
(``cv_iterations``, ``cv_stop``, ``richardson_lucy``), not from the front door.
"""

import json

import h5py
import numpy as np
import pytest

import xrfgpu
from xrfgpu import phantom
from xrfgpu.cli import main
from xrfgpu.front_door import CAUTION_CV_ITERATIONS, CAUTION_KEYS, caution_sigma
from xrfgpu.psf import SigmaEstimate, gaussian_for_map
from xrfgpu.stopping import cv_iterations, cv_stop

from conftest import assert_array, to_numpy

BACKGROUND = 100.0
TRUE_SIGMA = 2.0


@pytest.fixture(scope="module")
def scene():
    # σ 2 px grains and veins at 2000/100 counts: the held-out deviance keeps falling at a too-large σ
    counts, truth, _ = phantom.observe((96, 96), TRUE_SIGMA, seed=1, signal_counts=2000.0,
                                       background_counts=BACKGROUND)
    return counts, truth


def _mse_ratio(restored, counts, truth):
    """MSE of the restoration to the truth over the raw map's (both above the known background)."""
    raw = np.mean((counts.astype(np.float64) - BACKGROUND - truth) ** 2)
    return float(np.mean((np.asarray(to_numpy(restored), dtype=np.float64) - truth) ** 2) / raw)


def _overestimate():
    # σ 30 % over the truth (as the fresh tuning set's fibres 306: 3.70 for 3), its interval reaching the truth
    s = 1.3 * TRUE_SIGMA
    return SigmaEstimate(sigma=s, sigma_u=s, sigma_v=s, rho=0.0, method="test", interval=(0.95 * TRUE_SIGMA, 1.6 * s))


def test_caution_sigma_threshold_and_interval():
    assert caution_sigma(CAUTION_CV_ITERATIONS - 1, 3.0, (2.0, 5.0)) is None
    assert caution_sigma(CAUTION_CV_ITERATIONS, 3.0, (2.0, 5.0)) == 2.0
    assert caution_sigma(500, 3.0, (3.2, 5.0)) == 3.0  # the lower end above σ: σ kept, the count not doubled
    assert caution_sigma(500, 3.0, None) is None and caution_sigma(None, 3.0, (2.0, 5.0)) is None


@pytest.mark.slow_on_strict
def test_caution_fires_on_an_overestimated_sigma_and_beats_raw(xp, scene):
    counts, truth = scene
    est = _overestimate()
    out, info = xrfgpu.restore(xp.asarray(counts), sigma=est, background=BACKGROUND, return_info=True)
    # what the goal alone would run: 0.9 σ_est for the guard's count (pieces, not the front door)
    goal_sigma = 0.9 * est.sigma
    h_goal = gaussian_for_map(goal_sigma, counts.shape, dtype=counts.dtype)
    found = cv_stop(counts, h_goal, background=BACKGROUND, extend=2.0)
    assert found.iterations >= CAUTION_CV_ITERATIONS
    goal_only = xrfgpu.richardson_lucy(counts, h_goal, num_iter=found.sharp_iterations, background=BACKGROUND,
                                       accelerate=True)
    assert _mse_ratio(goal_only, counts, truth) > 2.0  # without the caution: far worse than the raw scan
    # with it: the interval's lower end for its own CV count, and below the raw map's MSE
    lower = est.interval[0]
    h = gaussian_for_map(lower, counts.shape, dtype=counts.dtype)
    k = cv_iterations(counts, h, background=BACKGROUND)
    assert info["caution_applied"] is True and "lower end of the σ interval" in info["caution_reason"]
    assert info["sigma"] == pytest.approx(lower, rel=1e-12) and info["iterations"] == info["cv_iterations"] == k
    assert info["caution_sigma_before"] == pytest.approx(goal_sigma, rel=1e-12)
    assert info["caution_cv_iterations_before"] == found.iterations
    assert info["caution_iterations_before"] == found.sharp_iterations
    assert info["iteration_scale"] == 1.0 and not any(key in info for key in ("goal_iterations_wanted",))
    assert _mse_ratio(out, counts, truth) < 0.8
    ref = xrfgpu.richardson_lucy(counts, h, num_iter=k, background=BACKGROUND, accelerate=True)
    assert_array(out, ref, xp, rtol=1e-4, atol=1e-3 * float(ref.max()))


def test_caution_also_guards_the_fidelity_goal(scene):
    counts, truth = scene
    out, info = xrfgpu.restore(counts, sigma=_overestimate(), goal="fidelity", background=BACKGROUND,
                               return_info=True)
    assert info["caution_applied"] is True and info["sigma"] == pytest.approx(0.95 * TRUE_SIGMA, rel=1e-12)
    assert _mse_ratio(out, counts, truth) < 0.8


def test_caution_leaves_a_well_measured_sigma_alone(xp, scene):
    # σ from the map itself (2.03 px for 2): a short CV count, the goal's σ and count as before
    counts, truth = scene
    out, info = xrfgpu.restore(xp.asarray(counts), background=BACKGROUND, return_info=True)
    assert info["caution_applied"] is False and "σ and count kept" in info["caution_reason"]
    assert info["cv_iterations"] < CAUTION_CV_ITERATIONS
    assert info["sigma"] == pytest.approx(0.9 * info["sigma_estimated"], rel=1e-12)
    h = gaussian_for_map(info["sigma"], counts.shape, dtype=counts.dtype)
    found = cv_stop(counts, h, background=BACKGROUND, extend=2.0)
    assert info["iterations"] == found.sharp_iterations and info["iteration_scale"] == 2.0
    assert _mse_ratio(out, counts, truth) < 0.8


def test_a_given_sigma_gets_no_caution(scene):
    counts, _ = scene
    _, info = xrfgpu.restore(counts, sigma=1.3 * TRUE_SIGMA, background=BACKGROUND, return_info=True)
    assert not any(key in info for key in CAUTION_KEYS) and info["sigma"] == 1.3 * TRUE_SIGMA


@pytest.mark.slow
@pytest.mark.parametrize("extra", [(), ("--tile", "48")], ids=["whole-map", "tiled"])
def test_cli_records_the_caution_as_the_library(tmp_path, scene, extra, monkeypatch):
    # the map's own σ estimate does not fire at 60; a threshold of 1 makes the command line's run fire
    counts, _ = scene
    monkeypatch.setattr(xrfgpu.front_door, "CAUTION_CV_ITERATIONS", 1)
    src, out = tmp_path / "map.npy", tmp_path / "out.h5"
    np.save(src, counts)
    assert main(["restore", str(src), "-o", str(out), "-q", "--background", str(BACKGROUND), "--psf-auto",
                 *extra]) == 0
    with h5py.File(out, "r") as f:
        prov = json.loads(f["xrfgpu"].attrs["provenance"])
    record = prov["parameters"]["per_element"]["map"]
    _, info = xrfgpu.restore(counts, background=BACKGROUND, return_info=True)
    assert info["caution_applied"] is True
    for key in ("iterations", "cv_iterations", "iteration_scale", *CAUTION_KEYS):
        assert record[key] == (pytest.approx(info[key], rel=1e-9) if isinstance(info[key], float) else info[key]), key
    assert prov["psf"]["map"]["sigma_px"] == pytest.approx(info["sigma"], rel=1e-12)
    assert "caution" in prov["psf"]["map"]["source"]
