"""Tiled and distributed restoration of large maps and stacks with Dask.

A map that does not fit in memory, or a stack of element maps to restore
across a cluster, is cut into overlapping tiles; every tile is restored with
the same engine as a whole map (:func:`xrfgpu.richardson_lucy`,
:func:`xrfgpu.wiener`, :func:`xrfgpu.tikhonov`, :func:`xrfgpu.fista`,
:func:`xrfgpu.ista`), and the overlaps ("halos") are trimmed away. The work is
a :func:`dask.array.map_overlap` graph, so it runs on Dask's default threaded
scheduler with no set-up, on a ``dask.distributed`` cluster (``Client`` in
scope or passed as ``scheduler=``), and on several GPUs with ``dask-cuda``
workers and CuPy-backed chunks.

Border rule
-----------
The whole-map restoration extends the map by half-sample symmetric
reflection (``d c b a | a b c d``; NumPy ``mode="symmetric"``, scipy.ndimage
``mode="reflect"``) at its outer border (exactly for RL and FISTA with any
PSF and for symmetric PSFs everywhere; by a reflected pad for Wiener and
Tikhonov with asymmetric PSFs). The tiles are built with
``map_overlap(..., boundary="reflect")``, whose reflection is the same
half-sample symmetric one (checked: ``overlap`` of ``0..7`` by 3 gives
``2 1 0 | 0 1 …``, as ``numpy.pad(mode="symmetric")``). So every tile carries
``halo`` pixels per side: real neighbouring data at inner borders, the map's
own mirror image at the outer border — identical to the whole-map extension
over those ``halo`` pixels. Beyond the halo the engine mirrors the tile,
which differs from the whole-map scene, and the halo must be wide enough that
this artificial border does not reach the tile's core. An axis that fits in
one tile gets no halo: there the engine's mirror is the whole-map rule.
(``boundary="none"`` would make border tiles exact by construction, but
gives them other shapes than the inner tiles; with ``"reflect"`` all full
tiles share one shape, ``tile + 2·halo``, which :func:`fast_halo` makes a
fast transform length — 3.4× faster DCTs for 2048-px tiles with σ = 3 px.)
That identity holds for PSFs mirror-symmetric along both axes only: Dask's
halo mirrors the blurred data, the whole-map model mirrors the scene. For a
rotated elliptical spot (ρ ≠ 0) the outer border therefore gets no halo
(``boundary="none"``, :func:`_outer_boundary`) and the engine extends the
border tiles by its own rule; with the reflect halo FISTA's tiles had
differed from the whole map by 26 % of its maximum at ρ = 0.3.

Halo rule
---------
The halo must cover the PSF (half-width ``kr // 2``) and the reach of the
restoration: each Richardson–Lucy or FISTA iteration convolves twice (forward
and adjoint), so information can travel up to one PSF extent per iteration,
though in practice it decays far faster; Wiener and Tikhonov are a linear
filter whose inverse reaches several PSF extents when the regularisation is
weak. :func:`default_halo` gives the measured rule (its docstring lists the
measurements); the tiled map then equals the whole-map map to better than
1e-4 of the map's maximum. ``tests/test_dask.py`` checks this on maps whose
size is not a multiple of the tile.

Data-dependent settings are computed once over the whole map (per element of
a stack) before tiling, so that every tile uses the same numbers as the
whole-map call: Richardson–Lucy's starting level ``mean(y) − mean(b)``, its
division guard and TV scale, and FISTA's default ``lam`` (a fraction of ``max|y − b|``) and flat start (the mean above the background).
Settings that need the whole map at every iteration cannot be tiled exactly
and are refused: RL stopping rules (``tol``, ``discrepancy``), Biggs–Andrews
acceleration (``accelerate=True``, whose step length is a global inner
product), and ``callback``. The periodic boundary is refused too (a tile of
a periodic map is not periodic).

Streaming storage
-----------------
:func:`restore_zarr` reads a Zarr array or a (chunked) HDF5 dataset, restores
it tile by tile, and writes a Zarr array, so a map larger than memory streams
through; the output carries provenance attributes.

References
----------
Dask Development Team, *Dask: library for dynamic task scheduling* (2016),
https://dask.org. J. Yang, Z. Zhang, Q. Cheng, J. Anal. At. Spectrom. 37,
750 (2022), doi:10.1039/d1ja00425e.
"""

from __future__ import annotations

import functools
import inspect
import math
import threading
import warnings

import numpy as np

from ._backend import is_float64, to_numpy
from ._problem import check_positive_int
from ._validate import (
    _host_masked,
    _refuse_non_real,
    as_background,
    as_psf,
    background_data,
    check_num_iter,
    mask_data,
    plain_array,
    psf_data,
)
from .filter_weight import AUTO
from .fista import DEFAULT_LAM_FRACTION

__all__ = ["METHODS", "default_halo", "fast_halo", "restore", "restore_zarr"]

#: method name -> canonical name
METHODS = {
    "rl": "rl",
    "richardson_lucy": "rl",
    "wiener": "wiener",
    "tikhonov": "tikhonov",
    "fista": "fista",
    "ista": "ista",
}

_RL_OPTIONS = {"num_iter", "background", "tv", "boundary", "pad", "filter_epsilon"}
_RL_REFUSED = {
    "tol": "a stopping rule needs the whole map's divergence at every iteration",
    "discrepancy": "a stopping rule needs the whole map's divergence at every iteration",
    "callback": "tiles are restored independently, there is no whole-map estimate per iteration",
}


def _dask_array():
    import dask.array as da  # absolute import: the top-level dask library, not this module

    return da


def default_halo(psf_shape, method="rl", *, num_iter=None, psf=None):
    """Halo (pixels per side) that makes tiled restoration match the whole map.

    Parameters
    ----------
    psf_shape : tuple of int
        (kr, kc) of the PSF, pixels.
    method : str
        One of :data:`METHODS`.
    num_iter : int, optional
        Iterations of RL/FISTA/ISTA (the engine's default if None).
    psf : array, optional
        The PSF itself (host or device): its extent is then at least that of the Gaussian of its second
        moments cut at ±4σ (:func:`_moment_extent`), so a compact kernel (a 5 × 5 box) gets the halo of
        the Gaussian it blurs like.

    Returns
    -------
    halo : int
        ``factor × extent``, never less than the PSF half-width + 1; ``extent`` is ``max(kr, kc)``, or
        the moment extent where larger.

    Notes
    -----
    Measured (``python benchmarks/bench_dask.py --halo-scan``) on 600×700
    maps from :func:`xrfgpu.phantom.observe` (signal 200, background 100
    counts), Gaussian PSFs of σ = 2 and 3 px (±4σ support, extents 17 and
    25 px), tile 256, halos of 0.5–6 PSF extents. Largest |tiled − whole|
    relative to the whole-map maximum:

    ===================================  ========  ========  ========  ========
    method                               1 extent  2         3         4
    ===================================  ========  ========  ========  ========
    RL, 10 iterations                    1.5e-4    1.4e-6    1.9e-6    1.7e-6
    RL, 30 iterations                    1.1e-3    4.0e-6    3.2e-6    3.7e-6
    RL, 100 iterations                   4.0e-3    1.3e-5    9.3e-6    1.1e-5
    Wiener, balance 0.01, Laplacian      5.2e-3    5.9e-5    1.7e-6    5.6e-7
    Tikhonov, lam 0.01, order 1          2.5e-3    2.3e-5    5.5e-7    5.5e-7
    FISTA, default lam, 25 iterations    7.1e-3    9.6e-5    2.4e-6    2.7e-6
    FISTA, default lam, 100 iterations   3.0e-2    2.0e-3    3.9e-4    2.0e-5
    ===================================  ========  ========  ========  ========

    (With the exact mirror/DCT engines of :mod:`xrfgpu.fft` and
    ``boundary="reflect"`` tiling; max over the two σ.) Hence the rule, in PSF
    extents ``max(kr, kc)``: RL 2 up to 100 iterations (3 beyond, not
    measured), Wiener/Tikhonov 3 for the default regularisation (weaker
    regularisation reaches further — pass a larger ``halo``), FISTA/ISTA 3 up
    to 30 iterations, 4 up to 100, 6 beyond (not measured). The halo never
    drops below the PSF half-width + 1. :func:`restore` widens it further
    with :func:`fast_halo`.
    """
    extent = int(max(psf_shape[-2:]))
    if psf is not None:
        extent = max(extent, _moment_extent(psf))
    method = _canonical(method)
    if num_iter is None:
        num_iter = _default_num_iter(method)
    if method == "rl":
        factor = 2 if int(num_iter) <= 100 else 3
    elif method in ("wiener", "tikhonov"):
        factor = 3
    else:
        n = int(num_iter)
        factor = 3 if n <= 30 else 4 if n <= 100 else 6
    return max(factor * extent, extent // 2 + 1)


def _moment_extent(psf):
    """``2 ⌈4 σ⌉ + 1`` for the larger of the PSF's two root-mean-square widths σ (pixels): the extent the
    halo rule's Gaussians had (measured with ±4σ supports). A 5 × 5 box (σ 1.41 px) reads 13, not 5: tiled
    with the 5-px rule it came out 8.2e-3 of the maximum from the whole map (RL, 30 iterations), FISTA 2.5e-2
    (helper 75, sixteenth session)."""
    from .psf._gaussian import axis_variances

    variances = axis_variances(psf)
    if variances is None:
        return 0
    var_r, var_c = variances
    sigma = math.sqrt(max(var_r, var_c, 0.0))
    return 2 * math.ceil(4.0 * sigma) + 1


def _canonical(method):
    try:
        return METHODS[str(method).lower()]
    except KeyError:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}") from None


