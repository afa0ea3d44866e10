"""What the Si counts of the simulated skarn can say about the Si-only vein: its centre and mass, not its width.

Issue 18's last open target (Si MSE ≤ 0.70 × independent RL) is held back by the zone around the
8 px Si-only vein (:mod:`skarn`), where every method tried keeps independent RL's error
(docs/joint.md, "Where the Si error sits"). This script asks what the counts determine there.

1. **Fisher information of the vein's cross profile.** Across the vein the expected Si counts are
   ``μ(d) = B + m + h [Φ((d − c + w/2)/σ) − Φ((d − c − w/2)/σ)]`` (a box of width ``w`` and height ``h``
   on a matrix level ``m``, blurred by the Gaussian PSF σ = 16 px; ``B`` the known background), sampled
   once per pixel along the vein's whole length (174 px) out to ±60 px. The Cramér–Rao bound
   ``F⁻¹``, ``F = Σ ∇μ ∇μᵀ / μ`` (Poisson), gives the smallest standard deviation an unbiased
   estimate of each parameter can have, with the others unknown. The model is optimistic: no
   stage jitter or drift, a perfectly straight vein of constant width, a flat matrix.
2. **What a width error costs.** The squared error per unit length of the vein, ``∫ (x̂(d) − x(d))²
   dd`` over |d| ≤ 30 px, of profiles with the true centre and mass: boxes of other widths, and the
   posterior mean of the box over a uniform prior on the width (what an estimator that knew the
   vein is a box of this mass, but not its width, would return when the counts cannot tell the
   width: the lowest mean squared error for that prior).
3. **What the restorations did** (``--seeds``): the same per-length error of independent RL (the
   benchmark's, :mod:`bench_joint`) measured on the maps over the vein's middle 70 % (``|d| ≤ 30``
   px; the zone holds only matrix and vein), and with ``--joint`` the default joint restoration's
   (about a minute per seed on 2 CPU cores).

Run::

    python benchmarks/joint_vein_bound.py
    python benchmarks/joint_vein_bound.py --seeds 0 1 2 --joint
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
from scipy.stats import norm

sys.path.insert(0, str(Path(__file__).resolve().parent))

import skarn  # noqa: E402

ZONE_PX = 30.0
SIGNAL_CPS, BACKGROUND_CPS = skarn.RATES["Si"]
#: counts per pixel above background per unit of Si concentration
COUNTS_PER_CONC = skarn.DWELL_S * (SIGNAL_CPS - BACKGROUND_CPS)
BACKGROUND = skarn.DWELL_S * BACKGROUND_CPS
MATRIX = COUNTS_PER_CONC * skarn.MINERALS["matrix"][0]
HEIGHT = COUNTS_PER_CONC * (skarn.MINERALS["quartz"][0] - skarn.MINERALS["matrix"][0])
WIDTH = skarn.VEIN_WIDTH
SIGMA = skarn.SIGMA_PX["Si"]
PARAMETERS = ("height h (counts)", "width w (px)", "centre c (px)", "matrix m (counts)")


def vein_length():
    """Length (px) of the vein's centre line segment."""
    (r0, c0), (r1, c1) = skarn.VEIN
    return float(np.hypot(r1 - r0, c1 - c0))


def expected_profile(d, h, w, c, m):
    """Expected Si counts at signed distance ``d`` (px) from the vein's centre line."""
    return BACKGROUND + m + h * (norm.cdf((d - c + w / 2) / SIGMA) - norm.cdf((d - c - w / 2) / SIGMA))


def cramer_rao(length=None, reach=60.0, step=0.25, matrix_known=False):
    """Cramér–Rao standard deviations of (h, w, c[, m]) and of the mass h·w (counts · px), Poisson counts.

    One sample per pixel along ``length`` px of vein (default: the whole segment) and per pixel across
    it out to ±``reach`` px, integrated on a grid of ``step`` px.
    """
    length = vein_length() if length is None else length
    d = np.arange(-reach, reach + step / 2, step)
    theta = np.array([HEIGHT, WIDTH, 0.0, MATRIX])
    n = 3 if matrix_known else 4
    mu = expected_profile(d, *theta)
    jac = []
    for i in range(n):
        e = np.zeros(4)
        e[i] = 1e-5 * max(1.0, abs(theta[i]))
        jac.append((expected_profile(d, *(theta + e)) - expected_profile(d, *(theta - e))) / (2 * e[i]))
    jac = np.array(jac)
    fisher = length * step * (jac / mu) @ jac.T
    cov = np.linalg.inv(fisher)
    grad_mass = np.zeros(n)
    grad_mass[0], grad_mass[1] = WIDTH, HEIGHT
    return np.sqrt(np.diag(cov)), float(np.sqrt(grad_mass @ cov @ grad_mass))


