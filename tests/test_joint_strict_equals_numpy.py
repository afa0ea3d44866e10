"""The joint restoration's every branch, run on ``array_api_strict``, gives NumPy's numbers and record.

``array_api_strict`` rejects anything outside the array API standard; running the whole automatic joint
restoration on it (cross-validated weights in two phases, the Huber candidates, the evidence gate,
reweighting, a fitted map's gain and automatic background, the automatic guide, missing pixels, a given
weight and count) proves that each branch is written against the standard. The reference is the NumPy path,
whose dual loop is a separate in-place engine (:func:`xrfgpu._elementwise.dtv_denoise_numpy`) and whose
FFTs are another library's (ducc0 or scipy.fft, against ``numpy.fft`` under ``array_api_strict``): the two
agree to rounding, and every discrete choice (weight, prior, stop, guide) must be the same.

The maps are small (40 × 40, 20–30 iterations), so this costs about a second per branch on
``array_api_strict``, where each array operation costs tens of µs whatever its size. The accuracy tests
of ``tests/test_joint.py`` (against the known truth of 64² scenes) run on ``array_api_strict`` too, under
``-m slow`` for the heaviest (``slow_on_strict``, ``tests/conftest.py``).
"""

from __future__ import annotations

import json

import array_api_strict
import numpy as np
import pytest
from conftest import to_numpy
from scipy import signal

from xrfgpu import joint as J
from xrfgpu import psf as psf_mod
from xrfgpu.stack import restore_stack

N = 40
SIGMAS = (1.2, 2.5, 2.0)  # guide, a weak map sharing the guide's disks, a weak smooth ramp
LEVELS = (400.0, 40.0, 60.0)
BACKGROUNDS = (50.0, 10.0, 12.0)
GAINS = (2.3e-3, 3.7e-4, 1.1e-3)  # map units per count, as in fitted maps


@pytest.fixture(scope="module")
def maps():
    """Counts of three truths (windows of a larger, edge-padded scene) and their Gaussian PSFs."""
    yy, xx = np.mgrid[:N, :N]
    disks = (np.hypot(yy - 12, xx - 12) <= 6) | (np.hypot(yy - 28, xx - 26) <= 5)
    guide, weak = np.full((N, N), 0.3), np.full((N, N), 0.3)
    guide[disks], weak[disks] = 1.0, 0.9
    guide[26:32, 6:12] = 1.0  # guide only
    weak[4:18, 30:33] = 1.0  # weak only
    ramp = 0.3 + 0.3 * np.sin(np.arange(N) / 4.0)[None, :] * np.ones((N, 1))
    rng = np.random.default_rng(11)
    counts, psfs = [], []
    for truth, sigma, level, b in zip((guide, weak, ramp), SIGMAS, LEVELS, BACKGROUNDS):
        h = psf_mod.gaussian(None, sigma)
        k = h.shape[0] // 2
        blurred = signal.fftconvolve(np.pad(truth, k, mode="edge"), h, mode="same")[k:-k, k:-k]
        counts.append(rng.poisson(level * np.clip(blurred, 0, None) + b).astype(np.float32))
        psfs.append(h)
    return np.stack(counts), psfs


def _fitted(counts):
    """The counts as a fitted map: × gain, plus Gaussian read noise of half a count."""
    rng = np.random.default_rng(5)
    return np.stack([c * g + rng.normal(0.0, 0.5 * g, c.shape) for c, g in zip(counts, GAINS)]).astype(np.float32)


def _with_a_hole(counts):
    out = counts.copy()
    out[1, 15:21, 8:16] = np.nan  # a 6 × 8 hole in the weak map
    out[:, 33, :] = np.nan  # a lost line in every map
    return out