# ---------------------------------------------------------------------------
# per-tile engine
# ---------------------------------------------------------------------------
def _rl_tile(image, psf, *, background, num_iter, start, eps, level, tv, pad, mask=None):
    """Richardson–Lucy on one tile with whole-map settings.

    The core iteration (:func:`xrfgpu.richardson_lucy.run_richardson_lucy`)
    started from the whole map's level ``start``, with the whole map's
    division guard ``eps`` and TV scale ``level``, which the front door
    derives from the data it is given. ``mask``: the tile's weights (the
    weighted EM update; ``level`` is then the whole map's mean over its
    measured pixels).
    """
    from ._problem import prepare
    from ._validate import require_nonnegative
    from .richardson_lucy import run_richardson_lucy

    pb = prepare(image, psf, background=background, boundary="reflect", pad=pad, iterative=True,
                 missing=mask is not None, mask=mask)
    require_nonnegative(pb.image, xp=pb.xp, what="Richardson-Lucy")
    return run_richardson_lucy(pb, num_iter=num_iter, filter_epsilon=eps, tv=tv, init=start, level=level)


def _call_engine(method, image, psf, background, options, weights=None):
    from . import fista, ista, tikhonov, wiener

    options = dict(options)
    fill_level = options.pop("fill_level", None)
    if method == "rl":
        return _rl_tile(image, psf, background=background, mask=weights, **options)
    engine = {"wiener": wiener, "tikhonov": tikhonov, "fista": fista, "ista": ista}[method]
    if weights is None:
        return engine(image, psf, background=background, boundary="reflect", **options)
    return _missing_pixels_engine(method, engine, image, psf, background, options, weights, fill_level)


def _missing_pixels_engine(method, engine, image, psf, background, options, weights, fill_level):
    """Wiener, Tikhonov, FISTA or ISTA on a tile with missing pixels: the engine's own problem and solver,
    with the whole map's mean of the measured pixels as the fill of pixels the PSF does not reach from any
    measured one (:attr:`xrfgpu._problem.Problem.fill_level`; the engine alone would take the tile's)."""
    from .fista import proximal_problem, run_proximal_gradient
    from .wiener import filter_problem, regularized_inverse, tikhonov_settings, wiener_settings

    given = {name: p.default for name, p in inspect.signature(engine).parameters.items()
             if p.default is not inspect.Parameter.empty}
    given.update(options)
    problem = dict(background=background, boundary="reflect", pad=given["pad"], mask=weights, fill_level=fill_level)
    if method in ("wiener", "tikhonov"):
        weight, order = (wiener_settings(given["balance"], given["regularizer"]) if method == "wiener"
                         else tikhonov_settings(given["lam"], given["order"]))
        return regularized_inverse(filter_problem(image, psf, **problem), weight, order)
    return run_proximal_gradient(proximal_problem(image, psf, **problem), lam=given["lam"],
                                 num_iter=given["num_iter"], nonneg=given["nonneg"], momentum=method == "fista",
                                 start=given["start"])


_GPU_LOCKS: dict = {}
_GPU_LOCKS_GUARD = threading.Lock()


def _gpu_lock(block):
    """The lock that runs this process's CuPy tiles one at a time on ``block``'s GPU.

    Dask's threaded scheduler calls the tile function from many threads at
    once. On one GPU that gains nothing (each tile fills the device), and
    CuPy's run-time compilation (NVRTC) of the same kernel from several threads
    at once never returned on an NVIDIA H100 (CuPy 14.2, 16 threads): the first
    tiled run hung, and every later compilation in the process hung with it.
    Serialising the tiles per device removes both. Several GPUs: one
    ``dask-cuda`` worker per GPU, each with its own lock.
    """
    device = int(getattr(getattr(block, "device", None), "id", 0))
    with _GPU_LOCKS_GUARD:
        return _GPU_LOCKS.setdefault(device, threading.Lock())


def _restore_tile(block, *more_blocks, method, psf, background, options, dtype, weighted=False):
    """Restore one tile (with its halo); the halo is trimmed by Dask. CuPy tiles run one at a time per GPU.

    ``more_blocks``: the background map's tile where the background is a map, then the weights' tile
    where the map has missing pixels (``weighted``)."""
    from ._backend import array_namespace, is_cupy_namespace

    xp = array_namespace(block)
    weights = None
    if weighted:
        *more_blocks, weights = more_blocks
    if is_cupy_namespace(xp):
        with _gpu_lock(block):
            return _restore_tile_body(block, *more_blocks, xp=xp, method=method, psf=psf,
                                      background=background, options=options, dtype=dtype, weights=weights)
    return _restore_tile_body(block, *more_blocks, xp=xp, method=method, psf=psf, background=background,
                              options=options, dtype=dtype, weights=weights)


def _restore_tile_body(block, *background_block, xp, method, psf, background, options, dtype, weights=None):
    dtype = getattr(xp, np.dtype(dtype).name)
    if background_block:
        background = background_block[0]
    if block.size == 0:
        return xp.astype(block, dtype)
    if weights is not None:
        return _restore_tile_with_missing_pixels(block, weights, xp=xp, method=method, psf=psf,
                                                 background=background, options=options, dtype=dtype)
    if not bool(xp.any(block != 0)):
        # the engines refuse an all-zero map; the answer is known
        if method in ("wiener", "tikhonov") or (method in ("fista", "ista") and not options.get("nonneg", True)):
            # linear methods: L(0 - b) = -L(b)
            b = background if hasattr(background, "shape") else xp.full(block.shape, float(background), dtype=dtype)
            if not bool(xp.any(b != 0)):
                return xp.zeros(block.shape, dtype=dtype)
            return -xp.astype(_call_engine(method, b, psf, 0.0, options), dtype)
        # RL is multiplicative and non-negative FISTA clips: zero data, zero estimate
        return xp.zeros(block.shape, dtype=dtype)
    return xp.astype(_call_engine(method, block, psf, background, options), dtype)


