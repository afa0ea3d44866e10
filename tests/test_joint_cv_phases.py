"""The joint restoration's cross-validation in two phases (issue 18).

The Huber-dTV candidates can only be chosen for a map whose best plain
candidate is a dTV weight > 0, so they run only for those maps (phase 2),
after the plain candidates of every map (phase 1). Checked here: what the
record shows, that the choices, iterations, restored maps and the scores of
the candidates that ran equal the previous single batch of all candidates
(``skip_huber=False``), and that nothing in a batched run couples its maps
(a map's numbers do not depend on which other maps share the batch), except
the rounding of the separable engine's blur (``_separable_rounding``).
"""

import functools

import numpy as np
import pytest
from conftest import to_numpy
from scipy import signal

from xrfgpu import joint as J
from xrfgpu import psf as psf_mod
from xrfgpu._backend import has_axis_convolution

N = 64
SIGMAS = (1.5, 3.0, 2.5)  # guide, weak map with the guide's disks, smooth weak map
# the smooth map at 200 counts: at 60, plain RL's win over the dTV weight 0.1 depended on the split's draw
# (it held for the draw in the map's stored orientation, not for the draw in its canonical one)
LEVELS = (400.0, 40.0, 200.0)
BACKGROUNDS = (50.0, 10.0, 12.0)
HUBER = ("0.1 huber", "0.2 huber", "0.4 huber")


@pytest.fixture(scope="module")
def three_maps():
    """A guide with two disks and a square; weak map 1 shares the disks (a dTV weight beats plain RL
    there), weak map 2 is a smooth ramp the guide knows nothing of (plain RL wins)."""
    yy, xx = np.mgrid[:N, :N]
    disks = (np.hypot(yy - 20, xx - 20) <= 9) | (np.hypot(yy - 44, xx - 40) <= 8)
    guide, weak = np.full((N, N), 0.3), np.full((N, N), 0.3)
    guide[disks], weak[disks] = 1.0, 0.9
    guide[40:48, 10:18] = 1.0
    weak[8:30, 46:50] = 1.0
    smooth = 0.3 + 0.3 * np.sin(np.arange(N) / 5.0)[None, :] * np.ones((N, 1))
    rng = np.random.default_rng(3)
    maps, psfs = [], []
    for truth, sigma, level, b in zip((guide, weak, smooth), SIGMAS, LEVELS, BACKGROUNDS):
        h = psf_mod.gaussian(None, sigma)
        k = h.shape[0] // 2
        blurred = signal.fftconvolve(np.pad(truth, k, mode="edge"), h, mode="same")[k:-k, k:-k]
        maps.append(rng.poisson(level * np.clip(blurred, 0, None) + b).astype(np.float32))
        psfs.append(h)
    return np.stack(maps), psfs


def _joint(xp, counts, psfs, monkeypatch, *, single_batch=False, **options):
    """The automatic joint restoration (default candidates), recording each batched CV run's Huber δ."""
    runs = []
    guided = J._run_guided_rl

    def spy(pb, field, weights, **kw):
        if kw.get("watch") is not None:
            delta = kw.get("huber")
            runs.append((pb.image.shape[0], None if delta is None else to_numpy(delta).ravel()))
        return guided(pb, field, weights, **kw)

    monkeypatch.setattr(J, "_run_guided_rl", spy)
    if single_batch:
        monkeypatch.setattr(J, "_cross_validate", functools.partial(J._cross_validate, skip_huber=False))
    out, info = J.joint_richardson_lucy(xp.asarray(counts), [xp.asarray(h) for h in psfs], guide=0,
                                        background=list(BACKGROUNDS), return_info=True, **{"max_iter": 30, **options})
    monkeypatch.undo()
    return to_numpy(out), info, runs


