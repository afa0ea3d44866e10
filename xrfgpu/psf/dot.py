"""Dot-scan PSF measurement: fit the paper's g = α·h + β to the map of a small dot."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .._backend import array_namespace, to_numpy
from .._validate import fit_input
from ._gauss2d import GaussianSpotFit, fit_gaussian_spot
from ._gaussian import _check_pixel_size

__all__ = ["fit_dot", "DotFit"]

#: Result type of :func:`fit_dot` (the shared Gaussian-spot fit result).
DotFit = GaussianSpotFit

#: A failed fit whose narrower fitted σ lies below this (pixels) is reported as an under-sampled spot.
#: On 10 seeds of a round spot at 2000 counts over 100 (41×45 px), the fits that fail at σ 0.3–0.5 px
#: end with the narrower σ at 0.17–0.48 px; those that fail on a faint spot run off to a broad
#: Gaussian of the noise instead (σ 2–90 px).
UNDERSAMPLED_SIGMA_PX = 0.5
#: ... when its brightest pixel stands this many robust noise σ above the background (the largest
#: of ~2000 pixels of pure noise lies about 3.5 σ up, so a fit of noise is not called a narrow spot) ...
_SPIKE_NOISE_SIGMAS = 5.0
#: ... or, whatever the fitted σ, when that pixel holds at least this share of the signal of its 3×3
#: neighbourhood (a Gaussian of σ 0.5 px centred on a pixel puts 62 % there, σ 0.7 px 34 %, σ 1 px 20 %)
_SPIKE_SHARE = 0.4
#: smallest σ (pixels) the dot fit is reliable at, as the message states it: at σ 0.7 px and 150
#: counts over 140 every seed of the tests fits, at σ 0.5 px it takes a strong spot (2000 over 100)
RELIABLE_SIGMA_PX = 0.7


def _brightest_pixel_share(data):
    """Share of the 3×3 excess held by the brightest pixel, and its excess in robust noise σ.

    The background is the map's median, not the fitted β: a fit that ran off to a broad Gaussian of
    the noise puts β well below the floor, which would make any noise pixel stand out.
    """
    excess = data - float(np.median(data))
    i, k = np.unravel_index(int(np.argmax(excess)), excess.shape)
    window = excess[max(0, i - 1):i + 2, max(0, k - 1):k + 2]
    total = float(np.clip(window, 0.0, None).sum())
    share = float(excess[i, k]) / total if total > 0 else 0.0
    noise = 1.4826 * float(np.median(np.abs(excess)))
    z = float(excess[i, k]) / noise if noise > 0 else math.inf
    return share, z


def _refuse_failed_fit(data, fit, pixel_size_um):
    """Raise ValueError when the fit does not determine σ or finds no significant spot.

    A standard error of σu, σv, ρ or α that is NaN (see :func:`._gauss2d._standard_errors`) means the
    data do not determine it; an α within 5 standard errors of 0 means no significant spot. Either way,
    when the brightest pixel stands clear of the noise and the spot is narrower than
    :data:`UNDERSAMPLED_SIGMA_PX` (the fitted σ) or that pixel holds most of the signal around it, the
    message says the spot is under-sampled — cropping does not help, a finer scan step or a
    knife edge does.
    """
    se = fit.stderr
    undetermined = [k for k in ("sigma_u", "sigma_v", "rho", "alpha") if not math.isfinite(se[k])]
    insignificant = not fit.alpha > 5.0 * se["alpha"]
    if not (undetermined or insignificant):
        return
    narrowest = min(fit.sigma_u, fit.sigma_v)
    share, z = _brightest_pixel_share(data)
    if z >= _SPIKE_NOISE_SIGMAS and (narrowest < UNDERSAMPLED_SIGMA_PX or share >= _SPIKE_SHARE):
        step = (f" (a step of {pixel_size_um / 3:.3g}–{pixel_size_um / 2:.3g} µm instead of {pixel_size_um:.3g} µm)"
                if pixel_size_um is not None else "")
        raise ValueError(
            f"σ is not determined: the spot is under-sampled — it covers about one pixel (fitted σu "
            f"{fit.sigma_u:.2g}, σv {fit.sigma_v:.2g} px; the brightest pixel holds {share:.0%} of the signal "
            f"around it), and the dot fit needs σ of at least ~{RELIABLE_SIGMA_PX:g} px. Cropping the map will "
            f"not help: scan the dot with a 2–3× finer step{step}, or measure the spot on a knife edge "
            "(xrfgpu.psf.fit_knife_edge / xrfgpu psf edge)"
        )
    if undetermined:
        raise ValueError(
            f"σ is not determined: the fit is degenerate (no standard error for {', '.join(undetermined)}; "
            f"fitted σu {fit.sigma_u:.3g}, σv {fit.sigma_v:.3g} px, ρ {fit.rho:.2f}); crop the map around the "
            "dot, or scan a dot that gives a clear, round spot"
        )
    raise ValueError(
        f"no significant spot: fitted signal α = {fit.alpha:.3g} ± {se['alpha']:.3g}; crop the map around the dot"
    )


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
        Hold β fixed at this value (per pixel, in the map's units) instead of
        fitting it.
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
        If ``image`` is not an array, is complex or holds no numbers (str,
        object), or ``background`` is not a number.
    ValueError
        Not 2-D, smaller than 5×5, NaN/inf, flat, a ``background`` that is
        not finite, no spot above the
        background, a dot larger than the fitted spot, or a NumPy masked
        array with masked pixels (every pixel is fitted; crop or fill them).
        Also when σ is not determined: a standard error of σu, σv, ρ or α
        is NaN (the data do not fix it) or α is within 5 standard errors
        of 0. When the brightest pixel stands ≥ 5 noise σ clear and the
        fitted σ is below 0.5 px (or that pixel holds ≥ 40 % of its 3×3
        neighbourhood's signal), the message says the spot is under-sampled
        and names the remedy — a 2–3× finer scan step or a knife edge —
        rather than "no significant spot … crop the map", which cannot help:
        a round spot of σ 0.4 px at 2000 counts over 100 failed so in 5 of
        10 seeds. The fit needs σ of about 0.7 px (every seed fits at
        150 counts over 140), or 0.5 px on a strong spot.

    Notes
    -----
    h(u, v) = exp(−q / (2(1 − ρ²))) / (2π σu σv √(1 − ρ²)),
    q = ((u − μu)/σu)² + ((v − μv)/σv)² − 2ρ (u − μu)(v − μv)/(σu σv),
    sampled at pixel centres. Standard errors are √diag(s² (JᵀJ)⁻¹) with s²
    the reduced χ² of the (weighted) residuals; they describe noise only,
    not model error (stage jitter, a non-Gaussian tail). They are computed
    from the singular values of J and are never 0 for a fitted parameter:
    the clipped diagonal of an ill-conditioned inverse used to give σu
    0.177 ± 0 px for a spot of σ 0.5 px at 150 counts over 140; such a fit
    is now refused as not determined (see Raises).

    The least-squares fit is invariant to the map's units: multiplying the
    map by any positive constant (×1e-9 … ×1e6 tested) scales α, β and the
    residual variance and leaves μ, σ, ρ and their errors unchanged to
    ~1e-15. Before, the optimiser's absolute tolerance stopped early on
    small values: one dot gave σu 1.95 px at ×1 but 3.05 px at ×1e-7 (maps
    in g/cm² or mass fractions are that small). ``poisson=True`` weights by
    the model in the map's own units (counts), as before.

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
    image = fit_input(image, name="image", what="fit_dot")
    array_namespace(image)
    if image.ndim != 2:
        raise ValueError(f"image must be 2-D (rows, cols), got shape {tuple(image.shape)}")
    data = to_numpy(image)
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
    _refuse_failed_fit(data, fit, pixel_size_um)
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
