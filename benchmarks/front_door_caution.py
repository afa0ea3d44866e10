"""Why ``restore(map)`` ends worse than the raw map, and the front door's caution, on the fresh tuning maps.

    python benchmarks/front_door_caution.py --set fresh-tuning-more|fresh-tuning --jsonl FILE [--workers 2]
    python benchmarks/front_door_caution.py --rules FILE [FILE ...]

The first form restores every map of the set with ``xrfgpu.restore(counts)`` (the default goal, as the code
stands: with the caution when it fires) and records, one JSON line per map: what ``info`` says (σ estimate,
interval, flags, CV count, the guard's and the caution's record), the MSE to the scene against the raw map's
(as :mod:`bench_fresh_held_out` compares), and Richardson–Lucy's MSE to the scene after every iteration (the
front door's background, accelerated) at the σ the goal asks for (0.9 σ_est), at σ_est, at the lower end of
σ's interval and at the true σ, with the CV counts at σ_est and at the lower end. ``--rules`` reads such files
and scores stopping / σ rules from those curves (median, 90th percentile and worst MSE ratio, maps worse than
raw, how many maps a rule changes and how many of them it helps), among them the caution at thresholds
40–80. The rules are scored against the goal's own σ and count (the caution's ``caution_*_before`` keys), so
the file may come from code with or without the caution. Tuning sets only: the held-out set is scored by
:mod:`bench_fresh_held_out`, once.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sigma_scenes_fresh  # noqa: E402

SETS = {"fresh-tuning-more": "FRESH_TUNING_MORE", "fresh-tuning": "FRESH_TUNING"}


def _curve(counts, sigma, background, num_iter, scene, true_background):
    """RL's MSE to the scene (counts above the true background) after each of ``num_iter`` iterations."""
    from xrfgpu.psf import gaussian_for_map
    from xrfgpu.richardson_lucy import richardson_lucy

    h = gaussian_for_map(sigma, counts.shape, dtype=counts.dtype)
    out = []

    def watch(iteration, estimate, divergence):
        out.append(float(np.mean((np.asarray(estimate, dtype=np.float64) + background - true_background - scene) ** 2)))

    richardson_lucy(counts, h, num_iter=num_iter, background=background, accelerate=True, callback=watch)
    return out


