"""Kernel step of the L0 method: gradient selection, CG kernel solve, clean-up.

Spec §8 (``threshold_pxpy_v1.m``, after Cho & Lee 2009), §9 (``estimate_psf.m``
with ``conjgrad.m``) and §10 (pruning, centring, resizing between levels).

The CG runs with the namespace of the gradients (one FFT and one inverse FFT
at (H−1)×(W−1) per iteration, on the device); the ks×ks results and every
clean-up step (5 % cut, connected components with :mod:`scipy.ndimage`,
centring, bicubic resize) run on the host with NumPy: they touch a few
hundred numbers. The one-off threshold estimation (a histogram of the
coarsest blurred image) is host NumPy as well.
"""

from __future__ import annotations

import math

import numpy as np

from .._backend import array_device, rfft2, to_numpy
from .matlab import imresize_bicubic, otf2psf, psf2otf, round_half_away, valid_gradients

__all__ = [
    "estimate_threshold",
    "select_gradients",
    "kernel_cg",
    "estimate_kernel",
    "prune_kernel",
    "center_kernel",
    "resize_kernel",
    "fix_size",
]


def estimate_threshold(image, psf_size):
    """Gradient-magnitude threshold τ₀ of Cho & Lee (2009) (spec §8, estimation mode).

    Parameters
    ----------
    image : ndarray, shape (H, W)
        Coarsest blurred level image (host), values in [0, 1].
    psf_size : int
        Coarsest kernel size; ``n_req = max(20·psf_size, 10)`` pixels of
        every direction bin must lie at or above τ₀.

    Returns
    -------
    tau : float
        The largest histogram edge (0, 6e-5, …, 1.99998) that leaves at least
        ``n_req`` pixels in each of the four ``atan`` direction bins; 0 if none.
    """
    img = np.asarray(image, dtype=np.float64)
    px, py = valid_gradients(img)
    pm = (px * px + py * py).ravel()
    with np.errstate(divide="ignore", invalid="ignore"):
        theta = np.arctan(py / px).ravel()
    q = np.pi / 4
    bins = [
        (theta >= 0) & (theta < q),
        (theta >= q) & (theta < 2 * q),
        (theta >= -q) & (theta < 0),
        (theta >= -2 * q) & (theta < -q),
    ]
    edges = np.arange(33334) * 6e-5
    last = edges[-1]
    n_req = max(20 * int(psf_size), 10)
    counts = []
    for b in bins:
        values = np.sort(pm[b])
        upper = np.searchsorted(values, last, side="right")
        counts.append(upper - np.searchsorted(values, edges, side="left"))
    smallest = np.min(np.stack(counts), axis=0)
    ok = np.nonzero(smallest >= n_req)[0]
    return float(edges[ok[-1]]) if ok.size else 0.0


def select_gradients(latent, tau, *, xp):
    """Valid gradients of ``latent`` with those of squared magnitude < τ zeroed (spec §8).

    If no pixel reaches τ, τ is multiplied by 0.81 until one does. Returns
    ``(gx, gy, tau / 1.1)``: τ decays once per alternation.
    """
    gx, gy = valid_gradients(latent, xp=xp)
    magnitude = gx * gx + gy * gy
    peak = float(xp.max(magnitude))
    tau = float(tau)
    if peak <= 0.0:
        tau = 0.0
    else:
        while peak < tau:
            tau *= 0.81
    keep = magnitude >= tau
    zero = xp.zeros_like(gx)
    return xp.where(keep, gx, zero), xp.where(keep, gy, zero), tau / 1.1


def kernel_cg(blurred_x, blurred_y, latent_x, latent_y, size, *, xp, gamma=2.0, max_iter=20, tol=1e-5):
    """Solve ``(Σ_d S_dᵀS_d + γ) k = Σ_d S_dᵀ B_d`` on a ks×ks support by plain CG.

    This is the normal equation of ``min_k Σ_{d∈{x,y}} ‖S_d ⊛ k − B_d‖² + γ‖k‖²``
    with circular convolution on the (H−1)×(W−1) gradient grid and k centred
    at the origin (MATLAB ``psf2otf``/``otf2psf``). CG starts from the uniform
    kernel 1/ks² and stops when ‖r‖₂ < ``tol`` or after ``max_iter`` steps
    (``conjgrad.m``).

    Returns
    -------
    kernel : array, shape (size, size)
        Raw solution (same namespace as the inputs), before any clean-up.
    """
    shape = tuple(blurred_x.shape)
    psf_shape = (int(size), int(size))
    fsx = rfft2(latent_x, xp=xp)
    fsy = rfft2(latent_y, xp=xp)
    gram = xp.real(fsx * xp.conj(fsx)) + xp.real(fsy * xp.conj(fsy))
    rhs_spectrum = xp.conj(fsx) * rfft2(blurred_x, xp=xp) + xp.conj(fsy) * rfft2(blurred_y, xp=xp)
    b = otf2psf(rhs_spectrum, psf_shape, xp=xp, canvas_shape=shape)

    def operator(x):
        spectrum = gram * psf2otf(x, shape, xp=xp, half=True)
        return otf2psf(spectrum, psf_shape, xp=xp, canvas_shape=shape) + gamma * x

    x = xp.full(psf_shape, 1.0 / (size * size), dtype=blurred_x.dtype, device=array_device(blurred_x))
    r = b - operator(x)
    p = r
    rr = float(xp.sum(r * r))
    for _ in range(int(max_iter)):
        ap = operator(p)
        alpha = rr / float(xp.sum(p * ap))
        x = x + alpha * p
        r = r - alpha * ap
        rr_new = float(xp.sum(r * r))
        if math.sqrt(rr_new) < tol:
            break
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


