"""Principled stop / σ rules tried for the issue's "G3E6 by default" on the paper's USAF chart (none adopted).

    python benchmarks/usaf_stop_rules.py [--seeds 5] [--scenes 18] [--grid]

Same chart and scan as ``usaf_front_door.py`` (full chart G2–G7, σ = 6.5 px,
77/137.5 counts, jitter and drift). σ_est and the background are the front
door's. For every seed, RL (accelerated) at σ_est × {1, 0.9} with:

* **cv**: the Poisson-thinning CV count (``stopping.cv_iterations``, the
  front door's rule);
* **1-SE**: the largest count after the CV minimum whose held-out deviance
  stays within one standard error of the minimum (the one-standard-error rule
  of Hastie, Tibshirani & Friedman, *Elements of Statistical Learning*
  §7.10, turned towards the sharper end): the sharpest restoration the
  held-out counts cannot tell from the best;
* **extrapolated**: CV counts on training fractions ½ and ¼, extrapolated
  log–log to the full counts (CV on half the counts is conservative);

and the held-out deviance at the CV count for σ_est × {0.8 … 1.2} (fixed
40-px margin), i.e. σ chosen by held-out likelihood. ``--scenes n`` also
runs the extrapolated count on the first ``n`` frozen σ scenes of at most
256² (MSE to the truth / raw MSE, as ``goal_scenes.py``). ``--grid`` instead
runs σ_est × {0.9, 0.8} at {2, 3, 4} × the CV count at that σ: how far
beyond the held-out optimum G3E6 lies.
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _cv_curve(counts, h, b, *, margin=None, max_iter=500, seed=0):
    """(CV count, its held-out deviance, 1-SE count) on a ½ thinning split."""
    from xrfgpu._problem import prepare
    from xrfgpu.richardson_lucy import richardson_lucy

    rng = np.random.default_rng(seed)
    first = rng.binomial(counts.astype(np.int64), 0.5).astype(np.float64)
    pb = prepare(counts - first, h, background=b * 0.5, iterative=True)
    rows, cols = counts.shape
    kr, kc = pb.psf.shape[-2:]
    mr, mc = margin or (min(kr // 2, rows // 4), min(kc // 2, cols // 4))
    st = {"best": math.inf, "k": 0, "map": None, "after": []}

    class _Done(Exception):
        pass

    def watch(i, est, _):
        mu = np.clip(pb.op.crop(pb.op.forward(pb.op.embed(est))) + pb.background, 1e-12, None)
        dev = (mu - pb.image * np.log(mu))[mr : rows - mr, mc : cols - mc]
        d = float(dev.sum())
        if st["map"] is not None:
            diff = dev - st["map"]
            st["after"].append((i, st["k"], d - st["best"], math.sqrt(diff.size * float(np.var(diff)))))
        if d < st["best"]:
            st["best"], st["k"], st["map"] = d, i, dev.copy()
        elif i - st["k"] >= max(30, st["k"]):
            raise _Done

    try:
        richardson_lucy(first, h, num_iter=max_iter, background=b * 0.5, accelerate=True, callback=watch)
    except _Done:
        pass
    k_se = st["k"]
    for i, ref, excess, se in st["after"]:
        if ref != st["k"] or i <= st["k"]:
            continue
        if i == k_se + 1 and excess <= se:
            k_se = i
        elif i > k_se:
            break
    return st["k"], st["best"], k_se


def _extrapolated(counts, h, b):
    from xrfgpu.stopping import cv_iterations

    k2 = cv_iterations(counts, h, background=b, holdout=0.5)
    k4 = cv_iterations(counts, h, background=b, holdout=0.75)
    slope = min(max(math.log(max(k2, 1) / max(k4, 1)) / math.log(2.0), 0.0), 2.0)
    return int(round(k2 * 2.0**slope))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--scenes", type=int, default=0)
    parser.add_argument("--grid", action="store_true")
    args = parser.parse_args(argv)
    import xrfgpu
    from usaf_front_door import _read
    from xrfgpu import psf, simulate, usaf
    from xrfgpu.demo import PIXEL_SIZE_UM, SIZES, TRUE_SIGMA_UM
    from xrfgpu.front_door import _psf_for
    from xrfgpu.richardson_lucy import richardson_lucy

    chart = usaf.chart(PIXEL_SIZE_UM, groups=SIZES["full"])
    for seed in range(args.seeds):
        counts = simulate.scan(chart.image, psf.gaussian(None, TRUE_SIGMA_UM / PIXEL_SIZE_UM), seed=seed)
        counts = np.asarray(counts, dtype=np.float64)
        _, info = xrfgpu.restore(counts, goal="fidelity", return_info=True)
        s, b = info["sigma"], info["background"]
        if args.grid:
            from xrfgpu.stopping import cv_iterations

            for scale in (0.9, 0.8):
                h = _psf_for(s * scale, counts, xp=np)
                k_cv = cv_iterations(counts, h, background=b)
                for times in (2, 3, 4):
                    r = _read(richardson_lucy(counts, h, num_iter=k_cv * times, background=b, accelerate=True),
                              chart)
                    print(f"seed {seed} σ_est {s:.2f} × {scale:g} {times} × CV ({k_cv}) 10%-dip {r['dip10']} "
                          f"3-noise {r['z3']} MSE {r['mse']:.4f}", flush=True)
            continue
        for scale in (1.0, 0.9):
            h = _psf_for(s * scale, counts, xp=np)
            k_cv, _, k_se = _cv_curve(counts, h, b)
            for name, k in (("cv", k_cv), ("1-SE", k_se), ("extrapolated", _extrapolated(counts, h, b))):
                r = _read(richardson_lucy(counts, h, num_iter=k, background=b, accelerate=True), chart)
                print(f"seed {seed} σ_est {s:.2f} × {scale:g} {name:12s} k={k:3d} 10%-dip {r['dip10']} "
                      f"3-noise {r['z3']} MSE {r['mse']:.4f}", flush=True)
        line = f"seed {seed} held-out deviance at the CV count, relative to σ_est × 1:"
        ref = None
        for scale in (1.0, 0.8, 0.9, 1.1, 1.2):
            k, d, _ = _cv_curve(counts, _psf_for(s * scale, counts, xp=np), b, margin=(40, 40))
            ref = d if ref is None else ref
            line += f" σ×{scale:g}: {d - ref:+.0f} (k={k})"
        print(line, flush=True)

    if args.scenes and not args.grid:
        import sigma_scenes

        ratios = {"fidelity": [], "extrapolated σ×1": [], "extrapolated σ×0.9": []}
        for case in [c for c in sigma_scenes.HELD_OUT if c[2] <= 256][: args.scenes]:
            counts, truth_sigma, label, scene = sigma_scenes.make_case(case, return_scene=True)
            counts = np.asarray(counts, dtype=np.float64)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out, info = xrfgpu.restore(counts, goal="fidelity", return_info=True)
            s, b = info["sigma"], info["background"]
            raw = float(np.mean((counts - case[5] - scene) ** 2))
            ratios["fidelity"].append(float(np.mean((out + b - case[5] - scene) ** 2)) / raw)
            line = f"{label:16s} σ={truth_sigma:5.2f} {case[4]:g}/{case[5]:g} fidelity {ratios['fidelity'][-1]:.2f}"
            for scale in (1.0, 0.9):
                h = _psf_for(s * scale, counts, xp=np)
                k = _extrapolated(counts, h, b)
                o = richardson_lucy(counts, h, num_iter=k, background=b, accelerate=True)
                ratios[f"extrapolated σ×{scale:g}"].append(float(np.mean((o + b - case[5] - scene) ** 2)) / raw)
                line += f" | extrapolated σ×{scale:g} k={k} {ratios[f'extrapolated σ×{scale:g}'][-1]:.2f}"
            print(line, flush=True)
        from goal_scenes import mse_ratio_summary

        for name, r in ratios.items():
            print(f"{name}: {mse_ratio_summary(r)}, at or below fidelity on "
                  f"{np.sum(np.array(r) <= np.array(ratios['fidelity']))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
