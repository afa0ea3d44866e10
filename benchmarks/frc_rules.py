"""Resolution-aware rules for the default goal's σ scale and iteration count, by Fourier ring correlation (FRC).

    python benchmarks/frc_rules.py --chart --seeds 5 [--threshold 1/7|half-bit]
    python benchmarks/frc_rules.py --scenes 18 [--threshold 1/7|half-bit]
    python benchmarks/frc_rules.py --raw-frc --seeds 5

σ_est and the background are the front door's (``restore(..., goal="fidelity")``).
For each σ in σ_est × {0.8, 0.9, 1.0} the counts are split by binomial
thinning into two halves, each restored by accelerated RL with that σ, in
lockstep (``xrfgpu.stopping.frc_iteration_curve``), and the FRC resolution
of the two estimates is read after every iteration (Koho et al. 2019); the
same is done on two quarters (one half split again). Per σ: ``k½`` and
``f½``, the iteration with the finest FRC resolution on the halves and that
resolution (cycles / px); ``k¼`` the same on the quarters; ``k_plateau``
the first iteration after which the halves' resolution does not improve by
more than its own uncertainty within the next 10 iterations.

Rules (σ* = the σ whose halves reach the finest FRC resolution, i.e. the
largest f½):

* **frc ×1**: σ*, ``k½`` (the half's optimum used for the full map, as the CV stop does);
* **frc ×2**: σ*, ``2 k½`` (the optimum count ∝ counts: RL passes a frequency once
  ``k |H(f)|² ≳ 1``, and the signal-equals-noise frequency moves to half the
  ``|H|² S`` when the counts double);
* **frc extrapolated**: σ*, ``k½ · (k½ / k¼)`` (the count's measured growth from
  quarters to halves carried one more doubling, to the full counts);
* **frc plateau ×2**: σ*, ``2 k_plateau``;
* **frc ×2 at σ_est**: σ_est, ``2 k½(σ_est)`` (the count rule without the σ choice).

``--raw-frc``: the FRC resolution of the chart scan's own halves (no
restoration; by Rosenthal & Henderson's convention, 1/7 on half data sets
estimates the resolution of the whole), against the fundamentals of G3E4–G3E6.

Chart: the paper's USAF chart (as ``usaf_front_door.py``: G2–G7, σ 6.5 px,
77/137.5 counts, jitter and drift, float32 scan), read by the 10 % dip and
by 3 noise spreads, normalised MSE; the two goals of ``restore`` for
reference. Scenes: the first ``n`` frozen held-out σ scenes of at most 256²
(as ``goal_scenes.py``): MSE to the unblurred scene over the raw map's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

SCALES = (0.8, 0.9, 1.0)
RULES = ("frc ×1", "frc ×2", "frc extrapolated", "frc plateau ×2", "frc ×2 at σ_est")


def _finest(resolutions):
    """(iteration of the finest FRC resolution, its frequency, its uncertainty)."""
    f = np.array([r.frequency for r in resolutions])
    i = int(np.argmax(f))
    return i + 1, float(f[i]), float(resolutions[i].uncertainty)


def _plateau(resolutions, window=10):
    """First iteration k after which no iteration within ``window`` improves by more than k's uncertainty."""
    f = np.array([r.frequency for r in resolutions])
    u = np.array([r.uncertainty for r in resolutions])
    for i in range(f.size):
        ahead = f[i + 1 : i + 1 + window]
        if ahead.size and np.all(ahead <= f[i] + u[i]):
            return i + 1
    return f.size


def _stop_after_best(resolutions):
    k, _, _ = _finest(resolutions)
    return len(resolutions) - k >= max(20, k)


