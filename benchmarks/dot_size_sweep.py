"""Is the dot smaller than the spot? How often `dot_is_resolved` speaks on spots and on disks of known size.

Two sets of simulated dot scans (Poisson counts, pixel-centre sampling):

* Gaussian spots with no dot (``xrfgpu.psf.gaussian``): σ 1.5, 3, 6, 10 px; circular, and elliptical
  (σv = 1.3 σu, ρ 0.3); peak/background 150/140 (the paper's), 2000/100 and 50000/10; 4 seeds each
  (96 maps). Each call "resolved" is a false alarm.
* Disks of diameter D under a Gaussian of σ = 3 px (``xrfgpu.psf.dot_size.disk_spot_profile``), D/σ =
  0.5–10, peak/background 150/140 and 2000/100, 4 seeds each, the centre at a random sub-pixel offset:
  the share called resolved and the median fitted D/D and σ/σ.

Run::

    python benchmarks/dot_size_sweep.py
"""

import time

import numpy as np

from xrfgpu import psf
from xrfgpu.psf.dot_size import RESOLVED_F_STATISTIC, disk_spot_profile, dot_is_resolved, fit_disk_spot


def gaussian_spots(rng):
    alarms, total, largest_f = 0, 0, 0.0
    for sigma in (1.5, 3.0, 6.0, 10.0):
        size = max(int(8 * sigma) | 1, 21)
        for peak, background in ((150, 140), (2000, 100), (50000, 10)):
            for elliptical in (False, True):
                for seed in range(4):
                    spot = psf.gaussian((size, size), sigma, sigma * (1.3 if elliptical else 1.0),
                                        rho=0.3 if elliptical else 0.0)
                    counts = rng.poisson(background + peak * spot / spot.max()).astype(float)
                    fit = fit_disk_spot(counts)
                    total += 1
                    largest_f = max(largest_f, fit.f_statistic)
                    if dot_is_resolved(fit):
                        alarms += 1
                        print(f"  false alarm: σ {sigma}, {peak}/{background}, elliptical {elliptical}, "
                              f"seed {seed}: F {fit.f_statistic:.1f}, D {fit.diameter:.2f} px")
    print(f"Gaussian spots: {alarms} of {total} called resolved; largest F {largest_f:.1f} "
          f"(threshold {RESOLVED_F_STATISTIC:g})")


def disks(rng):
    sigma = 3.0
    yy, xx = np.mgrid[:81, :81]
    print("disks under σ = 3 px: D/σ, peak/background, called resolved, median fitted D/D, σ/σ")
    for ratio in (0.5, 1, 2, 3, 5, 10):
        for peak, background in ((150, 140), (2000, 100)):
            hits, d_ratio, s_ratio = 0, [], []
            for _ in range(4):
                cx, cy = 40 + rng.uniform(-0.5, 0.5), 40 + rng.uniform(-0.5, 0.5)
                profile = disk_spot_profile(np.hypot(xx - cx, yy - cy), sigma, ratio * sigma)
                counts = rng.poisson(background + peak * profile / profile.max()).astype(float)
                fit = fit_disk_spot(counts)
                hits += dot_is_resolved(fit)
                d_ratio.append(fit.diameter / (ratio * sigma))
                s_ratio.append(fit.sigma / sigma)
            print(f"  {ratio:4g}  {peak}/{background}  {hits} of 4  {np.median(d_ratio):.2f}  {np.median(s_ratio):.2f}")


def main():
    t0 = time.perf_counter()
    rng = np.random.default_rng(12345)
    gaussian_spots(rng)
    disks(rng)
    print(f"[{time.perf_counter() - t0:.0f} s]")


if __name__ == "__main__":
    main()
