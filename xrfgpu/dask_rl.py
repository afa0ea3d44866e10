"""Richardson–Lucy over Dask tiles, one iteration at a time: the whole-map iteration, accelerated too.

:func:`xrfgpu.dask.restore` runs every tile's iterations on its own, which is
fast and needs one pass over the data, but cannot reproduce what needs the
whole map at every iteration: the Biggs–Andrews step length (an inner
product over the whole map) and an iteration count decided on the whole map.
:func:`richardson_lucy` here does what the whole-map
:func:`xrfgpu.richardson_lucy` does, step for step:

* each iteration's correction ``ĥ ⊛ [ y / max(h ⊛ x + b, ε) ]`` is computed
  tile by tile on the tile's window: the tile and a halo of twice the PSF
  half-width (the forward blur is exact one half-width inside the window, the
  adjoint another half-width further in); at the map's outer border the
  window has no halo and extends itself by the engines' exact half-sample
  reflect rule (forward and adjoint), as the whole map does — so the
  correction equals the whole-map one up to rounding, for any PSF (a rotated
  elliptical Gaussian, ρ ≠ 0, included);
* the multiplicative update and the Biggs–Andrews extrapolation
  ``max(x + α (x − x_prev), 0)`` with
  ``α = clip(⟨g_{k−1}, g_{k−2}⟩ / ⟨g_{k−2}, g_{k−2}⟩, 0, 1)`` are elementwise
  (the extrapolation is applied to the whole window) and the inner products
  are float64 sums, tile by tile, added over the whole map;
* the start value ``max(mean y − mean b, 10⁻³ mean y)`` and the guard
  ``ε = 10⁻⁶ mean y`` are the whole map's.

The graph is written as raw task layers: per iteration one task a tile (its
window's iterate in, its new iterate, step and sums out), one task a tile for
its two sums and one for α. Each tile's window of the map and its blur
operator are prepared once and kept for every iteration; the blur forgets
its thread's scratch canvas before each use (:meth:`xrfgpu.fft.Convolution.forget_scratch`),
so a tile's numbers do not depend on which thread ran what before, and the
threads, a single thread and a cluster give the same bits; and after it, so no
canvas is kept per tile and thread between iterations. Every
:data:`ITERATIONS_PER_ROUND` iterations are persisted (``dask.persist``), so
the graph stays a few iterations deep and a map held as chunks on a cluster
stays there. Before (``dask.array.map_overlap``, a persist and a compute per
iteration, a new operator per tile and iteration; the same bits), the HXN Fe
map (160²) in 9 tiles took 18–21 s for 400 iterations, now 2.3–2.6 s (0.09 s
whole), and a 1024² map in 16 tiles 11.7–11.9× the whole map's time for 30
iterations, now 3.25× (``python benchmarks/bench_dask.py rl-tiles``;
docs/dask.md).

References
----------
W. H. Richardson, J. Opt. Soc. Am. 62, 55 (1972), doi:10.1364/JOSA.62.000055.
L. B. Lucy, Astron. J. 79, 745 (1974), doi:10.1086/111605.
D. S. C. Biggs, M. Andrews, Appl. Opt. 36, 1766 (1997), doi:10.1364/AO.36.001766.
"""

from __future__ import annotations

import functools
import uuid

import numpy as np

from ._backend import is_float64
from ._problem import check_positive_int, rescale_exponent
from ._validate import times_power_of_two

__all__ = ["richardson_lucy", "exact_halo"]

#: Iterations computed between two ``dask.persist`` calls (the progress callback
#: reports them together). On 2 cores, the HXN Fe map (160²) in 9 tiles, 400
#: iterations: 1 a round 2.66 s, 2 2.21 s, 4 1.93 s, 8 2.11 s (the whole-map run
#: 0.09 s); peak memory of the process for a 2048² float32 map (16 MB) in 16 tiles of
#: 512, 20 iterations: 273, 285, 305 and 310 MB (277 MB for the map_overlap version
#: before; 125 MB with nothing run).
ITERATIONS_PER_ROUND = 4


