"""Richardson–Lucy on a CUDA device at the cuFFT floor: fixed buffers, plans made once, one graph per iteration.

:func:`xrfgpu.richardson_lucy.run_richardson_lucy` hands its iterations here
when the map is a CuPy array, the operator is one of the exact reflect
engines the GPU cost model picks (:class:`xrfgpu.fft.Convolution`), the fused
kernels are enabled, and no per-iteration host work is asked for (no TV,
stopping rule or callback). With the ``"dctfft"`` engine (a PSF symmetric
along both axes: real FFTs of the map's own size, :mod:`xrfgpu._reflect_fft`)
one iteration is

``rfft2(x) → K → irfft2 → ratio → rfft2 → K → irfft2 → update``,

where the last three transforms run in place on the half spectrum's buffer:
its real view, in FFTW's padded layout (rows of 2 (cols // 2 + 1) values),
is the work map, and the estimate has the same padded rows, so the
iteration holds the estimate and one spectrum besides the map (with
acceleration also the previous point and the last change);

with the ``"extended"`` engine (any other PSF) the map is reflected onto the
transform canvas, convolved, and the ratio placed back in one kernel each
(``kernels/reflect_canvas.cu``):

``embed → rfft2 → ·H → irfft2 → crop+ratio → rfft2 → ·H* → irfft2 → fold → update``

on buffers allocated once (for "extended": estimate, one real work map, the
canvas and one half spectrum; with acceleration also the previous estimate
and the last change), with cuFFT plans made once (the inverse plan's 1/(n₁n₂) is applied
with the eigenvalues) and with the accelerated step length kept on the device
(``kernels/rl_accel.cu``). The iteration is captured once as a CUDA graph and
replayed ``num_iter`` times, so a small map is not bound by kernel launches;
if capture is refused, the same launches run directly.

The numbers are those of the reference loop: the same kernels for the ratio
and the update, the same extrapolation arithmetic, and inner products in
float64 instead of the reference's float32 sums (the step length differs in
the last digits, the restoration by about 1e-6 of its maximum).

Backends
--------
CuPy only (called only for CuPy arrays).
"""

from __future__ import annotations

__all__ = ["applies", "run"]

# set to False to run the same launches without graph capture (tests, benchmarks)
USE_GRAPHS = True
# blur a separable, axis-symmetric PSF of at most DIRECT_MAX_TAPS taps per axis in real space
# (kernels/separable_blur.cu) instead of by the reordered-DCT transforms: the same operator (results equal
# to about 1e-5 of the maximum in float32), no FFT. On an H200 (2026-11-27, seventh session, 61 taps) a
# direct iteration took 0.82–0.96× the transforms' at 512²–8192² over three calls, and 0.69–0.97× at 17–61
# taps (benchmarks/gpu_speed.py --parts rl,taps); wider PSFs are unmeasured (that sweep's rows above 61 taps
# ran the transforms twice) and keep the transforms, whose cost does not grow with the PSF while the direct
# blur's does. Set DIRECT_BLUR to False to always use the transforms.
DIRECT_BLUR = True
DIRECT_MAX_TAPS = 61

# the row pass of the direct blur: "warp" (a warp per row segment, through shared memory, for PSFs up to
# 2 · CudaKernels.ROW_MAX_HALF + 1 taps wide) or "group" (a thread per column group, straight from global
# memory, any width); both give the same sums bit for bit
ROW_PASS = "warp"

# the column pass of the direct blur: "tile" (a block per tile of 32 columns × a band of rows, staged once
# in shared memory with its halo, for PSFs whose tile fits CudaKernels.COL_TILE_MAX_BYTES: see
# tiled_column_pass_fits) or "strip" (a thread per column and strip of 16 rows, straight from global
# memory, any width); both give the same sums and epilogues bit for bit
COL_PASS = "tile"

# epilogues of the column pass (kernels/separable_blur.cu): store the blur, the RL ratio, or the update x · blur
BLUR, RATIO, UPDATE = 0, 1, 2


def applies(pb, *, tv, track, callback) -> bool:
    """Whether the fixed-buffer GPU iteration can run this problem."""
    from . import _elementwise
    from ._backend import is_cupy_namespace

    if not is_cupy_namespace(pb.xp) or pb.op.engine not in ("dctfft", "extended") or tv > 0 or track \
            or callback is not None:
        return False
    if _elementwise.get_engine() != "auto":
        return False
    return str(pb.image.dtype) in ("float32", "float64")


