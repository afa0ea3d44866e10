"""Where the Si error of the simulated skarn sits, region by region, as bias² and variance.

A diagnostic for the joint restoration (:mod:`bench_joint`): per scene seed it
draws ``--realisations`` independent noise realisations of the same scene
(counts, stage jitter, drift: :func:`skarn.observe` with ``noise_seed``),
restores Si with each method, and splits the interior mean squared error
against the truth, pixel by pixel, into the squared bias of the mean
restoration and the variance across realisations, ``MSE = bias² + var``
(averaged over realisations), in four regions that partition the interior:

* ``vein zone``: within 30 px of the Si-only vein's centre line (matrix and vein
  only: the scene keeps grains out of it);
* ``edges``: within 8 px (½ Si's PSF σ) of a boundary between materials, off the zone;
* ``grains``: grain interiors farther than that;
* ``matrix``: flat matrix farther than that, off the zone.

Each region's share is its summed error over the whole interior's pixel count,
so the four add up to the interior MSE; everything is printed as a ratio to
independent RL's interior MSE of the same realisations.

Methods: independent RL (:func:`xrfgpu.restore`, as the benchmark), joint
restoration at a fixed weight and iteration count (``--weight``, ``--iters``;
everything else the library's default), and the guided filter of He et al.
(2013) applied to the independent Si RL with the independent Fe RL as the
guide, box radius ``r`` and regulariser ``ε`` swept (``--gf``): a reference
for the MSE that transferring the guide's structure can reach at all. Its
best (r, ε) per seed is chosen *with the truth*, so it is an optimistic
bound, not a method.

Run::

    python benchmarks/joint_si_error.py --seeds 0 1 2 --realisations 4

References
----------
K. He, J. Sun, X. Tang, "Guided image filtering", IEEE Trans. Pattern Anal.
Mach. Intell. 35, 1397 (2013), doi:10.1109/TPAMI.2012.213.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent))

import skarn  # noqa: E402

from xrfgpu import restore  # noqa: E402
from xrfgpu.joint import joint_richardson_lucy  # noqa: E402

MARGIN = 32
EDGE_PX = 8.0
REGIONS = ("vein zone", "edges", "grains", "matrix")


def regions(masks):
    """Boolean maps of the four regions on the interior (MARGIN px from the borders)."""
    label = masks["label"].copy()
    label[masks["inclusion"]] = 5
    boundary = np.zeros(label.shape, dtype=bool)
    boundary[:, 1:] |= label[:, 1:] != label[:, :-1]
    boundary[:, :-1] |= label[:, 1:] != label[:, :-1]
    boundary[1:, :] |= label[1:, :] != label[:-1, :]
    boundary[:-1, :] |= label[1:, :] != label[:-1, :]
    near_edge = ndimage.distance_transform_edt(~boundary) <= EDGE_PX
    yy, xx = np.mgrid[: skarn.SIZE, : skarn.SIZE].astype(np.float64)
    zone = skarn._vein_geometry(yy, xx)[0] <= 30
    out = {"vein zone": zone, "edges": near_edge & ~zone, "grains": (label != 0) & ~near_edge & ~zone,
           "matrix": (label == 0) & ~near_edge & ~zone}
    sl = (slice(MARGIN, -MARGIN), slice(MARGIN, -MARGIN))
    return {k: v[sl] for k, v in out.items()}


def guided_filter(guide, image, radius, eps):
    """He et al. (2013) guided filter: ``q = ā I + b̄`` with ``a = cov(I, p)/(var I + ε)`` in boxes of radius r."""
    size = 2 * int(radius) + 1

    def box(a):
        return ndimage.uniform_filter(a, size=size, mode="reflect")

    mi, mp = box(guide), box(image)
    a = (box(guide * image) - mi * mp) / (box(guide * guide) - mi * mi + eps)
    b = mp - a * mi
    return box(a) * guide + box(b)


def split(estimates, truth, parts):
    """Per region: (bias², variance) summed over the region / interior pixel count."""
    sl = (slice(MARGIN, -MARGIN), slice(MARGIN, -MARGIN))
    e = np.stack([x[sl] for x in estimates])
    t = truth[sl]
    bias2 = (e.mean(axis=0) - t) ** 2
    var = e.var(axis=0)
    n = t.size
    return {k: (float(bias2[m].sum() / n), float(var[m].sum() / n)) for k, m in parts.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--realisations", type=int, default=4)
    parser.add_argument("--weight", type=float, default=0.1)
    parser.add_argument("--iters", type=int, default=400)
    parser.add_argument("--gf", type=float, nargs="*", default=[4, 8, 16],
                        help="guided-filter box radii (px); ε swept over 1e-3…1e-1 of the guide's range²")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rows = []
    for seed in args.seeds:
        est = {"independent RL": [], f"joint λ {args.weight:g}, {args.iters} it": []}
        gf_keys = [(r, e) for r in args.gf for e in (1e-3, 1e-2, 1e-1)]
        gf = {k: [] for k in gf_keys}
        masks = truth = None
        for r in range(args.realisations):
            counts, truths, psfs, bgs, masks = skarn.observe(seed, noise_seed=1000 + r)
            truth = truths[0]
            si = np.asarray(restore(counts[0], method="rl", sigma=skarn.SIGMA_PX["Si"], background=bgs[0]),
                            dtype=np.float64)
            fe = np.asarray(restore(counts[2], method="rl", sigma=skarn.SIGMA_PX["Fe"], background=bgs[2]),
                            dtype=np.float64)
            est["independent RL"].append(si)
            out = joint_richardson_lucy(counts, psfs, background=bgs, weight=args.weight, num_iter=args.iters)
            est[f"joint λ {args.weight:g}, {args.iters} it"].append(np.asarray(out[0], dtype=np.float64))
            lo, hi = np.percentile(fe, [1, 99])
            g = (fe - lo) / (hi - lo)
            for (rad, e) in gf_keys:
                gf[(rad, e)].append(guided_filter(g, si, rad, e))
        parts = regions(masks)
        ref = split(est["independent RL"], truth, parts)
        ref_total = sum(b + v for b, v in ref.values())
        best = min(gf_keys, key=lambda k: sum(b + v for b, v in split(gf[k], truth, parts).values()))
        est[f"guided filter of RL (best r {best[0]:g}, ε {best[1]:g}; truth-chosen)"] = gf[best]
        print(f"seed {seed}: independent RL interior Si MSE {ref_total:.3f} (mean of {args.realisations} "
              f"realisations); regions' pixel shares " +
              ", ".join(f"{k} {m.mean():.0%}" for k, m in parts.items()))
        for name, xs in est.items():
            s = split(xs, truth, parts)
            total = sum(b + v for b, v in s.values())
            cells = "  ".join(f"{k} {s[k][0] / ref_total:.2f}+{s[k][1] / ref_total:.2f}" for k in REGIONS)
            print(f"  {name}: total {total / ref_total:.2f}  (bias²+var) {cells}", flush=True)
            rows.append({"seed": seed, "method": name, "total": total / ref_total,
                         **{k: [s[k][0] / ref_total, s[k][1] / ref_total] for k in REGIONS}})
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
