"""Where the joint Si error sits on the simulated skarn: the Si-only vein's zone against the rest.

The benchmark (:mod:`bench_joint`) shows joint restoration cutting the Si error
off the vein to about 0.4× independent RL while the zone within 30 px of the
Si-only vein (a quarter of the interior) keeps RL's error. This script
measures why: per seed it prints the interior Si MSE of

* plain RL of the *noise-free* expected counts (the scene blurred by the Si
  PSF, no Poisson noise, no stage jitter or drift) at 100, 400 and 1600
  iterations: how far any RL-type method could resolve the vein zone with
  perfect data;
* joint restoration at fixed weights λ (``--weights``), couplings γ
  (``--gammas``) and iteration counts (``--iters``), everything else
  automatic, with the vein's contrast kept and the Fe-only inclusion's
  imprint in Si (as :mod:`bench_joint` measures them);

each as ratios to the benchmark's independent RL: total / vein zone / off the zone.

Two diagnostics use the scene's geometry, which the algorithm never sees:

* ``--oracle``: the joint Si restoration with its direction field replaced,
  within 22 px of the vein's centre line, by the *exact* unit normal of the
  vein (optionally rotated by δ degrees, length ``|ξ|``), γ = 0.99, λ = 0.1:
  how good the own-edge field would have to be for the vein zone to improve;
* ``--directions``: how far the directions that the data give are from that
  normal: the structure tensor ``G_ρ ⊛ (∇v ∇vᵀ)`` (Weickert 1999;
  doi:10.1023/A:1008009714131) of the own plain RL (400 iterations, the
  own-edge field's source) smoothed by ``s`` px, its leading eigenvector's
  angle to the vein's normal, median and 90th percentile over the band
  (≤ 20 px from the centre line, the vein's middle 80 %).

Run::

    python benchmarks/joint_vein_zone.py --seeds 0 1 2
    python benchmarks/joint_vein_zone.py --seeds 0 1 2 --skip-noise-free --weights 0.1 0.2 --gammas 0.9 0.99 --iters 400 800
    python benchmarks/joint_vein_zone.py --seeds 0 1 2 --skip-noise-free --weights --oracle --directions
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage, signal

sys.path.insert(0, str(Path(__file__).resolve().parent))

import skarn  # noqa: E402

from xrfgpu import restore, richardson_lucy  # noqa: E402
from xrfgpu import joint  # noqa: E402
from xrfgpu.joint import joint_richardson_lucy  # noqa: E402

MARGIN = 32
ORACLE_BAND_PX = 22.0
#: (rotation δ in degrees, field length |ξ|) of the oracle rows
ORACLE_ROWS = ((0.0, 0.999), (0.0, 0.95), (2.0, 0.999), (5.0, 0.999), (10.0, 0.999))


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


def vein_normal():
    """Unit normal of the vein's centre line as (column, row) components, the field's (ξ_x, ξ_y) order."""
    (r0, c0), (r1, c1) = skarn.VEIN
    n = np.array([r1 - r0, -(c1 - c0)], dtype=np.float64)  # (x = column, y = row), perpendicular to the line
    return n / np.hypot(*n)


def _line(label, image, truth, ref, masks, independent):
    e = zone_errors(image, truth) / ref
    kept = skarn.vein_contrast(image, masks) / skarn.vein_contrast(independent, masks)
    imprint, noise = skarn.imprint(image, masks)
    return (f"  {label}: total {e[0]:.2f}  vein zone {e[1]:.2f}  off {e[2]:.2f}  vein kept {kept:.0%}  "
            f"inclusion {imprint:+.2f} ({noise:.2f})")


def oracle_runs(counts, psfs, bgs, truth, ref, masks, independent, num_iter=400, weight=0.1, gamma=0.99):
    """Joint Si with the exact vein normal as its field near the vein (a diagnostic: uses the truth's geometry).

    The field elsewhere, and wherever the guide's is longer, is the algorithm's own
    (:func:`xrfgpu.joint.combined_field` of the Fe guide and the Si plain RL). Private helpers of
    :mod:`xrfgpu.joint` run the batched EM-dTV with that field.
    """
    xp = np
    hs = joint._each_psf(psfs, counts, xp=xp)
    guide_map, _ = joint._restore_alone(counts[2], hs[2], bgs[2], num_iter=None, seed=0)
    field, _ = joint.guide_field(guide_map, smoothing_px=1.0)
    own = richardson_lucy(counts[0], hs[0], num_iter=400, background=bgs[0])
    base = joint.combined_field(field, own, eta_factor=2.0)
    yy, xx = np.mgrid[: skarn.SIZE, : skarn.SIZE].astype(np.float64)
    band = skarn._vein_geometry(yy, xx)[0] <= ORACLE_BAND_PX
    nx, ny = vein_normal()
    lines = []
    out = joint._batch_run(counts, hs, bgs, [0], [weight], base, num_iter, gamma, "reflect", xp=xp)
    lines.append(_line(f"data's field, γ {gamma:g}, {num_iter} it", np.asarray(out[0]), truth, ref, masks,
                       independent))
    for deg, length in ORACLE_ROWS:
        a = np.radians(deg)
        rx, ry = nx * np.cos(a) - ny * np.sin(a), nx * np.sin(a) + ny * np.cos(a)
        exact = np.stack([np.where(band, rx * length, 0.0), np.where(band, ry * length, 0.0)]).astype(np.float32)
        longer = (base[0] ** 2 + base[1] ** 2) >= (exact[0] ** 2 + exact[1] ** 2)
        f = np.where(longer, base, exact)
        out = joint._batch_run(counts, hs, bgs, [0], [weight], f, num_iter, gamma, "reflect", xp=xp)
        lines.append(_line(f"exact normal rotated {deg:g}°, |ξ| {length:g}, γ {gamma:g}, {num_iter} it",
                           np.asarray(out[0]), truth, ref, masks, independent))
    return lines


def direction_errors(counts, psfs, bgs, smoothing=(2.0, 8.0), integration=(8.0, 16.0, 24.0)):
    """Angle (degrees) between the structure tensor's leading direction and the vein's normal, in its band."""
    own = np.asarray(richardson_lucy(counts[0], psfs[0], num_iter=400, background=bgs[0]), dtype=np.float64)
    yy, xx = np.mgrid[: skarn.SIZE, : skarn.SIZE].astype(np.float64)
    dist, t = skarn._vein_geometry(yy, xx)
    band = (dist <= 20) & (t >= 0.1) & (t <= 0.9)
    nx, ny = vein_normal()
    lines = []
    for s in smoothing:
        v = ndimage.gaussian_filter(own, s, mode="reflect")
        gy, gx = np.gradient(v)
        for rho in integration:
            jxx, jxy, jyy = (ndimage.gaussian_filter(a, rho, mode="reflect") for a in (gx * gx, gx * gy, gy * gy))
            half_gap = np.sqrt(np.maximum(0.25 * (jxx - jyy) ** 2 + jxy ** 2, 0.0))
            ex, ey = 0.5 * (jxx - jyy) + half_gap, jxy  # leading eigenvector (unnormalised)
            norm = np.hypot(ex, ey) + 1e-300
            angle = np.degrees(np.arccos(np.clip(np.abs(ex * nx + ey * ny) / norm, 0.0, 1.0)))
            p50, p90 = np.percentile(angle[band], [50, 90])
            lines.append(f"  structure tensor s {s:g} px, ρ {rho:g} px: angle to the vein's normal "
                         f"median {p50:.1f}°, 90th percentile {p90:.1f}°")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--weights", type=float, nargs="*", default=[0.05, 0.1, 0.2])
    parser.add_argument("--gammas", type=float, nargs="+", default=[0.9])
    parser.add_argument("--iters", type=int, nargs="+", default=[400])
    parser.add_argument("--skip-noise-free", action="store_true", help="leave out the noise-free RL rows")
    parser.add_argument("--oracle", action="store_true", help="joint Si with the exact vein normal as its field")
    parser.add_argument("--directions", action="store_true", help="structure-tensor direction errors at the vein")
    args = parser.parse_args(argv)
    for seed in args.seeds:
        counts, truths, psfs, bgs, masks = skarn.observe(seed)
        ind = np.asarray(restore(counts[0], method="rl", sigma=skarn.SIGMA_PX["Si"], background=bgs[0]))
        ref = zone_errors(ind, truths[0])
        print(f"seed {seed}: independent RL Si MSE {ref[0]:.3f}, vein zone {ref[1] / ref[0]:.0%} of it")
        if not args.skip_noise_free:
            mu, h = noise_free_si(seed)
            for k in (100, 400, 1600):
                e = zone_errors(richardson_lucy(mu, h, num_iter=k, background=bgs[0]), truths[0]) / ref
                print(f"  noise-free RL, {k:4d} it: total {e[0]:.2f}  vein zone {e[1]:.2f}  off {e[2]:.2f}",
                      flush=True)
        for k in args.iters:
            for g in args.gammas:
                for w in args.weights:
                    out = joint_richardson_lucy(counts, psfs, background=bgs, weight=w, num_iter=k, gamma=g)
                    print(_line(f"joint λ {w:g}, γ {g:g}, {k} it", np.asarray(out[0]), truths[0], ref, masks, ind),
                          flush=True)
        if args.oracle:
            for line in oracle_runs(counts, psfs, bgs, truths[0], ref, masks, ind):
                print(line, flush=True)
        if args.directions:
            for line in direction_errors(counts, psfs, bgs):
                print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