def frc_evidence(counts, sigma, background, *, threshold, seed=0, max_iter=300):
    """Per σ scale: the halves' and quarters' FRC optima (see the module docstring)."""
    from xrfgpu.frc import frc_resolution, split_counts
    from xrfgpu.front_door import _psf_for
    from xrfgpu.stopping import frc_iteration_curve

    out = {}
    half, _ = split_counts(counts, seed=seed + 1000)
    for scale in SCALES:
        h = _psf_for(sigma * scale, counts, xp=np)
        res, curves = frc_iteration_curve(counts, h, background=background, max_iter=max_iter, seed=seed,
                                          stop=_stop_after_best, return_curves=True)
        if threshold != "1/7":
            res = [frc_resolution(c, threshold=threshold) for c in curves]
        k2, f2, u2 = _finest(res)
        q, qcurves = frc_iteration_curve(half, h, background=background * 0.5, max_iter=max_iter, seed=seed,
                                         stop=_stop_after_best, return_curves=True)
        if threshold != "1/7":
            q = [frc_resolution(c, threshold=threshold) for c in qcurves]
        k4, f4, _ = _finest(q)
        out[scale] = {"k_half": k2, "f_half": f2, "u_half": u2, "k_quarter": k4, "f_quarter": f4,
                      "k_plateau": _plateau(res), "curve_half": [r.frequency for r in res]}
    return out


def rules(evidence):
    """``{rule: (σ scale, iterations)}`` from :func:`frc_evidence`."""
    best = max(SCALES, key=lambda s: (evidence[s]["f_half"], -abs(s - 1.0)))
    e = evidence[best]
    slope = min(max(np.log2(e["k_half"] / max(e["k_quarter"], 1)), 0.0), 2.0)
    return {
        "frc ×1": (best, e["k_half"]),
        "frc ×2": (best, 2 * e["k_half"]),
        "frc extrapolated": (best, max(int(round(e["k_half"] * 2.0**slope)), 1)),
        "frc plateau ×2": (best, 2 * e["k_plateau"]),
        "frc ×2 at σ_est": (1.0, 2 * evidence[1.0]["k_half"]),
    }


