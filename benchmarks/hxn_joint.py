"""Joint restoration on the real HXN nanoparticle maps (NSLS-II 3-ID), Fe as the guide.

The five maps (Fe, Cr, S, P, Si K lines; 160 × 160 px, fitted and normalised,
not counts: see ``../shared/data/README.md`` for the licence and attribution)
share one PSF: the nanoprobe's monochromatic incident beam excites every
line, so unlike a polycapillary there is no chromatic blur to equalise. σ is
estimated from the Fe map (:func:`xrfgpu.psf.estimate_sigma`) unless given.

Both restorations work as the front door does on fitted maps: each map is
divided by its effective Poisson gain (:func:`xrfgpu.front_door.effective_counts`),
its background is the front door's (``background="auto"``), and it is
restored in effective counts and multiplied back. Independent RL is
:func:`xrfgpu.restore` per map (accelerated RL, CV stop) with the same PSF;
joint is :func:`xrfgpu.joint.joint_richardson_lucy` with every choice
automatic (λ and the stops by Poisson-thinning cross-validation on the
rounded effective counts).

Printed per element: the map's gain and background, λ and the stop chosen
(with the cross-validation's deviance table), the flux restored over the
flux above background, the correlation of the map's gradient magnitude with
Fe's (do the edges line up with Fe's more?), the spread of the background
(pixels below the 20th percentile of Fe), the relative change of the map
joint vs independent, and its high-frequency energy (the mean square of the
discrete Laplacian, relative to the raw map's: above 1 is sharper or
noisier, below 1 smoother). A figure shows raw / independent / joint.

Run::

    python benchmarks/hxn_joint.py ../shared/data/hxn_nanoparticles_xrf --figure benchmarks/hxn_joint.png \\
        --json benchmarks/hxn_joint.json [--sigma-px 1.0]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ELEMENTS = ("Fe", "Cr", "S", "P", "Si")


def _gradmag(a):
    gy, gx = np.gradient(np.asarray(a, dtype=np.float64))
    return np.hypot(gx, gy)


def _laplacian_energy(a):
    a = np.asarray(a, dtype=np.float64)
    lap = a[1:-1, :-2] + a[1:-1, 2:] + a[:-2, 1:-1] + a[2:, 1:-1] - 4.0 * a[1:-1, 1:-1]
    return float(np.mean(lap ** 2))


def main(argv=None):
    import tifffile

    from xrfgpu import restore
    from xrfgpu.figures import _figure, save_figure
    from xrfgpu.joint import joint_richardson_lucy
    from xrfgpu.psf import estimate_sigma, gaussian

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--sigma-px", type=float)
    parser.add_argument("--figure", type=Path)
    parser.add_argument("--json", type=Path, help="write the printed numbers here")
    args = parser.parse_args(argv)
    maps = np.stack([tifffile.imread(args.folder / f"SUM_maps_XRF_{e}_K.tiff").astype(np.float32) for e in ELEMENTS])
    sigma = args.sigma_px
    how = "given"
    if sigma is None:
        sigma, how = float(estimate_sigma(maps[0]).sigma), "estimate_sigma(Fe)"
    h = gaussian(None, sigma)
    t0 = time.perf_counter()
    independent, ind_info = [], []
    for m in maps:
        out, info = restore(m, h, background="auto", return_info=True)
        independent.append(np.asarray(out))
        ind_info.append(info)
    independent = np.stack(independent)
    seconds_independent = time.perf_counter() - t0
    t0 = time.perf_counter()
    joint, info = joint_richardson_lucy(maps, [h] * len(ELEMENTS), guide=0, background="auto", return_info=True)
    seconds_joint = time.perf_counter() - t0
    fe_edges = _gradmag(independent[0])
    low = maps[0] < np.percentile(maps[0], 20)
    report = {"sigma_px": sigma, "sigma_how": how, "mode": info["mode"], "eta_effective_counts_per_px": info["eta"],
              "seconds_independent": round(seconds_independent, 2), "seconds_joint": round(seconds_joint, 2)}
    for k, e in enumerate(ELEMENTS):
        rec = info["per_map"][k]
        r = {key: rec.get(key) for key in ("kind", "gain", "gain_spread", "background", "background_source", "role",
                                           "weight", "weight_how", "prior", "huber_delta", "iterations", "stop")}
        r["iterations_independent"] = ind_info[k]["iterations"]
        r["background_independent"] = ind_info[k]["background"]
        if rec.get("cv_deviance"):
            r["cv_deviance"] = {w: {"deviance": round(row["deviance"], 1), "se": round(row["se"], 1),
                                    "iterations": row["iterations"]} for w, row in rec["cv_deviance"].items()}
        above = float(np.sum(maps[k].astype(np.float64) - rec["background"]))
        raw_lap = _laplacian_energy(maps[k])
        for name, img in (("raw", maps[k]), ("independent", independent[k]), ("joint", joint[k])):
            r[f"edge_corr_{name}"] = float(np.corrcoef(_gradmag(img).ravel(), fe_edges.ravel())[0, 1])
            r[f"background_sd_{name}"] = float(np.std(img[low]))
            r[f"laplacian_energy_vs_raw_{name}"] = _laplacian_energy(img) / raw_lap
            if name != "raw":
                r[f"flux_ratio_{name}"] = float(np.sum(img, dtype=np.float64)) / above
                r[f"zero_fraction_{name}"] = float(np.mean(img == 0))
        r["joint_vs_independent_rel_change"] = float(np.linalg.norm(joint[k] - independent[k])
                                                     / np.linalg.norm(independent[k]))
        report[e] = r
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    if args.figure:
        from xrfgpu.figures import colorbar_extend

        fig = _figure(12.5, 15.0)
        axes = fig.subplots(len(ELEMENTS), 3)
        for k, e in enumerate(ELEMENTS):
            lo, hi = np.percentile(maps[k], [1, 99.5])
            rec = info["per_map"][k]
            joint_title = ("the guide (plain RL, "
                           f"{rec['iterations']} it.)" if k == 0 else
                           f"joint, Fe guides: {'Huber-dTV ' if rec.get('prior') == 'huber-dtv' else ''}"
                           f"λ {rec['weight']:g}, {rec['iterations']} it.")
            for j, (img, title) in enumerate(((maps[k], "raw"),
                                              (independent[k], f"independent RL, {ind_info[k]['iterations']} it."),
                                              (joint[k], joint_title))):
                shown = axes[k, j].imshow(img, cmap="magma", vmin=lo, vmax=hi)
                axes[k, j].set_xticks([])
                axes[k, j].set_yticks([])
                axes[k, j].set_title(f"{e}: {title}", fontsize=9)
            fig.colorbar(shown, ax=list(axes[k]), shrink=0.8, label="fitted units",
                         extend=colorbar_extend(lo, hi, maps[k], independent[k], joint[k]))
        fig.suptitle(f"HXN nanoparticles, σ {sigma:.2f} px ({how}); effective counts, λ and stops by "
                     "cross-validation\none colour scale per row (the raw map's 1st–99.5th percentile); no truth "
                     "exists for these maps, so no error to it")
        save_figure(fig, args.figure, overwrite=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
