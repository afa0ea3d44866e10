"""The goal of the automatic paths: ``goal="resolution"`` by default, ``"fidelity"`` on request.

The references are built from the pieces, not from the front door: the
background (``estimate_background``), σ (``estimate_sigma``), the Gaussian
PSF, the cross-validated count (``cv_iterations``) and ``richardson_lucy``,
put together by the rule the README states: resolution = 0.9 × the
estimated σ run for twice the CV count at that σ, as far as the goal's guard
lets it (``cv_stop``'s ``sharp_iterations``, whose rule
``tests/test_goal_guard.py`` checks against an independent held-out curve);
fidelity = the estimated σ and its CV count; a given σ is used as given with
its CV count.
"""

import json

import h5py
import numpy as np
import pytest

import xrfgpu
from xrfgpu import phantom
from xrfgpu.background import estimate_background
from xrfgpu.cli import main
from xrfgpu.front_door import DEFAULT_GOAL, goal_factors, sigma_from_map
from xrfgpu.psf import estimate_sigma, gaussian_for_map
from xrfgpu.stopping import cv_iterations, cv_stop

from conftest import assert_array, to_numpy


@pytest.fixture(scope="module")
def counts():
    # σ 2.5 px grains and veins at 200/100 counts: σ is estimated without a warning (strict pytest)
    observed, _, _ = phantom.observe((96, 96), 2.5, seed=6)
    return observed


def _reference(counts, *, sigma_scale, iteration_scale):
    """RL from the pieces: ``(restored, σ used, iterations, CV count)``, NumPy, float32 map."""
    b = estimate_background(counts)
    est = estimate_sigma(counts, background=b)
    s = float(est.sigma) * sigma_scale
    h = gaussian_for_map(s, counts.shape, dtype=counts.dtype)
    k = cv_iterations(counts, h, background=b)
    n = k if iteration_scale == 1.0 else cv_stop(counts, h, background=b, extend=iteration_scale).sharp_iterations
    return xrfgpu.richardson_lucy(counts, h, num_iter=n, background=b, accelerate=True), s, n, k


def test_default_goal_is_resolution():
    import inspect

    assert DEFAULT_GOAL == "resolution"
    assert inspect.signature(xrfgpu.restore).parameters["goal"].default == "resolution"
    assert inspect.signature(xrfgpu.front_door.rl_iteration_count).parameters["goal"].default == "resolution"


def test_default_is_0_9_sigma_and_twice_the_cv_count(xp, counts):
    ref, s, n, k = _reference(counts, sigma_scale=0.9, iteration_scale=2.0)
    out, info = xrfgpu.restore(xp.asarray(counts), return_info=True)
    assert info["goal"] == "resolution" and info["sigma_scale"] == 0.9 and info["iteration_scale"] == 2.0
    assert info["sigma"] == pytest.approx(s, rel=1e-12)
    assert info["sigma"] == pytest.approx(0.9 * info["sigma_estimated"], rel=1e-12)
    assert info["cv_iterations"] == k and info["iterations"] == n and k <= n <= 2 * k
    assert info["goal_iterations_wanted"] == 2 * k
    assert_array(out, ref, xp, rtol=1e-4, atol=1e-3)


def test_fidelity_goal_is_the_estimated_sigma_and_the_cv_count(xp, counts):
    # the previous default, unchanged
    ref, s, n, k = _reference(counts, sigma_scale=1.0, iteration_scale=1.0)
    out, info = xrfgpu.restore(xp.asarray(counts), goal="fidelity", return_info=True)
    assert info["goal"] == "fidelity" and info["sigma_scale"] == 1.0 and info["iteration_scale"] == 1.0
    assert info["sigma"] == pytest.approx(s, rel=1e-12) and info["iterations"] == n == k
    assert_array(out, ref, xp, rtol=1e-4, atol=1e-3)


@pytest.mark.slow
def test_default_and_explicit_resolution_goal_agree_and_differ_from_fidelity(counts):
    default = xrfgpu.restore(counts)
    np.testing.assert_array_equal(default, xrfgpu.restore(counts, goal="resolution"))
    assert not np.allclose(default, xrfgpu.restore(counts, goal="fidelity"), rtol=1e-3)


@pytest.mark.slow
def test_an_estimate_passed_as_sigma_counts_as_estimated(counts):
    # sigma_from_map + restore(sigma=estimate) is what the CLI's --psf-auto does: the same as restore(map)
    est = sigma_from_map(counts)
    assert float(est.sigma) == pytest.approx(float(estimate_sigma(counts, background=estimate_background(counts)).sigma))
    for goal in ("resolution", "fidelity"):
        out, info = xrfgpu.restore(counts, sigma=est, goal=goal, return_info=True)
        ref, ref_info = xrfgpu.restore(counts, goal=goal, return_info=True)
        np.testing.assert_array_equal(out, ref)
        assert info["sigma"] == ref_info["sigma"] and info["iterations"] == ref_info["iterations"]
        assert "sigma_interval" in info


