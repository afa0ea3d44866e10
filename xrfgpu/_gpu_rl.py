"""Richardson–Lucy on a CUDA device at the cuFFT floor: fixed buffers, plans made once, one graph per iteration.

:func:`xrfgpu.richardson_lucy.run_richardson_lucy` hands its iterations here
when the map is a CuPy array, the operator is the ``"dctfft"`` engine (the
exact reflect blur of a symmetric PSF by real FFTs of the map's own size,
:mod:`xrfgpu._reflect_fft`), the fused kernels are enabled, and no per
iteration host work is asked for (no TV, stopping rule or callback). One
iteration is

``rfft2(x) → K → irfft2 → ratio → rfft2 → K → irfft2 → update``

on buffers allocated once (estimate, data, one real work map, one half
spectrum; with acceleration also the previous estimate and the last two
changes), with cuFFT plans made once (the inverse plan's 1/(n₁n₂) is applied
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
_BLOCK = 256
_PLANS: dict = {}


def applies(pb, *, tv, track, callback) -> bool:
    """Whether the fixed-buffer GPU iteration can run this problem."""
    from . import _elementwise
    from ._backend import is_cupy_namespace

    if not is_cupy_namespace(pb.xp) or pb.op.engine != "dctfft" or tv > 0 or track or callback is not None:
        return False
    if _elementwise.get_engine() != "auto":
        return False
    return str(pb.data.dtype) in ("float32", "float64")


def _operand(cp, value, like, planes, plane):
    """Background or guard as the broadcast operand of the ratio kernel: (array, size, plane size)."""
    if not hasattr(value, "shape") or value.ndim == 0:
        return cp.full((1,), float(value), dtype=like.dtype), 1, 1
    value = cp.ascontiguousarray(cp.asarray(value).astype(like.dtype, copy=False))
    if value.size == like.size:
        return value, value.size, 1
    if value.size == planes:  # one value per map, shape (n, 1, 1)
        return value.reshape(-1), planes, plane
    if value.size == plane:  # one canvas map for every map of the stack
        return value.reshape(-1), plane, 1
    raise ValueError(f"background/guard of shape {tuple(value.shape)} does not broadcast over {tuple(like.shape)}")


def run(pb, *, num_iter, eps, init, accelerate):
    """Run ``num_iter`` RL iterations of ``pb`` on its device; returns the canvas estimate."""
    import cupy as cp
    from cupy.cuda import cufft

    from .cuda import kernels

    k = kernels()
    y = cp.ascontiguousarray(pb.data)
    dtype = y.dtype
    n1, n2 = (int(n) for n in y.shape[-2:])
    plane = n1 * n2
    planes = y.size // plane
    half = n2 // 2 + 1
    ctype = cp.complex64 if dtype == cp.float32 else cp.complex128
    forward_type = cufft.CUFFT_R2C if dtype == cp.float32 else cufft.CUFFT_D2Z
    inverse_type = cufft.CUFFT_C2R if dtype == cp.float32 else cufft.CUFFT_Z2D
    key = (cp.cuda.Device().id, n1, n2, planes, str(dtype))
    plans = _PLANS.get(key)
    if plans is None:
        _PLANS.clear()  # one plan pair at a time: their work areas stay on the device while cached
        plans = _PLANS[key] = (
            cufft.PlanNd((n1, n2), None, 1, plane, None, 1, n1 * half, forward_type, planes, "C", -1, half),
            cufft.PlanNd((n1, n2), None, 1, n1 * half, None, 1, plane, inverse_type, planes, "C", -1, n2),
        )
    r2c, c2r = plans
    # cuFFT's inverse is unnormalised: the spectrum kernel scales the eigenvalues by 1/(n1 n2)
    lam = cp.ascontiguousarray(pb.op.otf.astype(dtype, copy=False))

    tw1, tw2 = k.dct_twiddles(n1), k.dct_twiddles(n2)
    x = cp.empty_like(y)
    x[...] = init
    spectrum = cp.empty(tuple(y.shape[:-1]) + (half,), dtype=ctype)
    work = cp.empty_like(y)
    b_arg = _operand(cp, pb.canvas_background, y, planes, plane)
    e_arg = _operand(cp, eps, y, planes, plane)
    ratio_fn = k.function("xrfgpu_rl_ratio_bcast", dtype)
    filter_fn = k.function("xrfgpu_reflect_dct_filter", dtype)
    n = y.size
    props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
    sms = int(props["multiProcessorCount"])
    grid = (max(1, min((n + _BLOCK - 1) // _BLOCK, 32 * sms)),)
    filter_work = planes * (n1 // 2 + 1) * half
    filter_grid = (max(1, min((filter_work + _BLOCK - 1) // _BLOCK, 32 * sms)),)

    def blur(src, dst):
        r2c.fft(src, spectrum, cufft.CUFFT_FORWARD)
        filter_fn(filter_grid, (_BLOCK,), (spectrum, lam, planes, n1, n2, lam.size // plane, 1.0 / plane, tw1, tw2))
        c2r.fft(spectrum, dst, cufft.CUFFT_INVERSE)

    if accelerate:
        x_prev = x.copy()
        g1 = cp.zeros_like(y)
        g2 = cp.zeros_like(y)
        acc = cp.zeros(2 * planes, dtype=cp.float64)
        extrapolate_fn = k.function("xrfgpu_rl_extrapolate_dev", dtype)
        update_fn = k.function("xrfgpu_rl_update_accel", dtype)
        update_grid = (max(1, min((plane + _BLOCK - 1) // _BLOCK, max(1, 32 * sms // planes))), planes)

        def iteration(stream):
            extrapolate_fn(grid, (_BLOCK,), (x, x_prev, acc, n, plane))
            blur(x_prev, work)
            ratio_fn(grid, (_BLOCK,), (y, work, n, *b_arg, *e_arg))
            blur(work, work)
            cp.cuda.runtime.memsetAsync(acc.data.ptr, 0, acc.nbytes, stream.ptr)
            update_fn(update_grid, (_BLOCK,), (x, x_prev, work, g1, g2, acc, planes, plane))
    else:
        update_fn = k.function("xrfgpu_rl_update_inplace", dtype)

        def iteration(stream):
            blur(x, work)
            ratio_fn(grid, (_BLOCK,), (y, work, n, *b_arg, *e_arg))
            blur(work, work)
            update_fn(grid, (_BLOCK,), (x, work, n))

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
    # one host wait per call, not per iteration: the buffers, plans and graph outlive the queued work
    stream.synchronize()
    return x


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

