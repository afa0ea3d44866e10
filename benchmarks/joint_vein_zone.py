"""Where the joint Si error sits on the simulated skarn: the Si-only vein's zone against the rest.

The benchmark (:mod:`bench_joint`) shows joint restoration cutting the Si error
off the vein to about 0.4× independent RL while the zone within 30 px of the
Si-only vein (a quarter of the interior) keeps RL's error. This script
measures why: per seed it prints the interior Si MSE of

* plain RL of the *noise-free* expected counts (the scene blurred by the Si
  PSF, no Poisson noise, no stage jitter or drift) at 100, 400 and 1600
  iterations: how far any RL-type method could resolve the vein zone with
  perfect data;
* joint restoration at fixed weights λ (400 iterations, everything else
  automatic);

each as ratios to the benchmark's independent RL: total / vein zone / off the zone.

Run::

    python benchmarks/joint_vein_zone.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import signal

sys.path.insert(0, str(Path(__file__).resolve().parent))

import skarn  # noqa: E402

from xrfgpu import restore, richardson_lucy  # noqa: E402
from xrfgpu.joint import joint_richardson_lucy  # noqa: E402

MARGIN = 32


def zone_errors(image, truth):
    """Interior MSE, and the parts of it from the vein zone (≤ 30 px) and from the rest (same divisor)."""
    yy, xx = np.mgrid[: skarn.SIZE, : skarn.SIZE].astype(np.float64)
    near = (skarn._vein_geometry(yy, xx)[0] <= 30)[MARGIN:-MARGIN, MARGIN:-MARGIN]
    err = ((image - truth)[MARGIN:-MARGIN, MARGIN:-MARGIN]) ** 2
    return np.array([err.mean(), err[near].sum() / err.size, err[~near].sum() / err.size])


def noise_free_si(seed):
    """Expected Si counts of the scene without noise, jitter or drift (the scene is wider than the map)."""
    conc, _ = skarn.scene(seed, pad=skarn.PAD)
    s, b = skarn.RATES["Si"]
    h = skarn.psf_mod.gaussian(None, skarn.SIGMA_PX["Si"])
    blurred = signal.fftconvolve(conc[0], h, mode="same")
    inner = (slice(skarn.PAD, skarn.PAD + skarn.SIZE), slice(skarn.PAD, skarn.PAD + skarn.SIZE))
    return (skarn.DWELL_S * ((s - b) * blurred[inner] + b)).astype(np.float32), h.astype(np.float32)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--weights", type=float, nargs="+", default=[0.05, 0.1, 0.2])
    args = parser.parse_args(argv)
    for seed in args.seeds:
        counts, truths, psfs, bgs, _ = skarn.observe(seed)
        ind = np.asarray(restore(counts[0], method="rl", sigma=skarn.SIGMA_PX["Si"], background=bgs[0]))
        ref = zone_errors(ind, truths[0])
        print(f"seed {seed}: independent RL Si MSE {ref[0]:.3f}, vein zone {ref[1] / ref[0]:.0%} of it")
        mu, h = noise_free_si(seed)
        for k in (100, 400, 1600):
            e = zone_errors(richardson_lucy(mu, h, num_iter=k, background=bgs[0]), truths[0]) / ref
            print(f"  noise-free RL, {k:4d} it: total {e[0]:.2f}  vein zone {e[1]:.2f}  off {e[2]:.2f}", flush=True)
        for w in args.weights:
            out = joint_richardson_lucy(counts, psfs, background=bgs, weight=w, num_iter=400)
            e = zone_errors(np.asarray(out[0]), truths[0]) / ref
            print(f"  joint λ {w:g}, 400 it:    total {e[0]:.2f}  vein zone {e[1]:.2f}  off {e[2]:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