def test_a_given_sigma_is_used_as_given_with_its_cv_count(counts):
    b = estimate_background(counts)
    k = cv_iterations(counts, gaussian_for_map(2.5, counts.shape, dtype=counts.dtype), background=b)
    for goal in ("resolution", "fidelity"):
        _, info = xrfgpu.restore(counts, sigma=2.5, goal=goal, return_info=True)
        assert info["sigma"] == 2.5 and info["iterations"] == k
        assert info["sigma_scale"] == 1.0 and info["iteration_scale"] == 1.0


@pytest.mark.slow
def test_goal_leaves_fixed_counts_and_other_methods_alone(counts):
    _, info = xrfgpu.restore(counts, num_iter=7, return_info=True)
    assert info["iterations"] == 7 and info["iteration_scale"] == 1.0 and info["sigma_scale"] == 0.9
    _, info = xrfgpu.restore(counts, method="wiener", return_info=True)
    assert info["sigma"] == info["sigma_estimated"] and info["sigma_scale"] == 1.0
    assert goal_factors("resolution", sigma_estimated=True, method="fista") == (1.0, 1.0)
    assert goal_factors("resolution", sigma_estimated=False) == (1.0, 1.0)
    assert goal_factors("fidelity", sigma_estimated=True) == (1.0, 1.0)


def test_unknown_goal_is_refused_by_name(counts):
    with pytest.raises(ValueError, match="goal must be one of .*'sharpest'"):
        xrfgpu.restore(counts, goal="sharpest")
    with pytest.raises(ValueError, match="goal"):
        goal_factors(None, sigma_estimated=True)


# --------------------------------------------------------------------------- the command line


def _cli(tmp_path, src, name, *extra):
    out = tmp_path / name
    assert main(["restore", str(src), "-o", str(out), "-q", *extra]) == 0
    with h5py.File(out, "r") as f:
        return f["xrfgpu/maps"][0], json.loads(f["xrfgpu"].attrs["provenance"])


@pytest.mark.slow
@pytest.mark.parametrize("goal_args, goal", [([], "resolution"), (["--goal", "resolution"], "resolution"),
                                             (["--goal", "fidelity"], "fidelity")])
def test_cli_psf_auto_gives_the_library_numbers_and_records_the_goal(tmp_path, counts, goal_args, goal):
    src = tmp_path / "map.npy"
    np.save(src, counts)
    restored, prov = _cli(tmp_path, src, "out.h5", "--psf-auto", *goal_args)
    ref, info = xrfgpu.restore(counts, goal=goal, return_info=True)
    np.testing.assert_allclose(restored, to_numpy(ref), rtol=1e-5, atol=1e-4 * float(np.max(ref)))
    assert prov["parameters"]["goal"] == goal
    element = prov["parameters"]["per_element"]["map"]
    assert element["iterations"] == info["iterations"] and element["cv_iterations"] == info["cv_iterations"]
    assert element["iteration_scale"] == (2.0 if goal == "resolution" else 1.0)
    psf = prov["psf"]["map"]
    assert psf["sigma_px"] == pytest.approx(info["sigma"], rel=1e-12)
    assert psf["source"]["goal"] == goal and psf["source"]["sigma_scale"] == (0.9 if goal == "resolution" else 1.0)
    assert psf["source"]["sigma_estimated_px"] == pytest.approx(info["sigma_estimated"], rel=1e-12)


@pytest.mark.slow
def test_cli_tiles_follow_the_goal(tmp_path, counts):
    src = tmp_path / "map.npy"
    np.save(src, counts)
    whole, prov_whole = _cli(tmp_path, src, "whole.h5", "--psf-auto")
    tiled, prov_tiled = _cli(tmp_path, src, "tiled.h5", "--psf-auto", "--tile", "48")
    pw = prov_whole["parameters"]["per_element"]["map"]
    pt = prov_tiled["parameters"]["per_element"]["map"]
    assert pt["iterations"] == pw["iterations"] and pt["cv_iterations"] == pw["cv_iterations"]
    assert pt["goal_iterations_wanted"] == pw["goal_iterations_wanted"] == 2 * pw["cv_iterations"]
    assert pt["iteration_scale"] == pw["iteration_scale"] == 2.0
    assert prov_tiled["psf"]["map"]["sigma_px"] == prov_whole["psf"]["map"]["sigma_px"]
    assert np.abs(tiled - whole).max() <= 1e-4 * np.abs(whole).max()


def test_cli_given_sigma_ignores_the_goal(tmp_path, counts):
    src = tmp_path / "map.npy"
    np.save(src, counts)
    a, prov_a = _cli(tmp_path, src, "a.h5", "--psf-sigma", "2.5px")
    b, prov_b = _cli(tmp_path, src, "b.h5", "--psf-sigma", "2.5px", "--goal", "fidelity")
    np.testing.assert_array_equal(a, b)
    assert prov_a["psf"]["map"]["sigma_px"] == 2.5
    assert prov_a["parameters"]["per_element"]["map"]["iteration_scale"] == 1.0


def test_cli_refuses_an_unknown_goal(tmp_path, counts, capsys):
    src = tmp_path / "map.npy"
    np.save(src, counts)
    assert main(["restore", str(src), "-o", str(tmp_path / "o.h5"), "--psf-auto", "--goal", "sharp"]) == 2
    assert "--goal" in capsys.readouterr().err
