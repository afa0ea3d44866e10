"""Least-squares fit of the paper's spot model g = α·h + β on the host.

Shared by :func:`xrfgpu.psf.fit_dot` and :func:`xrfgpu.psf.sigma_from_kernel`.
The model (Yang et al. 2022, eqs. for h and g) is

    h(u, v) = exp(−q / (2(1 − ρ²))) / (2π σu σv √(1 − ρ²)),
    q = ((u − μu)/σu)² + ((v − μv)/σv)² − 2ρ (u − μu)(v − μv)/(σu σv),
    g(u, v) = α h(u, v) + β,

with u the column and v the row coordinate of a pixel centre, in pixels.
α is therefore the integrated signal above the background (counts·px² for a
count map, 1 for a unit-sum kernel) and β the flat background per pixel.

The fit runs on the host with :func:`scipy.optimize.least_squares`
(trust-region reflective, analytic Jacobian); standard errors come from the
Gauss–Newton covariance ``s² (JᵀJ)⁻¹`` with ``s²`` the reduced χ² of the
(weighted) residuals, built from the singular values of J (NaN where the
data do not determine a parameter). The fit runs on the map divided by its
span, so it does not depend on the map's units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ._gaussian import FWHM_PER_SIGMA
from ._results import PixelLengths

__all__ = ["GaussianSpotFit", "fit_gaussian_spot", "spot_model"]

_PARAMS = ("mu_u", "mu_v", "sigma_u", "sigma_v", "rho", "alpha", "beta")


def spot_model(shape, mu_u, mu_v, sigma_u, sigma_v, rho, alpha, beta):
    """Evaluate g = α·h + β at the pixel centres of a (rows, cols) grid (NumPy, float64)."""
    rows, cols = shape
    u = (np.arange(cols, dtype=np.float64)[None, :] - mu_u) / sigma_u
    v = (np.arange(rows, dtype=np.float64)[:, None] - mu_v) / sigma_v
    one_m = 1.0 - rho * rho
    q = u * u + v * v - 2.0 * rho * u * v
    h = np.exp(-q / (2.0 * one_m)) / (2.0 * math.pi * sigma_u * sigma_v * math.sqrt(one_m))
    return alpha * h + beta


def _model_and_jacobian(p, uu, vv):
    mu_u, mu_v, su, sv, rho, alpha, beta = p
    du = uu - mu_u
    dv = vv - mu_v
    a = du / su
    b = dv / sv
    one_m = 1.0 - rho * rho
    q = a * a + b * b - 2.0 * rho * a * b
    norm = 1.0 / (2.0 * math.pi * su * sv * math.sqrt(one_m))
    h = norm * np.exp(-q / (2.0 * one_m))
    g = alpha * h + beta
    # d h / d param = h * d(log h)/d param
    dq_da = 2.0 * a - 2.0 * rho * b
    dq_db = 2.0 * b - 2.0 * rho * a
    c = -1.0 / (2.0 * one_m)
    dlog_mu_u = c * dq_da * (-1.0 / su)
    dlog_mu_v = c * dq_db * (-1.0 / sv)
    dlog_su = c * dq_da * (-a / su) - 1.0 / su
    dlog_sv = c * dq_db * (-b / sv) - 1.0 / sv
    # log h = -log(2π su sv) - ½ log(1-ρ²) - q/(2(1-ρ²))
    dlog_rho = rho / one_m + (2.0 * a * b) / (2.0 * one_m) - q * rho / (one_m * one_m)
    ah = alpha * h
    jac = np.stack(
        [
            ah * dlog_mu_u,
            ah * dlog_mu_v,
            ah * dlog_su,
            ah * dlog_sv,
            ah * dlog_rho,
            h,
            np.ones_like(h),
        ],
        axis=-1,
    )
    return g, jac


def _moment_guess(data, background):
    rows, cols = data.shape
    signal = np.clip(data - background, 0.0, None)
    total = signal.sum()
    if not total > 0:
        raise ValueError("the map has no signal above its background: no spot to fit")
    vv, uu = np.mgrid[:rows, :cols].astype(np.float64)
    mu_u = float((signal * uu).sum() / total)
    mu_v = float((signal * vv).sum() / total)
    # Second moments of a noisy floor are dominated by the floor; use the peak
    # width at half maximum instead, which noise barely moves.
    peak = float(signal.max())
    area_half = float(np.count_nonzero(signal >= 0.5 * peak))
    s0 = max(0.5, math.sqrt(area_half / (2.0 * math.pi * math.log(2.0))))
    alpha0 = max(total, peak * 2.0 * math.pi * s0 * s0)
    return mu_u, mu_v, s0, alpha0


@dataclass(frozen=True)
class GaussianSpotFit(PixelLengths):
    """Result of fitting g = α·h + β (the paper's bivariate Gaussian spot).

    Attributes use the paper's symbols; u is the column and v the row axis,
    lengths are in pixels, and ``*_um`` twins are given when the fit was
    made with a pixel size (scan step) in µm.

    Attributes
    ----------
    mu_u, mu_v : float
        Spot centre (column, row), pixels, in the coordinates of the fitted array.
    sigma_u, sigma_v : float
        Standard deviations along columns and rows, pixels.
    rho : float
        Correlation coefficient of u and v.
    alpha : float
        Integrated signal above background (counts · pixel for a count map).
    beta : float
        Background per pixel.
    stderr : dict
        One standard error per parameter name above; NaN for a parameter
        the data do not determine (never 0, except for a held β).
    residual : ndarray
        data − model, same shape as the fitted map (NumPy, float64).
    model : ndarray
        The fitted g on the pixel grid.
    pixel_size_um : float or None
        Scan step used for the ``*_um`` attributes.
    reduced_chi2 : float
        Σ (weighted residual)² / (N − 7).
    """

    mu_u: float
    mu_v: float
    sigma_u: float
    sigma_v: float
    rho: float
    alpha: float
    beta: float
    stderr: dict
    residual: np.ndarray = field(repr=False)
    model: np.ndarray = field(repr=False)
    pixel_size_um: float | None = None
    reduced_chi2: float = float("nan")

    @property
    def sigma(self) -> float:
        """Geometric mean √(σu σv), pixels: the σ of the isotropic Gaussian of equal area."""
        return math.sqrt(self.sigma_u * self.sigma_v)

    @property
    def fwhm_u(self) -> float:
        """FWHM along the columns, 2√(2 ln 2) σu, pixels."""
        return FWHM_PER_SIGMA * self.sigma_u

    @property
    def fwhm_v(self) -> float:
        """FWHM along the rows, pixels."""
        return FWHM_PER_SIGMA * self.sigma_v

    sigma_u_um = property(lambda self: self._um(self.sigma_u), doc="σu in µm.")
    sigma_v_um = property(lambda self: self._um(self.sigma_v), doc="σv in µm.")
    mu_u_um = property(lambda self: self._um(self.mu_u), doc="μu in µm from the array origin.")
    mu_v_um = property(lambda self: self._um(self.mu_v), doc="μv in µm from the array origin.")
    fwhm_u_um = property(lambda self: self._um(self.fwhm_u), doc="FWHM along u in µm.")
    fwhm_v_um = property(lambda self: self._um(self.fwhm_v), doc="FWHM along v in µm.")

    @property
    def covariance(self) -> np.ndarray:
        """Spot covariance matrix [[σu², ρσuσv], [ρσuσv, σv²]] (u first), pixels²."""
        c = self.rho * self.sigma_u * self.sigma_v
        return np.array([[self.sigma_u**2, c], [c, self.sigma_v**2]])

    def ellipse(self, k: float = 1.0):
        """Geometry of the k-σ confidence ellipse of the spot.

        The ellipse is {x : (x − μ)ᵀ Σ⁻¹ (x − μ) = k²} with Σ the spot
        covariance; k = 1, 2, 3 are the paper's ±σ, ±2σ, ±3σ contours (Fig. 3a).

        Returns
        -------
        dict
            ``center`` (μu, μv), ``semi_major`` and ``semi_minor`` (pixels),
            ``angle_deg`` of the major axis from the +u (column) axis towards
            +v (rows), and ``mass`` = 1 − exp(−k²/2), the fraction of the
            spot inside it.
        """
        k = float(k)
        if not k > 0:
            raise ValueError(f"k must be a positive number of standard deviations, got {k}")
        evals, evecs = np.linalg.eigh(self.covariance)
        major = evecs[:, 1]
        angle = math.degrees(math.atan2(major[1], major[0]))
        if angle <= -90.0:
            angle += 180.0
        elif angle > 90.0:
            angle -= 180.0
        return {
            "center": (self.mu_u, self.mu_v),
            "semi_major": k * math.sqrt(evals[1]),
            "semi_minor": k * math.sqrt(max(evals[0], 0.0)),
            "angle_deg": angle,
            "mass": 1.0 - math.exp(-0.5 * k * k),
        }

    def ellipses(self, ks=(1.0, 2.0, 3.0)):
        """The paper's 1σ/2σ/3σ confidence ellipses (list of :meth:`ellipse` dicts)."""
        return [self.ellipse(k) for k in ks]

    def psf(self, shape=None, *, xp=None, device=None, dtype=None):
        """The fitted, centred Gaussian as a unit-sum PSF array (see :func:`xrfgpu.psf.gaussian`)."""
        from ._gaussian import gaussian

        return gaussian(shape, self.sigma_u, self.sigma_v, self.rho, xp=xp, device=device, dtype=dtype)


#: relative singular-value cut-off of the column-normalised weighted Jacobian below which a direction
#: of the parameter space is taken as not determined by the data (its standard errors are NaN). The
#: Jacobian's singular values are accurate to about 1e-16 of the largest, so 1e-7 leaves a wide margin
#: for rounding while a determined but poorly constrained parameter (condition number below 1e7) keeps
#: a finite, large standard error.
_RCOND = 1e-7


def _standard_errors(j, chi2):
    """Standard errors √diag(s² (JᵀJ)⁻¹) from the weighted Jacobian ``j`` (n, k), NaN where undetermined.

    ``JᵀJ`` is not inverted: its inverse is built from the singular value decomposition of ``j``
    with its columns scaled to unit norm (a badly conditioned ``JᵀJ`` used to give a negative
    diagonal, which a clip turned into a standard error of exactly 0). Directions whose singular
    value is below ``_RCOND`` of the largest are not determined by the data; every parameter with a
    component along one of them gets a NaN standard error, the others their pseudo-inverse value.

    Returns
    -------
    se : ndarray, shape (k,)
        Standard errors, NaN for parameters the data do not determine.
    """
    k = j.shape[1]
    if not (np.all(np.isfinite(j)) and math.isfinite(chi2)):
        return np.full(k, np.nan)
    norms = np.sqrt(np.sum(j * j, axis=0))
    se = np.full(k, np.nan)
    live = norms > 0  # a parameter the model does not depend on at all is not determined
    if not np.any(live):
        return se
    jn = j[:, live] / norms[live]
    try:
        _, s, vt = np.linalg.svd(jn, full_matrices=False)
    except np.linalg.LinAlgError:
        return se
    keep = s > _RCOND * s[0]
    var = np.sum((vt[keep] / s[keep, None]) ** 2, axis=0) / norms[live] ** 2 * chi2
    undetermined = np.zeros(var.shape, dtype=bool)
    if not np.all(keep):
        # a parameter is determined only if it has no component along the null directions
        undetermined = np.max(np.abs(vt[~keep]), axis=0) > math.sqrt(_RCOND)
    se_live = np.sqrt(var)
    se_live[undetermined] = np.nan
    se[live] = se_live
    return se


def fit_gaussian_spot(data, *, background=None, weights=None, poisson=False, pixel_size_um=None, fix_beta=None):
    """Fit g = α·h + β to a 2-D NumPy map on the host; returns :class:`GaussianSpotFit`.

    Parameters
    ----------
    data : ndarray, 2-D, float64
        The map (finite; validated by the caller).
    background : float, optional
        Starting value for β (default: 10th percentile of the map).
    weights : ndarray, optional
        Per-pixel weights 1/σ_i of the residuals, in 1/(map units).
    poisson : bool
        Weight each residual by 1/√max(g, 1) with g the current model in the
        map's own units (counts; iteratively reweighted: one unweighted fit,
        then two reweighted fits).
    pixel_size_um : float, optional
        Scan step for the ``*_um`` attributes.
    fix_beta : float, optional
        Hold β at this value instead of fitting it.

    Notes
    -----
    The fit is invariant to multiplying the map by a positive constant: it runs
    on the map divided by its span (max − min), and α, β, their standard
    errors and the reduced χ² are scaled back. :func:`scipy.optimize.least_squares`
    stops on an absolute gradient tolerance (``gtol`` 1e-8), so fitting the map
    in its own units stopped early on maps of small values: the same dot gave
    σu 1.95 px at ×1 but 3.05 px at ×1e-7 and 2.73 px at ×1e-8 (truth 2.0).
    The Poisson weights are computed from the model in the map's own units
    (counts), so a count map's likelihood is unchanged.

    Standard errors are √diag(s² (JᵀJ)⁻¹), computed from the singular values
    of the column-normalised weighted Jacobian. A parameter along a direction
    the data do not determine (singular value below 1e-7 of the largest, e.g.
    a spot of σ ≈ 0.2 px that lights a single pixel, where μ, σ, ρ and α all
    move that one pixel alike) gets a NaN standard error — never 0, which a
    clip of the negative diagonal of an ill-conditioned inverse used to give.
    """
    from scipy import optimize

    data = np.asarray(data, dtype=np.float64)
    rows, cols = data.shape
    if rows < 3 or cols < 3:
        raise ValueError(f"need at least 3×3 pixels to fit a 2-D Gaussian, got shape {data.shape}")
    if not np.all(np.isfinite(data)):
        raise ValueError("the map contains NaN or infinite values; crop the map away from them or fill them first")
    span = float(data.max() - data.min())
    if not span > 0:
        raise ValueError("the map is flat: there is no spot to fit")
    # Fit the map in units of its span, so the optimiser's absolute tolerances mean the same thing
    # whatever the map's units (counts, µg/cm², g/cm², fractions); α, β are scaled back below.
    scale = span
    data_n = data / scale
    b0 = float(np.percentile(data_n, 10.0)) if background is None else float(background) / scale
    if fix_beta is not None:
        b0 = float(fix_beta) / scale
    mu_u, mu_v, s0, a0 = _moment_guess(data_n, b0)
    vv, uu = np.mgrid[:rows, :cols].astype(np.float64)
    uu = uu.ravel()
    vv = vv.ravel()
    y = data_n.ravel()
    smax = 2.0 * max(rows, cols)
    free = np.ones(7, dtype=bool)
    if fix_beta is not None:
        free[6] = False
    p_full = np.array([mu_u, mu_v, s0, s0, 0.0, a0, b0])
    lo = np.array([-0.5 * cols, -0.5 * rows, 0.1, 0.1, -0.98, 0.0, -np.inf])
    hi = np.array([1.5 * cols, 1.5 * rows, smax, smax, 0.98, np.inf, np.inf])
    p_full = np.clip(p_full, lo + 1e-9, hi - 1e-9)

    def full(p):
        out = p_full.copy()
        out[free] = p
        return out

    def run(w, p_start):
        def resid(p):
            g, _ = _model_and_jacobian(full(p), uu, vv)
            return (g - y) * w

        def jac(p):
            _, j = _model_and_jacobian(full(p), uu, vv)
            return j[:, free] * w[:, None]

        return optimize.least_squares(
            resid, p_start, jac=jac, bounds=(lo[free], hi[free]), method="trf", x_scale="jac", max_nfev=200
        )

    # weights are 1/σ_i in 1/(map units); the residuals are in units of the span, hence × scale
    w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=np.float64).ravel() * scale
    sol = run(w, p_full[free])
    if poisson and weights is None:
        for _ in range(2):
            g, _ = _model_and_jacobian(full(sol.x), uu, vv)
            # the Poisson variance is the model in counts (the map's own units); × scale as above
            w = scale / np.sqrt(np.maximum(g * scale, 1.0))
            sol = run(w, sol.x)
    p = full(sol.x)
    g, jfull = _model_and_jacobian(p, uu, vv)
    j = jfull[:, free] * w[:, None]
    dof = max(1, y.size - int(free.sum()))
    chi2 = float(np.sum(((g - y) * w) ** 2)) / dof
    se = np.zeros(7)  # a held β has no error
    se[free] = _standard_errors(j, chi2)
    # back to the map's units: α and β (and their errors) scale with the map, the shape does not
    p[5:] *= scale
    se[5:] *= scale
    if weights is None and not poisson:
        chi2 *= scale * scale  # the residual variance per pixel, in map units²
    stderr = dict(zip(_PARAMS, (float(s) for s in se)))
    model = g.reshape(rows, cols) * scale
    return GaussianSpotFit(
        mu_u=float(p[0]),
        mu_v=float(p[1]),
        sigma_u=float(p[2]),
        sigma_v=float(p[3]),
        rho=float(p[4]),
        alpha=float(p[5]),
        beta=float(p[6]),
        stderr=stderr,
        residual=data - model,
        model=model,
        pixel_size_um=None if pixel_size_um is None else float(pixel_size_um),
        reduced_chi2=chi2,
    )
