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
every line next to it holds no zero at all. Poisson counts cannot do that:
a line of ``n`` pixels whose neighbours have at least one count in every
pixel has an expected sum of about ``n`` or more counts, and all of it is 0
with probability about ``exp(-n)`` (below 1e-7 for the
:data:`MIN_LINE_PX` = 16 pixels a line needs here). A fitted map cannot
either: its values are floats that come out at exactly 0 only where a fit
was clipped at 0, and a clipped region's edge has zeros in the lines next
to it. Maps with zeros throughout (low counts, sparse elements) are never
changed: their neighbouring lines hold zeros.

The neighbours' zeros are counted outside the other axis's all-zero lines,
so a frame of zeros (a map padded or registered onto a larger canvas) is
found on all four sides. A line partly zero (a scan stopped mid-line) is
not found: only whole lines are.

The front door (:func:`xrfgpu.restore`) and the command line (whole map,
``--tile`` and ``--joint`` alike) ask this module, so they agree. A
``mask=`` (``--mask``) given by the user is the whole statement of which
pixels are missing: nothing is looked for then. The solvers themselves
(:func:`xrfgpu.richardson_lucy`, :func:`xrfgpu.restore_stack`, ...) restore
the map they are given, zeros included.
"""

from __future__ import annotations

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
        found = f"{name}: {self.words()} {'is' if count == 1 else 'are'} all 0 beside lines with no zero"
        if method in ("blind", "blind-rl"):
            return (f"{found}, as lost scan lines are; the {method} method takes no missing pixels and restores them "
                    "as zero concentration: use rl, wiener, tikhonov or fista to restore them from their neighbours")
        return (f"{found}, which counts cannot be: read as lost scan lines (missing pixels, restored from their "
                f"neighbours), not as zero concentration; give a mask ({mask_option}) to say which pixels are "
                "missing instead")


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
    and it has at least one. A run of consecutive all-zero lines is lost when
    the line before it and the line after it (only the one of them inside the
    map, at a border) each have at least :data:`MIN_LINE_PX` measured pixels
    outside the other axis's all-zero lines, and not one 0 among them (see
    the module's docstring for why counts and fitted maps cannot do that).
    The map's lines must themselves be at least :data:`MIN_LINE_PX` long.

    Examples
    --------
    >>> import numpy as np
    >>> counts = np.random.default_rng(0).poisson(50.0, (64, 64)).astype(float)
    >>> counts[20] = 0
    >>> find_lost_lines(counts, xp=np).record()
    {'rows': [20], 'columns': []}

    Backends
    --------
    Any array-API namespace; two reductions per axis on the device, the
    line-by-line decisions on the host (vectors of one number per line).
    """
    measured = xp.ones(image.shape, dtype=xp.bool) if weights is None else weights > 0
    zero = (image == 0) & measured
    nonzero_measured = measured & ~zero
    # per line: measured pixels, and measured pixels that are not zero
    rows_measured = _host(xp.sum(xp.astype(measured, xp.int64), axis=1))
    cols_measured = _host(xp.sum(xp.astype(measured, xp.int64), axis=0))
    rows_nonzero = _host(xp.sum(xp.astype(nonzero_measured, xp.int64), axis=1))
    cols_nonzero = _host(xp.sum(xp.astype(nonzero_measured, xp.int64), axis=0))
    zero_rows = (rows_measured > 0) & (rows_nonzero == 0)
    zero_cols = (cols_measured > 0) & (cols_nonzero == 0)
    if not (zero_rows.any() or zero_cols.any()):
        return LostLines()
    # the neighbours' evidence, counted outside the other axis's all-zero lines (a zero frame's corners)
    keep_cols = xp.asarray(~zero_cols, device=array_device(image))
    keep_rows = xp.asarray(~zero_rows, device=array_device(image))
    rows_zeros_outside = _host(xp.sum(xp.astype(zero & keep_cols[None, :], xp.int64), axis=1))
    rows_measured_outside = _host(xp.sum(xp.astype(measured & keep_cols[None, :], xp.int64), axis=1))
    cols_zeros_outside = _host(xp.sum(xp.astype(zero & keep_rows[:, None], xp.int64), axis=0))
    cols_measured_outside = _host(xp.sum(xp.astype(measured & keep_rows[:, None], xp.int64), axis=0))
    rows = _lost_runs(zero_rows, rows_zeros_outside, rows_measured_outside, line_length=image.shape[1])
    columns = _lost_runs(zero_cols, cols_zeros_outside, cols_measured_outside, line_length=image.shape[0])
    return LostLines(rows=rows, columns=columns)


def _lost_runs(all_zero, zeros_outside, measured_outside, *, line_length):
    """Indices of the all-zero lines whose runs are bounded by lines with no zero (see :func:`find_lost_lines`)."""
    if line_length < MIN_LINE_PX:
        return ()
    n = all_zero.size
    lost = []
    start = 0
    while start < n:
        if not all_zero[start]:
            start += 1
            continue
        stop = start
        while stop + 1 < n and all_zero[stop + 1]:
            stop += 1
        neighbours = [k for k in (start - 1, stop + 1) if 0 <= k < n]
        if neighbours and all(zeros_outside[k] == 0 and measured_outside[k] >= MIN_LINE_PX for k in neighbours):
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


def _host(vector):
    return np.asarray(to_numpy(vector))
