"""Is the dot smaller than the spot? A disk-blurred-by-a-Gaussian fit that tells a resolved dot.

The paper's dot method (Yang et al. 2022, Fig. 3) fits one Gaussian to the scan of a dot much
smaller than the X-ray spot; the fitted σ is then the spot's. When the "dot" is a grain as large as
the spot or larger, the same fit returns the grain's size: on the real HXN S map, a pyrite grain
gives σ 7.7 px where the map's own blur is about 0.5 px. :func:`fit_disk_spot` fits the image of a
uniform disk of diameter ``D`` blurred by a circular Gaussian spot of σ, on a background, and
:func:`dot_is_resolved` says whether the data show the disk: its fit is better than the Gaussian
spot's by far more than noise allows, and the disk is large enough to bias the Gaussian's σ.

The image of a uniform disk of radius ``R`` (unit integral) under a circular Gaussian of σ, at
distance ``r`` from the disk's centre, is the probability that a 2-D Gaussian of σ centred ``r``
away falls inside the disk, divided by the disk's area:

    f(r) = P(|z| ≤ R) / (π R²),   |z| ~ Rice(ν = r, σ),

so ``f(r) = F_Rice(R / σ; b = r / σ) / (π R²)`` with ``F_Rice`` the cumulative distribution of
the Rice distribution (:data:`scipy.stats.rice`); ``R → 0`` gives the Gaussian
``exp(−r² / 2σ²) / (2πσ²)``. The variance of the image per axis is ``σ² + R² / 4 = σ² + D² / 16``,
the correction :func:`xrfgpu.psf.fit_dot` applies for a known ``dot_diameter_um``.

References
----------
J. Yang, Z. Zhang, Q. Cheng, "Resolution enhancement in micro-XRF using image restoration
techniques", J. Anal. At. Spectrom. 37, 750 (2022), doi:10.1039/d1ja00425e.
S. O. Rice, "Mathematical analysis of random noise", Bell Syst. Tech. J. 24, 46 (1945) (the
distribution of the distance of an offset 2-D Gaussian point from the origin).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._backend import array_namespace, to_numpy
from .._validate import fit_input
from ._gauss2d import GaussianSpotFit

__all__ = ["DiskSpotFit", "fit_disk_spot", "dot_is_resolved", "RESOLVED_F_STATISTIC", "RESOLVED_SIGMA_BIAS"]

#: the disk must lower the residual sum of squares by this many times its per-pixel residual variance
#: (an F statistic with 1 extra parameter; 30 lies far beyond noise, p ≈ 10⁻⁷, and leaves margin for the
#: spatially correlated misfit of a real spot that is not exactly Gaussian)
RESOLVED_F_STATISTIC = 30.0
#: ... and be large enough that one Gaussian's σ, √(σ² + D²/16), overstates the spot's σ by more than this
RESOLVED_SIGMA_BIAS = 0.05

#: radial samples of the disk-spot profile (interpolated to the pixel distances)
_PROFILE_SAMPLES = 2048


@dataclass(frozen=True)
class DiskSpotFit:
    """A uniform disk of diameter ``diameter`` blurred by a circular Gaussian of ``sigma``, on ``beta``.

    Attributes
    ----------
    mu_u, mu_v : float
        Centre (column, row), pixels.
    sigma : float
        σ of the circular Gaussian spot, pixels.
    diameter : float
        Diameter of the disk, pixels (0: a point, the Gaussian spot alone).
    alpha : float
        Integrated signal above the background (map units · pixel²).
    beta : float
        Background per pixel, map units.
    stderr : dict
        Standard errors of the above (Gauss–Newton, scaled by the residual variance; noise only).
    rss : float
        Weighted residual sum of squares of this fit (see Notes of :func:`fit_disk_spot`).
    rss_gaussian : float
        The same for the circular Gaussian spot (this model with ``diameter`` held at 0).
    f_statistic : float
        ``(rss_gaussian − rss) / (rss / (n − 6))``, n the number of pixels: how much better the disk
        fits, in units of the residual variance per pixel.
    pixel_size_um : float or None
        Scan step, µm, when given (for the ``*_um`` properties).
    """

    mu_u: float
    mu_v: float
    sigma: float
    diameter: float
    alpha: float
    beta: float
    stderr: dict
    rss: float
    rss_gaussian: float
    f_statistic: float
    pixel_size_um: float | None = None

    @property
    def sigma_um(self):
        """σ of the spot, µm (None without a pixel size)."""
        return None if self.pixel_size_um is None else self.sigma * self.pixel_size_um

    @property
    def diameter_um(self):
        """Diameter of the disk, µm (None without a pixel size)."""
        return None if self.pixel_size_um is None else self.diameter * self.pixel_size_um

    @property
    def gaussian_sigma_bias(self):
        """How far one Gaussian's σ, √(σ² + D²/16), lies above the spot's σ (a fraction)."""
        return math.sqrt(1.0 + (self.diameter / self.sigma) ** 2 / 16.0) - 1.0


def disk_spot_profile(r, sigma, diameter):
    """The image of a unit-integral disk of ``diameter`` under a circular Gaussian of ``sigma``.

    Parameters
    ----------
    r : ndarray
        Distances from the disk's centre, pixels.
    sigma, diameter : float
        Gaussian σ and disk diameter, pixels (σ > 0, diameter ≥ 0).

    Returns
    -------
    ndarray
        Value per pixel² at each ``r`` (integrates to 1 over the plane).
    """
    from scipy import stats

    r = np.asarray(r, dtype=np.float64)
    radius = 0.5 * float(diameter)
    sigma = float(sigma)
    if radius < 1e-3 * sigma:  # the point limit (the Rice form divides 0 by 0)
        return np.exp(-0.5 * (r / sigma) ** 2) / (2.0 * math.pi * sigma * sigma)
    return stats.rice.cdf(radius / sigma, r / sigma) / (math.pi * radius * radius)


def _model(p, uu, vv, rmax):
    mu_u, mu_v, sigma, diameter, alpha, beta = p
    r = np.hypot(uu - mu_u, vv - mu_v)
    grid = np.linspace(0.0, rmax, _PROFILE_SAMPLES)
    profile = disk_spot_profile(grid, sigma, diameter)
    return alpha * np.interp(r, grid, profile) + beta


def fit_disk_spot(image, pixel_size_um=None, *, gaussian_fit=None):
    """Fit a uniform disk blurred by a circular Gaussian spot, plus a background, to a dot's map.

    Parameters
    ----------
    image : array, shape (rows, cols)
        Map of one dot or grain (any array-API namespace), cropped around it as for
        :func:`xrfgpu.psf.fit_dot`; at least 5 × 5 pixels.
    pixel_size_um : float, optional
        Scan step, µm, for the ``*_um`` properties.
    gaussian_fit : xrfgpu.psf.DotFit, optional
        The elliptical Gaussian fit of the same map (:func:`xrfgpu.psf.fit_dot`, without a dot
        diameter), which sets the starting point. Made here when not given.

    Returns
    -------
    DiskSpotFit

    Raises
    ------
    TypeError
        As :func:`xrfgpu.psf.fit_dot`: not an array, complex, or no numbers (str, object).
    ValueError
        As :func:`xrfgpu.psf.fit_dot` (not 2-D, too small, NaN/inf, flat, no spot, a masked
        array with masked pixels).

    Notes
    -----
    Least squares over every pixel, by :func:`scipy.optimize.least_squares`, weighted by
    ``1 / √max(g₀, floor)`` with ``g₀`` an unweighted circular Gaussian fit (Poisson-like: the
    variance of counts, and of a fitted map's effective counts, grows with the mean; the floor is
    the larger of the background and 1 % of the peak), from three starting points that share the Gaussian fit's
    second moment ``σ_g²`` between the disk and the spot (the disk carries 10, 50 or 90 % of it:
    ``D = 4 √f σ_g``, ``σ = √(1 − f) σ_g``), and once more with the diameter held at 0 for the
    circular Gaussian baseline. The baseline is circular, like the disk model, so that the two are
    nested (one parameter apart) and the F statistic measures the flat top alone: an elliptical
    Gaussian spot is fitted no better by a circular disk (its radial profile is more peaked than one
    circular Gaussian, not flatter), while an elongated grain still is (the real HXN S grain: F 81).
    The profile is evaluated on 2048 radii and interpolated to the
    pixel centres.

    Examples
    --------
    >>> import numpy as np
    >>> from xrfgpu.psf.dot_size import disk_spot_profile, fit_disk_spot, dot_is_resolved
    >>> yy, xx = np.mgrid[:81, :81]
    >>> spot = disk_spot_profile(np.hypot(xx - 40.0, yy - 40.0), 2.0, 30.0)
    >>> counts = np.random.default_rng(0).poisson(20 + 5e4 * spot).astype(float)
    >>> fit = fit_disk_spot(counts)
    >>> round(fit.diameter), dot_is_resolved(fit)
    (30, True)
    """
    from scipy import optimize

    from .dot import fit_dot

    image = fit_input(image, name="image", what="fit_disk_spot")
    array_namespace(image)
    data = np.asarray(to_numpy(image), dtype=np.float64)
    if gaussian_fit is None:
        gaussian_fit = fit_dot(data)  # validates the map (shape, finiteness, a spot above background)
    else:
        if not isinstance(gaussian_fit, GaussianSpotFit):
            raise TypeError(f"gaussian_fit must be the xrfgpu.psf.fit_dot result for this map (a DotFit), "
                            f"got {type(gaussian_fit).__name__}")
        if data.ndim != 2 or min(data.shape) < 5 or not np.all(np.isfinite(data)):
            raise ValueError(f"image must be a finite 2-D map of at least 5×5 pixels, got shape {data.shape}"
                             + ("" if np.all(np.isfinite(data)) else " with NaN or infinite values"))
    rows, cols = data.shape
    vv, uu = np.mgrid[:rows, :cols].astype(np.float64)
    uu, vv, y = uu.ravel(), vv.ravel(), data.ravel()
    rmax = float(math.hypot(rows, cols)) * 2.0 + 1.0
    sg = math.sqrt(max(gaussian_fit.sigma_u * gaussian_fit.sigma_v, 0.01))
    size = float(max(rows, cols))
    lo = np.array([-0.5 * cols, -0.5 * rows, 0.05, 0.0, 0.0, -np.inf])
    hi = np.array([1.5 * cols, 1.5 * rows, 2.0 * size, 4.0 * size, np.inf, np.inf])

    def solve(p0, w, fixed_point=False):
        p0 = np.clip(np.asarray(p0, dtype=np.float64), lo + 1e-9, hi - 1e-9)
        keep = np.array([True, True, True, not fixed_point, True, True])

        def full(q):
            return np.insert(q, 3, 0.0) if fixed_point else q

        sol = optimize.least_squares(lambda q: (_model(full(q), uu, vv, rmax) - y) * w, p0[keep],
                                     bounds=(lo[keep], hi[keep]), method="trf", x_scale="jac", max_nfev=300)
        return full(sol.x), float(np.sum(sol.fun ** 2)), sol.jac

    base = [gaussian_fit.mu_u, gaussian_fit.mu_v, sg, 0.0, gaussian_fit.alpha, gaussian_fit.beta]
    p_circle, _, _ = solve(base, np.ones_like(y), fixed_point=True)
    # Poisson-like weights from the circular Gaussian's model, the same for both fits (so they stay
    # nested): with equal weights the pixels of the peak, whose variance is many times the
    # background's, made a point dot's F statistic reach 25 (1.5 px disk under σ 3 px, peak 2000
    # over 100). The floor keeps a fitted map's near-zero background from taking all the weight.
    g0 = _model(p_circle, uu, vv, rmax)
    floor = max(float(p_circle[5]), 0.01 * float(g0.max() - p_circle[5]), 1e-300)
    w = 1.0 / np.sqrt(np.maximum(g0, floor))
    p_circle, rss_circle, _ = solve(p_circle, w, fixed_point=True)
    best = None
    for share in (0.1, 0.5, 0.9):
        start = list(p_circle)
        start[2] = math.sqrt(1.0 - share) * sg
        start[3] = 4.0 * math.sqrt(share) * sg
        p, rss, jac = solve(start, w)
        if best is None or rss < best[1]:
            best = (p, rss, jac)
    p, rss, jac = best
    n = y.size
    dof = max(1, n - 6)
    s2 = rss / dof
    try:
        cov = np.linalg.inv(jac.T @ jac) * s2
        se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    except np.linalg.LinAlgError:
        se = np.full(6, np.nan)
    names = ("mu_u", "mu_v", "sigma", "diameter", "alpha", "beta")
    rss_gauss = rss_circle
    f_stat = (rss_gauss - rss) / s2 if s2 > 0 else (math.inf if rss_gauss > rss else 0.0)
    return DiskSpotFit(mu_u=float(p[0]), mu_v=float(p[1]), sigma=float(p[2]), diameter=float(p[3]),
                       alpha=float(p[4]), beta=float(p[5]), stderr=dict(zip(names, (float(v) for v in se))),
                       rss=rss, rss_gaussian=rss_gauss, f_statistic=float(f_stat),
                       pixel_size_um=None if pixel_size_um is None else float(pixel_size_um))


def dot_is_resolved(fit, *, f_statistic=RESOLVED_F_STATISTIC, sigma_bias=RESOLVED_SIGMA_BIAS):
    """Whether a :class:`DiskSpotFit` shows a dot too large for the Gaussian dot method.

    True when the disk fits better than every Gaussian spot by more than ``f_statistic`` residual
    variances and one Gaussian's σ would overstate the spot's by more than ``sigma_bias`` (a
    fraction; ``D > 4 σ √((1 + bias)² − 1)``, 1.28 σ at 5 %). The dot is then part of what the
    Gaussian fit measures: give its size (``dot_diameter_um``), or scan a dot smaller than the spot.
    """
    return bool(fit.f_statistic > f_statistic and fit.gaussian_sigma_bias > sigma_bias)
