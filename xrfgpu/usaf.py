"""USAF-1951 resolution target and an objective "smallest resolved element".

The chart follows the MIL-STD-150A bar geometry: group ``G``, element ``E``
has the spatial frequency

``R = 2^(G + (E − 1)/6)`` line pairs per mm,

bars of width ``w = 1/(2R)`` mm, length ``5 w``, three bars per block with
gaps equal to the width (each block is a ``5w × 5w`` square), one block with
vertical and one with horizontal bars per element. The *arrangement* is
simplified: groups stand in columns from coarse (left) to fine (right),
elements 1–6 down each column, and the chart carries one large chrome square
(the paper's knife-edge square, also the chrome reference level) and an equal
empty glass patch (the glass reference level). Bars are rasterised by exact
area coverage (anti-aliased): a pixel holds the fraction of its area under
chrome, so the image is 1 on chrome and 0 on glass as in the paper.

:func:`smallest_resolved` replaces the paper's reading by eye with a stated
test; see its Notes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "Block",
    "Chart",
    "ElementResult",
    "Resolution",
    "bar_width_um",
    "chart",
    "lp_per_mm",
    "smallest_resolved",
]


def lp_per_mm(group, element):
    """Spatial frequency of a USAF-1951 element, ``2^(G + (E − 1)/6)`` lp/mm."""
    element = int(element)
    if not 1 <= element <= 6:
        raise ValueError(f"element must be 1..6, got {element}")
    return 2.0 ** (int(group) + (element - 1) / 6.0)


def bar_width_um(group, element):
    """Bar (and gap) width of an element in µm: ``1000 / (2 R)``."""
    return 1000.0 / (2.0 * lp_per_mm(group, element))


@dataclass(frozen=True)
class Block:
    """One block of three bars, coordinates in µm from the chart's top-left corner.

    ``orientation`` names the direction of the bars: ``"vertical"`` bars are
    long along the rows (the profile runs along the columns), ``"horizontal"``
    bars are long along the columns (the profile runs along the rows).
    ``box`` is ``(top, bottom, left, right)``; ``bars`` are three such
    rectangles, ordered along the profile.
    """

    group: int
    element: int
    orientation: str
    width_um: float
    box: tuple
    bars: tuple

    @property
    def lp_per_mm(self):
        return lp_per_mm(self.group, self.element)


@dataclass
class Chart:
    """A rasterised chart and its geometry.

    Attributes
    ----------
    image : ndarray of float64, shape (rows, cols)
        Chrome coverage per pixel, 1 on chrome, 0 on glass.
    pixel_size_um : float
        Pixel size of ``image`` in µm.
    blocks : list of Block
        Every bar block, coarse to fine.
    square : tuple
        ``(top, bottom, left, right)`` of the chrome reference square, µm.
    glass : tuple
        The empty glass reference patch, µm.
    groups : tuple of int
    """

    image: np.ndarray
    pixel_size_um: float
    blocks: list
    square: tuple
    glass: tuple
    groups: tuple = field(default=())

    @property
    def shape(self):
        return self.image.shape

    def elements(self):
        """``[(group, element), ...]`` from coarse to fine."""
        seen = []
        for b in self.blocks:
            key = (b.group, b.element)
            if key not in seen:
                seen.append(key)
        return seen

    def to_pixels(self, rect):
        """A µm rectangle as fractional pixel edges ``(top, bottom, left, right)``."""
        return tuple(v / self.pixel_size_um for v in rect)


def _coverage_1d(lo, hi, n, pixel):
    """Fraction of each of ``n`` pixels of size ``pixel`` inside ``[lo, hi)``."""
    edges = np.arange(n + 1) * pixel
    return np.clip(np.minimum(hi, edges[1:]) - np.maximum(lo, edges[:-1]), 0.0, None) / pixel


def _paint(image, rect, pixel):
    """Add the exact area coverage of the rectangle ``rect`` (µm) to ``image``."""
    top, bottom, left, right = rect
    r0, r1 = max(int(math.floor(top / pixel)), 0), min(int(math.ceil(bottom / pixel)), image.shape[0])
    c0, c1 = max(int(math.floor(left / pixel)), 0), min(int(math.ceil(right / pixel)), image.shape[1])
    if r1 <= r0 or c1 <= c0:
        return
    rows = _coverage_1d(top - r0 * pixel, bottom - r0 * pixel, r1 - r0, pixel)
    cols = _coverage_1d(left - c0 * pixel, right - c0 * pixel, c1 - c0, pixel)
    image[r0:r1, c0:c1] += np.outer(rows, cols)


def _block(group, element, orientation, top, left):
    w = bar_width_um(group, element)
    box = (top, top + 5 * w, left, left + 5 * w)
    if orientation == "vertical":
        bars = tuple((top, top + 5 * w, left + 2 * k * w, left + (2 * k + 1) * w) for k in range(3))
    else:
        bars = tuple((top + 2 * k * w, top + (2 * k + 1) * w, left, left + 5 * w) for k in range(3))
    return Block(group, element, orientation, w, box, bars)


def chart(pixel_size_um=5.0, groups=range(2, 8), oversample=1, *, margin_um=250.0, square_um=None):
    """Rasterise a USAF-1951 chart (groups ``groups``, elements 1–6) by area coverage.

    Parameters
    ----------
    pixel_size_um : float
        Scan step, µm per pixel (the paper: 5 µm).
    groups : iterable of int
        Groups to draw, e.g. ``range(2, 8)`` for the paper's G2–G7.
    oversample : int
        Render at ``pixel_size_um / oversample`` (a finer truth for a
        simulator that blurs before sampling); geometry stays in µm.
    margin_um : float
        Glass around the pattern, µm.
    square_um : float, optional
        Side of the chrome reference square and of the glass patch, µm;
        default ``max(5 w(G_min, 1), 600)``.

    Returns
    -------
    Chart
        ``.image`` (float64, 1 = chrome, 0 = glass, fractional on edges) and
        the geometry of every block (µm), the square and the glass patch.

    Raises
    ------
    ValueError
        Non-positive pixel size or oversample, empty or duplicate groups.

    Notes
    -----
    Per element ``R = 2^(G+(E−1)/6)`` lp/mm and bar width ``1/(2R)`` mm
    (MIL-STD-150A). Elements of a group are stacked with a gap of ``2 w``;
    the two blocks of an element are ``2 w`` apart; group columns are
    ``4 w(G, 1)`` apart. Area coverage is exact for these axis-aligned bars.

    References
    ----------
    MIL-STD-150A, Photographic Lenses (US Department of Defense, 1959), §5.1.1.7.
    J. Yang et al., J. Anal. At. Spectrom. 37, 750 (2022), doi:10.1039/d1ja00425e.

    Examples
    --------
    >>> from xrfgpu import usaf
    >>> c = usaf.chart(5.0, groups=range(4, 6))
    >>> bool(c.image.max() <= 1.0), len(c.blocks)
    (True, 24)
    """
    pixel = float(pixel_size_um)
    if not (pixel > 0 and math.isfinite(pixel)):
        raise ValueError(f"pixel_size_um must be a positive number of µm, got {pixel_size_um!r}")
    if int(oversample) != oversample or oversample < 1:
        raise ValueError(f"oversample must be a positive integer, got {oversample!r}")
    groups = tuple(int(g) for g in groups)
    if not groups or len(set(groups)) != len(groups):
        raise ValueError(f"groups must be a non-empty sequence of distinct integers, got {groups}")
    groups = tuple(sorted(groups))
    margin = float(margin_um)
    if margin < 0:
        raise ValueError(f"margin_um must be >= 0, got {margin_um}")

    blocks = []
    left = margin
    bottom_of_columns = margin
    for g in groups:
        w1 = bar_width_um(g, 1)
        top = margin
        for e in range(1, 7):
            w = bar_width_um(g, e)
            blocks.append(_block(g, e, "vertical", top, left))
            blocks.append(_block(g, e, "horizontal", top, left + 7 * w))
            top += 7 * w
        bottom_of_columns = max(bottom_of_columns, top)
        left += 12 * w1 + 4 * w1
    width_of_columns = left
    side = max(5 * bar_width_um(groups[0], 1), 600.0) if square_um is None else float(square_um)
    if not side > 0:
        raise ValueError(f"square_um must be > 0, got {square_um}")
    gap = 2 * bar_width_um(groups[0], 1)
    square = (bottom_of_columns + gap, bottom_of_columns + gap + side, margin, margin + side)
    glass = (square[0], square[1], margin + side + gap, margin + 2 * side + gap)
    height_um = square[1] + margin
    width_um = max(width_of_columns - 4 * bar_width_um(groups[-1], 1) + margin, glass[3] + margin)

    fine = pixel / int(oversample)
    # a whole number of scan pixels, each ``oversample`` fine pixels across
    shape = (int(math.ceil(height_um / pixel)) * int(oversample), int(math.ceil(width_um / pixel)) * int(oversample))
    image = np.zeros(shape)
    for b in blocks:
        for bar in b.bars:
            _paint(image, bar, fine)
    _paint(image, square, fine)
    np.clip(image, 0.0, 1.0, out=image)
    return Chart(image=image, pixel_size_um=fine, blocks=blocks, square=square, glass=glass, groups=groups)


# ---------------------------------------------------------------------------
# objective resolution


@dataclass(frozen=True)
class ElementResult:
    """Contrast figures of one element (both blocks).

    ``contrast`` is the smallest normalised dip ``(min(bar_l, bar_r) − gap) /
    (chrome − glass)`` over the four bar–gap–bar triples of the element;
    ``z`` the smallest dip divided by the standard deviation of the same
    statistic measured on flat regions of the image (the noise null).
    """

    group: int
    element: int
    lp_per_mm: float
    contrast: float
    z: float
    resolved: bool


@dataclass(frozen=True)
class Resolution:
    """Result of :func:`smallest_resolved`.

    ``group``, ``element``, ``lp_per_mm`` name the limiting element: the last
    one, going from coarse to fine, before the first element that is not
    resolved (None when not even the coarsest is). ``finest_any`` is the
    finest element resolved anywhere. ``elements`` lists every element.
    """

    group: int | None
    element: int | None
    lp_per_mm: float | None
    elements: tuple
    chrome_level: float
    glass_level: float
    finest_any: tuple | None

    @property
    def label(self):
        return "none" if self.group is None else f"G{self.group}E{self.element}"


def _interior(rect_px, shape):
    """Central half of a pixel rectangle, as integer slices clipped to ``shape``."""
    top, bottom, left, right = rect_px
    h, w = bottom - top, right - left
    r0, r1 = int(math.ceil(top + h / 4)), int(math.floor(bottom - h / 4))
    c0, c1 = int(math.ceil(left + w / 4)), int(math.floor(right - w / 4))
    r0, c0 = max(r0, 0), max(c0, 0)
    r1, c1 = min(r1, shape[0]), min(c1, shape[1])
    if r1 - r0 < 4 or c1 - c0 < 4:
        raise ValueError("the chart's reference square is too small at this pixel size")
    return slice(r0, r1), slice(c0, c1)


def _interp(profile, positions):
    """Linear interpolation of a 1-D profile sampled at pixel centres 0, 1, ...; axis -1."""
    positions = np.clip(positions, 0.0, profile.shape[-1] - 1.0)
    i0 = np.clip(np.floor(positions).astype(int), 0, profile.shape[-1] - 2)
    t = positions - i0
    return profile[..., i0] * (1.0 - t) + profile[..., i0 + 1] * t


def _dips(values):
    """Dips ``min(bar_l, bar_r) − gap`` of bars at positions 0, 2, 4 and gaps 1, 3 (axis -1)."""
    b0, g0, b1, g1, b2 = (values[..., k] for k in range(5))
    return np.stack([np.minimum(b0, b1) - g0, np.minimum(b1, b2) - g1], axis=-1)


def _block_geometry(block, pixel):
    """Profile positions (pixel-centre coordinates) and the averaging range of a block."""
    top, bottom, left, right = (v / pixel for v in block.box)
    w = block.width_um / pixel
    if block.orientation == "vertical":  # profile along columns, average over rows
        start, a0, a1 = left, top + w, bottom - w
    else:
        start, a0, a1 = top, left + w, right - w
    centres = start + (np.arange(5) + 0.5) * w - 0.5  # bar, gap, bar, gap, bar
    # pixels whose centres lie in the central 3 w of the bar length (at least one)
    i0 = int(math.ceil(a0 - 0.5))
    i1 = max(int(math.floor(a1 - 0.5)) + 1, i0 + 1)
    return centres, i0, i1


def _null_dip_std(region, offsets, n_avg):
    """Std of the dip statistic over a flat region (axis 0 averaged, axis 1 profiled).

    Every placement of the block's sampling pattern that fits in the region
    is used; the averaging length is clipped to the region (conservative).
    """
    n_avg = max(1, min(n_avg, region.shape[0]))
    c = np.cumsum(np.concatenate([np.zeros((1, region.shape[1])), region], axis=0), axis=0)
    means = (c[n_avg:] - c[:-n_avg]) / n_avg  # (rows - n_avg + 1, cols)
    span = offsets[-1] - offsets[0]
    starts = np.arange(0, region.shape[1] - 1 - math.ceil(span))
    if starts.size < 2:
        starts = np.array([0])
    pos = starts[:, None] + (offsets - offsets[0])[None, :]
    dips = _dips(_interp(means, pos.ravel()).reshape(means.shape[0], starts.size, 5))
    return float(np.std(dips))


def smallest_resolved(image, chart_, *, z_threshold=3.0, min_contrast=0.1):
    """The smallest USAF element whose bars are resolved, by a stated test.

    Parameters
    ----------
    image : array, shape ``chart_.shape``
        A map of the chart on the chart's pixel grid (raw counts or any
        restored map; an affine change of units does not change the result).
    chart_ : Chart
        The chart's geometry, from :func:`chart`.
    z_threshold : float
        Significance each dip must reach, in standard deviations of the noise
        null (3 ⇒ one-sided false-alarm rate 0.13 % per dip).
    min_contrast : float
        Smallest dip as a fraction of the chrome–glass step (0.1: the
        10 %-modulation "limiting resolution" convention, MTF10).

    Returns
    -------
    Resolution
        Limiting element (G, E, lp/mm), every element's contrast and z, and the
        chrome and glass levels measured in the image.

    Raises
    ------
    ValueError
        Shape differs from the chart, or the image is not finite.

    Notes
    -----
    For each block the image is averaged along the bars over the central
    ``3 w`` of their length (away from the blurred bar ends), giving a profile
    across the bars; the profile is read (linear interpolation) at the
    centres of the three bars ``b₁, b₂, b₃`` and the two gaps ``g₁, g₂``. The
    dips are ``dₖ = min(bₖ, bₖ₊₁) − gₖ``. The chrome level ``C`` and glass
    level ``L`` are the means of the central halves of the chart's chrome
    square and glass patch; the contrast is ``dₖ / (C − L)``.

    The noise of a dip depends on the map (Poisson counts, or restored maps
    whose noise is amplified and spatially correlated), so it is *measured*:
    the same statistic (same averaging length, same sampling positions) is
    evaluated at every placement inside the flat chrome and glass regions,
    where the true dip is zero; its standard deviation ``s`` (the larger of
    the two regions) is the noise null. An element is **resolved** when all
    four dips (two per block, both orientations) satisfy
    ``dₖ ≥ z_threshold · s`` *and* ``dₖ / (C − L) ≥ min_contrast``: the
    bar–gap–bar modulation is both real (not noise) and large enough to be
    seen (MTF10). Because sampling is at the true bar and gap centres, a
    pattern of the wrong phase (contrast reversal, ringing) gives negative
    dips and fails. The limiting element is the last one resolved, going
    from coarse to fine, before the first failure — how a chart is read.

    Elements finer than the Nyquist limit of the grid (bar width < 1 pixel)
    are reported unresolved.

    Examples
    --------
    >>> from xrfgpu import usaf
    >>> c = usaf.chart(5.0, groups=range(3, 6))
    >>> usaf.smallest_resolved(c.image, c).label   # the truth: bars ≥ 1 px
    'G5E6'
    """
    from ._backend import to_numpy

    img = np.asarray(to_numpy(image), dtype=np.float64)
    if img.shape != chart_.shape:
        raise ValueError(f"image shape {img.shape} differs from the chart's {chart_.shape}")
    if not np.all(np.isfinite(img)):
        raise ValueError("image contains NaN or inf")
    pixel = chart_.pixel_size_um
    chrome_region = img[_interior(chart_.to_pixels(chart_.square), img.shape)]
    glass_region = img[_interior(chart_.to_pixels(chart_.glass), img.shape)]
    chrome, glass = float(np.mean(chrome_region)), float(np.mean(glass_region))
    step = chrome - glass
    if not step > 0:
        # a map where chrome is not brighter than glass resolves nothing
        step = float("nan")

    per_element = {}
    for block in chart_.blocks:
        key = (block.group, block.element)
        w_px = block.width_um / pixel
        if w_px < 1.0 or not math.isfinite(step):
            dmin, zmin, cmin = -math.inf, -math.inf, -math.inf
        else:
            centres, i0, i1 = _block_geometry(block, pixel)
            lo, hi = max(i0, 0), min(i1, img.shape[0] if block.orientation == "vertical" else img.shape[1])
            if block.orientation == "vertical":
                profile = img[lo:hi, :].mean(axis=0)
                regions = (chrome_region, glass_region)
            else:
                profile = img[:, lo:hi].mean(axis=1)
                regions = (chrome_region.T, glass_region.T)
            dips = _dips(_interp(profile, centres))
            offsets = centres - math.floor(centres[0])
            noise = max(_null_dip_std(r, offsets, hi - lo) for r in regions)
            dmin = float(np.min(dips))
            zmin = dmin / noise if noise > 0 else (math.inf if dmin > 0 else -math.inf)
            cmin = dmin / step
        prev = per_element.get(key)
        if prev is None:
            per_element[key] = (cmin, zmin)
        else:
            per_element[key] = (min(prev[0], cmin), min(prev[1], zmin))

    results = []
    for (g, e), (c, z) in per_element.items():
        ok = bool(z >= z_threshold and c >= min_contrast)
        results.append(ElementResult(g, e, lp_per_mm(g, e), float(c), float(z), ok))
    results.sort(key=lambda r: r.lp_per_mm)
    limit = None
    for r in results:
        if not r.resolved:
            break
        limit = r
    resolved_any = [r for r in results if r.resolved]
    finest = (resolved_any[-1].group, resolved_any[-1].element) if resolved_any else None
    return Resolution(
        group=None if limit is None else limit.group,
        element=None if limit is None else limit.element,
        lp_per_mm=None if limit is None else limit.lp_per_mm,
        elements=tuple(results),
        chrome_level=chrome,
        glass_level=glass,
        finest_any=finest,
    )
