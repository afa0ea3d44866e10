"""σ from the map when the scan has stripes: each row multiplied by its own gain.

    python benchmarks/sigma_stripes.py [--every 4] [--amplitudes 0 0.003 0.01 0.03] [--columns]

Takes every ``--every``-th map of :data:`sigma_scenes.TUNING_MORE` (tuning maps: the stripe rule's
threshold was set on the clean tuning maps' axis ratios, the amplitudes were not tuned on), multiplies
row r by ``1 + a · z_r`` (z_r standard normal, one draw per map; ``--columns`` for column stripes) and
prints, per amplitude a, |σ_est / σ_true − 1| (median / 90th pct / worst), the share flagged uncertain
and the share whose stripes were found. A gain change from one scan line to the next (beam current,
a fly scan's line overhead) of 1 % is ordinary on a synchrotron map normalised by an imperfect I0.
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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--every", type=int, default=4)
    parser.add_argument("--amplitudes", type=float, nargs="+", default=[0.0, 0.003, 0.01, 0.03])
    parser.add_argument("--columns", action="store_true", help="column stripes instead of row stripes")
    args = parser.parse_args(argv)
    from xrfgpu.psf import estimate_sigma

    cases = sigma_scenes.TUNING_MORE[:: args.every]
    print(f"{len(cases)} tuning maps, {'column' if args.columns else 'row'} stripes")
    print("| amplitude | median \\|error\\| | 90th pct | worst | flagged | stripes found |")
    print("|---|---|---|---|---|---|")
    for amplitude in args.amplitudes:
        errors, flagged, found = [], [], []
        for case in cases:
            counts, truth, _ = sigma_scenes.make_case(case)
            gain = 1.0 + amplitude * np.random.default_rng([7, case[1]]).standard_normal(counts.shape[0])
            striped = counts * gain[:, None]
            if args.columns:
                striped = striped.T
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est = estimate_sigma(striped)
            errors.append(abs(est.sigma / truth - 1.0))
            flagged.append(not est.reliable)
            found.append(bool(est.details.get("stripes")))
        e = np.array(errors)
        print(f"| {amplitude:g} | {100 * np.median(e):.1f} % | {100 * np.quantile(e, 0.9):.1f} % | "
              f"{100 * e.max():.1f} % | {100 * np.mean(flagged):.0f} % | {100 * np.mean(found):.0f} % |", flush=True)


if __name__ == "__main__":
    main()