def direct_taps(op):
    """The 1-D tap vectors ``(u, v)`` of the real-space blur of ``op``, or None where it does not apply.

    It applies to the ``"dctfft"`` engine's separable PSFs (one PSF for every map of a stack, odd and
    symmetric along both axes: A is symmetric, so the adjoint is the same two passes) whose half-widths stay within one
    reflection of the map (``k // 2 ≤ n`` along each axis).
    """
    taps = getattr(op, "separable_taps", None)
    if op.engine != "dctfft" or taps is None:
        return None
    u, v = taps
    if u.ndim > 1 or v.ndim > 1:  # a stack: one PSF shared by every map (the kernels take one tap vector)
        u, v = u.reshape(-1, u.shape[-1]), v.reshape(-1, v.shape[-1])
        if (u != u[0]).any() or (v != v[0]).any():
            return None
        u, v = u[0], v[0]
    if u.size % 2 == 0 or v.size % 2 == 0:
        return None
    rows, cols = op.shape
    if u.size // 2 > rows or v.size // 2 > cols:
        return None
    return u, v


def direct_blur_taps(op):
    """The tap vectors ``(u, v)`` where :func:`run` blurs in real space, else None (the transforms).

    Real space where ``DIRECT_BLUR`` is set, :func:`direct_taps` applies and neither vector has more than
    ``DIRECT_MAX_TAPS`` taps (beyond that the transforms' cost, which does not grow with the PSF, is the
    lower one).
    """
    taps = direct_taps(op) if DIRECT_BLUR else None
    if taps is None or max(int(t.size) for t in taps) > DIRECT_MAX_TAPS:
        return None
    return taps


def tiled_column_pass_fits(k, taps, dtype) -> bool:
    """Whether the tiled column pass takes a ``taps``-tap PSF in ``dtype``: its tile (the band's rows plus
    ``taps − 1`` halo rows of ``k.COL_WIDTH`` values, then the taps) fits the shared memory a launch may
    ask for (``k.COL_TILE_MAX_BYTES``: float32 up to 311 taps, float64 up to 125)."""
    return k.col_tile_bytes(taps, dtype) <= k.COL_TILE_MAX_BYTES


def direct_plain_iteration(rows_pass, cols_pass, x, tmp, work):
    """One plain RL iteration with the real-space blur: ``x ← x · Aᵀ(y / max(A x + b, eps))``.

    ``rows_pass(src, dst)`` correlates each row with the column taps v; ``cols_pass(src, dst, mode)``
    correlates each column with the row taps u and applies the epilogue ``mode`` (BLUR, RATIO with the
    map, background and guard bound into it, UPDATE over ``dst``). A = A_cols ⊗ A_rows is symmetric.
    The GPU iteration calls it with kernel launches, tests/test_kernels_host.py with the host build.
    """
    rows_pass(x, tmp)
    cols_pass(tmp, work, RATIO)  # work = y / max(A x + b, eps)
    rows_pass(work, tmp)
    cols_pass(tmp, x, UPDATE)  # x ← x · Aᵀ work


def direct_accelerated_blurs(rows_pass, cols_pass, point, tmp, work):
    """``work = Aᵀ(y / max(A point + b, eps))`` with the real-space blur (the accelerated update follows)."""
    rows_pass(point, tmp)
    cols_pass(tmp, work, RATIO)
    rows_pass(work, tmp)
    cols_pass(tmp, work, BLUR)


