"""Is the spot elongated? σu, σv, ρ of an elliptical Gaussian blur from the map alone.

A Gaussian blur of covariance Σ (u = columns, v = rows) multiplies the scene's
spectrum by exp(−2π² kᵀΣk), so its power by exp(−4π² kᵀΣk): along each
direction of the frequency plane the power falls at the rate of that
direction's σ(θ)² = σu² cos²θ + σv² sin²θ + 2ρ σu σv sinθ cosθ. Two readings
of Σ, both from the blind σ stages' own data:

* **Directional spectrum** (:func:`spectral_ellipse`): the Hann-windowed
  periodogram of :func:`xrfgpu.psf.blind_sigma._ring_spectrum` is averaged in
  rings 1/n wide *and* in wedges of direction, and fitted by the Whittle
  likelihood of P(k) = A_w (|k|² + k0²)^(−β/2) exp(−4π² kᵀΣk) + N, with one
  amplitude A_w per wedge (a scene with more edges along one direction than
  another, such as a bar chart, has more power there: that is the scene, not
  the blur), one scene law (k0, β under the prior of the ring stage), one
  white-noise level N and one Σ. (One exponent β per wedge, each with a
  Gaussian prior of sd 0.2 about the shared one, was tried on the tuning
  maps: it changed the maps called elongated by one or two of 228 round and
  108 elongated ones, so one β is kept.) Σ is written s² expm(E), E symmetric and
  traceless, so that s = (det Σ)^(1/4) = √(σ_major σ_minor) is the σ of the
  equal-area round spot and the axis ratio is exp(|E|). The same fit runs on
  the four corner sub-maps of the ring stage: a blur is the same everywhere,
  a scene's own anisotropy (text, a texture, a few oriented grains) is not.
* **Edge profiles at known normals** (:func:`directional_edge_fit`): every
  edge profile (:func:`xrfgpu.psf.edge_profiles.local_edge_profiles`) reads
  σ(θ) across an edge whose normal θ it knows; σ(θ)² is linear in
  (Σuu, Σvv, Σuv) and fitted by robust weighted least squares.

References
----------
P. Whittle, "Estimation and information in stationary time series", Ark. Mat.
2, 423 (1953), doi:10.1007/BF02590998.
J. Yang, Z. Zhang, Q. Cheng, J. Anal. At. Spectrom. 37, 750 (2022),
doi:10.1039/d1ja00425e (the elliptical Gaussian PSF h(u, v) with σu, σv, ρ).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["covariance_to_axes", "directional_edge_fit", "spectral_ellipse"]

# wedges of direction of the directional spectrum, over the half plane (180°); the first is centred on
# the columns' frequency axis (kx: the blur along u)
_WEDGES = 8
# the scene exponent's prior, as in the ring stage (xrfgpu.psf.blind_sigma._BETA_PRIOR)
_BETA_PRIOR = (3.0, 0.2)
_LOG_K0_RANGE = (math.log(1e-4), math.log(0.3))
# a weak Gaussian prior (sd) on the anisotropy e = (e1, e2) of Σ = s² expm(E), |e| = ln(σ_major²/σ_minor²):
# it keeps sub-maps without information from running off to axis ratios of 10⁵ (sd 1: ratio e^0.5 = 1.65 at 1 sd)
_E_PRIOR_SD = 1.0


def covariance_to_axes(suu, svv, suv):
    """(σu, σv, ρ) of the covariance (Σuu, Σvv, Σuv) (px²), and its (σ_major, σ_minor, major-axis angle°).

    The angle is that of the long axis from the columns (u) towards the rows (v), in [0, 180).
    """
    su, sv = math.sqrt(max(suu, 1e-300)), math.sqrt(max(svv, 1e-300))
    rho = max(min(suv / (su * sv), 0.999), -0.999)
    half_trace, diff = 0.5 * (suu + svv), 0.5 * (suu - svv)
    radius = math.hypot(diff, suv)
    major = math.sqrt(max(half_trace + radius, 1e-300))
    minor = math.sqrt(max(half_trace - radius, 1e-300))
    angle = math.degrees(0.5 * math.atan2(2.0 * suv, suu - svv)) % 180.0
    return (su, sv, rho), (major, minor, angle)


def _wedge_geometry(shape, wedges=_WEDGES):
    """Bins (ring × wedge) of the rfft half plane of a Hann-windowed map of ``shape``."""
    from scipy import fft as sfft
    from scipy.signal import windows

    from ._spectra import half_plane_weights

    rows, cols = shape
    taper = np.outer(windows.hann(rows, sym=False), windows.hann(cols, sym=False))
    ky = sfft.fftfreq(rows)[:, None] * np.ones((1, cols // 2 + 1))
    kx = sfft.rfftfreq(cols)[None, :] * np.ones((rows, 1))
    k2 = kx * kx + ky * ky
    w = half_plane_weights((rows, cols))
    n = min(rows, cols)
    ring = np.floor(np.sqrt(k2) * n).astype(np.int64)
    theta = np.arctan2(ky, kx)  # (−π/2, π/2] on the half plane kx ≥ 0
    wedge = np.floor(np.mod(theta + math.pi / (2 * wedges), math.pi) / (math.pi / wedges)).astype(np.int64)
    wedge = np.minimum(wedge, wedges - 1)
    # rings 0-2 are inside the window's main lobe; rings beyond n/2 hold the corners only
    use = (ring >= 3) & (ring <= n // 2)
    bin_id = (ring * wedges + wedge)[use]
    wt = w[use]
    m = np.bincount(bin_id, wt)
    keep = m > 0
    idx = np.flatnonzero(keep)

    def mean(values):
        return np.bincount(bin_id, wt * values[use])[keep] / m[keep]

    return {"shape": (rows, cols), "taper": taper, "taper_sum": taper.sum(), "taper_power": float((taper**2).sum()),
            "use": use, "bin_id": bin_id, "wt": wt, "keep": keep, "m": m[keep], "wedge": idx % wedges,
            "kxx": mean(kx * kx), "kyy": mean(ky * ky), "kxy": mean(kx * ky), "k2": mean(k2), "wedges": wedges}


def _wedge_spectrum(data, geometry):
    """Mean power per (ring, wedge) bin of the Hann-windowed periodogram (white noise of variance N → N)."""
    from scipy import fft as sfft

    taper = geometry["taper"]
    centred = (data - float((data * taper).sum() / geometry["taper_sum"])) * taper
    power = np.abs(sfft.rfft2(centred)) ** 2 / geometry["taper_power"]
    total = np.bincount(geometry["bin_id"], geometry["wt"] * power[geometry["use"]])
    return total[geometry["keep"]] / geometry["m"]


def _covariance(log_s, e1, e2):
    """Σ = s² expm([[e1, e2], [e2, −e1]]): (Σuu, Σvv, Σuv) and their derivatives in (log s, e1, e2)."""
    eps = math.hypot(e1, e2)  # the optimiser's steps are kept finite by the prior on e (see _nll)
    if eps > 20.0:
        e1, e2, eps = 20.0 * e1 / eps, 20.0 * e2 / eps, 20.0
    if eps < 1e-8:
        ch, shc, dshc = 1.0, 1.0, 1.0 / 3.0  # sinh(ε)/ε and d(sinh ε/ε)/dε / ε at ε → 0
    else:
        ch, shc = math.cosh(eps), math.sinh(eps) / eps
        dshc = (math.cosh(eps) - shc) / (eps * eps)
    s2 = math.exp(2.0 * max(min(log_s, 10.0), -10.0))  # σ kept in e^±10 px while the optimiser explores
    suu, svv, suv = s2 * (ch + e1 * shc), s2 * (ch - e1 * shc), s2 * e2 * shc
    # d cosh ε / d e_i = shc · e_i ; d shc / d e_i = dshc · e_i
    d_e1 = (s2 * (shc * e1 + shc + e1 * dshc * e1), s2 * (shc * e1 - shc - e1 * dshc * e1), s2 * e2 * dshc * e1)
    d_e2 = (s2 * (shc * e2 + e1 * dshc * e2), s2 * (shc * e2 - e1 * dshc * e2), s2 * (shc + e2 * dshc * e2))
    d_ls = (2.0 * suu, 2.0 * svv, 2.0 * suv)
    return (suu, svv, suv), (d_ls, d_e1, d_e2)


def _nll(theta, g, power, elliptical):
    """Whittle negative log-likelihood (and gradient) of the directional spectrum model.

    θ = (a_0 … a_{W−1}, t_k0, log N, β, log s[, e1, e2]); a_w the log amplitude of wedge w.
    """
    wedges = g["wedges"]
    a = theta[:wedges]
    t_k0, log_n, beta, log_s = theta[wedges : wedges + 4]
    e1, e2 = (theta[wedges + 4], theta[wedges + 5]) if elliptical else (0.0, 0.0)

    lo, hi = _LOG_K0_RANGE
    squash = 1.0 / (1.0 + math.exp(-max(min(t_k0, 50.0), -50.0)))
    k0sq = math.exp(2.0 * (lo + (hi - lo) * squash))
    (suu, svv, suv), derivs = _covariance(log_s, e1, e2)
    four_pi2 = 4.0 * math.pi**2
    log_k2 = np.log(g["k2"] + k0sq)
    quad = suu * g["kxx"] + svv * g["kyy"] + 2.0 * suv * g["kxy"]
    with np.errstate(under="ignore", over="ignore"):
        scene = np.exp(np.minimum(a[g["wedge"]] - 0.5 * beta * log_k2 - four_pi2 * quad, 600.0))
    noise = math.exp(max(min(log_n, 60.0), -60.0))
    p = scene + noise
    ratio = power / p
    m = g["m"]
    mean, sd = _BETA_PRIOR
    value = float(np.sum(m * (np.log(p) + ratio))) + 0.5 * ((beta - mean) / sd) ** 2
    value += 0.5 * (e1 * e1 + e2 * e2) / _E_PRIOR_SD**2
    dp = m * (1.0 - ratio) / p
    ds = dp * scene
    grad = np.empty(theta.size)
    grad[:wedges] = np.bincount(g["wedge"], ds, minlength=wedges)
    grad[wedges] = float(np.sum(ds * (-beta * k0sq / (g["k2"] + k0sq)))) * (hi - lo) * squash * (1.0 - squash)
    grad[wedges + 1] = float(np.sum(dp)) * noise
    grad[wedges + 2] = float(np.sum(ds * (-0.5 * log_k2))) + (beta - mean) / sd**2
    dq = [-four_pi2 * float(np.sum(ds * g[k])) for k in ("kxx", "kyy", "kxy")]
    dq[2] *= 2.0
    for j, d in enumerate(derivs[: 3 if elliptical else 1]):
        grad[wedges + 3 + j] = dq[0] * d[0] + dq[1] * d[1] + dq[2] * d[2]
    if elliptical:
        grad[wedges + 4] += e1 / _E_PRIOR_SD**2
        grad[wedges + 5] += e2 / _E_PRIOR_SD**2
    return value, grad


# starting anisotropies e = (e1, e2) of the elliptical fit of a whole map (round, and ratio e^0.15 ≈ 1.16 along
# the columns, the rows and the diagonals)
_E_STARTS = ((0.0, 0.0), (0.3, 0.0), (-0.3, 0.0), (0.0, 0.3), (0.0, -0.3))


def _fit(data, geometry, sigma0, *, scales=(1.0, 0.7, 1.4), e_starts=_E_STARTS):
    """Round and elliptical fits of one map's directional spectrum: dict of both.

    The round fit starts from σ₀ × each of ``scales``, the elliptical one from the best round fit with each
    anisotropy of ``e_starts``; the best likelihood of each is kept."""
    from scipy import optimize

    power = _wedge_spectrum(data, geometry)
    power = power / max(float(np.median(power)), 1e-300)
    wedges = geometry["wedges"]
    k2 = geometry["k2"]
    tail = power[k2 > np.quantile(k2, 0.8)]
    noise0 = max(float(np.median(tail)), 1e-300)
    low = k2 <= np.quantile(k2, 0.1)
    a0 = [math.log(max(float(np.mean(power[low & (geometry["wedge"] == w)])) if np.any(low & (geometry["wedge"] == w))
                       else 1.0, 1e-300)) + 1.5 * math.log(float(np.mean(k2[low]))) for w in range(wedges)]
    lo, hi = _LOG_K0_RANGE
    t0 = math.log((math.log(0.005) - lo) / (hi - math.log(0.005)))
    best_round = None
    for s0 in (scale * max(float(sigma0), 0.5) for scale in scales):
        start = np.array(a0 + [t0, math.log(noise0), _BETA_PRIOR[0], math.log(s0)])
        r = optimize.minimize(_nll, start, args=(geometry, power, False), jac=True, method="BFGS",
                              options={"gtol": 1e-5, "maxiter": 400})
        if best_round is None or r.fun < best_round.fun:
            best_round = r
    best = None
    for e1, e2 in e_starts:
        start = np.concatenate([best_round.x, [e1, e2]])
        r = optimize.minimize(_nll, start, args=(geometry, power, True), jac=True, method="BFGS",
                              options={"gtol": 1e-5, "maxiter": 400})
        if best is None or r.fun < best.fun:
            best = r
    log_s, e1, e2 = (float(v) for v in best.x[wedges + 3 : wedges + 6])
    (suu, svv, suv), _ = _covariance(log_s, e1, e2)
    (su, sv, rho), (major, minor, angle) = covariance_to_axes(suu, svv, suv)
    return {"sigma_u": su, "sigma_v": sv, "rho": rho, "sigma": math.exp(log_s), "ratio": major / minor,
            "angle": angle, "sigma_round": math.exp(float(best_round.x[wedges + 3])),
            "likelihood_ratio": 2.0 * float(best_round.fun - best.fun), "e": (e1, e2),
            "scene_exponent": float(best.x[wedges + 2])}


def spectral_ellipse(data, sigma0, *, submap_fraction=0.625, min_side=32):
    """σu, σv, ρ of the blur from the map's directional power spectrum (Whittle likelihood).

    Parameters
    ----------
    data : numpy.ndarray, shape (rows, cols)
        Counts map (float64).
    sigma0 : float
        First guess of the round σ (px), e.g. the ring stage's spectral σ: the fits' starting point.
    submap_fraction : float
        The same fit runs on the four corner sub-maps of this fraction of the side.
    min_side : int
        Sub-maps under this many pixels are skipped.

    Returns
    -------
    dict
        ``sigma_u``, ``sigma_v`` (px), ``rho``, ``sigma`` (px, √(σ_major σ_minor)), ``ratio``
        (σ_major/σ_minor ≥ 1), ``angle`` (° of the long axis from the columns towards the rows),
        ``likelihood_ratio`` (2 Δ log-likelihood against one round σ, χ² with 2 degrees of freedom
        if the model were exact), ``submaps`` (list of the same dicts for the corner sub-maps),
        and ``log_ratio_vectors``: the anisotropy (ln r cos 2φ, ln r sin 2φ) of the whole map and
        of each sub-map (a blur has one; see :func:`xrfgpu.psf.estimate_sigma`, Notes).

    Notes
    -----
    See the module docstring. Bins are rings 1/n wide (n the shorter side) crossed with 8
    wedges of 22.5°, the first centred on the columns' frequency axis; rings 0–2 (the window's
    main lobe) and beyond n/2 are left out. The exponent β of the scene law has the ring stage's
    Gaussian prior (3, 0.2). Round and elliptical models are both fitted (BFGS, analytic gradient).

    Backends: NumPy input (called by :func:`xrfgpu.psf.estimate_sigma` on its host copy).
    """
    rows, cols = data.shape
    whole = _fit(data, _wedge_geometry((rows, cols)), sigma0)
    subs = []
    r, c = round(submap_fraction * rows), round(submap_fraction * cols)
    if min(r, c) >= min_side:
        geometry = _wedge_geometry((r, c))
        for r0 in (0, rows - r):
            for c0 in (0, cols - c):
                sub = data[r0 : r0 + r, c0 : c0 + c]
                if float(sub.max() - sub.min()) > 0:
                    # from the whole map's σ, and from round and the whole map's anisotropy (the better
                    # likelihood wins: a sub-map is not pulled to agree)
                    subs.append(_fit(sub, geometry, whole["sigma"], scales=(1.0,), e_starts=((0.0, 0.0), whole["e"])))
    whole["submaps"] = subs
    whole["log_ratio_vectors"] = [_anisotropy_vector(f) for f in [whole, *subs]]
    return whole


def _anisotropy_vector(fit):
    """(ln r cos 2φ, ln r sin 2φ) of a fit: a round spot is the origin; the vector is the same for any
    direction's sign, and its length is the log axis ratio."""
    lr = math.log(fit["ratio"])
    phi = math.radians(2.0 * fit["angle"])
    return (lr * math.cos(phi), lr * math.sin(phi))


