"""Fourier pieces shared by the blind σ stages (:mod:`.blind_sigma`, :mod:`.mosaic_scene_fit`).

Host-side NumPy/SciPy helpers: the border-free periodic part of a map, the
weights that make a real-FFT half plane count every frequency once, and the
transfer function of an isotropic Gaussian. And the array-API pieces with which
:func:`.blind_sigma._ring_spectrum` reads a map that lives on a device (a CuPy
array) where it is: its windowed periodogram (:func:`windowed_periodogram`) and
the sums of that periodogram over rings of bins (:func:`ring_table`,
:func:`ring_sums`), so that only a few hundred ring sums come to the host.

References
----------
L. Moisan, "Periodic plus smooth image decomposition", J. Math. Imaging Vis.
39, 161 (2011), doi:10.1007/s10851-010-0227-1.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import fft as sfft

from .._backend import array_device, rfft2, to_numpy


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


def windowed_periodogram(image, taper, taper_sum, taper_power, *, xp):
    """Periodogram of ``image`` times ``taper`` with the taper-weighted mean removed, on the half plane.

    |FFT((image − Σ image·taper / Σ taper) · taper)|² / Σ taper², computed in ``image``'s namespace
    and on its device (:func:`xrfgpu._backend.rfft2`), in float64.

    Parameters
    ----------
    image : array, shape (rows, cols)
        The map (counts), any array-API namespace.
    taper : array, shape (rows, cols)
        The window, in ``image``'s namespace and on its device.
    taper_sum, taper_power : float
        Σ taper and Σ taper² (dimensionless).
    xp : namespace
        ``image``'s namespace.

    Returns
    -------
    array, shape (rows, cols // 2 + 1)
        Power per bin (counts², the variance of white noise where the map is white noise).

    Backends
    --------
    Any array-API namespace; on CuPy the map stays on the GPU.
    """
    x = xp.astype(image, xp.float64)
    centred = (x - xp.sum(x * taper) / taper_sum) * taper
    return xp.abs(rfft2(centred, xp=xp)) ** 2 / taper_power


def ring_table(ring):
    """Index table of the bins of each ring, for :func:`ring_sums`.

    Parameters
    ----------
    ring : ndarray of int, shape (bins,)
        Ring of each bin of the flattened half plane (NumPy, host).

    Returns
    -------
    ndarray of int64, shape (rings, most bins in one ring)
        Row r: the flat indices of ring r's bins in increasing order, padded with ``bins`` (the index of
        a zero appended by :func:`ring_sums`).
    """
    order = np.argsort(ring, kind="stable")
    counts = np.bincount(ring)
    starts = np.cumsum(counts) - counts
    table = np.full((counts.size, int(counts.max())), ring.size, dtype=np.int64)
    sorted_ring = ring[order]
    table[sorted_ring, np.arange(ring.size) - starts[sorted_ring]] = order
    return table


def ring_sums(power, weights, table, *, xp):
    """Σ over each ring's bins of weight × power, moved to the host.

    The same sums as ``numpy.bincount(ring, weights * power.ravel())``, each in another order of
    addition (so equal to rounding, not bit for bit).

    Parameters
    ----------
    power : array, shape (rows, cols // 2 + 1)
        Periodogram (:func:`windowed_periodogram`), any namespace, on its device.
    weights : array, shape (rows * (cols // 2 + 1),)
        Weight per flattened bin, in ``power``'s namespace and on its device.
    table : array of int64, shape (rings, k)
        :func:`ring_table` of the bins' rings, in ``power``'s namespace and on its device.
    xp : namespace
        ``power``'s namespace.

    Returns
    -------
    ndarray, shape (rings,)
        The weighted sum per ring (NumPy, host).

    Backends
    --------
    Any array-API namespace; on CuPy only the ring sums leave the GPU.
    """
    flat = xp.reshape(power, (-1,)) * weights
    padded = xp.concat([flat, xp.zeros(1, dtype=flat.dtype, device=array_device(flat))])
    gathered = xp.take(padded, xp.reshape(table, (-1,)), axis=0)
    return to_numpy(xp.sum(xp.reshape(gathered, table.shape), axis=1))
