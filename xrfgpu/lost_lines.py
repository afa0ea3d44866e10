"""Lost scan lines: whole rows or columns of exact zeros that no measurement can give.

A raster scan that loses a line (a beam dump, a detector drop-out, a
motor fault, a line the acquisition never wrote) often stores it as 0,
the value the array was filled with, not as NaN. Restored as data, such a
line is a trench of zero concentration: it pulls the automatic background
down (a map with background 111 counts read 92 with one zero row), shortens
the cross-validated stop, and the restoration spreads the trench into its
neighbours. Read as missing (weight 0, as NaN is read), the solvers restore
the line from its neighbours through the PSF.

:func:`find_lost_lines` calls a run of consecutive all-zero lines lost when
the lines on both sides of it are clear of zeros (a dead pixel or two
allowed). Poisson counts cannot do that: a line of ``n`` pixels whose
neighbours have a count in nearly every pixel has an expected sum of about
``n`` or more counts, and all of it is 0 with probability about ``exp(-n)``
(below 1e-7 for the :data:`MIN_LINE_PX` = 16 pixels a line needs here). A
fitted map cannot either: its values are floats that come out at exactly 0
only where a fit was clipped at 0, and a clipped region's edge has zeros in
the lines next to it. Maps with zeros throughout (low counts, sparse
elements) are never changed: their neighbouring lines hold zeros. A line
lost as NaN beside the zeros (a scan aborted: the line in progress stored
as 0, the lines never reached as NaN) is passed over to the next measured
line.

A run at the map's border has a neighbour on one side only, and zeros
there can be data: a scan that starts off the sample, on a map with no
background (fitted, quantised, clipped at 0). Such a run is lost only when
its one neighbour holds no zero and is no ramp (:func:`find_lost_lines`,
Notes). The neighbours are read outside the other axis's all-zero lines, so
a frame of zeros (a map padded or registered onto a larger canvas) is found
on all four sides.

A scan that stopped mid-line leaves the last line it wrote ending (or, in a
serpentine scan, starting) in a block of zeros, and every line after it all
zero: that block and those lines are lost when that line holds no other 0
and the line before it passes the border test (:func:`_stopped_scan`). A
line partly zero anywhere else is not found, nor a scan that started late.

The front door (:func:`xrfgpu.restore`) and the command line (whole map,
``--tile`` and ``--joint`` alike) ask this module, so they agree. A
``mask=`` (``--mask``) given by the user, or a masked array's own mask, is
the whole statement of which pixels are missing: nothing is looked for
then. The solvers themselves
(:func:`xrfgpu.richardson_lucy`, :func:`xrfgpu.restore_stack`, ...) restore
the map they are given, zeros included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._backend import array_device, to_numpy

__all__ = ["LostLines", "LostScanLinesWarning", "MIN_LINE_PX", "find_lost_lines", "without_lost_lines"]

#: fewest pixels a line needs for its zeros to be called impossible (exp(-16) ≈ 1.1e-7 for counts)
MIN_LINE_PX = 16


class LostScanLinesWarning(UserWarning):
    """Whole lines of zeros were read as lost scan lines (missing pixels), not as zero concentration."""


@dataclass(frozen=True)
class LostLines:
    """The rows and columns found lost, 0-based indices of the map.

    Attributes
    ----------
    rows, columns : tuple of int
        Indices of the lost rows and lost columns.
    stopped : tuple, optional
        Where a scan stopped part of the way along a line: ``(axis, line, first, last)``, ``axis`` "row" or
        "column", the pixels ``first``–``last`` (inclusive) of that line lost; the whole lines after it are
        in ``rows`` or ``columns``. Empty when no scan stopped mid-line.
    """

    rows: tuple = ()
    columns: tuple = ()
    stopped: tuple = ()

    def __bool__(self):
        return bool(self.rows or self.columns or self.stopped)

    def record(self):
        """JSON-ready ``{"rows": [...], "columns": [...]}`` for ``info`` and the provenance record, with
        ``"scan_stopped_in": {"row": r, "columns": [first, last]}`` (or ``"column"`` and ``"rows"``) when a
        scan stopped mid-line."""
        record = {"rows": list(self.rows), "columns": list(self.columns)}
        if self.stopped:
            axis, line, first, last = self.stopped
            record["scan_stopped_in"] = {axis: line, ("columns" if axis == "row" else "rows"): [first, last]}
        return record

    def info_entries(self, method):
        """The record's entries for a run of ``method``, as :func:`xrfgpu.restore`'s ``info`` and the command
        line's per-map record both hold them: ``lost_scan_lines`` (:meth:`record`) and
        ``lost_scan_lines_read_as``, ``"data"`` for the blind methods (they take no missing pixels), else
        ``"missing"``."""
        return {"lost_scan_lines": self.record(),
                "lost_scan_lines_read_as": "data" if method in ("blind", "blind-rl") else "missing"}

    def words(self):
        """The lines in words, e.g. ``"row 64"``, ``"rows 0–3, 124–127 and columns 0–3, 60"``,
        ``"row 70 from column 64 on and rows 71–95"``."""
        parts = [_spans(self.rows, "row"), _spans(self.columns, "column")]
        if self.stopped:
            axis, line, first, last = self.stopped
            other = "column" if axis == "row" else "row"
            where = f"from {other} {first} on" if first > 0 else f"up to {other} {last}"
            parts.insert(0, f"{axis} {line} {where} (the scan stopped there)")
        return " and ".join(part for part in parts if part)

    def message(self, name="the map", *, method="rl", mask_option="mask="):
        """The warning's text: what was found, how ``method`` reads it, and how to say otherwise.

        The blind methods (``"blind"``, ``"blind-rl"``) take no missing pixels and restore the lines as
        the zeros they hold; ``mask_option`` names the way to give a mask (``"--mask"`` on the command line).
        """
        count = len(self.rows) + len(self.columns) + (1 if self.stopped else 0)
        found = (f"{name}: {self.words()} {'is' if count == 1 else 'are'} "
                 f"{'0 after lines with no 0' if self.stopped else 'all 0 beside lines with no 0'}")
        if method in ("blind", "blind-rl"):
            return (f"{found}, which no measurement gives; the {method} method takes no missing pixels and restores "
                    f"{'it' if count == 1 else 'them'} as zero concentration: use rl, wiener, tikhonov or fista to "
                    f"restore {'it' if count == 1 else 'them'} from the lines beside")
        what = "a lost scan line" if count == 1 else "lost scan lines"
        keep = ("mask=numpy.ones(map.shape)" if mask_option == "mask=" else
                f"{mask_option} with a map of ones")
        return (f"{found}, which no measurement gives: read as {what}, missing pixels restored from the lines "
                f"beside, not as zero concentration; to keep {'it' if count == 1 else 'them'} as data, give {keep}")


def _spans(indices, noun):
    """``"rows 0–3, 124–127"``: consecutive indices as one span."""
    if not indices:
        return ""
    runs = [[indices[0], indices[0]]]
    for index in indices[1:]:
        if index == runs[-1][1] + 1:
            runs[-1][1] = index
        else:
            runs.append([index, index])
    texts = [f"{a}" if a == b else f"{a}–{b}" for a, b in runs]
    return f"{noun}{'s' if len(indices) > 1 else ''} {', '.join(texts)}"


def find_lost_lines(image, weights=None, *, xp):
    """Find the runs of all-zero rows and columns that no measurement can give.

    Parameters
    ----------
    image : array, shape (rows, cols)
        The map as measured, any units (counts, µg/cm², ...); missing pixels
        may hold any value.
    weights : array, shape (rows, cols), optional
        Weights of the pixels, 0 where already missing (NaN, masked); those
        pixels are left out of every test.
    xp : namespace
        ``image``'s array namespace.

    Returns
    -------
    LostLines
        The lost rows and columns; false when there are none.

    Notes
    -----
    A line is *all zero* when every one of its measured pixels is exactly 0
    and it has at least one. The lines beside a run of consecutive all-zero
    lines are the nearest lines on either side that have a measured pixel
    (a line lost as NaN is passed over). Each is read outside the other
    axis's all-zero lines, and is *clear* when it has at least
    :data:`MIN_LINE_PX` measured pixels there, at most
    :data:`NEIGHBOUR_ZERO_SHARE` of them 0 (a dead pixel), and a mean
    absolute value above :data:`NEIGHBOUR_FLOOR` × the map's largest (not
    floating-point round-off about 0).

    A run inside the map is lost when the lines on both sides are clear: a
    blurred map cannot fall to exact zeros along a whole line and rise
    again. A run at a border has a line on one side only, and the scan may
    have started off the sample (a map without background, quantised or
    clipped at 0): it is lost only when that line has no 0 at all, every
    |value| at least :data:`BORDER_STEPS` × its smallest step between
    distinct values (not a quantised map's lowest step) and
    :data:`BORDER_LOW_SHARE` × its median (not the edge of a region clipped
    at 0), and is no ramp, its mean at least :data:`BORDER_RAMP_RATIO` × the
    next measured line's further in. The map's lines must be at least :data:`MIN_LINE_PX`
    long.

    Examples
    --------
    >>> import numpy as np
    >>> counts = np.random.default_rng(0).poisson(50.0, (64, 64)).astype(float)
    >>> counts[20] = 0
    >>> find_lost_lines(counts, xp=np).record()
    {'rows': [20], 'columns': []}

    Backends
    --------
    Any array-API namespace; a few reductions per axis on the device, the
    line-by-line decisions on the host (vectors of one number per line).
    """
    measured = xp.ones(image.shape, dtype=xp.bool) if weights is None else weights > 0
    zero = (image == 0) & measured
    rows_measured = _host(_count(measured, 1, xp=xp))
    cols_measured = _host(_count(measured, 0, xp=xp))
    zero_rows = (rows_measured > 0) & (_host(_count(zero, 1, xp=xp)) == rows_measured)
    zero_cols = (cols_measured > 0) & (_host(_count(zero, 0, xp=xp)) == cols_measured)
    if not (zero_rows.any() or zero_cols.any() or bool(xp.any(zero[-1, ...])) or bool(xp.any(zero[:, -1]))):
        return LostLines()  # no all-zero line, and no zero in the last row or column, where a scan can stop
    magnitude = xp.where(measured, xp.abs(image), xp.zeros_like(image))
    largest = float(xp.max(magnitude))
    # each line's evidence, read outside the other axis's all-zero lines (a zero frame's corners)
    keep_cols = xp.asarray(~zero_cols, device=array_device(image))[None, :]
    keep_rows = xp.asarray(~zero_rows, device=array_device(image))[:, None]
    row_evidence = _LineEvidence.read(image, measured & keep_cols, zero, magnitude, 1, largest=largest, xp=xp)
    column_evidence = _LineEvidence.read(image, measured & keep_rows, zero, magnitude, 0, largest=largest, xp=xp)
    rows = _lost_runs(zero_rows, row_evidence, line_length=image.shape[1])
    columns = _lost_runs(zero_cols, column_evidence, line_length=image.shape[0])
    if not (rows or columns):  # a scan that stopped mid-line: the rows (or columns) after it, and its line's end
        for axis, all_zero, evidence, lines in (("row", zero_rows, row_evidence, image),
                                                 ("column", zero_cols, column_evidence, image.T)):
            stopped = _stopped_scan(all_zero, evidence, lines, measured if axis == "row" else measured.T)
            if stopped is not None:
                after = tuple(range(stopped[0] + 1, all_zero.size))
                return LostLines(rows=after if axis == "row" else (), columns=after if axis == "column" else (),
                                 stopped=(axis, *stopped))
    return LostLines(rows=rows, columns=columns)


def _stopped_scan(all_zero, evidence, lines, measured):
    """``(line, first, last)`` where a scan along ``lines`` (rows of the array given) stopped mid-line, or None.

    The last line with a value other than 0 ends (or, in a serpentine scan, starts) in a block of zeros, every
    line after it is all zero or lost, the block and those lines hold :data:`MIN_LINE_PX` pixels or more, the
    rest of the line holds no 0, and the line before it is a border run's clear neighbour
    (:meth:`_LineEvidence.clear_at_a_border`): the zeros a stopped acquisition leaves in the array it had filled
    with 0.
    """
    n, length = all_zero.size, lines.shape[1]
    if length < MIN_LINE_PX:
        return None
    written = [k for k in range(n) if evidence.measured[k] > 0 and not all_zero[k]]
    if len(written) < 3:
        return None
    last = written[-1]
    values = _host(lines[last, ...])
    seen = _host(measured[last, ...])
    zero = (values == 0) & seen
    if not zero.any() or zero.all():
        return None
    tail, head = int(np.argmax(~zero[::-1])), int(np.argmax(~zero))  # zeros at the line's end, at its start
    ends = ([(length - tail, length - 1)] if tail else []) + ([(0, head - 1)] if head else [])
    if len(ends) != 1:  # zeros at both ends, or at neither: not a stopped scan
        return None
    first, final = ends[0]
    rest = np.ones(length, dtype=bool)
    rest[first:final + 1] = False
    if zero[rest].any() or not seen[rest].any():
        return None
    if (final - first + 1) + (n - 1 - last) * length < MIN_LINE_PX:
        return None
    return (last, first, final) if evidence.clear_at_a_border(written[-2], written[-3]) else None


#: most zeros a clear neighbour line may hold, as a share of its measured pixels (a dead pixel or two; for
#: counts, a 2 % share of zeros means a mean of about 4 counts a pixel, and an all-zero line of 16 such pixels
#: has a chance of about e⁻⁶³)
NEIGHBOUR_ZERO_SHARE = 0.02
#: a clear neighbour's mean |value| must exceed this × the map's largest |value| (a noise-free simulation clipped
#: at 0 has lines of ±1e-11 round-off beside its zero lines)
NEIGHBOUR_FLOOR = 1e-6
#: a border run's one neighbour must have at least this × the mean of the next line in: not the ramp of a scan
#: that starts off the sample
BORDER_RAMP_RATIO = 0.5
#: a border run's one neighbour must have every value at least this many × the map's smallest nonzero |value|:
#: a quantised map's lowest step (1 of a map stored × 100) beside its zeros is the edge of what it can show, not
#: evidence (counts over a background of tens clear it easily)
BORDER_STEPS = 4.0
#: and every |value| at least this share of the line's median: beside a map's region clipped at 0 some values
#: come near 0 (a crop of a fitted map clipped at its median, QA), where counts over a background do not
BORDER_LOW_SHARE = 0.25


@dataclass(frozen=True)
class _LineEvidence:
    """Per line (host vectors): measured pixels, zeros among them and the mean |value|, within ``where``; and
    the tests of a clear neighbour line, inside the map or at a border run (:func:`find_lost_lines`, Notes)."""

    measured: np.ndarray
    zeros: np.ndarray
    mean_magnitude: np.ndarray
    largest: float
    image: object
    where: object
    axis: int

    @classmethod
    def read(cls, image, where, zero, magnitude, axis, *, largest, xp):
        measured = _host(_count(where, axis, xp=xp))
        zeros = _host(_count(zero & where, axis, xp=xp))
        total = _host(xp.sum(xp.where(where, magnitude, xp.zeros_like(magnitude)), axis=axis))
        return cls(measured, zeros, total / np.maximum(measured, 1), largest, image, where, axis)

    def clear(self, k, zeros_allowed=NEIGHBOUR_ZERO_SHARE):
        """Line ``k`` is clear: enough measured pixels, few zeros, and above round-off."""
        return (self.measured[k] >= MIN_LINE_PX and self.zeros[k] <= zeros_allowed * self.measured[k]
                and self.mean_magnitude[k] > NEIGHBOUR_FLOOR * self.largest)

    def clear_at_a_border(self, k, inner):
        """Line ``k`` is a border run's clear neighbour: clear with no 0, every |value| at least
        :data:`BORDER_STEPS` quanta (:func:`_quantum`) and :data:`BORDER_LOW_SHARE` of the line's median, and no
        ramp (its mean at least :data:`BORDER_RAMP_RATIO` × line ``inner``'s, the next measured line further in)."""
        if not self.clear(k, 0.0) or inner is None or self.zeros[inner] == self.measured[inner]:
            return False
        if self.mean_magnitude[k] < BORDER_RAMP_RATIO * self.mean_magnitude[inner]:
            return False
        values = np.abs(self._values(k))
        return bool(values.min() >= max(BORDER_STEPS * _quantum(values), BORDER_LOW_SHARE * np.median(values)))

    def _values(self, k):
        """The measured values of line ``k`` within ``where``, on the host."""
        line = (k, slice(None)) if self.axis == 1 else (slice(None), k)
        values, keep = _host(self.image[line]), _host(self.where[line])
        return values[keep].astype(np.float64)


def _quantum(values):
    """The smallest step between distinct nonzero |values| of a line: 1 for integer maps, a scaled map's
    lattice, a fitted map's float spacing; a line of one value is its own quantum."""
    distinct = np.unique(values[values != 0])
    if distinct.size < 2:
        return float(distinct[0]) if distinct.size else math.inf
    return float(np.min(np.diff(distinct)))


def _lost_runs(all_zero, evidence, *, line_length):
    """Indices of the all-zero lines in runs that :func:`find_lost_lines` calls lost."""
    if line_length < MIN_LINE_PX:
        return ()
    n = all_zero.size

    def beside(k, direction):  # the nearest line with a measured pixel, from k on; None past the map
        while 0 <= k < n and evidence.measured[k] == 0:
            k += direction
        return k if 0 <= k < n else None

    lost = []
    start = 0
    while start < n:
        if not all_zero[start]:
            start += 1
            continue
        stop = start
        while stop + 1 < n and all_zero[stop + 1]:
            stop += 1
        before, after = beside(start - 1, -1), beside(stop + 1, 1)
        if before is not None and after is not None:
            found = evidence.clear(before) and evidence.clear(after)
        elif before is not None or after is not None:
            side, direction = (after, 1) if after is not None else (before, -1)
            found = evidence.clear_at_a_border(side, beside(side + direction, direction))
        else:
            found = False
        if found:
            lost.extend(range(start, stop + 1))
        start = stop + 1
    return tuple(int(k) for k in lost)


def without_lost_lines(weights, lost, shape, *, xp, like):
    """Weights with the lost lines set to 0 (all ones where ``weights`` is None), in ``like``'s dtype and device.

    Parameters
    ----------
    weights : array or None
        The map's weights so far (None: every pixel measured).
    lost : LostLines
    shape : tuple of int
        The map's shape.
    xp : namespace
    like : array
        An array of the dtype and device the weights take (the map).
    """
    host = np.ones(shape, dtype=np.float64) if weights is None else np.array(to_numpy(weights), dtype=np.float64)
    host[list(lost.rows), :] = 0.0
    host[:, list(lost.columns)] = 0.0
    if lost.stopped:
        axis, line, first, last = lost.stopped
        if axis == "row":
            host[line, first:last + 1] = 0.0
        else:
            host[first:last + 1, line] = 0.0
    return xp.asarray(host.astype(np.float32 if like.dtype == xp.float32 else np.float64), device=array_device(like))


def _count(mask, axis, *, xp):
    return xp.sum(xp.astype(mask, xp.int64), axis=axis)


def _host(vector):
    return np.asarray(to_numpy(vector))
