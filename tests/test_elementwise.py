"""The NumPy in-place engine of the elementwise steps equals the plain formulas (any namespace)."""

import numpy as np
import pytest
from conftest import assert_array

from xrfgpu import _elementwise as ew


@pytest.mark.parametrize("alpha", [0.0, 0.37, 1.0, "per-map"])
def test_rl_extrapolate(xp, alpha):
    rng = np.random.default_rng(0)
    x = rng.random((3, 8, 9)) * 10
    prev = rng.random((3, 8, 9)) * 10
    a = np.array([0.1, 0.5, 0.9]).reshape(3, 1, 1) if alpha == "per-map" else alpha
    expected = np.maximum(x + a * (x - prev), 0.0)
    a_xp = xp.asarray(a) if alpha == "per-map" else a
    got = ew.rl_extrapolate(xp.asarray(x), xp.asarray(prev.copy()), a_xp, xp=xp)
    assert_array(got, expected, xp, rtol=1e-12, atol=0)
    if alpha == 1.0:
        assert np.any(x + (x - prev) < 0)  # the clip at zero is exercised


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_clip_below_is_the_elementwise_maximum_in_the_dtype_of_x(xp, dtype):
    """_backend.clip_below against numpy.maximum (NaN kept, values at and below the bound, the dtype kept)."""
    from xrfgpu._backend import clip_below

    x = np.array([-3.0, -1e-13, 0.0, 1e-12, 2e-12, 5.0, np.nan, -np.inf, np.inf], dtype=dtype)
    got = clip_below(xp.asarray(x), 1e-12, xp=xp)
    assert str(got.dtype).endswith(dtype)
    assert_array(got, np.maximum(x, np.asarray(1e-12, dtype=dtype)), xp, rtol=0, atol=0)


def test_difference_writes_into_out_on_numpy():
    a, b = np.arange(6.0), np.ones(6)
    out = np.empty(6)
    assert ew.difference(a, b, xp=np, out=out) is out
    np.testing.assert_array_equal(out, a - 1)
    np.testing.assert_array_equal(ew.difference(a, b, xp=np), a - 1)