def run(pb, *, num_iter, eps, init, accelerate):
    """Run ``num_iter`` RL iterations of ``pb`` on its device; returns the restored map, in the caller's units."""
    import cupy as cp
    from cupy.cuda import cufft

    from .cuda import kernels, real_fft_plans

    k = kernels()
    op = pb.op
    taps = direct_blur_taps(op)
    if taps is not None:
        return _run_direct(pb, k, taps, num_iter=num_iter, eps=eps, init=init, accelerate=accelerate)
    # dctfft: the map itself, read in Makhoul order by the ratio kernel (no reordered copy is made);
    # extended: the map's data as the canvas kernels read it
    y = cp.ascontiguousarray(pb.image if op.engine == "dctfft" else pb.data)
    dtype = y.dtype
    rows, cols = (int(n) for n in y.shape[-2:])
    plane = rows * cols
    planes = y.size // plane
    n = y.size
    block = (k.BLOCK,)

    def grid_for(work_items, share=1):
        return (k.grid(work_items, share),)

    grid = grid_for(n)
    lead = tuple(y.shape[:-2])
    complex_dtype = cp.complex64 if dtype == cp.float32 else cp.complex128
    # the FFT canvas: the (reordered) map itself for "dctfft", the extended engine's transform canvas else
    height, width = (rows, cols) if op.engine == "dctfft" else (int(v) for v in op.transform_shape)
    half = width // 2 + 1
    if op.engine == "dctfft":
        # in-place transforms on the half spectrum's buffer, whose real view (rows of ld = 2·half values,
        # the padded layout) is the iteration's work map; the estimate has the same padded rows (padding 0)
        ld = 2 * half
        r2c, c2r = real_fft_plans(height, width, planes, dtype, padded=True)
        spectrum = cp.empty(lead + (height, half), dtype=complex_dtype)
        work = spectrum.view(dtype)
        x = cp.zeros(lead + (rows, ld), dtype=dtype)
        x[..., :cols] = init
    else:
        ld = cols
        r2c, c2r = real_fft_plans(height, width, planes, dtype)
        spectrum = cp.empty(lead + (height, half), dtype=complex_dtype)
        x = cp.empty_like(y)
        x[...] = init
        work = cp.empty_like(y)
    b_arg = k.operand(pb.canvas_background, y)
    e_arg = k.operand(eps, y)
    if b_arg is None or e_arg is None:
        raise ValueError(f"background/guard does not broadcast over the maps of shape {tuple(y.shape)}")
    scale = 1.0 / (height * width)  # cuFFT's inverse is unnormalised

    if op.engine == "dctfft":
        if op.dct_factors is not None:  # a separable PSF: λ = λ_rows ⊗ λ_cols, no rows × cols table
            lam_rows, lam_cols = (cp.ascontiguousarray(f.astype(dtype, copy=False)) for f in op.dct_factors)
            lam, separable, lam_planes = lam_rows, 1, lam_rows.size // rows
        else:
            lam = cp.ascontiguousarray(op.otf.astype(dtype, copy=False))
            lam_rows = lam_cols = lam
            separable, lam_planes = 0, lam.size // plane
        tw1, tw2 = k.dct_twiddles(rows), k.dct_twiddles(cols)
        ratio_fn = k.function("xrfgpu_rl_ratio_makhoul", dtype)
        filter_fn = k.function("xrfgpu_reflect_dct_filter", dtype)
        # both walk rows along the grid's second dimension (no per-element index division), columns in groups
        filter_grid = k.grid_rows(half, planes * (rows // 2 + 1), group=k.GROUP)
        ratio_grid = k.grid_rows((cols + 1) // 2, planes * rows, group=k.GROUP)  # a work item per column pair

        def blur(src):  # work = A src, in the spectrum's buffer
            r2c.fft(src, spectrum, cufft.CUFFT_FORWARD)
            filter_fn(filter_grid, block, (spectrum, lam, lam_rows, lam_cols, separable, planes, rows, cols,
                                               lam_planes, scale, tw1, tw2))
            c2r.fft(spectrum, work, cufft.CUFFT_INVERSE)

        def forward_ratio(src):  # work = y / max(A src + b, eps)
            blur(src)
            ratio_fn(ratio_grid, block, (y, work, planes, rows, cols, ld, *b_arg, *e_arg))

        def adjoint():  # work = Aᵀ work (A is symmetric), both transforms in place
            blur(work)
    else:  # extended: embed by reflection, convolve on the canvas, crop (and the adjoint's fold)
        (b0, a0), (b1, a1) = op._reach
        canvas = cp.empty(tuple(y.shape[:-2]) + (height, width), dtype=dtype)
        otf = cp.ascontiguousarray(op.otf)
        otf_conj = cp.ascontiguousarray(op.otf_conj)
        embed_fn = k.function("xrfgpu_reflect_embed", dtype)
        multiply_fn = k.function("xrfgpu_multiply_spectrum", dtype)
        crop_ratio_fn = k.function("xrfgpu_crop_ratio", dtype)
        fold_fn = k.function("xrfgpu_reflect_fold", dtype)
        canvas_grid = grid_for(canvas.size)
        spectrum_grid = grid_for(spectrum.size)
        geometry = (planes, rows, cols, height, width)

        def forward_ratio(src):
            embed_fn(canvas_grid, block, (canvas, src, *geometry, b0, a0, b1, a1))
            r2c.fft(canvas, spectrum, cufft.CUFFT_FORWARD)
            multiply_fn(spectrum_grid, block, (spectrum, otf, spectrum.size, otf.size))
            c2r.fft(spectrum, canvas, cufft.CUFFT_INVERSE)
            crop_ratio_fn(canvas_grid, block, (canvas, y, *geometry, b0, b1, dtype.type(scale), *b_arg, *e_arg))

        def adjoint():
            r2c.fft(canvas, spectrum, cufft.CUFFT_FORWARD)
            multiply_fn(spectrum_grid, block, (spectrum, otf_conj, spectrum.size, otf_conj.size))
            c2r.fft(spectrum, canvas, cufft.CUFFT_INVERSE)
            fold_fn(grid, block, (canvas, work, *geometry, b0, a0, b1, a1, dtype.type(scale)))

    if accelerate:
        def blurs(point):  # work = Aᵀ(y / max(A point + b, eps))
            forward_ratio(point)
            adjoint()

        iteration = _accelerated_iteration(k, x, work, blurs, planes=planes, rows=rows, cols=cols, ld=ld)
    else:
        update_fn = k.function("xrfgpu_rl_update_rows", dtype)
        update_grid = k.grid_rows(cols, planes * rows, group=k.GROUP)

        def iteration(stream):
            forward_ratio(x)
            adjoint()
            update_fn(update_grid, block, (x, work, planes * rows, cols, ld))

    _replay(iteration, num_iter)
    if op.engine != "dctfft":
        return pb.finish(x)
    # dctfft: the map in its own order, gathered from the padded reordered estimate in one pass once the
    # iteration's other buffers are released (the map, the estimate and the result at most at once)
    iteration = spectrum = work = None  # noqa: F841 - releases the device buffers (and the accelerated ones)
    estimate = cp.empty_like(y)
    unorder_fn = k.function("xrfgpu_makhoul_unorder", dtype)
    unorder_fn(ratio_grid, block, (x, estimate, planes, rows, cols, ld))  # the same walk as the ratio
    return estimate if pb.scale == 1.0 else pb.to_user_units(estimate)


def _run_direct(pb, k, taps, *, num_iter, eps, init, accelerate):
    """:func:`run` with the real-space separable blur (kernels/separable_blur.cu) on the map's own grid.

    Buffers: the map, the estimate and two work maps (with acceleration also the previous point and the
    last change); no FFT plan, no spectrum. The result is in the map's own order. The row pass is chosen by
    ``ROW_PASS``, the column pass by ``COL_PASS`` (the tiled one where :func:`tiled_column_pass_fits`).
    """
    import cupy as cp

    y = cp.ascontiguousarray(pb.image)
    dtype = y.dtype
    rows, cols = (int(n) for n in y.shape[-2:])
    planes = y.size // (rows * cols)
    block = (k.BLOCK,)
    u, v = (cp.asarray(t, dtype=dtype) for t in taps)
    b_arg = k.operand(pb.background, y)
    e_arg = k.operand(eps, y)
    if b_arg is None or e_arg is None:
        raise ValueError(f"background/guard does not broadcast over the maps of shape {tuple(y.shape)}")
    x = cp.empty_like(y)
    x[...] = init
    tmp = cp.empty_like(y)
    work = cp.empty_like(y)
    if ROW_PASS == "warp" and v.size // 2 <= k.ROW_MAX_HALF:
        rows_fn = k.function("xrfgpu_blur_rows_warp", dtype)
        segments = planes * rows * (-(-cols // (32 * k.ROW_STRIP)))  # a warp per segment of a row
        rows_grid = (k.grid(32 * segments),)
    else:
        rows_fn = k.function("xrfgpu_blur_rows", dtype)
        rows_grid = k.grid_rows(cols, planes * rows, group=k.GROUP)
    if COL_PASS == "tile" and tiled_column_pass_fits(k, u.size, dtype):
        cols_fn = k.function("xrfgpu_blur_cols_tile", dtype)
        cols_grid = k.col_tile_grid(planes, rows, cols, dtype)  # a block per tile of 32 columns × a row band
        cols_shared = k.col_tile_bytes(u.size, dtype)
        block_cols = (32 * k.COL_WARPS,)
    else:
        cols_fn = k.function("xrfgpu_blur_cols", dtype)
        cols_grid = k.grid_rows(cols, planes * (-(-rows // k.STRIP)))  # a thread per column and strip of rows
        cols_shared = 0
        block_cols = block

    def rows_pass(src, dst):
        rows_fn(rows_grid, block, (src, dst, v, v.size, planes * rows, cols))

    def cols_pass(src, dst, mode):
        cols_fn(cols_grid, block_cols, (src, dst, u, u.size, planes, rows, cols, mode, y, *b_arg, *e_arg),
                shared_mem=cols_shared)

    if accelerate:
        iteration = _accelerated_iteration(
            k, x, work, lambda point: direct_accelerated_blurs(rows_pass, cols_pass, point, tmp, work),
            planes=planes, rows=rows, cols=cols, ld=cols)
    else:
        def iteration(stream):
            direct_plain_iteration(rows_pass, cols_pass, x, tmp, work)

    _replay(iteration, num_iter)
    return x if pb.scale == 1.0 else pb.to_user_units(x)


def _accelerated_iteration(k, x, work, blurs, *, planes, rows, cols, ld):
    """One accelerated iteration (Biggs–Andrews, the step length kept on the device), as a function of a stream.

    ``blurs(point)`` leaves ``Aᵀ(y / max(A point + b, eps))`` in ``work``; ``x`` and ``work`` hold
    ``planes`` maps of ``rows`` rows of ``cols`` values, ``ld`` apart (padding stays 0). Allocates the
    previous point, the last change and the step's two sums per map, held by the returned function.
    """
    import cupy as cp

    dtype = x.dtype
    block = (k.BLOCK,)
    x_prev = x.copy()
    g1 = cp.zeros_like(x)
    acc = cp.zeros(2 * planes, dtype=cp.float64)
    extrapolate_fn = k.function("xrfgpu_rl_extrapolate_dev", dtype)
    update_fn = k.function("xrfgpu_rl_update_accel", dtype)
    # the update: blocks of whole rows of each map; the extrapolation: whole (padded) maps
    update_grid = (k.grid(rows * k.BLOCK, share=planes), planes)
    extrapolate_grid = k.grid_rows(x.size // planes, planes)

    def iteration(stream):
        extrapolate_fn(extrapolate_grid, block, (x, x_prev, acc, x.size, x.size // planes))
        blurs(x_prev)
        cp.cuda.runtime.memsetAsync(acc.data.ptr, 0, acc.nbytes, stream.ptr)
        update_fn(update_grid, block, (x, x_prev, work, g1, acc, planes, rows, cols, ld))

    return iteration


def _replay(iteration, num_iter):
    """Run ``iteration`` ``num_iter`` times on a stream of its own, as one captured graph where possible."""
    import cupy as cp

    caller = cp.cuda.get_current_stream()
    stream = cp.cuda.Stream(non_blocking=True)
    stream.wait_event(caller.record())
    with stream:
        graph = _capture(stream, iteration) if USE_GRAPHS and num_iter > 1 else None
        for _ in range(int(num_iter)):
            if graph is not None:
                graph.launch(stream)
            else:
                iteration(stream)
    # one host wait per call, not per iteration: the buffers and graph outlive the queued work
    stream.synchronize()


def _capture(stream, iteration):
    """One iteration as a CUDA graph on ``stream``, or None when capture is refused (then run eagerly)."""
    try:
        stream.begin_capture()
    except Exception:  # noqa: BLE001 - an old CuPy or driver: run the launches directly
        return None
    try:
        iteration(stream)
    except Exception:  # noqa: BLE001
        try:
            stream.end_capture()
        except Exception:  # noqa: BLE001
            pass
        return None
    try:
        return stream.end_capture()
    except Exception:  # noqa: BLE001
        return None

