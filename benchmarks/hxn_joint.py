"""Joint restoration on the real HXN nanoparticle maps (NSLS-II 3-ID), Fe as the guide.

The five maps (Fe, Cr, S, P, Si K lines; 160 × 160 px, fitted and normalised,
not counts: see ``../shared/data/README.md`` for the licence and attribution)
share one PSF: the nanoprobe's monochromatic incident beam excites every
line, so unlike a polycapillary there is no chromatic blur to equalise. σ is
estimated from the Fe map (:func:`xrfgpu.psf.estimate_sigma`) unless given.
Both restorations use that PSF and 30 RL iterations (the front door's rule for
non-count maps); joint restoration uses the default weight for non-count maps
(``xrfgpu.joint.NONCOUNT_WEIGHT``), since thinning cross-validation needs counts.

Printed per element: the correlation of the map's gradient magnitude with
Fe's (do the edges line up with Fe's more?), the spread of the background
(pixels below the 20th percentile of Fe) and the relative change of the map
joint vs independent. A figure shows raw / independent / joint.

Run::

    python benchmarks/hxn_joint.py ../shared/data/hxn_nanoparticles_xrf --figure hxn_joint.png [--sigma-px 1.0]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ELEMENTS = ("Fe", "Cr", "S", "P", "Si")


def _gradmag(a):
    gy, gx = np.gradient(np.asarray(a, dtype=np.float64))
    return np.hypot(gx, gy)


def main(argv=None):
    import tifffile

    from xrfgpu.figures import _figure, save_figure
    from xrfgpu.joint import joint_richardson_lucy
    from xrfgpu.psf import estimate_sigma, gaussian
    from xrfgpu.richardson_lucy import richardson_lucy

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--sigma-px", type=float)
    parser.add_argument("--figure", type=Path)
    args = parser.parse_args(argv)
    maps = np.stack([tifffile.imread(args.folder / f"SUM_maps_XRF_{e}_K.tiff").astype(np.float32) for e in ELEMENTS])
    sigma = args.sigma_px
    how = "given"
    if sigma is None:
        sigma, how = float(estimate_sigma(maps[0]).sigma), "estimate_sigma(Fe)"
    h = gaussian(None, sigma)
    independent = np.stack([richardson_lucy(m, h, num_iter=30, accelerate=True) for m in maps])
    joint, info = joint_richardson_lucy(maps, [h] * len(ELEMENTS), guide=0, guide_iter=30, return_info=True)
    fe_edges = _gradmag(independent[0])
    low = maps[0] < np.percentile(maps[0], 20)
    report = {"sigma_px": sigma, "sigma_how": how, "mode": info["mode"], "eta": info["eta"],
              "weight": info["per_map"][1]["weight"], "weight_how": info["per_map"][1]["weight_how"]}
    for k, e in enumerate(ELEMENTS):
        r = {}
        for name, img in (("raw", maps[k]), ("independent", independent[k]), ("joint", joint[k])):
            r[f"edge_corr_{name}"] = float(np.corrcoef(_gradmag(img).ravel(), fe_edges.ravel())[0, 1])
            r[f"background_sd_{name}"] = float(np.std(img[low]))
        r["joint_vs_independent_rel_change"] = float(np.linalg.norm(joint[k] - independent[k])
                                                     / np.linalg.norm(independent[k]))
        report[e] = r
    print(json.dumps(report, indent=1))
    if args.figure:
        fig = _figure(12.0, 15.0)
        axes = fig.subplots(len(ELEMENTS), 3)
        for k, e in enumerate(ELEMENTS):
            lo, hi = np.percentile(maps[k], [1, 99.5])
            for j, (img, title) in enumerate(((maps[k], "raw"), (independent[k], "independent RL"),
                                              (joint[k], "joint, Fe guides" if k else "Fe: the guide (plain RL)"))):
                axes[k, j].imshow(img, cmap="magma", vmin=lo, vmax=hi)
                axes[k, j].set_xticks([])
                axes[k, j].set_yticks([])
                axes[k, j].set_title(f"{e}: {title}", fontsize=9)
        fig.suptitle(f"HXN nanoparticles, σ {sigma:.2f} px ({how}), 30 iterations, λ {report['weight']:g}")
        save_figure(fig, args.figure, overwrite=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
