"""Si on the simulated skarn restored jointly at a fixed weight and several iteration counts.

Why the joint cross-validation lets a weight > 0 run all ``max_iter``
iterations: per seed, this prints the independent RL's Si-only vein contrast
and MSE (:func:`xrfgpu.restore`, as in :mod:`bench_joint`), then, for the joint
restoration at weight λ (``--weight``) and each iteration count (``--iters``:
e.g. where a rule stopped, and 400), the vein's contrast kept, the Si MSE
over the interior and the Fe-only inclusion's imprint in Si with its noise
(all as :mod:`bench_joint` measures them). Everything else is automatic.

Run::

    python benchmarks/joint_iterations_check.py --seeds 7 --weight 0.05 --iters 70 400
    python benchmarks/joint_iterations_check.py --seeds 1 --weight 0.1 --iters 185 400
    python benchmarks/joint_iterations_check.py --seeds 7 0 1 --own-field

``--own-field`` prints instead, per seed, the mean length |ξ| of Si's own-edge
field (:func:`xrfgpu.joint.guide_field` of its plain RL at 400 iterations,
smoothed by 2 px, η = 2 own noise deviations: what the joint restoration
builds) in bands 0–2, 2–4, 4–6, 6–9 and 9–14 px from the vein's centre line
(its middle 70 %): whether the own edges protect the vein less on one seed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import skarn  # noqa: E402

from xrfgpu import restore  # noqa: E402
from xrfgpu.joint import guide_field  # noqa: E402
from xrfgpu.richardson_lucy import richardson_lucy  # noqa: E402
from xrfgpu.stack import restore_stack  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[7])
    parser.add_argument("--weight", type=float, default=0.05)
    parser.add_argument("--iters", type=int, nargs="+", default=[70, 400])
    parser.add_argument("--own-field", action="store_true", help="print the own-edge field's length by the vein")
    args = parser.parse_args(argv)
    yy, xx = np.mgrid[: skarn.SIZE, : skarn.SIZE].astype(np.float64)
    dist, along = skarn._vein_geometry(yy, xx)
    middle = (along > 0.15) & (along < 0.85)
    for seed in args.seeds:
        counts, truths, psfs, bgs, masks = skarn.observe(seed)
        if args.own_field:
            own = np.asarray(richardson_lucy(counts[0], psfs[0], num_iter=400, background=bgs[0]))
            field, _ = guide_field(own, smoothing_px=2.0, eta_factor=2.0)
            length = np.hypot(field[0], field[1])
            bands = ((0, 2), (2, 4), (4, 6), (6, 9), (9, 14))
            print(f"seed {seed}: own-field |ξ| " + ", ".join(
                f"{a}-{b} px {length[middle & (dist >= a) & (dist < b)].mean():.2f}" for a, b in bands))
            continue
        alone, info = restore(counts[0], method="rl", sigma=skarn.SIGMA_PX["Si"], background=bgs[0],
                              return_info=True)
        alone = np.asarray(alone)
        c_alone = skarn.vein_contrast(alone, masks)
        print(f"seed {seed}: independent RL ({info['iterations']} it): vein contrast {c_alone:.3f}, "
              f"Si MSE {skarn.interior_mse(alone, truths[0]):.3f}")
        for k in args.iters:
            joint = np.asarray(restore_stack(counts, psfs, "rl", joint=True, background=bgs, weight=args.weight,
                                             num_iter=k))
            c = skarn.vein_contrast(joint[0], masks)
            value, noise = skarn.imprint(joint[0], masks)
            print(f"  joint λ {args.weight:g}, {k} it: vein {c:.3f} (kept {100 * c / c_alone:.0f} %), "
                  f"Si MSE {skarn.interior_mse(joint[0], truths[0]):.3f}, inclusion {value:+.2f} ({noise:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
