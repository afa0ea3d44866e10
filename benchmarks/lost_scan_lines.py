"""Lost scan lines stored as 0: ``restore(map)`` reading them as missing against reading them as data.

    python benchmarks/lost_scan_lines.py [--seeds 5] [--size 128] [--sigma 3.0]

For each seed, a count map of ``xrfgpu.phantom.observe`` (grains and veins, background 100 counts) with one
interior row and, separately, one interior column set to 0 is restored by ``xrfgpu.restore(map)`` with nothing
else given, three ways:

``missing``
    as the front door reads it now (:mod:`xrfgpu.lost_lines` finds the line and marks it missing);
``nan``
    the same line set to NaN (the reference: missing pixels as every path has long read them);
``data``
    the zeros read as data (``mask=np.ones(shape)``: a given mask turns the search off), as before.

The complete map is restored too. Printed per case: the automatic background (counts), σ (px), the
iterations, and the normalised error to the truth (MSE / truth variance) on the whole map, and on the pixels
within 3 σ of the lost line (the line itself excluded). The medians and worst cases over the seeds close the
table.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np

import xrfgpu
from xrfgpu import phantom


def _restore(image, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out, info = xrfgpu.restore(image, return_info=True, **kwargs)
    return np.asarray(out, dtype=np.float64), info


def _error(restored, truth, where):
    return float(np.mean((restored[where] - truth[where]) ** 2) / np.var(truth))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--sigma", type=float, default=3.0)
    args = parser.parse_args(argv)
    rows = []
    print(f"{'seed':>4} {'line':>7} {'case':>8} {'bkg':>7} {'σ px':>6} {'iter':>4} {'err map':>8} {'err near':>8}")
    for seed in range(args.seeds):
        counts, truth, _ = phantom.observe((args.size, args.size), args.sigma, seed=seed)
        counts = counts.astype(np.float64)
        rng = np.random.default_rng(1000 + seed)
        index = int(rng.integers(args.size // 4, 3 * args.size // 4))
        reach = int(np.ceil(3 * args.sigma))
        for axis in ("row", "column"):
            line = (index, slice(None)) if axis == "row" else (slice(None), index)
            near = np.zeros(counts.shape, dtype=bool)
            band = slice(index - reach, index + reach + 1)
            near[(band, slice(None)) if axis == "row" else (slice(None), band)] = True
            near[line] = False
            zero, nan = counts.copy(), counts.copy()
            zero[line], nan[line] = 0.0, np.nan
            cases = {"complete": (counts, {}), "missing": (zero, {}), "nan": (nan, {}),
                     "data": (zero, {"mask": np.ones(counts.shape)})}
            for case, (image, kwargs) in cases.items():
                if case == "complete" and axis == "column":
                    continue
                out, info = _restore(image, **kwargs)
                row = {"seed": seed, "line": f"{axis[0]}{index}", "case": case, "background": info["background"],
                       "sigma": info["sigma_px"], "iterations": info["iterations"],
                       "error_map": _error(out, truth, np.ones(out.shape, dtype=bool)),
                       "error_near": _error(out, truth, near)}
                rows.append(row)
                print(f"{seed:>4} {row['line']:>7} {case:>8} {row['background']:>7.1f} {row['sigma']:>6.3f} "
                      f"{row['iterations']:>4} {row['error_map']:>8.4f} {row['error_near']:>8.4f}")
    print("\nover seeds and lines: median / worst")
    for case in ("complete", "missing", "nan", "data"):
        chosen = [r for r in rows if r["case"] == case]
        parts = []
        for key in ("background", "sigma", "error_map", "error_near"):
            values = np.array([r[key] for r in chosen])
            worst = values.min() if key in ("background", "sigma") else values.max()
            parts.append(f"{key} {np.median(values):.4g} / {worst:.4g}")
        print(f"{case:>8}: " + ", ".join(parts))


if __name__ == "__main__":
    main()