def _restore_tile_with_missing_pixels(block, weights, *, xp, method, psf, background, options, dtype):
    """A tile of a map with missing pixels (``weights`` 0 there, NaN in ``block`` or not).

    The engines' weighted problems with the whole map's settings. A tile whose window (core and halo)
    holds no measured pixel gets what the whole map gives it: Richardson–Lucy keeps its start there
    (``ĥ ⊛ w`` vanishes: the correction is 1), Wiener and Tikhonov filter the whole map's fill level; FISTA
    and ISTA, whose answer there depends on iterations the tile cannot see, are refused with the way out.
    A tile whose measured pixels are all zero is given the all-zero answer below (the whole map differs
    only at pixels deeper inside a hole than the PSF reaches, which keep the start or the fill).
    """
    measured = weights > 0
    if not bool(xp.any(measured)):
        if method == "rl":
            return xp.full(block.shape, float(options["start"]), dtype=dtype)
        if method in ("wiener", "tikhonov"):
            level = xp.full(block.shape, float(options["fill_level"]), dtype=dtype)
            return xp.astype(_call_engine(method, level, psf, background, options), dtype)
        raise ValueError(
            f"a tile of {tuple(block.shape)} px (halo included) holds no measured pixel: {method} cannot restore "
            "the inside of a hole tile by tile; use a larger tile than the hole, or restore the map whole"
        )
    data = xp.where(measured, block, xp.zeros_like(block))
    if not bool(xp.any(data != 0)):
        return _restore_tile_body(data, *([background] if hasattr(background, "shape") else []), xp=xp,
                                  method=method, psf=psf, background=background, options=options, dtype=dtype)
    return xp.astype(_call_engine(method, data, psf, background, options, weights=weights), dtype)


# ---------------------------------------------------------------------------
# front door
# ---------------------------------------------------------------------------
def restore(array, psf, method="rl", *, tile=1024, halo=None, mask=None, **kwargs):
    """Restore a large map or an element stack tile by tile with Dask.

    Parameters
    ----------
    array : dask.array.Array or array, shape (rows, cols) or (elements, rows, cols)
        Observed count map(s). NumPy- or CuPy-backed Dask chunks; a plain
        array is wrapped with :func:`dask.array.from_array`: a Zarr array or
        an h5py dataset is read in its stored chunks (contiguous HDF5 in
        tiles), never whole, so it may be larger than memory. The result is
        computed in tiles of ``tile × tile`` pixels (the array is rechunked
        to that, one element per chunk for stacks). A NumPy masked array
        (or a Dask array of masked chunks) has missing pixels where it is
        masked, as in :func:`xrfgpu.richardson_lucy`; with ``mask=`` the two
        combine (a pixel is used only where both keep it).
    psf : array, shape (kr, kc) or (elements, kr, kc), or sequence of 2-D arrays
        PSF in pixels of the map (normalised to unit sum by the engine). A
        stack takes one PSF for all elements or one per element (a sequence
        may hold PSFs of different sizes).
    method : {"rl", "richardson_lucy", "wiener", "tikhonov", "fista", "ista"}
        Restoration engine.
    tile : int
        Tile side in pixels (core of each tile, halo excluded). 1024–4096
        suits CPUs and GPUs alike.
    halo : int, optional
        Overlap per side in pixels; default :func:`default_halo` for the
        method, its iteration count and the PSF (per element).
    mask : array or dask.array.Array, shape (rows, cols) or the stack's, optional
        Weights of the pixels: 1 (True) measured, 0 (False) missing, as
        ``mask=`` of :func:`xrfgpu.richardson_lucy`, :func:`xrfgpu.fista`,
        :func:`xrfgpu.wiener` and :func:`xrfgpu.tikhonov`; one mask for every
        map of a stack or one per map. A masked array as ``mask`` is weight 0
        at its masked entries (:func:`xrfgpu._validate.mask_data`). NaN
        pixels of the map are missing too, with or without a mask. Every method then solves the whole-map
        problem with weights, tile by tile: Richardson–Lucy and FISTA leave
        the missing pixels out of the fit, Wiener and Tikhonov fill them
        from their measured neighbours (normalised convolution), and the
        whole map's settings are taken over its measured pixels (RL's start
        level, FISTA's default ``lam``, the fill level of pixels the PSF
        does not reach from any measured one).
    **kwargs
        Options of the engine, e.g. ``num_iter``, ``background`` (scalar,
        a sequence of one scalar per element, or an array/Dask array of the
        map's shape), ``tv``, ``pad``, ``filter_epsilon`` for RL; ``balance``,
        ``regularizer`` for Wiener; ``lam``, ``order`` for Tikhonov;
        ``lam``, ``num_iter``, ``nonneg`` for FISTA.

    Returns
    -------
    restored : dask.array.Array
        Lazy result of the input's shape, float32 (float64 for float64
        input), chunks ``tile × tile`` (one element per chunk), same chunk
        type (NumPy or CuPy) as the input. Call ``.compute()`` or write it
        with :func:`dask.array.to_zarr`; whole-map statistics (RL's start
        level, FISTA's default ``lam``, and for every method whether a map
        is all zeros) are computed eagerly here, which reads the input once.
        An all-zero map is returned as zeros (see Warns).

    Raises
    ------
    ValueError
        Unknown method, bad tile/halo, halo smaller than the PSF half-width,
        options that cannot be tiled (``tol``, ``discrepancy``,
        ``accelerate=True``, ``callback``, ``boundary="periodic"``,
        ``background="auto"``), PSF count not matching the stack, maps under
        2 × 2 pixels, a PSF larger than the map, negative pixels for RL
        (naming the map; checked in a read of its own before the
        statistics, so RL reads the input twice), infinite pixels not marked
        missing, a mask of another shape or outside [0, 1], every pixel of a
        map missing; a PSF with negative, NaN or infinite entries, all zero or
        with masked entries, a background with NaN, infinite or negative
        values (an in-memory one; a Dask array's at the statistics) or with
        masked entries (all checked before the graph is built, in the words
        of the whole-map functions);
        at compute time, FISTA or ISTA on a tile whose window (halo
        included) holds no measured pixel (a hole larger than the tile).
    TypeError
        Unknown options for the method; non-array input; a map, PSF or
        background that is complex or holds no numbers (str, object).

    Warns
    -----
    UserWarning
        A map (or map ``k`` of a stack) that is all zeros: an element absent
        from the scan. It is returned as zeros, whatever the background, one
        warning per map. This is the command line's behaviour (``xrfgpu
        restore`` writes such a map as zeros with a warning and records it as
        ``skipped``), chosen over the refusal of :func:`xrfgpu.restore` and
        the solvers because this function and :func:`restore_zarr` stream
        whole element stacks, in which one absent element must not stop the
        others; a single map that must be refused is refused by
        :func:`xrfgpu.restore`.

    Notes
    -----
    See the module docstring for the border rule (``map_overlap`` with
    ``boundary="reflect"``, the same half-sample symmetric reflection as the
    whole-map engines; real neighbouring data in the halo at inner borders)
    and the halo rule. The default halo is :func:`default_halo`, widened by
    :func:`fast_halo` so that ``tile + 2·halo`` is a fast transform length;
    an explicit ``halo`` is used as given. With the default halo the tiled result equals
    the whole-map call to 1e-4 of the whole-map maximum.

    Examples
    --------
    >>> import dask.array as da
    >>> from xrfgpu import psf, phantom
    >>> from xrfgpu import dask as xdask
    >>> counts, truth, h = phantom.observe((300, 340), 2.0, seed=0)
    >>> lazy = xdask.restore(da.from_array(counts), h, "rl", tile=128, num_iter=10, background=100.0)
    >>> lazy.compute().shape
    (300, 340)

    Backends
    --------
    NumPy or CuPy chunks (CuPy on ``dask-cuda`` workers for several GPUs);
    any Dask scheduler.
    """
    return _restore(array, psf, method, tile=tile, halo=halo, names=None, mask=mask, **kwargs)


