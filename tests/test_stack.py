"""xrfgpu.restore_stack: batched restoration equals the single-map calls, on every namespace."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_array

import xrfgpu
from xrfgpu import fista, phantom, richardson_lucy, tikhonov, wiener
from xrfgpu.device import GPUUnavailableError, gpu_available
from xrfgpu.fft import default_pad
from xrfgpu.stack import restore_stack, stack_psfs

SHAPE = (40, 46)
SIGMAS = (1.5, 2.0, 2.5)  # ±4σ PSFs of 13, 17 and 21 pixels: different sizes in one stack
BACKGROUNDS = (100.0, 60.0, 30.0)


@pytest.fixture(scope="module")
def scan():
    maps, truths, psfs = [], [], []
    for k, (sigma, bg) in enumerate(zip(SIGMAS, BACKGROUNDS)):
        counts, truth, h = phantom.observe(SHAPE, sigma, seed=k, background_counts=bg)
        maps.append(counts)
        truths.append(truth)
        psfs.append(h)
    return np.stack(maps), np.stack(truths), psfs


def per_map(func, stack, psfs, xp=np, **kwargs):
    """The single-map function on each map, run in namespace ``xp``, returned as NumPy."""
    from xrfgpu._backend import to_numpy

    def arg(v, i):
        v = v[i] if isinstance(v, (list, tuple)) else v
        return xp.asarray(v) if isinstance(v, np.ndarray) else v

    return np.stack([to_numpy(func(xp.asarray(stack[i]), xp.asarray(psfs[i]),
                                   **{k: arg(v, i) for k, v in kwargs.items()}))
                     for i in range(stack.shape[0])])


def test_restore_stack_is_exported():
    assert xrfgpu.restore_stack is restore_stack


@pytest.mark.parametrize("accelerate", [False, True])
def test_rl_stack_equals_per_map_calls(xp, scan, accelerate):
    stack, _, psfs = scan
    expected = per_map(richardson_lucy, stack, psfs, num_iter=12, background=list(BACKGROUNDS),
                       accelerate=accelerate)
    got = restore_stack(xp.asarray(stack), [xp.asarray(h) for h in psfs], "rl", num_iter=12,
                        background=list(BACKGROUNDS), accelerate=accelerate)
    assert_array(got, expected, xp, dtype=xp.float32, rtol=2e-4, atol=1e-3)


def test_rl_stack_shared_psf_map_background_tv_float64(xp, scan):
    stack, _, psfs = scan
    stack = stack.astype(np.float64)
    bmap = np.linspace(20.0, 40.0, SHAPE[0] * SHAPE[1]).reshape(SHAPE)
    expected = per_map(richardson_lucy, stack, [psfs[1]] * 3, xp=xp, num_iter=8, background=bmap, tv=0.002)
    got = restore_stack(xp.asarray(stack), xp.asarray(psfs[1]), "rl", num_iter=8, background=xp.asarray(bmap),
                        tv=0.002)
    assert_array(got, expected, xp, dtype=xp.float64, rtol=1e-9, atol=1e-9)


def test_rl_stack_with_explicit_pad_equals_per_map_calls(scan):
    stack, _, psfs = scan
    pad = default_pad((21, 21), 2)  # one canvas for the stack: the pad of the largest PSF
    expected = per_map(richardson_lucy, stack, psfs, num_iter=10, background=list(BACKGROUNDS), pad=pad)
    got = restore_stack(stack, psfs, num_iter=10, background=list(BACKGROUNDS), pad=pad)
    np.testing.assert_allclose(got, expected, rtol=2e-4, atol=1e-3)


def test_rl_stack_per_map_stopping_falls_back_to_single_calls(scan):
    stack, _, psfs = scan
    expected = per_map(richardson_lucy, stack, psfs, num_iter=200, tol=1e-3, background=list(BACKGROUNDS))
    got = restore_stack(stack, psfs, num_iter=200, tol=1e-3, background=list(BACKGROUNDS))
    np.testing.assert_array_equal(got, expected)


def test_wiener_and_tikhonov_stack_equal_per_map_calls(xp, scan):
    stack, _, psfs = scan
    balance = [0.01, 0.02, 0.05]
    expected = per_map(wiener, stack, psfs, balance=balance, background=list(BACKGROUNDS))
    got = restore_stack(xp.asarray(stack), psfs, "wiener", balance=balance, background=list(BACKGROUNDS))
    assert_array(got, expected, xp, dtype=xp.float32, rtol=1e-4, atol=2e-3)
    expected = per_map(tikhonov, stack, psfs, lam=0.03, order=1, background=50.0)
    got = restore_stack(xp.asarray(stack), psfs, "tikhonov", lam=0.03, order=1, background=50.0)
    assert_array(got, expected, xp, dtype=xp.float32, rtol=1e-4, atol=2e-3)


@pytest.mark.parametrize("nonneg", [True, False])
def test_fista_stack_equals_per_map_calls(xp, scan, nonneg):
    stack, _, psfs = scan
    expected = per_map(fista, stack, psfs, num_iter=15, nonneg=nonneg, background=list(BACKGROUNDS))
    got = restore_stack(xp.asarray(stack), psfs, "fista", num_iter=15, nonneg=nonneg, background=list(BACKGROUNDS))
    assert_array(got, expected, xp, dtype=xp.float32, rtol=2e-4, atol=2e-3)


def test_chunks_give_the_same_maps(scan):
    stack, _, psfs = scan
    whole = restore_stack(stack, psfs, num_iter=6, background=50.0)
    chunked = restore_stack(stack, psfs, num_iter=6, background=50.0, max_batch=2)
    single = restore_stack(stack, psfs, num_iter=6, background=50.0, max_batch=1)
    np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(single, whole, rtol=1e-5, atol=1e-4)


def test_periodic_wiener_matches_direct_fft_formula(scan):
    """Independent reference: X = H* Y / (|H|² + λ) with NumPy's FFT on the periodic map."""
    stack, _, psfs = scan
    stack = stack.astype(np.float64)
    got = restore_stack(stack, psfs, "wiener", balance=0.02, regularizer="identity",
                        boundary="periodic")
    for i, h in enumerate(psfs):
        kernel = np.zeros(SHAPE)
        kr, kc = h.shape
        kernel[:kr, :kc] = h.astype(np.float64) / h.astype(np.float64).sum()
        kernel = np.roll(kernel, (-(kr // 2), -(kc // 2)), axis=(0, 1))
        H = np.fft.fft2(kernel)
        X = np.conj(H) * np.fft.fft2(stack[i]) / (np.abs(H) ** 2 + 0.02)
        np.testing.assert_allclose(got[i], np.fft.ifft2(X).real, rtol=1e-9, atol=1e-8)


def test_restoration_improves_every_map(scan):
    stack, truth, psfs = scan
    restored = restore_stack(stack, psfs, num_iter=30, background=list(BACKGROUNDS))
    for i in range(stack.shape[0]):
        before = np.mean((stack[i] - BACKGROUNDS[i] - truth[i]) ** 2)
        after = np.mean((restored[i] - truth[i]) ** 2)
        assert after < 0.8 * before


def test_stack_psfs_pads_about_the_centre():
    xp = np
    small = np.zeros((3, 3))
    small[1, 1] = 1.0
    big = np.zeros((5, 4))
    big[2, 2] = 2.0
    out = stack_psfs([small, big], (2, 9, 9), xp=xp, dtype=np.float64)
    assert out.shape == (2, 5, 4)
    assert out[0, 2, 2] == 1.0 and out[1, 2, 2] == 1.0 and out.sum() == 2.0


def test_bad_input_is_named():
    stack = np.ones((2, 16, 16), np.float32)
    h = np.ones((3, 3))
    with pytest.raises(ValueError, match="3-D"):
        restore_stack(stack[0], h)
    with pytest.raises(ValueError, match="PSFs for a stack of 2"):
        restore_stack(stack, [h, h, h])
    with pytest.raises(ValueError, match="method"):
        restore_stack(stack, h, "lucy")
    with pytest.raises(ValueError, match="unknown option"):
        restore_stack(stack, h, "wiener", num_iter=3)
    with pytest.raises(ValueError, match="device"):
        restore_stack(stack, h, device="tpu")
    with pytest.raises(ValueError, match="map 1 .* all zeros"):
        restore_stack(np.stack([stack[0], 0 * stack[1]]), h)
    with pytest.raises(ValueError, match="background values"):
        restore_stack(stack, h, background=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="negative"):
        restore_stack(-stack, h)
    with pytest.raises(ValueError, match="max_batch"):
        restore_stack(stack, h, max_batch=0)


@pytest.mark.skipif(gpu_available(), reason="a CUDA device is usable here")
def test_gpu_request_without_device_says_why():
    with pytest.raises(GPUUnavailableError, match="CuPy|CUDA"):
        restore_stack(np.ones((2, 16, 16)), np.ones((3, 3)), device="gpu")


def test_cpu_device_keeps_numpy(scan):
    stack, _, psfs = scan
    out = restore_stack(stack, psfs, num_iter=2, background=50.0, device="cpu")
    assert isinstance(out, np.ndarray) and out.shape == stack.shape
