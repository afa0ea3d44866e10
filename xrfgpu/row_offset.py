"""Alternate lines offset along the scan: the misregistration of a bidirectional (serpentine) scan.

A fly scan that writes every other line in the opposite direction places
those lines a little off along the scan axis (the detector's and the
encoder's lag, a motor's backlash): odd rows sit ``d`` px to one side of the
even rows. The map then holds a zigzag that no PSF makes. The σ estimators
read its sharp comb as structure and blur (on the real HXN Fe map, odd rows
rolled by 1 px took the map's σ from 0.45 px, flagged uncertain, to 1.15 px
called reliable), and the restoration sharpens the comb about 7-fold.

:func:`alternate_row_offset` measures ``d`` from the map itself: each even
row is compared with the mean of the two odd rows around it, shifted by every
lag up to :data:`MAX_LAG_PX` along the row. For a map without the fault the
two agree best unshifted (the mean of the rows above and below is the
row between them, give or take curvature, whatever the structure's
direction); with it they agree best at ``d``. The offset is called found
when the best lag is not 0, the improvement over lag 0 is
:data:`MIN_Z` paired standard errors or more over the rows, and the
refined offset is at least :data:`MIN_OFFSET_PX`. Columns are measured the same way (a scan whose fast axis
is vertical).

:func:`xrfgpu.restore` warns (:class:`ScanMisregistrationWarning`) and records
``alternate_line_offset``; :func:`realign_alternate_lines` moves the odd lines
back by the whole pixels of the offset and marks the pixels it uncovers
missing (NaN), so a count map stays counts and the solvers restore those
pixels from their neighbours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._backend import array_device, array_namespace, to_numpy

__all__ = ["LineOffset", "ScanMisregistrationWarning", "alternate_row_offset", "realign_alternate_lines",
           "MAX_LAG_PX", "MIN_Z", "MIN_OFFSET_PX"]

#: largest offset looked for, px
MAX_LAG_PX = 4
#: paired standard errors (over the compared rows) by which the best lag must beat lag 0
MIN_Z = 6.0
#: smallest offset reported, px (the unblurred, noise-free truth of an oblique-strata scene read −0.54 px at 7
#: standard errors: a scan's half-pixel steps; the misregistrations that matter are a pixel or more)
MIN_OFFSET_PX = 0.75
#: fewest row triples (even row and the odd rows around it) the comparison needs
MIN_TRIPLES = 8
#: most triples compared, evenly spread over the map
MAX_TRIPLES = 256


class ScanMisregistrationWarning(UserWarning):
    """Every other line of the map is offset along the scan: a bidirectional scan's misregistration."""


@dataclass(frozen=True)
class LineOffset:
    """Where the odd lines sit against the even ones.

    Attributes
    ----------
    axis : {"rows", "columns"}
        The lines compared: rows (a horizontal fast axis) or columns.
    offset_px : float
        How far the odd lines lie along the line from where the even lines put them, px (sub-pixel, by a
        parabola through the best three lags); positive: toward higher indices.
    z : float
        The best lag's improvement over lag 0, in paired standard errors over the compared triples.
    """

    axis: str
    offset_px: float
    z: float

    def record(self):
        """JSON-ready record for ``info`` and the provenance record."""
        return {"axis": self.axis, "offset_px": round(float(self.offset_px), 3), "z": round(float(self.z), 1)}

    def message(self, name="the map", *, on_command_line=False):
        """The warning's text (``on_command_line``: the realignment named as a Python call, which it is there)."""
        return (f"{name}: the odd {self.axis} lie {self.offset_px:+.2f} px along the line from the even ones "
                f"({self.z:.0f} standard errors): a bidirectional scan's misregistration, whose zigzag the σ "
                f"estimate reads as blur and the restoration sharpens; realign the lines first "
                f"({'in Python: ' if on_command_line else ''}xrfgpu.row_offset.realign_alternate_lines(map, "
                f"{round(self.offset_px)}{', axis=1' if self.axis == 'columns' else ''})), or give σ")


def _mismatch(y, lags):
    """Per triple (an even row and the mean of the odd rows around it; ``y`` holds the triples of
    :func:`_triples`), the mean squared difference at each lag.

    Returns an array (triples, lags); the row's ends that a shift uncovers are left out at every lag alike.
    """
    centre = y[1::3]  # the triples of _triples: (odd, even, odd) lines, three rows each
    around = 0.5 * (y[0::3] + y[2::3])
    m = centre.shape[0]
    edge = max(abs(k) for k in lags)
    width = y.shape[1] - 2 * edge
    out = np.empty((m, len(lags)))
    base = centre[:, edge:edge + width]
    for j, lag in enumerate(lags):  # around shifted: its pixel x - lag against the centre's x
        shifted = around[:, edge - lag:edge - lag + width]
        out[:, j] = np.mean((base - shifted) ** 2, axis=1)
    return out