def estimate_kernel(blurred_x, blurred_y, latent_x, latent_y, size, *, xp, gamma=2.0, cut=0.05):
    """Kernel step (``estimate_psf``): CG solve, zero values < ``cut``·max, normalise.

    Returns
    -------
    kernel : ndarray of float64, shape (size, size)
        Host NumPy array, non-negative, unit sum (all zeros only if the CG
        solution had no positive value).
    """
    k = to_numpy(kernel_cg(blurred_x, blurred_y, latent_x, latent_y, size, xp=xp, gamma=gamma))
    k = np.array(k, dtype=np.float64, copy=True)  # to_numpy of a DLPack export can be read-only (NumPy 2.1)
    k[k < cut * k.max()] = 0.0
    return _normalise(k)


def _normalise(k):
    k = np.maximum(k, 0.0)
    total = k.sum()
    return k / total if total > 0 else k


def prune_kernel(kernel, min_mass=0.1):
    """Zero 8-connected components of the non-zero pixels with mass < ``min_mass``; normalise."""
    from scipy import ndimage

    k = np.array(kernel, dtype=np.float64)
    labels, n = ndimage.label(k != 0, structure=np.ones((3, 3), dtype=bool))
    if n:
        masses = ndimage.sum(k, labels, index=np.arange(1, n + 1))
        for label, mass in enumerate(masses, start=1):
            if mass < min_mass:
                k[labels == label] = 0.0
    return _normalise(k)


def center_kernel(kernel):
    """Shift the kernel by whole pixels so its centroid is at the centre (``adjust_psf_center``).

    The shift is ``round(target − centroid)`` with MATLAB rounding (halves
    away from zero); content pushed out is dropped, zeros are shifted in.
    """
    k = np.asarray(kernel, dtype=np.float64)
    total = k.sum()
    if not total > 0:
        return k.copy()
    rows, cols = k.shape
    y = np.arange(1, rows + 1)[:, None]
    x = np.arange(1, cols + 1)[None, :]
    ybar = float((k * y).sum() / total)
    xbar = float((k * x).sum() / total)
    dy = round_half_away((rows + 1) / 2 - ybar)
    dx = round_half_away((cols + 1) / 2 - xbar)
    out = np.zeros_like(k)
    src_r = slice(max(0, -dy), min(rows, rows - dy))
    dst_r = slice(max(0, dy), min(rows, rows + dy))
    src_c = slice(max(0, -dx), min(cols, cols - dx))
    dst_c = slice(max(0, dx), min(cols, cols + dx))
    out[dst_r, dst_c] = k[src_r, src_c]
    return _normalise(out)


def fix_size(kernel, size):
    """``fixsize``: trim or zero-pad one row/column per pass to ``size × size``."""
    k = np.asarray(kernel, dtype=np.float64)
    while k.shape != (size, size):
        rows, cols = k.shape
        if rows > size:
            k = k[1:, :] if k[0, :].sum() < k[-1, :].sum() else k[:-1, :]
        elif rows < size:
            zero = np.zeros((1, cols))
            k = np.vstack([k, zero]) if k[0, :].sum() < k[-1, :].sum() else np.vstack([zero, k])
        rows = k.shape[0]
        if cols > size:
            k = k[:, 1:] if k[:, 0].sum() < k[:, -1].sum() else k[:, :-1]
        elif cols < size:
            zero = np.zeros((rows, 1))
            k = np.hstack([k, zero]) if k[:, 0].sum() < k[:, -1].sum() else np.hstack([zero, k])
    return k


def resize_kernel(kernel, scale, size):
    """``resizeKer``: MATLAB bicubic ``imresize`` by ``scale``, clamp, fix size, normalise."""
    k = np.maximum(imresize_bicubic(kernel, scale), 0.0)
    k = fix_size(k, size)
    if k.max() > 0:
        k = k / k.sum()
    return k
