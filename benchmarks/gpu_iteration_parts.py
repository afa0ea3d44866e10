"""Time each launch of one fixed-buffer RL iteration on a CUDA device, against the cuFFT floor.

The GPU iteration of :mod:`xrfgpu._gpu_rl` (``"dctfft"`` engine) is four cuFFT
real transforms (padded rows; three of them in place on the spectrum's buffer)
plus four elementwise kernels: the spectrum filter twice, the
ratio and the update (with acceleration: the extrapolation and the accelerated
update instead of the update). This script times each launch alone, many times
in a row on fixed buffers (CUDA events, the median of 5 batches), and compares
the elementwise kernels with the time their memory traffic takes at the
device's copy bandwidth (a device-to-device copy of the same bytes), so the
part of an iteration above the cuFFT floor is accounted for launch by launch.

Usage (on a machine with CuPy and a CUDA device)::

    python benchmarks/gpu_iteration_parts.py out.json --sizes 2048,4096

Writes JSON: per size, milliseconds per launch of each part, the sum, and
``copy_ms_*`` (a copy of the bytes each kernel reads and writes).
"""

from __future__ import annotations

import json
import sys

import numpy as np


def per_launch_ms(cp, fn, launches=50, batches=5):
    """Median over ``batches`` of the mean time of ``launches`` back-to-back calls of ``fn``, in ms."""
    fn()
    cp.cuda.Device().synchronize()
    times = []
    for _ in range(batches):
        start, end = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        for _ in range(launches):
            fn()
        end.record()
        end.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, end) / launches)
    return float(np.median(times))


# Launch shapes for one elementwise step (x ← x · c over padded rows), to choose the structure of the
# iteration's row kernels by measurement: rows along the grid's second dimension (the kernels' current
# shape), the same with four independent columns per thread, one block per row, and a flat loop.
_SHAPES_SOURCE = r"""
extern "C" __global__ void rows_unroll4(float* __restrict__ x, const float* __restrict__ c, long long lines,
                                        long long cols, long long ld) {
    for (long long line = blockIdx.y; line < lines; line += gridDim.y) {
        float* xr = x + line * ld;
        const float* cr = c + line * ld;
        for (long long j0 = (long long)blockIdx.x * blockDim.x * 4 + threadIdx.x; j0 < cols;
             j0 += (long long)blockDim.x * gridDim.x * 4) {
            float a[4], b[4];
#pragma unroll
            for (int u = 0; u < 4; ++u) {
                const long long j = j0 + u * blockDim.x;
                if (j < cols) { a[u] = xr[j]; b[u] = cr[j]; }
            }
#pragma unroll
            for (int u = 0; u < 4; ++u) {
                const long long j = j0 + u * blockDim.x;
                if (j < cols) xr[j] = __fmul_rn(a[u], b[u]);
            }
        }
    }
}
extern "C" __global__ void block_per_row(float* __restrict__ x, const float* __restrict__ c, long long lines,
                                         long long cols, long long ld) {
    for (long long line = blockIdx.x; line < lines; line += gridDim.x) {
        float* xr = x + line * ld;
        const float* cr = c + line * ld;
        for (long long j = threadIdx.x; j < cols; j += blockDim.x) xr[j] = __fmul_rn(xr[j], cr[j]);
    }
}
extern "C" __global__ void flat(float* __restrict__ x, const float* __restrict__ c, long long n) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)blockDim.x * gridDim.x)
        x[i] = __fmul_rn(x[i], c[i]);
}
"""


