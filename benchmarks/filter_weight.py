"""Wiener and Tikhonov weights against the truth: the fixed 0.01, ``"auto"`` and the best on a grid.

    python benchmarks/filter_weight.py --set tuning  [--counts low] [--method wiener|tikhonov] [--json F]
    python benchmarks/filter_weight.py --set held-out [--counts low] ...
    python benchmarks/filter_weight.py --timing

Each map is restored with the true σ (a Gaussian PSF of ±3σ), the true background and three weights:
the former fixed default 0.01, ``"auto"`` (:func:`xrfgpu.filter_weight.discrepancy_weight`) and the
best of 41 weights from 1e-7 to 1e3 (an oracle, for scale: it reads the truth). The score is the MSE to the
unblurred scene (counts above background) over the MSE of the raw map minus its background: below 1 the
filter helped, above 1 it made the map worse than doing nothing.

Sets (frozen, built by their modules; the weight rule's one setting, the band's edge, was chosen on
``tuning`` alone):

* ``tuning``: :data:`sigma_scenes.TUNING` (24 maps: Voronoi, scikit-image, ellipses, bars, random fields, HXN);
* ``held-out``: :data:`sigma_scenes_fresh.FRESH_HELD_OUT` (96 maps, eight families nobody tuned a filter on).

``--timing`` instead times, in one run, the weight's choice and a Wiener call with ``"auto"`` and with a weight
given on grains-and-veins phantoms of 256², 512² and 1024² (σ 3 px, float32; best of 7 each).

``--counts low`` replaces each case's counts by 20/2 (signal/background), the low counts where the fixed
weights had been measured worse than the raw map. Prints one line per map, then the median, 90th percentile
and worst of each score and how many maps came out worse than raw, and the median time of the ``"auto"``
choice per map (the filter itself excluded).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sigma_scenes  # noqa: E402
import sigma_scenes_fresh  # noqa: E402

from xrfgpu.filter_weight import discrepancy_weight  # noqa: E402
from xrfgpu.psf import gaussian  # noqa: E402
from xrfgpu.wiener import filter_problem, regularized_inverse  # noqa: E402

GRID = np.logspace(-7, 3, 41)
LOW_COUNTS = (20.0, 2.0)


def cases_of(name, counts):
    """The frozen case list ``name`` and its ``make_case``, the counts replaced by 20/2 when ``counts == "low"``."""
    if name == "tuning":
        cases, make = sigma_scenes.TUNING, sigma_scenes.make_case
    elif name == "held-out-first":  # the first σ set's held-out maps (six families; never used for a filter)
        cases, make = sigma_scenes.HELD_OUT, sigma_scenes.make_case
    else:
        cases, make = sigma_scenes_fresh.FRESH_HELD_OUT, sigma_scenes_fresh.make_case
    if counts == "low":
        cases = [tuple(c[:4]) + LOW_COUNTS for c in cases]
    return cases, make


def score_case(case, make, order):
    """Scores of one map: (label, former default, auto, oracle, auto's weight, oracle's weight, auto's seconds)."""
    counts, sigma, label, truth = make(case, return_scene=True)
    background = case[5]
    side = 2 * math.ceil(3 * sigma) + 1
    psf = gaussian((side, side), sigma)
    pb = filter_problem(counts, psf, background=background, boundary="reflect", pad=None, mask=None)
    raw = float(np.mean((counts - background - truth) ** 2))

    def score(weight):
        return float(np.mean((regularized_inverse(pb, float(weight), order) - truth) ** 2)) / raw

    clock = time.perf_counter()
    chosen = discrepancy_weight(pb, order)[0]
    seconds = time.perf_counter() - clock
    grid = [score(w) for w in GRID]
    best = int(np.argmin(grid))
    return label, score(0.01), score(chosen.weight), grid[best], chosen.weight, float(GRID[best]), seconds


def summary(rows):
    """Median, 90th percentile, worst and the count above 1 of each score."""
    out = {}
    for k, name in ((1, "fixed 0.01"), (2, "auto"), (3, "best on the grid")):
        v = np.array([r[k] for r in rows])
        out[name] = {"median": float(np.median(v)), "p90": float(np.percentile(v, 90)), "worst": float(v.max()),
                     "worse_than_raw": int(np.sum(v > 1)), "maps": len(v)}
    out["auto seconds (median)"] = float(np.median([r[6] for r in rows]))
    return out


def timing(sides=(256, 512, 1024), repeats=7):
    """Seconds (best of ``repeats``) of the choice alone, of ``wiener(..., balance="auto")`` and of ``wiener`` with
    a weight given, per map side; printed and returned as a dict."""
    from xrfgpu import phantom, wiener

    def best(call):
        times = []
        for _ in range(repeats):
            clock = time.perf_counter()
            call()
            times.append(time.perf_counter() - clock)
        return min(times)

    out = {}
    for side in sides:
        counts, _, psf = phantom.observe((side, side), 3.0, seed=0)
        counts = np.asarray(counts, np.float32)
        pb = filter_problem(counts, psf, background=100.0, boundary="reflect", pad=None, mask=None)
        out[side] = {"choice": best(lambda: discrepancy_weight(pb, 2)),
                     "wiener_auto": best(lambda: wiener(counts, psf, background=100.0)),
                     "wiener_given": best(lambda: wiener(counts, psf, background=100.0, balance=0.01))}
        print(f"{side}²: choice {out[side]['choice'] * 1e3:.1f} ms, Wiener with auto "
              f"{out[side]['wiener_auto'] * 1e3:.1f} ms, with a weight given {out[side]['wiener_given'] * 1e3:.1f} ms")
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=("tuning", "held-out", "held-out-first"), default="tuning")
    parser.add_argument("--counts", choices=("sets", "low"), default="sets")
    parser.add_argument("--method", choices=("wiener", "tikhonov"), default="wiener")
    parser.add_argument("--json", help="write the rows and the summary here")
    parser.add_argument("--timing", action="store_true", help="time the choice at 256², 512², 1024² instead")
    args = parser.parse_args(argv)
    if args.timing:
        timing()
        return 0
    order = 2 if args.method == "wiener" else 0  # Wiener's Laplacian penalty, Tikhonov's identity (the defaults)
    cases, make = cases_of(args.set, args.counts)
    rows = []
    for case in cases:
        row = score_case(case, make, order)
        rows.append(row)
        print(f"{row[0]:18s} {case[2]:4d}² σ {case[3]:>4g} {case[4]:g}/{case[5]:g}: fixed {row[1]:6.3f}  "
              f"auto {row[2]:6.3f} (λ {row[4]:.2g})  best {row[3]:6.3f} (λ {row[5]:.2g})", flush=True)
    result = summary(rows)
    print(f"{args.method}, {args.set}, counts {args.counts}: MSE / raw map's MSE")
    for name, s in result.items():
        if isinstance(s, dict):
            print(f"  {name:17s} median {s['median']:.3f}  90th {s['p90']:.3f}  worst {s['worst']:.3f}  "
                  f"worse than raw {s['worse_than_raw']}/{s['maps']}")
    print(f"  auto's choice: {result['auto seconds (median)'] * 1e3:.0f} ms per map (median)")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "summary": result, "set": args.set,
                                               "counts": args.counts, "method": args.method}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
