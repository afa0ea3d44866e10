"""Why the goal leaves a given σ alone: the resolution goal's factors applied to the *true* σ.

    python benchmarks/goal_given_sigma.py [--seeds 5] [--n 18]

``restore(map)`` applies ``goal="resolution"`` (0.9 × σ, twice the CV count at
that σ) to the σ it estimates. This asks what each factor does to a σ the
user gives, here the true σ, with the CV count found by
:func:`xrfgpu.stopping.cv_iterations` at the σ used (the front door's rule):

* ``σ, CV``: the true σ and its CV count (what a given σ gets);
* ``σ, 2 CV``: the true σ, twice its CV count (the count factor alone);
* ``0.9 σ, 2 CV``: the pair, 0.9 × the true σ, twice the CV count at it.

On the paper's USAF chart (as ``usaf_front_door.py``: full chart, σ = 6.5 px,
77/137.5 counts, jitter and drift) each is read by the 10 % dip and by three
noise spreads, with the normalised MSE; on the first ``n`` frozen σ scenes of
at most 256² (as ``goal_scenes.py``) the MSE to the scene over the raw MSE.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sigma_scenes  # noqa: E402
from goal_scenes import mse_ratio_summary  # noqa: E402
from usaf_front_door import _read  # noqa: E402

VARIANTS = {"σ, CV": (1.0, 1.0), "σ, 2 CV": (1.0, 2.0), "0.9 σ, 2 CV": (0.9, 2.0)}


def _run(counts, sigma, sigma_scale, count_scale):
    import xrfgpu
    from xrfgpu.background import estimate_background
    from xrfgpu.psf import gaussian_for_map
    from xrfgpu.stopping import cv_iterations

    s = sigma * sigma_scale
    b = estimate_background(counts)
    k = cv_iterations(counts, gaussian_for_map(s, counts.shape, dtype=counts.dtype), background=b)
    n = int(round(k * count_scale))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out, info = xrfgpu.restore(counts, sigma=s, num_iter=n, background=b, return_info=True)
    return out, info, n


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--n", type=int, default=18)
    args = parser.parse_args(argv)
    from xrfgpu import psf, simulate, usaf
    from xrfgpu.demo import PIXEL_SIZE_UM, SIZES, TRUE_SIGMA_UM

    chart = usaf.chart(PIXEL_SIZE_UM, groups=SIZES["full"])
    sigma = TRUE_SIGMA_UM / PIXEL_SIZE_UM
    table = {name: [] for name in VARIANTS}
    for seed in range(args.seeds):
        counts = simulate.scan(chart.image, psf.gaussian(None, sigma), seed=seed)
        for name, (ss, ks) in VARIANTS.items():
            out, _, n = _run(counts, sigma, ss, ks)
            r = _read(out, chart)
            table[name].append(r)
            print(f"chart seed {seed} {name:12s} k={n:4d} 10%-dip {r['dip10']:5s} 3-noise {r['z3']:5s} "
                  f"MSE {r['mse']:.4f}", flush=True)
    for name, rs in table.items():
        lp = np.array([r["dip10_lp"] or 0.0 for r in rs])
        i = int(np.argsort(lp)[len(lp) // 2])
        print(f"chart {name}: 10 % dip median {rs[i]['dip10']} (seeds {', '.join(r['dip10'] for r in rs)}), "
              f"3 noise spreads {', '.join(r['z3'] for r in rs)}, MSE mean {np.mean([r['mse'] for r in rs]):.4f}")

    cases = [c for c in sigma_scenes.HELD_OUT if c[2] <= 256][: args.n]
    ratios = {name: [] for name in VARIANTS}
    for case in cases:
        counts, truth_sigma, label, scene = sigma_scenes.make_case(case, return_scene=True)
        raw_mse = float(np.mean((counts - case[5] - scene) ** 2))
        line = [f"{label:16s} {case[2]}² σ={truth_sigma:5.2f}"]
        for name, (ss, ks) in VARIANTS.items():
            out, info, n = _run(counts, truth_sigma, ss, ks)
            ratio = float(np.mean((out + info["background"] - case[5] - scene) ** 2)) / raw_mse
            ratios[name].append(ratio)
            line.append(f"{name} {ratio:.2f} raw (k={n})")
        print(" | ".join(line), flush=True)
    for name, r in ratios.items():
        print(f"scenes {name}: {mse_ratio_summary(r)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
