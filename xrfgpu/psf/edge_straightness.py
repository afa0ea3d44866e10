"""Is a straight-edge strip really straight? The edge's position along its length, and σ once it is straightened.

The straight-edge stage of :func:`xrfgpu.psf.estimate_sigma` bins the pixels of a strip round a Hough line by
their distance t to the line and fits the binned profile as a blurred 1-D step scene. A scene edge that is not
straight (an arc of a growth band, an ooid's rim, a wavy boundary) lies at t = δ(u) that changes with the
position u along the line, and the binned profile is the blurred step convolved with the distribution of δ:
σ² comes out as σ_blur² + var(δ) (for a Gaussian spread of δ). The fit's χ² does not see it at modest counts, as
the binned profile stays a smooth step.

:func:`edge_position_drift` measures δ(u) directly: the strip is cut into segments along u, each segment's
binned profile is fitted by the whole strip's model shifted by δ (level and contrast free, so that a contrast
that drifts along the edge is not read as a shift), a low-order polynomial of u is fitted to the δ's
(weighted by their standard errors), and the strip is binned again by t − δ(u) and refitted: ``sigma_straight``.
For a straight edge δ(u) is flat to within its noise and σ does not move; for an arc σ falls by the part that
the curvature added.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["edge_position_drift"]


def _binned(t, values, step):
    """Mean of ``values`` in bins of ``t`` ``step`` wide with at least 3 pixels: (bin centres, means, counts)."""
    bins = np.round(t / step).astype(int)
    first = bins.min()
    bins -= first
    count = np.bincount(bins)
    total = np.bincount(bins, values)
    good = count >= 3
    return (np.flatnonzero(good) + first) * step, total[good] / count[good], count[good]


def _segment_shift(tb, yb, var, shape, shifts):
    """Best shift δ (px) of the profile ``shape(t)`` (level and contrast fitted by weighted least squares) to the
    binned profile (tb, yb, var), its standard error (from the curvature of χ²(δ)), or None when the best shift
    lies at an end of ``shifts`` or the contrast comes out reversed."""
    w = 1.0 / var
    m = shape(tb[None, :] - shifts[:, None])  # (n_shift, n_bins)
    sw, sy = w.sum(), (w * yb).sum()
    sm, smm, smy = (m * w).sum(1), (m * m * w).sum(1), (m * (w * yb)).sum(1)
    det = sw * smm - sm * sm
    det = np.where(np.abs(det) > 0, det, np.nan)
    c1 = (sw * smy - sm * sy) / det
    c0 = (sy - c1 * sm) / sw
    chi2 = (w * yb * yb).sum() - 2 * c0 * sy - 2 * c1 * smy + c0 * c0 * sw + 2 * c0 * c1 * sm + c1 * c1 * smm
    if not np.any(np.isfinite(chi2)):
        return None
    i = int(np.nanargmin(chi2))
    if i == 0 or i == shifts.size - 1 or not c1[i] > 0:
        return None
    h = float(shifts[1] - shifts[0])
    a, b, c = chi2[i - 1], chi2[i], chi2[i + 1]
    curvature = (a - 2 * b + c) / h**2  # χ²(δ) ≈ χ²_min + curvature/2 (δ − δ0)²
    if not curvature > 0:
        return None
    delta = float(shifts[i]) + 0.5 * h * (a - c) / (a - 2 * b + c)
    # the standard error from Δχ² = 1, scaled up by the segment's own misfit (reduced χ², at least 1)
    misfit = max(float(b) / max(tb.size - 3, 1), 1.0)
    return delta, math.sqrt(2.0 * misfit / curvature)


def edge_position_drift(t, values, along, shape, fit_profile, *, segment_px, step=0.5, max_shift_px):
    """The edge's position along its length, and σ of the strip straightened by it.

    Parameters
    ----------
    t, values, along : ndarray, shape (n,)
        For each pixel of the strip: its signed distance to the line (px), its counts and its position along
        the line (px).
    shape : callable
        ``shape(t)`` → the fitted blurred profile of the whole strip at distances ``t`` (px), any array shape.
    fit_profile : callable
        ``fit_profile(tb, yb, var)`` → σ (px) fitted to a binned profile (bin centres, means, variances of the
        means), or None; the straight-edge stage's own fit, so that ``sigma_straight`` is comparable.
    segment_px : float
        Length (px) of one segment along the line; 3–12 segments are used.
    step : float
        Bin width across the line (px).
    max_shift_px : float
        Largest |δ| searched (px); a segment whose best shift lies at that end is left out.

    Returns
    -------
    dict
        ``segments`` (how many gave a shift), ``positions`` (u, δ, standard error of δ per segment, px),
        ``drift_rms_px`` (RMS over the strip of the fitted quadratic δ(u) about its mean, px),
        ``drift_chi2`` (χ² of the δ's about a constant, per degree of freedom), ``sigma_straight`` (σ, px, of the
        strip binned by t − δ(u); None where fewer than 3 segments gave a shift or the refit failed).

    Notes
    -----
    Each segment's binned profile y(t) is fitted by c0 + c1 shape(t − δ) on a 0.05 px grid of δ (c0, c1 by
    weighted linear least squares at each δ; parabolic refinement at the minimum; standard error from the
    curvature of χ²(δ), Δχ² = 1, times the square root of the segment's reduced χ² where that exceeds 1). A quadratic of u (normalised to −1…1) is fitted to the δ's by weighted least
    squares (a line only where there are 3 segments).
    """
    lo, hi = float(along.min()), float(along.max())
    n_seg = int(min(12, max(3, (hi - lo) // segment_px)))
    cuts = np.linspace(lo, hi, n_seg + 1)
    seg = np.clip(np.searchsorted(cuts, along, side="right") - 1, 0, n_seg - 1)
    shifts = np.arange(-max_shift_px, max_shift_px + 0.025, 0.05)
    rows = []
    for j in range(n_seg):
        inside = seg == j
        if inside.sum() < 16:
            continue
        tb, yb, count = _binned(t[inside], values[inside], step)
        if tb.size < 8:
            continue
        found = _segment_shift(tb, yb, np.maximum(yb, 1.0) / count, shape, shifts)
        if found is not None:
            rows.append((0.5 * (cuts[j] + cuts[j + 1]), *found))
    out = {"segments": len(rows), "positions": rows, "drift_rms_px": None, "drift_chi2": None,
           "sigma_straight": None}
    if len(rows) < 3:
        return out
    u, d, se = (np.array(v) for v in zip(*rows))
    w = 1.0 / np.maximum(se, 1e-3) ** 2
    mean = float(np.sum(w * d) / w.sum())
    out["drift_chi2"] = float(np.sum(w * (d - mean) ** 2) / (len(rows) - 1))
    mid, half = 0.5 * (lo + hi), max(0.5 * (hi - lo), 1e-9)
    degree = 2 if len(rows) >= 4 else 1
    coef = np.polynomial.polynomial.polyfit((u - mid) / half, d, degree, w=np.sqrt(w))
    grid = np.linspace(-1.0, 1.0, 101)
    curve = np.polynomial.polynomial.polyval(grid, coef)
    out["drift_rms_px"] = float(np.std(curve))
    straightened = t - np.polynomial.polynomial.polyval((along - mid) / half, coef)
    tb, yb, count = _binned(straightened, values, step)
    if tb.size >= 16:
        out["sigma_straight"] = fit_profile(tb, yb, np.maximum(yb, 1.0) / count)
    return out