def _restore(array, psf, method, *, tile, halo, names, mask=None, chosen=None, **kwargs):
    """:func:`restore`, with the stack's element ``names`` (or None) named in its errors. ``chosen``: a dict that
    receives the whole map's weight per element where Wiener's or Tikhonov's was ``"auto"`` (the record of
    :func:`restore_zarr`)."""
    da = _dask_array()
    method = _canonical(method)
    if not isinstance(array, da.Array) and not (hasattr(array, "shape") and hasattr(array, "dtype")):
        raise TypeError(f"array must be a Dask array or an array, got {type(array).__name__}")
    array, hidden = _data_and_masked_entries(array)
    _refuse_non_real(array, name="array", what="counts or concentrations")
    if not isinstance(array, da.Array):
        array = da.from_array(array, chunks=_source_chunks(array, tile))
    if array.ndim not in (2, 3):
        raise ValueError(f"array must be 2-D (rows, cols) or 3-D (elements, rows, cols), got shape {array.shape}")
    rows, cols = array.shape[-2:]
    if rows < 2 or cols < 2:
        # checked here, in the caller's shape: the engines would name a tile's shape (halo included)
        what = (f"a map of {rows} x {cols}" if array.ndim == 2 else
                f"{array.shape[0]} maps of {rows} x {cols} (the element axis comes first)")
        raise ValueError(f"array of shape {tuple(array.shape)} is {what}: a map needs at least 2 pixels along each axis")
    tile = check_positive_int(tile, "tile")
    dtype = np.float64 if is_float64(array.dtype) else np.float32

    options = dict(kwargs)
    background = options.pop("background", 0.0)
    if isinstance(background, str):
        raise ValueError(
            f"background={background!r} cannot be tiled: the automatic background is a whole-map estimate; pass a "
            "number (or a map), e.g. the one xrfgpu.restore(map, return_info=True) records as info['background'], "
            "or xrfgpu.background.estimate_background(map)"
        )
    background = _checked_background(background, stack=array.ndim == 3)
    _check_options(method, options)

    if array.ndim == 2:
        psfs = [_host_psf(psf, "psf")]
        maps = [array]
        backgrounds = [background]
    else:
        n = array.shape[0]
        psfs = _stack_psfs(psf, n)
        maps = [array[i] for i in range(n)]
        backgrounds = _stack_backgrounds(background, n, array.shape)
    for k, h in enumerate(psfs):
        if h.shape[0] > rows or h.shape[1] > cols:
            # checked in the caller's shape: the engine would name a tile's shape, halo included
            which = (f"the map ({rows}, {cols})" if array.ndim == 2
                     else f"{_map_label(k, names)}, shape ({rows}, {cols})")
            raise ValueError(
                f"{'psf' if array.ndim == 2 else f'psf[{k}]'} of shape {tuple(h.shape)} is larger than {which}; "
                "crop the PSF (a Gaussian needs about 8 sigma) or restore a larger map"
            )
    lazy_mask = None if mask is None else _as_lazy_mask(mask, array.shape, array.chunks)
    if hidden is not None:  # a masked array's masked entries are missing pixels, as in the whole-map functions
        keep = ~(hidden if isinstance(hidden, da.Array) else da.from_array(hidden, chunks=array.chunks))
        lazy_mask = keep if lazy_mask is None else lazy_mask * keep
    weights = _lazy_weights(maps, lazy_mask)
    if method == "rl":  # refused before any tile runs, naming the map (a tile found it only when it ran)
        _require_nonnegative(maps, names, weights)

    # whole-map statistics, one read of the data for all elements
    settings, all_zero, weights = _global_settings(method, maps, backgrounds, options, names=names, weights=weights,
                                                   masked=lazy_mask is not None)
    if method in ("wiener", "tikhonov"):
        from .wiener import _check_weight

        key = "balance" if method == "wiener" else "lam"
        for k, (image, h, b, opts, w) in enumerate(zip(maps, psfs, backgrounds, settings, weights)):
            # checked as the whole-map functions check it: a string other than "auto" ("0.1" from a file, "Auto")
            # had run "auto" without a word
            opts[key] = _check_weight(opts.get(key, AUTO), key, auto=True)
            if opts[key] == AUTO:
                if not all_zero[k]:  # an all-zero map's tiles short-cut to zeros: no weight (None in the record)
                    opts[key] = _whole_map_filter_weight(method, image, h, b, opts, w)
                if chosen is not None:
                    chosen.setdefault(key, []).append(None if all_zero[k] else opts[key])
    restored = []
    for k, (image, h, b, opts, w) in enumerate(zip(maps, psfs, backgrounds, settings, weights)):
        if all_zero[k]:
            # an element absent from the scan: zeros, as the command line writes it (every tile short-cuts to 0)
            which = "the map" if array.ndim == 2 else _map_label(k, names)
            warnings.warn(f"{which} is all zeros: nothing to restore; returned as zeros", UserWarning, stacklevel=2)
            b = 0.0
        restored.append(_restore_map(image, h, b, method, opts, tile, halo, dtype, weights=w))
    if array.ndim == 2:
        return restored[0]
    return da.stack(restored, axis=0)


def _whole_map_filter_weight(method, image, psf, background, options, weights):
    """The whole map's own filter weight (``balance``/``lam="auto"``) for Wiener or Tikhonov on tiles.

    :func:`xrfgpu.filter_weight.discrepancy_weight` reads the whole map's power spectrum, which no sum over
    tiles gives: the map (and a background map, and the weights of missing pixels) is read into host memory
    once, and the weight found there is the number every tile then uses, as the whole-map call would. Each
    tile choosing its own weight had given a tiled Wiener map 2.8 % of its maximum away from the whole map's.
    """
    from .wiener import auto_weight

    def host(x):
        if x is None or not hasattr(x, "shape"):
            return x
        return np.asarray(to_numpy(x.compute() if hasattr(x, "compute") else x))

    return auto_weight(method, host(image), psf, background=host(background), pad=options.get("pad"),
                       mask=host(weights), fill_level=options.get("fill_level"),
                       regularizer=options.get("regularizer", "laplacian"), order=options.get("order", 0)).weight


def _data_and_masked_entries(array):
    """``(data, hidden)``: the map(s) as plain data, and a masked array's masked entries (None if it masks none).

    A NumPy masked array (or a Dask array of masked chunks) holds missing pixels where it is masked, as
    :func:`xrfgpu.richardson_lucy` and the other whole-map functions read it; :func:`restore` combines them
    with ``mask=``. Before, its tiles refused it without ``mask=`` and dropped its mask with it (the values
    under the mask were restored as measured). A NumPy ndarray subclass (``numpy.matrix``) becomes a plain
    ndarray (:func:`xrfgpu._validate.plain_array`). A Dask array of masked chunks is read once here to see
    whether anything is masked.
    """
    da = _dask_array()
    if isinstance(array, da.Array):
        if not isinstance(getattr(array, "_meta", None), np.ma.MaskedArray):
            return array, None
        hidden = da.ma.getmaskarray(array)
        data = da.ma.getdata(array)
        return data, (hidden if bool(hidden.any().compute()) else None)
    masked = _host_masked(array)
    if masked is None:
        return plain_array(array), None
    data, hidden = masked
    return plain_array(data), (hidden if bool(hidden.any()) else None)


