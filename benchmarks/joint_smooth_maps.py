"""Joint restoration of smooth weak maps: is any element made worse than independent RL? (issue 18)

Two simulated pairs with a known truth (:func:`joint_reweight_smooth.scene`,
beside this file): ``hxn``, the real HXN Si map (a smooth substrate with the
aggregate's absorption shadow; 40 counts over 10, σ 3 px) under the real HXN
Fe map (σ 1.5 px), and ``grf``, a smooth Gaussian random field (σ 5 px) under
an unrelated grain guide. Per scene and noise seed, printed (and written with
``--json``): the weak map's interior MSE (16 px from the borders) for
independent RL (:func:`xrfgpu.restore`, CV stop) and for the automatic joint
restoration as a ratio to it, with the prior, λ, δ and iterations chosen and
the cross-validation table (held-out deviance above the lowest ± its SE).

``--compare-dtv`` also runs the joint restoration with the dTV candidates
alone (``huber_weights=None``: the default before the Huber-dTV).
``--landscape`` adds, at fixed weights (everything else as the default builds
it: the guide's EM-TV field, own edges, the evidence gate), the MSE ratio and
the exact predictive risk (the Poisson deviance expected of fresh full-count
data, minus that of the true mean: what the cross-validation estimates) of
plain RL at several iteration counts and of the dTV and Huber-dTV at
400 iterations. ``--bands`` adds the MSE ratio restricted to spatial
frequencies where the weak PSF's transfer exceeds t (t = 0.5 … 10⁻³, then
all): where the errors lie. ``--truth-smoothing`` smooths the weak truth first
(px), so that it has no noise of its own.

Run::

    python benchmarks/joint_smooth_maps.py --scenes hxn --seeds 0 1 2 --compare-dtv --landscape --bands
    python benchmarks/joint_smooth_maps.py --scenes grf --seeds 0 1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage, signal

sys.path.insert(0, str(Path(__file__).resolve().parent))

import joint_reweight_smooth as pairs  # noqa: E402

from xrfgpu import joint as J  # noqa: E402
from xrfgpu import restore  # noqa: E402
from xrfgpu.richardson_lucy import richardson_lucy  # noqa: E402

MARGIN = pairs.MARGIN
INNER = (slice(MARGIN, -MARGIN), slice(MARGIN, -MARGIN))
WEIGHTS = (0.02, 0.05, 0.1, 0.2, 0.4)
BANDS = (0.5, 0.1, 0.01, 1e-3, 0.0)


def _blur(x, h):
    k = h.shape[0] // 2
    return signal.fftconvolve(np.pad(x, k, mode="reflect"), h, mode="same")[k:-k, k:-k]


def _risk(x, h, b, mean_true):
    """Expected Poisson deviance of fresh data under ``h ⊛ x + b`` minus that under the true mean (interior)."""
    mu = np.clip(_blur(x, h) + b, 1e-12, None)[INNER]
    m = mean_true[INNER]
    return float(np.sum(mu - m * np.log(mu)) - np.sum(m - m * np.log(m)))


def _band_mse(err, sigma, threshold):
    """Interior MSE of ``err`` over the frequencies where a Gaussian PSF's transfer exceeds ``threshold``."""
    e = err[INNER]
    f0, f1 = np.meshgrid(np.fft.fftfreq(e.shape[0]), np.fft.fftfreq(e.shape[1]), indexing="ij")
    otf = np.exp(-2 * np.pi**2 * sigma**2 * (f0**2 + f1**2))
    spectrum = np.abs(np.fft.fft2(e)) ** 2
    return float(np.sum(spectrum[otf > threshold]) / e.size**2)