def chart(args):
    import xrfgpu
    from usaf_front_door import _read
    from xrfgpu import psf, simulate, usaf
    from xrfgpu.demo import PIXEL_SIZE_UM, SIZES, TRUE_SIGMA_UM
    from xrfgpu.front_door import _psf_for
    from xrfgpu.richardson_lucy import richardson_lucy

    target = usaf.chart(PIXEL_SIZE_UM, groups=SIZES["full"])
    table, log = {}, []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        counts = simulate.scan(target.image, psf.gaussian(None, TRUE_SIGMA_UM / PIXEL_SIZE_UM), seed=seed)
        rows = {"raw": _read(counts, target)}
        for goal in ("fidelity", "resolution"):
            out, info = xrfgpu.restore(counts, goal=goal, return_info=True)
            rows[goal] = _read(out, target) | {"k": info["iterations"], "scale": info["sigma_scale"]}
        _, info = xrfgpu.restore(counts, goal="fidelity", return_info=True)
        s, b = info["sigma"], info["background"]
        t0 = time.perf_counter()
        ev = frc_evidence(counts, s, b, threshold=args.threshold)
        seconds = time.perf_counter() - t0
        for name, (scale, k) in rules(ev).items():
            out = richardson_lucy(counts, _psf_for(s * scale, counts, xp=np), num_iter=k, background=b,
                                  accelerate=True)
            rows[name] = _read(out, target) | {"k": k, "scale": scale}
        summary = {sc: {k: v for k, v in e.items() if k != "curve_half"} for sc, e in ev.items()}
        print(f"seed {seed} σ_est {s:.3f} cv {info['cv_iterations']} evidence ({seconds:.0f} s): {summary}",
              flush=True)
        for name, r in rows.items():
            table.setdefault(name, []).append(r)
            extra = f" σ×{r['scale']:g} k={r['k']}" if "k" in r else ""
            print(f"seed {seed} {name:18s} 10%-dip {r['dip10']:6s} 3-noise {r['z3']:6s} MSE {r['mse']:.4f}{extra}",
                  flush=True)
        log.append({"seed": seed, "sigma_est": s, "cv": info["cv_iterations"],
                    "evidence": {str(k): v for k, v in ev.items()}, "rows": rows})
    print(f"\nthreshold {args.threshold}")
    print("| rule | σ scale, iterations (seeds) | 10 % dip: median (seeds) | 3 noise spreads (seeds) | MSE (mean) |")
    print("|---|---|---|---|---|")
    for name, rs in table.items():
        lp = np.array([r["dip10_lp"] or 0.0 for r in rs])
        med = rs[int(np.argsort(lp)[len(lp) // 2])]["dip10"]
        used = ", ".join(f"{r['scale']:g}/{r['k']}" for r in rs) if "k" in rs[0] else "–"
        print(f"| {name} | {used} | {med} ({', '.join(r['dip10'] for r in rs)}) | "
              f"{', '.join(r['z3'] for r in rs)} | {np.mean([r['mse'] for r in rs]):.4f} |")
    return log


def raw_frc(args):
    from xrfgpu import psf, simulate, usaf
    from xrfgpu.demo import PIXEL_SIZE_UM, SIZES, TRUE_SIGMA_UM
    from xrfgpu.frc import fourier_ring_correlation, frc_resolution, split_counts

    target = usaf.chart(PIXEL_SIZE_UM, groups=SIZES["full"])
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        counts = simulate.scan(target.image, psf.gaussian(None, TRUE_SIGMA_UM / PIXEL_SIZE_UM), seed=seed)
        curve = fourier_ring_correlation(*split_counts(counts, seed=0))
        line = f"seed {seed} raw halves:"
        for threshold in ("1/7", "half-bit"):
            r = frc_resolution(curve, threshold=threshold)
            line += f" {threshold} {r.frequency:.4f} ± {r.uncertainty:.4f} cycles/px ({r.resolution_px:.1f} px)"
        print(line, flush=True)
    for element in (4, 5, 6):
        print(f"G3E{element} fundamental: {usaf.lp_per_mm(3, element) * PIXEL_SIZE_UM / 1000:.4f} cycles/px")
    return []


def scenes(args):
    import sigma_scenes
    import xrfgpu
    from xrfgpu.front_door import _psf_for
    from xrfgpu.richardson_lucy import richardson_lucy

    ratios, log = {}, []
    for case in [c for c in sigma_scenes.HELD_OUT if c[2] <= 256][: args.scenes]:
        counts, truth_sigma, label, scene = sigma_scenes.make_case(case, return_scene=True)
        raw = float(np.mean((counts - case[5] - scene) ** 2))
        line = f"{label:16s} {case[2]}² σ={truth_sigma:5.2f} {case[4]:g}/{case[5]:g}"
        row = {}
        for goal in ("fidelity", "resolution"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out, info = xrfgpu.restore(counts, goal=goal, return_info=True)
            row[goal] = float(np.mean((out + info["background"] - case[5] - scene) ** 2)) / raw
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, info = xrfgpu.restore(counts, goal="fidelity", return_info=True)
        s, b = info["sigma"], info["background"]
        ev = frc_evidence(counts, s, b, threshold=args.threshold)
        for name, (scale, k) in rules(ev).items():
            out = richardson_lucy(counts, _psf_for(s * scale, counts, xp=np), num_iter=k, background=b,
                                  accelerate=True)
            row[name] = float(np.mean((out + b - case[5] - scene) ** 2)) / raw
            line += f" | {name} σ×{scale:g} k={k} {row[name]:.2f}"
        line += f" | fidelity {row['fidelity']:.2f} resolution {row['resolution']:.2f}"
        print(line, flush=True)
        for name, r in row.items():
            ratios.setdefault(name, []).append(r)
        log.append({"label": label, "size": case[2], "sigma": truth_sigma, "counts": [case[4], case[5]],
                    "sigma_est": s, "evidence": {str(k): {x: y for x, y in v.items() if x != "curve_half"}
                                                 for k, v in ev.items()}, "mse_over_raw": row})
    print(f"\nthreshold {args.threshold}")
    print("| rule | MSE / raw MSE, median | max | maps below raw | at or below the resolution goal |")
    print("|---|---|---|---|---|")
    for name, r in ratios.items():
        r = np.array(r)
        print(f"| {name} | {np.median(r):.2f} | {r.max():.2f} | {np.sum(r < 1)} of {r.size} | "
              f"{np.sum(r <= np.array(ratios['resolution']))} |")
    return log


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chart", action="store_true")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--scenes", type=int, default=0)
    parser.add_argument("--threshold", default="1/7", choices=("1/7", "half-bit"))
    parser.add_argument("--raw-frc", action="store_true")
    parser.add_argument("--json", help="write the per-seed / per-scene evidence here")
    args = parser.parse_args(argv)
    log = {}
    if args.raw_frc:
        log["raw_frc"] = raw_frc(args)
    if args.chart:
        log["chart"] = chart(args)
    if args.scenes:
        log["scenes"] = scenes(args)
    if args.json:
        Path(args.json).write_text(json.dumps(log, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
