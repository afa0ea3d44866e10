"""Does the reweighted directional TV make staircases on a smooth weak map? MSE against independent RL.

Iteratively reweighted TV (``reweight_every`` of
:func:`xrfgpu.joint.joint_richardson_lucy`) approximates a non-convex
penalty, which favours piecewise-constant maps; a weak map with smooth
structure is where it could cut terraces. Two simulated pairs with a known
truth, both scanned as Poisson counts with Gaussian PSFs (reflect-padded
truth, so the maps have real borders):

* ``grf``: the guide is :func:`xrfgpu.phantom.grains_and_veins` (piecewise
  constant, 400 counts over 50, σ 2 px); the weak map is an unrelated smooth
  Gaussian random field (white noise smoothed by σ 8 px, 8–40 counts over
  20, σ 5 px): nothing in it is piecewise constant;
* ``hxn``: the real HXN Fe and Si maps (``tests/data/hxn_nanoparticles_xrf``,
  MIT licence, "Copyright (c) 2022 stetef", data courtesy of A. Pattamattel
  and Y. Chu, NSLS-II HXN; see that folder's README) as truths: Fe the guide (scaled to 300 counts at its
  99.5th percentile, over 20, σ 1.5 px), Si the weak map (a smooth
  substrate signal with the aggregate's absorption shadow, scaled to 40
  counts at its 99.5th percentile, over 10, σ 3 px).

Printed per scene and noise seed: the weak map's interior MSE (16 px from the
borders) against the truth for independent RL (:func:`xrfgpu.restore`, CV
stop), joint with the default plain dTV, and joint reweighted, both fully
automatic (λ by cross-validation), as ratios to independent RL, with the λ chosen.

Run::

    python benchmarks/joint_reweight_smooth.py --seeds 0 1 --reweight-eps 4 --reweight-smoothing 2
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy import ndimage, signal

from xrfgpu import phantom, restore
from xrfgpu.joint import joint_richardson_lucy
from xrfgpu.psf import gaussian

#: the project's copy of the HXN maps (with their licence and attribution)
HXN = Path(__file__).resolve().parents[1] / "tests" / "data" / "hxn_nanoparticles_xrf"
MARGIN = 16


def _scan(truth, sigma, background, rng):
    h = gaussian(None, sigma)
    k = h.shape[0] // 2
    blurred = signal.fftconvolve(np.pad(truth, k, mode="reflect"), h, mode="same")[k:-k, k:-k]
    return rng.poisson(np.clip(blurred, 0, None) + background).astype(np.float32), h.astype(np.float32)


def scene(name, seed):
    """(guide truth, weak truth, σ guide, σ weak, background guide, background weak) in counts."""
    if name == "grf":
        n = 160
        guide = phantom.grains_and_veins((n, n), seed=seed)
        guide = 400.0 * (guide - guide.min()) / (guide.max() - guide.min())
        field = ndimage.gaussian_filter(np.random.default_rng(100 + seed).normal(size=(n, n)), 8.0, mode="wrap")
        weak = 8.0 + 32.0 * (field - field.min()) / (field.max() - field.min())
        return guide, weak, 2.0, 5.0, 50.0, 20.0
    import tifffile

    fe = tifffile.imread(HXN / "SUM_maps_XRF_Fe_K.tiff").astype(np.float64)
    si = tifffile.imread(HXN / "SUM_maps_XRF_Si_K.tiff").astype(np.float64)
    return 300.0 * fe / np.percentile(fe, 99.5), 40.0 * si / np.percentile(si, 99.5), 1.5, 3.0, 20.0, 10.0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", nargs="+", default=["grf", "hxn"], choices=["grf", "hxn"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--reweight-every", type=int, default=10)
    parser.add_argument("--reweight-eps", type=float, default=4.0)
    parser.add_argument("--reweight-smoothing", type=float, default=2.0)
    args = parser.parse_args(argv)
    inner = (slice(MARGIN, -MARGIN), slice(MARGIN, -MARGIN))
    for name in args.scenes:
        for seed in args.seeds:
            gt, wt, sg, sw, bg, bw = scene(name, seed)
            rng = np.random.default_rng(seed)
            yg, hg = _scan(gt, sg, bg, rng)
            yw, hw = _scan(wt, sw, bw, rng)
            counts = np.stack([yg, yw])
            t0 = time.perf_counter()
            alone = np.asarray(restore(yw, method="rl", sigma=sw, background=bw))
            ref = float(np.mean((alone - wt)[inner] ** 2))
            line = f"{name} seed {seed}: independent RL MSE {ref:.3f}"
            runs = (("plain dTV", {}), ("reweighted", {"reweight_every": args.reweight_every,
                                                       "reweight_eps_factor": args.reweight_eps,
                                                       "reweight_smoothing_px": args.reweight_smoothing}))
            for label, extra in runs:
                out, info = joint_richardson_lucy(counts, [hg, hw], guide=0, background=[bg, bw], return_info=True,
                                                  **extra)
                mse = float(np.mean((np.asarray(out)[1] - wt)[inner] ** 2))
                pm = info["per_map"][1]
                line += f"; {label} {mse / ref:.3f} (λ {pm['weight']:g}, {pm['iterations']} it)"
            print(line + f"  [{time.perf_counter() - t0:.0f} s]", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