def directional_edge_fit(fits, *, chi2_max=1.2, min_profiles=12, resamples=100, seed=0):
    """Σ of the blur from edge profiles at known normals: σ(θ)² = Σuu cos²θ + Σvv sin²θ + 2 Σuv sinθ cosθ.

    Parameters
    ----------
    fits : list of dict
        Profiles of :func:`xrfgpu.psf.edge_profiles.local_edge_profiles` (each with ``sigma``, ``stderr``,
        ``reduced_chi2`` and the unit normal ``normal`` = (n_u, n_v)).
    chi2_max : float
        Profiles whose reduced χ² exceeds this are left out.
    min_profiles : int
        Fewer accepted profiles give ``None``.
    resamples : int
        Bootstrap resamples of the profiles for the interval of the axis ratio (0: none).
    seed : int
        Seed of the bootstrap.

    Returns
    -------
    dict or None
        ``sigma_u``, ``sigma_v`` (px), ``rho``, ``ratio``, ``angle`` (as :func:`spectral_ellipse`),
        ``ratio_interval`` (5th and 95th percentiles of the ratio over the bootstrap resamples),
        ``log_spread`` (1.4826 MAD of ln σ about the fitted σ(θ)) and ``round_log_spread`` (the same about
        the profiles' median σ, as the round model sees them),
        ``covariance`` (Σuu, Σvv, Σuv, px²) with its standard errors ``covariance_se``, ``n`` (profiles
        used), ``normal_spread`` (the smallest eigenvalue of the normals' second-moment matrix of
        (cos²θ, sin²θ, 2 sinθ cosθ): near 0 when all edges share one or two directions, so that Σuv,
        or the whole form, is not identified), and ``round_sigma`` (the weighted mean σ, px).

    Notes
    -----
    Weighted least squares in σ² (weights 1/(2σ s)², s the profile's standard error), then
    profiles whose normalised residual exceeds 3 (1.4826 MAD scale) are dropped and the fit repeated
    once. Standard errors are the fit's, scaled by √(χ²/dof) when that exceeds 1. The ratio's interval
    resamples the kept profiles with replacement (a resample whose form is not positive definite counts
    as an infinite ratio).
    """
    ok = [f for f in fits if f["reduced_chi2"] <= chi2_max and math.isfinite(f["stderr"]) and f["stderr"] > 0
          and "normal" in f]
    if len(ok) < min_profiles:
        return None
    s = np.array([f["sigma"] for f in ok])
    se = np.array([f["stderr"] for f in ok])
    nu = np.array([f["normal"][0] for f in ok])
    nv = np.array([f["normal"][1] for f in ok])
    design = np.column_stack([nu * nu, nv * nv, 2.0 * nu * nv])
    y = s * s
    w = 1.0 / np.maximum(2.0 * s * se, 1e-6)
    keep = np.ones(s.size, bool)
    for _ in range(2):
        coef, *_ = np.linalg.lstsq(design[keep] * w[keep, None], y[keep] * w[keep], rcond=None)
        resid = (y - design @ coef) * w
        scale = _mad(resid[keep]) or 1.0
        keep = np.abs(resid) <= 3.0 * max(scale, 1.0)
        if keep.sum() < min_profiles:
            return None
    a = design[keep] * w[keep, None]
    coef, *_ = np.linalg.lstsq(a, y[keep] * w[keep], rcond=None)
    dof = max(int(keep.sum()) - 3, 1)
    chi2 = float(np.sum((a @ coef - y[keep] * w[keep]) ** 2))
    cov = np.linalg.pinv(a.T @ a) * max(chi2 / dof, 1.0)
    moments = design[keep].T @ design[keep] / keep.sum()
    suu, svv, suv = (float(v) for v in coef)
    if suu <= 0 or svv <= 0 or suu * svv - suv * suv <= 0:
        return None
    (su, sv, rho), (major, minor, angle) = covariance_to_axes(suu, svv, suv)
    log_s = np.log(s[keep])
    log_fit = 0.5 * np.log(design[keep] @ coef)
    if resamples:
        ratios = []
        rng = np.random.default_rng(seed)
        pool = np.flatnonzero(keep)  # the profiles the fit kept
        for _ in range(int(resamples)):
            pick = pool[rng.integers(0, pool.size, pool.size)]
            c, *_ = np.linalg.lstsq(design[pick] * w[pick, None], y[pick] * w[pick], rcond=None)
            if c[0] > 0 and c[1] > 0 and c[0] * c[1] - c[2] * c[2] > 0:
                ratios.append(covariance_to_axes(*c)[1])
        # order statistics (no interpolation, which would subtract the infinite ratios)
        ratios = np.sort([a / b for a, b, _ in ratios] + [math.inf] * (int(resamples) - len(ratios)))
        interval = (float(ratios[int(0.05 * (ratios.size - 1))]), float(ratios[math.ceil(0.95 * (ratios.size - 1))]))
    else:
        interval = (math.nan, math.nan)
    return {"sigma_u": su, "sigma_v": sv, "rho": rho, "ratio": major / minor, "angle": angle,
            "ratio_interval": interval,
            "log_spread": _mad(log_s - log_fit), "round_log_spread": _mad(log_s),
            "sigma": math.sqrt(major * minor), "covariance": (suu, svv, suv),
            "covariance_se": tuple(float(v) for v in np.sqrt(np.abs(np.diag(cov)))), "n": int(keep.sum()),
            "normal_spread": float(np.linalg.eigvalsh(moments)[0]),
            "round_sigma": float(np.sqrt(np.average(y[keep], weights=w[keep] ** 2)))}


def _mad(values):
    """1.4826 × the median absolute deviation from the median (a robust standard deviation)."""
    values = np.asarray(values, dtype=np.float64)
    return 1.4826 * float(np.median(np.abs(values - np.median(values))))
