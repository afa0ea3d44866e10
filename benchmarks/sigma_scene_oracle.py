"""How much of the spectral σ error is the scene model? σ fitted with the true scene's own spectrum (an oracle).

    python benchmarks/sigma_scene_oracle.py [--set tuning|tuning-extended|tuning-more] [--csv FILE]

A diagnostic for the spectral stage of ``xrfgpu.psf.estimate_sigma``, on the
tuning sets of :mod:`sigma_scenes` only (the held-out set is refused: it is for
measuring the estimator, not for studying it). For every map the unblurred
scene under it is known; its Hann-windowed ring spectrum S(k) (the same
windowing and rings as the estimator, ``blind_sigma._ring_spectrum``) replaces
the estimator's power-law scene model, and σ is the profile Whittle likelihood
minimum of A S(k) exp(−4π²σ²k²) + N over 121 log-spaced σ from 0.4 px to
min(40, side/4) px, A and N refitted at every σ.

This oracle knows the realised scene spectrum (its law *and* its random
fluctuations), which no estimator from the map alone can, so its error is a
lower bound of what any better smooth scene law could reach, not a target.
What is left is the noise, the few informative rings of small or heavily
blurred maps, and the scenes' own blur (photographs; for the HXN maps the
truth already includes their 1.2 px). Prints one line per family and size:
median / 90th percentile / worst |error| of the oracle.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sigma_scenes  # noqa: E402


def oracle_sigma(counts, scene, *, points=121):
    """σ (px) and its 95 % profile interval with the scene's own windowed ring spectrum as the scene law."""
    from scipy import optimize

    from xrfgpu.psf.blind_sigma import _ring_spectrum

    # the same rings for both: the noise-free scene's sharp axis-aligned bars would read as scan stripes
    k2, power, weight = _ring_spectrum(counts, leave_out_stripes=False)
    _, shape0, _ = _ring_spectrum(scene, leave_out_stripes=False)
    power = power / float(np.median(power))
    shape0 = shape0 / shape0[0]
    largest = max(2.0, min(40.0, min(counts.shape) / 4.0))
    grid = np.geomspace(0.4, largest, points)
    profile = np.empty(grid.size)
    for i, s in enumerate(grid):
        shape = shape0 * np.exp(-4.0 * math.pi**2 * s * s * k2)

        def nll(t, shape=shape):
            a = math.exp(min(max(t[0], -60.0), 60.0))
            n = math.exp(min(max(t[1], -60.0), 60.0))
            p = a * shape + n
            ratio = power / p
            dp = weight * (1.0 - ratio) / p
            return float(np.sum(weight * (np.log(p) + ratio))), np.array([float(np.sum(dp * shape)) * a,
                                                                            float(np.sum(dp)) * n])

        start = [math.log(float(power[0])), math.log(float(np.median(power[-20:])))]
        profile[i] = optimize.minimize(nll, start, jac=True, method="BFGS").fun
    inside = grid[profile <= profile.min() + 1.92]
    return float(grid[int(np.argmin(profile))]), (float(inside.min()), float(inside.max()))


def _one(case):
    counts, truth, label, scene = sigma_scenes.make_case(case, return_scene=True)
    sigma, interval = oracle_sigma(counts, scene)
    return dict(family=case[0], label=label, seed=case[1], size=case[2], true_sigma=truth, oracle_sigma=sigma,
                error=sigma / truth - 1.0, lo=interval[0], hi=interval[1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=("tuning", "tuning-extended", "tuning-more"), default="tuning-extended")
    parser.add_argument("--csv", type=Path)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    cases = {"tuning": sigma_scenes.TUNING, "tuning-extended": sigma_scenes.TUNING_EXTENDED,
             "tuning-more": sigma_scenes.TUNING_MORE}[args.set]
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(args.workers) as pool:
        rows = list(pool.map(_one, cases, chunksize=4))

    def line(name, subset):
        err = np.abs([r["error"] for r in subset])
        return (f"{name:18s} n={len(subset):3d}  median {100 * np.median(err):5.1f} %  90th pct "
                f"{100 * np.quantile(err, 0.9):5.1f} %  worst {100 * err.max():5.1f} %")

    print(line("all", rows))
    for fam in sigma_scenes.FAMILIES + sigma_scenes.TUNING_FAMILIES:
        subset = [r for r in rows if r["family"] == fam]
        if subset:
            print(line(f"family {fam}", subset))
    for size in sigma_scenes.SIZES:
        print(line(f"{size}² maps", [r for r in rows if r["size"] == size]))
    if args.csv:
        from bench_sigma_generalisation import write_rows_csv

        write_rows_csv(args.csv, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