def _checked_background(background, *, stack, name="background"):
    """``background=`` checked as the whole-map functions check it, before anything is read or tiled.

    A number must be real, finite and >= 0; an array must hold real numbers (not complex, text or
    Python objects) with no masked entry, and one in memory is checked for NaN, inf and negative values
    here (a Dask array's values are read with the map's statistics). Before, a ``numpy.matrix`` failed
    with an IndexError, an object array in Dask's rechunking, and a complex one lost its imaginary part.

    Returns
    -------
    float, array or list
        A number as a float; an array as given, with a NumPy ndarray subclass (``numpy.matrix``) as a
        plain ndarray and a masked array masking nothing as its data; a stack's sequence (one value per
        map) element by element.
    """
    from ._backend import array_namespace

    da = _dask_array()
    if stack and isinstance(background, (list, tuple)):
        return [_checked_background(b, stack=False, name=f"background[{i}]") for i, b in enumerate(background)]
    xnp = array_namespace(np.zeros(0))
    if not (hasattr(background, "shape") and hasattr(background, "dtype")):
        return as_background(background, None, xp=xnp, name=name)
    b = background_data(background, name=name)
    if not isinstance(b, da.Array):
        try:
            host = np.asarray(to_numpy(b))
        except TypeError:
            host = np.asarray(b)
        as_background(host, np.broadcast_to(np.zeros((), np.float64), host.shape), xp=xnp, name=name)
    return b


def _source_chunks(array, tile):
    """Dask chunks in which to read a plain array: a stored one (Zarr, h5py) piece by piece, never whole.

    A Zarr array or chunked HDF5 dataset is read in its storage's chunks; one
    without chunks (contiguous HDF5) in tiles, one map at a time; an array
    already in memory (NumPy, CuPy) as one chunk, cut into tiles after.
    """
    if isinstance(array, np.ndarray) or not hasattr(array, "chunks"):
        return -1
    ndim = len(array.shape)
    stored = array.chunks
    if isinstance(stored, tuple) and len(stored) == ndim and all(isinstance(c, (int, np.integer)) and c > 0
                                                                  for c in stored):
        return tuple(int(c) for c in stored)
    side = check_positive_int(tile, "tile")
    return (1,) * max(ndim - 2, 0) + (side,) * min(ndim, 2)


def _check_options(method, options):
    boundary = options.pop("boundary", "reflect")
    if boundary != "reflect":
        raise ValueError(
            f"tiled restoration supports boundary='reflect' only, got {boundary!r}: "
            "a tile of a periodic map is not periodic"
        )
    if method == "rl":
        for name, why in _RL_REFUSED.items():
            if options.get(name) is not None:
                raise ValueError(f"{name}= cannot be used with tiled restoration: {why}")
            options.pop(name, None)
        if options.pop("accelerate", False):
            raise ValueError(
                "accelerate=True cannot be used with tiled restoration here: each tile iterates on its own, "
                "and the Biggs-Andrews step length is an inner product over the whole map; "
                "xrfgpu.dask_rl.richardson_lucy runs the accelerated whole-map iteration over tiles "
                "(every iteration's step length from the whole map), as `xrfgpu restore --tile` does"
            )
        unknown = set(options) - _RL_OPTIONS
        if unknown:
            raise TypeError(f"unknown Richardson-Lucy option(s) for tiled restoration: {sorted(unknown)}")
        options.setdefault("num_iter", _default_num_iter("rl"))

        options["num_iter"] = check_num_iter(options["num_iter"])
        options["tv"] = float(options.get("tv", 0.0))
        if options["tv"] < 0 or not math.isfinite(options["tv"]):
            raise ValueError(f"tv must be a finite weight >= 0, got {options['tv']}")
        options.setdefault("pad", None)
        return
    from . import fista, ista, tikhonov, wiener

    engine = {"wiener": wiener, "tikhonov": tikhonov, "fista": fista, "ista": ista}[method]
    if options.get("callback") is not None:
        raise ValueError(f"callback= cannot be used with tiled restoration: {_RL_REFUSED['callback']}")
    options.pop("callback", None)
    params = inspect.signature(engine).parameters
    unknown = set(options) - (set(params) - {"image", "psf", "background", "boundary"})
    if unknown:
        raise TypeError(f"unknown {method} option(s): {sorted(unknown)}")


def _host_psf(psf, name):
    """``psf`` on the host, checked as the whole-map functions check it (real, finite, >= 0, not all zero, no
    masked entry), here rather than in the first tile that runs; returned as given (not normalised)."""
    from ._backend import array_namespace

    if not (hasattr(psf, "shape") and hasattr(psf, "dtype")):
        raise TypeError(f"{name} must be an array, got {type(psf).__name__}")
    psf = psf_data(psf, name=name)
    try:
        h = to_numpy(psf)
    except TypeError:
        h = np.asarray(psf)
    h = plain_array(h)
    if h.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {h.shape}")
    as_psf(h, h.shape, xp=array_namespace(np.zeros(0)), dtype=np.float64, name=name)  # size: checked by the caller
    return h


def _stack_psfs(psf, n):
    if isinstance(psf, (list, tuple)):
        if len(psf) != n:
            raise ValueError(f"got {len(psf)} PSFs for a stack of {n} elements")
        return [_host_psf(h, f"psf[{i}]") for i, h in enumerate(psf)]
    if not (hasattr(psf, "shape") and hasattr(psf, "dtype")):
        raise TypeError(f"psf must be an array or a sequence of arrays, got {type(psf).__name__}")
    if psf.ndim == 2:
        h = _host_psf(psf, "psf")
        return [h] * n
    if psf.ndim == 3:
        if psf.shape[0] != n:
            raise ValueError(f"got {psf.shape[0]} PSFs for a stack of {n} elements")
        return [_host_psf(psf[i], f"psf[{i}]") for i in range(n)]
    raise ValueError(f"psf must be 2-D or (elements, kr, kc), got shape {psf.shape}")


def _stack_backgrounds(background, n, shape):
    if hasattr(background, "shape") and hasattr(background, "dtype"):
        if background.ndim == 0:
            return [float(background)] * n
        if tuple(background.shape) == tuple(shape):
            return [background[i] for i in range(n)]
        if tuple(background.shape) == (n,):
            return [float(background[i]) for i in range(n)]
        raise ValueError(f"background of shape {background.shape} does not match the stack {shape}")
    if isinstance(background, (list, tuple)):
        if len(background) != n:
            raise ValueError(f"got {len(background)} backgrounds for a stack of {n} elements")
        return list(background)
    return [background] * n


def _require_nonnegative(maps, names, weights):
    """Refuse RL on maps with negative measured pixels, naming each (one reduction per map, computed together).

    ``weights``: each map's lazy weights (:func:`_lazy_weights`); a missing pixel's value is not looked at."""
    import dask

    on_gpu = any(type(m._meta).__module__.startswith("cupy") for m in maps)
    da = _dask_array()
    lows = dask.compute(*[da.min(da.where(w > 0, m, 0)) for m, w in zip(maps, weights)],
                        **({"scheduler": "synchronous"} if on_gpu else {}))
    bad = [(k, float(low)) for k, low in enumerate(lows) if float(low) < 0]
    if bad:
        which = "; ".join(("the map" if len(maps) == 1 else _map_label(k, names)) + f": minimum {low:g}"
                          for k, low in bad)
        raise ValueError(
            f"negative values ({which}), which tiled Richardson-Lucy does not take (it models Poisson counts >= 0): "
            "give an offset as background=, clip the map at 0, or restore a fitted map with xrfgpu.restore or "
            "the command line (with --tile too), which set a fitted map's negative values to 0 and record the fraction"
        )


def _lazy_weights(maps, mask):
    """Each map's lazy weights, float64: the mask's (one map for all, or one per map; 1 where None) times 0 at
    NaN pixels. Used only where the map turns out to have missing pixels (:func:`_global_settings`)."""
    da = _dask_array()
    out = []
    for k, image in enumerate(maps):
        keep = ~da.isnan(image)
        if mask is None:
            out.append(keep.astype(np.float64))
            continue
        m = (mask if mask.ndim == 2 else mask[k]).astype(np.float64)
        meta = getattr(image, "_meta", None)
        if not isinstance(meta, np.ndarray) and isinstance(getattr(m, "_meta", None), np.ndarray):
            # CuPy chunks and a NumPy mask: the weights go to the chunks' device
            from .dask_rl import _in_namespace_of

            m = m.map_blocks(functools.partial(_in_namespace_of, like=meta), meta=meta.astype(np.float64))
        out.append(da.where(keep, m, 0.0))
    return out