def _fixed_weights(y, hs, bs, weights, huber):
    """The weak map restored at each fixed λ (400 iterations) with the dTV or the Huber-dTV, built as the default."""
    guide_map, _ = J._restore_alone(y[0], hs[0], bs[0], num_iter=None, seed=0)
    field, _ = J._guide_direction_field(y[0], hs[0], bs[0], guide_map, J.GUIDE_TV_WEIGHT, 400, 1.0, None, "reflect",
                                        xp=np)
    gate = ((None, max(J.GATE_MIN_PX, J.GATE_PSF_FRACTION * J._psf_width(hs[1]))), 2.0)
    m, noise = len(weights), []
    fields = J._member_fields(y, hs, bs, [1], field, 2.0, 400, xp=np, repeat=m, evidence=gate, noise_out=noise)
    pb = J._stack_problem(y, hs, bs, [1], boundary="reflect", repeat=m)
    level, init = J._start(pb)
    delta = pb.per_map([J.HUBER_NOISE_FACTOR * noise[0]] * m) if huber else None
    out = J._run_guided_rl(pb, fields, pb.per_map(list(weights)), num_iter=400, gamma=0.9, level=level, init=init,
                           huber=delta)
    return np.asarray(out), J.HUBER_NOISE_FACTOR * noise[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", nargs="+", default=["hxn", "grf"], choices=["grf", "hxn"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--compare-dtv", action="store_true", help="also the dTV candidates alone (before)")
    parser.add_argument("--landscape", action="store_true", help="fixed weights: MSE and exact predictive risk")
    parser.add_argument("--bands", action="store_true", help="MSE by the PSF transfer's band (with --landscape)")
    parser.add_argument("--truth-smoothing", type=float, default=0.0, metavar="PX")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rows = []
    for name in args.scenes:
        for seed in args.seeds:
            gt, wt, sg, sw, bg, bw = pairs.scene(name, seed)
            if args.truth_smoothing > 0:
                wt = ndimage.gaussian_filter(wt, args.truth_smoothing, mode="reflect")
            rng = np.random.default_rng(seed)
            yg, hg = pairs._scan(gt, sg, bg, rng)
            yw, hw = pairs._scan(wt, sw, bw, rng)
            y, hs, bs = np.stack([yg, yw]), [hg, hw], [bg, bw]
            mse = lambda a: float(np.mean((np.asarray(a) - wt)[INNER] ** 2))  # noqa: E731
            alone = np.asarray(restore(yw, method="rl", sigma=sw, background=bw))
            ref = mse(alone)
            row = {"scene": name, "seed": seed, "truth_smoothing_px": args.truth_smoothing, "mse_independent": ref}
            runs = [("default", {})] + ([("dtv_only", {"huber_weights": None})] if args.compare_dtv else [])
            for label, extra in runs:
                t0 = time.perf_counter()
                out, info = J.joint_richardson_lucy(y, hs, guide=0, background=bs, return_info=True, **extra)
                pm = info["per_map"][1]
                row[label] = {"mse_ratio": mse(out[1]) / ref, "weight": pm["weight"], "prior": pm["prior"],
                              "huber_delta": pm["huber_delta"], "iterations": pm["iterations"],
                              "seconds": round(time.perf_counter() - t0, 1),
                              "cv_deviance": {k: [round(v["deviance"], 1), round(v["se"], 1)]
                                              for k, v in (pm["cv_deviance"] or {}).items()}}
                r = row[label]
                print(f"{name} seed {seed} {label}: MSE {r['mse_ratio']:.3f} x independent RL ({ref:.3f}); "
                      f"{r['prior']} λ {r['weight']:g}" + (f" δ {r['huber_delta']:.2f}" if r["huber_delta"] else "")
                      + f", {r['iterations']} it [{r['seconds']:.0f} s]; CV: "
                      + " ".join(f"{k} {d:+.0f}±{s:.0f}" for k, (d, s) in r["cv_deviance"].items()), flush=True)
            if args.landscape:
                mean_true = _blur(wt, hw) + bw
                land = {"independent": {"mse_ratio": 1.0, "risk": _risk(alone, hw, bw, mean_true)}}
                for k in (5, 10, 20, 50, 400):
                    x = np.asarray(richardson_lucy(yw, hw, num_iter=k, background=bw))
                    land[f"plain RL {k}"] = {"mse_ratio": mse(x) / ref, "risk": _risk(x, hw, bw, mean_true)}
                estimates = {"independent": alone}
                for huber in (False, True):
                    out, delta = _fixed_weights(y, hs, bs, WEIGHTS, huber)
                    for j, lam in enumerate(WEIGHTS):
                        key = f"{'huber' if huber else 'dtv'} {lam:g}"
                        land[key] = {"mse_ratio": mse(out[j]) / ref, "risk": _risk(out[j], hw, bw, mean_true)}
                        estimates[key] = out[j]
                    row["huber_delta_landscape"] = delta
                if args.bands:
                    for key, x in estimates.items():
                        land[key]["band_mse_ratio"] = {f"{t:g}": _band_mse(x - wt, sw, t) / _band_mse(alone - wt, sw, t)
                                                       for t in BANDS}
                row["landscape"] = land
                bands = "; band MSE ratio at OTF > " + ", ".join(f"{t:g}" for t in BANDS) if args.bands else ""
                print(f"  fixed weights, 400 it (MSE ratio / exact risk{bands}):")
                for key, v in land.items():
                    band = ("  [" + " ".join(f"{b:.2f}" for b in v["band_mse_ratio"].values()) + "]"
                            if "band_mse_ratio" in v else "")
                    print(f"    {key:>14}: {v['mse_ratio']:.3f} / {v['risk']:.1f}{band}", flush=True)
            rows.append(row)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
