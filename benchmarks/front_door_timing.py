"""End-to-end time of ``restore(map)`` (automatic: background, σ, CV-stopped RL) at 512² and 1024².

    python benchmarks/front_door_timing.py [--repeats 3] [--goal resolution|fidelity]

Maps: the frozen Voronoi-with-veins family of :mod:`sigma_scenes` at σ = 4 px,
the paper's counts (77 signal / 137.5 background). Prints the total and the
stage times from ``info["seconds"]`` for each repeat (the first includes
imports and FFT plans). Without ``--goal`` the library's default goal.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sigma_scenes  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--goal", choices=("resolution", "fidelity"), default=None)
    args = parser.parse_args(argv)
    import xrfgpu
    from xrfgpu.stopping import _LAST_SPLIT

    for size in (512, 1024):
        counts, sigma, label = sigma_scenes.make_case(("voronoi", 7, size, 4.0, 77.0, 137.5))
        for r in range(args.repeats):
            _LAST_SPLIT.clear()  # a repeat must draw its own binomial split (xrfgpu.stopping's memo)
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _, info = xrfgpu.restore(counts, return_info=True, **({"goal": args.goal} if args.goal else {}))
            total = time.perf_counter() - t0
            stages = ", ".join(f"{k} {v:.2f}" for k, v in info["seconds"].items())
            print(f"{size}² goal {info['goal']}: {total:.2f} s (σ {info['sigma']:.2f} of {sigma:g}, "
                  f"{info['iterations']} iterations, CV count {info.get('cv_iterations')}; "
                  f"{stages})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
