"""The joint restoration's dTV inner loop on CuPy: the two fused kernels against the array-API loop.

One call of :func:`xrfgpu.joint._weighted_dtv_denoise` (10 dual steps) on the simulated skarn's size
(3 maps of 288², float32, a field per map), plain dTV and Huber-dTV with reweighting, timed on the
GPU with the fused kernels of ``kernels/dtv.cu`` (``xrfgpu._elementwise.dtv_denoise_cuda``) and
with them switched off (the array-API loop, ~20 CuPy operations per step: the path before), and on
NumPy (``dtv_denoise_numpy``). Then the fixed joint call of ``benchmarks/gpu_speed.py``
``measure_joint`` (skarn seed 0, weight 0.05, 100 iterations) on the GPU with and without the
fused kernels, and the largest difference of their results. Prints one JSON object.

    python benchmarks/dtv_fused_speed.py [--json out.json] [--no-joint]

Without CuPy or a usable device only the NumPy timing is printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _inputs(rng, m=3, n=288, dtype=np.float32):
    z = rng.gamma(2.0, 20.0, (m, n, n)).astype(dtype)
    w = rng.gamma(2.0, 20.0, (m, n, n)).astype(dtype)
    xi = rng.normal(size=(2, m, n, n))
    xi = (xi / (1.0 + np.sqrt((xi ** 2).sum(axis=0)))).astype(dtype)
    lam = np.array([0.05, 0.02, 0.1], dtype)[:m].reshape(m, 1, 1)
    p = (np.zeros((m, n, n), dtype), np.zeros((m, n, n), dtype))
    rw = rng.uniform(0.2, 1.0, (m, n, n)).astype(dtype)
    huber = rng.uniform(0.5, 2.0, (m, 1, 1)).astype(dtype)
    return z, w, lam, xi, p, rw, huber


def _call(xp, asarray, inputs, *, extras):
    """A no-argument call of one outer dTV denoising in namespace ``xp`` (arrays moved by ``asarray``)."""
    from xrfgpu import joint as J

    z, w, lam, xi, p, rw, huber = inputs
    z, w, lam, xi, rw, huber = (asarray(a) for a in (z, w, lam, xi, rw, huber))
    p = (asarray(p[0]), asarray(p[1]))
    rw, huber = (rw, huber) if extras else (None, None)
    wmax = xp.max(w, axis=(-2, -1), keepdims=True)
    return lambda: J._weighted_dtv_denoise(z, w, lam, xi[0], xi[1], 0.9, p, xp=xp, n_inner=10, wmax=wmax, rw=rw,
                                           huber=huber)


def _host_seconds(fn, reps=5):
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


class _FusedOff:
    """Switch the fused dTV kernels off (the array-API loop runs; every other kernel stays on)."""

    def __enter__(self):
        from xrfgpu import joint as J

        self._saved = J.dtv_denoise_cuda
        J.dtv_denoise_cuda = lambda *a, **k: None
        return self

    def __exit__(self, *exc):
        from xrfgpu import joint as J

        J.dtv_denoise_cuda = self._saved
        return False


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the JSON here")
    parser.add_argument("--no-joint", action="store_true", help="skip the whole joint call")
    args = parser.parse_args(argv)
    import array_api_compat.numpy as xnp

    rng = np.random.default_rng(0)
    inputs = _inputs(rng)
    out = {"maps": 3, "size": 288, "dtype": "float32", "n_inner": 10}
    for extras, label in ((False, "dtv"), (True, "huber_reweighted")):
        out[f"numpy_{label}_ms"] = 1e3 * _host_seconds(_call(xnp, np.asarray, inputs, extras=extras))
    try:
        import cupy as cp

        usable = cp.is_available()
    except Exception:  # noqa: BLE001 - no CuPy, or no driver
        usable = False
    if not usable:
        out["gpu"] = "no CuPy or no usable CUDA device"
    else:
        try:
            _measure_gpu(cp, inputs, out, joint=not args.no_joint)
        except Exception as exc:  # noqa: BLE001 - keep what was measured, say what failed
            out["gpu_error"] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(out))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0 if "gpu_error" not in out else 1


def _measure_gpu(cp, inputs, out, *, joint):
    """The GPU timings into ``out`` (fused kernels against the array-API loop)."""
    import array_api_compat.cupy as xcp

    from gpu_speed import timed

    name = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)["name"]
    out["device"] = name.decode() if isinstance(name, bytes) else str(name)
    for extras, label in ((False, "dtv"), (True, "huber_reweighted")):
        fn = _call(xcp, cp.asarray, inputs, extras=extras)
        out[f"gpu_fused_{label}_ms"] = 1e3 * timed(fn, reps=20)
        x, (px, py) = fn()
        fused = [cp.asnumpy(a) for a in (x, px, py)]
        with _FusedOff():
            out[f"gpu_loop_{label}_ms"] = 1e3 * timed(fn, reps=20)
            x, (px, py) = fn()
            loop = [cp.asnumpy(a) for a in (x, px, py)]
        out[f"gpu_{label}_speedup"] = out[f"gpu_loop_{label}_ms"] / out[f"gpu_fused_{label}_ms"]
        out[f"gpu_{label}_max_abs_diff"] = max(float(np.abs(f - g).max()) for f, g in zip(fused, loop))
        print("progress", json.dumps(out), flush=True)
    if joint:
        import skarn

        from xrfgpu.joint import joint_richardson_lucy

        counts, _, psfs, backgrounds, _ = skarn.observe(0)
        g = cp.asarray(np.asarray(counts, dtype=np.float32))
        gh = [cp.asarray(np.asarray(h, dtype=np.float32)) for h in psfs]
        fixed = dict(background=list(backgrounds), weight=0.05, num_iter=100)
        joint = lambda: joint_richardson_lucy(g, gh, **fixed)  # noqa: E731
        out["joint_fixed_gpu_fused_s"] = timed(joint, reps=1)
        fused = cp.asnumpy(joint())
        with _FusedOff():
            out["joint_fixed_gpu_loop_s"] = timed(joint, reps=1)
            loop = cp.asnumpy(joint())
        out["joint_fixed_speedup"] = out["joint_fixed_gpu_loop_s"] / out["joint_fixed_gpu_fused_s"]
        out["joint_fixed_max_rel_diff"] = float(np.abs(fused - loop).max() / np.abs(loop).max())


if __name__ == "__main__":
    raise SystemExit(main())