def _as_lazy_mask(mask, shape, chunks):
    """``mask=`` of :func:`restore` as a Dask array: (rows, cols) for every map, or the stack's shape."""
    da = _dask_array()
    if not (hasattr(mask, "shape") and hasattr(mask, "dtype")):
        raise TypeError(f"mask must be an array of weights (1 = measured, 0 = missing), got {type(mask).__name__}")
    mask = mask_data(mask)  # numpy.matrix as a plain ndarray; a masked array's masked entries weight 0
    if tuple(mask.shape) not in (tuple(shape[-2:]), tuple(shape)):
        which = "(rows, cols)" if len(shape) == 2 else "(rows, cols) for every map, or the stack's shape"
        raise ValueError(f"mask has shape {tuple(mask.shape)}; the maps have shape {tuple(shape)}: give {which}")
    kind = np.dtype(mask.dtype).kind
    if kind == "c":
        raise TypeError(f"mask must be real weights, got dtype {mask.dtype}")
    if kind not in "biuf":
        raise TypeError(f"mask must hold numbers or booleans, got dtype {mask.dtype}")
    if not isinstance(mask, da.Array):
        mask = da.from_array(mask, chunks=chunks[-mask.ndim:])
    return mask


def _map_label(k, names):
    """``map 3 of the stack`` or, where the file names its maps, ``map 3 of the stack ('Fe')``."""
    return f"map {k} of the stack" + (f" ({str(names[k])!r})" if names and k < len(names) else "")


def _global_settings(method, maps, backgrounds, options, *, names=None, weights, masked=False):
    """Per-element options with the whole map's data-dependent numbers filled in, whether each map is all
    zeros (over its measured pixels), and each map's weights where it has missing pixels (else None):
    ``(settings, all_zero, weights)``, from one read of the data.

    A map has missing pixels where ``masked`` (``mask=`` given) or where it holds NaN; its settings are then
    those of the whole-map call with weights: Richardson–Lucy's level is the mean of the measured pixels, FISTA's
    default ``lam`` the largest weighted deviation, and every method gets the measured mean as ``fill_level``
    (:attr:`xrfgpu._problem.Problem.fill_level`). The weights ``w`` (:func:`_lazy_weights`) are those of
    :func:`xrfgpu._validate.as_image_with_weights`: the mask's, 0 at NaN.
    """
    da = _dask_array()
    per_element = [dict(options) for _ in maps]
    lazy = []
    for image, b, w in zip(maps, backgrounds, weights):
        y = image.astype(np.float64)
        measured = w > 0
        y0 = da.where(measured, y, 0.0)
        bb = da.asarray(b).astype(np.float64) if hasattr(b, "shape") else float(b)
        row = {
            "nonzero": da.any(measured & (image != 0)),  # an absent element is all zeros
            "nan": da.any(da.isnan(image)),
            # refused where it would be read, not at a pixel already marked missing (as the whole-map functions)
            "inf": da.any(da.isinf(image) & measured),
            "sw": da.sum(w),
            "swy": da.sum(w * y0),
            "w_low": da.min(w),
            "w_high": da.max(w),
        }
        if method == "rl":
            row["mean"] = da.mean(y)
            row["mean_b"] = da.mean(bb) if hasattr(b, "shape") else float(b)
        elif method in ("fista", "ista"):
            if options.get("lam") is None:
                row["deviation"] = da.max(da.abs(y - bb))
                row["weighted_deviation"] = da.max(w * da.abs(y0 - bb))
            if hasattr(b, "shape"):  # the flat start's level needs Σ w (y − b); a number's is swy / sw − b
                row["swb"] = da.sum(w * (y0 - bb))
        lazy.append(row)
    import dask

    # CuPy chunks: reduce on one thread (concurrent run-time compilation of CuPy kernels hangs, see _gpu_lock)
    on_gpu = any(type(m._meta).__module__.startswith("cupy") for m in maps)
    (values,) = dask.compute(lazy, **({"scheduler": "synchronous"} if on_gpu else {}))
    values = [{key: float(v) for key, v in row.items()} for row in values]
    all_zero, used_weights = [], []
    for k, (row, opts, b) in enumerate(zip(values, per_element, backgrounds)):
        which = "the array" if len(maps) == 1 else _map_label(k, names)
        if row["inf"]:
            raise ValueError(f"{which} contains infinite values; mark missing pixels as NaN or with mask= (weight 0)")
        if masked and not (math.isfinite(row["w_low"]) and math.isfinite(row["w_high"])):
            raise ValueError(f"the mask of {which} contains NaN or infinite values; it holds weights in [0, 1]")
        if masked and (row["w_low"] < 0 or row["w_high"] > 1):
            raise ValueError(f"mask must hold weights in [0, 1] (1 = measured pixel, 0 = missing), got values in "
                             f"[{row['w_low']:g}, {row['w_high']:g}]")
        missing = masked or bool(row["nan"])
        if missing and not row["sw"] > 0:
            raise ValueError(f"every pixel of {which} is missing (NaN or mask weight 0): there is nothing to restore")
        all_zero.append(not row["nonzero"])
        used_weights.append(weights[k] if missing else None)
        measured_mean = row["swy"] / row["sw"] if missing else None
        if method == "rl":
            if not math.isfinite(row["mean_b"]):
                raise ValueError(f"the background of {which} contains NaN or infinite values")
            level = measured_mean if missing else row["mean"]
            eps = opts.pop("filter_epsilon", None)
            opts["eps"] = float(eps) if eps is not None else 1e-6 * max(level, 1e-30)
            opts["start"] = max(level - row["mean_b"], 1e-3 * level, 1e-30)
            opts["level"] = level
        elif method in ("fista", "ista"):
            if "deviation" in row:
                deviation = row["weighted_deviation"] if missing else row["deviation"]
                if not math.isfinite(deviation):
                    raise ValueError(f"the background of {which} contains NaN or infinite values")
                opts["lam"] = DEFAULT_LAM_FRACTION * deviation
            if isinstance(opts.get("start", "flat"), str) and opts.get("start", "flat") == "flat":
                # the whole map's mean above its background over its measured pixels (w = 1 at every pixel of a
                # map without missing ones)
                above = row["swb"] if "swb" in row else row["swy"] - float(b) * row["sw"]
                opts["start"] = above / row["sw"]
        if missing:
            opts["fill_level"] = measured_mean
    return per_element, all_zero, used_weights


def _default_num_iter(method):
    """The engine's own default iteration count (None for direct methods)."""
    import xrfgpu

    if method not in ("rl", "fista", "ista"):
        return None
    engine = xrfgpu.richardson_lucy if method == "rl" else getattr(xrfgpu, method)
    return int(inspect.signature(engine).parameters["num_iter"].default)


def fast_halo(tile, halo):
    """Smallest halo ≥ ``halo`` for which ``tile + 2·halo`` is a fast transform length.

    The diagonal engines (Wiener, Tikhonov, and RL/FISTA where the DCT is
    the cheaper engine) transform each tile at its own size (DCT-II for the
    exact mirror boundary, FFT on a padded canvas otherwise; the extended
    and separable engines round their canvas or lines up themselves), and a length with a
    large prime factor is several times slower than a smooth one (scipy.fft
    DCT pair on 2 cores: 2148² 176 ms, 2160² 51 ms). A wider halo is only
    more accurate.
    """
    from ._backend import fft_size

    halo = int(halo)
    return (fft_size(int(tile) + 2 * halo) - int(tile) + 1) // 2


