"""Stopping rules for Richardson–Lucy: Poisson-thinning cross-validation and the discrepancy principle.

:func:`cv_iterations` picks the first iteration count that predicts
held-out counts all but a 10⁻⁴ share of the best fall of their deviance
(:data:`CV_DROP_TOLERANCE`); :func:`discrepancy_iterations` the first count at which the
Poisson discrepancy ``2 KL / n`` falls to a target. Both are used by the
front door (:func:`xrfgpu.restore`) and can be called on their own.

References
----------
J. Leiner, B. Duan, L. Wasserman, A. Ramdas, "Data fission: splitting a
single data point", J. Am. Stat. Assoc. (2023), doi:10.1080/01621459.2023.2270748.
M. Bertero et al., Inverse Problems 26, 105004 (2010), doi:10.1088/0266-5611/26/10/105004.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._backend import array_device, array_namespace, clip_below, is_numpy_namespace, to_numpy
from ._validate import as_image, as_image_with_weights
from .background import is_count_map

__all__ = ["CVStop", "CV_DROP_TOLERANCE", "FISTA_CV_DROP_TOLERANCE", "FISTA_CV_MAX_ITER", "canonical_orientation",
           "cv_iterations", "cv_stop", "discrepancy_iterations", "fista_cv_iterations", "frc_iteration_curve",
           "from_canonical", "refuse_counts_beyond_split", "split_counts"]

#: Share of the held-out deviance's whole fall (from the first iteration to its lowest) that
#: :func:`cv_iterations` leaves unclaimed: it stops at the first iteration within this share of
#: the lowest deviance. Chosen on the σ scenes' tuning maps at three count levels
#: (``benchmarks/cv_stop_rules.py``); docs/front_door.md, "How the cross-validated stop was fixed".
CV_DROP_TOLERANCE = 1e-4


def _heldout_divergence(op, estimate, held_counts, background, *, xp, inner, return_terms=False, weights=None):
    """Poisson deviance of held-out counts under ``h ⊛ x + b`` (up to a constant), over the ``inner`` slice.

    ``held_counts`` are the held-out counts already cut to ``inner`` and in float64. With
    ``return_terms`` also the per-pixel terms ``μ − y log μ`` (float64, shape of ``held_counts``),
    whose paired differences give the standard error of a difference of two deviances.
    ``weights`` (float64, cut to ``inner``; None: every pixel counts) multiply the terms: 0 leaves
    a missing pixel's held-out count, which is no measurement, out of the deviance.

    The terms ``μ − y log μ`` are summed in float64 whatever the map's dtype:
    the sum is ~10⁷ on a 256² map, where float32 resolves about 1 unit, more
    than the curve changes over the ten iterations around its minimum, so a
    float32 sum put the minimum wherever rounding did (see
    ``tests/test_stopping_precision.py``).
    """
    blurred = op.crop(op.forward(op.embed(estimate)))
    if is_numpy_namespace(xp) and not hasattr(background, "shape"):
        # the same operations on the interior only, in one float64 buffer and one more for the log
        # (the array-API lines below add the background to the whole map, copy the interior, and make
        # three more full-size temporaries: the same numbers, summed over an array of the same shape)
        mu = np.add(blurred[inner], background)
        if mu.dtype != np.float64:  # float32: added in float32, then widened, as below
            mu = mu.astype(np.float64)
        np.clip(mu, 1e-12, None, out=mu)
        terms = np.log(mu)
        terms *= held_counts
        np.subtract(mu, terms, out=terms)
        if weights is not None:
            terms *= weights
        return (float(np.sum(terms)), terms) if return_terms else float(np.sum(terms))
    mu = blurred + background
    mu = clip_below(xp.astype(mu[inner], xp.float64), 1e-12, xp=xp)
    terms = mu - held_counts * xp.log(mu)
    if weights is not None:
        terms = terms * weights
    return (float(xp.sum(terms)), terms) if return_terms else float(xp.sum(terms))


def cv_iterations(image, psf, *, background=0.0, max_iter=500, seed=0, accelerate=True, holdout=0.5,
                  drop_tolerance=CV_DROP_TOLERANCE, **rl_options):
    """Richardson–Lucy iteration count chosen by Poisson-thinning cross-validation.

    Parameters
    ----------
    image : array, shape (rows, cols)
        Count map (integer counts: the split needs counts). Integers that are
        not counts (:func:`xrfgpu.map_kind.classify_map`: ``round(k · counts)``,
        µg/cm² × 1000) split as counts would believe in the wrong number of
        photons: pass ``round(map / gain)``, as :func:`xrfgpu.restore` does.
    psf : array
        PSF in pixels of the map.
    background : float or array
        Background counts of ``image`` (halved for each half).
    max_iter : int
        Largest count tried.
    seed : int
        Seed of the split (drawn on the host).
    accelerate : bool
        Passed to :func:`xrfgpu.richardson_lucy`.
    holdout : float
        Share of the counts held out, in (0, 1).
    drop_tolerance : float
        Share of the held-out deviance's whole fall left unclaimed (default
        :data:`CV_DROP_TOLERANCE`): the count returned is the first whose
        deviance lies within ``drop_tolerance · (D₁ − D_min)`` of the lowest,
        ``D₁`` the deviance after one iteration. 0 gives the lowest deviance
        itself.
    **rl_options
        Further options of :func:`xrfgpu.richardson_lucy`.

    Returns
    -------
    int
        The iteration count: the first within ``drop_tolerance`` of the
        held-out Poisson deviance's fall from its lowest value.

    Raises
    ------
    ValueError
        Non-integer or negative counts, a ``holdout`` outside (0, 1) or a
        ``drop_tolerance`` outside [0, 1).

    Notes
    -----
    Binomial thinning splits Poisson counts ``y ~ P(μ)`` into
    ``y₁ ~ Binomial(y, ½)`` and ``y₂ = y − y₁``, two *independent* Poisson
    maps of mean ``μ/2`` each. RL runs on ``y₁``; after every iteration the
    negative log-likelihood of ``y₂`` under ``h ⊛ x₁ + b/2`` is evaluated.
    It falls while RL recovers structure and rises once RL fits ``y₁``'s
    noise, which ``y₂`` does not share; the stop is the first count within
    ``drop_tolerance`` of its fall from the minimum (below).
    Unlike the discrepancy principle it needs no noise model beyond the
    counts being Poisson, and it is not fooled by model errors common to
    both halves (stage jitter, tube drift, a slightly wrong PSF), which make
    the discrepancy target unreachable. The count found on half the counts
    is used for the full map (slightly conservative: more counts would
    support a few more iterations). The run stops early once the held-out
    deviance has not improved for ``max(10, k_min/2)`` iterations.

    **Why not the lowest deviance itself.** The held-out counts judge the
    *blurred* scene. At high counts they keep preferring later iterations
    (by 15 standard errors, median, at 10⁵ counts per pixel) long after the
    restored scene's error to the truth has started to grow, because the
    error that grows lies at frequencies the PSF passes too little for any
    data to see. On the frozen σ scenes' held-out maps (≤ 256², the true σ,
    restored MSE over the best MSE of any count; ``benchmarks/cv_stop_rules.py``)
    the lowest deviance gives median / 90th percentile / worst 1.02 / 1.18 /
    4.10 at the scenes' own counts, 1.11 / 4.18 / 7.73 at 2·10⁴ and 1.28 /
    4.07 / 7.57 at 10⁵; the first count within 10⁻⁴ of the fall gives 1.02 /
    1.18 / 1.79, 1.04 / 1.47 / 3.31 and 1.06 / 1.64 / 3.33. The tolerance is
    a share of the fall, so it does not depend on the map's size, its count
    level or the deviance's additive constant. The deviance is summed in
    float64: the float32 sum used before resolved about one part in 10⁷ of a
    sum of ~10⁷–10⁹, so where the stop fell depended on the map's dtype and
    size (a float32 map stopped at 83 iterations, the same counts as float64
    at 313).

    The held-out deviance is summed only over pixels at least a PSF
    half-width from the map's edge. Near the edge the model's boundary rule
    (the mirror image) differs from the real scene beyond the scan — an error
    both halves share, which CV would otherwise reward RL for fitting: on an
    80 × 96 map with σ = 5 and 8 px the full-map deviance kept falling to the
    500-iteration cap while the correlation with the truth fell from 0.73 to
    0.41; the interior deviance stopped at 46 and 13 iterations.

    References
    ----------
    J. Leiner, B. Duan, L. Wasserman, A. Ramdas, "Data fission: splitting a
    single data point", J. Am. Stat. Assoc. (2023), doi:10.1080/01621459.2023.2270748.
    M. Bertero et al., Inverse Problems 26, 105004 (2010), doi:10.1088/0266-5611/26/10/105004.

    Backends
    --------
    Any array-API namespace; the binomial split is drawn with NumPy on the host.
    """
    return cv_stop(image, psf, background=background, max_iter=max_iter, seed=seed, accelerate=accelerate,
                   holdout=holdout, drop_tolerance=drop_tolerance, **rl_options).iterations


@dataclass(frozen=True)
class CVStop:
    """What :func:`cv_stop` found on the held-out counts.

    Attributes
    ----------
    iterations : int
        The cross-validated count (:func:`cv_iterations`'s answer).
    lowest : int
        The iteration of the lowest held-out deviance seen (≥ ``iterations``).
    sharp_iterations : int
        The largest count in ``[iterations, round(extend · iterations)]`` whose held-out deviance,
        and that of every count before it past the lowest, stays within ``standard_errors`` paired
        standard errors of the lowest deviance: the sharpest restoration the held-out counts
        cannot tell from the best. ``iterations`` when ``extend`` is 1.
    extend_target : int
        ``round(extend · iterations)``, the count asked for.
    limited_by : str or None
        Why ``sharp_iterations`` is below ``extend_target``: ``"held-out deviance"`` (it rose
        more than ``standard_errors`` paired standard errors above its lowest at iteration
        ``sharp_iterations + 1``), ``"max_iter"``, or None (not limited).
    rise_standard_errors : float or None
        At the iteration that limited it (``"held-out deviance"``), the rise of the held-out
        deviance above its lowest in paired standard errors; None otherwise.
    """

    iterations: int
    lowest: int
    sharp_iterations: int
    extend_target: int
    limited_by: str | None
    rise_standard_errors: float | None


def cv_stop(image, psf, *, background=0.0, max_iter=500, seed=0, accelerate=True, holdout=0.5,
            drop_tolerance=CV_DROP_TOLERANCE, extend=1.0, standard_errors=1.0, **rl_options):
    """Poisson-thinning cross-validation of Richardson–Lucy, with a one-standard-error limit past its stop.

    The cross-validated count is :func:`cv_iterations`'s, from the same run (the same split,
    the same curve, the same early end of the curve). With ``extend > 1`` the run on the
    training half goes on towards ``round(extend · iterations)`` and reports, in
    :attr:`CVStop.sharp_iterations`, how far the held-out counts let it go: the largest count
    whose held-out deviance stays within ``standard_errors`` *paired* standard errors of the
    lowest deviance.

    Parameters
    ----------
    image, psf, background, max_iter, seed, accelerate, holdout, drop_tolerance, **rl_options
        As for :func:`cv_iterations`.
    extend : float
        The count wanted, as a multiple of the cross-validated count (≥ 1; the front door's
        ``goal="resolution"`` asks for 2).
    standard_errors : float
        How many paired standard errors above its lowest the held-out deviance may rise
        (> 0; 1 is the one-standard-error rule).

    Returns
    -------
    CVStop

    Raises
    ------
    ValueError
        As :func:`cv_iterations`; ``extend`` below 1 or ``standard_errors`` not > 0.

    Notes
    -----
    The held-out deviance ``D(k) = Σᵢ tᵢ(k)``, ``tᵢ = μᵢ − yᵢ log μᵢ`` over the interior pixels
    ``i`` (``μ = h ⊛ x_k + b`` from the training half, ``y`` the held-out half), has, given the
    training half, independent Poisson terms from pixel to pixel. The difference of two
    iterations' deviances ``Δ = D(k) − D(m)`` is a sum of ``n`` paired per-pixel differences
    ``dᵢ = tᵢ(k) − tᵢ(m)``; its standard error is ``√n · sd(dᵢ)``. The rule used: after the
    lowest deviance (iteration ``m``), the count may grow as long as ``Δ ≤ standard_errors ·
    SE(Δ)``; the first iteration past that limit ends it. This is the one-standard-error rule
    of Breiman et al. (1984) and Hastie et al. (2009, §7.10) turned toward the less regular
    model: among the counts the held-out data cannot tell from the best, the largest, but no
    more than asked for. The running lowest deviance is the reference; a new lowest resets
    it.

    Where the doubled count of the resolution goal over-fits the noise (low counts, small σ:
    the held-out deviance rises by many standard errors past its lowest), the limit stops
    it close to the CV count; where the held-out deviance is flat or still falling, the
    doubled count stays. At high counts the held-out deviance can keep falling while the
    error to the scene grows (:func:`cv_iterations`, Notes), and the limit cannot see that.

    References
    ----------
    L. Breiman, J. Friedman, R. Olshen, C. Stone, *Classification and Regression Trees*
    (Wadsworth, 1984), §3.4.3.
    T. Hastie, R. Tibshirani, J. Friedman, *The Elements of Statistical Learning*, 2nd ed.
    (Springer, 2009), §7.10, doi:10.1007/978-0-387-84858-7.
    J. Leiner, B. Duan, L. Wasserman, A. Ramdas, J. Am. Stat. Assoc. (2023),
    doi:10.1080/01621459.2023.2270748.

    Backends
    --------
    Any array-API namespace; the binomial split is drawn with NumPy on the host.
    """
    from ._problem import prepare
    from .richardson_lucy import richardson_lucy

    xp = array_namespace(image)
    # missing pixels (NaN, masked entries, mask 0) are set to 0 before the count check and the split: their
    # values (the caller's fill, a sentinel, NaN) are no measurement; the training run leaves them all out
    y, weights = as_image_with_weights(image, rl_options.get("mask"), xp=xp)
    if weights is not None:
        rl_options = {**rl_options, "mask": weights}
    refuse_counts_beyond_split(y, weights=weights)
    if not is_count_map(y):
        raise ValueError("cross-validated stopping needs a map of non-negative integer counts")
    p = float(holdout)
    if not 0.0 < p < 1.0:
        raise ValueError(f"holdout must lie in (0, 1), got {holdout!r}")
    extend = float(extend)
    if not (math.isfinite(extend) and extend >= 1.0):
        raise ValueError(f"extend must be a number ≥ 1 (a multiple of the CV count), got {extend!r}")
    n_se = float(standard_errors)
    if not (math.isfinite(n_se) and n_se > 0.0):
        raise ValueError(f"standard_errors must be a positive number, got {standard_errors!r}")
    # missing pixels (the mask the training run leaves out) are left out of the held-out deviance too, and
    # set to 0 before the split: their values (the caller's fill, or anything) are no measurement, and the
    # draws of the measured pixels' split do not depend on them
    if weights is not None and bool(xp.all(weights == 1.0)):
        weights = None
    y1, y2 = split_counts(y, fraction=1.0 - p, seed=seed)
    train_b = background * (1.0 - p)
    pb = prepare(y2, psf, background=background * p, iterative=True)
    # the training half restores (1 − p) of the scene; the held-out counts see p of it
    scale = p / (1.0 - p)
    kr, kc = pb.psf.shape[-2:]
    rows, cols = y.shape
    mr, mc = min(kr // 2, rows // 4), min(kc // 2, cols // 4)
    inner = (..., slice(mr, rows - mr), slice(mc, cols - mc))
    # a view of a float64 map's interior (no copy: the problem holds the held-out counts anyway)
    held = xp.astype(pb.image[inner], xp.float64, copy=False)
    n_pixels = math.prod(int(n) for n in held.shape)
    held_w = None if weights is None else xp.astype(weights[inner], xp.float64)
    measured = None if held_w is None else float(xp.sum(held_w))  # the measured pixels scored
    tolerance = float(drop_tolerance)
    if not (math.isfinite(tolerance) and 0.0 <= tolerance < 1.0):
        raise ValueError(f"drop_tolerance must lie in [0, 1), got {drop_tolerance!r}")
    guarded = extend > 1.0
    # best/k: the lowest deviance and its iteration; window: where cv_iterations's curve ends (its count
    # is read from that curve alone); rise: the first iteration past the lowest above the limit
    state = {"best": math.inf, "k": 0, "terms": None, "window": None, "count": None, "rise": None}
    curve = []

    class _Done(Exception):
        pass

    def count_from(points):
        lowest = min(d for _, d in points)
        allowed = lowest + tolerance * (points[0][1] - lowest)
        return max(next(k for k, d in points if d <= allowed), 1)

    def watch(iteration, estimate, divergence):
        # (× 1 leaves every value as it is: the even split, the default, skips the map-sized product)
        d, terms = _heldout_divergence(pb.op, estimate * scale if scale != 1.0 else estimate, held, pb.background,
                                       xp=xp, inner=inner, return_terms=True, weights=held_w)
        curve.append((iteration, d))
        lower = d < state["best"]
        if lower:
            state["best"], state["k"], state["rise"] = d, iteration, None
            if guarded:
                state["terms"] = terms
        elif guarded and state["rise"] is None:
            paired = terms - state["terms"]
            if held_w is None:
                se = math.sqrt(n_pixels * float(xp.var(paired)))
            else:  # Σ over the measured pixels of (d − their mean)²: n · var(d) of those pixels
                centred = paired - float(xp.sum(held_w * paired)) / measured
                se = math.sqrt(float(xp.sum(held_w * centred * centred)))
            excess = d - state["best"]
            if excess > n_se * se:
                state["rise"] = (iteration, excess / se if se > 0 else math.inf)
        if state["window"] is None and not lower and iteration - state["k"] >= max(10, state["k"] // 2):
            # where cv_iterations's curve ends: its count comes from the curve up to here only
            state["window"] = iteration
            state["count"] = count_from(curve)
        if state["window"] is not None:
            if not guarded or state["rise"] is not None or iteration >= round(extend * state["count"]):
                raise _Done

    try:
        richardson_lucy(y1, psf, num_iter=int(max_iter), background=train_b, accelerate=accelerate,
                        callback=watch, **rl_options)
    except _Done:
        pass
    if not curve:
        return CVStop(1, 1, 1, 1, None, None)
    count = state["count"] if state["count"] is not None else count_from(curve)
    target = max(int(round(extend * count)), count)
    lowest = state["k"]
    if not guarded:
        return CVStop(count, lowest, count, target, None, None)
    if state["rise"] is not None and state["rise"][0] - 1 < target:
        sharp = max(state["rise"][0] - 1, count)
        return CVStop(count, lowest, sharp, target, "held-out deviance", float(state["rise"][1]))
    last = curve[-1][0]
    if last < target:  # the run reached max_iter first
        return CVStop(count, lowest, max(last, count), target, "max_iter", None)
    return CVStop(count, lowest, target, target, None, None)


def discrepancy_iterations(image, psf, *, background=0.0, max_iter=500, target=1.0, accelerate=True,
                           **rl_options):
    """Richardson–Lucy run to the Poisson discrepancy principle; returns (restored, iterations).

    Parameters
    ----------
    image : array, shape (rows, cols)
        Count map.
    psf : array
        PSF in pixels of the map.
    background : float or array
        Background counts.
    max_iter : int
        Cap on the iterations.
    target : float
        Stop once ``2 KL(y ‖ h ⊛ x + b) / n ≤ target`` (1: the expected value
        for Poisson data under the true model).
    accelerate : bool
        Passed to :func:`xrfgpu.richardson_lucy`.
    **rl_options
        Further options of :func:`xrfgpu.richardson_lucy`.

    Returns
    -------
    restored : array
        The restoration at the stopping point.
    iterations : int
        Iterations run.

    Notes
    -----
    Bertero et al. (2010): for Poisson data the expected value of
    ``2 KL / n`` under the true mean is close to 1; RL is stopped the first
    time the discrepancy reaches it. Model errors common to the whole map
    (a slightly wrong PSF) can make it unreachable; then ``max_iter`` stops it.

    Backends
    --------
    Any array-API namespace.
    """
    from .richardson_lucy import richardson_lucy

    count = []
    out = richardson_lucy(image, psf, num_iter=max_iter, background=background, accelerate=accelerate,
                          discrepancy=target, callback=lambda i, e, d: count.append(i), **rl_options)
    return out, (count[-1] if count else 0)


def frc_iteration_curve(image, psf, *, background=0.0, max_iter=200, seed=0, threshold="1/7", smooth=3,
                        accelerate=True, stop=None, return_curves=False, **rl_options):
    """FRC resolution of two half-count Richardson–Lucy restorations, iteration by iteration.

    The counts are split by binomial thinning (:func:`split_counts`,
    ½ each) into two independent Poisson maps; each is restored with the same
    PSF, background ``b/2`` and options, in lockstep, and after every
    iteration the Fourier ring correlation of the two estimates gives the
    finest period they share (:func:`xrfgpu.frc.frc_resolution`).

    Parameters
    ----------
    image : array, shape (rows, cols)
        Count map (non-negative integers).
    psf : array
        PSF in pixels of the map.
    background : float
        Background counts of ``image`` (each half gets half).
    max_iter : int
        Iterations of each half.
    seed : int
        Seed of the split.
    threshold : {"1/7", "half-bit"}
        FRC threshold.
    smooth : int
        Rings averaged before the crossing is found.
    accelerate : bool
        Passed to :func:`xrfgpu.richardson_lucy`.
    stop : callable, optional
        ``stop(resolutions) -> bool`` on the list so far; True ends both runs.
    return_curves : bool
        Also return the FRC curve of every iteration (to read other thresholds).
    **rl_options
        Further options of :func:`xrfgpu.richardson_lucy`.

    Returns
    -------
    list of xrfgpu.frc.FRCResolution
        One per iteration (index 0 is iteration 1).
    list of xrfgpu.frc.FRCCurve, only with ``return_curves=True``
        The curves they were read from.

    Raises
    ------
    ValueError
        Non-integer counts, or the checks of :func:`xrfgpu.richardson_lucy`.

    Notes
    -----
    The two halves run in two threads that meet after every iteration
    (NumPy's FFTs release the interpreter lock), so memory stays at two
    restorations. Each half has half the counts: its FRC resolution at
    iteration ``k`` is that of a map of ``N/2`` counts, not of the full map.

    References
    ----------
    S. Koho et al., Nat. Commun. 10, 3103 (2019), doi:10.1038/s41467-019-11024-z.
    J. Leiner et al., J. Am. Stat. Assoc. (2023), doi:10.1080/01621459.2023.2270748.

    Backends
    --------
    Any array-API namespace; the split is drawn and the rings summed on the host.
    """
    import threading

    from .frc import FourierRings, frc_resolution
    from .richardson_lucy import richardson_lucy

    xp = array_namespace(image)
    y = as_image(image, xp=xp)
    first, second = split_counts(y, seed=seed)
    rings = FourierRings(tuple(y.shape), xp=xp, device=array_device(y))
    half_b = background * 0.5
    shared = {}
    results = []
    curves = []
    barrier = threading.Barrier(2)
    done = threading.Event()
    errors = []

    class _Done(Exception):
        pass

    def watch_first(iteration, estimate, divergence):
        shared["first"] = estimate
        barrier.wait()  # the second half may read it
        barrier.wait()  # the second half has measured
        if done.is_set():
            raise _Done

    def watch_second(iteration, estimate, divergence):
        barrier.wait()
        try:
            curve = rings.correlation(shared["first"], estimate)
            results.append(frc_resolution(curve, threshold=threshold, smooth=smooth))
            if return_curves:
                curves.append(curve)
            if stop is not None and stop(results):
                done.set()
        finally:
            barrier.wait()
        if done.is_set():
            raise _Done

    def run_first():
        try:
            richardson_lucy(first, psf, num_iter=int(max_iter), background=half_b, accelerate=accelerate,
                            callback=watch_first, **rl_options)
        except (_Done, threading.BrokenBarrierError):
            pass
        except Exception as exc:  # reported in the caller's thread
            errors.append(exc)
            barrier.abort()

    worker = threading.Thread(target=run_first, daemon=True)
    worker.start()
    try:
        richardson_lucy(second, psf, num_iter=int(max_iter), background=half_b, accelerate=accelerate,
                        callback=watch_second, **rl_options)
    except _Done:
        pass
    except threading.BrokenBarrierError:
        pass
    except BaseException:
        barrier.abort()
        raise
    finally:
        worker.join()
    if errors:
        raise errors[0]
    return (results, curves) if return_curves else results


def canonical_orientation(counts):
    """The flips and transposition that bring a map to a form that does not depend on how it was stored.

    Of the map's eight orientations (four where it is not square: the transposition is then the one that
    puts the shorter side first), the one whose values, read row by row, are largest in lexicographic order.
    Any flip or transposition of a map has the same canonical form, so a draw made in that form and mapped
    back is the same draw, relative to the scene, for every orientation of the map.

    Parameters
    ----------
    counts : numpy.ndarray, shape (rows, cols) or (n, rows, cols)
        The map, or a stack whose maps share one orientation (compared as the whole stack).

    Returns
    -------
    transpose, flip_rows, flip_cols : bool
        Applied in this order (transpose the last two axes, then reverse the rows, then the columns), they
        give the canonical form; :func:`from_canonical` undoes them.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.arange(6.0).reshape(2, 3)  # canonical form: both axes reversed, first row [5, 4, 3]
    >>> canonical_orientation(y), canonical_orientation(np.flipud(y))  # the flipped map: its columns only
    ((False, True, True), (False, False, True))
    """
    rows, cols = counts.shape[-2:]
    transposes = (False, True) if rows == cols else ((rows > cols),)
    candidates = [(t, fr, fc) for t in transposes for fr in (False, True) for fc in (False, True)]
    # the leading values (the first rows of the first map) decide for any map with noise; only candidates
    # whose leading values tie are compared whole (a strided view of a large map is copied to be compared)
    heads = {c: _leading_values(_oriented(counts, *c)) for c in candidates}
    best = None
    for c in candidates:
        if best is None or _lexicographically_greater(heads[c], heads[best]):
            best = c
    tied = [c for c in candidates if c != best and np.array_equal(heads[c], heads[best])]
    for c in tied:
        if _lexicographically_greater(_oriented(counts, *c), _oriented(counts, *best)):
            best = c
    return best


def _leading_values(view, n=4096):
    """The first ``n`` or more values of ``view`` in row-major order: whole rows of its first map, contiguous."""
    first_map = view[(0,) * (view.ndim - 2)]
    rows = max(1, -(-n // first_map.shape[-1]))
    return np.ascontiguousarray(first_map[:rows]).reshape(-1)


def _oriented(a, transpose, flip_rows, flip_cols):
    """``a`` transposed (last two axes), then row-reversed, then column-reversed, as a view."""
    if transpose:
        a = np.swapaxes(a, -1, -2)
    if flip_rows:
        a = a[..., ::-1, :]
    if flip_cols:
        a = a[..., ::-1]
    return a


def from_canonical(a, transpose, flip_rows, flip_cols):
    """A map (or stack) given in the canonical form, back in the orientation of the map it was made from.

    Parameters
    ----------
    a : numpy.ndarray, shape (..., rows, cols)
        In the canonical form.
    transpose, flip_rows, flip_cols : bool
        What :func:`canonical_orientation` returned for the original map.

    Returns
    -------
    numpy.ndarray
        A C-contiguous array in the original map's orientation.
    """
    if flip_cols:
        a = a[..., ::-1]
    if flip_rows:
        a = a[..., ::-1, :]
    if transpose:
        a = np.swapaxes(a, -1, -2)
    return np.ascontiguousarray(a)


def _lexicographically_greater(a, b, block=4096):
    """``a`` > ``b`` in row-major lexicographic order (same shape); read in blocks, most maps decide in one."""
    fa, fb = a.reshape(-1), b.reshape(-1)
    for start in range(0, fa.size, block):
        da, db = fa[start:start + block], fb[start:start + block]
        differ = np.flatnonzero(da != db)
        if differ.size:
            k = differ[0]
            return bool(da[k] > db[k])
    return False


def _draw_in_canonical_orientation(host, fraction, rng):
    """Binomial(``host``, ``fraction``) drawn in the map's canonical orientation and mapped back.

    The draw for a flipped or transposed map is then the same flip or transposition of the draw for the
    map: the cross-validated counts and the σ read from thinned halves do not depend on how the map was
    stored (row- or column-major readers, scan direction). Drawn in the stored orientation, a 192 × 216
    phantom had come out with σ 2.74–2.91 px and 14–19 iterations under its flips and transposition.
    """
    orientation = canonical_orientation(host)
    drawn = rng.binomial(_oriented(host, *orientation).astype(np.int64, order="C"), fraction)
    return from_canonical(drawn.astype(np.float64), *orientation)


class _LastSplit:
    """The last binomial draw of :func:`split_counts` for an integer seed, kept to answer the same request again.

    The front door (:func:`xrfgpu.restore`) splits one count map twice with the same seed and fraction: the
    blind σ's edge profiles (:func:`xrfgpu.psf.edge_profiles.profiles_on_thinned_halves`) and the
    cross-validated stop (:func:`cv_stop`); at 1024² the draw took 0.08 s of CPU time each. The memo holds
    one draw: read-only copies of the counts (float64) and of the first half, keyed by the fraction and the
    seed, for maps of at most :attr:`MAX_PIXELS` pixels (at most 64 MiB held). A request is answered from it
    only where its counts equal the kept ones value for value (the draw reads the counts only as
    ``int64``, so equal values give the same draw), and then with a fresh copy, so no caller can change
    what the next caller gets. Seeds that are generators (successive draws of one stream, as the joint
    cross-validation's folds) or anything but an integer are always drawn afresh. The answer is
    ``numpy.random.default_rng(seed).binomial`` of the counts (as ``int64``) in their canonical orientation,
    mapped back (:func:`_draw_in_canonical_orientation`), bit for bit either way.
    """

    MAX_PIXELS = 2048 * 2048

    def __init__(self):
        import threading

        self._lock = threading.Lock()
        self._kept = None  # (fraction, seed, counts, first half), the arrays read-only

    def first_half(self, host, fraction, seed):
        """Binomial(``host``, ``fraction``) as float64, drawn with ``default_rng(seed)`` or copied from the memo.

        Parameters
        ----------
        host : numpy.ndarray of float64
            Non-negative integer counts (checked by the caller).
        fraction : float
            Success probability, in (0, 1).
        seed : int or numpy.random.Generator
            As :func:`split_counts` takes it.

        Returns
        -------
        numpy.ndarray of float64, shape of ``host``
            A new, writable array.
        """
        keyed = (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)
                 and host.size <= self.MAX_PIXELS)
        if keyed:
            with self._lock:
                kept = self._kept
            if (kept is not None and kept[0] == fraction and kept[1] == int(seed) and kept[2].shape == host.shape
                    and np.array_equal(kept[2], host)):
                return kept[3].copy()
        first = _draw_in_canonical_orientation(host, fraction, np.random.default_rng(seed))
        if keyed:
            counts, half = host.copy(), first.copy()
            counts.flags.writeable = False
            half.flags.writeable = False
            with self._lock:
                self._kept = (fraction, int(seed), counts, half)
        return first

    def clear(self):
        """Forget the kept draw."""
        with self._lock:
            self._kept = None


_LAST_SPLIT = _LastSplit()


#: the largest FISTA count :func:`fista_cv_iterations` tries
FISTA_CV_MAX_ITER = 100
#: share of the held-out error's fall (from the first count to its lowest) that :func:`fista_cv_iterations`
#: leaves unclaimed: it returns the first count within this share of the lowest error. Chosen on 120 tuning maps
#: (``benchmarks/fista_stop.py``; docs/algorithms.md): the lowest error itself ran to 100 iterations on maps
#: at high counts and large σ, where the held-out error falls slowly long after the error to the truth rose
FISTA_CV_DROP_TOLERANCE = 0.03


def fista_cv_iterations(image, psf, *, background=0.0, lam=None, max_iter=FISTA_CV_MAX_ITER, seed=0, holdout=0.5,
                        nonneg=True, mask=None, drop_tolerance=FISTA_CV_DROP_TOLERANCE):
    """FISTA iteration count chosen by Poisson-thinning cross-validation.

    FISTA's l1 penalty on intensities regularises weakly: its error to the truth falls for a few to a few
    tens of iterations and then grows (semi-convergence), and where it turns depends on the counts and the
    scene far more than on λ. The counts are split in two independent Poisson maps
    (:func:`split_counts`); FISTA runs on the kept share scaled to the whole map's level, and its blurred
    estimate after each count predicts the held-out share (scaled likewise), squared error summed over the
    measured pixels. The count returned is the first whose error lies within ``drop_tolerance`` of the error's
    whole fall (first count to lowest) of the lowest.

    Parameters
    ----------
    image : array, shape (rows, cols)
        Count map (integer counts; a fitted map's effective counts rounded, as :func:`xrfgpu.restore`
        passes them).
    psf : array
        PSF in pixels of the map.
    background : float or array
        Background counts of ``image``.
    lam : float, optional
        λ of :func:`xrfgpu.fista` (None: its default rule, on the kept share).
    max_iter : int
        Largest count tried (default :data:`FISTA_CV_MAX_ITER`).
    seed : int
        Seed of the split (drawn on the host).
    holdout : float
        Share of the counts held out, in (0, 1).
    nonneg : bool
        As :func:`xrfgpu.fista`.
    mask : array, optional
        Weights of the pixels (1 measured, 0 missing): missing pixels are left out of the fit and of the
        held-out error.
    drop_tolerance : float
        Default :data:`FISTA_CV_DROP_TOLERANCE`; 0 returns the lowest error's count.

    Returns
    -------
    (int, list of float)
        The count, and the held-out squared error after each iteration (counts²).

    Notes
    -----
    Measured with ``benchmarks/fista_stop.py`` (true σ and background; MSE to the truth over the raw map's,
    median / 90th percentile / worst; docs/algorithms.md has the tables), FISTA from its flat start: on the
    first σ set's 72 held-out maps 0.43 / 0.82 / 0.98 (none worse than raw) where 25 iterations gave
    0.56 / 1.27 / 3.16 (8 worse), and at 20/2 counts 0.40 / 0.52 / 0.72 against 0.49 / 1.62 / 2.79. The
    tolerance was chosen on 120 tuning maps. λ moved none of 24 tuning maps by more than 2 % over four decades
    around its default rule.

    References
    ----------
    J. Leiner, B. Duan, L. Wasserman, A. Ramdas, J. Am. Stat. Assoc. (2023),
    doi:10.1080/01621459.2023.2270748 (data fission by thinning).
    """
    from ._validate import check_num_iter
    from .fista import proximal_problem, run_proximal_gradient

    max_iter = check_num_iter(max_iter, "max_iter")
    holdout = float(holdout)
    if not 0.0 < holdout < 1.0:
        raise ValueError(f"holdout must lie in (0, 1), got {holdout!r}")
    drop_tolerance = float(drop_tolerance)
    if not (drop_tolerance >= 0.0 and math.isfinite(drop_tolerance)):
        raise ValueError(f"drop_tolerance must be a finite number >= 0, got {drop_tolerance!r}")
    keep = 1.0 - holdout
    first, second = split_counts(image, fraction=keep, seed=seed)  # refuses a map that is not counts, saying why
    xp = array_namespace(image)
    pb = proximal_problem(first / keep, psf, background=background, boundary="reflect", pad=None, mask=mask)
    held = second / (1.0 - keep)
    weights = None if mask is None else xp.asarray(mask, dtype=held.dtype, device=array_device(held))
    op = pb.op
    errors = []

    def watch(iteration, estimate):
        predicted = op.crop(op.forward(op.embed(estimate))) + pb.background * pb.scale
        r = predicted - held
        if weights is not None:
            r = r * weights
        errors.append(xp.sum(r * r))  # stays on the array's device: no host wait per iteration

    run_proximal_gradient(pb, lam=lam, num_iter=max_iter, nonneg=nonneg, momentum=True, callback=watch)
    held_out = np.asarray(to_numpy(xp.stack(errors)), dtype=np.float64)  # one copy to the host, at the end
    errors = [float(e) for e in held_out]
    lowest = float(held_out.min())
    within = held_out <= lowest + drop_tolerance * (held_out[0] - lowest)
    return int(np.argmax(within)) + 1, errors


def refuse_counts_beyond_split(counts, *, weights=None, gain=1.0, name="this map",
                               fixed_count="a fixed count (num_iter=)"):
    """Refuse, saying why and what to do, a map of (effective) counts beyond what a Poisson split takes.

    :func:`split_counts` (and so :func:`cv_stop`, :func:`cv_iterations` and the joint restoration's
    cross-validation) splits non-negative integer counts of at most :data:`xrfgpu._validate.MAX_COUNT`
    (2⁴⁰ ≈ 1.1·10¹²). A fitted map's effective counts (map / gain) pass that only where a few pixels lie
    far above the rest (one pixel of 10⁸ in the HXN Fe map, whose largest value is 19, at its gain
    6.0·10⁻⁵), and the split answered "needs a map of non-negative integer counts", which names neither
    the pixel nor a way on. An ordinary map costs one maximum; nothing it computes changes.

    Parameters
    ----------
    counts : array, shape (rows, cols)
        The (effective) counts the split would take (rounded for a fitted map); any array-API namespace.
    weights : array or None
        The map's pixel weights (0 at missing pixels, which are not split and not checked), or None.
    gain : float
        Map units per effective count (1 for a count map): the message gives the pixel in the map's units
        too.
    name : str
        What the message calls the map ("this map", "map 2 of the stack").
    fixed_count : str
        How the caller's user stops at a fixed count instead, for the message.

    Raises
    ------
    ValueError
        Naming the largest pixel, its value in the map's units and in effective counts, how many pixels
        are beyond the limit and the map's median, and the ways on: mark the pixels missing, or stop at a
        fixed count (the discrepancy stop is not offered: on the HXN Fe map with one pixel of 10⁸ it ran
        to its cap of 500 iterations).
    """
    from ._validate import MAX_COUNT

    xp = array_namespace(counts)
    measured = counts if weights is None else xp.where(weights > 0, counts, xp.zeros_like(counts))
    if not float(xp.max(measured)) > MAX_COUNT:
        return
    host = np.asarray(to_numpy(measured), dtype=np.float64)
    peak = float(np.max(host))
    row, col = (int(i) for i in np.unravel_index(int(np.argmax(host)), host.shape))
    beyond = int(np.count_nonzero(host > MAX_COUNT))
    where = (f"pixel (row {row}, column {col})" if beyond == 1 else
             f"{beyond} pixels, the largest at (row {row}, column {col}),")
    if gain == 1.0:
        value = f"{peak:.3g} counts (the map's median is {np.median(host):.3g})"
    else:
        value = (f"{peak * gain:.4g} in the map's units, {peak:.3g} effective counts at the map's gain {gain:.3g} "
                 f"(the map's median is {np.median(host) * gain:.3g})")
    raise ValueError(
        f"cross-validated stopping cannot split {name}: {where} holds {value}, beyond the {MAX_COUNT:.3g} "
        "(2^40) counts any Poisson count map holds: a few pixels far above the rest (a hot pixel, a spike, a "
        "detector fault). Mark them missing (NaN, or weight 0 in mask=), to be restored from their neighbours; or "
        f"stop without cross-validation, at {fixed_count}")


def split_counts(counts, *, fraction=0.5, seed=0):
    """Binomial thinning of a count map into two independent Poisson maps.

    ``y₁ ~ Binomial(y, fraction)``, ``y₂ = y − y₁``: for ``y ~ Poisson(μ)``,
    ``y₁ ~ Poisson(fraction · μ)`` and ``y₂ ~ Poisson((1 − fraction) · μ)``,
    independent.

    Parameters
    ----------
    counts : array, shape (rows, cols) or (n, rows, cols)
        Non-negative integer counts (any real dtype holding integers).
    fraction : float
        Share of the counts in the first map, in (0, 1).
    seed : int or numpy.random.Generator
        Seed of the draw (NumPy, on the host), or a generator to draw from (successive splits of
        one seed, as the joint cross-validation's folds).

    Returns
    -------
    first, second : array
        In the namespace, device and dtype of ``counts``.

    Raises
    ------
    ValueError
        Counts that are not non-negative integers, or a fraction outside (0, 1).

    Notes
    -----
    The draw is made in the map's canonical orientation (:func:`canonical_orientation`) and mapped back, so a
    flipped or transposed map is split as the map is, flipped or transposed: the cross-validated counts and the σ
    read from thinned halves do not depend on how a reader stored the map. A stack is oriented as a whole.

    The last draw for an integer seed on a map of at most 2048² pixels is kept (:class:`_LastSplit`): the
    same counts, fraction and seed again (the front door's σ stage and cross-validated stop) get a copy of
    it, the same numbers without drawing them again.

    References
    ----------
    J. Leiner, B. Duan, L. Wasserman, A. Ramdas, J. Am. Stat. Assoc. (2023),
    doi:10.1080/01621459.2023.2270748.
    """
    xp = array_namespace(counts)
    fraction = float(fraction)
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must lie in (0, 1), got {fraction!r}")
    if not is_count_map(counts):
        raise ValueError("splitting needs a map of non-negative integer counts (fill missing pixels, NaN, from "
                         "their neighbours and leave them out with mask=; divide a fitted map by its gain and round "
                         "it, as xrfgpu.restore does)")
    host = np.asarray(to_numpy(counts), dtype=np.float64)
    first = _LAST_SPLIT.first_half(host, fraction, seed)
    dev = array_device(counts)
    return (xp.asarray(first, dtype=counts.dtype, device=dev),
            xp.asarray(host - first, dtype=counts.dtype, device=dev))
