"""The paper's bivariate Gaussian PSF and unit helpers (µm ↔ pixels, FWHM ↔ σ)."""

from __future__ import annotations

import math
import numbers

import numpy as np

from .._backend import to_numpy
from .._validate import MAX_PSF_SIDE, check_allocation, check_float_dtype

__all__ = [
    "gaussian",
    "gaussian_shape",
    "FWHM_PER_SIGMA",
    "fwhm_to_sigma",
    "sigma_to_fwhm",
    "um_to_pixels",
    "pixels_to_um",
    "gaussian_for_map",
]

#: FWHM of a Gaussian in units of its standard deviation, 2√(2 ln 2) ≈ 2.3548.
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def fwhm_to_sigma(fwhm):
    """Standard deviation of a Gaussian with full width at half maximum ``fwhm`` (same unit)."""
    return fwhm / FWHM_PER_SIGMA


def sigma_to_fwhm(sigma):
    """FWHM = 2√(2 ln 2) σ ≈ 2.355 σ (same unit as ``sigma``)."""
    return sigma * FWHM_PER_SIGMA


def _check_pixel_size(pixel_size_um):
    """The scan step as a float µm > 0: a non-number is a TypeError naming ``pixel_size_um``, the rest a ValueError."""
    if isinstance(pixel_size_um, (str, bytes, bool)):
        raise TypeError(f"pixel_size_um must be a number of µm, got {pixel_size_um!r}")
    try:
        p = float(pixel_size_um)
    except (TypeError, ValueError):
        raise TypeError(f"pixel_size_um must be a number of µm, got {pixel_size_um!r}") from None
    if not (p > 0 and math.isfinite(p)):
        raise ValueError(f"pixel_size_um must be a positive number of µm, got {pixel_size_um!r}")
    return p


def um_to_pixels(length_um, pixel_size_um):
    """Convert a length in µm to pixels of ``pixel_size_um`` µm (scan step)."""
    return length_um / _check_pixel_size(pixel_size_um)


def pixels_to_um(length_px, pixel_size_um):
    """Convert a length in pixels to µm, given the scan step ``pixel_size_um``."""
    return length_px * _check_pixel_size(pixel_size_um)


def gaussian_shape(sigma, sigma_y=None, truncate=4.0):
    """Odd (rows, cols) that hold a Gaussian to ``truncate`` standard deviations."""
    sy = sigma if sigma_y is None else sigma_y
    return (2 * int(math.ceil(truncate * sy)) + 1, 2 * int(math.ceil(truncate * sigma)) + 1)


def _psf_shape(shape, sigma):
    """(rows, cols) from ``shape``: an int (or whole float) for a square, or a pair of them."""
    try:
        sides = [shape, shape] if isinstance(shape, numbers.Real) else list(shape)
        if len(sides) != 2:
            raise ValueError
        whole = []
        for n in sides:
            if isinstance(n, bool) or not isinstance(n, numbers.Real) or not float(n).is_integer():
                raise ValueError
            whole.append(int(n))
    except (TypeError, ValueError):
        raise TypeError(
            f"shape must be a whole number of pixels or (rows, cols), got {shape!r}; the arguments are "
            f"gaussian(shape, sigma): for sigma={shape!r} px with the size chosen for you, call "
            f"gaussian(None, {shape!r})" if isinstance(shape, numbers.Real) and not isinstance(shape, bool) else
            f"shape must be a whole number of pixels or (rows, cols), got {shape!r} (sigma={sigma!r})"
        ) from None
    return whole[0], whole[1]


