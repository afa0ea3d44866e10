"""Joint restoration of a simulated skarn: Fe guides Ca and Si (xrfgpu.joint) against independent RL.

The scene is :mod:`skarn` (beside this file): Si, Ca and Fe share grain
boundaries at different levels; Si has the fewest counts and the widest spot
(σ 16 px), Ca σ 10 px, Fe σ 8 px at 5 µm steps; a quartz vein is Si-only and
a small inclusion Fe-only. Both restorations use the same PSFs and
backgrounds. Independent RL is the project's front door per map
(:func:`xrfgpu.restore` rule: Poisson-thinning CV stop, Biggs–Andrews
acceleration); joint is ``restore_stack(..., "rl", joint=True)`` with every
choice automatic (guide = narrowest PSF, weight and iterations by CV).

Measured per seed: interior MSE against the truth (32 px from the borders),
10–90 % edge width of three garnet disks (erf fit to the radial profile), the
Fe-only inclusion's imprint in restored Si against the spread of the same
statistic on flat matrix, and the Si vein's contrast against its sides.

Run::

    python benchmarks/bench_joint.py --seeds 0 1 2 --figure benchmarks/joint_skarn.png
    python benchmarks/bench_joint.py --seeds 0 1 2 --weight 0.03   # one fixed λ: the trade-off
    python benchmarks/bench_joint.py --seeds 0 1 2 --guide-evidence 8   # the evidence gate at 8 px
    python benchmarks/bench_joint.py --seeds 0 1 2 --guide-tv 0   # the guide's field from its plain RL
    python benchmarks/bench_joint.py --seeds 0 1 2 --reweight-every 10 --reweight-eps 4 --reweight-smoothing 2
    pytest benchmarks/bench_joint.py --benchmark-json=bench_joint.json   # timing + metrics of seed 0
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


def evaluate(seed=0, weight=None, guide_evidence_px="auto", guide_tv="default", reweight=None):
    """Restore one simulated skarn both ways; returns (metrics dict, arrays dict).

    ``weight`` fixes the joint prior's λ (iterations still by cross-validation); default automatic.
    ``guide_evidence_px`` is the joint restoration's evidence gate: "auto" (the library's default,
    ½ of each weak map's PSF σ), a smoothing σ in pixels, or None (no gate). ``guide_tv`` is the
    weight of the guide's EM-TV restoration that the direction field comes from ("default": the
    library's; 0: the guide's plain RL, as before). ``reweight``: None (the library's default, plain dTV) or
    a dict of ``reweight_every``, ``reweight_eps_factor``, ``reweight_smoothing_px`` (reweighted dTV).
    """
    counts, truths, psfs, bgs, masks = skarn.observe(seed)
    t0 = time.perf_counter()
    independent, ind_iters = [], []
    for k, el in enumerate(skarn.ELEMENTS):
        out, info = restore(counts[k], method="rl", sigma=skarn.SIGMA_PX[el], background=bgs[k], return_info=True)
        independent.append(np.asarray(out))
        ind_iters.append(info["iterations"])
    independent = np.stack(independent)
    t_ind = time.perf_counter() - t0
    t0 = time.perf_counter()
    extra = {} if guide_tv == "default" else {"guide_tv": guide_tv}
    extra.update(reweight or {})
    joint, info = restore_stack(counts, psfs, "rl", joint=True, background=bgs, return_info=True, weight=weight,
                                guide_evidence_px=guide_evidence_px, **extra)
    t_joint = time.perf_counter() - t0

    m = {"seed": seed, "seconds_independent": round(t_ind, 2), "seconds_joint": round(t_joint, 2),
         "guide": skarn.ELEMENTS[info["guide"]], "eta": info["eta"], "mode": info["mode"],
         "guide_tv": info.get("guide_tv"), "reweight": info.get("reweight")}
    for k, el in enumerate(skarn.ELEMENTS):
        pm = info["per_map"][k]
        mi, mj = skarn.interior_mse(independent[k], truths[k]), skarn.interior_mse(joint[k], truths[k])
        m[el] = {"mse_independent": mi, "mse_joint": mj, "mse_ratio": mj / mi,
                 "width_raw": skarn.widths(counts[k]), "width_independent": skarn.widths(independent[k]),
                 "width_joint": skarn.widths(joint[k]), "iterations_independent": ind_iters[k],
                 "iterations_joint": pm["iterations"], "weight": pm["weight"], "weight_how": pm["weight_how"],
                 "prior": pm.get("prior"), "huber_delta": pm.get("huber_delta"), "cv_deviance": pm.get("cv_deviance")}
    wi = [m[el]["width_independent"] for el in skarn.ELEMENTS]
    wj = [m[el]["width_joint"] for el in skarn.ELEMENTS]
    m["width_spread_independent"] = max(wi) - min(wi)
    m["width_spread_joint"] = max(wj) - min(wj)
    m["width_spread_cut"] = 1.0 - m["width_spread_joint"] / m["width_spread_independent"]
    for name, img in (("independent", independent[0]), ("joint", joint[0])):
        value, noise = skarn.imprint(img, masks)
        m[f"si_inclusion_imprint_{name}"] = value
        m[f"si_flat_noise_{name}"] = noise
        m[f"si_vein_contrast_{name}"] = skarn.vein_contrast(img, masks)
    m["si_vein_kept"] = m["si_vein_contrast_joint"] / m["si_vein_contrast_independent"]
    # where the Si error sits: the Si-only vein's neighbourhood (≤ 30 px) against the rest
    yy, xx = np.mgrid[: skarn.SIZE, : skarn.SIZE].astype(np.float64)
    near_vein = skarn._vein_geometry(yy, xx)[0] <= 30
    sl = (slice(32, -32), slice(32, -32))
    for name, img in (("independent", independent[0]), ("joint", joint[0])):
        err = (img - truths[0])[sl] ** 2
        m[f"si_mse_off_vein_{name}"] = float(err[~near_vein[sl]].mean())
    m["si_mse_off_vein_ratio"] = m["si_mse_off_vein_joint"] / m["si_mse_off_vein_independent"]
    arrays = {"counts": counts, "truths": truths, "independent": independent, "joint": joint, "backgrounds": bgs}
    return m, arrays


def figure(arrays, metrics, path):
    """Raw / independent RL / joint / truth for Si, Ca, Fe, with each map's MSE to the truth.

    The truths are signal counts per pixel above the background. Per row, the restorations and the
    truth share one colour scale (the truth's range) and one colour bar, pointed where it clips; the
    raw counts (minus the background) have their own (1st–99th percentile) and their own colour bar.
    """
    from xrfgpu.figures import _figure, colorbar_extend, save_figure

    fig = _figure(13.5, 9.6)
    axes = fig.subplots(3, 4)
    titles = ("raw counts − background", "independent RL", "joint (Fe guides)", "truth")
    for k, el in enumerate(skarn.ELEMENTS):
        truth = arrays["truths"][k]
        lo, hi = float(truth.min()), float(truth.max())
        raw = arrays["counts"][k] - arrays["backgrounds"][k]
        panels = (raw, arrays["independent"][k], arrays["joint"][k], truth)
        raw_lo, raw_hi = float(np.percentile(raw, 1)), float(np.percentile(raw, 99))
        for j, (img, title) in enumerate(zip(panels, titles)):
            ax = axes[k, j]
            if j == 0:
                shown_raw = ax.imshow(img, cmap="magma", vmin=raw_lo, vmax=raw_hi)
            else:
                shown = ax.imshow(img, cmap="magma", vmin=lo, vmax=hi)
            ax.set_xticks([])
            ax.set_yticks([])
            if k == 0:
                ax.set_title(title)
        fig.colorbar(shown_raw, ax=axes[k, 0], shrink=0.8, extend=colorbar_extend(raw_lo, raw_hi, raw),
                     label="counts (own scale)")
        fig.colorbar(shown, ax=list(axes[k, 1:]), shrink=0.8, extend=colorbar_extend(lo, hi, *panels[1:]),
                     label="counts above background\n(the truth's range)")
        e = metrics[el]
        axes[k, 0].set_ylabel(f"{el} (σ {skarn.SIGMA_PX[el]:g} px)")
        if e["weight"] is not None:
            axes[k, 2].set_xlabel(f"λ {e['weight']:g}, {e['iterations_joint']} it\n"
                                  f"MSE {e['mse_joint']:.3g} (×{e['mse_ratio']:.2f})")
        else:
            axes[k, 2].set_xlabel(f"guide: plain RL\nMSE {e['mse_joint']:.3g}")
        axes[k, 1].set_xlabel(f"{e['iterations_independent']} it (CV)\nMSE {e['mse_independent']:.3g}")
    fig.suptitle(f"Simulated skarn, 5 µm steps, seed {metrics['seed']}: edge-width spread "
                 f"{metrics['width_spread_independent']:.1f} → {metrics['width_spread_joint']:.1f} px; "
                 "MSE to the truth over the interior (32 px from the borders)")
    return save_figure(fig, path, overwrite=True)


def _weight(e):
    """λ, with " H" where the Huber-dTV was chosen."""
    return f"{e['weight']:g}" + (" H" if e.get("prior") == "huber-dtv" else "")


def _table(rows):
    lines = ["| seed | Si MSE ratio | Ca | Fe | Si MSE ratio off the vein | edge widths Si/Ca/Fe indep. (px) | "
             "joint (px) | spread cut | inclusion in Si (joint, noise) | vein kept | λ Si, Ca | s indep./joint |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for m in rows:
        w_i = "/".join(f"{m[el]['width_independent']:.1f}" for el in skarn.ELEMENTS)
        w_j = "/".join(f"{m[el]['width_joint']:.1f}" for el in skarn.ELEMENTS)
        lines.append(
            f"| {m['seed']} | {m['Si']['mse_ratio']:.2f} | {m['Ca']['mse_ratio']:.2f} | {m['Fe']['mse_ratio']:.2f} | "
            f"{m['si_mse_off_vein_ratio']:.2f} | {w_i} | {w_j} | {100 * m['width_spread_cut']:.0f} % | "
            f"{m['si_inclusion_imprint_joint']:+.2f} ({m['si_flat_noise_joint']:.2f}) | "
            f"{100 * m['si_vein_kept']:.0f} % | {_weight(m['Si'])}, {_weight(m['Ca'])} | "
            f"{m['seconds_independent']:.1f}/{m['seconds_joint']:.1f} |")
    return "\n".join(lines)


def test_joint_skarn(benchmark):
    """pytest-benchmark: one joint restoration of seed 0, metrics in extra_info."""
    benchmark.group = "joint-skarn-288"
    result = {}

    def run():
        result["m"], _ = evaluate(0)

    benchmark.pedantic(run, rounds=1, iterations=1)
    m = result["m"]
    benchmark.extra_info.update(
        si_mse_ratio=m["Si"]["mse_ratio"], ca_mse_ratio=m["Ca"]["mse_ratio"], fe_mse_ratio=m["Fe"]["mse_ratio"],
        width_spread_cut=m["width_spread_cut"], si_vein_kept=m["si_vein_kept"],
        si_inclusion_imprint=m["si_inclusion_imprint_joint"], si_flat_noise=m["si_flat_noise_joint"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--figure", type=Path, help="PNG of the first seed: raw / independent / joint / truth")
    parser.add_argument("--json", type=Path, help="write all metrics here")
    parser.add_argument("--weight", type=float, help="fix the joint weight λ (default: cross-validation)")
    parser.add_argument("--guide-evidence", default="auto", metavar="PX|auto|off",
                        help="the evidence gate: 'auto' (default: ½ of each weak map's PSF σ), a smoothing σ in "
                             "pixels, or 'off'")
    parser.add_argument("--guide-tv", default="default", metavar="WEIGHT|default",
                        help="weight of the guide's EM-TV restoration the direction field comes from (0: the guide's "
                             "plain RL field, the previous default)")
    parser.add_argument("--reweight-every", type=int, metavar="N",
                        help="reweight the weak maps' dTV every N iterations (default: off, plain dTV)")
    parser.add_argument("--reweight-eps", type=float, default=1.0, metavar="FACTOR",
                        help="the reweighting's ε as a multiple of each weak map's own RL gradient noise")
    parser.add_argument("--reweight-smoothing", type=float, default=0.0, metavar="PX",
                        help="σ (px) of the Gaussian applied to the iterate before the reweighting's gradient")
    args = parser.parse_args(argv)
    reweight = None if args.reweight_every is None else {
        "reweight_every": args.reweight_every, "reweight_eps_factor": args.reweight_eps,
        "reweight_smoothing_px": args.reweight_smoothing}
    rows = []
    for i, seed in enumerate(args.seeds):
        gate = {"auto": "auto", "off": None}.get(args.guide_evidence)
        m, arrays = evaluate(seed, args.weight, gate if args.guide_evidence in ("auto", "off")
                             else float(args.guide_evidence),
                             args.guide_tv if args.guide_tv == "default" else float(args.guide_tv), reweight)
        rows.append(m)
        if i == 0 and args.figure:
            figure(arrays, m, args.figure)
        print(json.dumps(m), flush=True)
    print(_table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
