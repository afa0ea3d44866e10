"""Dot-scan PSF measurement: fit the paper's g = α·h + β to the map of a small dot."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .._backend import array_namespace, to_numpy
from .._validate import host_data_refusing_masks
from ._gauss2d import GaussianSpotFit, fit_gaussian_spot
from ._gaussian import _check_pixel_size

__all__ = ["fit_dot", "DotFit"]

#: Result type of :func:`fit_dot` (the shared Gaussian-spot fit result).
DotFit = GaussianSpotFit


def fit_dot(image, pixel_size_um=None, *, poisson=False, background=None, dot_diameter_um=None):
    """Fit the bivariate Gaussian spot model to the scan of a small dot.

    The paper scans a 5 µm Cr dot with a 5 µm step and fits
    g(u, v) = α·h(u, v) + β, with h the bivariate Gaussian of centre
    (μu, μv), standard deviations σu, σv and correlation ρ, and β the
    background (Yang et al. 2022, Fig. 3). The least-squares fit runs on the
    host with :func:`scipy.optimize.least_squares` (analytic Jacobian).

    Parameters
    ----------
    image : array, shape (rows, cols)
        Map of the dot (counts), any array-API namespace, at least 5×5 px,
        holding the whole spot (a few σ of background around it helps β).
    pixel_size_um : float, optional
        Scan step in µm; enables the ``*_um`` attributes.
    poisson : bool
        Weight residuals by 1/√g (Poisson counts; iteratively reweighted).
        Default ordinary least squares, as in the paper.
    background : float, optional
        Hold β fixed at this value (counts per pixel) instead of fitting it.
    dot_diameter_um : float, optional
        Diameter of the (disk-shaped) dot in µm. Its image is the spot
        convolved with the disk, whose variance per axis is D²/16; when
        given, σu² and σv² are corrected by −D²/16 (and the covariance term
        is kept), so the result is the spot itself. Needs ``pixel_size_um``.

    Returns
    -------
    DotFit
        ``mu_u``, ``mu_v``, ``sigma_u``, ``sigma_v``, ``rho``, ``alpha``,
        ``beta`` (pixels; u = columns, v = rows), ``stderr`` of each,
        ``fwhm_u``, ``fwhm_v``, ``residual`` map, ``reduced_chi2``,
        :meth:`~GaussianSpotFit.ellipse`/``ellipses()`` for the 1σ/2σ/3σ
        confidence ellipses, ``*_um`` twins and :meth:`~GaussianSpotFit.psf`.

    Raises
    ------
    TypeError
        If ``image`` is not an array, or ``background`` not a number.
    ValueError
        Not 2-D, smaller than 5×5, NaN/inf, flat, a ``background`` that is
        not finite, no spot above the
        background, a dot larger than the fitted spot, or a NumPy masked
        array with masked pixels (every pixel is fitted; crop or fill them).

    Notes
    -----
    h(u, v) = exp(−q / (2(1 − ρ²))) / (2π σu σv √(1 − ρ²)),
    q = ((u − μu)/σu)² + ((v − μv)/σv)² − 2ρ (u − μu)(v − μv)/(σu σv),
    sampled at pixel centres. Standard errors are √diag(s² (JᵀJ)⁻¹) with s²
    the reduced χ² of the (weighted) residuals; they describe noise only,
    not model error (stage jitter, a non-Gaussian tail).

    References
    ----------
    J. Yang, Z. Zhang, Q. Cheng, "Resolution enhancement in micro-XRF using
    image restoration techniques", J. Anal. At. Spectrom. 37, 750 (2022),
    doi:10.1039/d1ja00425e.

    Examples
    --------
    >>> import numpy as np
    >>> from xrfgpu import psf
    >>> spot = psf.gaussian((41, 41), 6.0, 8.0, rho=0.3)
    >>> counts = np.random.default_rng(0).poisson(140 + 150 * spot / spot.max())
    >>> fit = psf.fit_dot(counts, pixel_size_um=5.0)
    >>> abs(fit.sigma_u_um / 30.0 - 1) < 0.1, abs(fit.rho - 0.3) < 0.1
    (True, True)

    Backends: any array-API input; the fit runs with NumPy/SciPy on the host.
    """
    if not (hasattr(image, "shape") and hasattr(image, "dtype")):
        raise TypeError(f"image must be an array, got {type(image).__name__}")
    image = host_data_refusing_masks(image, name="image", what="fit_dot")
    array_namespace(image)
    if image.ndim != 2:
        raise ValueError(f"image must be 2-D (rows, cols), got shape {tuple(image.shape)}")
    data = to_numpy(image)
    if data.dtype.kind == "c":
        raise TypeError("complex input is not a count map")
    data = data.astype(np.float64)
    if data.shape[0] < 5 or data.shape[1] < 5:
        raise ValueError(f"image must be at least 5×5 pixels to fit a spot, got shape {data.shape}")
    if not np.all(np.isfinite(data)):
        raise ValueError("image contains NaN or infinite values; crop the map away from them or fill them first")
    if not float(data.max() - data.min()) > 0:
        raise ValueError("image is flat: there is no dot to fit")
    if pixel_size_um is not None:
        pixel_size_um = _check_pixel_size(pixel_size_um)
    if background is not None:
        try:
            background = float(background)
        except (TypeError, ValueError):
            raise TypeError(f"background must be a number (the spot's flat background, in the map's units) or "
                            f"None to fit it, got {background!r}") from None
        if not math.isfinite(background):
            raise ValueError(f"background must be a finite number or None to fit it, got {background!r}")
    fit = fit_gaussian_spot(
        data,
        poisson=poisson,
        pixel_size_um=pixel_size_um,
        fix_beta=background,
    )
    if not fit.alpha > 5.0 * fit.stderr["alpha"]:
        raise ValueError(
            f"no significant spot: fitted signal α = {fit.alpha:.3g} ± {fit.stderr['alpha']:.3g}; "
            "crop the map around the dot"
        )
    if dot_diameter_um is not None:
        if pixel_size_um is None:
            raise ValueError("dot_diameter_um needs pixel_size_um to convert the dot size to pixels")
        d_px = float(dot_diameter_um) / pixel_size_um
        if not d_px >= 0:
            raise ValueError(f"dot_diameter_um must be >= 0, got {dot_diameter_um!r}")
        dvar = d_px * d_px / 16.0
        vu, vv = fit.sigma_u**2 - dvar, fit.sigma_v**2 - dvar
        if vu <= 0 or vv <= 0:
            raise ValueError("the dot is larger than the fitted spot; the dot-size correction is impossible")
        cov_uv = fit.rho * fit.sigma_u * fit.sigma_v
        su, sv = math.sqrt(vu), math.sqrt(vv)
        stderr = dict(fit.stderr)
        stderr["sigma_u"] *= fit.sigma_u / su
        stderr["sigma_v"] *= fit.sigma_v / sv
        fit = dataclasses.replace(fit, sigma_u=su, sigma_v=sv, rho=cov_uv / (su * sv), stderr=stderr)
    return fit
