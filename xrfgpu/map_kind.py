"""Counts, scaled integers or a fitted map: the one rule every caller asks (:func:`classify_map`).

Richardson–Lucy's cross-validated and discrepancy stops and the Poisson
deviance assume variance = mean, true of detector counts. Non-negative
integers are not always counts: a fitted map stored as integers (µg/cm² ×
1000 in uint16), normalised counts rounded, counts times a calibration factor
rounded. Such a map is ``g`` × counts with ``g ≠ 1`` and must be restored in
effective counts, ``map / g``, as a fitted map is; taken for counts, a ×20 map
makes the stop believe in 20 × more counts than there are, and over-iterate
into noise.

:func:`classify_map` says which of three kinds a map is:

``"fitted"``
    not non-negative integers (:func:`xrfgpu.background.is_count_map` false):
    a fitted or normalised map, whose gain the front door measures.
``"scaled integers"``
    non-negative integers whose noise or value lattice says clearly that one
    photon is not one unit (see :func:`classify_map`, Notes); restored in
    effective counts ``map / gain`` with the gain found here.
``"counts"``
    every other integer map: Poisson counts, gain 1. Where the evidence is
    weak (sparse maps of mostly 0s and 1s, maps too small to measure) the map
    stays counts: a count map must never be reclassified.

The front door (:func:`xrfgpu.front_door.effective_counts`), the command
line (``--gain``) and the joint restoration go through it, so they agree.

References
----------
J. R. Janesick, *Photon Transfer: DN → λ*, SPIE Press (2007),
doi:10.1117/3.725073 (variance against mean of a linear photon detector).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ._backend import array_namespace, to_numpy
from ._validate import as_image
from ._validate import is_count_map as _is_integer_map

__all__ = ["MapKind", "classify_map", "count_lattice_step", "round_stray_values"]

#: a measured photon-transfer gain below this is not counts: on count maps the estimator never read
#: below 0.745 with 4 or more blocks (6912 tuning maps, benchmarks/gain_scenes.py --kind counts); structure
#: only adds variance, and the low readings come from the blocks with no zero at low counts
LOW_GAIN = 0.5
#: fewest blocks the photon-transfer reading needs (fewer: too few flat blocks to say anything)
MIN_BLOCKS = 4
#: the reading's own uncertainty, in standard errors of ln G (spread / √blocks), that must clear LOW_GAIN
GAIN_Z = 2.0
#: fewest distinct values for the value lattice to count as evidence
LATTICE_MIN_VALUES = 8

#: a non-negative map whose non-integer values are at most this share of its nonzero pixels is counts with a few
#: stray values (a dead pixel or column filled from its neighbours, a corrupted value): they are rounded
#: (:func:`round_stray_values`). One filled pixel in a 160² count map had made it "fitted": no element-free area,
#: background 0, 8 iterations, twice the error to the truth. A fitted map's nonzero values are all non-integers.
STRAY_FRACTION_MAX = 0.01
#: ... provided at least this many of its nonzero values are integers (a tiny or empty map decides nothing)
STRAY_MIN_INTEGERS = 100


def round_stray_values(image):
    """A count map with a few non-integer values, those rounded: ``(map, how many)``; ``(None, 0)`` otherwise.

    Parameters
    ----------
    image : array, shape (rows, cols)
        Element map, any array-API namespace, finite.

    Returns
    -------
    rounded : array or None
        ``round(image)`` in its namespace and dtype where the map is non-negative, at most
        :data:`STRAY_FRACTION_MAX` of its nonzero values are not integers (at least one is not), at least
        :data:`STRAY_MIN_INTEGERS` of them are, and the rounded map is a count map
        (:func:`xrfgpu._validate.is_count_map`); else None.
    stray : int
        How many values were not integers (0 with None).

    Examples
    --------
    >>> import numpy as np
    >>> counts = np.random.default_rng(0).poisson(50.0, (64, 64)).astype(np.float64)
    >>> counts[5, 5] = 47.25  # a dead pixel filled by the mean of its neighbours
    >>> rounded, stray = round_stray_values(counts)
    >>> float(rounded[5, 5]), stray
    (47.0, 1)
    >>> round_stray_values(counts * 0.37)[0] is None
    True
    """
    xp = array_namespace(image)
    if not bool(xp.all(image >= 0)):
        return None, 0
    rounded = xp.round(image)
    stray = int(xp.sum(xp.astype(rounded != image, xp.int64)))
    nonzero = int(xp.sum(xp.astype(image != 0, xp.int64)))
    if (stray == 0 or stray > STRAY_FRACTION_MAX * nonzero or nonzero - stray < STRAY_MIN_INTEGERS
            or not _is_integer_map(rounded, xp=xp)):  # (beyond the counts any map holds: not counts either)
        return None, 0
    return rounded, stray


@dataclass(frozen=True)
class MapKind:
    """What a map is, and its effective Poisson gain when it is integers.

    Attributes
    ----------
    kind : {"counts", "scaled integers", "fitted"}
        See :mod:`xrfgpu.map_kind`.
    gain : float or None
        Map units per detected photon: 1 for counts, the measured gain for
        scaled integers, None for a fitted map (measured by the front door).
    note : str
        What the record says (``map_kind`` of :func:`xrfgpu.restore`'s info):
        "counts", or for scaled integers what was measured and how the map is restored.
    evidence : str
        Why (``gain_note`` of the record for an integer map taken for counts).
    measured_gain : float or None
        The photon-transfer reading (:func:`xrfgpu.background.estimate_gain`)
        of an integer map, None when it could not be taken.
    blocks : int
        Blocks that reading used (0 when none).
    lattice_step : float or None
        Spacing of the map's values when they sit on a lattice wider than 1
        (no two values one apart), else None.
    """

    kind: str
    gain: float | None
    note: str
    evidence: str = ""
    measured_gain: float | None = None
    blocks: int = 0
    lattice_step: float | None = None

    @property
    def is_counts(self) -> bool:
        """Whether the map is taken for Poisson counts (gain 1)."""
        return self.kind == "counts"


#: the lattice must be this unlikely (or less) for scattered values: a Poisson map of 10⁶–10⁷ counts
#: per pixel on a 24²–32² crop scatters its values so thinly over their range that none lie one apart
#: (11–40 of 50 such maps read as "lattices" of spacing 2.3–13.5 before this test)
LATTICE_CHANCE = 1e-6


def _lattice_step(values):
    """Spacing of the occupied values of a non-negative integer map, when they sit on a lattice wider than 1.

    ``round(k n)`` with ``k ≥ 2`` never holds two values one apart (consecutive photon counts land at least
    ``k − 1`` apart, rounded up to 2); a Poisson map holds 0 and 1, or neighbours around any level it has
    many pixels at. Returns the spacing ``k`` of the lattice ``v₀ + k j`` through the occupied values
    (every one within 1 of it), or None: values one apart, fewer than :data:`LATTICE_MIN_VALUES` distinct values, or a
    lattice that values scattered at random over the same range would show with a chance above
    :data:`LATTICE_CHANCE` (:func:`_lattice_chance`).
    """
    top = int(values.max())
    if top < 4 * values.size:  # a count of each value (memory ≤ 4 × the map's): linear time, ms at 1024²
        occupied = np.flatnonzero(np.bincount(values.ravel()))
    else:
        occupied = np.unique(values)
    if occupied.size < LATTICE_MIN_VALUES:
        return None
    gaps = np.diff(occupied)
    if gaps.min() < 2:
        return None
    usual = gaps[gaps <= 1.5 * gaps.min()]
    step = float(np.mean(usual))
    # each value's lattice index from the gaps (a gap of j steps is j photon counts no pixel drew), the
    # lattice v₀ + k j through them by least squares (k snapped to an integer within 10⁻⁶: round(10 n)
    # is spaced 10, not 9.9999999), and how far each value lies off it
    index = np.concatenate([[0.0], np.cumsum(np.round(gaps / step))])
    slope, offset = np.polyfit(index, occupied.astype(np.float64), 1)
    if abs(slope - round(slope)) < 1e-6 * slope:
        slope = float(round(slope))
        offset = float(np.round(np.mean(occupied - slope * index)))
    off = float(np.max(np.abs(occupied - (offset + slope * index))))
    if not (slope > 1.5 and off <= 1.0):
        return None
    if _lattice_chance(occupied.size, float(occupied[-1] - occupied[0]), slope, off) > LATTICE_CHANCE:
        return None
    return float(slope)


#: the most photons per pixel a real-valued map's lattice may hold: beyond, float32's own spacing (2⁻²³ of a
#: value) is within the test's tolerance of a lattice step, and values scattered over one binade look like one
SCALED_COUNT_MAX = 2.0**20
#: how far from an integer (in lattice steps) a value may lie, beyond the rounding of its float format
SCALED_COUNT_TOLERANCE = 1e-3
#: a real-valued lattice is taken for counts × its step (count_lattice_step) only where the photon-transfer gain agrees with the
#: step: from SCALED_COUNT_LOW × step (count maps never read below 0.745, see LOW_GAIN; below: a fitted map
#: stored rounded, each step a fraction of a photon: the HXN maps rounded to 2-4 decimals that sit on a lattice
#: read 0.00-0.49 × its step) up to SCALED_COUNT_HIGH × step (above: a map noisier than photons, or quantised
#: non-Poisson data: uniform noise rounded to 1/50 reads 8 × its step). Count maps' texture can read up to 15
#: (LOW_GAIN's notes): such a map keeps the fitted maps' rules
SCALED_COUNT_LOW = 0.7
SCALED_COUNT_HIGH = 3.0


def _scaled_count_step(y):
    """The step ``c`` of a real-valued map whose values are ``c × integers``, or None.

    A count map divided by one number (counts per second at a fixed dwell, counts per I0 read once, a
    count map stored in other units) is real-valued but keeps its photons' lattice: every value is
    ``c n`` with ``n`` a count. The step is the smallest gap between the occupied values (a Poisson map
    holds neighbouring counts wherever it has many pixels at one level), refined by least squares over
    all of them; every value must lie within :data:`SCALED_COUNT_TOLERANCE` of the lattice, with at least
    :data:`LATTICE_MIN_VALUES` distinct values and at most :data:`SCALED_COUNT_MAX` steps. Values scattered
    at random pass with a chance of about ``(2 × 10⁻³)^(values − 2)``. Negative values (a fit's) give None.
    """
    host = np.asarray(to_numpy(y))
    eps = float(np.finfo(host.dtype).eps) if host.dtype.kind == "f" else 0.0
    values = host.astype(np.float64).ravel()
    if not np.all(values >= 0):
        return None
    # a fitted map fails on a sample of its pixels already (a millisecond at 1024², not a sort of them all)
    sample = values[:: max(1, values.size // 4096)]
    if values.size > 2 * sample.size and _lattice_through(sample, eps) is None:
        return None
    return _lattice_through(values, eps)


def _lattice_through(values, eps):
    """The step of the lattice ``c n`` (n ≥ 1) through the positive ``values``, or None (see :func:`_scaled_count_step`)."""
    occupied = np.unique(values[values > 0])
    if occupied.size < LATTICE_MIN_VALUES:
        return None
    step = float(np.min(np.diff(occupied)))
    if not (step > 0 and occupied[-1] / step <= SCALED_COUNT_MAX):
        return None
    # the smallest gap is off by the rounding of its two values (2⁻²³ of each, not of the gap): it only numbers
    # the values (each within a quarter step of its count); the step is then the least-squares one through
    # them all, and every value must lie on that lattice within the tolerance
    for tolerance in (0.25, None, SCALED_COUNT_TOLERANCE):
        index = np.round(occupied / step)
        if np.any(index < 1):
            return None
        if tolerance is not None and np.any(np.abs(occupied / step - index) > tolerance + 8 * eps * index):
            return None
        step = float(np.sum(occupied * index) / np.sum(index * index))
    return step


def count_lattice_step(image, gain):
    """The step ``c`` when ``image`` is counts divided by one number, with the photon noise to say so; else None.

    Counts divided by one number (counts per second at a fixed dwell, per I0 read once, a count map stored
    in other units) are real-valued, and :func:`classify_map` calls them fitted, but no spectrum fit removed
    their background. Their values keep the photons' lattice ``c n`` (``n`` a count), which a fit's output
    never holds. The lattice counts only where the map's photon-transfer gain ``gain`` (map units per count,
    :func:`xrfgpu.background.estimate_gain`) agrees with its step: :data:`SCALED_COUNT_LOW` × ``c`` to
    :data:`SCALED_COUNT_HIGH` × ``c``.

    Parameters
    ----------
    image : array, shape (rows, cols)
        The map, any array-API namespace (its values are read on the host).
    gain : float
        Its measured gain, in the same units (1 for a map already in effective counts).

    Returns
    -------
    float or None
        The lattice step, map units per count.
    """
    step = _scaled_count_step(image)
    if step is None or not SCALED_COUNT_LOW * step <= float(gain) <= SCALED_COUNT_HIGH * step:
        return None
    return step


def _lattice_chance(n, span, spacing, off):
    """Chance that ``n`` values scattered at random over ``span`` integers look like this lattice.

    Two signs: no two of the values one apart, ``exp(−(n − 1)² / span)`` (each of the ``n − 1`` gaps is
    1 with chance ≈ ``(n − 1) / span``; strong where the values crowd their range, as ``round(3 n)`` of a
    few hundred counts does), and every value within ``off`` of the fitted lattice of ``spacing``,
    ``(m / spacing)^(n − 2)`` with ``m = ⌊2 off⌋ + 1`` the integers that close to a lattice point (two
    values fix the lattice; strong for a wide spacing, ``round(1000 n)``, and for an integer one, where
    ``round(3 n)`` sits on the lattice exactly). Scattered values show the two nearly independently (one is
    about neighbouring differences, the other about residues), so the chance is their product.
    """
    crowded = math.exp(-((n - 1) ** 2) / max(span, 1.0))
    near = math.floor(2.0 * off + 1e-9) + 1
    aligned = min(1.0, near / spacing) ** max(n - 2, 0)
    return crowded * aligned


def classify_map(image):
    """Counts, scaled integers or fitted: the kind of an element map and, for integers, its gain.

    Parameters
    ----------
    image : array, shape (rows, cols)
        Element map, any array-API namespace; missing pixels already filled
        (:func:`xrfgpu.front_door.filled_for_estimators`).

    Returns
    -------
    MapKind
        ``kind``, ``gain`` (map units per photon: 1 for counts), the record's ``note``.

    Notes
    -----
    A map that is not non-negative integers is ``"fitted"`` (see :func:`count_lattice_step` for one
    that is counts divided by one number), unless at most 1 % of its nonzero values are not integers
    (:func:`round_stray_values`: filled dead pixels): it is then classified rounded, and the evidence says
    how many values were rounded. An integer map is
    ``"scaled integers"`` when either

    * its values sit on a lattice of spacing ≥ 2 (no two occupied values one
      apart, at least :data:`LATTICE_MIN_VALUES` of them, each within 1 of
      ``v₀ + k j``), which values scattered at random over their range would
      show with a chance below :data:`LATTICE_CHANCE`: ``round(k · counts)``
      with ``k ≥ 2``. The gain is the fitted spacing, ``k`` itself; the test
      is blind to the scene, where the photon-transfer reading is not;
    * or its photon-transfer gain ``G`` (:func:`xrfgpu.background.estimate_gain`,
      variance / mean over ``blocks`` flat blocks, relative spread ``s``),
      measured on at least :data:`MIN_BLOCKS` blocks, lies clearly below what
      count maps read, with its own uncertainty: ``ln G + 2 s/√blocks <
      ln 0.5``. The gain is ``G``.

    Only the low side of ``G`` is evidence. Structure the flat blocks do not
    escape adds variance, never removes it, and it grows with the counts: on
    Poisson count maps of the tuning scenes (8 families, 48²–256², σ 0.4–4
    px, 20/2 to 3000/50 counts, plain, with a ×0.5–2 flat field or a dead
    column; ``benchmarks/gain_scenes.py --set tuning|tuning-more --kind
    counts``, 6912 maps) ``G`` read 0.745–15.2 with 4 or more blocks, the
    top on pixel-scale texture at 3000 counts; the real HXN Fe map in counts
    (up to 3·10⁵) reads 1.00 whole and 24.7 on a 64² window inside its
    particle aggregate (``benchmarks/hxn_integer_map.py``). No bound above 1
    holds for every count map, so a high ``G`` alone never reclassifies one.
    Below 1 only the blocks with no zero at low counts pull ``G`` down.

    Otherwise it is ``"counts"`` with gain 1: a map of mostly 0s and 1s has
    neighbouring values and too few blocks without a zero to measure, and
    stays counts. So does a scaled map the two tests cannot see: ``round(k ·
    counts)`` with ``1 < k < 2`` (no lattice) and a fitted map stored as
    integers with a gain above 0.5 whose fit noise fills the integers between
    its photon steps (no lattice): divide it by its storage scale (``map /
    1000`` for µg/cm² × 1000) and it is a fitted map again, its gain measured.
    ``k < 1`` (``round(0.25 · counts)``): each unit is several photons,
    quantised; its photon-transfer gain reads ``k + 1/(12 k μ)`` (the
    rounding adds 1/12 to the variance) and below 0.5 it is detected; where
    it is not, taking it for counts under-counts its photons, and the stops
    then stop early, the safe side.

    Examples
    --------
    >>> import numpy as np
    >>> from xrfgpu.map_kind import classify_map
    >>> counts = np.random.default_rng(0).poisson(200.0, (96, 96))
    >>> classify_map(counts).kind, classify_map(counts * 1000).kind, classify_map(counts * 1000).gain
    ('counts', 'scaled integers', 1000.0)
    >>> classify_map(counts * 0.01).kind
    'fitted'

    Backends
    --------
    Any array-API namespace; the tests run on the host with NumPy.
    """
    from .background import estimate_gain

    xp = array_namespace(image)
    y = as_image(image, xp=xp)
    if not _is_integer_map(y, xp=xp):
        rounded, stray = round_stray_values(y)
        if rounded is None:
            return MapKind("fitted", None, "fitted (not integer counts): restored in effective counts = map / gain")
        kind = classify_map(rounded)
        return replace(kind, evidence=f"{kind.evidence}; {stray} non-integer "
                                      f"{'value' if stray == 1 else 'values'} (at most {STRAY_FRACTION_MAX:.0%} of "
                                      "the nonzero ones: filled or corrupted pixels) rounded")
    values = np.asarray(to_numpy(y)).astype(np.int64)
    try:
        reading = estimate_gain(y)
        measured, blocks, spread = float(reading), reading.blocks, reading.spread
    except ValueError:  # too small, or no block without a zero (a sparse map)
        measured, blocks, spread = None, 0, math.inf
    # beyond 2^24 (float32) or 2^53 (float64) the working precision itself spaces the integers 2 or more
    # apart: every such map sits on a lattice, of the float format, not of photons (a Poisson map of 10⁸
    # counts per pixel read as spacing 8)
    exact = 2.0 ** (np.finfo(np.asarray(to_numpy(y[:1, :1])).dtype).nmant + 1)
    step = _lattice_step(values) if float(values.max()) < exact else None
    if step is not None:
        how = (f"values on a lattice of spacing {step:.4g} (no two one apart)"
               + (f", variance/mean {measured:.4g} over {blocks} blocks" if measured is not None else ""))
        return MapKind("scaled integers", step,
                       f"integers, but not counts: {how}; restored in effective counts = map / {step:.4g}",
                       how, measured, blocks, step)
    if measured is not None and measured > 0 and math.isfinite(measured) and blocks >= MIN_BLOCKS:
        margin = GAIN_Z * (spread if math.isfinite(spread) else math.inf) / math.sqrt(blocks)
        ln_gain = math.log(measured)
        if ln_gain + margin < math.log(LOW_GAIN):
            how = f"variance/mean = {measured:.4g} measured over {blocks} blocks"
            return MapKind("scaled integers", measured,
                           f"integers, but not counts: {how}; restored in effective counts = map / {measured:.4g}",
                           how, measured, blocks)
    if measured is None:
        why = "variance/mean not measurable (map too small, or a zero in every block)"
    else:
        why = f"variance/mean = {measured:.4g} over {blocks} blocks, not clearly below 1"
    return MapKind("counts", 1.0, "counts", f"integers taken for counts: no value lattice; {why}", measured, blocks)
