"""Synthetic scans with known PSF for the PSF-estimation tests (shared by tests/test_psf_*.py).

Every map is a larger scene blurred by linear convolution and cut from its
middle (:func:`xrfgpu.phantom.blurred_window`), with Poisson counts at the
paper's level: signal ≈ 150 counts above a background of ≈ 140 counts per
pixel (0.5 s dwell, 429 − 275 cps on Cr and 275 cps background, rounded up).
"""

from __future__ import annotations

import math

import numpy as np

from xrfgpu import phantom
from xrfgpu.psf import gaussian

SIGNAL = 150.0
BACKGROUND = 140.0


def poisson(mean, seed):
    return np.random.default_rng(seed).poisson(mean).astype(np.float64)


def edge_scan(shape, sigma, angle_deg, *, seed=0, sigma_y=None, rho=0.0, offset=0.3):
    """Straight edge whose normal points at ``angle_deg`` from +u towards +v, blurred and counted."""
    psf = gaussian(None, sigma, sigma_y, rho)
    kr, kc = psf.shape
    rows, cols = shape[0] + kr + 8, shape[1] + kc + 8
    vv, uu = np.mgrid[:rows, :cols].astype(np.float64)
    theta = math.radians(angle_deg)
    t = (uu - cols / 2) * math.cos(theta) + (vv - rows / 2) * math.sin(theta)
    scene = (t > offset).astype(np.float64)
    blurred, _ = phantom.blurred_window(scene, psf, shape)
    return poisson(SIGNAL * blurred + BACKGROUND, seed)


def dot_scan(shape, sigma_u, sigma_v, rho, *, seed=0, dot_radius_px=0.0, peak=SIGNAL, centre_offset=(1, -2)):
    """Scan of a small dot: a single pixel (or a disk) blurred by the anisotropic Gaussian spot.

    Returns the counts and the (row, col) of the dot centre in the map.
    """
    psf = gaussian(None, sigma_u, sigma_v, rho)
    kr, kc = psf.shape
    rows, cols = shape[0] + kr + 8, shape[1] + kc + 8
    r0, c0 = rows // 2 + centre_offset[0], cols // 2 + centre_offset[1]
    scene = np.zeros((rows, cols))
    if dot_radius_px > 0:
        vv, uu = np.mgrid[:rows, :cols].astype(np.float64)
        scene[(vv - r0) ** 2 + (uu - c0) ** 2 <= dot_radius_px**2] = 1.0
    else:
        scene[r0, c0] = 1.0
    blurred, _ = phantom.blurred_window(scene, psf, shape)
    counts = poisson(peak * blurred / blurred.max() + BACKGROUND, seed)
    return counts, (r0 - (rows - shape[0]) // 2, c0 - (cols - shape[1]) // 2)


def bar_chart(shape):
    """USAF-like chart: groups of three bars (vertical and horizontal) of widths 24 … 3 px."""
    rows, cols = shape
    scene = np.zeros(shape)
    y, x = 10, 10
    for i, w in enumerate((24, 18, 14, 10, 8, 6, 5, 4, 3)):
        if i % 2 == 0:
            for b in range(3):
                scene[y : y + 5 * w, x + 2 * b * w : x + 2 * b * w + w] = 1.0
            x += 6 * w + 10
        else:
            for b in range(3):
                scene[y + 2 * b * w : y + 2 * b * w + w, x : x + 5 * w] = 1.0
            x += 5 * w + 10
        if x > cols - 80:
            x, y = 10, y + 130
    return scene


def bar_scan(shape, sigma, *, seed=0):
    psf = gaussian(None, sigma)
    kr, kc = psf.shape
    scene = bar_chart((shape[0] + kr + 8, shape[1] + kc + 8))
    blurred, _ = phantom.blurred_window(scene, psf, shape)
    return poisson(SIGNAL * blurred + BACKGROUND, seed)


def grains_scan(shape, sigma, *, seed=0):
    counts, _, _ = phantom.observe(shape, sigma, seed=seed, signal_counts=SIGNAL, background_counts=BACKGROUND)
    return counts.astype(np.float64)
