"""The front door restore(): background, σ, stopping and methods."""

import numpy as np
import pytest

import xrfgpu
from xrfgpu import metrics, phantom
from xrfgpu import restore
from xrfgpu.background import estimate_background
from xrfgpu.stopping import cv_iterations


@pytest.mark.parametrize("level", [20.0, 137.5, 1000.0])
def test_estimate_background_on_pure_poisson(level):
    counts = np.random.default_rng(0).poisson(level, (160, 160))
    assert estimate_background(counts) == pytest.approx(level, rel=0.02, abs=0.5)


def test_estimate_background_with_signal_on_part_of_the_map():
    rng = np.random.default_rng(1)
    mean = np.full((200, 200), 137.5)
    mean[:, 100:] += 77.0
    assert estimate_background(rng.poisson(mean)) == pytest.approx(137.5, rel=0.02)


def test_background_not_above_the_lowest_local_mean():
    # no element-free area: every pixel carries signal; the truth is the smallest mean of the map
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:160, 0:160]
    mean = 100.0 + 60.0 + 50.0 * np.sin(xx / 9.0) * np.cos(yy / 13.0)  # 110 .. 210
    b = estimate_background(rng.poisson(mean))
    assert b <= mean.min() * 1.05  # within the noise allowance (the previous estimator: 1.077)


def test_estimate_background_array_api(xp):
    counts = np.random.default_rng(2).poisson(50.0, (64, 64)).astype(np.float32)
    assert estimate_background(xp.asarray(counts)) == pytest.approx(estimate_background(counts), rel=1e-5)


def test_given_sigma_equals_richardson_lucy_with_that_psf():
    counts, truth, h = phantom.observe((96, 96), 2.5, seed=3)
    out, info = restore(counts, sigma=2.5, background=100.0, num_iter=20, return_info=True)
    ref = xrfgpu.richardson_lucy(counts, xrfgpu.psf.gaussian(None, 2.5), num_iter=20, background=100.0,
                                 accelerate=True)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-4)
    assert info["sigma"] == 2.5 and info["stop"] == "fixed" and info["iterations"] == 20


def test_sigma_um_needs_pixel_size():
    counts, _, _ = phantom.observe((64, 64), 2.0, seed=0)
    with pytest.raises(ValueError, match="pixel_size_um"):
        restore(counts, sigma_um=10.0)
    _, info = restore(counts, sigma_um=10.0, pixel_size_um=5.0, num_iter=5, return_info=True)
    assert info["sigma"] == pytest.approx(2.0) and info["sigma_um"] == pytest.approx(10.0)


def test_cv_stop_beats_too_few_and_too_many_iterations():
    # the CV count must land between under- and over-fitting: its error to the truth is close to
    # the best over a range of counts (truth known, independent of the CV split)
    counts, truth, h = phantom.observe((128, 128), 2.5, seed=4, signal_counts=100.0, background_counts=100.0)
    k = cv_iterations(counts, h, background=100.0)
    errs = {n: metrics.mse(xrfgpu.richardson_lucy(counts, h, num_iter=n, background=100.0, accelerate=True) / 100.0,
                           truth / 100.0) for n in (2, k, 300)}
    assert errs[k] < errs[2] and errs[k] < errs[300]


def test_discrepancy_stop_runs(xp):
    counts, _, _ = phantom.observe((64, 64), 2.0, seed=5)
    out, info = restore(xp.asarray(counts), sigma=2.0, background=100.0, stop="discrepancy", num_iter=50,
                        return_info=True)
    assert out.shape == (64, 64) and 1 <= info["iterations"] <= 50


def test_automatic_pipeline_reports_how_sigma_was_obtained():
    counts, truth, h = phantom.observe((96, 96), 2.5, seed=6)
    out, info = restore(counts, return_info=True)
    assert out.shape == counts.shape
    assert "estimate_sigma" in info["sigma_source"] and info["sigma"] > 0
    assert info["background"] == pytest.approx(100.0, rel=0.15)
    assert info["stop"] == "cv" and info["iterations"] >= 1


@pytest.mark.parametrize("method,kw", [("wiener", {}), ("tikhonov", {"lam": 0.01}), ("fista", {})])
def test_other_methods_match_their_functions(method, kw):
    counts, _, h = phantom.observe((64, 64), 2.0, seed=7)
    out, info = restore(counts, sigma=2.0, method=method, background=100.0, num_iter=None, return_info=True, **kw)
    fn = {"wiener": xrfgpu.wiener, "tikhonov": xrfgpu.tikhonov, "fista": xrfgpu.fista}[method]
    if method == "fista":  # restore chooses FISTA's count by cross-validation; fista() at that count
        assert info["stop"] == "cv" and info["iterations"] == info["cv_iterations"]
        kw = {"num_iter": info["iterations"]}
    ref = fn(counts, xrfgpu.psf.gaussian(None, 2.0), background=100.0, **kw)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-3)


def test_package_attribute_is_callable():
    counts, _, _ = phantom.observe((48, 48), 1.5, seed=8)
    import xrfgpu.front_door  # noqa: F401  (the module has its own name)

    assert callable(xrfgpu.restore) and xrfgpu.restore is xrfgpu.front_door.restore
    assert xrfgpu.restore(counts, sigma=1.5, num_iter=3).shape == (48, 48)
    # no module of the package shares the function's name
    from pathlib import Path

    package = Path(xrfgpu.__file__).parent
    assert not (package / "restore.py").exists() and not (package / "restore").is_dir()


def test_bad_input():
    counts, _, _ = phantom.observe((48, 48), 1.5, seed=9)
    with pytest.raises(ValueError, match="method"):
        restore(counts, method="magic")
    with pytest.raises(ValueError, match="stop"):
        restore(counts, sigma=1.5, stop="never")
    with pytest.raises(ValueError):
        restore(counts, sigma=-1.0)
    with pytest.raises(TypeError):
        restore([[1, 2], [3, 4]])
    with pytest.raises(ValueError, match="integer counts"):
        cv_iterations(counts + 0.5, xrfgpu.psf.gaussian(None, 1.5))
    with pytest.raises(ValueError, match="goal"):
        restore(counts, sigma=1.5, goal="beauty")


@pytest.mark.parametrize("num_iter,error", [(0, ValueError), (-3, ValueError), (2.5, ValueError),
                                            ("ten", TypeError), (None.__class__, TypeError)])
def test_num_iter_checked_as_richardson_lucy_checks_it(num_iter, error):
    # the reference is richardson_lucy's own check: the front door must raise the same error type
    counts, _, _ = phantom.observe((48, 48), 1.5, seed=9)
    h = xrfgpu.psf.gaussian(None, 1.5)
    with pytest.raises(error) as from_rl:
        xrfgpu.richardson_lucy(counts, h, num_iter=num_iter)
    with pytest.raises(error) as from_restore:
        restore(counts, sigma=1.5, num_iter=num_iter)
    assert str(from_restore.value) == str(from_rl.value)
