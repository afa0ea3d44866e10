"""Restore a stack of element maps at once: one PSF per element, one batched FFT per chunk.

A micro-XRF scan gives one map per element line, all on the same pixel grid,
each blurred by its own PSF (the beam spot depends on the line energy).
:func:`restore_stack` restores the whole (n_elements, rows, cols) stack with
the algorithms of :func:`xrfgpu.richardson_lucy`, :func:`xrfgpu.wiener`,
:func:`xrfgpu.tikhonov` and :func:`xrfgpu.fista`, batched: every FFT runs
over a (chunk, canvas rows, canvas cols) array with one transfer function per
map, and the elementwise steps run once over the chunk (the fused CUDA
kernels take per-map parameters). On CuPy the chunk is sized from the free
GPU memory; on NumPy from the available host memory.

The batched iterations are the single-map iterations with every scalar that
depends on the map (the RL guard ε and start value, FISTA's λ, step and
threshold, the acceleration weight) kept per map, so each restored map equals
the single-map call with the same PSF and ``pad`` to float rounding
(``tests/test_stack.py`` checks this on NumPy and array_api_strict).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from ._backend import array_device, array_namespace, fft_size, is_cupy_namespace, to_numpy, working_dtype
from ._problem import Problem, as_namespace
from ._validate import (
    _host_masked,
    as_background,
    as_image,
    as_psf,
    background_data,
    check_filter_epsilon,
    check_num_iter,
    check_pad,
    mask_data,
    psf_data,
    require_nonnegative,
)
from .device import resolve_device, to_caller, to_compute
from .fft import default_pad
from .fista import DEFAULT_NUM_ITER as FISTA_NUM_ITER
from .fista import PAD_FACTOR as PROXIMAL_PAD_FACTOR
from .fista import run_proximal_gradient
from .richardson_lucy import run_richardson_lucy
from .wiener import PAD_FACTOR as FILTER_PAD_FACTOR
from .filter_weight import AUTO
from .wiener import WIENER_REGULARIZERS, _check_weight, regularized_inverse

__all__ = ["restore_stack", "METHODS", "MIN_STACK_MAP_SIDE_PX", "ChannelsLastWarning", "stack_psfs"]

METHODS = ("rl", "wiener", "tikhonov", "fista")
# the single-map engines' reflect pads, in PSF extents (RL: prepare's default)
_PAD_FACTOR = {"rl": 2, "wiener": FILTER_PAD_FACTOR, "tikhonov": FILTER_PAD_FACTOR, "fista": PROXIMAL_PAD_FACTOR}
# working arrays per map, in canvas-sized real arrays (complex half spectra count ~1),
# including the FFT library's workspace: what one map of a chunk costs
_CANVASES = {"rl": 12, "wiener": 8, "tikhonov": 8, "fista": 10}
_HEADROOM = 0.7  # use at most this fraction of the free memory
# the narrowest map a stack may hold, in pixels per side: the smallest map xrfgpu.restore restores with its
# defaults (background="auto" needs the 5 x 5 window of estimate_background's local means). A stack whose maps
# are narrower is almost surely an (rows, cols, n) stack with its elements on the last axis (numpy.dstack).
MIN_STACK_MAP_SIDE_PX = 5
# a stack (a, b, c) with c at most this and a, b both at least CHANNELS_LAST_SIDE_RATIO × c is more likely c
# element maps on the last axis than a maps of b × c pixels: it is restored as given, with ChannelsLastWarning
# (a (200, 200, 6) dstack passed the 5-pixel minimum and was restored as 200 strips of 200 x 6)
CHANNELS_LAST_MAX_ELEMENTS = 32
CHANNELS_LAST_SIDE_RATIO = 4


class ChannelsLastWarning(UserWarning):
    """A stack whose shape suggests its element maps lie on the last axis; it is restored as given."""


def check_stack_map_sides(shape):
    """Refuse a stack ``(n, rows, cols)`` whose maps are narrower than :data:`MIN_STACK_MAP_SIDE_PX`.

    Parameters
    ----------
    shape : tuple of int
        Shape of the stack; only a 3-D shape is checked (others are refused elsewhere with their own message).

    Raises
    ------
    ValueError
        ``rows`` or ``cols`` below :data:`MIN_STACK_MAP_SIDE_PX`, with the shape and the way round for a
        channels-last stack (``numpy.moveaxis(stack, -1, 0)``).

    Warns
    -----
    ChannelsLastWarning
        A stack ``(a, b, c)`` with ``c`` ≤ :data:`CHANNELS_LAST_MAX_ELEMENTS` and ``a, b`` ≥
        :data:`CHANNELS_LAST_SIDE_RATIO` × ``c``: more likely ``c`` element maps on the last axis than ``a``
        strips of ``b × c`` pixels. It is restored as given.
    """
    shape = tuple(int(k) for k in shape)
    if len(shape) != 3 or 0 in shape:
        return
    if min(shape[1:]) >= MIN_STACK_MAP_SIDE_PX:
        n_last = shape[2]
        if n_last <= CHANNELS_LAST_MAX_ELEMENTS and min(shape[:2]) >= CHANNELS_LAST_SIDE_RATIO * n_last:
            warnings.warn(
                f"stack of shape {shape} is read as {shape[0]} maps of {shape[1]} x {shape[2]} pixels, each "
                f"{shape[1] // shape[2]} times longer than wide: if these are {shape[2]} element maps of "
                f"{shape[0]} x {shape[1]} on the last axis (numpy.dstack, channels last), pass "
                "numpy.moveaxis(stack, -1, 0)", ChannelsLastWarning, stacklevel=3)
        return
    raise ValueError(
        f"stack of shape {shape} would be {shape[0]} maps of {shape[1]} x {shape[2]} pixels: maps narrower than "
        f"{MIN_STACK_MAP_SIDE_PX} pixels on a side are not maps (a stack is (maps, rows, cols)); if the elements "
        "are on the last axis (numpy.dstack, channels last), pass numpy.moveaxis(stack, -1, 0)"
    )


def restore_stack(stack, psfs, method="rl", *, device="auto", background=0.0, boundary="reflect", pad=None,
                  max_batch=None, joint=False, return_info=False, mask=None, **kwargs):
    """Restore every map of an element stack with its own PSF.

    Parameters
    ----------
    stack : array, shape (n, rows, cols)
        ``n`` element maps on one pixel grid (counts for ``"rl"``).
    psfs : array or sequence of arrays
        One PSF shared by all maps (shape (kr, kc)), one per map (shape
        (n, kr, kc)), or a sequence of ``n`` 2-D PSFs of possibly different
        sizes (zero-padded about their centre pixels to a common size, which
        does not change them). Each is normalised to unit sum; pixels of the map.
    method : {"rl", "wiener", "tikhonov", "fista"}
        Algorithm; see :func:`xrfgpu.richardson_lucy`, :func:`xrfgpu.wiener`,
        :func:`xrfgpu.tikhonov`, :func:`xrfgpu.fista`.
    device : {"auto", "cpu", "gpu"}
        Where to run (:mod:`xrfgpu.device`): ``"gpu"`` moves host maps to
        CuPy; the result always comes back in the namespace of ``stack``.
    background : float, sequence of floats or array
        Background in counts: one value for all maps, one per map (length
        ``n``), a shared map (rows, cols) or one map per element (n, rows, cols).
        ``"auto"`` (the front door's estimate per map) only with ``joint=True``.
    boundary : {"reflect", "periodic"}
        Boundary model, see :mod:`xrfgpu.fft`.
    pad : int, optional
        Reflect padding per side in pixels, as in the single-map functions
        (default: the operator's choice for the largest PSF; see
        :class:`xrfgpu.fft.Convolution`).
    max_batch : int, optional
        Most maps per batched chunk; default as many as fit in
        ``0.7 ×`` the free memory of the device (CuPy: ``Device.mem_info``
        plus the memory pool's free blocks; NumPy: available host memory).
    **kwargs
        Options of the method. ``"rl"``: ``num_iter`` (default 30),
        ``filter_epsilon``, ``accelerate``, ``tv`` are batched; ``tol``,
        ``discrepancy`` and ``callback`` (per-map stopping) run the maps one
        at a time.
        ``"wiener"``: ``balance`` (scalar or one per map, a list or a 1-D
        array, default ``"auto"``: each map's own weight, as :func:`xrfgpu.wiener`),
        ``regularizer``.
        ``"tikhonov"``: ``lam`` (scalar or per map, default ``"auto"``), ``order``.
        ``"fista"``: ``lam`` (None, scalar or per map), ``num_iter`` (default
        25, as :func:`xrfgpu.fista`; it was 100, past the error's minimum), ``nonneg``.
        With ``joint=True``: the options of :func:`xrfgpu.joint.joint_richardson_lucy`
        (among them ``guide``, ``num_iter``, ``guide_iter``, ``weight``, ``weights``,
        ``huber_weights``, ``huber_factor``, ``max_iter``, ``gamma``, ``smoothing_px``,
        ``eta``, ``guide_evidence_px``, ``guide_tv``, ``gain``, ``cv_folds``, ``seed``;
        see its parameters).
    joint : bool
        Restore the maps together (``"rl"`` only): the best-resolved map
        guides the others through a directional-TV prior, each map keeping
        its own PSF, background and Poisson likelihood
        (:func:`xrfgpu.joint.joint_richardson_lucy`). A flat or all-noise
        guide falls back to independent RL with a
        :class:`xrfgpu.joint.JointFallbackWarning`. Fitted maps (not
        integer counts) are restored in effective counts, as
        :func:`xrfgpu.restore` restores one, and ``background="auto"`` is
        the front door's background per map.
    mask : array, shape (rows, cols) or (n, rows, cols), optional
        Weights of the pixels, 1 (True) measured and 0 (False) missing, one
        mask for every map or one per map. NaN
        pixels are missing too, with or without a mask. Each map is then
        restored as its single-map call with ``mask=`` restores it
        (:func:`xrfgpu.richardson_lucy` and :func:`xrfgpu.fista` leave the
        missing pixels out of the fit, :func:`xrfgpu.wiener` and
        :func:`xrfgpu.tikhonov` fill them from their measured neighbours),
        in the same batches. With ``joint=True`` the likelihoods and the
        cross-validation leave them out
        (:func:`xrfgpu.joint.joint_richardson_lucy`, ``mask``).
    return_info : bool
        Also return a dict record: for ``joint=True`` the record of
        :func:`xrfgpu.joint.joint_richardson_lucy` (guide, weights chosen,
        fallback), otherwise ``mode`` ("independent"), ``fallback`` (None),
        ``method``, ``maps`` (n), ``options`` (the method's options with
        their defaults filled in; ``num_iter`` is the count run, or the cap
        where ``tol``/``discrepancy`` stop a map earlier), ``background``
        (counts: a number, one per map, or "map"), ``boundary``,
        ``psf_shape`` (pixels, the common size) and ``maps_per_batch``. JSON-serialisable.

    Returns
    -------
    restored : array, shape (n, rows, cols)
        In the working dtype (float32, or float64 for float64 input), in
        the namespace and on the device of ``stack``.

    Raises
    ------
    ValueError
        Not a 3-D stack, maps narrower than :data:`MIN_STACK_MAP_SIDE_PX` (5) pixels on a
        side (a channels-last stack: pass ``numpy.moveaxis(stack, -1, 0)``), PSF count or shape mismatch, unknown method or
        option, an all-zero map, negative counts for RL, bad ``device``,
        infinite pixels, a bad ``mask`` or a map whose every pixel is
        missing, ``background="auto"`` without ``joint=True``.
    TypeError
        Non-array input (a list of maps included: stack them first) or complex maps.
    xrfgpu.device.GPUUnavailableError
        ``device="gpu"`` without CuPy or a usable CUDA device.

    Notes
    -----
    Memory: one map of a chunk costs about 8–12 canvas-sized arrays
    (``_CANVASES``); a 4096² float32 map on a 4352² canvas is ~0.9 GiB in RL,
    so a 16-map stack runs in one chunk on a 40 GB GPU and in two on a 16 GB one.

    References
    ----------
    J. Yang, Z. Zhang, Q. Cheng, J. Anal. At. Spectrom. 37, 750 (2022),
    doi:10.1039/d1ja00425e (per-line PSFs of a micro-XRF scan).

    Examples
    --------
    >>> import numpy as np
    >>> from xrfgpu import phantom, psf, restore_stack
    >>> maps, psfs = [], []
    >>> for k, sigma in enumerate((1.5, 2.0, 2.5)):
    ...     counts, truth, h = phantom.observe((48, 48), sigma, seed=k)
    ...     maps.append(counts); psfs.append(h)
    >>> restored = restore_stack(np.stack(maps), psfs, "rl", background=100.0, num_iter=20)
    >>> restored.shape, restored.dtype
    ((3, 48, 48), dtype('float32'))

    Backends
    --------
    Any array-API namespace; CuPy runs batched cuFFTs and the fused kernels.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if isinstance(stack, (list, tuple)):
        raise TypeError(f"stack must be one (n, rows, cols) array, got a {type(stack).__name__} of "
                        f"{len(stack)}: pass numpy.stack(maps) (maps of one shape, on one pixel grid)")
    check_stack_map_sides(getattr(stack, "shape", ()))
    stack, mask = masked_entries_as_mask(stack, mask)
    if joint:
        return _joint(stack, psfs, method, device=device, background=background, boundary=boundary, pad=pad,
                      max_batch=max_batch, return_info=return_info, mask=mask, **kwargs)
    if isinstance(background, str):
        raise ValueError(
            f"background={background!r} is the front door's estimate per map, which restore_stack makes only with "
            "joint=True; otherwise pass numbers (one per map) or maps, e.g. the ones xrfgpu.restore(map, "
            "return_info=True) records as info['background'] for each map"
        )
    where = resolve_device(device, stack)
    work = to_compute(stack, where)
    xp = array_namespace(work)
    work, weights = _missing_pixels(work, mask, xp=xp)
    y = as_image(work, xp=xp, name="stack", allow_batch=True)
    if weights is not None:
        weights = xp.astype(weights, y.dtype)
    if y.ndim != 3:
        raise ValueError(
            f"stack must be 3-D (maps, rows, cols), got shape {tuple(y.shape)}; "
            "restore a single map with xrfgpu.richardson_lucy / wiener / fista"
        )
    n = y.shape[0]
    dev = array_device(y)
    h = stack_psfs(psfs, y.shape, xp=xp, dtype=y.dtype, device=dev)
    b = _stack_background(background, y, xp=xp)
    pad = check_pad(pad, y.shape, h.shape)
    for i in range(n):
        if not bool(xp.any(y[i, ...] != 0)):
            raise ValueError(f"map {i} of the stack is all zeros: there is nothing to restore")

    pad_factor = _PAD_FACTOR[method]
    run = {"rl": _rl, "wiener": _wiener, "tikhonov": _tikhonov, "fista": _fista}[method]
    options = _check_options(method, kwargs, n)
    if method == "rl":
        for i in range(n):  # naming the map, as the all-zero check above does
            try:
                require_nonnegative(y[i, ...], xp=xp, what="Richardson-Lucy")
            except ValueError as exc:
                raise ValueError(f"map {i} of the stack: {exc}") from None

    chunk = _chunk_size(xp, y, h.shape[-2:], boundary, pad, pad_factor, method, max_batch)
    chosen = []  # the weights "auto" chose, one per map (Wiener, Tikhonov)
    extra = {"chosen": chosen} if method in ("wiener", "tikhonov") else {}
    pieces = []
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        sl = slice(start, stop)
        hk = h[sl, ...] if h.ndim == 3 else h
        bk = _slice_background(b, sl)
        opts = {k: (v[sl] if isinstance(v, list) else v) for k, v in options.items()}
        wk = None if weights is None else weights[sl, ...]
        pieces.append(run(y[sl, ...], hk, bk, boundary=boundary, pad=pad, pad_factor=pad_factor, weights=wk,
                          **opts, **extra))
    out = pieces[0] if len(pieces) == 1 else xp.concat(pieces, axis=0)
    out = to_caller(out, stack)
    if not return_info:
        return out
    if chosen:  # the record holds the numbers each map ran with, and the rule that chose them
        key = "balance" if method == "wiener" else "lam"
        options[key] = [c.weight for c in chosen]
        options[f"{key}_rule"] = "auto: discrepancy principle (xrfgpu.filter_weight)"
        options["noise_variance"] = [c.noise_variance for c in chosen]
    return out, _independent_record(method, options, b, h, n=n, boundary=boundary, chunk=chunk)


def _independent_record(method, options, b, h, *, n, boundary, chunk):
    """JSON-ready record of an independent ``restore_stack`` run: what each map was restored with."""
    def plain(value):
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value if value is None or isinstance(value, (bool, int, float, str)) else float(value)

    if isinstance(b, float):
        background = b
    elif b.ndim == 3 and tuple(b.shape[1:]) == (1, 1):
        background = [float(v) for v in b[:, 0, 0]]
    else:
        background = "map"
    return {
        "mode": "independent",
        "fallback": None,
        "method": method,
        "maps": n,
        # the options each map ran with, defaults filled in;
        # num_iter is the count run, or the cap where tol or discrepancy stop a map earlier
        "options": {k: plain(v) for k, v in options.items() if k != "callback"},
        "background": background,
        "boundary": boundary,
        "psf_shape": [int(s) for s in h.shape[-2:]],
        "maps_per_batch": int(chunk),
    }


# -- inputs ------------------------------------------------------------------------


def stack_psfs(psfs, image_shape, *, xp, dtype, device=None):
    """Validate and normalise PSFs for a stack; returns (kr, kc) shared or (n, KR, KC).

    Each PSF goes through :func:`xrfgpu._validate.as_psf` (unit sum, non-negative,
    finite, no larger than the map). PSFs of different sizes are zero-padded to
    the largest rows and columns so that each centre pixel ``(kr // 2, kc // 2)``
    lands on ``(KR // 2, KC // 2)``; zero padding about the centre leaves the
    convolution unchanged.
    """
    n = image_shape[0]
    if hasattr(psfs, "shape") and hasattr(psfs, "dtype"):
        psfs = as_namespace(psf_data(psfs, name="psfs"), xp, device)
        if psfs.ndim == 2:
            return as_psf(psfs, image_shape, xp=xp, dtype=dtype, device=device, name="psfs")
        if psfs.ndim != 3:
            raise ValueError(f"psfs must be 2-D (shared) or 3-D (one per map), got shape {tuple(psfs.shape)}")
        items = [psfs[i, ...] for i in range(psfs.shape[0])]
    elif isinstance(psfs, Sequence) and not isinstance(psfs, (str, bytes)):
        if not all(hasattr(p, "shape") and hasattr(p, "dtype") for p in psfs):
            # a PSF as nested lists was taken for one PSF per row ("got 5 PSFs for a stack of 2 maps")
            raise TypeError(f"psfs must be an array or a sequence of 2-D arrays, got a {type(psfs).__name__} "
                            "holding other things: pass numpy.asarray(psf) for one shared PSF")
        items = [as_namespace(psf_data(p, name=f"psfs[{i}]"), xp, device) for i, p in enumerate(psfs)]
    else:
        raise TypeError(f"psfs must be an array or a sequence of arrays, got {type(psfs).__name__}")
    if len(items) != n:
        raise ValueError(f"got {len(items)} PSFs for a stack of {n} maps; pass one per map or one shared 2-D PSF")
    normed = [as_psf(p, image_shape, xp=xp, dtype=dtype, device=device, name=f"psfs[{i}]")
              for i, p in enumerate(items)]
    kr = max(p.shape[0] for p in normed)
    kc = max(p.shape[1] for p in normed)
    padded = []
    for p in normed:
        r, c = p.shape
        if (r, c) == (kr, kc):
            padded.append(p)
            continue
        top, left = kr // 2 - r // 2, kc // 2 - c // 2
        canvas = xp.zeros((kr, kc), dtype=dtype, device=device)
        canvas[top:top + r, left:left + c] = p
        padded.append(canvas)
    return xp.stack(padded, axis=0)


def _stack_background(background, y, *, xp):
    """Background as a float, an (n, 1, 1) per-map array, or a (rows, cols) / (n, rows, cols) map."""
    n = y.shape[0]
    dev = array_device(y)
    if hasattr(background, "shape") and hasattr(background, "dtype"):
        # masked entries, complex or text refused before float() could drop what they mean (_validate.background_data)
        background = as_namespace(background_data(background), xp, dev)
        if background.ndim == 0:
            return as_background(float(background), y, xp=xp)
        if background.ndim == 1:
            values = [float(v) for v in background]
            return _stack_background(values, y, xp=xp)
        if tuple(background.shape) == tuple(y.shape[-2:]):
            shared = as_background(background, y[0, ...], xp=xp)
            return shared
        return as_background(background, y, xp=xp)
    if isinstance(background, Sequence) and not isinstance(background, (str, bytes)):
        if len(background) != n:
            raise ValueError(f"got {len(background)} background values for a stack of {n} maps")
        values = [as_background(v, y, xp=xp, name=f"background[{i}]") for i, v in enumerate(background)]
        return xp.reshape(xp.asarray(values, dtype=y.dtype, device=dev), (n, 1, 1))
    return as_background(background, y, xp=xp)


def _slice_background(b, sl):
    if hasattr(b, "shape") and b.ndim == 3:
        return b[sl, ...]
    return b


_OPTIONS = {
    "rl": {"num_iter": 30, "filter_epsilon": None, "accelerate": False, "tv": 0.0, "tol": None,
           "discrepancy": None, "callback": None},
    "wiener": {"balance": AUTO, "regularizer": "laplacian"},
    "tikhonov": {"lam": AUTO, "order": 0},
    "fista": {"lam": None, "num_iter": FISTA_NUM_ITER, "nonneg": True},
}


def _check_options(method, kwargs, n):
    allowed = _OPTIONS[method]
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for method {method!r}; allowed: {sorted(allowed)}")
    opts = dict(allowed)
    opts.update(kwargs)
    for key in ("balance", "lam"):
        value = opts.get(key)
        if getattr(value, "ndim", None) == 1:  # one per map as a 1-D NumPy/CuPy array, as in a list
            value = list(to_numpy(value).tolist())
        if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
            if len(value) != n:
                raise ValueError(f"got {len(value)} values of {key} for a stack of {n} maps")
            if method in ("wiener", "tikhonov") and any(isinstance(v, str) and v == AUTO for v in value):
                raise TypeError(f"{key}='auto' chooses each map's own weight: pass {key}='auto' for the whole stack, "
                                f"or one number per map, got {value!r}")
            opts[key] = [_check_weight(v, key) for v in value]
        elif value is not None:
            opts[key] = _check_weight(value, key, auto=method in ("wiener", "tikhonov"))
    if "num_iter" in opts:
        opts["num_iter"] = check_num_iter(opts["num_iter"])
    if "filter_epsilon" in opts:
        opts["filter_epsilon"] = check_filter_epsilon(opts["filter_epsilon"])
    return opts


def _chunk_size(xp, y, psf_shape, boundary, pad, pad_factor, method, max_batch):
    """Maps per chunk: ``max_batch``, or what fits in the free memory with headroom.

    The canvas is estimated from above: the larger of the padded canvas and
    the 2 rows × 2 cols mirror canvas (the DCT engine needs only the map).
    """
    n = y.shape[0]
    if max_batch is not None:
        m = int(max_batch)
        if m < 1:
            raise ValueError(f"max_batch must be a positive integer, got {max_batch!r}")
        return min(m, n)
    rows, cols = y.shape[-2:]
    if boundary == "reflect":
        p = default_pad(psf_shape, pad_factor) if pad is None else int(pad)
        rows, cols = max(fft_size(rows + 2 * p), 2 * rows), max(fft_size(cols + 2 * p), 2 * cols)
    itemsize = 8 if y.dtype == xp.float64 else 4
    per_map = _CANVASES[method] * rows * cols * itemsize
    free = _free_memory(xp)
    return max(1, min(n, int(_HEADROOM * free) // per_map))


def _free_memory(xp) -> int:
    """Bytes free for a chunk on the device of ``xp`` (GPU: driver + CuPy pool; host: available RAM)."""
    if is_cupy_namespace(xp):
        import cupy

        free, _total = cupy.cuda.Device().mem_info
        return int(free) + int(cupy.get_default_memory_pool().free_bytes())
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:  # pragma: no cover - psutil is a test dependency only
        return 2 * 2**30


# -- batched algorithms: the single-map engines on a stack problem ---------------------------


def masked_entries_as_mask(stack, mask):
    """``(stack, mask)``: a NumPy masked array's data, its masked entries turned into weights 0 of ``mask``.

    The masked pixels are missing, as in the single-map functions; a ``mask`` given as well multiplies
    (a pixel is used only where both keep it). Any other array comes back unchanged with ``mask``.
    """
    masked = _host_masked(stack)
    if masked is None:
        return stack, mask
    data, hidden = masked
    if bool(np.any(hidden)):
        keep = (~hidden).astype(np.float64)
        mask = keep if mask is None else keep * _host_weights(mask, data.shape)
    return data, mask


def _host_weights(mask, shape):
    """A mask (any namespace) as host float64 weights broadcast to the stack's ``shape`` (checked later)."""
    mask = mask_data(mask)  # a masked-array mask: its masked entries are missing (weight 0), as for one map
    m = np.asarray(to_numpy(mask) if hasattr(mask, "shape") else mask, dtype=np.float64)
    if m.shape not in (tuple(shape[-2:]), tuple(shape)):
        raise ValueError(f"mask has shape {m.shape}; the stack has shape {tuple(shape)}: give (rows, cols) for every "
                         "map or one mask per map")
    return np.broadcast_to(m, shape)


def _missing_pixels(stack, mask, *, xp):
    """``(stack, weights or None)``: a stack's missing pixels (NaN, ``mask`` 0), as
    :func:`xrfgpu._validate.as_image_with_weights` finds them in one map.

    ``weights`` (n, rows, cols): the mask's (one for every map, or one per map; 1 where None) times 0 at NaN;
    the stack comes back with its missing pixels set to 0 (in its working dtype where a mask is given). None,
    and the stack as it is, when no pixel is missing. Infinite values are refused here, naming the maps.
    """
    from ._validate import _as_weights

    if not (hasattr(stack, "shape") and hasattr(stack, "dtype")) or getattr(stack, "ndim", 0) != 3:
        return stack, None  # as_image refuses it, in its words
    if mask is not None and xp.isdtype(stack.dtype, ("integral", "real floating")):
        # the working dtype first, as the single-map path takes it: the weights are read in it (an integer
        # stack would truncate a weight of 0.5 to 0)
        stack = xp.astype(stack, working_dtype(xp, stack.dtype), copy=False)
    n = stack.shape[0]
    weights = None
    if mask is not None:
        shape = getattr(mask, "shape", None)
        if shape is not None and tuple(shape) == tuple(stack.shape[-2:]):
            one = _as_weights(mask, stack[0, ...], xp=xp)
            weights = xp.stack([one] * n, axis=0)
        else:
            weights = _as_weights(mask, stack, xp=xp)
        weights = xp.astype(weights, xp.float64)
    if not xp.isdtype(stack.dtype, "real floating"):
        nan = None  # integers hold no NaN
    else:
        # an infinite value is refused where it would be read, not at a pixel the mask already calls missing
        # (map / I0 at I0 = 0, masked by the user)
        inf = xp.isinf(stack)
        if weights is not None:
            inf = inf & (weights > 0)
        bad = [str(k) for k in range(n) if bool(xp.any(inf[k, ...]))]
        if bad:
            raise ValueError(f"stack (map{'s' if len(bad) > 1 else ''} {', '.join(bad)}) contains infinite values "
                             "at pixels not marked missing; mark them as NaN or with mask= (weight 0)")
        nan = xp.isnan(stack)
        if not bool(xp.any(nan)):
            nan = None
    if weights is None and nan is None:
        return stack, None
    if weights is None:
        weights = xp.ones(stack.shape, dtype=xp.float64, device=array_device(stack))
    if nan is not None:
        weights = xp.where(nan, xp.zeros_like(weights), weights)
        stack = xp.where(nan, xp.zeros_like(stack), stack)
    for k in range(n):
        if not bool(xp.any(weights[k, ...] > 0)):
            raise ValueError(f"every pixel of map {k} of the stack is missing (NaN or mask weight 0): there is "
                             "nothing to restore")
    stack = xp.where(weights > 0, stack, xp.zeros_like(stack))
    return stack, weights


def _own_weights(weights, i, *, xp):
    """Map ``i``'s weights, or None where it misses no pixel (its own call is then the plain one, bit for bit)."""
    if weights is None or bool(xp.all(weights[i, ...] == 1)):
        return None
    return weights[i, ...]


def _problem(y, h, b, *, boundary, pad, pad_factor, iterative=False, weights=None):
    return Problem.from_validated(y, h, b, boundary=boundary, pad=pad, pad_factor=pad_factor, iterative=iterative,
                                  rescale=True, weights=weights)


def _rl(y, h, b, *, boundary, pad, pad_factor, num_iter, filter_epsilon, accelerate, tv, tol, discrepancy,
        callback, weights=None):
    xp = array_namespace(y)
    if tol is not None or discrepancy is not None or callback is not None:
        # per-map stopping rules: run the maps one by one
        from .richardson_lucy import richardson_lucy

        maps = []
        for i in range(y.shape[0]):
            hi = h[i, ...] if h.ndim == 3 else h
            bi = b[i, ...] if hasattr(b, "shape") and b.ndim == 3 else b
            if hasattr(bi, "shape") and bi.shape == (1, 1):
                bi = float(bi[0, 0])
            maps.append(richardson_lucy(y[i, ...], hi, num_iter=num_iter, background=bi, tol=tol,
                                        discrepancy=discrepancy, tv=tv, accelerate=accelerate, boundary=boundary,
                                        pad=pad, filter_epsilon=filter_epsilon, callback=callback,
                                        mask=_own_weights(weights, i, xp=xp)))
        return xp.stack(maps, axis=0)
    pb = _problem(y, h, b, boundary=boundary, pad=pad, pad_factor=pad_factor, iterative=True, weights=weights)
    return run_richardson_lucy(pb, num_iter=num_iter, filter_epsilon=filter_epsilon, accelerate=accelerate, tv=tv)


def _wiener(y, h, b, *, boundary, pad, pad_factor, balance, regularizer, weights=None, chosen=None):
    if regularizer not in WIENER_REGULARIZERS:
        raise ValueError(f"regularizer must be 'laplacian' or 'identity', got {regularizer!r}")
    pb = _problem(y, h, b, boundary=boundary, pad=pad, pad_factor=pad_factor, weights=weights)
    return regularized_inverse(pb, balance, WIENER_REGULARIZERS[regularizer], record=chosen)


def _tikhonov(y, h, b, *, boundary, pad, pad_factor, lam, order, weights=None, chosen=None):
    if order not in (0, 1, 2):
        raise ValueError(f"order must be 0, 1 or 2, got {order!r}")
    pb = _problem(y, h, b, boundary=boundary, pad=pad, pad_factor=pad_factor, weights=weights)
    return regularized_inverse(pb, lam, order, record=chosen)


def _fista(y, h, b, *, boundary, pad, pad_factor, lam, num_iter, nonneg, weights=None):
    pb = _problem(y, h, b, boundary=boundary, pad=pad, pad_factor=pad_factor, iterative=True, weights=weights)
    return run_proximal_gradient(pb, lam=lam, num_iter=num_iter, nonneg=nonneg)


def _joint(stack, psfs, method, *, device, background, boundary, pad, max_batch, return_info, mask=None, **kwargs):
    """``restore_stack(..., joint=True)``: :func:`xrfgpu.joint.joint_richardson_lucy` on the chosen device."""
    from .joint import joint_richardson_lucy

    if method != "rl":
        raise ValueError(f"joint restoration works with method 'rl' (Poisson likelihood), not {method!r}")
    if pad is not None:
        raise ValueError("joint restoration runs on the exact reflect operator: leave pad=None")
    if max_batch is not None:
        raise ValueError("joint restoration batches all guided maps at once: leave max_batch=None")
    import inspect

    taken = set(inspect.signature(joint_richardson_lucy).parameters) - {"stack", "psfs", "background", "boundary",
                                                                         "return_info", "mask"}
    unknown = sorted(set(kwargs) - taken)
    if unknown:  # as the independent path refuses them, naming what is allowed
        raise ValueError(f"unknown option(s) {unknown} for joint restoration (joint=True); allowed: {sorted(taken)}")
    where = resolve_device(device, stack)
    work = to_compute(stack, where)
    out, info = joint_richardson_lucy(work, psfs, background=background, boundary=boundary, return_info=True,
                                      mask=mask, **kwargs)
    info = {"method": "rl", **info}  # the key restore's info and the independent record have
    out = to_caller(out, stack)
    return (out, info) if return_info else out