def _restore_map(image, psf, background, method, options, tile, halo, dtype, weights=None):
    da = _dask_array()
    if halo is None:
        num_iter = options.get("num_iter", _default_num_iter(method))
        halo = fast_halo(tile, default_halo(psf.shape, method, num_iter=num_iter, psf=psf))
    else:
        halo = int(halo)
        if halo < max(psf.shape) // 2:
            raise ValueError(f"halo={halo} is smaller than the PSF half-width {max(psf.shape) // 2}")
    # an axis no longer than the halo is not cut (a tile with its halo would hold all of it, and Dask refuses a
    # halo deeper than the array: an 11-px MAPS map in tiles of 8 failed with "overlapping depth 20 ...")
    chunks = _tile_chunks(image.shape, tile, halo)
    image = image.rechunk(chunks)
    # an axis held by a single tile needs no halo: the engine's mirror is the whole-map rule there
    depth = {axis: (halo if len(image.chunks[axis]) > 1 else 0) for axis in (0, 1)}
    arrays = [image]
    if hasattr(background, "shape") and getattr(background, "ndim", 0) > 0:
        if tuple(background.shape) != tuple(image.shape):
            raise ValueError(f"background of shape {background.shape} does not match the map {image.shape}")
        if not isinstance(background, da.Array):
            background = da.from_array(background, chunks=(tile, tile))
        arrays.append(background.rechunk(chunks))
        background = None
    else:
        background = float(background)
    if weights is not None:  # missing pixels: each tile gets its weights (mirrored at the border as the map is)
        arrays.append(weights.rechunk(chunks))
    meta = image._meta.astype(dtype) if hasattr(image._meta, "astype") else np.empty((0, 0), dtype)
    result = da.map_overlap(
        _tile_function(method, psf, background, options, dtype, weighted=weights is not None),
        *arrays,
        depth=depth,
        boundary=_outer_boundary(psf, tv=options.get("tv", 0.0) if method == "rl" else 0.0),
        trim=True,
        dtype=dtype,
        meta=meta,
    )
    return result.rechunk((tile, tile))


def _outer_boundary(psf, *, tv=0.0):
    """Dask's halo rule at the map's outer border for ``psf`` (and RL's ``tv``): ``"reflect"`` or ``"none"``.

    Dask's ``"reflect"`` halo mirrors the blurred *data*; the whole-map model mirrors the *scene*
    and then blurs it. The two agree when the PSF is mirror-symmetric along both axes (a round or
    axis-aligned elliptical Gaussian), and then every full tile has the same fast shape. A rotated
    elliptical spot (ρ ≠ 0, as `fit_dot` measures it) is not: with the mirrored data the border
    tiles of FISTA differed from the whole map by 31 % of its maximum (ρ = 0.3, σ 1.8 × 2.9 px,
    128² map, tiles of 64). With ``"none"`` the border tiles get no halo beyond the map and the
    engine extends them by its own rule, the whole map's.

    RL with TV (``tv`` > 0) gets ``"none"`` too, whatever the PSF: its TV term takes forward differences
    (:func:`xrfgpu.richardson_lucy._tv_factor`), which a mirror does not map onto themselves, so a border
    tile's mirrored halo drifted from the mirror of the map it is meant to be, and the map's first pixels with
    it (seventh QA pass: 2.5e-2 of the maximum at ``tv=0.01``, 30 iterations, tiles 32–100, for any halo; now
    as the whole map, ``tests/test_seventh_qa_arrays.py``).
    """
    h = np.asarray(to_numpy(psf), dtype=np.float64)
    scale = float(np.max(np.abs(h))) or 1.0
    symmetric = (np.allclose(h, h[::-1, :], rtol=0.0, atol=1e-9 * scale)
                 and np.allclose(h, h[:, ::-1], rtol=0.0, atol=1e-9 * scale))
    return "reflect" if symmetric and not float(tv) > 0 else "none"


def _tile_chunks(shape, tile, halo):
    """Chunks ``(tile, tile)``, but the whole axis where the axis is no longer than ``halo``."""
    return tuple(int(n) if n <= halo else int(tile) for n in shape)


class _tile_function:
    """Picklable per-tile callable (for distributed workers)."""

    def __init__(self, method, psf, background, options, dtype, weighted=False):
        self.method = method
        self.psf = psf
        self.background = background
        self.options = options
        self.dtype = dtype
        self.weighted = weighted

    def __call__(self, block, *more_blocks):
        return _restore_tile(
            block,
            *more_blocks,
            method=self.method,
            psf=self.psf,
            background=self.background,
            options=self.options,
            dtype=self.dtype,
            weighted=self.weighted,
        )

    def __repr__(self):  # readable task names in the dashboard
        return f"xrfgpu-tile-{self.method}"


# ---------------------------------------------------------------------------
# streaming: Zarr / HDF5 in, Zarr out
# ---------------------------------------------------------------------------
class _scheduler:
    """Context that runs Dask computations on the scheduler the user named."""

    _NAMES = ("local", "threads", "threading", "synchronous", "sync", "single-threaded", "processes")

    def __init__(self, scheduler):
        if isinstance(scheduler, str):
            name = scheduler.strip()
            if name not in self._NAMES and ":" not in name:
                raise ValueError(
                    f"scheduler must be 'local', 'threads', 'synchronous', 'processes' or a "
                    f"dask.distributed address such as 'tcp://host:8786', got {scheduler!r}"
                )
        self.scheduler = scheduler
        self._client = None
        self._config = None

    def __enter__(self):
        import dask

        s = self.scheduler
        if s is None:
            return None  # dask's default, or a distributed Client already in scope
        if isinstance(s, str):
            name = s.strip()
            if name in ("local", "threads", "threading"):
                self._config = dask.config.set(scheduler="threads")
            elif name in ("synchronous", "sync", "single-threaded", "processes"):
                self._config = dask.config.set(scheduler=name)
            else:  # a dask.distributed scheduler address
                from distributed import Client

                self._client = Client(name, set_as_default=False)
                self._config = dask.config.set(scheduler=self._client)
        else:  # a distributed.Client (or anything dask accepts as scheduler=)
            self._config = dask.config.set(scheduler=s)
        self._config.__enter__()
        return self._client

    def __exit__(self, *exc):
        if self._config is not None:
            self._config.__exit__(*exc)
        if self._client is not None:
            self._client.close()
        return False