def gaussian(shape, sigma, sigma_y=None, rho=0.0, *, xp=None, device=None, dtype=None):
    """Sampled 2-D Gaussian PSF, unit sum, centred — Yang et al. (2022) eq. for h(u, v).

    ``h(u, v) ∝ exp(−[(u/σu)² + (v/σv)² − 2ρ (u/σu)(v/σv)] / (2(1 − ρ²)))``
    with u the column and v the row offset from the centre pixel
    ``(rows // 2, cols // 2)``, sampled at pixel centres and normalised to
    sum 1 over the array.

    Parameters
    ----------
    shape : int or tuple of int or None
        (rows, cols) of the PSF array in pixels; an int gives a square
        (whole floats such as ``5.0`` are taken as ints). ``None`` picks the
        odd size that holds ±4 σ.
    sigma : float
        σu, standard deviation along the columns (u), in pixels.
    sigma_y : float, optional
        σv along the rows (v), in pixels; default ``sigma`` (isotropic).
    rho : float
        Correlation coefficient ρ of u and v, in (−1, 1); 0 for an ellipse
        aligned with the axes.
    xp : namespace, optional
        Array namespace of the result (NumPy by default).
    device : optional
        Device of the result.
    dtype : optional
        Real floating dtype; float64 by default.

    Returns
    -------
    psf : array, shape ``shape``

    Raises
    ------
    ValueError
        Non-positive or non-finite σ, |ρ| ≥ 1, a shape < 1, or an array
        too large to allocate (a side above
        :data:`xrfgpu._validate.MAX_PSF_SIDE` = 65 537 pixels, or more bytes
        than the machine's memory), checked before allocating.
    TypeError
        A non-floating ``dtype`` (the unit-sum samples would round to 0); a
        ``shape`` that is not whole numbers of pixels (``gaussian(0.8, 5)``,
        σ where the shape goes).

    References
    ----------
    J. Yang, Z. Zhang, Q. Cheng, "Resolution enhancement in micro-XRF using
    image restoration techniques", J. Anal. At. Spectrom. 37, 750 (2022),
    doi:10.1039/d1ja00425e.

    Examples
    --------
    >>> from xrfgpu import psf
    >>> h = psf.gaussian(31, sigma=psf.um_to_pixels(32.5, 5.0))
    >>> round(float(h.sum()), 6)
    1.0
    """
    su = float(sigma)
    sv = su if sigma_y is None else float(sigma_y)
    rho = float(rho)
    for name, s in (("sigma", su), ("sigma_y", sv)):
        if not (s > 0 and math.isfinite(s)):
            raise ValueError(f"{name} must be a positive number of pixels, got {s}")
    if not -1.0 < rho < 1.0:
        raise ValueError(f"rho must lie in (-1, 1), got {rho}")
    if shape is None:
        shape = gaussian_shape(su, sv)
    rows, cols = _psf_shape(shape, sigma)
    if rows < 1 or cols < 1:
        raise ValueError(f"shape must be at least 1 pixel, got {shape}")
    if xp is None:
        import array_api_compat.numpy as xp  # noqa: PLW0127
    check_float_dtype(dtype, xp=xp)
    # the NumPy build holds about four (rows, cols) float64 arrays at once
    check_allocation((rows, cols), 8, copies=4, max_side=MAX_PSF_SIDE,
                     what=f"a Gaussian PSF of sigma={su:g} x {sv:g} px",
                     hint="check the units (sigma in pixels; a map restores only with a PSF smaller than the map)")
    v = (np.arange(rows) - rows // 2)[:, None] / sv
    u = (np.arange(cols) - cols // 2)[None, :] / su
    q = (u * u + v * v - 2.0 * rho * u * v) / (2.0 * (1.0 - rho * rho))
    h = np.exp(-q)
    h /= h.sum()
    dtype = xp.float64 if dtype is None else dtype
    return xp.asarray(h, dtype=dtype, device=device)


def gaussian_for_map(sigma, image_shape, *, sigma_v=None, rho=0.0, xp=None, device=None, dtype=None):
    """Gaussian PSF of σ ``sigma`` pixels (or an elliptical one) for a map of ``image_shape``.

    Holds ±4 σ, but no more than the map: the side is cut to the largest odd
    number ≤ the map's shorter side *before* the array is built, so a wide
    σ never allocates more than a map. With ``sigma_v`` the spot is the
    elliptical Gaussian of σu = ``sigma`` along the columns, σv along the
    rows and correlation ``rho`` (the front door's elongated spot), and each
    axis is cut to the largest odd number ≤ the map's side along it.

    Parameters
    ----------
    sigma : float
        σ (σu for an elliptical spot) in pixels, > 0 and no larger than the map's longer side.
    image_shape : tuple of int
        (rows, cols) of the map, pixels.
    sigma_v : float, optional
        σ along the rows, pixels, with the same bounds; None for an isotropic spot.
    rho : float
        Correlation coefficient of u and v, in (−1, 1); only with ``sigma_v``.
    xp, device, dtype
        As in :func:`gaussian`.

    Returns
    -------
    psf : array, odd shape (square when isotropic)

    Raises
    ------
    ValueError
        σ not a positive finite number, or wider than the whole map (its
        1 σ core alone covers the map: nothing is left to restore; often a
        σ given in µm where pixels were meant); |ρ| ≥ 1.
    """
    rows, cols = (int(n) for n in image_shape[-2:])
    given = [sigma] + ([] if sigma_v is None else [sigma_v])
    values = [float(v) for v in given]
    for name, s, g in zip(("sigma", "sigma_v"), values, given):
        if not (s > 0 and math.isfinite(s)):
            raise ValueError(f"{name} must be a positive number of pixels, got {g!r}")
        if s > max(rows, cols):
            raise ValueError(
                f"{name}={s:g} px is wider than the whole {rows} x {cols} map: nothing is left to restore; "
                "check the units (sigma is in pixels, sigma_um in µm with pixel_size_um)"
            )
    if sigma_v is not None:
        side_rows, side_cols = gaussian_shape(values[0], values[1])
        shape = (min(side_rows, rows - 1 + rows % 2), min(side_cols, cols - 1 + cols % 2))
        return gaussian(shape, values[0], values[1], rho, xp=xp, device=device, dtype=dtype)
    s = values[0]
    side = gaussian_shape(s)[0]
    largest = min(rows, cols)
    if side > largest:
        side = largest - 1 + largest % 2
    return gaussian((side, side), s, xp=xp, device=device, dtype=dtype)


def axis_variances(psf):
    """Second central moments of a 2-D kernel along its rows and its columns, px²: ``(var_rows, var_cols)``.

    Read on the host from the kernel's two marginals, about their centroid (a Gaussian of σu, σv, ρ = 0 gives
    σv², σu²; a box of side n gives (n² − 1) / 12). A kernel that is not 2-D (after dropping a leading axis of
    one) or does not sum to a positive number gives None. Used where a kernel's width stands in for a
    Gaussian's: the tile halo (:mod:`xrfgpu.dask`) and the joint restoration's guide and gate (:mod:`xrfgpu.joint`).
    """
    h = np.asarray(to_numpy(psf), dtype=np.float64)
    h = h.reshape(h.shape[-2:]) if h.ndim > 2 and h.shape[0] == 1 else h
    if h.ndim != 2:
        return None
    total = float(h.sum())
    if not total > 0:
        return None
    rows = np.arange(h.shape[0], dtype=np.float64)
    cols = np.arange(h.shape[1], dtype=np.float64)
    weights_r, weights_c = h.sum(axis=1) / total, h.sum(axis=0) / total
    mean_r, mean_c = float(weights_r @ rows), float(weights_c @ cols)
    return float(weights_r @ (rows - mean_r) ** 2), float(weights_c @ (cols - mean_c) ** 2)
