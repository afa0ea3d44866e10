"""``restore_stack`` of maps with missing pixels (NaN, ``mask=``, NumPy masked arrays) against the single-map calls.

Each map of the batched restoration must equal its own single-map call with the same ``mask=`` (the reference,
tested against independent references in ``tests/test_missing_data.py``), on NumPy and array_api_strict.
Before, a stack with a NaN pixel was refused ("fill them first").
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import to_numpy

import xrfgpu
from xrfgpu import phantom
from xrfgpu import psf as psf_mod

SHAPE = (40, 46)
BACKGROUND = 50.0
ENGINES = {"rl": xrfgpu.richardson_lucy, "wiener": xrfgpu.wiener, "tikhonov": xrfgpu.tikhonov,
           "fista": xrfgpu.fista}
OPTIONS = {"rl": {"num_iter": 8, "accelerate": True}, "wiener": {}, "tikhonov": {"lam": 0.02, "order": 1},
           "fista": {"num_iter": 10}}


def _stack(dtype=np.float64):
    counts, _, _ = phantom.observe(SHAPE, 1.5, seed=4, signal_counts=150, background_counts=BACKGROUND)
    stack = np.stack([counts, 2.0 * counts, counts[::-1]]).astype(dtype)
    stack[0, 5, 5] = np.nan  # a drop-out
    stack[2, 10:14, 20:40] = np.nan  # a lost line segment
    return stack


def _per_map(stack, psfs, method, mask, xp):
    out = []
    for k in range(stack.shape[0]):
        m = None if mask is None else (mask if mask.ndim == 2 else mask[k])
        h = psfs[k] if isinstance(psfs, list) else psfs
        out.append(to_numpy(ENGINES[method](xp.asarray(stack[k]), xp.asarray(h), background=BACKGROUND,
                                            mask=None if m is None else xp.asarray(m), **OPTIONS[method])))
    return np.stack(out)


@pytest.mark.parametrize("method", sorted(ENGINES))
@pytest.mark.parametrize("mask_kind", ["nan-only", "shared", "per-map"])
def test_each_map_is_its_single_map_call(xp, method, mask_kind):
    stack = _stack()
    mask = None
    if mask_kind == "shared":
        mask = np.ones(SHAPE)
        mask[30:33, 10:20] = 0.0
        mask[0:4, 40:] = 0.5
    elif mask_kind == "per-map":
        mask = np.ones((3, *SHAPE))
        mask[1, 30:33, 10:20] = 0.0
    h = psf_mod.gaussian(None, 1.5)
    got = to_numpy(xrfgpu.restore_stack(xp.asarray(stack), xp.asarray(h), method, background=BACKGROUND,
                                        mask=None if mask is None else xp.asarray(mask), **OPTIONS[method]))
    expected = _per_map(stack, h, method, mask, xp)
    assert got.dtype == np.float64 and np.all(np.isfinite(got))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10 * np.abs(expected).max())
    # the missing pixels matter: the stack restored as if they were measured (0 at NaN) is far from it
    plain = to_numpy(xrfgpu.restore_stack(xp.asarray(np.nan_to_num(stack)), xp.asarray(h), method,
                                          background=BACKGROUND, **OPTIONS[method]))
    assert np.abs(plain - expected).max() > 1e-3 * np.abs(expected).max()


@pytest.mark.parametrize("method", ["rl", "wiener", "fista"])
def test_float32_with_one_psf_per_map_and_small_batches(xp, method):
    # per-map PSFs (the separable engine's factors per map, the weighted sums in float64) and one map per batch
    stack = _stack(np.float32)
    psfs = [psf_mod.gaussian(None, s).astype(np.float32) for s in (1.0, 1.5, 2.0)]
    mask = np.ones((3, *SHAPE), dtype=np.float32)
    mask[1, 30:33, 10:20] = 0.0
    got = [to_numpy(xrfgpu.restore_stack(xp.asarray(stack), [xp.asarray(h) for h in psfs], method,
                                         background=BACKGROUND, mask=xp.asarray(mask), max_batch=batch,
                                         **OPTIONS[method])) for batch in (None, 1)]
    expected = _per_map(stack, psfs, method, mask, xp)
    for out in got:
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, expected, rtol=0, atol=1e-4 * np.abs(expected).max())


def test_a_masked_array_is_its_masked_pixels_missing():
    stack = np.nan_to_num(_stack())
    hidden = np.zeros(stack.shape, dtype=bool)
    hidden[0, 5, 5] = hidden[2, 10:14, 20:40] = True
    h = psf_mod.gaussian(None, 1.5)
    got = xrfgpu.restore_stack(np.ma.masked_array(stack, mask=hidden), h, "rl", background=BACKGROUND, num_iter=8)
    expected = xrfgpu.restore_stack(stack, h, "rl", background=BACKGROUND, num_iter=8, mask=~hidden)
    np.testing.assert_array_equal(got, expected)
    # a mask that masks nothing changes nothing
    same = xrfgpu.restore_stack(np.ma.masked_array(stack, mask=False), h, "rl", background=BACKGROUND, num_iter=8)
    np.testing.assert_array_equal(same, xrfgpu.restore_stack(stack, h, "rl", background=BACKGROUND, num_iter=8))


def test_per_map_stopping_rules_take_the_masks_too():
    # tol runs the maps one at a time (their own richardson_lucy calls), each with its weights
    stack = _stack()
    h = psf_mod.gaussian(None, 1.5)
    got = xrfgpu.restore_stack(stack, h, "rl", background=BACKGROUND, num_iter=40, tol=1e-3)
    for k in range(3):
        ref = xrfgpu.richardson_lucy(stack[k], h, background=BACKGROUND, num_iter=40, tol=1e-3)
        np.testing.assert_array_equal(got[k], ref)


@pytest.mark.parametrize(("change", "match"), [
    ("inf", r"stack \(map 1\) contains infinite values"),
    ("all-missing", "every pixel of map 2 of the stack is missing"),
    ("mask-shape", "mask has shape"),
    ("mask-range", r"weights in \[0, 1\]"),
])
def test_bad_missing_pixels_are_refused_naming_the_map(change, match):
    stack = np.nan_to_num(_stack())
    h = psf_mod.gaussian(None, 1.5)
    kwargs = {"num_iter": 2, "background": BACKGROUND}
    if change == "inf":
        stack[1, 3, 3] = np.inf
    elif change == "all-missing":
        stack[2] = np.nan
    elif change == "mask-shape":
        kwargs["mask"] = np.ones((3, 3))
    else:
        kwargs["mask"] = np.full(SHAPE, 2.0)
    with pytest.raises(ValueError, match=match):
        xrfgpu.restore_stack(stack, h, "rl", **kwargs)


@pytest.mark.gpu
def test_cupy_stack_with_missing_pixels_equals_numpy():
    from conftest import require_cupy

    cupy = require_cupy()
    stack = _stack(np.float32)
    h = psf_mod.gaussian(None, 1.5).astype(np.float32)
    for method in ("rl", "wiener", "fista"):
        host = xrfgpu.restore_stack(stack, h, method, background=BACKGROUND, device="cpu", **OPTIONS[method])
        gpu = xrfgpu.restore_stack(cupy.asarray(stack), cupy.asarray(h), method, background=BACKGROUND,
                                   **OPTIONS[method])
        assert isinstance(gpu, cupy.ndarray)
        np.testing.assert_allclose(cupy.asnumpy(gpu), host, rtol=0, atol=1e-4 * np.abs(host).max())


def test_an_integer_stack_takes_fractional_weights():
    # the weights are read in the working dtype (float32 for integer counts), as in the single-map call
    stack = np.nan_to_num(_stack()).astype(np.int32)
    mask = np.ones(SHAPE)
    mask[10:20, 10:20] = 0.5
    h = psf_mod.gaussian(None, 1.5)
    got = xrfgpu.restore_stack(stack, h, "rl", background=BACKGROUND, num_iter=8, mask=mask)
    for k in range(3):
        ref = xrfgpu.richardson_lucy(stack[k], h, background=BACKGROUND, num_iter=8, mask=mask)
        np.testing.assert_allclose(got[k], ref, rtol=0, atol=1e-4 * np.abs(ref).max())
    plain = xrfgpu.restore_stack(stack, h, "rl", background=BACKGROUND, num_iter=8)
    assert np.abs(plain - got).max() > 1e-3 * np.abs(got).max()
