"""Synthetic micro-XRF scenes with known truth, observed through a bordered window.

Maps made by circular blurring are periodic and flatter FFT methods. Here a
scene larger than the scan is blurred by linear convolution and the scan
window is cut from its middle, so the observed map has real borders: the
blur near an edge carries signal from outside the window.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

__all__ = ["grains_and_veins", "observe", "blurred_window"]


def grains_and_veins(shape, *, seed=0, n_grains=None, n_veins=None, grain_radius=(2.0, 12.0)):
    """Scene of mineral grains and thin veins, values in [0, 1] (a concentration).

    Parameters
    ----------
    shape : tuple of int
        (rows, cols) in pixels.
    seed : int
        Seed of the generator (the scene is a function of shape and seed).
    n_grains, n_veins : int, optional
        Counts; default scale with the area (one grain per ~900 px², one
        vein per ~40 000 px², at least 2 veins).
    grain_radius : (float, float)
        Range of grain radii, pixels.

    Returns
    -------
    scene : ndarray of float64, shape ``shape``
        Grains are ellipses of level 0.3–1.0 on a matrix at 0.05; veins are
        1–2 px wide lines at level 0.8, of random orientation.
    """
    rows, cols = (int(n) for n in shape)
    rng = np.random.default_rng(seed)
    area = rows * cols
    n_grains = max(1, area // 900) if n_grains is None else int(n_grains)
    n_veins = max(2, area // 40000) if n_veins is None else int(n_veins)
    scene = np.full((rows, cols), 0.05)
    yy, xx = np.mgrid[:rows, :cols].astype(np.float64)
    for _ in range(n_grains):
        r0, c0 = rng.uniform(0, rows), rng.uniform(0, cols)
        a, b = rng.uniform(*grain_radius, size=2)
        t = rng.uniform(0, np.pi)
        dy, dx = yy - r0, xx - c0
        u = (dx * np.cos(t) + dy * np.sin(t)) / a
        v = (-dx * np.sin(t) + dy * np.cos(t)) / b
        scene[u * u + v * v <= 1.0] = rng.uniform(0.3, 1.0)
    for _ in range(n_veins):
        r0, c0 = rng.uniform(0, rows), rng.uniform(0, cols)
        t = rng.uniform(0, np.pi)
        width = rng.uniform(1.0, 2.0)
        dist = np.abs((xx - c0) * np.sin(t) - (yy - r0) * np.cos(t))
        scene[dist <= width / 2] = 0.8
    return scene


def blurred_window(scene, psf, shape):
    """Linear convolution of ``scene`` with ``psf``, cut to the central ``shape``.

    The scene must exceed ``shape`` by at least the PSF size minus one along
    each axis, so every observed pixel sees only real scene.

    Returns
    -------
    blurred : ndarray, shape ``shape``
    truth : ndarray, shape ``shape``
        The same window of the unblurred scene.
    """
    scene = np.asarray(scene, dtype=np.float64)
    psf = np.asarray(psf, dtype=np.float64)
    rows, cols = shape
    kr, kc = psf.shape
    if scene.shape[0] < rows + kr - 1 or scene.shape[1] < cols + kc - 1:
        raise ValueError("scene too small: it must exceed the window by the PSF size - 1")
    full = signal.fftconvolve(scene, psf, mode="full")
    # full[i] holds sum_j scene[j] psf[i - j]; the psf centre kr//2 maps scene i to full i + kr//2
    r0 = (scene.shape[0] - rows) // 2
    c0 = (scene.shape[1] - cols) // 2
    blurred = full[r0 + kr // 2 : r0 + kr // 2 + rows, c0 + kc // 2 : c0 + kc // 2 + cols]
    truth = scene[r0 : r0 + rows, c0 : c0 + cols]
    return np.clip(blurred, 0.0, None), truth.copy()


def observe(shape, sigma, *, seed=0, signal_counts=200.0, background_counts=100.0, scene=None):
    """A Poisson count map of grains and veins seen through a Gaussian spot.

    Parameters
    ----------
    shape : tuple of int
        (rows, cols) of the scan, pixels.
    sigma : float
        Gaussian PSF σ, pixels.
    seed : int
        Seed of the scene and of the counts.
    signal_counts : float
        Counts per pixel of concentration 1 above background.
    background_counts : float
        Background counts per pixel.
    scene : ndarray, optional
        Use this scene (must be larger than ``shape`` by the PSF size).

    Returns
    -------
    counts : ndarray of float32, shape ``shape``
        Poisson counts of ``signal_counts · (h ⊛ scene) + background_counts``.
    truth : ndarray of float64, shape ``shape``
        ``signal_counts · scene`` in the window (the ideal restored map,
        background removed).
    psf : ndarray of float64
        The Gaussian PSF used (±4 σ).
    """
    from .psf import gaussian

    psf = gaussian(None, sigma)
    kr, kc = psf.shape
    if scene is None:
        scene = grains_and_veins((shape[0] + kr + 8, shape[1] + kc + 8), seed=seed)
    blurred, truth = blurred_window(scene, psf, shape)
    rng = np.random.default_rng(seed + 7919)
    counts = rng.poisson(signal_counts * blurred + background_counts).astype(np.float32)
    return counts, signal_counts * truth, psf


