"""The front door: ``restore(map)`` — background, PSF and stopping chosen from the data.

Given only a map, :func:`restore` runs the recommended automatic pipeline:

0. counts or fitted map? A fitted / normalised map (PyXRF, MAPS) is divided
   by its effective Poisson gain (:func:`xrfgpu.background.estimate_gain`)
   and restored in effective counts, then scaled back;
1. background ``b`` from the map (:func:`xrfgpu.background.estimate_background`);
2. Gaussian σ from the map, with an interval (:func:`xrfgpu.psf.estimate_sigma`);
3. Richardson–Lucy with that background (Biggs–Andrews accelerated), stopped
   by Poisson-thinning cross-validation (:func:`xrfgpu.stopping.cv_iterations`).

The goal (``goal="resolution"``, the default, or ``"fidelity"``) says what
steps 2 and 3 aim for: :func:`goal_factors` gives the scale of an estimated
σ and of the cross-validated count (see :func:`restore`, Notes, "Goals").

The module is named ``front_door`` so that ``xrfgpu.restore`` is only ever
the function.

Given a PSF, a σ in pixels or a σ in µm, it uses that instead of step 2;
other methods ("wiener", "tikhonov", "fista", "blind", "blind-rl") are one
keyword away. ``return_info=True`` also returns what was used and how it was
obtained.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import time
import warnings

import numpy as np

from ._backend import _how_to_make_an_array, array_device, array_namespace, to_numpy
from ._validate import as_background, as_image_with_weights, check_num_iter, check_positive_finite
from .background import element_free_depth, estimate_background, estimate_gain, is_count_map
from .map_kind import classify_map, count_lattice_step, round_stray_values
from .stopping import cv_iterations, cv_stop, discrepancy_iterations, refuse_counts_beyond_split

__all__ = ["CV_SPLIT_KEYS", "DEFAULT_GOAL", "GOALS", "METHODS", "GainNotMeasurableError", "caution_record",
           "caution_sigma", "filled_for_estimators", "goal_factors", "restore", "sigma_from_map", "sigma_region"]

METHODS = ("rl", "wiener", "tikhonov", "fista", "blind", "blind-rl")
GOALS = ("resolution", "fidelity")
# the goal of every automatic path (restore, the CLI's --psf-auto and its tiles); see restore, Notes, "Goals"
DEFAULT_GOAL = "resolution"
# goal="resolution": the estimated σ is scaled by this and the CV iteration count by the other
RESOLUTION_SIGMA_SCALE = 0.9
RESOLUTION_ITERATION_SCALE = 2.0
# the goal's guard: the scaled count runs only while the held-out deviance stays within this many paired
# standard errors of its lowest value (xrfgpu.stopping.cv_stop; docs/front_door.md, "The goal's guard")
GOAL_GUARD_STANDARD_ERRORS = 1.0
# what rl_iteration_count records of the guard (restore's info, the command line's record)
GOAL_GUARD_KEYS = ("goal_iterations_wanted", "goal_iterations_capped_by", "goal_heldout_rise_se")
# what rl_iteration_count records of the cross-validated stop's split (restore's info, the command line's record):
# the seed and held-out fraction of the one binomial split of the counts, and the count it may reach, which with
# the recorded accelerate repeat the count with xrfgpu.stopping.cv_iterations (the count depends on the split)
CV_SPLIT_KEYS = ("cv_split_seed", "cv_holdout_fraction", "cv_max_iterations")
# the front door's caution (docs/front_door.md, "The caution"): when the cross-validated count at an estimated σ
# reaches this many iterations, the map is restored at the lower end of σ's interval for that σ's own CV count
CAUTION_CV_ITERATIONS = 60
# what the caution records (restore's info, the command line's record)
CAUTION_KEYS = ("caution_applied", "caution_reason", "caution_sigma_before", "caution_iterations_before",
                "caution_cv_iterations_before")
#: A hole of missing pixels some of which lie farther than this (pixels) from every measured pixel (a band of
#: three or more lost scan lines; not two lost lines with a dead pixel beside them, √2 px) is "wide": its
#: nearest-measured fill has a seam, a step the length of the hole, that the spectrum reads as a sharp scene
#: (σ came out 0.1× the truth on a 256² Voronoi map with six lost rows), so σ is read on the largest rectangle
#: without wide holes (:func:`sigma_region`).
WIDE_HOLE_PX = 1.5


def goal_factors(goal, *, sigma_estimated, method="rl"):
    """The goal's scales ``(sigma_scale, iteration_scale)`` for one run.

    Parameters
    ----------
    goal : {"resolution", "fidelity"}
        What the automatic choices aim for (see :func:`restore`, Notes, "Goals").
    sigma_estimated : bool
        Whether σ came from the map (:func:`xrfgpu.psf.estimate_sigma`). A
        σ or PSF the user gives is used as given, and so is the
        cross-validated count that goes with it.
    method : str
        The restoration method (:data:`METHODS`). The factors were measured
        with Richardson–Lucy; other methods get 1 and 1.

    Returns
    -------
    sigma_scale : float
        Factor on the estimated σ: 0.9 for ``"resolution"`` (RL, σ estimated), else 1.
    iteration_scale : float
        Factor on the cross-validated RL count: 2 for ``"resolution"`` (RL, σ
        estimated), else 1; a fixed count or the discrepancy stop is not scaled.
        The two come as a pair: twice the CV count at an unscaled σ reads
        one element less on the USAF chart and raises the MSE of the frozen
        scenes (docs/front_door.md, "Goals").

    Raises
    ------
    ValueError
        ``goal`` is not one of :data:`GOALS`.
    """
    if goal not in GOALS:
        raise ValueError(f"goal must be one of {GOALS}, got {goal!r}")
    if goal == "resolution" and sigma_estimated and method == "rl":
        return RESOLUTION_SIGMA_SCALE, RESOLUTION_ITERATION_SCALE
    return 1.0, 1.0


def caution_sigma(cv_count, sigma, interval):
    """The front door's caution: the σ (px) to restore with instead of ``sigma``, or None to keep it.

    Parameters
    ----------
    cv_count : int or None
        The cross-validated Richardson–Lucy count at ``sigma``
        (:func:`xrfgpu.stopping.cv_iterations`; None when no CV ran).
    sigma : float
        The σ (px) the goal would restore with (the estimate times the goal's
        σ scale, :func:`goal_factors`).
    interval : (float, float) or None
        The σ interval (px) of the estimate (:class:`xrfgpu.psf.SigmaEstimate`).

    Returns
    -------
    float or None
        ``min(interval[0], sigma)`` when ``cv_count`` is at least
        :data:`CAUTION_CV_ITERATIONS`, else None (also without an interval or
        a CV count). The caller then runs that σ for its own CV count, not
        scaled by the goal.

    Notes
    -----
    Richardson–Lucy at a σ larger than the true one amplifies the map's
    frequencies by ``exp(2π² f² (σ² − σ_true²))`` without bound, and the
    held-out half keeps rewarding it: its deviance keeps falling while the
    error to the scene grows, so the CV count runs to hundreds of iterations
    (the fresh tuning set's 512² checkerboards, σ read 1.4–1.9 × the truth:
    459–475 at 0.9 σ_est, restored at 232–1021 × the raw map's MSE). Large σ
    at low counts, and high counts, over-fit the same way at about the right
    σ (porous and strata maps at σ 12, 77/137.5 and 150/140: CV counts
    77–260). On the 192 maps of
    ``FRESH_TUNING_MORE`` the threshold of 60 fired on 12 (CV counts 74–475),
    each of which came out closer to the truth; the next count below was 54.
    It is not 50: at 50 it also fired on a frozen goal scene (scikit-image
    grass, σ 12 read as 9.9, count 58) and raised its MSE. The interval's
    lower end is the smallest σ the evidence supports, and at it RL stops
    early (12–44 iterations there). Measured in docs/front_door.md, "The
    caution".
    """
    if cv_count is None or interval is None or cv_count < CAUTION_CV_ITERATIONS:
        return None
    return min(float(interval[0]), float(sigma))


def caution_record(cv_count, sigma, careful, iterations):
    """What the caution records (:data:`CAUTION_KEYS`), for ``restore``'s info and the command line's record.

    Parameters
    ----------
    cv_count : int
        The cross-validated count at ``sigma``.
    sigma : float
        The σ (px) the goal would restore with.
    careful : float or None
        :func:`caution_sigma`'s answer (None: σ and count kept).
    iterations : int
        The count the goal alone would run.

    Returns
    -------
    dict
        ``caution_applied``, ``caution_reason`` (in words), ``caution_sigma_before``,
        ``caution_iterations_before``, ``caution_cv_iterations_before``.
    """
    sigma = float(sigma)
    if careful is None:
        reason = (f"cross-validated count {cv_count} at σ {sigma:.3g} px is below {CAUTION_CV_ITERATIONS}: "
                  "σ and count kept")
    else:
        reason = (f"cross-validated count {cv_count} at σ {sigma:.3g} px reached {CAUTION_CV_ITERATIONS} (the held-out "
                  "deviance kept falling, as at a σ larger than the true one): restored at the lower end of the σ "
                  f"interval, {careful:.3g} px, for its own cross-validated count")
    return {"caution_applied": careful is not None, "caution_reason": reason, "caution_sigma_before": sigma,
            "caution_iterations_before": iterations, "caution_cv_iterations_before": cv_count}


def _psf_for(sigma, image, *, xp, sigma_v=None, rho=0.0):
    """The Gaussian PSF of σ pixels for ``image`` (σu, ``sigma_v``, ``rho`` for an elongated spot): ±4 σ cut to
    the map, σ wider than the map refused (:func:`xrfgpu.psf.gaussian_for_map`)."""
    from .psf import gaussian_for_map

    return gaussian_for_map(float(sigma), tuple(image.shape[-2:]), sigma_v=sigma_v, rho=rho, xp=xp,
                            device=array_device(image), dtype=image.dtype)


class GainNotMeasurableError(ValueError):
    """A fitted map's effective Poisson gain could not be measured (a flat map: no noise to read).

    A :class:`ValueError`; raised by :func:`effective_counts` apart from its refusals of bad input, so a
    caller that can restore such a map in its own units (:func:`xrfgpu.joint.joint_richardson_lucy`)
    catches this one only.
    """


def filled_for_estimators(y, weights, *, xp):
    """``y`` with each missing pixel (weight 0) set to its nearest measured pixel, for the estimators.

    The gain (:func:`effective_counts`), background and σ estimators model every pixel; the solvers
    leave missing pixels out through their weights, so the fill is only what the estimators see. The
    nearest measured value keeps the map's local level and noise and keeps counts integer: the
    median of the whole map, the earlier fill, put a background-level value into a particle (or the
    reverse), and on the real HXN Fe map 0.5 % dead pixels made the measured gain 6.6 × that of the
    complete map (3 %: 42 ×).

    Parameters
    ----------
    y : array, shape (rows, cols)
        The map; its values at missing pixels are ignored.
    weights : array, shape (rows, cols)
        1 (or any value > 0) where measured, 0 where missing.
    xp : namespace
        Array-API namespace of ``y`` and ``weights``.

    Returns
    -------
    array, shape (rows, cols)
        Same namespace, device and dtype as ``y``.

    Raises
    ------
    ValueError
        Every pixel is missing.

    Examples
    --------
    >>> import numpy as np
    >>> from xrfgpu.front_door import filled_for_estimators
    >>> y = np.array([[1.0, 2.0, 3.0], [4.0, np.nan, 6.0], [7.0, 8.0, 90.0]])
    >>> float(filled_for_estimators(np.nan_to_num(y), ~np.isnan(y), xp=np)[1, 1]) in (2.0, 4.0, 6.0, 8.0)
    True

    Backends
    --------
    Any array-API namespace; the nearest measured pixel is found on the host
    (:func:`scipy.ndimage.distance_transform_edt`, Euclidean distance, ties to the first found).
    """
    from scipy import ndimage

    host = np.asarray(to_numpy(y))
    missing = np.asarray(to_numpy(weights)) <= 0
    if missing.all():
        raise ValueError("every pixel of image is missing (NaN, masked or mask=0)")
    if not missing.any():
        return y
    _, (rows, cols) = ndimage.distance_transform_edt(missing, return_indices=True)
    return xp.asarray(host[rows, cols], dtype=y.dtype, device=array_device(y))


def sigma_region(weights, *, min_side=None):
    """Where σ is read on a map with missing pixels: ``(rows, cols, note)`` slices of the map, or None.

    Isolated dead pixels and holes one or two pixels across (one or two lost scan lines) are harmless filled
    with their nearest measured pixel (:func:`filled_for_estimators`): the σ of 16 tuning maps moved by a few
    per cent at most. A wider hole is not: the fill's seam, a step as long as the hole, reads as a sharp
    scene, and a band of six lost rows across a 256² Voronoi map at σ 4 px gave σ 0.4 px; a smooth fill with
    Poisson noise did little better (the band without the scene's texture steepens the spectrum, which σ
    trades against). So σ is read on the largest axis-aligned rectangle that holds no pixel of a wide hole
    (a connected hole with a pixel farther than :data:`WIDE_HOLE_PX` from every measured pixel), found on a
    grid of at most 256 blocks a side.

    Parameters
    ----------
    weights : array, shape (rows, cols)
        0 at missing pixels, > 0 at measured ones (any namespace; read on the host).
    min_side : int, optional
        The least side (pixels) of a rectangle worth reading σ on (default
        :data:`xrfgpu.psf.blind_sigma.MIN_SIDE_PX`).

    Returns
    -------
    tuple or None
        None where the map has no wide hole (σ is read on the whole filled map); else ``(row slice,
        column slice, note)``, the slices None where no rectangle of ``min_side`` is left (σ is then read
        on the whole filled map, and the note says it is unreliable).

    Examples
    --------
    >>> import numpy as np
    >>> from xrfgpu.front_door import sigma_region
    >>> w = np.ones((100, 120)); w[60:66, :] = 0          # six lost scan lines
    >>> rows, cols, note = sigma_region(w)
    >>> (rows.start, rows.stop, cols.start, cols.stop)
    (0, 60, 0, 120)
    >>> w = np.ones((100, 120)); w[60, :] = 0; w[10, 7] = 0  # one lost line and a dead pixel: harmless
    >>> sigma_region(w) is None
    True
    """
    from scipy import ndimage

    from .psf.blind_sigma import MIN_SIDE_PX

    missing = np.asarray(to_numpy(weights)) <= 0
    if not missing.any():
        return None
    distance = ndimage.distance_transform_edt(missing)
    labels, _ = ndimage.label(missing)
    wide_labels = np.unique(labels[distance > WIDE_HOLE_PX])
    wide_labels = wide_labels[wide_labels > 0]
    if wide_labels.size == 0:
        return None
    bad = np.isin(labels, wide_labels)
    rows, cols = bad.shape
    block = max(1, math.ceil(max(rows, cols) / 256))
    br, bc = math.ceil(rows / block), math.ceil(cols / block)
    padded = np.zeros((br * block, bc * block), dtype=bool)
    padded[:rows, :cols] = bad
    coarse = padded.reshape(br, block, bc, block).any(axis=(1, 3))
    # the largest all-clear rectangle of the coarse grid: per row, the heights of the clear runs ending there,
    # and the largest rectangle under that histogram (a stack of rising heights)
    best, where = 0, None
    heights = np.zeros(bc, dtype=np.int64)
    for r in range(br):
        heights = np.where(coarse[r], 0, heights + 1)
        stack = []
        for c in range(bc + 1):
            h = int(heights[c]) if c < bc else 0
            start = c
            while stack and stack[-1][1] >= h:
                start, top = stack.pop()
                if top * (c - start) > best:
                    best, where = top * (c - start), (r - top + 1, r + 1, start, c)
            stack.append((start, h))
    side = MIN_SIDE_PX if min_side is None else int(min_side)
    lost = int(bad.sum())
    if where is not None:
        r0, r1 = min(where[0] * block, rows), min(where[1] * block, rows)
        c0, c1 = min(where[2] * block, cols), min(where[3] * block, cols)
        if r1 - r0 >= side and c1 - c0 >= side:
            return (slice(r0, r1), slice(c0, c1),
                    f"read on rows {r0}-{r1 - 1}, columns {c0}-{c1 - 1}: the largest rectangle without the "
                    f"{lost} pixels of wide holes (3 or more lost lines)")
    return (None, None, f"read on the whole map with {lost} pixels of wide holes (3 or more lost lines) filled (no "
                        f"rectangle of {side} px a side without them): unreliable")


def effective_counts(y, *, xp, gain=None, map_kind=None):
    """A map in (effective) counts: ``(map, gain, notes)``.

    Which kind of map it is, is :func:`xrfgpu.map_kind.classify_map`'s answer, the rule every caller
    shares. A count map comes back unchanged with gain 1; integers that are not counts (scaled
    integers: values on a lattice, or a photon-transfer gain clearly below 1) are divided by the
    gain found there, with ``map_kind`` saying what was measured. A fitted or normalised map
    (PyXRF, MAPS: µg/cm², counts/s/I0) is clipped at 0 and divided by its
    effective Poisson gain (:func:`xrfgpu.background.estimate_gain`, map
    units per count); a map too small or sparse for that gets its variance
    over its mean, an upper bound. ``notes`` holds what :func:`restore`
    records (``map_kind``, ``gain_spread`` or ``gain_note``,
    ``negative_fraction_clipped``).

    ``gain`` (map units per effective count), when given, is used instead of
    measuring it: the gain of a calibrated detector, or the one an earlier
    call measured on this same map (the command line measures each map once
    and passes it on to the background, σ and restoration steps). A count
    map takes only 1; 1 takes any integer map for counts, unclassified.

    ``map_kind`` (a :class:`xrfgpu.map_kind.MapKind`), when given, is
    :func:`xrfgpu.map_kind.classify_map`'s answer for this same map, had
    before (the command line classifies each map once and passes it on to
    the background, σ and restoration steps): used instead of classifying
    the map again (tens of ms on a 1024² integer map).

    Raises
    ------
    GainNotMeasurableError
        No positive, finite gain could be measured (a :class:`ValueError`).
    ValueError
        A map with no positive value; a given ``gain`` that is not a
        positive, finite number, or not 1 for a count map; a ``map_kind``
        that cannot be this map's (integers said to be fitted, or the reverse).
    TypeError
        A given ``gain`` that is not a number (a string included); a
        ``map_kind`` that is not a :class:`xrfgpu.map_kind.MapKind`.
    """
    notes = {}
    if gain is not None:
        gain = check_positive_finite(gain, "gain", "map units per count")
    integers = is_count_map(y)
    if not integers:  # counts with a few stray values (filled dead pixels): those rounded, as classify_map reads them
        rounded, stray = round_stray_values(y)
        if rounded is not None:
            y, integers = rounded, True
            notes["stray_values_rounded"] = stray
    if map_kind is not None:
        _check_map_kind(map_kind, integers)
    if integers:  # integers: counts, or scaled integers (xrfgpu.map_kind.classify_map, the one rule)
        if gain == 1.0:  # always accepted: forces counts, whatever the rule says
            notes["map_kind"] = "counts"
            notes["gain_note"] = "given (gain=1), not measured again: integers taken for counts"
            return y, 1.0, notes
        kind = classify_map(y) if map_kind is None else map_kind
        if kind.is_counts:
            if gain is not None:
                raise ValueError(f"gain={gain!r} given for a count map (non-negative integers taken for counts: "
                                 f"{kind.evidence}), whose gain is 1; pass gain=1, or divide a "
                                 "map stored as scaled integers by its scale to restore it as a fitted map")
            notes["map_kind"] = "counts"
            notes["gain_note"] = kind.evidence
            return y, 1.0, notes
        notes["map_kind"] = kind.note
        if gain is not None:
            notes["gain_note"] = "given (gain=), not measured again"
            return y / gain, gain, notes
        return y / kind.gain, kind.gain, notes
    negative = float(xp.mean(xp.astype(y < 0, y.dtype)))
    if negative > 0:
        y = xp.clip(y, min=0.0)
        notes["negative_fraction_clipped"] = negative
        if not bool(xp.any(y > 0)):
            which = "every pixel below 0" if negative == 1.0 else f"{negative:.1%} of the pixels below 0, the rest 0"
            raise ValueError(f"image has no positive value ({which}): nothing to restore")
    if gain is not None:
        notes["gain_note"] = "given (gain=), not measured again"
        lattice = _on_count_lattice(y, gain, xp=xp, notes=notes, given=True)
        if lattice is not None:
            return lattice
        notes["map_kind"] = "fitted (not integer counts): restored in effective counts = map / gain"
        return y / gain, gain, notes
    try:
        gain_estimate = estimate_gain(y)
        gain = float(gain_estimate)
        notes["gain_spread"] = gain_estimate.spread
    except ValueError as exc:
        # too small (or too sparse) for flat blocks: the whole map's variance over its mean, an
        # upper bound (structure adds variance), so the effective counts err low, the safe side
        mean = float(xp.mean(y))
        gain = float(xp.mean((y - mean) ** 2)) / mean if mean > 0 else float("nan")
        notes["gain_note"] = f"{exc}; gain from the whole map's variance / mean (an upper bound)"
    if not (gain > 0 and math.isfinite(gain)):
        low, high = float(xp.min(y)), float(xp.max(y))
        if low == high:  # one value everywhere (an offset only): no structure, and no noise to measure a gain from
            raise GainNotMeasurableError(f"image is constant (every pixel {high:g}): there is nothing to restore")
        raise GainNotMeasurableError("could not measure the map's noise (effective Poisson gain); pass a count map, "
                                     "or the map's gain (map units per count) as gain=")
    lattice = _on_count_lattice(y, gain, xp=xp, notes=notes)
    if lattice is not None:
        return lattice
    notes["map_kind"] = "fitted (not integer counts): restored in effective counts = map / gain"
    return y / gain, gain, notes


def _on_count_lattice(y, gain, *, xp, notes, given=False):
    """``(counts, step, notes)`` for a map of counts divided by one number, else None.

    Such a map (counts per second at a fixed dwell, per I0 read once, a count map ×0.5 or /1000) keeps its
    photons' lattice ``step × n`` (:func:`xrfgpu.map_kind.count_lattice_step`, which also asks that ``gain``,
    the photon-transfer gain measured or given, agree with the step). Its counts are then ``round(y / step)``
    exactly: the measured gain reads a few % off the step (0.489 for ×0.5), and ``y / gain`` would be
    neither the counts nor integers (σ 2.7 % off, and a different iteration count, on a map that is only
    its counts in other units).

    A ``given`` gain is kept: the map is rounded to counts only where the lattice's step is that gain
    (to 1e-6; the command line passes on the step its first look found), else None.
    """
    step = count_lattice_step(y, gain)
    if step is None or (given and abs(step - gain) > 1e-6 * gain):
        return None
    notes["map_kind"] = (f"counts divided by one number (its values on the photons' lattice of step {step:.6g}): "
                         f"restored in counts = round(map / {step:.6g})")
    notes["count_lattice_step"] = step
    return xp.round(y / step), step, notes


def _check_map_kind(map_kind, integers):
    """Refuse a ``map_kind`` that is no :class:`~xrfgpu.map_kind.MapKind`, or cannot describe the map."""
    from .map_kind import MapKind

    if not isinstance(map_kind, MapKind):
        raise TypeError(f"map_kind must be xrfgpu.map_kind.classify_map's answer (a MapKind), got "
                        f"{type(map_kind).__name__}")
    if integers == (map_kind.kind == "fitted"):
        raise ValueError(f"map_kind {map_kind.kind!r} is not this map's: the map is "
                         f"{'non-negative integers' if integers else 'not non-negative integers'}; pass "
                         "classify_map's answer for this same map, or None")


def _counts_for_split(y, *, mask, gain):
    """Effective counts ``y`` as the cross-validation's Poisson split takes them: integers as they are, a fitted
    map's effective counts rounded (a fitted map given gain=1 included: it is not integers either), refused
    beyond the counts a split can take (:func:`xrfgpu.stopping.refuse_counts_beyond_split`)."""
    split_map = y if is_count_map(y) else array_namespace(y).round(y)
    refuse_counts_beyond_split(split_map, weights=mask, gain=gain)
    return split_map


def rl_iteration_count(y, h, *, background, gain=1.0, num_iter=None, rule="cv", goal=DEFAULT_GOAL,
                       sigma_estimated=False, accelerate=True, record=None, **rl_options):
    """The front door's Richardson–Lucy iteration count: ``(iterations, cross-validated count or None)``.

    ``y`` and ``background`` are in effective counts (:func:`effective_counts`,
    whose ``gain`` says whether the map was fitted: its effective counts are
    rounded for the Poisson split). ``rule="cv"``: Poisson-thinning
    cross-validation (:func:`xrfgpu.stopping.cv_iterations`, at most
    ``num_iter`` or 500), times the goal's iteration scale
    (:func:`goal_factors`: twice for ``goal="resolution"`` when
    ``sigma_estimated``, i.e. when ``h`` is the Gaussian of the goal's scaled
    estimate of σ; a given σ keeps the CV count), as far as the goal's guard
    lets it go (below); ``"fixed"``: ``num_iter`` (30 when None). The CLI's
    tiled run asks the same question, so tiles iterate as often as the whole map.

    The goal's guard: the scaled count is run only as far as the held-out
    counts of the same cross-validation cannot tell it is worse than the best
    count, i.e. while the held-out deviance stays within
    :data:`GOAL_GUARD_STANDARD_ERRORS` paired standard errors of its lowest
    value (:func:`xrfgpu.stopping.cv_stop`, the one-standard-error rule turned
    toward sharpness). ``record``, a dict when given, receives what the guard
    did (:data:`GOAL_GUARD_KEYS`): ``goal_iterations_wanted`` (the scaled
    count), ``goal_iterations_capped_by`` (None, ``"held-out deviance"`` or
    ``"max_iter"``) and ``goal_heldout_rise_se`` (the rise, in paired standard
    errors, that stopped it; None when not stopped by it).

    With ``rule="cv"``, ``record`` also receives the split the cross-validation drew
    (:data:`CV_SPLIT_KEYS`): ``cv_split_seed`` and ``cv_holdout_fraction`` (the ``seed`` and
    ``holdout`` of :func:`xrfgpu.stopping.cv_iterations`) and ``cv_max_iterations`` (its
    ``max_iter``), so that ``cv_iterations(round(map / gain), h, background=background / gain,
    seed=..., holdout=..., max_iter=..., accelerate=...)`` repeats the cross-validated count.

    Raises
    ------
    ValueError
        Unknown ``rule`` or ``goal``; with ``rule="cv"``, a map whose largest effective count is
        above :data:`xrfgpu._validate.MAX_COUNT` (a hot pixel far above the rest of a fitted map),
        which no Poisson split can take: the message names the pixel and what to do.
    """
    _, iteration_scale = goal_factors(goal, sigma_estimated=sigma_estimated)
    if rule == "fixed":
        return int(num_iter if num_iter is not None else 30), None
    if rule != "cv":
        raise ValueError(f"rule must be 'cv' or 'fixed', got {rule!r}")
    split_map = _counts_for_split(y, mask=rl_options.get("mask"), gain=gain)
    if record is not None:  # the split drawn, for the record (the functions' own defaults: none is passed)
        drawn = inspect.signature(cv_iterations if iteration_scale == 1.0 else cv_stop).parameters
        record.update(cv_split_seed=drawn["seed"].default, cv_holdout_fraction=drawn["holdout"].default,
                      cv_max_iterations=int(num_iter or 500))
    if iteration_scale == 1.0:
        count = cv_iterations(split_map, h, background=background, max_iter=num_iter or 500, accelerate=accelerate,
                              **rl_options)
        return count, count
    found = cv_stop(split_map, h, background=background, max_iter=num_iter or 500, accelerate=accelerate,
                    extend=iteration_scale, standard_errors=GOAL_GUARD_STANDARD_ERRORS, **rl_options)
    if record is not None:
        record.update(goal_iterations_wanted=found.extend_target, goal_iterations_capped_by=found.limited_by,
                      goal_heldout_rise_se=found.rise_standard_errors)
    return found.sharp_iterations, found.iterations


def fista_iteration_count(y, h, *, background, gain=1.0, lam=None, nonneg=True, mask=None, num_iter=None,
                          record=None):
    """The front door's FISTA iteration count by Poisson-thinning cross-validation
    (:func:`xrfgpu.stopping.fista_cv_iterations`, at most ``num_iter`` or
    :data:`xrfgpu.stopping.FISTA_CV_MAX_ITER`).

    ``y`` and ``background`` are in effective counts, as for :func:`rl_iteration_count` (a fitted map's are
    rounded for the split). The CLI's tiled run asks the same question, so tiles iterate as often as the whole
    map. ``record``, a dict when given, receives ``cv_iterations``, the split drawn (:data:`CV_SPLIT_KEYS`, the
    function's own defaults) and ``cv_drop_tolerance``.

    Raises
    ------
    ValueError
        A map whose largest effective count no Poisson split can take (:func:`refuse_counts_beyond_split`).
    """
    from .stopping import FISTA_CV_MAX_ITER, fista_cv_iterations

    split_map = _counts_for_split(y, mask=mask, gain=gain)
    cap = int(num_iter) if num_iter is not None else FISTA_CV_MAX_ITER
    count, _ = fista_cv_iterations(split_map, h, background=background, lam=lam, nonneg=nonneg, mask=mask,
                                   max_iter=cap)
    if record is not None:  # the split drawn and the rule (the function's own defaults: none is passed)
        drawn = inspect.signature(fista_cv_iterations).parameters
        record.update(cv_iterations=count, cv_split_seed=drawn["seed"].default,
                      cv_holdout_fraction=drawn["holdout"].default, cv_max_iterations=cap,
                      cv_drop_tolerance=drawn["drop_tolerance"].default)
    return count


def require_side_for_sigma(shape, remedy):
    """Refuse a map too small for :func:`xrfgpu.psf.estimate_sigma` (under ``MIN_SIDE_PX`` a side), saying the
    way round.

    Parameters
    ----------
    shape : tuple of int
        The map's shape (the last two axes are its rows and columns, pixels).
    remedy : str
        How to give the PSF instead, in the caller's words (the library's arguments, the command line's
        options).

    Raises
    ------
    ValueError
        Naming the shape, the minimum and ``remedy``.
    """
    from .psf.blind_sigma import MIN_SIDE_PX

    if min(shape[-2:]) < MIN_SIDE_PX:
        raise ValueError(f"image must be at least {MIN_SIDE_PX}×{MIN_SIDE_PX} pixels to estimate σ, got shape "
                         f"{tuple(int(n) for n in shape)}; give the PSF instead: {remedy}")


def sigma_from_map(image, *, background="auto", strict=False, gain=None, map_kind=None, elongation=False,
                   mask=None):
    """σ of the map's Gaussian PSF as :func:`restore` estimates it, before the goal's scale.

    The map goes through the same steps as in :func:`restore`: effective
    counts (:func:`effective_counts`), the background (estimated, or the
    given one divided by the gain), then :func:`xrfgpu.psf.estimate_sigma`.
    Pass the result on as ``restore(image, sigma=estimate, background=...)``
    (same background): the front door then treats σ as estimated, applies the
    goal's σ scale and records the interval, exactly as ``restore(image)``.
    The command line's ``--psf-auto`` does this.

    Parameters
    ----------
    image : array, shape (rows, cols)
        Count map or fitted map, with missing pixels already filled
        (:func:`filled_for_estimators`).
    background : "auto", float or array
        Background in the map's units, or a map of it (as for :func:`restore`).
    strict : bool
        Raise instead of warning when σ is uncertain.
    gain : float, optional
        The map's effective gain, map units per count, if already measured
        (:func:`effective_counts`); measured from the map when None.
    map_kind : xrfgpu.map_kind.MapKind, optional
        The map's kind, if already classified (:func:`effective_counts`).
    elongation : bool
        Also check for an elongated spot (:func:`xrfgpu.psf.estimate_sigma`'s ``elongation``; off by default).
    mask : array, shape (rows, cols), optional
        Weights of the pixels (0 at the missing ones, which ``image`` holds filled): σ is then read where
        :func:`sigma_region` says, as :func:`restore` reads it (``details["region"]``).

    Returns
    -------
    xrfgpu.psf.SigmaEstimate
        σ in pixels with its interval and evidence.

    Raises
    ------
    ValueError
        The map's gain cannot be measured, a bad background, or (``strict``)
        an uncertain σ.
    """
    xp = array_namespace(image)
    y, gain, notes = effective_counts(image, xp=xp, gain=gain, map_kind=map_kind)
    b, _ = _background_in_counts(background, y, gain, xp=xp, fitted=_is_fitted(notes))
    return _estimate_sigma(y, b, strict=strict, elongation=elongation, weights=mask)


def background_from_map(image, *, return_source=False, gain=None, map_kind=None):
    """The background :func:`restore` estimates for ``background="auto"``, in the map's own units.

    The map goes through :func:`restore`'s steps: effective counts
    (:func:`effective_counts`: a fitted map is divided by its measured gain),
    then :func:`xrfgpu.background.estimate_background` in those counts, and
    the result is multiplied back by the gain. Passing it on as
    ``restore(image, background=value)`` reproduces ``restore(image)``; the
    command line's ``--background auto`` does this.

    Parameters
    ----------
    image : array, shape (rows, cols)
        Count map or fitted map, with missing pixels already filled
        (:func:`filled_for_estimators`).
    return_source : bool
        Also return how the value was obtained (what ``info["background_source"]`` of :func:`restore`
        says, and for a fitted map that it was estimated in effective counts).
    gain : float, optional
        The map's effective gain, map units per count, if already measured
        (:func:`effective_counts`); measured from the map when None.
    map_kind : xrfgpu.map_kind.MapKind, optional
        The map's kind, if already classified (:func:`effective_counts`).

    Returns
    -------
    float, or (float, str) with ``return_source``
        Background in the map's units (counts for a count map).
    """
    xp = array_namespace(image)
    y, gain, notes = effective_counts(image, xp=xp, gain=gain, map_kind=map_kind)
    fitted = _is_fitted(notes)
    b, source = _background_in_counts("auto", y, gain, xp=xp, fitted=fitted)
    value = float(b) * gain
    if not return_source:
        return value
    return value, (f"{source}; a fitted map, in effective counts (map / gain {gain:.3g})" if fitted else source)


def _background_in_counts(background, y, gain, *, xp, fitted=False):
    """``(background in effective counts, how it was obtained)``: estimated from ``y`` for "auto", else
    the given number or map divided by the map's gain.

    A fitted map (``fitted``) that shows no element-free area gets 0: the spectrum fit that made it has
    already taken the continuum out, and the map's low level is then the element itself (a uniform film
    read as background was restored to a thousandth of itself). Not so a map of counts divided by one
    number (:func:`xrfgpu.map_kind.count_lattice_step`): no fit removed its background, which is estimated
    as a count map's.
    """
    if isinstance(background, str):
        if background != "auto":
            raise ValueError(f'background must be "auto", a number or a map, got {background!r}')
        note = ""
        if fitted and min(y.shape[-2:]) >= 5:
            depth, allowance = element_free_depth(y)
            if depth <= allowance:
                # counts divided by one number (the photons' lattice, of step about 1 in effective counts) kept
                # their background: a sparse one, whose median is its ground, read as "no element-free area"
                # and got 0 (1.4-2.0x the raw map's error, its flux twice)
                if count_lattice_step(y, 1.0) is None:
                    return 0.0, (f"0: a fitted map with no element-free area (its lowest local mean lies "
                                 f"{depth:.1f} noise spreads below its median, within the {allowance:.1f} of noise "
                                 "alone), whose continuum the spectrum fit has already removed; a map that still "
                                 "holds its background (counts corrected pixel by pixel for dead time or I0, not "
                                 "fitted) cannot be told from it by its values: pass background= for such a map")
                note = ("; the map is counts divided by one number (its values on the photons' lattice), whose "
                        "background no spectrum fit removed, so it is estimated as a count map's")
        window = 5  # estimate_background's default window
        if min(y.shape[-2:]) < window:
            raise ValueError(
                f"image of shape {tuple(y.shape)} is too small for the automatic background (a {window} x {window} "
                "window of local means): pass background= (a number in the map's units, 0 for a fitted map "
                "whose spectrum fit removed the continuum)"
            )
        return (estimate_background(y, window=window),
                "estimated from the map (xrfgpu.background.estimate_background)" + note)
    b = as_background(background, y, xp=xp)
    return (b / gain if gain != 1.0 else b), "given"


def _is_fitted(notes):
    """Whether :func:`effective_counts` took the map for a fitted one (its ``notes``)."""
    return notes.get("map_kind", "counts").startswith("fitted")


def _estimate_sigma(y, b, *, strict, elongation=False, weights=None):
    """:func:`xrfgpu.psf.estimate_sigma` of effective counts ``y`` over background ``b`` (a map is not passed).

    With ``weights`` (0 at missing pixels; ``y`` holds them filled) σ is read where
    :func:`sigma_region` says, and ``details["region"]`` says where (absent: the whole map).
    """
    from .psf import estimate_sigma
    from .psf.blind_sigma import SigmaUncertainWarning

    region = None if weights is None else sigma_region(weights)
    y_read = y
    if region is not None and region[0] is not None:
        y_read = y[region[0], region[1]]
    est = estimate_sigma(y_read, background=b if not hasattr(b, "shape") else None, strict=strict,
                         elongation=elongation)
    if region is not None:
        if est.details is not None:
            est.details["region"] = region[2]
        if region[0] is None:
            # read on the filled map, whose seams the spectrum takes for a sharp scene: not reliable, whatever
            # the estimator said of the map it was given (an uncertain σ warns; strict=True raises)
            message = f"σ is uncertain: {region[2]}"
            if strict:
                raise ValueError(f"{message}; measure the PSF on a dot or an edge or pass sigma= yourself")
            est = dataclasses.replace(est, reliable=False,
                                      evidence=f"{est.evidence}; {region[2]}" if est.evidence else region[2])
            warnings.warn(message, SigmaUncertainWarning, stacklevel=3)
    return est


def _one_number(value, name, unit):
    """``value`` as a float, or a TypeError naming ``name`` (an array or a pair is not one σ)."""
    try:
        if getattr(value, "ndim", 0) != 0:  # float() of a one-element array only warns before NumPy 2.4
            raise TypeError
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be one number of {unit} (the σ of an isotropic Gaussian), got {value!r}; for an "
            "elliptical or measured PSF pass psf= (e.g. xrfgpu.psf.gaussian(None, sigma_u, sigma_v, rho))"
        ) from None


def _read_lost_lines(y, weights, *, method, info, xp):
    """``weights`` with the map's lost scan lines set to 0 (:mod:`xrfgpu.lost_lines`), warned and recorded.

    ``info["lost_scan_lines"]`` lists the lines. The blind methods take no missing pixels: they restore the
    lines as the zeros they hold, and ``info["lost_scan_lines_read_as"]`` says ``"data"`` (else ``"missing"``).
    """
    from .lost_lines import LostScanLinesWarning, find_lost_lines, without_lost_lines

    lost = find_lost_lines(y, weights, xp=xp)
    if not lost:
        return weights
    info.update(lost.info_entries(method))
    warnings.warn(lost.message(method=method), LostScanLinesWarning, stacklevel=3)
    if info["lost_scan_lines_read_as"] == "data":
        return weights
    return without_lost_lines(weights, lost, tuple(y.shape), xp=xp, like=y)


def _check_alternate_lines(y, weights, *, info):
    """Warn of, and record, odd lines offset along the scan (:mod:`xrfgpu.row_offset`); the map is not changed."""
    from .row_offset import ScanMisregistrationWarning, alternate_row_offset

    offset = alternate_row_offset(y, weights)
    if offset is not None:
        info["alternate_line_offset"] = offset.record()
        warnings.warn(offset.message(), ScanMisregistrationWarning, stacklevel=3)


def _check_method_options(method, kwargs):
    """Refuse an option the method does not take, naming the ones it does, before any work."""
    if method not in ("rl", "wiener", "tikhonov", "fista"):
        return
    from . import fista, richardson_lucy, tikhonov, wiener

    engine = {"rl": richardson_lucy, "wiener": wiener, "tikhonov": tikhonov, "fista": fista}[method]
    # image, psf and background are restore's to give; num_iter is restore's own parameter
    taken = set(inspect.signature(engine).parameters) - {"image", "psf", "background", "num_iter"}
    if method == "rl":
        taken.add("discrepancy")  # the target of stop="discrepancy"
    unknown = sorted(set(kwargs) - taken)
    if unknown:
        raise TypeError(f"restore(method={method!r}) got unknown option(s) {unknown}; "
                        f"{engine.__name__} takes {sorted(taken)}")


def restore(
    image,
    psf=None,
    *,
    method="rl",
    background="auto",
    pixel_size_um=None,
    sigma=None,
    sigma_um=None,
    num_iter=None,
    stop=None,
    goal=DEFAULT_GOAL,
    strict=False,
    gain=None,
    return_info=False,
    map_kind=None,
    elongation=False,
    **kwargs,
):
    """Restore a micro-XRF map; with only the map, fully automatically.

    Parameters
    ----------
    image : array, shape (rows, cols)
        Count map, or a fitted / normalised map (PyXRF, MAPS: µg/cm²,
        counts per I0, ...), any array-API namespace (NumPy, CuPy, ...).
    psf : array, optional
        PSF in pixels of the map. Overrides ``sigma``/``sigma_um``.
    method : {"rl", "wiener", "tikhonov", "fista", "blind", "blind-rl"}
        Richardson–Lucy (recommended), Wiener (Laplacian), Tikhonov, FISTA,
        the blind L0 method (:func:`xrfgpu.blind_l0`), or the hybrid blind
        σ → RL (:func:`xrfgpu.blind.blind_rl`).
    background : "auto" or float or array
        Background per pixel, in the map's units; "auto" uses
        :func:`xrfgpu.background.estimate_background` (on the effective counts
        of a fitted map), never above a low quantile of the map. A fitted map
        with no element-free area (:func:`xrfgpu.background.element_free_depth`:
        its lowest local mean within the noise of its median, e.g. a uniform
        film) gets 0, since the spectrum fit that made it removed the continuum.
    pixel_size_um : float, optional
        Scan step, µm; needed with ``sigma_um`` and to report σ in µm.
    sigma : float or xrfgpu.psf.SigmaEstimate, optional
        Gaussian PSF σ in pixels. A float is used as given; an estimate (from
        :func:`sigma_from_map` on this map, or :func:`xrfgpu.psf.estimate_sigma`
        on its effective counts) is treated as ``restore`` treats its own
        estimate: the goal's σ scale applies and its interval is recorded.
    sigma_um : float, optional
        Gaussian PSF σ in µm (needs ``pixel_size_um``).
    num_iter : int, optional
        Iterations (RL, FISTA, blind-rl). For RL and FISTA a given count switches the
        automatic stopping off unless ``stop`` says otherwise (RL). Checked as
        :func:`xrfgpu.richardson_lucy` checks it (a positive integer).
    stop : {"cv", "discrepancy", "fixed"}, optional
        RL stopping rule: Poisson-thinning cross-validation
        (:func:`xrfgpu.stopping.cv_iterations`, default when ``num_iter`` is
        None; on a fitted map the split uses its rounded effective counts), the Poisson
        discrepancy principle (``2 KL / n ≤ 1``, capped at ``num_iter`` or
        500), or exactly ``num_iter`` iterations (default when it is given).
        FISTA: ``"cv"`` (:func:`xrfgpu.stopping.fista_cv_iterations`, the default without ``num_iter``) or
        ``"fixed"`` (``num_iter``, or :func:`xrfgpu.fista`'s 25); ``"discrepancy"`` is RL's only.
    goal : {"resolution", "fidelity"}
        What the automatic RL aims for when σ is estimated from the map (see
        Notes, "Goals", and :func:`goal_factors`). "resolution" (default):
        0.9 × the estimated σ and, with the CV stop, twice the CV count at
        that σ: more resolution at an MSE below the CV result on the chart.
        "fidelity": the estimated σ and the CV count, the stop that best
        predicts held-out counts (the previous default). A σ or PSF you give is used as given, with
        the plain CV count, whatever the goal; methods other than RL are not
        affected.
    strict : bool
        Raise instead of warning when the estimated σ is uncertain
        (:class:`xrfgpu.psf.blind_sigma.SigmaUncertainWarning`).
    gain : float, optional
        Effective Poisson gain of a fitted map, map units per count, if known
        (a calibrated detector, or :func:`effective_counts` run before on
        this map, as the command line does); None measures it (see Notes).
        A count map takes only 1, and 1 takes any integer map for counts
        (also one :func:`xrfgpu.map_kind.classify_map` reads as scaled integers).
    elongation : bool
        With σ estimated from the map, also check for an elongated spot and restore with the measured
        ellipse when one is found (see Notes). Off by default: the check is not yet trustworthy
        (:func:`xrfgpu.psf.estimate_sigma`, ``elongation``).
    return_info : bool
        Also return a dict of what was used.
    map_kind : xrfgpu.map_kind.MapKind, optional
        :func:`xrfgpu.map_kind.classify_map`'s answer for this same map (its
        missing pixels filled), if already had, as the command line has it:
        the map is not classified again (:func:`effective_counts`).
    **kwargs
        Passed to the method (``accelerate``, ``tv``, ``balance``, ``lam``,
        ``order``, ``kernel_size``, ...).

    Returns
    -------
    restored : array, shape (rows, cols)
        Same namespace and device as ``image``; the map's units above
        background; float32, or float64 for a float64 map (either byte order).
    info : dict, only with ``return_info=True``
        JSON-serialisable as returned. ``method``, ``goal``, ``sigma_scale`` and ``iteration_scale`` (the
        goal's factors this run applied, :func:`goal_factors`; with the resolution goal's CV stop also
        ``goal_iterations_wanted``, ``goal_iterations_capped_by`` and ``goal_heldout_rise_se``, what
        the goal's guard did, see Notes; with an estimated σ and the CV stop the caution's
        :data:`CAUTION_KEYS`, see Notes), ``map_kind``
        ("counts" or fitted), ``gain``
        (map units per effective count; 1 for counts; ``gain_spread`` when
        measured over flat blocks, ``gain_note`` when it
        came from the whole map's variance / mean, or was given), ``sigma`` and
        ``sigma_px`` (px, the σ used; None with a given ``psf``; √(σu σv) for an elongated spot), with
        ``sigma_u``, ``sigma_v`` (px, after the goal's scale) and ``rho`` when the estimator found the spot
        elongated (and ``sigma_u_estimated``, ``sigma_v_estimated``, before the scale), ``sigma_um``
        (None without ``pixel_size_um``), ``sigma_source`` (how σ was obtained), and when
        estimated ``sigma_interval``, ``sigma_reliable``, ``sigma_evidence``,
        ``sigma_estimated`` (px, before the goal's scale); ``background`` (map
        units, or "map" for a given map), ``background_source``, ``iterations`` (the count run: RL, FISTA,
        blind-rl; None for Wiener, Tikhonov and blind), ``cv_iterations``, ``stop`` (RL), with the CV stop
        the split it drew (:data:`CV_SPLIT_KEYS`: ``cv_split_seed``, ``cv_holdout_fraction``,
        ``cv_max_iterations``, the ``seed``, ``holdout`` and ``max_iter`` of
        :func:`xrfgpu.stopping.cv_iterations`), ``accelerate`` (RL and blind-rl: whether the
        Biggs–Andrews steps ran), ``restoration_dtype`` (``"float32"`` or ``"float64"``, the precision
        the restoration ran in), ``psf_shape``, with Wiener ``balance`` and with Tikhonov ``lam`` (the
        weight run; when chosen from the map, the default, also ``balance_rule`` / ``lam_rule``,
        ``noise_variance``, the noise read from the map in its units squared, and ``noise_band``, see
        :mod:`xrfgpu.filter_weight`),
        ``flux_ratio`` (Σ restored
        / Σ (map − background), RL), ``seconds`` (time per stage: gain,
        background, sigma, stop, restore); ``missing_pixels`` (their count, when any are
        masked, NaN, weight 0 or on a lost scan line), ``lost_scan_lines`` (``{"rows": [...],
        "columns": [...]}``, see Warns) with ``lost_scan_lines_read_as`` (``"missing"``, or ``"data"`` for
        the blind methods), ``alternate_line_offset`` (``axis``, ``offset_px``, ``z``: every other line
        offset along the scan, see Warns) and ``negative_fraction_clipped`` (a fitted map's share of
        values below 0, set to 0), when they occur. With ``method="blind"``, whose restoration
        is not held non-negative: ``negative_fraction_restored`` (the share of restored
        pixels below 0) and ``restored_min`` (the lowest restored value, map units).

    Raises
    ------
    ValueError
        Unknown method, goal or stop rule, ``sigma_um`` without
        ``pixel_size_um``, ``num_iter`` not a positive integer, an uncertain σ
        with ``strict=True``, a map that is all zeros, constant, or under
        5 px along a side with ``background="auto"``, a PSF the method would ignore (``psf`` with the
        blind methods, ``sigma`` or ``sigma_um`` with blind-rl), and the checks of each algorithm.
    TypeError
        ``image`` not an array (an h5py dataset, a list: the message says
        what to pass), ``num_iter`` not a number, ``sigma``/``sigma_um`` not
        one number, an option (``**kwargs``) the method does not take.

    Warns
    -----
    SigmaUncertainWarning
        The σ estimated from the map is uncertain (see
        :func:`xrfgpu.psf.estimate_sigma`).
    xrfgpu.lost_lines.LostScanLinesWarning
        Without ``mask=`` (or a masked array), whole rows or columns of zeros beside lines clear of zeros,
        which no measurement gives, were found (:func:`xrfgpu.lost_lines.find_lost_lines`): they are read as missing
        pixels, not as zero concentration (the blind methods, which take no missing pixels, restore them
        as data). A given ``mask=``, or a masked array's mask, is the whole statement of which pixels are
        missing: nothing is looked for then.
    xrfgpu.row_offset.ScanMisregistrationWarning
        The odd lines of a map without missing pixels lie offset along the scan from the even ones
        (:func:`xrfgpu.row_offset.alternate_row_offset`; a bidirectional scan's misregistration): σ and the
        restoration are not to be trusted until the lines are realigned
        (:func:`xrfgpu.row_offset.realign_alternate_lines`). The map is restored as given.

    Notes
    -----
    Fitted maps. Integers that are not counts (``round(k · counts)``, µg/cm² × 1000
    stored as integers) are found by :func:`xrfgpu.map_kind.classify_map` (their values
    on a lattice of spacing ≥ 2, or a photon-transfer gain clearly below 1) and restored
    in effective counts as below. A map that is not non-negative integers is taken for a
    fitted map, ``g`` × Poisson counts; ``g`` is measured from the map
    (:func:`xrfgpu.background.estimate_gain`, variance against mean over
    flat blocks), the map is divided by it, restored in effective counts and
    multiplied back. Negative values (fit noise) are set to 0 first and
    their share reported. A map too small for 8 × 8 blocks takes the whole
    map's variance over its mean, an upper bound of ``g``.

    The automatic pipeline estimates σ from the map
    (:func:`xrfgpu.psf.estimate_sigma`: straight edges where the map has
    them, otherwise the windowed power spectrum), with an interval; a σ
    measured on a dot or an edge (:func:`xrfgpu.psf.fit_dot`,
    :func:`xrfgpu.psf.fit_knife_edge`) is better when one exists.
    With ``elongation=True``, when the estimator finds the spot elongated (``method`` "elliptical-…",
    σu ≠ σv or ρ ≠ 0; :func:`xrfgpu.psf.estimate_sigma`, Notes, "Elongated
    spots") the map is restored with that elliptical Gaussian
    (:func:`xrfgpu.psf.gaussian_for_map`; the goal's σ scale on both axes) and
    ``info`` records σu, σv, ρ; when it only may be elongated, the round σ
    is used and the warning names both axes. On the elongated held-out maps
    of ``benchmarks/sigma_elongated.py`` this lowered the median MSE from
    0.583 to 0.540 of the raw map's, but one map whose ellipse was misread
    (axis ratio 3.3 for 1.42) was restored at 8.7 × the raw map's MSE
    (``benchmarks/sigma_elongated_summary.md``).
    Accelerated RL (Biggs & Andrews 1997) reaches the cross-validated
    optimum in tens of iterations.

    Goals. The CV count (the first count within a 10⁻⁴ share of the
    held-out deviance's fall from its lowest value,
    :func:`xrfgpu.stopping.cv_iterations`) is the "fidelity" choice, and of
    the two goals the lower median MSE on the frozen scenes (not on the
    chart). On the paper's USAF chart at the paper's counts
    (``benchmarks/usaf_front_door.py``, 5 seeds) it reads G3E4 by the 10 %
    dip, while 0.9 × σ (the paper's advice of a slightly smaller σ, and the
    lower end of the straight-edge stage's ±10 % agreement band) run for
    twice the CV count at that σ reads G3E5 by the median (G3E6 on two seeds
    of five) at a lower normalised MSE than the CV result (0.0175 against
    0.0203; raw scan 0.087). That is ``goal="resolution"``, the default. On
    the frozen σ test scenes (``benchmarks/goal_scenes.py``, not the chart)
    its MSE is never above the raw map's (median 0.65×, at most 0.97×), where
    the fidelity goal's reaches 1.31× on a map with thin bright veins; its
    median MSE is about 10 % above the fidelity goal's, and on maps with a
    small σ (the HXN maps, σ ≈ 0.45 px) a smaller σ sharpens less. Both
    factors are empirical, read off the chart (where, with the CV stop
    before its float32 sum was fixed, the pair read G3E6 by the median).
    They apply together and only to an estimated σ: twice the CV count at a
    given σ reads G3E5 on the chart and raises the frozen scenes' MSE
    (``benchmarks/goal_given_sigma.py``).

    The goal's guard. The doubled count runs only as far as the held-out
    counts of the CV split cannot tell it is worse: it stops at the first
    iteration past the lowest held-out deviance that lies more than one
    paired standard error above it (:func:`xrfgpu.stopping.cv_stop`; the
    one-standard-error rule of Breiman et al. 1984 turned toward sharpness).
    On the fresh held-out set it took the maps worse than raw from 10 to 6
    of 95 and the median MSE ratio from 0.554 to 0.432; on the chart it
    stops 1–2 iterations past the CV count, which reads G3E4 (docs/front_door.md,
    "The goal's guard"). ``info`` records it (:data:`GOAL_GUARD_KEYS`).

    The caution. Where σ was estimated and the CV count at the goal's σ is
    :data:`CAUTION_CV_ITERATIONS` (60) or more, the held-out deviance kept
    falling, as it does at a σ larger than the true one: the map is restored
    at the lower end of σ's interval (or the goal's σ, if lower) for that σ's
    own CV count, not doubled (:func:`caution_sigma`; both goals; a given σ
    is used as given). ``info`` records it (:data:`CAUTION_KEYS`):
    ``caution_applied``, ``caution_reason`` (in words), and what the goal
    alone would have run (``caution_sigma_before``,
    ``caution_iterations_before``, ``caution_cv_iterations_before``); when it
    fires, ``sigma`` is the lower σ, ``iteration_scale`` 1 and the guard's
    keys are dropped. On the fresh tuning set it took the maps worse than
    raw from 12 to 4 of 192 (docs/front_door.md, "The caution").

    References
    ----------
    W. H. Richardson, J. Opt. Soc. Am. 62, 55 (1972), doi:10.1364/JOSA.62.000055.
    L. B. Lucy, Astron. J. 79, 745 (1974), doi:10.1086/111605.
    D. S. C. Biggs, M. Andrews, Appl. Opt. 36, 1766 (1997), doi:10.1364/AO.36.001766.
    M. Bertero et al., Inverse Problems 26, 105004 (2010), doi:10.1088/0266-5611/26/10/105004.
    J. Yang, Z. Zhang, Q. Cheng, J. Anal. At. Spectrom. 37, 750 (2022), doi:10.1039/d1ja00425e.

    Examples
    --------
    >>> from xrfgpu import phantom, restore
    >>> counts, truth, h = phantom.observe((96, 96), 3.0, seed=1)
    >>> restored, info = restore(counts, sigma=3.0, return_info=True)
    >>> restored.shape, info["sigma_source"]
    ((96, 96), 'given sigma (pixels)')

    Backends
    --------
    Any array-API namespace; σ estimation and the CV split run partly on the host.
    """
    from . import psf as psf_module

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    goal_factors(goal, sigma_estimated=False, method=method)  # refuses an unknown goal before any work
    _check_method_options(method, kwargs)  # a misspelt option fails now, not after the gain, background and σ
    if not (hasattr(image, "shape") and hasattr(image, "dtype")):
        raise TypeError(f"image must be an array (NumPy, CuPy, ...): {_how_to_make_an_array(image)}")
    if num_iter is not None:
        num_iter = check_num_iter(num_iter)  # exactly as richardson_lucy checks it
    xp = array_namespace(np.ma.getdata(image) if isinstance(image, np.ma.MaskedArray) else image)
    # missing pixels (masked entries, NaN, mask= zeros) are left out by the solvers' weights; the
    # estimators (gain, background, σ) see them filled with their nearest measured pixel
    given_mask = kwargs.pop("mask", None)
    y, weights = as_image_with_weights(image, given_mask, xp=xp)
    info = {"method": method, "goal": goal}
    if weights is not None and method in ("blind", "blind-rl"):
        raise ValueError("the blind methods take no missing pixels (NaN, masked entries or mask=); "
                         "use rl, wiener, tikhonov or fista")
    if given_mask is None and not isinstance(image, np.ma.MaskedArray):
        # a mask given (mask=, a masked array's own) says which pixels are missing; otherwise whole lines of
        # zeros that no measurement gives are looked for (xrfgpu.lost_lines)
        weights = _read_lost_lines(y, weights, method=method, info=info, xp=xp)
    _check_alternate_lines(y, weights, info=info)
    if weights is not None:
        measured = weights > 0
        low = float(xp.min(xp.where(measured, y, xp.full_like(y, math.inf))))
        high = float(xp.max(xp.where(measured, y, xp.full_like(y, -math.inf))))
        if low == high:  # the filled map would be that one value: "constant" would hide why
            n_measured, n = int(xp.sum(xp.astype(measured, xp.int64))), math.prod(y.shape)
            raise ValueError(f"every measured pixel of the image ({n_measured} of {n}; the others are missing) is "
                             f"{high:g}: there is nothing to restore")
        y = filled_for_estimators(y, weights, xp=xp)
        kwargs["mask"] = weights
        info["missing_pixels"] = int(np.sum(np.asarray(to_numpy(weights)) == 0))
    seconds = {}
    clock = time.perf_counter()

    # 0. counts or a fitted map: restore in (effective) counts
    y, gain, notes = effective_counts(y, xp=xp, gain=gain, map_kind=map_kind)
    info.update(notes)
    info["gain"] = gain
    # the precision every stage below runs in (as_image's working dtype: float64 maps stay float64)
    info["restoration_dtype"] = "float64" if y.dtype == xp.float64 else "float32"
    seconds["gain"] = time.perf_counter() - clock

    clock = time.perf_counter()
    b, info["background_source"] = _background_in_counts(background, y, gain, xp=xp, fitted=_is_fitted(notes))
    info["background"] = (b * gain if gain != 1.0 else b) if not hasattr(b, "shape") else "map"
    seconds["background"] = time.perf_counter() - clock

    if pixel_size_um is not None:
        pixel_size_um = float(pixel_size_um)
        if not (pixel_size_um > 0 and math.isfinite(pixel_size_um)):
            raise ValueError(f"pixel_size_um must be > 0, got {pixel_size_um!r}")

    # the blind methods measure the PSF themselves: a PSF (or, for blind-rl, a σ) given was ignored without a word
    # (the command line refuses --psf-sigma with them); blind's kernel is sized by sigma= or kernel_size=
    given = [name for name, value in (("psf", psf), ("sigma", sigma), ("sigma_um", sigma_um)) if value is not None]
    ignored = [name for name in given if method == "blind-rl" or (method == "blind" and name == "psf")]
    if ignored:
        raise ValueError(f"method={method!r} measures the PSF of the map itself and would ignore {ignored[0]}=; drop "
                         "it, or restore with that PSF by method='rl'"
                         + ("" if method == "blind-rl" else " (sigma= or kernel_size= size blind's kernel)"))
    clock = time.perf_counter()
    h = None
    s = None
    est = None
    if psf is not None:
        h = psf
        s = None
        info["sigma_source"] = "given PSF"
    elif isinstance(sigma, psf_module.SigmaEstimate):
        est = sigma
    elif sigma is not None:
        s = _one_number(sigma, "sigma", "pixels")
        info["sigma_source"] = "given sigma (pixels)"
    elif sigma_um is not None:
        if pixel_size_um is None:
            raise ValueError("sigma_um needs pixel_size_um (the scan step in µm)")
        s = _one_number(sigma_um, "sigma_um", "µm") / pixel_size_um
        info["sigma_source"] = "given sigma (µm)"
    elif method not in ("blind", "blind-rl"):
        require_side_for_sigma(y.shape, "sigma= (pixels), sigma_um= with pixel_size_um, or psf= (measured with "
                               "xrfgpu.psf.fit_dot or fit_knife_edge on a larger scan)")
        est = _estimate_sigma(y, b, strict=strict, elongation=elongation, weights=weights)
    if est is not None:
        s = float(est.sigma)
        info["sigma_source"] = f"estimated from the map (xrfgpu.psf.estimate_sigma, {est.method})"
        info["sigma_interval"] = est.interval
        info["sigma_reliable"] = est.reliable
        info["sigma_evidence"] = est.evidence
        if est.details and est.details.get("region"):
            info["sigma_region"] = est.details["region"]
        info["sigma_estimated"] = s
        if est.elongated:  # the estimator found an elongated spot: restore with the ellipse
            info["sigma_u_estimated"] = float(est.sigma_u)
            info["sigma_v_estimated"] = float(est.sigma_v)
    # the goal's factors apply to an estimated σ only (a given σ or PSF is used as given)
    sigma_scale, iteration_scale = goal_factors(goal, sigma_estimated=est is not None, method=method)
    info["sigma_scale"] = sigma_scale
    if s is not None:
        if not (s > 0 and math.isfinite(s)):
            raise ValueError(f"sigma must be a positive number of pixels, got {s!r}")
        s *= sigma_scale
        if est is not None and est.elongated:
            # the goal's scale applies to both axes (the ellipse's shape and orientation are kept)
            su, sv, rho = float(est.sigma_u) * sigma_scale, float(est.sigma_v) * sigma_scale, float(est.rho)
            h = _psf_for(su, y, xp=xp, sigma_v=sv, rho=rho)
            info.update(sigma_u=su, sigma_v=sv, rho=rho)
        else:
            h = _psf_for(s, y, xp=xp)
    seconds["sigma"] = time.perf_counter() - clock

    clock = time.perf_counter()
    iterations = None
    if method == "rl":
        from .richardson_lucy import richardson_lucy

        rule = stop
        if rule is None:
            rule = "fixed" if num_iter is not None else "cv"
        accelerate = kwargs.pop("accelerate", True)
        info["accelerate"] = bool(accelerate)  # Biggs-Andrews steps (the stop's runs and the restoration alike)
        if rule in ("cv", "fixed"):
            iterations, cv_count = rl_iteration_count(y, h, background=b, gain=gain, num_iter=num_iter, rule=rule,
                                                      goal=goal, sigma_estimated=est is not None,
                                                      accelerate=accelerate, record=info, **kwargs)
            if est is not None and rule == "cv":  # the caution: a CV count that long distrusts the estimated σ
                careful = caution_sigma(cv_count, s, est.interval)
                info.update(caution_record(cv_count, s, careful, iterations))
                if careful is not None:
                    for key in GOAL_GUARD_KEYS:  # they described the run replaced
                        info.pop(key, None)
                    if est.elongated:  # both axes shrink by the same factor: the ellipse's shape is kept
                        su, sv = info["sigma_u"] * careful / s, info["sigma_v"] * careful / s
                        h = _psf_for(su, y, xp=xp, sigma_v=sv, rho=info["rho"])
                        info.update(sigma_u=su, sigma_v=sv)
                    else:
                        h = _psf_for(careful, y, xp=xp)
                    s, iteration_scale = careful, 1.0
                    iterations, cv_count = rl_iteration_count(y, h, background=b, gain=gain, num_iter=num_iter,
                                                              rule=rule, goal=goal, sigma_estimated=False,
                                                              accelerate=accelerate, **kwargs)
            if cv_count is not None:
                info["cv_iterations"] = cv_count
                seconds["stop"] = time.perf_counter() - clock
                clock = time.perf_counter()
            out = richardson_lucy(y, h, num_iter=iterations, background=b, accelerate=accelerate, **kwargs)
        elif rule == "discrepancy":
            out, iterations = discrepancy_iterations(y, h, background=b, max_iter=num_iter or 500,
                                                     target=kwargs.pop("discrepancy", 1.0),
                                                     accelerate=accelerate, **kwargs)
        else:
            raise ValueError(f"stop must be 'cv', 'discrepancy' or 'fixed', got {stop!r}")
        info["stop"] = rule
    elif method in ("wiener", "tikhonov"):
        from .wiener import restore_recording_weight

        chosen = []
        # y is in (effective) counts: its mean count is its noise where the spectrum cannot give it
        out = restore_recording_weight(method, y, h, background=b, record=chosen, counts=True, **kwargs)
        key = "balance" if method == "wiener" else "lam"
        if chosen:  # "auto" (the default): the weight the map's own noise chose, and that noise
            info[key] = chosen[0].weight
            info[f"{key}_rule"] = "auto: discrepancy principle (xrfgpu.filter_weight)"
            # in the input's units squared (the filter ran in effective counts)
            info["noise_variance"] = chosen[0].noise_variance * gain * gain
            info["noise_band"] = chosen[0].noise_band
            info[f"{key}_bound"] = chosen[0].bound  # "high" / "low": the weight is an end of the searched range
        else:
            info[key] = float(kwargs[key])
    elif method == "fista":
        from .fista import fista

        rule = stop if stop is not None else ("fixed" if num_iter is not None else "cv")
        if rule not in ("cv", "fixed"):
            raise ValueError(f"stop must be 'cv' or 'fixed' with method='fista' ('discrepancy' is RL's), got {stop!r}")
        if rule == "fixed":
            if num_iter is not None:
                kwargs["num_iter"] = int(num_iter)
        else:
            # the count by Poisson-thinning cross-validation (a fixed 25 was worse than the raw map on 14 of 24
            # tuning maps at 20 counts: semi-convergence), on the effective counts rounded, as RL's; num_iter,
            # given with stop="cv", caps it
            kwargs["num_iter"] = fista_iteration_count(y, h, background=b, gain=gain, lam=kwargs.get("lam"),
                                                       nonneg=kwargs.get("nonneg", True), mask=kwargs.get("mask"),
                                                       num_iter=num_iter, record=info)
            seconds["stop"] = time.perf_counter() - clock
            clock = time.perf_counter()
        info["stop"] = rule
        # the λ that ran, in the (effective) counts lam= is applied to: fista()'s rule where none is given (a hot
        # pixel raises it, and with it the whole map's threshold)
        if kwargs.get("lam") is None:
            from .fista import DEFAULT_LAM_RULE, default_lam

            info["lam"] = default_lam(y, b, weights=kwargs.get("mask"), xp=xp)
            info["lam_rule"] = DEFAULT_LAM_RULE
        else:
            info["lam"] = float(kwargs["lam"])
        # the count that runs (recorded as a number, not "default")
        iterations = kwargs.get("num_iter", inspect.signature(fista).parameters["num_iter"].default)
        out = fista(y, h, background=b, **kwargs)
    elif method == "blind":
        from .blind import blind_l0

        kernel_size = kwargs.pop("kernel_size", None)
        if kernel_size is None:
            s0 = s if s is not None else float(psf_module.estimate_sigma(y, strict=strict).sigma)
            kernel_size = 2 * math.ceil(3.0 * s0) + 1
            largest = min(y.shape) // 2
            largest -= 1 - largest % 2
            kernel_size = int(min(max(kernel_size, 7), largest))
        # the map above its background, as every other method restores it (blind_l0 has no background term: the
        # map itself was passed, and the background came back in the result, about twice the input's flux above it)
        result = blind_l0(y - b, kernel_size, **kwargs)
        out = result.image
        s = float(psf_module.sigma_from_kernel(result.kernel).sigma)
        info["sigma_source"] = "blind L0 kernel (Pan et al. 2014), Gaussian fit"
        info["kernel_size"] = kernel_size
    else:  # blind-rl
        from .blind import blind_rl
        from .richardson_lucy import richardson_lucy

        iterations = int(num_iter) if num_iter is not None else 30
        # its RL runs richardson_lucy's own default (unaccelerated) unless accelerate= is passed on
        rl_default = inspect.signature(richardson_lucy).parameters["accelerate"].default
        info["accelerate"] = bool(kwargs.get("accelerate", rl_default))
        result = blind_rl(y, background=b, num_iter=iterations, pixel_size_um=pixel_size_um, **kwargs)
        out = result.image
        s = float(result.sigma)
        h = result.psf
        info["sigma_source"] = "blind L0 kernel → Gaussian fit (xrfgpu.blind.blind_rl)"
    seconds["restore"] = time.perf_counter() - clock
    # the goal's factor on the count applies to the CV stop only
    info["iteration_scale"] = iteration_scale if info.get("stop") == "cv" else 1.0

    if gain != 1.0:
        out = out * gain
    if method == "blind":  # no positivity constraint in the method (its ringing removal subtracts): say how much
        info["negative_fraction_restored"] = float(xp.mean(xp.astype(out < 0, xp.float64)))
        info["restored_min"] = float(xp.min(out))
    if method in ("rl", "blind-rl") and not hasattr(b, "shape"):
        # restored flux against the input's flux above background (both in the input's units)
        # (float64 sums: a float32 map near its largest value overflows a float32 sum)
        # (copy=False: a float64 map is summed as it is, not copied first; the same sums)
        above = float(xp.sum(xp.astype(y, xp.float64, copy=False) - b)) * gain
        info["flux_ratio"] = (float(xp.sum(xp.astype(out, xp.float64, copy=False))) / above if above > 0
                              else float("nan"))
    info["sigma"] = s
    info["sigma_px"] = s  # the command line's record says sigma_px; the same number
    info["sigma_um"] = None if (s is None or pixel_size_um is None) else s * pixel_size_um
    info["iterations"] = iterations
    info["psf_shape"] = None if h is None else tuple(int(n) for n in h.shape)
    info["seconds"] = seconds
    return (out, info) if return_info else out
