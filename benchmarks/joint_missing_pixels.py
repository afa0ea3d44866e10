"""Joint restoration with missing pixels on the simulated skarn: lost scan lines, against independent RL.

Real scans lose pixels: a beam dump or a shutter fault loses whole scan lines in every element map at
once, and a failed spectrum fit leaves NaN in one element's map only. This script takes the benchmark
skarn (:mod:`skarn`: Si σ 16 px and fewest counts, Ca σ 10 px, Fe σ 8 px) and removes

* ``shared``: three bands of scan lines (rows), 2, 6 and 12 px high, in all three maps, plus 0.5 % dead
  pixels scattered at random;
* ``si-only``: the same bands in the Si map only (Ca and Fe complete);

then restores the maps independently (the front door per map, :func:`xrfgpu.restore` with the true σ,
the background and ``mask=``: RL with the missing pixels left out, stopped by cross-validation) and
jointly (``restore_stack(..., joint=True, mask=...)``, every choice automatic). It prints, per element,
the interior MSE against the truth (32 px from the borders) and the MSE inside the lost bands (interior
columns), both as the ratio joint / independent, and the same ratios of the complete maps' restorations,
to show what the holes cost each method.

The hole filling rule (``xrfgpu.joint.MISSING_SHARE_FLOOR``) was chosen on a 64² two-disk scene
(``tests/test_joint_missing_pixels.py``'s kind); the skarn seeds here were not used to choose anything.

Run::

    python benchmarks/joint_missing_pixels.py --seeds 30 31 32 --json benchmarks/joint_missing_pixels.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import skarn  # noqa: E402

from xrfgpu import restore  # noqa: E402
from xrfgpu.stack import restore_stack  # noqa: E402

#: (first row, height) of the lost bands of scan lines
BANDS = ((90, 2), (150, 6), (200, 12))
DEAD_FRACTION = 0.005
MARGIN = 32


def lost_pixels(kind, seed):
    """Weights (3, SIZE, SIZE): 0 on the lost bands (all maps, or Si only) and on random dead pixels."""
    n = skarn.SIZE
    weights = np.ones((3, n, n))
    rows = np.zeros(n, dtype=bool)
    for first, height in BANDS:
        rows[first:first + height] = True
    targets = range(3) if kind == "shared" else (0,)
    for k in targets:
        weights[k, rows, :] = 0.0
    if kind == "shared":
        dead = np.random.default_rng(1000 + seed).random((n, n)) < DEAD_FRACTION
        weights[:, dead] = 0.0
    return weights, rows


_COMPLETE = {}  # seed -> (restored maps, seconds, weights): the complete maps' restorations, made once per seed


def evaluate(seed, kind):
    counts, truths, psfs, bgs, _ = skarn.observe(seed)
    weights, rows = lost_pixels(kind, seed)
    band = np.zeros(counts.shape[1:], dtype=bool)
    band[rows, MARGIN:-MARGIN] = True
    interior = (slice(MARGIN, -MARGIN), slice(MARGIN, -MARGIN))
    result = {"seed": seed, "kind": kind, "missing_pixels": [int((w == 0).sum()) for w in weights]}
    restored = {}
    for label, mask in (("complete", None), ("holes", weights)):
        if label == "complete" and seed in _COMPLETE:
            restored[label], result[f"seconds_{label}"], result[f"weights_{label}"] = _COMPLETE[seed]
            continue
        t0 = time.perf_counter()
        alone = []
        for k, el in enumerate(skarn.ELEMENTS):
            mk = None if mask is None or np.all(mask[k] == 1) else mask[k]
            alone.append(np.asarray(restore(counts[k], method="rl", sigma=skarn.SIGMA_PX[el], background=bgs[k],
                                            mask=mk)))
        t_alone = time.perf_counter() - t0
        t0 = time.perf_counter()
        joint, info = restore_stack(counts, psfs, "rl", joint=True, background=bgs, mask=mask, return_info=True)
        t_joint = time.perf_counter() - t0
        restored[label] = (np.stack(alone), np.asarray(joint))
        result[f"seconds_{label}"] = {"independent": round(t_alone, 1), "joint": round(t_joint, 1)}
        result[f"weights_{label}"] = [info["per_map"][k]["weight"] for k in range(3)]
        if label == "complete":
            _COMPLETE[seed] = (restored[label], result[f"seconds_{label}"], result[f"weights_{label}"])
    for k, el in enumerate(skarn.ELEMENTS):
        row = {}
        for label, (alone, joint) in restored.items():
            ea = (alone[k] - truths[k]) ** 2
            ej = (joint[k] - truths[k]) ** 2
            row[f"{label}_mse_independent"] = float(ea[interior].mean())
            row[f"{label}_mse_joint"] = float(ej[interior].mean())
            row[f"{label}_ratio"] = row[f"{label}_mse_joint"] / row[f"{label}_mse_independent"]
            row[f"{label}_band_mse_independent"] = float(ea[band].mean())
            row[f"{label}_band_mse_joint"] = float(ej[band].mean())
            row[f"{label}_band_ratio"] = row[f"{label}_band_mse_joint"] / row[f"{label}_band_mse_independent"]
        result[el] = row
    return result


def table(rows):
    lines = ["| seed | lost | element | MSE ratio joint/indep.: complete maps | with holes | in the bands: complete "
             "| with holes | band MSE with holes: indep. / joint (counts²) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        for el in skarn.ELEMENTS:
            e = r[el]
            lines.append(f"| {r['seed']} | {r['kind']} | {el} | {e['complete_ratio']:.2f} | {e['holes_ratio']:.2f} | "
                         f"{e['complete_band_ratio']:.2f} | {e['holes_band_ratio']:.2f} | "
                         f"{e['holes_band_mse_independent']:.2f} / {e['holes_band_mse_joint']:.2f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[30])
    parser.add_argument("--kinds", nargs="+", default=["shared", "si-only"], choices=["shared", "si-only"])
    parser.add_argument("--json", type=Path, help="write all metrics here")
    args = parser.parse_args(argv)
    rows = []
    for seed in args.seeds:
        for kind in args.kinds:
            r = evaluate(seed, kind)
            rows.append(r)
            print(json.dumps(r), flush=True)
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