def _offset_along_rows(y):
    lags = list(range(-MAX_LAG_PX, MAX_LAG_PX + 1))
    if y.shape[1] < 4 * MAX_LAG_PX + 8:
        return None
    table = _mismatch(y, lags)
    if table.shape[0] < MIN_TRIPLES:
        return None
    totals = table.mean(axis=0)
    best = int(np.argmin(totals))
    zero = lags.index(0)
    if not totals[best] < totals[zero]:  # lag 0 as good as any (a flat map: every lag ties)
        return None
    gain = table[:, zero] - table[:, best]
    spread = float(np.std(gain, ddof=1))
    z = float(np.mean(gain) / (spread / math.sqrt(gain.size))) if spread > 0 else math.inf
    if not z >= MIN_Z:
        return None
    refined = float(lags[best])
    if 0 < best < len(lags) - 1:  # a parabola through the best lag and its neighbours
        a, b, c = totals[best - 1], totals[best], totals[best + 1]
        curvature = a - 2.0 * b + c
        if curvature > 0:
            refined += 0.5 * (a - c) / curvature
    if abs(refined) < MIN_OFFSET_PX:
        return None
    return -refined, z  # the mean of the odd lines at x − lag matched the even line at x: they lie at +(−lag)


def _triples(lines):
    """At most :data:`MAX_TRIPLES` evenly spread (odd, even, odd) line triples of ``lines``, stacked on the host
    in float64: the rows 2i − 1, 2i, 2i + 1 of each chosen triple, consecutive (a 4096² map's whole comparison
    took 1.4 s; the triples are taken on the device, so a CuPy map sends only them to the host)."""
    n = lines.shape[0]
    centres = list(range(2, n - 1, 2))
    if len(centres) > MAX_TRIPLES:
        centres = [centres[int(j * len(centres) / MAX_TRIPLES)] for j in range(MAX_TRIPLES)]
    if not centres:
        return np.zeros((0, lines.shape[1]))
    rows = [r for c in centres for r in (c - 1, c, c + 1)]
    xp = array_namespace(lines)
    picked = xp.take(lines, xp.asarray(rows, device=array_device(lines)), axis=0)
    return np.asarray(to_numpy(picked), dtype=np.float64)


def alternate_row_offset(image, weights=None):
    """Measure the offset of a map's odd lines against its even lines, along rows and along columns.

    Parameters
    ----------
    image : array, shape (rows, cols)
        The map, any units, any array-API namespace (read on the host); missing pixels filled (the front
        door's :func:`xrfgpu.front_door.filled_for_estimators`).
    weights : array, optional
        Pixel weights; when any pixel is missing the map is not judged (the fill repeats lines).

    Returns
    -------
    LineOffset or None
        The offset found, on the axis with the stronger evidence; None when neither axis shows one.

    Notes
    -----
    See the module's docstring. The comparison of each even line with the mean of the odd lines around it is
    symmetric in the structure's direction (an oblique edge is the mean of the lines above and below it), so
    the best lag is 0 on a map without the fault; the paired test over the triples makes the decision scale
    with the map's own noise.

    Examples
    --------
    >>> import numpy as np
    >>> from xrfgpu import phantom
    >>> counts, _, _ = phantom.observe((128, 128), 1.0, seed=2)
    >>> alternate_row_offset(counts) is None
    True
    >>> shifted = counts.copy()
    >>> shifted[1::2] = np.roll(counts[1::2], 2, axis=1)
    >>> round(alternate_row_offset(shifted).offset_px)
    2
    """
    if weights is not None and bool(array_namespace(weights).any(weights <= 0)):  # on the weights' device
        return None
    found = []
    for axis, lines in (("rows", image), ("columns", image.T)):
        result = _offset_along_rows(_triples(lines))
        if result is not None:
            found.append(LineOffset(axis, float(result[0]), float(result[1])))
    if not found:
        return None
    return max(found, key=lambda f: f.z)


def realign_alternate_lines(image, offset_px, *, axis=0):
    """Move the odd lines back by ``offset_px`` whole pixels; the pixels uncovered are NaN (missing).

    Parameters
    ----------
    image : array, shape (rows, cols)
        The map (NumPy; other namespaces are read on the host).
    offset_px : int
        The offset of the odd lines (:attr:`LineOffset.offset_px`, rounded), px; they move by ``-offset_px``.
    axis : {0, 1}
        0: the lines are rows (shifted along the row); 1: columns.

    Returns
    -------
    numpy.ndarray, float
        The realigned map: counts stay whole numbers; the ``|offset_px|`` pixels at one end of each odd line
        are NaN, which :func:`xrfgpu.restore` restores from their neighbours.
    """
    d = int(offset_px)
    if d != offset_px:
        raise ValueError(f"offset_px must be a whole number of pixels, got {offset_px!r}")
    if axis not in (0, 1):
        raise ValueError(f"axis must be 0 (rows) or 1 (columns), got {axis!r}")
    out = np.array(to_numpy(image), dtype=np.float64)
    lines = out if axis == 0 else out.T  # a view: writing it writes out
    if d:
        odd = lines[1::2].copy()
        lines[1::2] = np.nan
        if d > 0:
            lines[1::2, :-d] = odd[:, d:]
        else:
            lines[1::2, -d:] = odd[:, :d]
    return out