def _check_the_huber_candidates_ran_only_where_a_dtv_weight_beat_plain_rl(info, runs):
    ran, skipped = info["per_map"][1], info["per_map"][2]
    # map 2: plain RL beat every dTV weight, so no Huber candidate ran for it and the record says why
    assert skipped["weight"] == 0.0 and skipped["prior"] == "none"  # plain RL: no prior
    assert skipped["huber_candidates"] == J.HUBER_SKIPPED == "skipped: plain RL beat every dTV weight"
    assert set(skipped["cv_deviance"]) == {f"{w:g}" for w in J.DEFAULT_WEIGHTS}
    # its deviances are above the best candidate that ran (plain RL here)
    assert skipped["cv_deviance"]["0"]["deviance"] == 0.0
    assert all(row["deviance"] >= 0.0 for row in skipped["cv_deviance"].values())
    # map 1: a dTV weight > 0 beat plain RL, so its three Huber candidates ran and compete
    best_plain = min((k for k in ran["cv_deviance"] if not k.endswith("huber")),
                     key=lambda k: ran["cv_deviance"][k]["deviance"])
    assert float(best_plain) > 0
    assert ran["huber_candidates"] == f"ran: the dTV weight {best_plain} beat plain RL"
    assert set(ran["cv_deviance"]) == {f"{w:g}" for w in J.DEFAULT_WEIGHTS} | set(HUBER)
    assert min(row["deviance"] for row in ran["cv_deviance"].values()) == 0.0
    # the batched runs: per fold 2 maps × 6 plain candidates without any Huber δ, then map 1 × 3 Huber ones
    assert [n for n, _ in runs] == [12, 12, 3, 3]
    assert runs[0][1] is None and runs[1][1] is None
    assert all(np.all(delta > 0) for _, delta in runs[2:])


def _separable_rounding(xp, counts, psfs):
    """Tolerances of a batched run's numbers against another batch's: none (exact) unless the separable
    engine blurs the maps. Its scratch canvas keeps, between the two reflections of each line, what the
    previous blur left there (never read, but inside the FFT's rounding), so a map's blur depends at the
    rounding level on the maps blurred before it (on the tests' scene: CV deviances move by ~1e-5)."""
    pb = J._stack_problem(xp.asarray(counts), [xp.asarray(h) for h in psfs], list(BACKGROUNDS), [1, 2],
                          boundary="reflect")
    return {"rel": 1e-5, "abs": 1e-3} if pb.op.engine == "separable" else {"rel": 0.0, "abs": 0.0}


@pytest.mark.slow
@pytest.mark.slow_on_strict
def test_the_two_phases_skip_huber_where_plain_rl_wins_and_otherwise_match_the_single_batch(xp, three_maps,
                                                                                             monkeypatch):
    counts, psfs = three_maps
    out, info, runs = _joint(xp, counts, psfs, monkeypatch)
    _check_the_huber_candidates_ran_only_where_a_dtv_weight_beat_plain_rl(info, runs)
    out_single, info_single, runs_single = _joint(xp, counts, psfs, monkeypatch, single_batch=True)
    assert [n for n, _ in runs_single] == [18, 18]  # the previous single batch: 2 maps × 9 candidates per fold
    np.testing.assert_array_equal(out, out_single)
    for i in (1, 2):
        new, old = info["per_map"][i], info_single["per_map"][i]
        for key in ("weight", "prior", "huber_delta", "iterations", "stop"):
            assert new[key] == old[key], (i, key)
        # every candidate that ran scored as in the single batch (exactly, except on the separable engine,
        # whose blur rounds with what its canvas held before: _separable_rounding); a deviance is above the
        # best candidate that ran, so on map 2 (Huber skipped) it moves by the same amount for all candidates
        shift = {1: 0.0, 2: old["cv_deviance"]["0"]["deviance"]}[i]
        close = _separable_rounding(xp, counts, psfs)
        for key, row in new["cv_deviance"].items():
            before = old["cv_deviance"][key]
            for field in ("iterations", "iterations_lowest", "late_iterations", "folds"):
                assert row[field] == before[field], (i, key, field)
            for field in ("late_deviance", "late_se") + (("se",) if i == 1 else ()):
                assert row[field] == pytest.approx(before[field], **close), (i, key, field)
            assert row["deviance"] == pytest.approx(before["deviance"] - shift, **{"rel": 1e-12, "abs": 1e-9, **close})
    assert info_single["per_map"][2]["huber_candidates"] == "ran: in one batch with the plain candidates"
    assert set(info_single["per_map"][2]["cv_deviance"]) - set(info["per_map"][2]["cv_deviance"]) == set(HUBER)


