"""Is σ in the map at all? The Cramér–Rao bound of σ for an observer who knows the scene.

    python benchmarks/sigma_fisher_bound.py [--set tuning|tuning-extended|tuning-more|held-out] [--check N]

For every map of :mod:`sigma_scenes` the unblurred scene is known, so the
expected counts are μ(σ) = b + s · crop(G_σ ∗ scene) and the Poisson Fisher
information of the blur width is

    I(σ) = Σ_pixels (∂μ/∂σ)² / μ,

with ∂μ/∂σ by a central difference of the exact Gaussian blur (the benchmark's
own ``_blur``). No unbiased estimator that knows the scene has a standard
deviation below 1/√I(σ); the script prints it relative to the true σ (for the
HXN family, whose truth is √(σ² + σ₀²), propagated to the truth). A blind
estimator, which must also infer the scene, can only do worse.

It answers a different question from ``sigma_scene_oracle.py``: that oracle
knows only the scene's ring *spectrum*, as a spectral estimator at best could,
and misses by up to 65–95 % on the tuning sets. If the bound here is small on
the same maps, σ *is* in the data and the gap is the estimator's scene model
(what it assumes about the scene), not the noise: phases (edges, shapes) carry
what the spectrum cannot.

``--check N`` verifies that the bound is attained: on the first four maps of
the set, σ is fitted N times by maximum Poisson likelihood with the scene
known (fresh noise each time), and the spread of those fits is printed next
to the bound. The held-out set may be used here: nothing in this script feeds
the estimator, it measures the maps, not the estimator.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sigma_scenes  # noqa: E402


def expected_counts(scene, margin, size, sigma, signal, background):
    """μ = background + signal × (scene blurred by σ, cropped to the map), clipped at the background."""
    blurred = sigma_scenes._blur(scene, sigma)[margin : margin + size, margin : margin + size]
    return background + signal * np.clip(blurred, 0.0, None)


def fisher_information(scene, margin, size, sigma, signal, background, *, step=1e-3):
    """Poisson Fisher information of σ (1/px²) for a known scene on its canvas.

    Parameters
    ----------
    scene : ndarray
        Unblurred scene on the whole canvas, in [0, 1].
    margin : int
        Canvas margin on each side of the map (px).
    size : int
        Side of the square map (px).
    sigma : float
        Blur σ (px) at which the information is evaluated.
    signal, background : float
        Counts per pixel of a scene value 1, and of the flat background.
    step : float
        Central-difference step, relative to σ.

    Returns
    -------
    float
        I(σ) = Σ (∂μ/∂σ)² / μ.
    """
    h = step * sigma
    mu = expected_counts(scene, margin, size, sigma, signal, background)
    dmu = (expected_counts(scene, margin, size, sigma + h, signal, background)
           - expected_counts(scene, margin, size, sigma - h, signal, background)) / (2.0 * h)
    return float(np.sum(dmu * dmu / mu))


def relative_bound(case):
    """Cramér–Rao standard deviation of the true σ, relative to it, for ``case`` with its scene known."""
    family, seed, size, sigma, signal, background = case
    scene, margin, label, truth = sigma_scenes.scene_canvas(case)
    sd = 1.0 / math.sqrt(fisher_information(scene, margin, size, sigma, signal, background))
    return sd * (sigma / truth) / truth, label, truth


def known_scene_ml_sigma(counts, scene, margin, signal, background, bracket):
    """σ (px) maximising the Poisson likelihood of ``counts`` with the scene known (bounded scalar search)."""
    from scipy import optimize

    size = counts.shape[0]

    def nll(s):
        mu = expected_counts(scene, margin, size, s, signal, background)
        return float(np.sum(mu - counts * np.log(mu)))

    return float(optimize.minimize_scalar(nll, bounds=bracket, method="bounded",
                                          options={"xatol": 1e-4 * bracket[1]}).x)


def check_attained(cases, draws):
    """Spread of the known-scene ML σ over ``draws`` noise draws, next to the bound, per case (relative)."""
    rows = []
    for case in cases:
        family, seed, size, sigma, signal, background = case
        scene, margin, label, _ = sigma_scenes.scene_canvas(case)
        mu = expected_counts(scene, margin, size, sigma, signal, background)
        rng = np.random.default_rng([7, seed, size])
        fits = [known_scene_ml_sigma(rng.poisson(mu).astype(np.float64), scene, margin, signal, background,
                                     (0.5 * sigma, 1.5 * sigma)) for _ in range(draws)]
        bound = 1.0 / math.sqrt(fisher_information(scene, margin, size, sigma, signal, background))
        rows.append((label, size, sigma, float(np.std(fits, ddof=1)) / sigma, bound / sigma,
                     float(np.mean(fits)) / sigma - 1.0))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=("tuning", "tuning-extended", "tuning-more", "held-out"),
                        default="tuning-extended")
    parser.add_argument("--check", type=int, default=0, metavar="N",
                        help="also fit σ N times with the scene known on four maps (the bound is attained?)")
    args = parser.parse_args(argv)
    cases = {"tuning": sigma_scenes.TUNING, "tuning-extended": sigma_scenes.TUNING_EXTENDED,
             "tuning-more": sigma_scenes.TUNING_MORE, "held-out": sigma_scenes.HELD_OUT}[args.set]
    rows = []
    for case in cases:
        rel, label, truth = relative_bound(case)
        rows.append((case, label, rel))
    rel = np.array([r[2] for r in rows])
    print(f"{args.set}: {len(rows)} maps; Cramér–Rao sd of σ with the scene known, relative to σ: median "
          f"{100 * np.median(rel):.2f} %, 90th pct {100 * np.quantile(rel, 0.9):.2f} %, largest {100 * rel.max():.2f} %")
    for case, label, r in sorted(rows, key=lambda t: -t[2])[:5]:
        print(f"  {label:22s} {case[2]:4d}² σ={case[3]:5.1f} counts {case[4]:g}/{case[5]:g}: {100 * r:.2f} %")
    if args.check:
        print(f"known-scene maximum likelihood, {args.check} noise draws each (sd / bound / mean bias, relative):")
        for label, size, sigma, sd, bound, bias in check_attained([r[0] for r in rows[:4]], args.check):
            print(f"  {label:22s} {size:4d}² σ={sigma:5.1f}: sd {100 * sd:.2f} %, bound {100 * bound:.2f} %, "
                  f"bias {100 * bias:+.2f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
