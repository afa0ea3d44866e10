"""Probe of the CuPy/cuFFT features the fused GPU RL engine relies on (prints one line per check).

Checks: a batched out-of-place R2C/C2R ``cupy.cuda.cufft.PlanNd`` equals
``cupy.fft.rfftn``/``irfftn``; a CUDA graph captured on a non-default stream
with a RawKernel, a plan execution and a ``memsetAsync`` replays to the same
numbers; ``atomicAdd`` on doubles compiles with NVRTC.
"""

from __future__ import annotations

import json
import sys
import traceback

import numpy as np


def main(out):
    import cupy as cp
    from cupy.cuda import cufft

    results = {}

    def check(name, fn):
        try:
            results[name] = fn()
        except Exception:  # noqa: BLE001
            results[name] = "ERROR " + traceback.format_exc(limit=4)
        print(name, results[name], flush=True)

    n, h, w = 3, 40, 54
    a = cp.random.random_sample((n, h, w)).astype(cp.float32)

    def plans():
        r2c = cufft.PlanNd((h, w), None, 1, h * w, None, 1, h * (w // 2 + 1), cufft.CUFFT_R2C, n, "C", -1, w // 2 + 1)
        c2r = cufft.PlanNd((h, w), None, 1, h * (w // 2 + 1), None, 1, h * w, cufft.CUFFT_C2R, n, "C", -1, w)
        spec = cp.empty((n, h, w // 2 + 1), cp.complex64)
        r2c.fft(a, spec, cufft.CUFFT_FORWARD)
        ref = cp.fft.rfftn(a, axes=(-2, -1))
        err1 = float(cp.abs(spec - ref).max() / cp.abs(ref).max())
        back = cp.empty_like(a)
        c2r.fft(spec, back, cufft.CUFFT_INVERSE)
        err2 = float(cp.abs(back / (h * w) - a).max())
        return {"r2c_rel_err": err1, "c2r_roundtrip_err": err2}

    check("plannd", plans)

    def graph():
        r2c = cufft.PlanNd((h, w), None, 1, h * w, None, 1, h * (w // 2 + 1), cufft.CUFFT_R2C, n, "C", -1, w // 2 + 1)
        c2r = cufft.PlanNd((h, w), None, 1, h * (w // 2 + 1), None, 1, h * w, cufft.CUFFT_C2R, n, "C", -1, w)
        scale = cp.RawKernel(r"""
        extern "C" __global__ void scale(float* x, long long n, float s, double* acc) {
            long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
            if (i < n) { x[i] = x[i] * s; atomicAdd(acc, (double)x[i]); }
        }""", "scale")
        x = a.copy()
        spec = cp.empty((n, h, w // 2 + 1), cp.complex64)
        acc = cp.zeros(1, cp.float64)
        s = cp.cuda.Stream(non_blocking=True)
        with s:
            s.begin_capture()
            cp.cuda.runtime.memsetAsync(acc.data.ptr, 0, 8, s.ptr)
            r2c.fft(x, spec, cufft.CUFFT_FORWARD)
            c2r.fft(spec, x, cufft.CUFFT_INVERSE)
            scale(((x.size + 255) // 256,), (256,), (x, np.int64(x.size), np.float32(1.0 / (h * w)), acc))
            g = s.end_capture()
        for _ in range(3):
            g.launch(s)
        s.synchronize()
        err = float(cp.abs(x - a).max())
        return {"graph_roundtrip_err": err, "acc": float(acc[0]), "expected_acc": float(a.sum(dtype=cp.float64))}

    check("graph", graph)

    def shared_work_area():
        """xrfgpu.cuda.real_fft_plans: R2C and C2R share one work area, and still transform correctly."""
        from xrfgpu import cuda

        sizes = {}
        for size in (1024, 4096, 8192):
            cuda._FFT_PLANS.clear()
            plain = (cufft.PlanNd((size, size), None, 1, size * size, None, 1, size * (size // 2 + 1),
                                  cufft.CUFFT_R2C, 1, "C", -1, size // 2 + 1),
                     cufft.PlanNd((size, size), None, 1, size * (size // 2 + 1), None, 1, size * size,
                                  cufft.CUFFT_C2R, 1, "C", -1, size))
            sizes[size] = [p.work_area.mem.size / (4 * size * size) if p.work_area.ptr else 0 for p in plain]
            del plain
        cuda._FFT_PLANS.clear()
        r2c, c2r = cuda.real_fft_plans(h, w, n, cp.float32)
        spec = cp.empty((n, h, w // 2 + 1), cp.complex64)
        r2c.fft(a, spec, cufft.CUFFT_FORWARD)
        ref = cp.fft.rfftn(a, axes=(-2, -1))
        forward_err = float(cp.abs(spec - ref).max() / cp.abs(ref).max())  # before C2R overwrites spec
        back = cp.empty_like(a)
        c2r.fft(spec, back, cufft.CUFFT_INVERSE)
        return {"shared": r2c.work_area.ptr == c2r.work_area.ptr,
                "r2c_rel_err": forward_err,
                "c2r_roundtrip_err": float(cp.abs(back / (h * w) - a).max()),
                "work_area_x_map_r2c_c2r": sizes}

    check("shared_work_area", shared_work_area)
    with open(out, "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