def launch_shapes(cp, k, x, work, rows, cols, ld):
    """Milliseconds per launch of x ← x · c over padded rows in several launch shapes (see _SHAPES_SOURCE)."""
    module = cp.RawModule(code=_SHAPES_SOURCE, options=("--std=c++17",))
    unroll, per_row, flat = (module.get_function(n) for n in ("rows_unroll4", "block_per_row", "flat"))
    update_fn = k.function("xrfgpu_rl_update_rows", cp.float32)
    block = (k.BLOCK,)
    sms = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)["multiProcessorCount"]
    across4 = -(-cols // (4 * k.BLOCK))
    dense_x = cp.ones((rows, cols), dtype=cp.float32)
    dense_c = cp.ones((rows, cols), dtype=cp.float32)
    return {
        "update_rows_ms": per_launch_ms(cp, lambda: update_fn(k.grid_rows(cols, rows, group=k.GROUP), block, (
            x, work, rows, cols, ld))),
        "update_rows_all_rows_ms": per_launch_ms(cp, lambda: update_fn(
            (-(-cols // k.BLOCK), min(rows, 65535)), block, (x, work, rows, cols, ld))),
        "update_rows_unroll4_ms": per_launch_ms(cp, lambda: unroll(
            (across4, max(1, min(rows, 32 * sms // across4))), block, (x, work, rows, cols, ld))),
        "update_rows_unroll4_all_rows_ms": per_launch_ms(cp, lambda: unroll(
            (across4, min(rows, 65535)), block, (x, work, rows, cols, ld))),
        "update_block_per_row_ms": per_launch_ms(cp, lambda: per_row(
            (min(rows, 65535),), block, (x, work, rows, cols, ld))),
        "update_flat_ms": per_launch_ms(cp, lambda: flat((k.grid(x.size),), block, (x, work, x.size))),
        "update_flat_one_per_thread_ms": per_launch_ms(cp, lambda: flat(
            (-(-x.size // k.BLOCK),), block, (x, work, x.size))),
        "update_cupy_multiply_ms": per_launch_ms(cp, lambda: cp.multiply(dense_x, dense_c, out=dense_x)),
    }


def parts(size):
    """Milliseconds per launch of each part of one dctfft iteration on a ``size``² float32 map."""
    import cupy as cp
    from cupy.cuda import cufft

    from xrfgpu.cuda import kernels, real_fft_plans

    k = kernels()
    rows = cols = int(size)
    half = cols // 2 + 1
    ld = 2 * half  # the padded rows of the in-place transforms (xrfgpu/_gpu_rl.py)
    rng = cp.random.default_rng(0)
    y = rng.random((rows, cols), dtype=cp.float32) * 100 + 1
    x = cp.zeros((rows, ld), dtype=cp.float32)
    x[:, :cols] = rng.random((rows, cols), dtype=cp.float32) + 1
    x_prev = x.copy()
    g1 = cp.zeros_like(x)
    spectrum = cp.empty((rows, half), dtype=cp.complex64)
    work = spectrum.view(cp.float32)
    work[:, :cols] = 1.0
    lam_rows = cp.asarray(np.exp(-np.linspace(0, 8, rows)).astype(np.float32))
    lam_cols = cp.asarray(np.exp(-np.linspace(0, 8, cols)).astype(np.float32))
    tw1, tw2 = k.dct_twiddles(rows), k.dct_twiddles(cols)
    b = k.operand(140.0, y)
    e = k.operand(1e-12, y)
    acc = cp.ones(2, dtype=cp.float64)
    r2c, c2r = real_fft_plans(rows, cols, 1, cp.float32, padded=True)
    filter_fn = k.function("xrfgpu_reflect_dct_filter", cp.float32)
    ratio_fn = k.function("xrfgpu_rl_ratio_makhoul", cp.float32)
    update_fn = k.function("xrfgpu_rl_update_rows", cp.float32)
    extrapolate_fn = k.function("xrfgpu_rl_extrapolate_dev", cp.float32)
    accel_fn = k.function("xrfgpu_rl_update_accel", cp.float32)
    block = (k.BLOCK,)
    n = rows * cols
    copy_src = cp.empty(3 * n, dtype=cp.float32)
    copy_dst = cp.empty_like(copy_src)

    def copy_of(values):  # a device-to-device copy moving `values` float32 values each way
        def copy():
            cp.cuda.runtime.memcpyAsync(copy_dst.data.ptr, copy_src.data.ptr, 4 * int(values),
                                        cp.cuda.runtime.memcpyDeviceToDevice, cp.cuda.get_current_stream().ptr)
        return copy

    result = {
        "size": size,
        "r2c_ms": per_launch_ms(cp, lambda: r2c.fft(x, spectrum, cufft.CUFFT_FORWARD)),
        "c2r_ms": per_launch_ms(cp, lambda: c2r.fft(spectrum, work, cufft.CUFFT_INVERSE)),  # in place
        "r2c_inplace_ms": per_launch_ms(cp, lambda: r2c.fft(work, spectrum, cufft.CUFFT_FORWARD)),
        "filter_ms": per_launch_ms(cp, lambda: filter_fn(k.grid_rows(half, rows // 2 + 1, group=k.GROUP), block, (
            spectrum, lam_rows, lam_rows, lam_cols, 1, 1, rows, cols, 1, 1.0, tw1, tw2))),
        "ratio_ms": per_launch_ms(cp, lambda: ratio_fn(k.grid_rows((cols + 1) // 2, rows, group=k.GROUP), block, (
            y, work, 1, rows, cols, ld, *b, *e))),
        "update_ms": per_launch_ms(cp, lambda: update_fn(k.grid_rows(cols, rows, group=k.GROUP), block, (
            x, work, rows, cols, ld))),
        "extrapolate_ms": per_launch_ms(cp, lambda: extrapolate_fn(k.grid_rows(x.size, 1), block, (
            x, x_prev, acc, x.size, x.size))),
        "update_accel_ms": per_launch_ms(cp, lambda: accel_fn((k.grid(rows * k.BLOCK), 1), block, (
            x, x_prev, work, g1, acc, 1, rows, cols, ld))),
        # bandwidth references: the filter moves the half spectrum in and out (≈ 2 maps), the ratio
        # and the update read two maps and write one
        "copy_ms_filter": per_launch_ms(cp, copy_of(2 * rows * half)),
        "copy_ms_ratio_update": per_launch_ms(cp, copy_of(n + n // 2)),
    }
    def step_times(get, group, prefix):
        """The four grouped step kernels of one build (``get(name)``), launched for ``group`` columns per thread."""
        return {
            f"{prefix}filter_ms": per_launch_ms(cp, lambda: get("xrfgpu_reflect_dct_filter")(
                k.grid_rows(half, rows // 2 + 1, group=group), block,
                (spectrum, lam_rows, lam_rows, lam_cols, 1, 1, rows, cols, 1, 1.0, tw1, tw2))),
            f"{prefix}ratio_ms": per_launch_ms(cp, lambda: get("xrfgpu_rl_ratio_makhoul")(
                k.grid_rows((cols + 1) // 2, rows, group=group), block, (y, work, 1, rows, cols, ld, *b, *e))),
            f"{prefix}update_ms": per_launch_ms(cp, lambda: get("xrfgpu_rl_update_rows")(
                k.grid_rows(cols, rows, group=group), block, (x, work, rows, cols, ld))),
            f"{prefix}update_accel_ms": per_launch_ms(cp, lambda: get("xrfgpu_rl_update_accel")(
                (k.grid(rows * k.BLOCK), 1), block, (x, x_prev, work, g1, acc, 1, rows, cols, ld))),
        }

    # the same kernels built with other column groups and occupancy floors (the build's defaults above)
    from xrfgpu import cuda

    unbounded = "#define XRFGPU_FILTER_MIN_BLOCKS 1\n#define XRFGPU_RATIO_MIN_BLOCKS 1\n"
    variants = (("g1_", "#define XRFGPU_GROUP 1\n" + unbounded, 1),
                ("g4_unbounded_", unbounded, 4),
                ("g2_", "#define XRFGPU_GROUP 2\n", 2))
    for prefix, defines, group in variants:
        try:
            modules = {f: cp.RawModule(code=defines + cuda.kernel_source(f), options=cuda.COMPILE_OPTIONS)
                       for f in ("dct_spectrum.cu", "rl.cu", "rl_accel.cu")}

            def get(name, modules=modules):
                file = next(f for f, names in cuda.KERNEL_FILES.items() if name in names)
                return modules[file].get_function(f"{name}_f32")

            result.update(step_times(get, group, prefix))
        except Exception as exc:  # noqa: BLE001 - a variant that fails is reported, not fatal
            result[f"{prefix}error"] = f"{type(exc).__name__}: {exc}"
    try:
        result.update(launch_shapes(cp, k, x, work, rows, cols, ld))
    except Exception as exc:  # noqa: BLE001 - the comparison is optional; report why it is missing
        result["launch_shapes_error"] = f"{type(exc).__name__}: {exc}"
    result["transforms_ms"] = result["r2c_ms"] + result["r2c_inplace_ms"] + 2 * result["c2r_ms"]
    result["iteration_sum_ms"] = (result["transforms_ms"] + 2 * result["filter_ms"] + result["ratio_ms"]
                                  + result["update_ms"])
    result["elementwise_at_copy_speed_ms"] = 2 * result["copy_ms_filter"] + 2 * result["copy_ms_ratio_update"]
    return result


def direct_parts(size, taps=61):
    """Milliseconds per launch of the real-space separable blur's passes (kernels/separable_blur.cu).

    One plain iteration with ``xrfgpu._gpu_rl.DIRECT_BLUR`` is two row passes (both row kernels are
    timed: the thread-per-column-group one and the warp one through shared memory, with a check that
    they agree bit for bit), a column pass with the ratio and one with the update (:func:`xrfgpu._gpu_rl.direct_plain_iteration`); ``taps`` is the
    benchmark PSF's width (61 for σ = 7.5 px). The column pass is also timed when built with other strips
    (``XRFGPU_STRIP``: output rows per thread), to choose that constant by measurement. Both column passes
    are timed, the strip pass (``xrfgpu_blur_cols``) and the tiled one (``xrfgpu_blur_cols_tile``, the
    default ``_gpu_rl.COL_PASS``), checked bit for bit equal with each epilogue (``cols_tile_equal_*``), and
    the tiled one also built with other rows per warp, occupancy floors and loads in flight (``tile_*``).
    """
    import cupy as cp

    from xrfgpu import cuda
    from xrfgpu.cuda import kernels

    k = kernels()
    rows = cols = int(size)
    rng = cp.random.default_rng(1)
    y = rng.random((rows, cols), dtype=cp.float32) * 100 + 1
    x = rng.random((rows, cols), dtype=cp.float32) + 1
    tmp, work = cp.empty_like(x), cp.empty_like(x)
    w = cp.asarray(np.hanning(taps + 2)[1:-1] / np.hanning(taps + 2).sum(), dtype=cp.float32)
    b = k.operand(140.0, y)
    e = k.operand(1e-12, y)
    block = (k.BLOCK,)
    rows_fn = k.function("xrfgpu_blur_rows", cp.float32)
    rows_warp_fn = k.function("xrfgpu_blur_rows_warp", cp.float32)
    cols_fn = k.function("xrfgpu_blur_cols", cp.float32)

    def cols_call(fn, strip, mode, dst):
        grid = k.grid_rows(cols, -(-rows // strip))
        return lambda: fn(grid, block, (tmp, dst, w, w.size, 1, rows, cols, mode, y, *b, *e))

    result = {
        "size": size,
        "taps": taps,
        "direct_rows_ms": per_launch_ms(cp, lambda: rows_fn(k.grid_rows(cols, rows, group=k.GROUP), block,
                                                            (x, tmp, w, w.size, rows, cols))),
        "direct_rows_warp_ms": per_launch_ms(cp, lambda: rows_warp_fn(
            (k.grid(32 * rows * -(-cols // (32 * k.ROW_STRIP))),), block, (x, work, w, w.size, rows, cols))),
        "direct_cols_ratio_ms": per_launch_ms(cp, cols_call(cols_fn, k.STRIP, 1, work)),
        "direct_cols_update_ms": per_launch_ms(cp, cols_call(cols_fn, k.STRIP, 2, x)),
        "copy_ms_map": per_launch_ms(cp, lambda: cp.copyto(work, x)),
    }
    # the two row passes compute the same sums: their outputs must agree bit for bit
    rows_fn(k.grid_rows(cols, rows, group=k.GROUP), block, (x, tmp, w, w.size, rows, cols))
    rows_warp_fn((k.grid(32 * rows * -(-cols // (32 * k.ROW_STRIP))),), block, (x, work, w, w.size, rows, cols))
    result["rows_warp_equal"] = bool(cp.array_equal(tmp, work))
    fastest_rows = min(result["direct_rows_ms"], result["direct_rows_warp_ms"])
    result["direct_iteration_sum_ms"] = (2 * fastest_rows + result["direct_cols_ratio_ms"]
                                         + result["direct_cols_update_ms"])
    # the tiled column pass: the same sums from a shared-memory tile of 32 columns × a band of rows
    tile_fn = k.function("xrfgpu_blur_cols_tile", cp.float32)

    def tile_call(fn, band_rows, mode, dst):
        grid = (-(-cols // k.COL_WIDTH), min(-(-rows // band_rows), 65535))
        shared = ((band_rows + w.size - 1) * k.COL_WIDTH + w.size) * 4
        return lambda: fn(grid, (32 * k.COL_WARPS,), (tmp, dst, w, w.size, 1, rows, cols, mode, y, *b, *e),
                          shared_mem=shared)

    band = k.col_tile_rows(cp.float32)
    result["direct_cols_tile_ratio_ms"] = per_launch_ms(cp, tile_call(tile_fn, band, 1, work))
    result["direct_cols_tile_update_ms"] = per_launch_ms(cp, tile_call(tile_fn, band, 2, x))
    result["direct_tile_iteration_sum_ms"] = (2 * fastest_rows + result["direct_cols_tile_ratio_ms"]
                                              + result["direct_cols_tile_update_ms"])
    # bit for bit: the blur, the ratio and the update (over the same estimate) of both column passes, on
    # fresh inputs (the timed updates have grown x)
    tmp[...] = rng.random((rows, cols), dtype=cp.float32) * 10
    x0 = rng.random((rows, cols), dtype=cp.float32) + 0.5
    for mode, name in ((0, "blur"), (1, "ratio"), (2, "update")):
        by_strip, by_tile = x0.copy(), x0.copy()
        cols_call(cols_fn, k.STRIP, mode, by_strip)()
        tile_call(tile_fn, band, mode, by_tile)()
        result[f"cols_tile_equal_{name}"] = bool(cp.array_equal(by_strip, by_tile))
    del by_strip, by_tile, x0
    # the default is 8 rows per warp at 4 blocks per SM (float32); the variants around it, and the earlier
    # default (16 rows at 3 blocks)
    tile_variants = (("tile_s16_b3_", "#define XRFGPU_COL_STRIP_F32 16\n#define XRFGPU_COL_MIN_BLOCKS_F32 3\n", 16),
                     ("tile_s8_b3_", "#define XRFGPU_COL_MIN_BLOCKS_F32 3\n", 8),
                     ("tile_s8_loads4_", "#define XRFGPU_COL_LOADS 4\n", 8),
                     ("tile_s4_b4_", "#define XRFGPU_COL_STRIP_F32 4\n", 4))
    for prefix, defines, strip in tile_variants:
        try:
            module = cp.RawModule(code=defines + cuda.kernel_source("separable_blur.cu"), options=cuda.COMPILE_OPTIONS)
            fn = module.get_function("xrfgpu_blur_cols_tile_f32")
            result[f"{prefix}cols_ratio_ms"] = per_launch_ms(cp, tile_call(fn, k.COL_WARPS * strip, 1, work))
        except Exception as exc:  # noqa: BLE001 - a variant that fails is reported, not fatal
            result[f"{prefix}error"] = f"{type(exc).__name__}: {exc}"
    for strip in (8, 32):
        try:
            module = cp.RawModule(code=f"#define XRFGPU_STRIP {strip}\n" + cuda.kernel_source("separable_blur.cu"),
                                  options=cuda.COMPILE_OPTIONS)
            fn = module.get_function("xrfgpu_blur_cols_f32")
            result[f"strip{strip}_cols_ratio_ms"] = per_launch_ms(cp, cols_call(fn, strip, 1, work))
        except Exception as exc:  # noqa: BLE001 - a variant that fails is reported, not fatal
            result[f"strip{strip}_error"] = f"{type(exc).__name__}: {exc}"
    return result


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    out = argv[0] if argv else "gpu_iteration_parts.json"
    sizes = [2048, 4096]
    if "--sizes" in argv:
        sizes = [int(v) for v in argv[argv.index("--sizes") + 1].split(",")]
    rows = []
    for size in sizes:
        row = parts(size)
        rows.append(row)
        print(json.dumps({key: (round(v, 4) if isinstance(v, float) else v) for key, v in row.items()}), flush=True)
        try:
            direct = direct_parts(size)
        except Exception as exc:  # noqa: BLE001 - the real-space blur is measured where it runs
            direct = {"size": size, "direct_error": f"{type(exc).__name__}: {exc}"}
        row["direct"] = direct
        print("direct", json.dumps({key: (round(v, 4) if isinstance(v, float) else v) for key, v in direct.items()}),
              flush=True)
    with open(out, "w") as fh:
        json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