def restore_zarr(
    input,
    output,
    psf,
    method="rl",
    *,
    dataset=None,
    tile=2048,
    halo=None,
    scheduler=None,
    chunk_type="numpy",
    overwrite=False,
    provenance=None,
    **kwargs,
):
    """Stream a map or stack from Zarr/HDF5 through tiled restoration into Zarr.

    Reads chunk by chunk, restores tile by tile (:func:`restore`) and writes
    the result chunk by chunk, so peak memory is a few tiles per worker,
    whatever the map's size. The output store is published atomically and
    carries the provenance record (:func:`xrfgpu.provenance.make_record`) in
    its attributes, under the key ``"xrfgpu"``.

    Parameters
    ----------
    input : str or Path
        Zarr store or HDF5 file (never written).
    output : str or Path
        Zarr array store to create (chunks ``tile × tile``, one element per
        chunk for stacks; float32, or float64 for float64 input).
    psf : array or sequence of arrays
        As for :func:`restore` (pixels of the map).
    method : str
        Engine, see :func:`restore`.
    dataset : str, optional
        Array path inside the Zarr group or HDF5 file.
    tile, halo : int
        See :func:`restore`.
    scheduler : None, str or distributed.Client
        ``None``: Dask's default (threads, or the ``distributed`` client in
        scope); ``"local"``/``"threads"``, ``"synchronous"``, ``"processes"``;
        a ``dask.distributed`` scheduler address (``"tcp://host:8786"``),
        connected for this call and closed after; or a ``Client``.
    chunk_type : {"numpy", "cupy"}
        Move each chunk to the GPU of the worker that runs it (CuPy; with
        ``dask-cuda`` one worker per GPU) and back to the host for writing.
    overwrite : bool
        Replace an existing output store.
    provenance : dict, optional
        Extra entries for the record (e.g. the PSF source). The record says what
        was called (``"call": "xrfgpu.dask.restore_zarr"`` and its ``arguments``:
        paths, method, dataset, tile, halo, scheduler, engine options, PSF
        shapes); ``command`` is recorded only when this process is the
        ``xrfgpu`` command line (:func:`xrfgpu.provenance.xrfgpu_command_line`).
        The record names the maps of a MAPS or PyXRF stack (``elements``,
        from ``channel_names`` / ``xrf_fit_name``) and a MAPS scan's step
        (``pixel_size_um``, from ``MAPS/x_axis``); None where the input does
        not say them.
    **kwargs
        Engine options (``num_iter``, ``background``, ``balance``, ...) and
        ``mask=`` (missing pixels, as in :func:`restore`; the record names
        its shape, not its values).

    Returns
    -------
    output : Path

    Raises
    ------
    FileExistsError
        Output exists and ``overwrite`` is False.
    ValueError, TypeError
        As :func:`restore`, :func:`xrfgpu.chunked_io.open_chunked`.
    """
    import time
    from pathlib import Path

    from .chunked_io import check_zarr_name, open_chunked, write_zarr
    from .provenance import make_record

    if chunk_type not in ("numpy", "cupy"):
        raise ValueError(f"chunk_type must be 'numpy' or 'cupy', got {chunk_type!r}")
    if chunk_type == "cupy":  # before any work; the GPUs themselves may be on the workers only
        import importlib.util

        if importlib.util.find_spec("cupy") is None:
            raise ImportError("chunk_type='cupy' needs CuPy where restore_zarr is called and on every worker "
                              "(No module named 'cupy'); install it with `pip install xrfgpu[cuda12]` (or cuda13)")
    from .output_safety import check_outputs

    check_zarr_name(output)  # before any work: "out.h5" would be a Zarr folder taken for an HDF5 file
    check_outputs([output], [input], overwrite=overwrite)  # never on, in or around the input
    method = _canonical(method)
    context = _scheduler(scheduler)  # validates the name before any work
    started = time.perf_counter()
    array = open_chunked(input, dataset)
    if chunk_type == "cupy":
        import cupy

        array = array.map_blocks(cupy.asarray, dtype=array.dtype, meta=cupy.empty((0,) * array.ndim, array.dtype))
    names, pixel_size_um = _hdf5_stack_labels(input, dataset, tuple(array.shape))
    with context:
        chosen = {}  # Wiener's or Tikhonov's weight, where "auto" chose it (one per element)
        restored = _restore(array, psf, method, tile=tile, halo=halo, names=names, chosen=chosen, **kwargs)
        if chunk_type == "cupy":
            import cupy

            restored = restored.map_blocks(
                cupy.asnumpy, dtype=restored.dtype, meta=np.empty((0,) * restored.ndim, restored.dtype)
            )
        host_psfs = [_host_psf(psf, "psf")] if array.ndim == 2 else _stack_psfs(psf, array.shape[0])
        halos = [
            int(halo) if halo is not None
            else fast_halo(tile, default_halo(h.shape, method, num_iter=kwargs.get("num_iter"), psf=h))
            for h in host_psfs
        ]
        parameters = {k: _jsonable(v) for k, v in kwargs.items()}
        # what ran when not given: the engine's iteration count and no background
        if _default_num_iter(method) is not None:
            parameters.setdefault("num_iter", _default_num_iter(method))
        parameters.setdefault("background", 0.0)
        for key, values in chosen.items():  # the numbers "auto" chose, and the rule
            parameters[key] = values if array.ndim == 3 else values[0]
            parameters[f"{key}_rule"] = "auto: the whole map's, by the discrepancy principle (xrfgpu.filter_weight)"
        # the map's border as the tiles met it: Dask's mirrored halo, or none where the engine extends a
        # rotated PSF's border tiles itself (_outer_boundary); the restoration's boundary is reflect either way
        tv = float(kwargs.get("tv", 0.0)) if _canonical(method) == "rl" else 0.0
        outer = sorted({_outer_boundary(h, tv=tv) for h in host_psfs})
        parameters.update({"tile": int(tile), "halo": halos if array.ndim == 3 else halos[0],
                           "boundary": "reflect",
                           "tiling": "dask.array.map_overlap, boundary=" + " or ".join(repr(b) for b in outer)})
        record = make_record(
            method=method,
            parameters=parameters,
            psf={"shape_px": [list(h.shape) for h in host_psfs]},
            backend={"namespace": chunk_type, "device": "dask", "scheduler": _scheduler_name(scheduler)},
            input_path=input,
            input_format="zarr" if Path(input).is_dir() else "hdf5",
            elements=names,
            extra={"dataset": dataset, "output_shape": list(restored.shape), "output_dtype": str(restored.dtype),
                   "pixel_size_um": pixel_size_um},
            # what was called, as given (sys.argv is recorded only when it is the xrfgpu command line)
            call={"function": "xrfgpu.dask.restore_zarr", "arguments": {
                "input": str(input), "output": str(output),
                "psf": _jsonable(psf if hasattr(psf, "shape") else list(psf)), "method": method,
                "dataset": dataset, "tile": _jsonable(tile), "halo": _jsonable(halo),
                "scheduler": _scheduler_name(scheduler), "chunk_type": chunk_type, "overwrite": bool(overwrite),
                **{k: _jsonable(v) for k, v in kwargs.items()}}},
        )
        import zarr

        # the writer of the store (its format, v3, depends on it), and the cluster's library where one ran
        versions = record.setdefault("versions", {})
        versions["zarr"] = zarr.__version__
        if not (scheduler is None or isinstance(scheduler, str) and scheduler.strip() in _scheduler._NAMES):
            import distributed

            versions["distributed"] = distributed.__version__
        if provenance:
            record.update({k: _jsonable(v) for k, v in dict(provenance).items()})

        def attrs():
            record["timings_s"] = {"total": round(time.perf_counter() - started, 3)}
            return {"xrfgpu": record}

        return write_zarr(restored, output, overwrite=overwrite, attrs=attrs, inputs=[input])


def _hdf5_stack_labels(path, dataset, shape):
    """``(element names, pixel size in µm)`` of an HDF5 stack, where the file says them; else None each.

    A MAPS stack (``MAPS/XRF_fits`` ...) has ``channel_names`` beside it and the motor axes
    ``MAPS/x_axis`` in mm; a PyXRF one (``xrfmap/detsum/xrf_fit``) has ``xrf_fit_name``. Without
    them a zarr output of 23 maps would not say which map is which element.
    """
    from .chunked_io import is_hdf5
    from .io import _axis_step_um, _names

    if dataset is None or len(shape) != 3 or not is_hdf5(path):
        return None, None
    import h5py

    with h5py.File(path, "r") as f:
        name = str(dataset).strip("/")
        parent = f[name].parent
        names = None
        for key in ("channel_names", "xrf_fit_name"):
            if key in parent and isinstance(parent[key], h5py.Dataset):
                found = _names(parent[key])
                names = found if len(found) == shape[0] else None
                break
        pixel = None
        if name.startswith("MAPS/") and "MAPS/x_axis" in f:
            pixel = _axis_step_um(f["MAPS/x_axis"][()])
    return names, pixel


def _scheduler_name(scheduler):
    if scheduler is None or isinstance(scheduler, str):
        return scheduler or "default"
    return type(scheduler).__name__


def _jsonable(value):
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if hasattr(value, "shape"):
        return f"array of shape {tuple(value.shape)}"
    return repr(value)