@pytest.mark.slow_on_strict
def test_given_weights_and_no_huber_candidates_run_one_batch(xp, three_maps, monkeypatch):
    counts, psfs = three_maps
    _, info, runs = _joint(xp, counts, psfs, monkeypatch, weight=0.05, max_iter=10)
    assert [n for n, _ in runs] == [2, 2] and all(d is None for _, d in runs)
    assert info["per_map"][2]["huber_candidates"] is None and set(info["per_map"][2]["cv_deviance"]) == {"0.05"}
    _, info, runs = _joint(xp, counts, psfs, monkeypatch, huber_weights=None, max_iter=10)
    assert [n for n, _ in runs] == [12, 12] and info["per_map"][1]["huber_candidates"] is None


def test_a_map_in_a_batch_is_computed_as_in_any_other_batch(xp, three_maps):
    # the batched EM-dTV of map 2 alone (kept to the full batch's PSF extent, engine and line reach) equals
    # its rows of a batch that also holds map 1, whose PSF is wider and whose counts differ (to rounding on
    # the separable engine, see _separable_rounding)
    counts, psfs = three_maps
    y = xp.asarray(counts)
    hs = [xp.asarray(h) for h in psfs]
    bs = list(BACKGROUNDS)
    rng = np.random.default_rng(0)
    field = rng.normal(size=(2, 4, N, N))
    field = xp.asarray((field / (1.5 * np.maximum(np.hypot(field[0], field[1]), 1.0))).astype(np.float32))
    weights, delta = [0.1, 0.2], [0.5, 1.0]  # a dTV and a Huber-dTV row per map

    def rows_of_map_2(pb, fields):
        level, init = J._start(pb)
        reps = pb.image.shape[0] // 2
        out = J._run_guided_rl(pb, fields, pb.per_map(weights * reps), num_iter=8, gamma=0.9, level=level,
                               init=init, huber=pb.per_map(delta * reps))
        return to_numpy(out)[-2:]  # map 2 is the batch's last member

    both = J._stack_problem(y, hs, bs, [1, 2], boundary="reflect", repeat=2)
    alone = J._stack_problem(y, hs, bs, [2], boundary="reflect", repeat=2, keep=J._batch_layout(both))
    assert alone.psf.shape[1:] == both.psf.shape[1:] and alone.op.transform_shape == both.op.transform_shape
    close = _separable_rounding(xp, counts, psfs)
    np.testing.assert_allclose(rows_of_map_2(alone, field[:, 2:, ...]), rows_of_map_2(both, field),
                               rtol=close["rel"] * 10, atol=0.0)
    # without the batch's layout its PSF stack, and so its canvas, would be smaller
    assert J._stack_problem(y, hs, bs, [2], boundary="reflect").psf.shape[-1] < both.psf.shape[-1]


@pytest.mark.skipif(not has_axis_convolution(np, np.float64), reason="the separable engine needs ducc0")
def test_a_separable_blur_given_a_wider_reach_blurs_on_the_wider_lines():
    from xrfgpu._separable import SeparableReflectBlur, separable_factors

    h = psf_mod.gaussian(None, 2.0)
    x = np.random.default_rng(0).random((40, 50))
    k = h.shape[0] // 2
    expected = signal.convolve2d(np.pad(x, k, mode="symmetric"), h, mode="valid")  # the reflect blur, directly
    wide = SeparableReflectBlur(separable_factors(psf_mod.gaussian(None, 4.0)), (40, 50), np.float64)
    kept = SeparableReflectBlur(separable_factors(h), (40, 50), np.float64, reach=wide.reach)
    own = SeparableReflectBlur(separable_factors(h), (40, 50), np.float64)
    assert kept.reach == wide.reach and kept.line_shape == wide.line_shape != own.line_shape
    np.testing.assert_allclose(kept.forward(x), expected, rtol=1e-12, atol=1e-12)
    r = np.random.default_rng(1).random((40, 50))  # the adjoint: <A x, r> = <x, Aᵀ r> with A x from the reference
    assert np.vdot(x, kept.adjoint(r)) == pytest.approx(np.vdot(expected, r), rel=1e-12)