def measure(case):
    """One JSON-able row for ``case`` (see the module docstring)."""
    import xrfgpu
    from xrfgpu.psf import gaussian_for_map
    from xrfgpu.stopping import cv_iterations

    family, seed, size, sigma, signal, background = case
    counts, truth_sigma, label, scene = sigma_scenes_fresh.make_case(case, return_scene=True)
    raw = float(np.mean((counts - background - scene) ** 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        restored, info = xrfgpu.restore(counts, return_info=True)
        mse = float(np.mean((np.asarray(restored, dtype=np.float64) + info["background"] - background - scene) ** 2))
        b, s = info["background"], info["sigma_estimated"]
        lower = info["sigma_interval"][0] if info.get("sigma_interval") else s
        # the goal's own σ and counts (the caution's record says what they were when it fired)
        goal_cv = info.get("caution_cv_iterations_before", info["cv_iterations"])
        goal_iterations = info.get("caution_iterations_before", info["iterations"])
        n = int(min(max(2 * goal_cv, goal_iterations, 20), 1000))
        row = dict(family=family, label=label, seed=seed, size=size, signal=signal, bg=background,
                   true_sigma=truth_sigma, raw=raw, ratio=mse / raw, sigma_est=s, interval=info.get("sigma_interval"),
                   reliable=info.get("sigma_reliable"), evidence=info.get("sigma_evidence"), b=b,
                   cv=goal_cv, goal_iterations=goal_iterations, iterations=info["iterations"],
                   caution_applied=info.get("caution_applied"), sigma_used=info["sigma"],
                   capped=info.get("goal_iterations_capped_by"), rise=info.get("goal_heldout_rise_se"),
                   curve_goal=_curve(counts, 0.9 * s, b, n, scene, background),
                   curve_est=_curve(counts, s, b, n, scene, background),
                   curve_lower=_curve(counts, lower, b, n, scene, background),
                   curve_true=_curve(counts, truth_sigma, b, n, scene, background),
                   cv_est=int(cv_iterations(counts, gaussian_for_map(s, counts.shape, dtype=counts.dtype), background=b)),
                   cv_lower=int(cv_iterations(counts, gaussian_for_map(lower, counts.shape, dtype=counts.dtype),
                                              background=b)))
    return row


def _at(curve, k):
    return curve[min(max(int(k), 1), len(curve)) - 1]


def score_rules(rows):
    """Markdown: each rule's MSE ratio (median, 90th pct, worst), maps worse than raw, maps changed / helped."""
    def goal(x):  # the goal alone: 0.9 σ_est for the guard's count
        return _at(x["curve_goal"], x["goal_iterations"]) / x["raw"]

    def lower(x):  # the interval's lower end for its own CV count
        return _at(x["curve_lower"], x["cv_lower"]) / x["raw"]

    def width(x):
        return x["interval"][1] / x["interval"][0]

    rules = {
        "goal alone (0.9 σ_est, guarded 2 × CV)": goal,
        "lower end of the interval, its CV count, on every map": lower,
        "0.9 σ_est at the CV count (not doubled), every map": lambda x: _at(x["curve_goal"], x["cv"]) / x["raw"],
        "σ_est at its CV count (the fidelity goal), every map": lambda x: _at(x["curve_est"], x["cv_est"]) / x["raw"],
        "σ flagged uncertain → lower end": lambda x: goal(x) if x["reliable"] else lower(x),
        "interval hi/lo > 2.0 → lower end": lambda x: lower(x) if width(x) > 2.0 else goal(x),
        "interval hi/lo > 2.5 → lower end": lambda x: lower(x) if width(x) > 2.5 else goal(x),
        "CV count ≥ 60 → 0.9 σ_est at the CV count": lambda x: (_at(x["curve_goal"], x["cv"]) / x["raw"]
                                                                if x["cv"] >= 60 else goal(x)),
    }
    for threshold in (40, 50, 54, 55, 60, 70, 80):
        rules[f"CV count ≥ {threshold} → lower end (the caution at {threshold})"] = (
            lambda t: lambda x: lower(x) if x["cv"] >= t else goal(x))(threshold)
    out = ["| rule | median | 90th pct | worst | worse than raw | maps changed (helped) |", "|---|---|---|---|---|---|"]
    base = [goal(x) for x in rows]
    for name, rule in rules.items():
        r = np.array([rule(x) for x in rows])
        changed = [(b, a) for b, a in zip(base, r) if a != b]
        out.append(f"| {name} | {np.median(r):.3f} | {np.quantile(r, 0.9):.3f} | {r.max():.3g} | {int(np.sum(r >= 1))} "
                   f"| {len(changed)} ({sum(a < b for b, a in changed)}) |")
    return "\n".join(out)


def score_rules_after_caution(rows):
    """Markdown: rules tried on top of the caution at 60 (issue 14, the maps still worse than raw).

    The baseline is the caution on the CV count alone (:data:`CAUTION_CV_ITERATIONS` 60, else the
    goal alone); each rule replaces the goal's result on the maps it selects with: no doubling (0.9 σ_est at
    the CV count), or the interval's lower end at its own CV count. The signals are ones the front door has
    (or could have: ``cv_est``, the CV count at σ_est itself, costs one more cross-validation run): the count
    level (the scene's signal, which the front door would read as the mean counts above the background), σ's
    interval width (hi / lo) and flag, the guard's record. Columns as :func:`score_rules`, plus how many of
    the changed maps the rule makes worse, the median per count level, and every changed map with its
    before → after (so a rule fitted to one map shows as such).
    """
    from xrfgpu.front_door import CAUTION_CV_ITERATIONS

    def goal(x):
        return _at(x["curve_goal"], x["goal_iterations"]) / x["raw"]

    def lower(x):
        return _at(x["curve_lower"], x["cv_lower"]) / x["raw"]

    def no_doubling(x):
        return _at(x["curve_goal"], x["cv"]) / x["raw"]

    def width(x):
        return x["interval"][1] / x["interval"][0] if x["interval"] else 1.0

    def base(x):
        return lower(x) if x["cv"] >= CAUTION_CV_ITERATIONS else goal(x)

    def on_top(select, instead):
        return lambda x: instead(x) if x["cv"] < CAUTION_CV_ITERATIONS and select(x) else base(x)

    rules = {"the caution at 60 on the CV count alone (main before issue 14's second rule)": base,
             "no doubling on every map": on_top(lambda x: True, no_doubling),
             "no doubling at 2000/100": on_top(lambda x: x["signal"] >= 2000, no_doubling),
             "no doubling at 77/137.5 (the lowest counts)": on_top(lambda x: x["signal"] < 100, no_doubling),
             "no doubling where σ is flagged uncertain": on_top(lambda x: not x["reliable"], no_doubling),
             "no doubling where the deviance never rose (no guard stop)": on_top(lambda x: x["rise"] is None,
                                                                                 no_doubling)}
    for w in (2.0, 2.5, 3.0):
        rules[f"interval hi/lo > {w} → no doubling"] = (lambda w: on_top(lambda x: width(x) > w, no_doubling))(w)
        rules[f"interval hi/lo > {w} → lower end"] = (lambda w: on_top(lambda x: width(x) > w, lower))(w)
    for t in (50, 60):
        rules[f"CV count at σ_est ≥ {t} → lower end"] = (lambda t: on_top(lambda x: x["cv_est"] >= t, lower))(t)
        rules[f"CV count at σ_est ≥ {t} → no doubling"] = (lambda t: on_top(lambda x: x["cv_est"] >= t,
                                                                               no_doubling))(t)
        rules[f"CV count at σ_est ≥ {t} and hi/lo > 2 → lower end"] = (
            lambda t: on_top(lambda x: x["cv_est"] >= t and width(x) > 2.0, lower))(t)
    for t in (80, 90, 100):  # the goal's (guarded, doubled) count; 100 tried on branch lowcount, not merged
        rules[f"the goal's count ≥ {t} → lower end"] = (lambda t: on_top(lambda x: x["goal_iterations"] >= t,
                                                                          lower))(t)
    levels = sorted({x["signal"] for x in rows})
    out = ["| rule | median | 90th pct | worst | worse than raw | maps changed (helped, hurt) | median per level "
           + " / ".join(f"{v:g}" for v in levels) + " |", "|---|---|---|---|---|---|---|"]
    base_r = np.array([base(x) for x in rows])
    signal = np.array([x["signal"] for x in rows])
    changes = {}
    for name, rule in rules.items():
        r = np.array([rule(x) for x in rows])
        changed = r != base_r
        per_level = " / ".join(f"{np.median(r[signal == v]):.3f}" for v in levels)
        out.append(f"| {name} | {np.median(r):.4f} | {np.quantile(r, 0.9):.3f} | {r.max():.3g} | {int(np.sum(r >= 1))} "
                   f"| {int(changed.sum())} ({int(np.sum(r < base_r))}, {int(np.sum(r > base_r))}) | {per_level} |")
        if 0 < changed.sum() <= 12:
            changes[name] = [f"{x['label']} {x['seed']} {x['size']}² {x['signal']:g}/{x['bg']:g} (σ {x['true_sigma']:g} "
                             f"read {x['sigma_est']:.2f}, hi/lo {width(x):.2f}, CV {x['cv']}, at σ_est {x['cv_est']}): "
                             f"{a:.3f} → {b:.3f}" for x, a, b, c in zip(rows, base_r, r, changed) if c]
    for name, lines in changes.items():
        out.append(f"\n{name}, the maps changed:\n" + "\n".join(f"* {line}" for line in lines))
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=tuple(SETS))
    parser.add_argument("--jsonl", type=Path, help="write one JSON line per map here")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rules", type=Path, nargs="+", help="score the rules on these JSON-lines files")
    args = parser.parse_args(argv)
    if args.rules:
        rows = [json.loads(line) for path in args.rules for line in path.read_text().splitlines() if line.strip()]
        print(f"{len(rows)} maps\n\n{score_rules(rows)}\n\nOn top of the caution:\n\n{score_rules_after_caution(rows)}")
        return 0
    if not (args.set and args.jsonl):
        parser.error("give --set and --jsonl, or --rules")
    cases = sorted(getattr(sigma_scenes_fresh, SETS[args.set]), key=lambda c: c[2])
    lines = []
    if args.workers > 1:
        from multiprocessing import Pool

        with Pool(args.workers) as pool:
            rows = pool.map(measure, cases)
    else:
        rows = [measure(case) for case in cases]
    for row in rows:
        lines.append(json.dumps(row))
        print(f"{row['label']:22s} {row['seed']} {row['size']}² ratio {row['ratio']:.3f} caution {row['caution_applied']}",
              flush=True)
    from xrfgpu._atomic import atomic_write_text

    atomic_write_text(args.jsonl, "\n".join(lines) + "\n")
    print(f"\n{score_rules(rows)}\n\nOn top of the caution:\n\n{score_rules_after_caution(rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
