"""GPU benchmarks (skipped without CuPy and a CUDA device), as pytest-benchmark groups.

The same measurements as ``benchmarks/gpu_speed.py`` (which ``gpu_check.sh``
runs to write JSON), for a pytest-benchmark report:

* ``gpu-rl-<size>``: one RL run of 50 iterations on a 2048² and an 8192²
  map — xrfgpu (fixed buffers, CUDA graph), the naive periodic CuPy RL, the
  four-transform cuFFT floor of the map, and cuCIM's ``richardson_lucy``;
* ``gpu-numpy-vs-cupy``: accelerated RL, 2048², 20 iterations, NumPy against CuPy;
* ``gpu-stack``: 64 maps of 512² against one 4096² map, 20 iterations.

Run: ``pytest benchmarks/bench_gpu.py -m gpu`` on a machine with a GPU.
"""

from __future__ import annotations

import numpy as np
import pytest

import gpu_speed as gs

pytestmark = pytest.mark.gpu
ITERS = 50


def _sync(fn):
    import cupy

    def wrapped():
        out = fn()
        cupy.cuda.Device().synchronize()
        return out

    return wrapped


@pytest.mark.parametrize("size", [2048, 8192])
@pytest.mark.parametrize("role", ["xrfgpu", "naive", "floor", "cucim"])
def test_rl_iteration(benchmark, size, role):
    import cupy

    import xrfgpu

    benchmark.group = f"gpu-rl-{size}"
    y = gs.count_map(size)
    h = gs.psf_host()
    hd = cupy.asarray(h)
    if role == "xrfgpu":
        fn = lambda: xrfgpu.richardson_lucy(y, hd, num_iter=ITERS, background=gs.BACKGROUND)  # noqa: E731
    elif role == "naive":
        otf = gs.periodic_otf(h, y.shape)
        fn = lambda: gs.naive_rl(y, otf, gs.BACKGROUND, ITERS)  # noqa: E731
    elif role == "floor":
        four = gs.four_transforms(y.shape)
        fn = lambda: [four() for _ in range(ITERS)]  # noqa: E731
    else:
        cucim = pytest.importorskip("cucim.skimage.restoration")
        scale = float(y.max())
        fn = lambda: cucim.richardson_lucy(y / scale, hd, num_iter=ITERS, clip=False)  # noqa: E731
    benchmark.pedantic(_sync(fn), rounds=3, iterations=1, warmup_rounds=1)
    benchmark.extra_info.update(role=role, iterations=ITERS, compare_to="naive", per_iteration_floor=True)


@pytest.mark.parametrize("where", ["numpy", "cupy"])
def test_numpy_vs_cupy(benchmark, where):
    import cupy

    import xrfgpu

    benchmark.group = "gpu-numpy-vs-cupy"
    y = gs.count_map(2048, seed=3)
    h = gs.psf_host()
    if where == "numpy":
        y_host = cupy.asnumpy(y)
        fn = lambda: xrfgpu.richardson_lucy(y_host, h, num_iter=20, background=gs.BACKGROUND,  # noqa: E731
                                            accelerate=True)
        benchmark.pedantic(fn, rounds=1, iterations=1)
    else:
        hd = cupy.asarray(h)
        fn = _sync(lambda: xrfgpu.richardson_lucy(y, hd, num_iter=20, background=gs.BACKGROUND, accelerate=True))
        benchmark.pedantic(fn, rounds=3, iterations=1, warmup_rounds=1)
    benchmark.extra_info.update(role=where, iterations=20, compare_to="numpy" if where == "cupy" else None)


@pytest.mark.parametrize("case", ["stack-64x512", "map-4096"])
def test_stack_throughput(benchmark, case):
    import cupy

    import xrfgpu

    benchmark.group = "gpu-stack"
    h = cupy.asarray(gs.psf_host())
    if case == "stack-64x512":
        stack = gs.count_map(512, seed=1, n=64)
        fn = lambda: xrfgpu.restore_stack(stack, h, "rl", num_iter=20, background=gs.BACKGROUND)  # noqa: E731
    else:
        big = gs.count_map(4096, seed=2)
        fn = lambda: xrfgpu.richardson_lucy(big, h, num_iter=20, background=gs.BACKGROUND)  # noqa: E731
    benchmark.pedantic(_sync(fn), rounds=3, iterations=1, warmup_rounds=1)
    benchmark.extra_info.update(role=case, iterations=20, pixels=int(np.prod((64, 512, 512))))