def exact_halo(psf_shape, *, missing_pixels=False):
    """Halo (pixels per side) that makes a tile's RL iteration exact: twice the PSF half-width, three times
    with missing pixels (the barely seen pixels' fill, :meth:`xrfgpu.richardson_lucy.WeightedCorrection.fill`,
    reads the updated iterate one half-width further out)."""
    return (3 if missing_pixels else 2) * (max(int(n) for n in psf_shape) // 2)


class _TileProblem:
    """A tile's window of the map prepared once for every iteration, with its weighted correction.

    ``problem``: the window's :class:`xrfgpu._problem.Problem` (the map already in the whole map's
    power-of-two scale, so not rescaled again: a dark tile's own rescaling would put it in other units
    than the iterate's), or None where the window holds no counts and no weights (its correction is 0).
    ``weighted``: with missing pixels, the window's :class:`xrfgpu.richardson_lucy.WeightedCorrection`
    (its normaliser ``ĥ ⊛ w``, in float64 for float32 maps, as the whole map's update computes it).
    """

    def __init__(self, problem, weighted=None):
        self.problem, self.weighted = problem, weighted


def _tile_problem(blocks, weight_blocks, *, window, psf, background):
    """:class:`_TileProblem` of one tile from the blocks of the (scaled, zero-filled) map and of the weights."""
    from ._backend import array_device, array_namespace
    from ._problem import Problem, as_namespace
    from ._validate import as_background, as_image, as_psf
    from .richardson_lucy import WeightedCorrection

    data = _window(blocks, window)
    xp = array_namespace(data)
    weights = None if weight_blocks is None else _window(weight_blocks, window)
    if weights is None and not bool(xp.any(data != 0)):
        return _TileProblem(None)  # y = 0: the ratio, and so the correction, is 0
    y = as_image(data, xp=xp)
    h = as_psf(as_namespace(psf, xp, array_device(y)), y.shape, xp=xp, dtype=y.dtype, device=array_device(y))
    pb = Problem.from_validated(y, h, as_background(background, y, xp=xp), boundary="reflect", iterative=True,
                                weights=weights, rescale=False)
    if weights is None:
        return _TileProblem(pb)
    pb.op.forget_scratch()
    weighted = WeightedCorrection(pb)
    pb.op.forget_scratch()
    return _TileProblem(pb, weighted)


def _correction(point, tile_problem, *, eps):
    """One tile window's RL correction (``tile_problem``: :func:`_tile_problem`).

    ``ĥ ⊛ [ y / max(h ⊛ x + b, ε) ]``, or with missing pixels ``ĥ ⊛ [w y / max(h ⊛ x + b, ε)] / (ĥ ⊛ w)``
    where ``ĥ ⊛ w`` > 10⁻⁶ and 1 elsewhere (the pixel keeps its value), as the whole map's update
    (:class:`xrfgpu.richardson_lucy.WeightedCorrection`).
    """
    from ._backend import array_namespace
    from ._elementwise import rl_ratio

    problem = tile_problem.problem
    if problem is None:
        return array_namespace(point).zeros_like(point)
    op, xp = problem.op, problem.xp
    op.forget_scratch()  # the blur of a fresh operator, whatever this thread ran before
    blurred = op.forward(op.embed(xp.astype(point, problem.data.dtype)))
    ratio = rl_ratio(problem.data, blurred, problem.canvas_background, eps, xp=xp)
    if tile_problem.weighted is None:
        correction = op.adjoint(ratio)
    else:
        correction = tile_problem.weighted(ratio * problem.canvas_weights)
    op.forget_scratch()  # and no canvas kept per tile and thread between iterations (memory)
    return op.crop(correction)


def richardson_lucy(image, psf, *, tile, num_iter, background=0.0, accelerate=True, filter_epsilon=None,
                    scheduler="threads", callback=None, mask=None):
    """Richardson–Lucy of a map in Dask tiles, iteration by iteration, equal to the whole-map run.

    Parameters
    ----------
    image : array or dask.array.Array, shape (rows, cols)
        Observed map (counts ≥ 0, or a fitted map ≥ 0); float64 stays
        float64, anything else is restored in float32. NaN pixels are
        missing data, restored from the measured pixels around them.
    psf : array, shape (kr, kc)
        PSF in pixels of the map (normalised to unit sum per tile, as the
        whole-map engine does).
    tile : int
        Tile side in pixels (halo excluded).
    num_iter : int
        Iterations.
    background : float
        Background counts per pixel.
    accelerate : bool
        Biggs–Andrews extrapolation (the CLI's and :func:`xrfgpu.restore`'s
        default), with the step length from whole-map inner products.
    filter_epsilon : float, optional
        Division guard; default 1e-6 of the map's mean.
    scheduler : str or None
        Dask scheduler for each iteration's ``persist`` ("threads", or None
        for the active ``distributed.Client``).
    callback : callable, optional
        ``callback(iteration)`` after every iteration (progress).
    mask : array or dask.array.Array, shape (rows, cols), optional
        Weights in [0, 1]: 1 where the pixel was measured, 0 where it is
        missing (``mask=`` of :func:`xrfgpu.richardson_lucy`). With missing
        pixels (a zero weight or NaN) the weighted update of the whole map
        runs (Shepp & Vardi's EM without the missing rows).

    Returns
    -------
    numpy.ndarray, shape (rows, cols)
        The restored map.

    Raises
    ------
    ValueError
        A map that is not 2-D, negative or infinite values, every pixel
        missing, a mask of another shape or outside [0, 1], a bad ``tile``.

    Notes
    -----
    See the module docstring: the per-tile correction is exact with a halo
    of :func:`exact_halo`, and every scalar of the iteration (start, guard,
    α) is computed over the whole map, so the result equals
    ``xrfgpu.richardson_lucy(image, psf, accelerate=accelerate, mask=mask, ...)``
    up to floating-point rounding (tests: ≤ 1e-4 of the map's maximum). A map
    whose magnitude lies outside :data:`xrfgpu._problem.SAFE_PEAK` is brought
    into it by one power of two for the whole map, as the whole-map engine
    does (exact); each tile then uses it as it is.

    Examples
    --------
    >>> import numpy as np
    >>> from xrfgpu import psf, richardson_lucy as whole
    >>> from xrfgpu.dask_rl import richardson_lucy
    >>> y = np.random.default_rng(0).poisson(50.0, (60, 70)).astype(np.float32)
    >>> h = psf.gaussian(None, 2.0)
    >>> tiled = richardson_lucy(y, h, tile=32, num_iter=10)
    >>> bool(np.abs(tiled - whole(y, h, num_iter=10, accelerate=True)).max() < 1e-4 * y.max())
    True

    Backends
    --------
    NumPy- or CuPy-backed Dask chunks (each tile runs the whole-map engine).
    """
    import dask
    import dask.array as da

    tile = check_positive_int(tile, "tile")
    num_iter = check_positive_int(num_iter, "num_iter")
    if getattr(image, "ndim", np.ndim(image)) != 2:
        raise ValueError(f"image must be a 2-D map (rows, cols), got shape {np.shape(image)}")
    if not isinstance(image, da.Array):
        image = da.from_array(np.asarray(image), chunks=(tile, tile))
    import array_api_compat.numpy as xnp

    from ._backend import to_numpy
    from ._validate import _check_shape, as_psf, psf_data

    # the whole map's shape and PSF checks, before any tile runs (a tile would name its window's shape); a masked
    # PSF is refused naming its masked entries (np.asarray took the values under the mask)
    _check_shape(image, name="image")
    psf = psf_data(psf)
    psf = np.asarray(to_numpy(psf) if hasattr(psf, "shape") and not isinstance(psf, np.ndarray) else psf)
    as_psf(psf, image.shape, xp=xnp, dtype=np.float64)
    dtype = np.float64 if is_float64(image.dtype) else np.float32
    y = image.astype(dtype).rechunk((tile, tile))
    h = np.asarray(psf, dtype=np.float64)
    b = float(background)
    w = None
    if mask is not None:
        if tuple(np.shape(mask)) != tuple(y.shape):
            raise ValueError(f"mask has shape {tuple(np.shape(mask))} but the image has shape {tuple(y.shape)}")
        w = (mask if isinstance(mask, da.Array) else da.from_array(np.asarray(mask), chunks=(tile, tile)))
        w = w.astype(dtype).rechunk(y.chunks)
        if not isinstance(getattr(y, "_meta", None), np.ndarray):  # CuPy chunks: the weights on the device too
            w = w.map_blocks(functools.partial(_in_namespace_of, like=y._meta), meta=y._meta)
    checks = [da.isinf(y).any(), da.isnan(y).any()]
    if w is not None:
        checks += [da.isfinite(w).all(), da.min(w), da.max(w)]
    infinite, nan, *weight_checks = dask.compute(*checks, scheduler=scheduler)
    if infinite:
        raise ValueError("image contains infinite values; mark missing pixels as NaN or with mask= (weight 0)")
    if w is not None:
        finite_w, w_low, w_high = weight_checks
        if not finite_w:
            raise ValueError("mask contains NaN or infinite values; it holds weights in [0, 1]")
        if w_low < 0 or w_high > 1:
            raise ValueError(f"mask must hold weights in [0, 1] (1 = measured pixel, 0 = missing), got values in "
                             f"[{float(w_low)}, {float(w_high)}]")
    if nan:  # missing pixels, as the whole map takes them (xrfgpu._validate.as_image_with_weights)
        keep = (~da.isnan(y)).astype(dtype)
        w = keep if w is None else w * keep
    if w is not None:
        y = da.where(w > 0, y, 0).astype(dtype)  # a missing pixel's count is 0 (its weight takes it out)
        measured, weighted, low, high = dask.compute(da.sum(w.astype(np.float64)), da.sum(w.astype(np.float64) * y),
                                                     da.min(y), da.max(y), scheduler=scheduler)
        if not float(measured) > 0:
            raise ValueError("every pixel of image is missing (masked, NaN or weight 0): there is nothing to restore")
        level = float(weighted) / float(measured)
    else:
        level, low, high = dask.compute(da.mean(y.astype(np.float64)), da.min(y), da.max(y), scheduler=scheduler)
    if low < 0:
        raise ValueError(f"Richardson-Lucy needs non-negative data; the map's minimum is {float(low):g}")
    # one power of two for the whole map where its magnitude is outside SAFE_PEAK (exact), as the whole map's
    # engine rescales; the tiles then take it as it is
    exponent = rescale_exponent(max(abs(float(low)), abs(float(high)), abs(b)))
    if exponent:
        y = times_power_of_two(y, exponent)
        b = b * 2.0**exponent
        filter_epsilon = None if filter_epsilon is None else float(filter_epsilon) * 2.0**exponent
    level = float(level) * 2.0**exponent
    eps = float(filter_epsilon) if filter_epsilon is not None else 1e-6 * max(level, 1e-30)
    start = max(level - b, 1e-3 * level, 1e-30)
    halo = exact_halo(h.shape, missing_pixels=w is not None)
    grid = _TileGrid(y.chunks, halo)
    token = uuid.uuid4().hex[:12]
    if w is None:
        (y,) = dask.persist(y, scheduler=scheduler)
    else:
        y, w = dask.persist(y, w, scheduler=scheduler)
    y_keys = y.__dask_keys__()
    w_keys = None if w is None else w.__dask_keys__()
    tiles = [(i, j) for i in range(grid.rows) for j in range(grid.cols)]
    # each tile's window of the map (its tile and halo) and its blur, prepared once: the map does not change
    name = f"rl-tile-problem-{token}"
    problems = _layer(name, {
        (name, i, j): (functools.partial(_tile_problem, window=grid.window_in_blocks(i, j), psf=h, background=b),
                       grid.blocks_of(i, j, y_keys), None if w is None else grid.blocks_of(i, j, w_keys))
        for i, j in tiles}, [y] if w is None else [y, w], {(i, j): (name, i, j) for i, j in tiles})
    name = f"rl-state-{token}-0"
    states = _layer(name, {(name, i, j): (functools.partial(_start, grid.tile_shape(i, j), start, dtype), y_keys[i][j])
                           for i, j in tiles}, [y], {(i, j): (name, i, j) for i, j in tiles})
    problems, states = dask.persist(problems, states, scheduler=scheduler)
    del y, y_keys, w, w_keys  # the windows hold what the iterations read of the map and its weights
    step = {(i, j): functools.partial(_tile_step, window=grid.window_in_blocks(i, j), core=grid.core_in_window(i, j),
                                      eps=eps, accelerate=accelerate) for i, j in tiles}
    done = 0
    while done < num_iter:
        # a round of iterations, then persist: the state stays where it was computed (a cluster's workers);
        # the rounds bound the graph's depth, and the per-persist cost is paid once a round
        round_end = min(done + ITERATIONS_PER_ROUND, num_iter)
        for it in range(done + 1, round_end + 1):
            keys = {tile: state.key for tile, state in states.items()}
            nested = [[keys[i, j] for j in range(grid.cols)] for i in range(grid.rows)]
            tasks, alpha = {}, None
            if accelerate and it >= 3:  # α from g of the two iterations before (the whole map's inner products)
                # each tile's two sums where the tile is (a cluster's worker), then the step length from them
                sums = [(f"rl-sums-{token}", it, k) for k in range(len(tiles))]
                tasks.update({key: (_tile_sums, keys[tile]) for key, tile in zip(sums, tiles)})
                alpha = (f"rl-alpha-{token}", it)
                tasks[alpha] = (_step_length, sums)
            name = f"rl-state-{token}-{it}"
            for i, j in tiles:
                tasks[(name, i, j)] = (step[i, j], grid.blocks_of(i, j, nested), keys[i, j], problems[i, j].key, alpha)
            states = _layer(name, tasks, list(states.values()) + list(problems.values()),
                            {(i, j): (name, i, j) for i, j in tiles})
        (states,) = dask.persist(states, scheduler=scheduler)
        if callback is not None:
            for it in range(done + 1, round_end + 1):
                callback(it)
        done = round_end
    nested = [[states[i, j].key for j in range(grid.cols)] for i in range(grid.rows)]
    name = f"rl-result-{token}"
    out = _layer(name, {name: (_assemble, nested)}, list(states.values()), {"map": name})["map"]
    from ._backend import to_numpy

    restored = to_numpy(out.compute(scheduler=scheduler))
    return times_power_of_two(restored, -exponent) if exponent else restored


def _in_namespace_of(block, *, like):
    """``block`` as an array of ``like``'s namespace and device (a NumPy mask for CuPy chunks)."""
    from ._backend import array_device, array_namespace
    from ._problem import as_namespace

    return as_namespace(block, array_namespace(like), array_device(like))


def _layer(name, tasks, dependencies, outputs):
    """Delayed objects of a layer of tasks ``{key: (function, *arguments)}`` over ``dependencies``.

    Built as a raw task layer: one task a tile, without the per-call cost of
    :func:`dask.delayed` (which walked every nested argument; 40 ms an
    iteration at 16 tiles). ``outputs``: ``{label: key}`` of the tasks wanted
    as Delayed objects; returns ``{label: Delayed}``.
    """
    from dask.delayed import Delayed
    from dask.highlevelgraph import HighLevelGraph

    graph = HighLevelGraph.from_collections(name, tasks, dependencies=dependencies)
    return {label: Delayed(key, graph, layer=name) for label, key in outputs.items()}


class _TileGrid:
    """Tiles of a chunked map and, for each, its window: the tile and a halo clipped to the map (pixels).

    ``chunks``: Dask's ((rows of each tile row), (cols of each tile column)).
    A window reads every block it overlaps, however many (a halo wider than a
    tile reaches past the next one).
    """

    def __init__(self, chunks, halo):
        self.edges = [np.concatenate([[0], np.cumsum(c)]).astype(int) for c in chunks]
        self.rows, self.cols = len(chunks[0]), len(chunks[1])
        # no halo along an axis with one tile (the engine's reflect rule at both ends, as the whole map)
        self.halo = [halo if len(c) > 1 else 0 for c in chunks]

    def tile_shape(self, i, j):
        return (int(self.edges[0][i + 1] - self.edges[0][i]), int(self.edges[1][j + 1] - self.edges[1][j]))

    def _span(self, axis, k):
        """(first, stop) pixels of tile k's window along an axis, and the blocks (first, stop) it overlaps."""
        e = self.edges[axis]
        lo, hi = max(int(e[k]) - self.halo[axis], 0), min(int(e[k + 1]) + self.halo[axis], int(e[-1]))
        first = int(np.searchsorted(e, lo, side="right")) - 1
        stop = int(np.searchsorted(e, hi, side="left"))
        return (lo, hi), (first, stop)

    def blocks_of(self, i, j, blocks):
        """The blocks (a nested list, or a 2-D object array) that tile (i, j)'s window overlaps."""
        _, (r0, r1) = self._span(0, i)
        _, (c0, c1) = self._span(1, j)
        return [[blocks[a][c] for c in range(c0, c1)] for a in range(r0, r1)]

    def window_in_blocks(self, i, j):
        """Window of tile (i, j) as ((row start, row stop), (col start, col stop)) from its first block's corner."""
        spans = [self._span(0, i), self._span(1, j)]
        return tuple((lo - int(self.edges[axis][first]), hi - int(self.edges[axis][first]))
                     for axis, ((lo, hi), (first, _)) in enumerate(spans))

    def core_in_window(self, i, j):
        """Slices of tile (i, j) inside its window."""
        (lo0, _), _ = self._span(0, i)
        (lo1, _), _ = self._span(1, j)
        r, c = self.tile_shape(i, j)
        a, b = int(self.edges[0][i]) - lo0, int(self.edges[1][j]) - lo1
        return (slice(a, a + r), slice(b, b + c))


def _window(blocks, window):
    """The pixels ``window`` ((r0, r1), (c0, c1), from the first block's corner) of a grid of blocks."""
    from ._backend import array_namespace

    xp = array_namespace(blocks[0][0])
    (r0, r1), (c0, c1) = window
    out = xp.empty((r1 - r0, c1 - c0), dtype=blocks[0][0].dtype)
    top = 0
    for row in blocks:
        rows = row[0].shape[0]
        left = 0
        for block in row:
            cols = block.shape[1]
            a0, a1 = max(r0 - top, 0), min(r1 - top, rows)
            b0, b1 = max(c0 - left, 0), min(c1 - left, cols)
            if a1 > a0 and b1 > b0:
                out[top + a0 - r0 : top + a1 - r0, left + b0 - c0 : left + b1 - c0] = block[a0:a1, b0:b1]
            left += cols
        top += rows
    return out


def _start(shape, start, dtype, like):
    """Iteration 0 of a tile: ``x = start`` everywhere, no previous iterate."""
    from ._backend import array_namespace

    xp = array_namespace(like)
    return {"x": xp.full(shape, start, dtype=dtype), "x_prev": None, "g": None, "num": None, "den": None}


def _tile_sums(state):
    """A tile's ``(⟨g_{k−1}, g_{k−2}⟩, ⟨g_{k−2}, g_{k−2}⟩)``, float64 sums over its pixels."""
    return state["num"], state["den"]


def _step_length(sums):
    """Biggs–Andrews ``α = clip(⟨g_{k−1}, g_{k−2}⟩ / ⟨g_{k−2}, g_{k−2}⟩, 0, 1)`` from every tile's sums."""
    num = sum(float(n) for n, _ in sums)
    den = sum(float(d) for _, d in sums)
    return min(max(num / (den + 1e-300), 0.0), 1.0)


def _tile_step(blocks, own, problem, alpha, *, window, core, eps, accelerate):
    """One RL iteration of a tile: extrapolate on its window, correct, update; the tile's new state.

    ``blocks``: the states of the blocks the window overlaps; ``own``: the tile's
    state. The new state holds ``x`` (the tile's iterate), ``x_prev`` (the one
    before), ``g = x − point`` (the update's step) and the tile's float64 sums
    ``⟨g, g_prev⟩`` and ``⟨g_prev, g_prev⟩`` for the next step length.
    """
    from ._backend import array_namespace

    x = _window([[s["x"] for s in row] for row in blocks], window)
    xp = array_namespace(x)
    if alpha is not None:  # the whole map's extrapolation, elementwise, on the window
        x_prev = _window([[s["x_prev"] for s in row] for row in blocks], window)
        x = xp.maximum(x + xp.asarray(alpha, dtype=x.dtype) * (x - x_prev), xp.asarray(0, dtype=x.dtype))
    point = x[core]
    weighted = problem.weighted  # None without missing pixels (and for a window with no counts and no weights)
    if weighted is None:
        new = point * _correction(x, problem, eps=eps)[core]
    else:  # the update on the window, its barely seen pixels filled as the whole map's (exact on the tile)
        op = problem.problem.op
        updated = op.embed(x * _correction(x, problem, eps=eps))
        op.forget_scratch()
        new = op.crop(weighted.fill(updated, op.embed(x)))[core]
        op.forget_scratch()
    if not accelerate:
        return {"x": new, "x_prev": None, "g": None, "num": None, "den": None}
    g = new - point
    state = {"x": new, "x_prev": own["x"], "g": g, "num": None, "den": None}
    if own["g"] is not None:
        g_prev = xp.astype(own["g"], xp.float64)
        state["num"] = float(xp.sum(xp.astype(g, xp.float64) * g_prev))
        state["den"] = float(xp.sum(g_prev * g_prev))
    return state


def _assemble(states):
    """The map from its tiles' iterates."""
    from ._backend import array_namespace

    xp = array_namespace(states[0][0]["x"])
    return xp.concat([xp.concat([s["x"] for s in row], axis=1) for row in states], axis=0)
