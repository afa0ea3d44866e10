"""Background level and noise scale of an element map: counts or fitted (PyXRF / MAPS) values.

Three questions the front door (:func:`xrfgpu.restore`) asks of a map
before restoring it:

* is it a map of Poisson counts, or a fitted / normalised map
  (µg/cm², counts per second per I0, …)? (:func:`is_count_map`)
* if fitted, what is its effective Poisson gain ``g`` — the map's units per
  detected photon — so that ``map / g`` behaves like counts?
  (:func:`estimate_gain`, photon-transfer style)
* what is the background, the level of its element-free areas?
  (:func:`estimate_background`, never above a low quantile of the map)

References
----------
J. R. Janesick, *Photon Transfer: DN → λ*, SPIE Press (2007),
doi:10.1117/3.725073 (variance against mean of a linear photon detector).
J. Yang, Z. Zhang, Q. Cheng, J. Anal. At. Spectrom. 37, 750 (2022),
doi:10.1039/d1ja00425e (Richardson–Lucy with the background in the model).
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

from ._backend import array_device, array_namespace, is_numpy_namespace, to_numpy
from ._validate import as_image

__all__ = ["GainEstimate", "element_free_depth", "estimate_background", "estimate_gain", "is_count_map"]

# the background never exceeds this quantile of the map smoothed by a CAP_WINDOW box (see estimate_background)
CAP_QUANTILE = 0.25
CAP_WINDOW = 15


def is_count_map(image) -> bool:
    """Whether a map holds non-negative integer counts (what the Poisson split and discrepancy need).

    Parameters
    ----------
    image : array, shape (rows, cols)
        Any array-API namespace.

    Returns
    -------
    bool
        True when every value is a non-negative integer, at most
        :data:`xrfgpu._validate.MAX_COUNT` (larger integer-valued maps are
        not counts of any measurement and would overflow the int64 split).
    """
    from ._validate import is_count_map as _counts

    return _counts(image, xp=array_namespace(image))


def _box_mean_valid(x, k, *, xp):
    """Mean of every ``k × k`` window inside ``x`` (valid mode), by a summed-area table.

    On NumPy the table is summed into one zero-bordered buffer and the four corners are combined in
    one output array: the same operations in the same order as the array-API path (the same numbers),
    without its two concatenated copies of the table and two full-size temporaries.
    """
    rows, cols = x.shape
    if is_numpy_namespace(xp):
        c = np.zeros((rows + 1, cols + 1), dtype=x.dtype)
        np.cumsum(x, axis=0, out=c[1:, 1:])
        np.cumsum(c[1:, 1:], axis=1, out=c[1:, 1:])
        out = np.subtract(c[k:, k:], c[:-k, k:])
        out -= c[k:, :-k]
        out += c[:-k, :-k]
        out /= float(k * k)
        return out
    dev = array_device(x)
    c = xp.cumulative_sum(xp.cumulative_sum(x, axis=0), axis=1)
    c = xp.concat([xp.zeros((1, cols), dtype=x.dtype, device=dev), c], axis=0)
    c = xp.concat([xp.zeros((rows + 1, 1), dtype=x.dtype, device=dev), c], axis=1)
    return (c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]) / float(k * k)


def _smoothed_quantiles(y, k, qs, *, xp):
    """The quantiles ``qs`` (ranks ``int(q (n − 1))``) of the ``k × k`` box means of ``y``, one sort for all."""
    dtype = xp.float64 if hasattr(xp, "float64") else y.dtype
    if is_numpy_namespace(xp):
        # a float64 map is summed as it is (no copy); only the ranks asked for are put in place (a
        # partition gives the values a full sort puts at those ranks, exactly, in linear time)
        smooth = _box_mean_valid(np.asarray(y, dtype=dtype), k, xp=xp).reshape(-1)
        ranks = [int(q * (smooth.shape[0] - 1)) for q in qs]
        smooth.partition(sorted(set(ranks)))
        return [float(smooth[r]) for r in ranks]
    smooth = xp.reshape(_box_mean_valid(xp.astype(y, dtype), k, xp=xp), (-1,))
    ranked = xp.sort(smooth)
    return [float(ranked[int(q * (ranked.shape[0] - 1))]) for q in qs]


def _smoothed_quantile(y, k, q, *, xp):
    return _smoothed_quantiles(y, k, (q,), xp=xp)[0]


def _lowest_inner_box_mean(y, k, *, xp):
    """The lowest ``k × k`` box mean of ``y`` at least one box (``k`` px) inside its border.

    A scan's first and last lines are where it is least like the rest of the map: the beam and stage
    settling at the start (the HXN maps' first four rows ramp up from 0.007 to 0.05 µg/cm², where the
    map's ground is about 0.02), and a last line left unfinished and filled with zeros. The lowest local
    mean, a single box, fell there: one row cropped off moved the HXN Fe background by 37 %, a zero last
    row moved a count map's from 111 to 92 counts and its iteration count from 18 to 9. A map under three
    boxes a side keeps every box.
    """
    rows, cols = y.shape[-2:]
    inner = y[k:rows - k, k:cols - k] if min(rows, cols) >= 3 * k else y
    dtype = xp.float64 if hasattr(xp, "float64") else y.dtype
    if is_numpy_namespace(xp):
        return float(np.min(_box_mean_valid(np.asarray(inner, dtype=dtype), k, xp=xp)))
    return float(xp.min(_box_mean_valid(xp.astype(inner, dtype), k, xp=xp)))


def estimate_background(image, *, window=5, quantile=0.02, poisson=True):
    """Background level of a count map: the low level of its element-free areas.

    Parameters
    ----------
    image : array, shape (rows, cols)
        Count map (any array-API namespace). For a fitted map, divide by
        its gain first (:func:`estimate_gain`).
    window : int
        Side of the box mean that smooths the counts before ranking, pixels.
    quantile : float
        Fraction of (smoothed) pixels taken to lie at or below the background.
    poisson : bool
        Correct the quantile for the Poisson noise left after smoothing (see
        Notes). Leave False for maps that are not counts.

    Returns
    -------
    float
        Background, counts per pixel; never above the 25 % quantile of the
        map smoothed by a 15 × 15 box (or the largest box that fits), nor
        above its lowest local mean (see Notes).

    Raises
    ------
    ValueError
        Map smaller than the window, NaN/inf, bad ``window``/``quantile``.

    Notes
    -----
    A micro-XRF line sits on a background (scatter, the continuum, tails of
    neighbouring lines) that is present everywhere; where the element is
    absent the map shows only that background. The map is smoothed by a
    ``window × window`` box (noise σ reduced ``window`` times), and the
    ``quantile`` of the smoothed values is read. For a Poisson background
    ``b`` that quantile lies ``z σ_s`` below ``b``, with
    ``z = −Φ⁻¹(quantile)`` and ``σ_s = √b / window``; the estimate solves
    ``b = q + z √b / window`` (two fixed-point steps).

    Nor is it above the lowest local mean of the map: the smallest
    ``window × window`` box mean at least one box inside the map's border
    (a scan's first and last lines, where the beam settles or a last line
    was left unfinished, are least like the rest; a map under three boxes a
    side keeps every box) plus √(2 ln n) σ_s, n the number of
    pixels, the depth by which the lowest of n independent box means of a
    flat Poisson map can fall below its mean (the boxes overlap, so they are
    fewer independent ones and this allowance errs high; with n / window²
    the USAF chart's background fell 0.7 counts below its glass). A map with no element-free area (a
    160² Voronoi mosaic at σ = 6 px) gave 156 against a true 100 before
    this cap, and Richardson–Lucy under a background above part of the map
    ran to its 500-iteration cap with an MSE 5.6× the raw map's; with it,
    about 124 and a few dozen iterations at about 0.77×.

    The Poisson correction is only right for counts; on a map in other
    units (a fitted map in µg/cm², 0–0.05) it can exceed the map's maximum,
    and a background above the map erases it. So the result is capped at
    the 25 % quantile of the map smoothed by a 15 × 15 box: at least a
    quarter of any map lies at or above its background, and the wider box
    leaves little noise in that quantile. (The 10 % quantile was tried
    first; on the USAF chart, whose glass level wanders with the tube's
    drift, it set the background 1.5 counts below the glass, 135.5 against
    137.0, and the CV stop a few iterations short.) Where no pixel is free
    of the element the result is the map's low level.

    Examples
    --------
    >>> import numpy as np
    >>> from xrfgpu.background import estimate_background
    >>> counts = np.random.default_rng(0).poisson(100.0, (128, 128))
    >>> abs(estimate_background(counts) - 100.0) < 2.0
    True

    Backends
    --------
    Any array-API namespace.
    """
    xp = array_namespace(image)
    y = as_image(image, xp=xp)
    k = int(window)
    if k != window or k < 1:
        raise ValueError(f"window must be a positive integer, got {window!r}")
    if min(y.shape) < k:
        raise ValueError(f"map {y.shape} is smaller than the {k}x{k} window")
    q = float(quantile)
    if not 0.0 < q < 0.5:
        raise ValueError(f"quantile must lie in (0, 0.5), got {quantile!r}")
    level = _smoothed_quantile(y, k, q, xp=xp)
    lowest = _lowest_inner_box_mean(y, k, xp=xp)
    cap = _smoothed_quantile(y, min(CAP_WINDOW, min(y.shape)), CAP_QUANTILE, xp=xp)
    if not poisson:
        return min(level, cap)
    z = -NormalDist().inv_cdf(q)
    b = max(level, 0.0)
    for _ in range(2):
        b = level + z * math.sqrt(max(b, 0.0)) / k
    # nor above the lowest local mean: the smallest k × k box mean plus the depth by which the
    # lowest of n Poisson box means can fall below its mean, √(2 ln n) σ_s (n = the number of
    # pixels: overlapping boxes are fewer independent ones, so this allowance errs high)
    n_boxes = max(float(y.shape[0] * y.shape[1]), 2.0)
    floor_cap = lowest + math.sqrt(2.0 * math.log(n_boxes)) * math.sqrt(max(lowest, 0.0)) / k
    return max(min(b, cap, floor_cap), 0.0)


def element_free_depth(image, *, window=5):
    """How far the map's lowest local mean lies below its typical one, against what noise alone gives.

    Parameters
    ----------
    image : array, shape (rows, cols)
        Map in (effective) counts: a fitted map divided by its gain.
    window : int
        Side of the box mean, pixels (as :func:`estimate_background`).

    Returns
    -------
    depth : float
        ``(median − lowest)`` of the ``window × window`` box means (the lowest
        read at least one box inside the border, as :func:`estimate_background` does), in noise
        spreads of one box mean of a flat Poisson map at the median level,
        ``√median / window``.
    allowance : float
        ``√(2 ln n) + 1``, n the number of pixels: how deep the lowest of n
        box means of a flat map can fall by noise alone (``√(2 ln n)``, the
        allowance :func:`estimate_background` adds to its lowest local mean),
        plus one spread for that lowest value's own scatter (about 0.3
        spreads, Gumbel). A map whose ``depth`` stays within it shows no area
        free of the element. Flat Poisson maps (40 seeds each of 64² and 160²
        at 400 counts, 11² at 300, 256² at 5, 32² at 2) reached at most 4.9,
        their ``√(2 ln n)`` + 0.4.

    Notes
    -----
    On the real maps: the NSLS-II HXN nanoparticle maps (Fe, Cr, S, P, Si in
    effective counts) have depths 28–164 against an allowance of 5.5
    (element-free areas between the particles); the APS AXO thin-film
    standard (11 × 11 pixels, a uniform film) has 1.3–2.7 against 4.1 on
    Al, Si, K, Ca, Ti, Cr and Fe.
    """
    xp = array_namespace(image)
    y = as_image(image, xp=xp)
    k = int(window)
    if k != window or k < 1 or min(y.shape) < k:
        raise ValueError(f"window must be a positive integer no larger than the map {y.shape}, got {window!r}")
    median = _smoothed_quantile(y, k, 0.5, xp=xp)
    lowest = _lowest_inner_box_mean(y, k, xp=xp)
    spread = math.sqrt(max(median, 1e-300)) / k
    allowance = math.sqrt(2.0 * math.log(max(float(y.shape[0] * y.shape[1]), 2.0))) + 1.0
    return (median - lowest) / spread, allowance


class GainEstimate(float):
    """Effective Poisson gain (map units per count), a float with the evidence attached.

    Attributes
    ----------
    blocks : int
        Number of flat blocks used.
    spread : float
        Relative spread (interquartile / median / 1.349) of the per-block ratios.
    """

    blocks: int
    spread: float

    def __new__(cls, value, *, blocks, spread):
        self = super().__new__(cls, value)
        self.blocks = int(blocks)
        self.spread = float(spread)
        return self


#: a block whose variance / mean exceeds this multiple of the lower quartile of the blocks' holds structure,
#: not noise
_STRUCTURE_CLIP = 2.0


def _clip_structure(ratios):
    """Drop the blocks whose variance / mean is above ``_STRUCTURE_CLIP`` × the lower quartile, until none is.

    Structure only adds variance to a block, so the blocks of flat ground cluster at the low end. The
    noise-only ratios spread by about 20 % (a χ²-like sum over a block of 64 correlated Laplacian
    values): twice their lower quartile is about four of their standard deviations above their mean,
    so it keeps them all and removes the blocks where structure the smoothed-gradient test did not see
    dominates. The reference is the lower quartile, not the median, because the flat ground may be a
    minority even of the flatter half: with a third of a 96² map flat and two thirds carrying a
    pixel-scale texture the median took textured blocks for noise (4× the gain; the mirrored map had
    passed only because the old single grid of tiles happened to keep one more flat column). The
    quartile is recomputed after each cut (at most a few passes); at least one block always remains.
    Chosen on ``benchmarks/gain_scenes.py --set tuning`` among the 10th–33rd percentiles and factors
    2–2.5.
    """
    r = np.asarray(ratios, dtype=np.float64)
    while r.size > 1:
        kept = r[r <= _STRUCTURE_CLIP * np.quantile(r, 0.25)]
        if kept.size == r.size:
            break
        r = kept
    return r


def estimate_gain(image, *, block=8):
    """Effective Poisson gain of a map: its units per detected count (photon transfer).

    Parameters
    ----------
    image : array, shape (rows, cols)
        Element map (counts, or fitted / normalised values), any array-API
        namespace. At least 2 × 2 blocks.
    block : int
        Side of the square blocks over which mean and variance are taken, pixels.

    Returns
    -------
    GainEstimate
        ``g`` (a float) such that ``image / g`` has variance ≈ mean, as
        Poisson counts do; 1 for counts. ``.blocks`` and ``.spread`` say on
        how many blocks and how consistently it was measured.

    Raises
    ------
    ValueError
        Too small a map, NaN/inf, or no block with a positive mean and no
        zero (nothing to measure the noise on).

    Notes
    -----
    A fitted XRF map is, to a good approximation, ``g`` times a Poisson
    count map: the fit divides the counts by a scaler (I0, dwell) and a
    calibration factor, which are nearly constant over a map. Its variance
    is then ``g`` times its mean (a photon-transfer curve through the
    origin). The noise variance is read from the discrete Laplacian
    ``d = (4 y − Σ 4 neighbours) / √20`` — unit gain for white noise, and
    nearly blind to the smooth blurred structure — as the mean of ``d²``
    over ``block × block`` tiles; each tile gives a ratio ``var / mean``.
    The tiles come from the grids flush with each of the map's corners (one
    grid where they fill the map), so a map read upside down or mirrored
    gives the same tiles and the same gain (one grid flush with the top-left
    corner measured a 64² crop of the HXN Fe map at 0.97–40× the whole map's
    gain by orientation; ``tests/test_gain_orientation.py``). Tiles with a
    zero (fitted maps are clipped at 0, which cuts the noise) or a
    non-positive mean are left out; ``g`` is the mean ratio over the
    flatter half of the tiles (lower gradient energy of the map smoothed
    over 2 px, which carries little of the tile's own noise), so that edges, where the blurred structure adds
    to ``d``, do not count. Of those, tiles whose ratio exceeds twice the lower quartile are dropped
    (repeatedly): structure only adds variance, and where much of the map is structured (a crop
    inside a particle aggregate) the flatter half still holds textured tiles whose ratios are tens to
    hundreds of times the noise's. ``blocks`` counts the tiles kept.

    Examples
    --------
    >>> import numpy as np
    >>> from xrfgpu.background import estimate_gain
    >>> counts = np.random.default_rng(0).poisson(50.0, (128, 128))
    >>> abs(estimate_gain(counts * 0.01) / 0.01 - 1.0) < 0.1
    True

    Backends
    --------
    Any array-API namespace; the tiles are reduced on the host with NumPy.
    """
    xp = array_namespace(image)
    y = np.asarray(to_numpy(as_image(image, xp=xp)), dtype=np.float64)
    k = int(block)
    if k != block or k < 2:
        raise ValueError(f"block must be an integer >= 2, got {block!r}")
    rows, cols = y.shape
    if rows < 2 * k + 2 or cols < 2 * k + 2:
        raise ValueError(f"map {y.shape} is too small to measure its noise in {k}x{k} blocks")
    core = y[1:-1, 1:-1]
    lap = (4.0 * core - y[:-2, 1:-1] - y[2:, 1:-1] - y[1:-1, :-2] - y[1:-1, 2:]) / math.sqrt(20.0)
    # structure, nearly free of the tile's own noise: gradient energy of the map smoothed over 2 px
    from scipy import ndimage

    smooth = ndimage.gaussian_filter(y, 2.0, mode="nearest")
    grad = ((smooth[2:, 1:-1] - smooth[:-2, 1:-1]) ** 2 + (smooth[1:-1, 2:] - smooth[1:-1, :-2]) ** 2)
    nr, nc = core.shape[0] // k, core.shape[1] // k
    # the grids flush with each corner (one grid where the tiles fill the map): the same tiles, mirrored,
    # whichever way up the map is read
    offsets = sorted({(r0, c0) for r0 in (0, core.shape[0] - nr * k) for c0 in (0, core.shape[1] - nc * k)})

    def per_tile(a, reduce):
        # each grid's tiles as a (nr, k, nc, k) view of the map (splitting axes never copies), reduced over
        # the tile's two axes: no copy of the map per grid (four float64 copies of three maps took the
        # process to 3.0 GB and 2.5 s at 4096² before; 1.06 GB and 1.6 s now)
        return np.concatenate([reduce(a[r0 : r0 + nr * k, c0 : c0 + nc * k].reshape(nr, k, nc, k), axis=(1, 3))
                               .reshape(nr * nc) for r0, c0 in offsets])

    def repeats_a_line(same, along):
        # a tile in which one row (or column) repeats the next exactly across the tile: the nearest-pixel fill
        # of a band of missing lines (xrfgpu.front_door.filled_for_estimators) or a line written twice, whose
        # variance is no noise (25 filled rows made a count map read gain 0.18, "integers, but not counts");
        # Poisson counts that clear the no-zero test below repeat k values exactly with negligible chance.
        # ``same``: pixel equals its next neighbour down (along=3: all of a tile's row) or across (along=1);
        # a tile's (nr, k, nc, k) view is reduced over the line (all) and then over the tile's lines (any)
        return np.concatenate([
            np.any(np.all(same[r0 : r0 + nr * k, c0 : c0 + nc * k].reshape(nr, k, nc, k), axis=along),
                   axis=1 if along == 3 else 2).reshape(nr * nc) for r0, c0 in offsets])

    same_down = np.zeros(core.shape, dtype=bool)
    same_down[:-1] = core[1:] == core[:-1]  # pixel equals the one below it
    same_across = np.zeros(core.shape, dtype=bool)
    same_across[:, :-1] = core[:, 1:] == core[:, :-1]  # pixel equals the one to its right
    mean = per_tile(core, np.mean)
    ok = (mean > 0) & (per_tile(core, np.min) > 0)
    unrepeated = ok & ~repeats_a_line(same_down, 3) & ~repeats_a_line(same_across, 1)
    if np.any(unrepeated):  # a map that repeats lines everywhere (a constant map) is read as before: gain 0
        ok = unrepeated
    if not np.any(ok):
        raise ValueError("no block with a positive mean and no zero: the map's noise cannot be measured")
    var = per_tile(lap * lap, np.mean)[ok]
    ratio = var / mean[ok]
    energy = per_tile(grad, np.mean)[ok] / np.maximum(mean[ok], 1e-300)
    flat = energy <= np.median(energy)
    r = _clip_structure(ratio[flat] if np.count_nonzero(flat) >= 4 else ratio)
    # the mean ratio: the median of a χ²-like spread sits below its mean
    med = float(np.mean(r))
    q1, q3 = np.quantile(r, [0.25, 0.75])
    return GainEstimate(med, blocks=r.size, spread=float((q3 - q1) / 1.349 / med) if med > 0 else math.inf)
