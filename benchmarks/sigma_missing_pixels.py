"""σ from the map with lost scan lines: the nearest-measured fill against the largest clear rectangle.

Each map of a set from :mod:`sigma_scenes` loses three bands of scan lines (2 rows at 30 % of the height, 6
rows at 55 %, max(2, n/20) rows at 75 %) and 0.5 % dead pixels. σ is then read three ways, as the front
door reads it (:func:`xrfgpu.front_door._estimate_sigma`: effective counts of these count maps, background
0): on the complete map (the reference), on the whole map with the missing pixels filled by their nearest
measured pixel (the reading before ``front_door.sigma_region``), and as the front door reads it now (the
largest rectangle without wide holes, :func:`xrfgpu.front_door.sigma_region`). It prints one line per map
and the |error| median, 90th percentile and worst, over all maps and over those not flagged uncertain.

``--set tuning`` is ``TUNING_MORE[:48]`` (its first 10 maps chose ``WIDE_HOLE_PX``); ``--set other`` is
``TUNING_MORE[48:96]``, used for nothing else here.

Run::

    python benchmarks/sigma_missing_pixels.py --set other     # about 1 min on 2 cores
    python benchmarks/sigma_missing_pixels.py --set tuning
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sigma_scenes  # noqa: E402

from xrfgpu.front_door import _estimate_sigma, filled_for_estimators  # noqa: E402

SETS = {"tuning": sigma_scenes.TUNING_MORE[:48], "other": sigma_scenes.TUNING_MORE[48:96]}
READINGS = ("complete", "nearest fill, whole map", "largest clear rectangle")


def lost_lines(shape, seed):
    """Weights: 0 on three bands of lost rows and on 0.5 % dead pixels."""
    n = shape[0]
    w = np.ones(shape)
    for frac, height in ((0.3, 2), (0.55, 6), (0.75, max(2, n // 20))):
        r = int(frac * n)
        w[r:r + height, :] = 0.0
    w[np.random.default_rng(seed).random(shape) < 0.005] = 0.0
    return w


def run(cases):
    rows = []
    for case in cases:
        counts, truth, label = sigma_scenes.make_case(case)
        counts = counts.astype(np.float64)
        w = lost_lines(counts.shape, case[1])
        filled = filled_for_estimators(np.where(w > 0, counts, 0.0), w, xp=np)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            readings = (_estimate_sigma(counts, 0.0, strict=False), _estimate_sigma(filled, 0.0, strict=False),
                        _estimate_sigma(filled, 0.0, strict=False, weights=w))
        row = {"label": label, "size": counts.shape[0], "true_sigma": truth}
        for name, est in zip(READINGS, readings):
            row[name] = (est.sigma / truth - 1.0, bool(est.reliable))
        rows.append(row)
        print(f"{label:16s} {row['size']:4d}² σ {truth:5.2f}  " + "  |  ".join(
            f"{name} {row[name][0]:+.3f}{'' if row[name][1] else ' flagged'}" for name in READINGS), flush=True)
    return rows


def summary(rows):
    lines = ["| reading | all maps: median / 90th pct / worst | not flagged | not flagged: median / 90th / worst |",
             "|---|---|---|---|"]
    for name in READINGS:
        err = np.array([abs(r[name][0]) for r in rows])
        ok = np.array([r[name][1] for r in rows])
        kept = (f"{100 * np.median(err[ok]):.1f} / {100 * np.percentile(err[ok], 90):.1f} / {100 * err[ok].max():.1f} %"
                if ok.any() else "–")
        lines.append(f"| {name} | {100 * np.median(err):.1f} / {100 * np.percentile(err, 90):.1f} / "
                     f"{100 * err.max():.1f} % | {int(ok.sum())} of {len(rows)} | {kept} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=sorted(SETS), default="other")
    args = parser.parse_args(argv)
    print(summary(run(SETS[args.set])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
