"""GPU benchmarks (skipped without CuPy and a CUDA device): NumPy vs CuPy, kernels vs plain CuPy.

Cases: RL on a 4096² float32 map (NumPy, CuPy with the fused kernels, CuPy
with ``set_engine("xp")``), the transform floor on the GPU, and a 16-map
4096² stack through :func:`xrfgpu.restore_stack`. Timings synchronise the
device; the first call (kernel compilation, cuFFT plans) is an untimed warm-up.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import BACKGROUND, four_transforms, mse, observed

import xrfgpu
from xrfgpu import _elementwise

pytestmark = pytest.mark.gpu
SIZE = 4096
ITERS = 20


def _sync_call(fn):
    import cupy

    def wrapped():
        out = fn()
        cupy.cuda.Device().synchronize()
        return out

    return wrapped


def test_rl_numpy_4096(benchmark):
    benchmark.group = "gpu-rl-4096"
    counts, truth, psf = observed(SIZE)
    out = benchmark.pedantic(lambda: xrfgpu.richardson_lucy(counts, psf, num_iter=ITERS, background=BACKGROUND),
                             rounds=1, iterations=1)
    benchmark.extra_info.update(role="numpy", iterations=ITERS, mse=mse(out, truth))


@pytest.mark.parametrize("engine", ["auto", "xp"], ids=["cupy-kernels", "cupy-plain"])
def test_rl_cupy_4096(benchmark, engine):
    import cupy

    benchmark.group = "gpu-rl-4096"
    counts, truth, psf = observed(SIZE)
    y, h = cupy.asarray(counts), cupy.asarray(psf)
    _elementwise.set_engine(engine)
    try:
        fn = _sync_call(lambda: xrfgpu.richardson_lucy(y, h, num_iter=ITERS, background=BACKGROUND))
        out = benchmark.pedantic(fn, rounds=3, iterations=1, warmup_rounds=1)
    finally:
        _elementwise.set_engine("auto")
    benchmark.extra_info.update(role=f"cupy-{engine}", iterations=ITERS, compare_to="numpy",
                                per_iteration_floor=True, mse=mse(out.get(), truth))


def test_transform_floor_cupy_4096(benchmark):
    import cupy

    from xrfgpu.fft import Convolution

    benchmark.group = "gpu-rl-4096"
    counts, _, psf = observed(SIZE)
    op = Convolution(cupy.asarray((psf / psf.sum()).astype(np.float32)), counts.shape, iterative=True)
    fn = _sync_call(four_transforms(op, cupy.asarray(counts)))
    benchmark.pedantic(fn, rounds=5, iterations=1, warmup_rounds=1)
    benchmark.extra_info.update(role="floor", engine=op.engine,
                                canvas=f"{op.transform_shape[0]}x{op.transform_shape[1]}")


@pytest.mark.parametrize("where", ["cpu", "gpu"])
def test_stack_16_maps(benchmark, where):
    benchmark.group = "gpu-stack-16x4096"
    maps, psfs = [], []
    for k in range(16):
        counts, _, psf = observed(SIZE, seed=0)
        maps.append(counts)
        psfs.append(psf)
    stack = np.stack(maps)
    fn = lambda: xrfgpu.restore_stack(stack, psfs, "rl", device=where, num_iter=ITERS, background=BACKGROUND)  # noqa: E731
    benchmark.pedantic(fn, rounds=1, iterations=1, warmup_rounds=0 if where == "cpu" else 1)
    benchmark.extra_info.update(role=where, iterations=ITERS, compare_to="cpu" if where == "gpu" else None)