BRANCHES = {
    # the automatic weight by cross-validation, two phases: Huber candidates only where a dTV weight wins
    "cv-two-phases": dict(guide=0, background=list(BACKGROUNDS), weights=(0.0, 0.1),
                          huber_weights=(0.1,), max_iter=30),
    # a given weight and count; the evidence gate off; no guide iterations left to the CV
    "given-weight-ungated": dict(guide=0, background=list(BACKGROUNDS), weight=0.05, num_iter=20, guide_iter=20,
                                 guide_evidence_px=None),
    # the gate at a given width, and iteratively reweighted dTV
    "gate-and-reweighting": dict(guide=0, background=list(BACKGROUNDS), weight=0.05, num_iter=20, guide_iter=20,
                                 guide_evidence_px=1.0, reweight_every=5),
    # the guide chosen automatically among two maps
    "automatic-guide": dict(guide_among=[0, 1], background=list(BACKGROUNDS), weights=(0.0, 0.1), max_iter=20),
}


def _run(xp, stack, psfs, options):
    out, info = J.joint_richardson_lucy(xp.asarray(stack), [xp.asarray(h) for h in psfs], return_info=True,
                                        **options)
    return to_numpy(out).astype(np.float64), json.loads(json.dumps(info, default=str))


def _discrete(info):
    """What the run chose, per map: the numbers a rounding difference must not change."""
    keys = ("role", "weight", "prior", "stop", "iterations", "weight_how", "huber_candidates", "kind")
    return [{k: m.get(k) for k in keys} for m in info["per_map"]]


def _assert_same(numpy_result, strict_result, rtol=1e-4):
    """Same record, same choices, and maps equal to ``rtol`` of each map's largest value (the maps are float32:
    1e-4 is about 840 roundings). Measured 5.8e-7–2.5e-5 with NumPy 2.4.6 and ducc0 0.42 (Python 3.11), the
    largest on the reweighted smooth ramp, where 20 float32 iterations of reweighting amplify the two FFT
    libraries' roundings; the same runs in float64 agree to 1.5e-14, so the difference is rounding, not a
    different formula (which would differ by far more than 1e-4)."""
    (a, ia), (b, ib) = numpy_result, strict_result
    assert ia["mode"] == ib["mode"]
    assert _discrete(ia) == _discrete(ib)
    for k in range(a.shape[0]):
        scale = float(np.nanmax(np.abs(a[k]))) or 1.0
        assert np.nanmax(np.abs(a[k] - b[k])) <= rtol * scale, (k, float(np.nanmax(np.abs(a[k] - b[k]))) / scale)


@pytest.mark.parametrize("branch", sorted(BRANCHES))
def test_a_branch_on_array_api_strict_gives_the_numpy_numbers(maps, branch):
    import array_api_compat.numpy as xnp

    counts, psfs = maps
    options = BRANCHES[branch]
    reference = _run(xnp, counts, psfs, options)
    _assert_same(reference, _run(array_api_strict, counts, psfs, options))
    if branch == "cv-two-phases":  # the branch ran as named: a dTV weight won for the disks' map
        assert reference[1]["per_map"][1]["weight"] == 0.1


def test_a_fitted_stack_with_its_background_measured_gives_the_numpy_numbers(maps):
    import array_api_compat.numpy as xnp

    counts, psfs = maps
    options = dict(guide=0, background="auto", weights=(0.0, 0.1), max_iter=20)
    fitted = _fitted(counts)
    reference = _run(xnp, fitted, psfs, options)
    assert all(m["kind"].startswith("fitted") for m in reference[1]["per_map"])
    _assert_same(reference, _run(array_api_strict, fitted, psfs, options))
    assert [m["background"] for m in reference[1]["per_map"]] == pytest.approx(
        [m["background"] for m in _run(array_api_strict, fitted, psfs, options)[1]["per_map"]], rel=1e-6)


def test_missing_pixels_through_restore_stack_give_the_numpy_numbers(maps):
    import array_api_compat.numpy as xnp

    counts, psfs = maps
    holed = _with_a_hole(counts)
    results = []
    for xp in (xnp, array_api_strict):
        out, info = restore_stack(xp.asarray(holed), [xp.asarray(h) for h in psfs], "rl", joint=True,
                                  background=list(BACKGROUNDS), weights=(0.0, 0.1), max_iter=20, return_info=True)
        results.append((to_numpy(out).astype(np.float64), json.loads(json.dumps(info, default=str))))
    assert np.all(np.isfinite(results[0][0]))
    _assert_same(*results)
