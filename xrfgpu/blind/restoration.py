"""Final non-blind restoration of the L0 method (``ringing_artifacts_removal.m``, spec §12).

TV-L2 by alternating minimisation (``deblurring_adm_aniso`` with α = 1), an
L0-gradient restoration (``L0Restoration``), and a bilateral filter of their
difference that removes the ringing the TV result keeps:
``result = I_tv − w · BF(I_tv − I_l0)``.

Backends: the FFT solves and the bilateral filter run in the namespace of the
input; the two ``wrap_boundary`` extensions (DST-I Laplace solves) run once
on the host.
"""

from __future__ import annotations

import math

import numpy as np

from .._backend import array_device, irfft2, rfft2, to_numpy
from .image_step import gradient_power, kernel_spectra, l0_gradient
from .matlab import opt_fft_size, wrap_boundary

__all__ = ["tv_deconvolution", "bilateral_filter", "ringing_artifacts_removal"]


def _forward_differences(x, *, xp):
    return xp.roll(x, -1, axis=1) - x, xp.roll(x, -1, axis=0) - x


def _shrink(x, t, *, xp):
    return xp.sign(x) * xp.clip(xp.abs(x) - t, min=0.0)


def tv_deconvolution(padded, kernel, lambda_tv, *, xp, beta_min=1e-3):
    """Anisotropic TV-L2 deconvolution by half-quadratic splitting (``deblurring_adm_aniso``, α = 1).

    Starts at β = 1/λ_tv and halves β while β > ``beta_min``; each pass
    soft-thresholds ``(Ix, Iy) = ∇I`` by βλ_tv and solves
    ``I = F⁻¹[(conj(K)F(B) + γ'F(DxᵀWx + DyᵀWy)) / (|K|² + γ'|D|²)]`` with
    γ' = 1/(2β). Circular on the padded canvas.
    """
    shape = tuple(padded.shape)
    otf, otf_power = kernel_spectra(kernel, shape, xp=xp)
    grad_power = gradient_power(shape, xp=xp, dtype=padded.dtype, device=array_device(padded))
    data_term = xp.conj(otf) * rfft2(padded, xp=xp)
    latent = padded
    ix, iy = _forward_differences(latent, xp=xp)
    beta = 1.0 / lambda_tv
    while beta > beta_min:
        weight = 1.0 / (2.0 * beta)
        wx = _shrink(ix, beta * lambda_tv, xp=xp)
        wy = _shrink(iy, beta * lambda_tv, xp=xp)
        adjoint = (xp.roll(wx, 1, axis=1) - wx) + (xp.roll(wy, 1, axis=0) - wy)
        numerator = data_term + weight * rfft2(adjoint, xp=xp)
        latent = irfft2(numerator / (otf_power + weight * grad_power), shape, xp=xp)
        ix, iy = _forward_differences(latent, xp=xp)
        beta /= 2.0
    return latent


def bilateral_filter(image, *, xp, sigma_spatial=3.0, sigma_range=0.1):
    """Bilateral filter with a ±ceil(3σ_s) window and replicate padding (``bilateral_filter.m``).

    ``out(p) = Σ_q w_s(p−q) w_r(p, q) x(q) / Σ_q w_s w_r`` with
    ``w_s = exp(−|p−q|²/(2σ_s²))`` and ``w_r = exp(−(x(p)−x(q))²/(2σ_r²))``.
    The reference accumulates in single precision; this uses the input dtype.
    """
    radius = int(math.ceil(3 * sigma_spatial))
    rows, cols = image.shape
    device = array_device(image)
    row_index = xp.asarray(np.clip(np.arange(-radius, rows + radius), 0, rows - 1), device=device)
    col_index = xp.asarray(np.clip(np.arange(-radius, cols + radius), 0, cols - 1), device=device)
    padded = xp.take(xp.take(image, row_index, axis=0), col_index, axis=1)
    total = xp.zeros_like(image)
    norm = xp.zeros_like(image)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            spatial = math.exp(-(dx * dx + dy * dy) / (2.0 * sigma_spatial**2))
            shifted = padded[radius + dy : radius + dy + rows, radius + dx : radius + dx + cols]
            diff = image - shifted
            weight = spatial * xp.exp(diff * diff * (-0.5 / sigma_range**2))
            total = total + weight * shifted
            norm = norm + weight
    return total / norm


def ringing_artifacts_removal(image, kernel, *, xp, lambda_tv=2e-3, lambda_l0=2e-4, weight_ring=1.0):
    """Final restoration of Pan et al. (2014) for a map in [0, 1] and a known kernel.

    Parameters
    ----------
    image : array, shape (H, W)
        Blurred map in [0, 1] (no gamma correction).
    kernel : array, shape (ks, ks)
        Estimated kernel, odd size, unit sum, same namespace and dtype.
    xp : namespace
        Array-API namespace of ``image`` and ``kernel``.
    lambda_tv, lambda_l0 : float
        TV weight and L0-gradient weight (demo values 2e-3 and 2e-4).
    weight_ring : float
        Weight of the ringing correction; 0 returns the TV result.

    Returns
    -------
    restored : array, shape (H, W)
        Not clipped.
    """
    rows, cols = image.shape
    ks = kernel.shape[0]
    dtype, device = image.dtype, array_device(image)
    host = to_numpy(image).astype(np.float64)
    padded_host = wrap_boundary(host, opt_fft_size((rows + ks - 1, cols + ks - 1)))
    padded = xp.asarray(padded_host, dtype=dtype, device=device)
    restored_tv = tv_deconvolution(padded, kernel, lambda_tv, xp=xp)[:rows, :cols]
    if weight_ring == 0:
        return restored_tv
    prows, pcols = padded_host.shape
    padded_twice = wrap_boundary(padded_host, opt_fft_size((prows + ks - 1, pcols + ks - 1)))
    padded_twice = xp.asarray(padded_twice, dtype=dtype, device=device)
    restored_l0 = l0_gradient(padded_twice, kernel, lambda_l0, xp=xp)[:rows, :cols]
    difference = restored_tv - restored_l0
    return restored_tv - weight_ring * bilateral_filter(difference, xp=xp)
