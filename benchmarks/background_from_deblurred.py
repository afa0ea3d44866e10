"""A background read from a deblurred map: an experiment on the fresh tuning maps, not adopted (sixteenth session).

High-count maps with no element-free area get an automatic background that absorbs the scene's floor (a
particles map at 2000/100 counts read 324 for a true 100). Idea: restore at background 0 with the front door's σ
and count, read the low level (the 2 % quantile of 5 × 5 box means) of that deblurred map, and restore again at
the lower of the two backgrounds. On the 192 maps of ``FRESH_TUNING_MORE``: 88 maps better, 88 worse, median MSE
ratio 0.471 -> 0.486, 90th 0.735 -> 0.732, worst 1.954 -> 1.037, maps worse than raw 5 -> 3. Not adopted.

    python benchmarks/bench_fresh_held_out.py --set fresh-tuning-more --csv /tmp/ftm.csv --summary /tmp/ftm.md
    python benchmarks/background_from_deblurred.py /tmp/ftm.csv
"""
import csv, sys, warnings
import numpy as np
sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
import sigma_scenes_fresh as S
import xrfgpu
from xrfgpu import psf as P
from xrfgpu.background import _smoothed_quantiles
import array_api_compat.numpy as xnp


def main(argv):
    """Print one line per tuning map and the two summaries."""
    rows = {(r["label"], r["seed"], r["size"], r["counts"], r["true_sigma"]): r for r in csv.DictReader(open(argv[0]))}
    q = float(argv[1]) if len(argv) > 1 else 0.02
    out = []
    for case in S.FRESH_TUNING_MORE:
        family, seed, size, sigma, signal, background = case
        counts, truth_sigma, label, scene = S.make_case(case, return_scene=True)
        r = next((v for k, v in rows.items() if k[0] == label and k[1] == str(seed) and k[2] == str(size) and k[3] == f"{signal:g}/{background:g}"), None)
        if r is None:
            continue
        b1, s1, it1 = float(r["restore_background"]), float(r["restore_sigma"]), int(r["restore_iterations"])
        raw = float(r["raw_mse"])
        h = P.gaussian_for_map(s1, counts.shape)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x0 = np.asarray(xrfgpu.richardson_lucy(counts.astype(np.float64), h, num_iter=max(it1, 10), background=0.0))
        level = _smoothed_quantiles(xnp.asarray(x0), 5, (q,), xp=xnp)[0]
        b2 = min(b1, max(level, 0.0))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rest, info = xrfgpu.restore(counts, background=b2, return_info=True)
        mse2 = float(np.mean((np.asarray(rest, dtype=np.float64) + info["background"] - background - scene) ** 2))
        out.append((label, size, signal, background, truth_sigma, b1, b2, float(r["mse_ratio"]), mse2 / raw))
        print(f"{label:22s} {size:4d} {signal:g}/{background:g} σ{truth_sigma:5.1f} b1 {b1:8.1f} b2 {b2:8.1f} ratio {float(r['mse_ratio']):.3f} -> {mse2/raw:.3f}", flush=True)
    a = np.array([o[7] for o in out]); b = np.array([o[8] for o in out])
    for name, v in (("baseline", a), ("deblurred b", b)):
        print(f"{name:12s} median {np.median(v):.3f} 90th {np.percentile(v, 90):.3f} worst {v.max():.3f} worse than raw {int((v >= 1).sum())}/{len(v)}")


if __name__ == "__main__":
    main(sys.argv[1:])
