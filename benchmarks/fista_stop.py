"""FISTA's iteration count against the truth: the fixed 25, the cross-validated count and the best count.

    python benchmarks/fista_stop.py --set tuning|tuning-more|held-out|held-out-first [--counts low] [--json F]

Each map (the frozen sets of :mod:`filter_weight`: ``tuning`` 24 maps, ``held-out`` 96 fresh maps,
``held-out-first`` the first σ set's 72 held-out maps; ``tuning-more`` the 24 tuning maps and every other one of
:data:`sigma_scenes.TUNING_MORE`, 120 maps, on which :data:`xrfgpu.stopping.FISTA_CV_DROP_TOLERANCE` was chosen) is restored by
:func:`xrfgpu.fista` with the true σ (a Gaussian PSF of ±3σ), the true background and its default λ, for 1 to
100 iterations. The score is the MSE to the unblurred scene over the raw map's, at 25 iterations (the
library's fixed default), at the count :func:`xrfgpu.stopping.fista_cv_iterations` chooses (the count
``xrfgpu.restore(..., method="fista")`` runs), and at the best count (an oracle that reads the truth).
``--counts low`` replaces the counts by 20/2. Prints one line per map, then median, 90th percentile and worst
of each score, and how many maps came out worse than the raw map.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sigma_scenes  # noqa: E402
from filter_weight import LOW_COUNTS, cases_of  # noqa: E402  (the same frozen sets)

import xrfgpu  # noqa: E402
from xrfgpu.psf import gaussian  # noqa: E402
from xrfgpu.stopping import fista_cv_iterations  # noqa: E402

MAX_ITER = 100


def score_case(case, make):
    """(label, at 25, at the CV count, best, CV count, best count) of one map."""
    counts, sigma, label, truth = make(case, return_scene=True)
    background = case[5]
    side = 2 * math.ceil(3 * sigma) + 1
    psf = gaussian((side, side), sigma)
    raw = float(np.mean((counts - background - truth) ** 2))
    errors = []
    xrfgpu.fista(counts, psf, background=background, num_iter=MAX_ITER,
                 callback=lambda it, x: errors.append(float(np.mean((np.asarray(x) - truth) ** 2)) / raw))
    count, _ = fista_cv_iterations(counts, psf, background=background, max_iter=MAX_ITER)
    best = int(np.argmin(errors))
    return label, errors[24], errors[count - 1], errors[best], count, best + 1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=("tuning", "tuning-more", "held-out", "held-out-first"), default="tuning")
    parser.add_argument("--counts", choices=("sets", "low"), default="sets")
    parser.add_argument("--json", help="write the rows and the summary here")
    args = parser.parse_args(argv)
    if args.set == "tuning-more":  # the 120 maps the stop's tolerance was chosen on
        cases, make = cases_of("tuning", args.counts)
        more = sigma_scenes.TUNING_MORE[::2]
        cases = cases + ([tuple(c[:4]) + LOW_COUNTS for c in more] if args.counts == "low" else more)
    else:
        cases, make = cases_of(args.set, args.counts)
    rows = []
    for case in cases:
        row = score_case(case, make)
        rows.append(row)
        print(f"{row[0]:18s} {case[2]:4d}² σ {case[3]:>4g} {case[4]:g}/{case[5]:g}: 25 it {row[1]:6.3f}  "
              f"CV {row[2]:6.3f} ({row[4]} it)  best {row[3]:6.3f} ({row[5]} it)", flush=True)
    summary = {}
    for k, name in ((1, "25 iterations"), (2, "cross-validated"), (3, "best count")):
        v = np.array([r[k] for r in rows])
        summary[name] = {"median": float(np.median(v)), "p90": float(np.percentile(v, 90)),
                         "worst": float(v.max()), "worse_than_raw": int(np.sum(v > 1)), "maps": len(v)}
        print(f"  {name:16s} median {np.median(v):.3f}  90th {np.percentile(v, 90):.3f}  worst {v.max():.3f}  "
              f"worse than raw {int(np.sum(v > 1))}/{len(v)}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "summary": summary, "set": args.set,
                                               "counts": args.counts}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
