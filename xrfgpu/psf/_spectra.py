"""Fourier pieces shared by the blind σ stages (:mod:`.blind_sigma`, :mod:`.mosaic_scene_fit`).

Host-side NumPy/SciPy helpers: the border-free periodic part of a map, the
weights that make a real-FFT half plane count every frequency once, and the
transfer function of an isotropic Gaussian.

References
----------
L. Moisan, "Periodic plus smooth image decomposition", J. Math. Imaging Vis.
39, 161 (2011), doi:10.1007/s10851-010-0227-1.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import fft as sfft


def periodic_component(u):
    """Periodic part of Moisan's periodic + smooth decomposition (removes the FFT border cross)."""
    rows, cols = u.shape
    v = np.zeros_like(u)
    v[0, :] += u[-1, :] - u[0, :]
    v[-1, :] += u[0, :] - u[-1, :]
    v[:, 0] += u[:, -1] - u[:, 0]
    v[:, -1] += u[:, 0] - u[:, -1]
    q = np.arange(rows)[:, None]
    p = np.arange(cols)[None, :]
    den = 2.0 * np.cos(2.0 * np.pi * q / rows) + 2.0 * np.cos(2.0 * np.pi * p / cols) - 4.0
    den[0, 0] = 1.0
    s_hat = sfft.fft2(v) / den
    s_hat[0, 0] = 0.0
    return u - np.real(sfft.ifft2(s_hat))


def half_plane_weights(shape):
    """Weight per bin of the rfft2 half plane of a real (rows, cols) array: 2, or 1 for the
    columns that stand for one frequency only (zero, and Nyquist for even ``cols``)."""
    rows, cols = shape
    w = np.full((rows, cols // 2 + 1), 2.0)
    w[:, 0] = 1.0
    if cols % 2 == 0:
        w[:, -1] = 1.0
    return w


def gaussian_transfer(sigma, k2):
    """Transfer function exp(−2π²σ²|k|²) of an isotropic Gaussian (σ in pixels, k in cycles/pixel)."""
    return np.exp(-2.0 * math.pi**2 * sigma * sigma * k2)