def profile_error(estimate, d, step):
    """∫ (estimate − truth)² dd over |d| ≤ ZONE_PX: squared error per unit length of vein (counts² · px)."""
    truth = np.where(np.abs(d) <= WIDTH / 2, HEIGHT, 0.0)
    return float(np.sum((estimate - truth) ** 2) * step)


def box_profiles(step=0.01):
    """Rows (label, error per unit length) of boxes of the true mass and of posterior means over widths."""
    d = np.arange(-ZONE_PX, ZONE_PX + step / 2, step)
    mass = HEIGHT * WIDTH

    def box(w):
        return np.where(np.abs(d) <= w / 2, mass / w, 0.0)

    rows = [(f"box of the true mass, width {w:g} px", profile_error(box(w), d, step)) for w in (4, 8, 12, 16, 20, 24)]
    for lo, hi in ((1.0, 30.0), (2.0, 20.0), (4.0, 16.0)):
        mean = np.mean([box(w) for w in np.linspace(lo, hi, 300)], axis=0)
        rows.append((f"posterior mean over widths uniform in [{lo:g}, {hi:g}] px", profile_error(mean, d, step)))
    return rows


def measured_errors(image, truth):
    """Per-unit-length squared error of a restored Si map over the vein's middle 70 %, |d| ≤ ZONE_PX."""
    yy, xx = np.mgrid[: skarn.SIZE, : skarn.SIZE].astype(np.float64)
    dist, t = skarn._vein_geometry(yy, xx)
    band = (dist <= ZONE_PX) & (t >= 0.15) & (t <= 0.85)
    err = float(np.sum((image - truth)[band] ** 2))
    return err / (0.70 * vein_length())


def restorations(seed, with_joint):
    """(independent RL Si map, joint Si map or None, Si truth) of skarn scene ``seed``."""
    from xrfgpu import restore
    from xrfgpu.joint import joint_richardson_lucy

    counts, truths, psfs, bgs, _ = skarn.observe(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rl = restore(counts[0], method="rl", sigma=SIGMA, background=bgs[0])
        joint = None
        if with_joint:
            joint = joint_richardson_lucy(counts, psfs, background=bgs)[0]
    return np.asarray(rl), (None if joint is None else np.asarray(joint)), truths[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[])
    parser.add_argument("--joint", action="store_true", help="also the default joint restoration (slow)")
    args = parser.parse_args(argv)

    print(f"Si vein: width {WIDTH:g} px, height {HEIGHT:g} counts over a matrix of {MATRIX:g}, background "
          f"{BACKGROUND:g}, PSF σ {SIGMA:g} px, length {vein_length():.0f} px")
    for known in (False, True):
        sd, sd_mass = cramer_rao(matrix_known=known)
        names = PARAMETERS[: len(sd)]
        cells = ", ".join(f"{n} ± {s:.3g}" for n, s in zip(names, sd))
        print(f"Cramér–Rao sd ({'matrix known' if known else 'all four unknown'}): {cells}; "
              f"mass h·w = {HEIGHT * WIDTH:g} ± {sd_mass:.3g} counts·px")
    print("\nsquared error per unit length of vein, |d| ≤ 30 px (counts²·px):")
    for label, err in box_profiles():
        print(f"  {label}: {err:.0f}")
    for seed in args.seeds:
        rl, joint, truth = restorations(seed, args.joint)
        line = f"  seed {seed}: independent RL {measured_errors(rl, truth):.0f}"
        if joint is not None:
            line += f", joint {measured_errors(joint, truth):.0f}"
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
