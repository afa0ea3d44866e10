"""The FRC of two half-count RL restorations, iteration by iteration (xrfgpu.stopping.frc_iteration_curve).

The reference is built without the lockstep: the same binomial split
(``split_counts`` with the same seed), each half restored on its own by
``richardson_lucy`` for k iterations, and the FRC of the two read by
``frc_resolution``.
"""

import numpy as np
import pytest

import xrfgpu
from xrfgpu import phantom
from xrfgpu.frc import fourier_ring_correlation, frc_resolution, split_counts
from xrfgpu.psf import gaussian_for_map
from xrfgpu.stopping import frc_iteration_curve


@pytest.fixture(scope="module")
def counts():
    observed, _, _ = phantom.observe((64, 72), 2.5, seed=3)
    return observed


def test_lockstep_curve_equals_halves_restored_one_at_a_time(xp, counts):
    h = gaussian_for_map(2.5, counts.shape, dtype=counts.dtype)
    res, curves = frc_iteration_curve(xp.asarray(counts), xp.asarray(h), background=100.0, max_iter=12, seed=4,
                                      return_curves=True)
    assert len(res) == len(curves) == 12
    first, second = split_counts(counts, seed=4)
    for k in (1, 5, 12):
        a = xrfgpu.richardson_lucy(xp.asarray(first), xp.asarray(h), num_iter=k, background=50.0, accelerate=True)
        b = xrfgpu.richardson_lucy(xp.asarray(second), xp.asarray(h), num_iter=k, background=50.0, accelerate=True)
        curve = fourier_ring_correlation(a, b)
        # on CuPy the halves restored one at a time run the fused single-map kernels, the lockstep pair the
        # stack's: float32 roundings apart, grown by 12 accelerated steps to 1.7e-4 of a ring's correlation
        # (H200 run, 2026-11-27); on the CPU both are the same array-API steps
        on_gpu = "cupy" in xp.__name__
        tol = dict(rtol=1e-3, atol=1e-3) if on_gpu else dict(rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(curves[k - 1].correlation, curve.correlation, **tol)
        assert res[k - 1].frequency == pytest.approx(frc_resolution(curve).frequency, rel=1e-2 if on_gpu else 1e-3,
                                                     abs=1e-3 if on_gpu else 1e-4)


def test_half_bit_threshold_and_early_stop(counts):
    h = gaussian_for_map(2.5, counts.shape, dtype=counts.dtype)
    res = frc_iteration_curve(counts, h, background=100.0, max_iter=50, threshold="half-bit",
                              stop=lambda r: len(r) == 7)
    assert len(res) == 7 and all(r.threshold == "half-bit" for r in res)


def test_errors_reach_the_caller(counts):
    h = gaussian_for_map(2.5, counts.shape, dtype=counts.dtype)
    with pytest.raises(ValueError, match="integer counts"):
        frc_iteration_curve(counts + 0.5, h, background=100.0, max_iter=5)

    def broken(r):
        raise RuntimeError("stop rule failed")

    with pytest.raises(RuntimeError, match="stop rule failed"):
        frc_iteration_curve(counts, h, background=100.0, max_iter=5, stop=broken)
    with pytest.raises(ValueError, match="num_iter"):
        frc_iteration_curve(counts, h, background=100.0, max_iter=0)
