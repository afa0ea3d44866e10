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
on all four sides. A line partly zero (a scan stopped mid-line) is not
found: only whole lines are.

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
    """

    rows: tuple = ()
    columns: tuple = ()

    def __bool__(self):
        return bool(self.rows or self.columns)

    def record(self):
        """JSON-ready ``{"rows": [...], "columns": [...]}`` for ``info`` and the provenance record."""
        return {"rows": list(self.rows), "columns": list(self.columns)}

    def words(self):
        """The lines in words, e.g. ``"row 64"``, ``"rows 0–3, 124–127 and columns 0–3, 60"``."""
        parts = [_spans(self.rows, "row"), _spans(self.columns, "column")]
        return " and ".join(part for part in parts if part)

    def message(self, name="the map", *, method="rl", mask_option="mask="):
        """The warning's text: what was found, how ``method`` reads it, and how to say otherwise.

        The blind methods (``"blind"``, ``"blind-rl"``) take no missing pixels and restore the lines as
        the zeros they hold; ``mask_option`` names the way to give a mask (``"--mask"`` on the command line).
        """
        count = len(self.rows) + len(self.columns)
        found = f"{name}: {self.words()} {'is' if count == 1 else 'are'} all 0 beside lines with no 0"
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
    value at least :data:`BORDER_STEPS` × the map's smallest nonzero
    |value| (not a quantised map's lowest step), and is no ramp, its mean at
    least :data:`BORDER_RAMP_RATIO` × the next measured line's further in. The map's lines must be at least :data:`MIN_LINE_PX`
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
    if not (zero_rows.any() or zero_cols.any()):
        return LostLines()
    magnitude = xp.where(measured, xp.abs(image), xp.zeros_like(image))
    largest = float(xp.max(magnitude))
    step = float(xp.min(xp.where(magnitude > 0, magnitude, xp.full_like(magnitude, math.inf))))
    # each line's evidence, read outside the other axis's all-zero lines (a zero frame's corners)
    keep_cols = xp.asarray(~zero_cols, device=array_device(image))[None, :]
    keep_rows = xp.asarray(~zero_rows, device=array_device(image))[:, None]
    rows = _lost_runs(zero_rows, _LineEvidence.read(measured & keep_cols, zero, magnitude, 1, xp=xp),
                      largest=largest, step=step, line_length=image.shape[1])
    columns = _lost_runs(zero_cols, _LineEvidence.read(measured & keep_rows, zero, magnitude, 0, xp=xp),
                         largest=largest, step=step, line_length=image.shape[0])
    return LostLines(rows=rows, columns=columns)


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


@dataclass(frozen=True)
class _LineEvidence:
    """Per line (host vectors): measured pixels, zeros among them and the mean |value|, within ``where``."""

    measured: np.ndarray
    zeros: np.ndarray
    mean_magnitude: np.ndarray
    lowest_nonzero: np.ndarray

    @classmethod
    def read(cls, where, zero, magnitude, axis, *, xp):
        measured = _host(_count(where, axis, xp=xp))
        zeros = _host(_count(zero & where, axis, xp=xp))
        total = _host(xp.sum(xp.where(where, magnitude, xp.zeros_like(magnitude)), axis=axis))
        lowest = _host(xp.min(xp.where(where & (magnitude > 0), magnitude, xp.full_like(magnitude, math.inf)),
                              axis=axis))
        return cls(measured, zeros, total / np.maximum(measured, 1), lowest)


def _lost_runs(all_zero, evidence, *, largest, step, line_length):
    """Indices of the all-zero lines in runs that :func:`find_lost_lines` calls lost."""
    if line_length < MIN_LINE_PX:
        return ()
    n = all_zero.size

    def beside(k, step):  # the nearest line with a measured pixel, from k on in direction step; None past the map
        while 0 <= k < n and evidence.measured[k] == 0:
            k += step
        return k if 0 <= k < n else None

    def clear(k, zeros_allowed):
        return (evidence.measured[k] >= MIN_LINE_PX and evidence.zeros[k] <= zeros_allowed * evidence.measured[k]
                and evidence.mean_magnitude[k] > NEIGHBOUR_FLOOR * largest)

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
            found = clear(before, NEIGHBOUR_ZERO_SHARE) and clear(after, NEIGHBOUR_ZERO_SHARE)
        elif before is not None or after is not None:
            side, step = (after, 1) if after is not None else (before, -1)
            inner = beside(side + step, step)
            found = (clear(side, 0.0) and evidence.lowest_nonzero[side] >= BORDER_STEPS * step
                     and inner is not None and not all_zero[inner]
                     and evidence.mean_magnitude[side] >= BORDER_RAMP_RATIO * evidence.mean_magnitude[inner])
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
    return xp.asarray(host.astype(np.float32 if like.dtype == xp.float32 else np.float64), device=array_device(like))


def _count(mask, axis, *, xp):
    return xp.sum(xp.astype(mask, xp.int64), axis=axis)


def _host(vector):
    return np.asarray(to_numpy(vector))
