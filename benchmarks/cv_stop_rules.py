"""Cross-validated stop rules against the truth: how far each leaves RL from its best count by MSE.

    python benchmarks/cv_stop_rules.py --cases tuning --n 60                        # the scenes' own counts
    python benchmarks/cv_stop_rules.py --cases tuning --n 40 --counts 20000 200    # signal / background
    python benchmarks/cv_stop_rules.py --cases tuning --n 40 --counts 100000 1000
    python benchmarks/cv_stop_rules.py --cases held-out [--counts ...]              # measured once

For the frozen σ scenes of :mod:`sigma_scenes` (maps ≤ 256²; ``tuning`` =
``TUNING_EXTENDED``, ``held-out`` = ``HELD_OUT``), optionally re-noised at
other counts: the Poisson-thinning split of :func:`xrfgpu.stopping.cv_iterations`
(seed 0, half held out), RL on the training half with the held-out deviance
``Σ μ − y log μ`` recorded at every iteration, both as the float32 sum used
before commit 54fa74d and in float64; and RL on all the counts with its MSE
to the unblurred scene (counts above background, 8 px or 2σ from the
borders) at every iteration up to 500. Every RL uses the true σ. Rules, each
reported as MSE at its count / the best MSE of any count (median, 90th
percentile, worst):

* ``float32 lowest`` — the lowest float32 sum (the stop before 54fa74d);
* ``float64 lowest`` — the lowest float64 deviance (``drop_tolerance=0``);
* ``within ε of the fall`` — the first count whose deviance lies within
  ``ε · (D₁ − D_min)`` of the lowest (``drop_tolerance=ε``; the library's
  default is :data:`xrfgpu.stopping.CV_DROP_TOLERANCE`).

The patience of the library (stop once ``max(10, k/2)`` iterations have not
improved) applies to all. Each map also checks that the library's
``cv_iterations`` returns the rule's count (the same split, the same curve).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sigma_scenes  # noqa: E402

from xrfgpu import richardson_lucy  # noqa: E402
from xrfgpu._problem import prepare  # noqa: E402
from xrfgpu.psf._gaussian import gaussian_for_map  # noqa: E402
from xrfgpu.stopping import CV_DROP_TOLERANCE, cv_iterations, split_counts  # noqa: E402

MAX_ITER = 500
TOLERANCES = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3)


def curves(counts, sigma, background, scene):
    """(float32 deviance sums, float64 deviances, full-count MSE) per iteration, as lists."""
    y = np.asarray(counts, dtype=np.float32)
    h = gaussian_for_map(sigma, y.shape)
    train, held = split_counts(y, fraction=0.5, seed=0)
    pb = prepare(held, h, background=background * 0.5, iterative=True)
    kr, kc = pb.psf.shape[-2:]
    rows, cols = y.shape
    mr, mc = min(kr // 2, rows // 4), min(kc // 2, cols // 4)
    inner = (slice(mr, rows - mr), slice(mc, cols - mc))
    held64 = np.asarray(pb.image, dtype=np.float64)[inner]
    d32, d64 = [], []

    def deviance(iteration, estimate, divergence):
        mu = np.clip(pb.op.crop(pb.op.forward(pb.op.embed(estimate))) + pb.background, 1e-12, None)
        d32.append(float(np.sum((mu - pb.image * np.log(mu))[inner])))
        mu64 = mu[inner].astype(np.float64)
        d64.append(float(np.sum(mu64 - held64 * np.log(mu64))))

    richardson_lucy(train, h, num_iter=MAX_ITER, background=background * 0.5, accelerate=True, callback=deviance)
    m = int(max(8, 2 * sigma))
    mse = []

    def error(iteration, estimate, divergence):
        e = np.asarray(estimate, dtype=np.float64)
        mse.append(float(np.mean((e[m:-m, m:-m] - scene[m:-m, m:-m]) ** 2)))

    richardson_lucy(y, h, num_iter=MAX_ITER, background=background, accelerate=True, callback=error)
    return d32, d64, mse


def stop(curve, tolerance=0.0):
    """The library's rule on a whole curve: patience, then the first count within ``tolerance`` of the fall."""
    best, k_best, last = np.inf, 0, len(curve)
    for k, d in enumerate(curve, start=1):
        if d < best:
            best, k_best = d, k
        elif k - k_best >= max(10, k_best // 2):
            last = k
            break
    seen = np.asarray(curve[:last])
    allowed = seen.min() + tolerance * (seen[0] - seen.min())
    return int(np.flatnonzero(seen <= allowed)[0]) + 1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", choices=("tuning", "held-out"), default="tuning")
    parser.add_argument("--n", type=int, default=60, help="first n maps of at most 256²")
    parser.add_argument("--counts", type=float, nargs=2, metavar=("SIGNAL", "BACKGROUND"),
                        help="re-noise every scene at these counts (default: the scenes' own)")
    args = parser.parse_args(argv)
    cases = sigma_scenes.TUNING_EXTENDED if args.cases == "tuning" else sigma_scenes.HELD_OUT
    cases = [c for c in cases if c[2] <= 256][: args.n]
    if args.counts:
        cases = [c[:4] + tuple(args.counts) for c in cases]
    rules = [("float32 lowest", "d32", 0.0), ("float64 lowest", "d64", 0.0)]
    rules += [(f"within {t:g} of the fall", "d64", t) for t in TOLERANCES]
    ratios = {name: [] for name, _, _ in rules + [("best", None, None)]}
    counts_used = {name: [] for name in ratios}
    mismatches = 0
    for case in cases:
        t0 = time.perf_counter()
        counts, sigma, label, scene = sigma_scenes.make_case(case, return_scene=True)
        d32, d64, mse = curves(counts, sigma, case[5], scene)
        mse = np.asarray(mse)
        line = [f"{label:16s} {case[2]}² σ={sigma:5.2f} counts {case[4]:g}/{case[5]:g}"]
        for name, key, tol in rules:
            k = stop(d32 if key == "d32" else d64, tol)
            ratios[name].append(mse[k - 1] / mse.min())
            counts_used[name].append(k)
            line.append(f"{k}")
        ratios["best"].append(1.0)
        counts_used["best"].append(int(np.argmin(mse)) + 1)
        library = cv_iterations(np.asarray(counts, dtype=np.float32), gaussian_for_map(sigma, counts.shape),
                                background=case[5], max_iter=MAX_ITER)
        expected = stop(d64, CV_DROP_TOLERANCE)
        mismatches += library != expected
        line.append(f"best {counts_used['best'][-1]} | library {library}{'' if library == expected else ' (!)'}"
                    f" | {time.perf_counter() - t0:.1f} s")
        print(" ".join(line), flush=True)
    print(f"\n{len(cases)} maps ({args.cases}, counts {'own' if not args.counts else '%g/%g' % tuple(args.counts)});"
          f" library's cv_iterations differs from its rule on {mismatches}")
    print("| rule | MSE / best MSE: median | 90th pct | worst | mean | count (median) |")
    print("|---|---|---|---|---|---|")
    for name in ratios:
        r = np.asarray(ratios[name])
        print(f"| {name} | {np.median(r):.3f} | {np.quantile(r, 0.9):.3f} | {r.max():.3f} | {r.mean():.3f} | "
              f"{np.median(counts_used[name]):.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
