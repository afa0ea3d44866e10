"""Runtime of one blind L0 run (Pan et al. 2014) on a 256² XRF-like map, NumPy and CuPy.

Map: grains and veins through a Gaussian of σ = 6 px, 150 signal and 140
background Poisson counts (:func:`xrfgpu.phantom.observe`, real borders);
kernel size 37 (6 pyramid levels, 5 alternations each) plus the final
restoration. ``extra_info`` records the σ fitted to the blind kernel.

Run::

    pytest benchmarks/bench_blind.py --benchmark-json=bench_blind.json
"""

from __future__ import annotations

import pytest

from xrfgpu import phantom
from xrfgpu.blind import blind_l0
from xrfgpu.psf import sigma_from_kernel

SIZE, SIGMA, KERNEL = 256, 6.0, 37


def _map():
    counts, _, _ = phantom.observe((SIZE, SIZE), SIGMA, seed=0, signal_counts=150, background_counts=140)
    return counts


def test_blind_l0_numpy_256(benchmark):
    benchmark.group = "blind-l0-256"
    counts = _map()
    result = benchmark.pedantic(lambda: blind_l0(counts, KERNEL), rounds=1, iterations=1)
    benchmark.extra_info.update(
        role="numpy", size=SIZE, kernel_size=KERNEL, true_sigma=SIGMA,
        blind_sigma=float(sigma_from_kernel(result.kernel).sigma),
    )


@pytest.mark.gpu
@pytest.mark.parametrize("engine", ["auto", "xp"], ids=["cupy-kernels", "cupy-plain"])
def test_blind_l0_cupy_256(benchmark, engine):
    import cupy

    from xrfgpu import _elementwise

    benchmark.group = "blind-l0-256"
    counts = cupy.asarray(_map())
    _elementwise.set_engine(engine)
    try:
        blind_l0(counts[:64, :64], 7, xk_iter=1)  # untimed warm-up: kernel compilation, cuFFT plans

        def run():
            out = blind_l0(counts, KERNEL)
            cupy.cuda.Device().synchronize()
            return out

        result = benchmark.pedantic(run, rounds=1, iterations=1)
    finally:
        _elementwise.set_engine("auto")
    benchmark.extra_info.update(
        role=f"cupy-{engine}", size=SIZE, kernel_size=KERNEL, true_sigma=SIGMA,
        blind_sigma=float(sigma_from_kernel(result.kernel).sigma),
    )
