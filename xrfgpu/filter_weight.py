"""The weight of the closed-form filters (Wiener, Tikhonov) chosen from the map itself.

A fixed weight cannot suit every map: the noise of a map of 20 counts per pixel and of one of 2000 differ a
hundredfold against its signal. Wiener's former default (0.01, Laplacian) gave a median 2.6× the raw map's error
on the 24 tuning maps at 20/2 counts (signal/background), and 0.95× at the paper's counts and above (12 of 24
maps worse than the raw map).

:func:`discrepancy_weight` chooses the weight λ of ``X = H* Y / (|H|² + λ |L|²)`` by the discrepancy principle
(Morozov 1966): the residual ``‖y − h ⊛ x_λ‖²`` equals what the noise alone would leave. Two readings of the
map's power spectrum make it need no count scale (fitted maps, µg/cm², any unit):

* the **noise variance** per pixel is the map's mean power where the blur transmits nothing
  (``|H|² <`` :data:`NOISE_BAND_TRANSFER`): Poisson and fit noise are independent from pixel to pixel and so
  white, while a scene seen through the blur has no power left there. Where fewer than
  :data:`NOISE_BAND_MIN` coefficients are blocked (a spot under about 0.8 px, a map under about 12 px), a
  count map's noise is its mean count and another map's is refused (:class:`NoiseNotReadableError`);
* the residual is matched in the **band the blur transmits** (``|H|² ≥`` :data:`FIT_BAND_TRANSFER`) only. Beyond
  it the map holds, besides noise, the power of the boundary (the mirrored canvas bends the scene at the map's
  edge, which no blurred scene explains); matched over every frequency, that power pushes λ down until the
  boundary is deconvolved too, 2.3× the raw map's error on one tuning map (ellipses, σ 12 px, 2000 counts).

Chosen on :mod:`benchmarks.filter_weight` 's tuning maps only (the band's edge among 0, 1e-4, 1e-3 and 1e-2);
its held-out figures are in ``docs/algorithms.md``.

References
----------
V. A. Morozov, "On the solution of functional equations by the method of regularization", Soviet Math. Dokl.
7, 414 (1966). P. C. Hansen, Discrete Inverse Problems: Insight and Algorithms (SIAM, 2010), ch. 5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._backend import to_numpy

__all__ = ["FilterWeight", "NoiseNotReadableError", "discrepancy_weight", "NOISE_BAND_TRANSFER", "FIT_BAND_TRANSFER",
           "NOISE_BAND_MIN", "WEIGHT_RANGE", "AUTO"]

#: the value of ``balance`` / ``lam`` that asks for :func:`discrepancy_weight`
AUTO = "auto"
#: |H|² below which the map's power is read as noise
NOISE_BAND_TRANSFER = 1e-4
#: |H|² at or above which the residual is matched to the noise
FIT_BAND_TRANSFER = 1e-2
#: the weights searched (dimensionless: the PSF has unit sum)
WEIGHT_RANGE = (1e-8, 1e4)
#: the fewest coefficients below NOISE_BAND_TRANSFER the noise is read from (a map under about 12 px, or a spot
#: under about 0.8 px, has fewer: a count map's noise is then its mean count, the Poisson variance, and another
#: map's cannot be read: :class:`NoiseNotReadableError`)
NOISE_BAND_MIN = 16


class NoiseNotReadableError(ValueError):
    """The map's noise cannot be read from its spectrum (too few frequencies that the spot blocks) and the map is
    not counts: a weight must be given."""


@dataclass(frozen=True)
class FilterWeight:
    """The weight a closed-form filter chose for one map, and what it read.

    Attributes
    ----------
    weight : float
        λ of ``X = H* Y / (|H|² + λ |L|²)`` (dimensionless).
    noise_variance : float
        Noise variance per pixel read from the blocked band, in the map's units squared (counts² for counts).
    noise_band : str
        ``"blocked"`` (read where |H|² is below :data:`NOISE_BAND_TRANSFER`) or ``"poisson"`` (fewer than
        :data:`NOISE_BAND_MIN` such coefficients: a count map's mean count).
    bound : str or None
        ``"low"`` / ``"high"`` when λ is an end of :data:`WEIGHT_RANGE` (the residual stays above / below the
        noise over the whole range), else None.
    """

    weight: float
    noise_variance: float
    noise_band: str
    bound: str | None = None


def _zero_weight(engine):
    """Per-axis factor of the zero-frequency coefficient that makes every coefficient's white-noise power equal:
    the DCT-II and the mirrored FFT canvas count it twice."""
    return 0.5 if engine in ("dct", "mirror") else 1.0


def _one_map_weight(power, transfer, penalty, multiplicity, scale, poisson_variance):
    """Discrepancy weight of one map from host float64 arrays of equal shape: ``power`` the data's power per
    coefficient (white noise of variance v gives v on average), ``transfer`` |H|², ``penalty`` |L|²,
    ``multiplicity`` each coefficient's count in the full spectrum. ``scale``: the problem's scaling (the
    variance is reported in the caller's units). ``poisson_variance``: a callable giving the map's mean count
    on the problem's scale where it is counts, else None; called only where the spectrum cannot give the
    noise (it reads the map on the host)."""
    blocked = transfer < NOISE_BAND_TRANSFER
    if float(np.sum(multiplicity[blocked])) >= NOISE_BAND_MIN:
        band = "blocked"
        variance = float(np.sum(multiplicity[blocked] * power[blocked]) / np.sum(multiplicity[blocked]))
    else:
        band, variance = "poisson", poisson_variance()
    if variance is None:
        raise NoiseNotReadableError(
            f"the noise of this map cannot be read from it: the spot blocks {int(np.sum(blocked))} of its "
            f"frequencies, fewer than {NOISE_BAND_MIN} (a spot under about 0.8 px, or a map under about 12 px), "
            "and the map is not counts; pass the weight as a number (balance= or lam=), or restore it with "
            "xrfgpu.restore, which reads a fitted map's effective counts")
    fit = transfer >= FIT_BAND_TRANSFER
    p, t, r, m = power[fit], transfer[fit], penalty[fit], multiplicity[fit]
    target = variance * float(np.sum(m))

    def residual(lam):
        shrink = lam * r / (t + lam * r)
        return float(np.sum(m * p * shrink * shrink))

    low, high = math.log(WEIGHT_RANGE[0]), math.log(WEIGHT_RANGE[1])
    bound = None
    if residual(math.exp(high)) <= target:
        lam, bound = WEIGHT_RANGE[1], "high"
    elif residual(math.exp(low)) >= target:
        lam, bound = WEIGHT_RANGE[0], "low"
    else:
        for _ in range(60):  # the residual grows with λ: bisect in log λ (60 halvings: far below a percent)
            mid = 0.5 * (low + high)
            if residual(math.exp(mid)) < target:
                low = mid
            else:
                high = mid
        lam = math.exp(0.5 * (low + high))
    return FilterWeight(weight=float(lam), noise_variance=variance * scale * scale, noise_band=band, bound=bound)


def discrepancy_weight(pb, order, *, counts=None, spectrum=None):
    """The filter weight λ of each map of a prepared problem by the discrepancy principle.

    Parameters
    ----------
    pb : xrfgpu._problem.Problem
        A closed-form filter's problem (:func:`xrfgpu.wiener.filter_problem`), one map or a stack.
    order : {0, 1, 2}
        Derivative order of the penalty ``L`` (0 identity, 1 gradient, 2 Laplacian).
    counts : bool, optional
        Whether the maps are (effective) Poisson counts, whose mean count is their noise variance where the
        spectrum cannot give it; None: whether they hold non-negative integers (:func:`xrfgpu.background.is_count_map`).
    spectrum : array, optional
        ``op.transform`` of the background-subtracted canvas, when the caller has it (not transformed again).

    Returns
    -------
    list of FilterWeight
        One per map (one entry for a single map).

    Raises
    ------
    NoiseNotReadableError
        Fewer than :data:`NOISE_BAND_MIN` blocked coefficients in a map that is not counts.

    Notes
    -----
    With ``Y`` the transform of the background-subtracted canvas, the power of each coefficient ``p = |Y|²``
    is normalised so that white noise of variance ``v`` per pixel gives ``v`` on average. The noise variance is
    the mean ``p`` where ``|H|² <`` :data:`NOISE_BAND_TRANSFER`; λ solves
    ``Σ_B p (λ|L|² / (|H|² + λ|L|²))² = v · |B|`` over ``B = {|H|² ≥`` :data:`FIT_BAND_TRANSFER` ``}``
    (the residual of the filtered map, ``‖(I − H G_λ) y‖²``, restricted to ``B``), by bisection in log λ.
    The left side grows with λ, so the root is unique.
    """
    from .background import is_count_map
    from .wiener import regularizer_power

    xp, op = pb.xp, pb.op
    if spectrum is None:
        spectrum = op.transform(pb.filled_data() - pb.canvas_background)
    rows, cols = op.canvas_shape
    power = np.asarray(to_numpy(xp.real(spectrum * xp.conj(spectrum))), dtype=np.float64)
    transfer = np.asarray(to_numpy(xp.real(op.otf * op.otf_conj)), dtype=np.float64)
    penalty = np.asarray(to_numpy(regularizer_power(op, order, xp=xp)), dtype=np.float64)
    zero = _zero_weight(op.engine)
    n_rows, n_cols = power.shape[-2:]
    row_factor = np.ones(n_rows)
    row_factor[0] = zero
    col_factor = np.ones(n_cols)
    col_factor[0] = zero
    if op.engine == "dct":
        norm = 4.0 * rows * cols  # the unnormalised DCT-II: 2N per axis
        multiplicity = np.ones((n_rows, n_cols))
    else:
        norm = float(rows * cols)
        # the real FFT keeps half the columns: the others are the conjugates of columns 1 … (cols − 1) // 2
        col_count = np.full(n_cols, 2.0)
        col_count[0] = 1.0
        if cols % 2 == 0:
            col_count[-1] = 1.0
        row_count = np.ones(n_rows)
        if op.engine == "mirror":
            # the mirrored canvas holds each of the map's DCT coefficients twice per axis (frequencies k and
            # 2N − k; once at k = 0), and zeros at frequency N: counted as the DCT counts them, each once (as
            # copies, the zero-frequency row and column weighed half the others: λ 1.4 % off the DCT's)
            row_count[1:] = 0.5
            row_count[rows // 2] = 0.0
            col_count[1:] = 1.0
            col_count[cols // 2] = 0.0
        multiplicity = row_count[:, None] * col_count[None, :]
    shape = (n_rows, n_cols)
    power = (power * (row_factor[:, None] * col_factor[None, :]) / norm).reshape((-1,) + shape)
    transfer = transfer.reshape((-1,) + shape)
    penalty = np.broadcast_to(penalty, shape)
    host = {}  # the maps on the host, read once and only where a map's noise must come from its mean count

    def mean_count(i):
        """Map ``i``'s mean over its measured pixels on the problem's scale (its Poisson variance there, the
        problem's units squared), or None where the maps are not counts."""
        if counts is False:
            return None
        if "maps" not in host:
            maps = np.asarray(to_numpy(pb.image), dtype=np.float64).reshape((-1,) + pb.image.shape[-2:])
            measured = (np.ones(maps.shape, dtype=bool) if pb.weights is None
                        else np.asarray(to_numpy(pb.weights)).reshape(maps.shape) > 0)
            host["maps"], host["measured"] = maps, measured
            # the count check reads the caller's values (the problem's are divided by a power of two)
            host["counts"] = bool(is_count_map(maps[measured] * pb.scale)) if counts is None else counts
        if not host["counts"]:
            return None
        return float(np.mean(host["maps"][i][host["measured"][i]])) / pb.scale

    return [_one_map_weight(power[i], transfer[i if transfer.shape[0] > 1 else 0], penalty, multiplicity, pb.scale,
                            lambda i=i: mean_count(i))
            for i in range(power.shape[0])]
