"""``restore(map)`` by goal on the frozen σ scenes (not the chart): MSE to the truth against the raw map.

    python benchmarks/goal_scenes.py [--n 18]

For the first ``n`` held-out cases of :mod:`sigma_scenes` with maps of at
most 256²: the raw map minus its background, ``restore(counts,
goal="fidelity")`` and ``restore(counts, goal="resolution")``, each compared
with the unblurred scene (counts above background) by MSE and by the 99th
percentile of the gradient magnitude (edge steepness; the truth's is given
for scale). Prints one line per map and the medians.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sigma_scenes  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=18)
    args = parser.parse_args(argv)
    import xrfgpu

    cases = [c for c in sigma_scenes.HELD_OUT if c[2] <= 256][: args.n]
    ratios = {"fidelity": [], "resolution": []}
    for case in cases:
        counts, truth_sigma, label, scene = sigma_scenes.make_case(case, return_scene=True)

        def edge(a):
            return float(np.quantile(np.hypot(*np.gradient(a)), 0.99))

        line = [f"{label:16s} {case[2]}² σ={truth_sigma:5.2f} counts {case[4]:g}/{case[5]:g}"]
        # compared with the true background added back to the restoration's own: the automatic background is
        # the map's low level, which on scenes with no element-free area is not the simulated one
        raw = counts - case[5]
        raw_mse = float(np.mean((raw - scene) ** 2))
        line.append(f"raw MSE {raw_mse:9.1f} edge {edge(raw):6.1f} (truth {edge(scene):6.1f})")
        for goal in ("fidelity", "resolution"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out, info = xrfgpu.restore(counts, goal=goal, return_info=True)
            mse = float(np.mean((out + info["background"] - case[5] - scene) ** 2))
            ratios[goal].append(mse / raw_mse)
            line.append(f"{goal} MSE {mse:9.1f} ({mse / raw_mse:.2f} raw) edge {edge(out):6.1f} "
                        f"k={info['iterations']} σ={info['sigma']:.2f}")
        print(" | ".join(line), flush=True)
    for goal, r in ratios.items():
        print(f"{goal}: {mse_ratio_summary(r)}")
    return 0


def mse_ratio_summary(ratios):
    """``MSE / raw MSE median …, max …, below raw on k of n`` for the per-scene ratios (the goal benchmarks' line)."""
    r = np.asarray(ratios, dtype=float)
    return f"MSE / raw MSE median {np.median(r):.2f}, max {r.max():.2f}, below raw on {np.sum(r < 1)} of {r.size}"


if __name__ == "__main__":
    sys.exit(main())
