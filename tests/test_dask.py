"""Tiled restoration on Dask against the whole-map engines.

The reference for every tiled result is the same engine run on the whole
map at once (``boundary="reflect"``, default pad). The acceptance tolerance is
1e-4 of the whole-map result's maximum |value| (``_relative_error``), on maps
whose sides are not multiples of the tile, so that tiles of several sizes and
inner borders on both axes occur.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import require_cupy

da = pytest.importorskip("dask.array")

import xrfgpu
from xrfgpu import dask as xdask
from xrfgpu.phantom import observe

SHAPE = (203, 230)  # not a multiple of TILE on either axis
TILE = 64
SIGMA = 1.5
BACKGROUND = 100.0


@pytest.fixture(scope="module")
def scene():
    counts, _truth, psf = observe(SHAPE, SIGMA, seed=11)
    return counts, psf


def _relative_error(actual, reference):
    """max |actual − reference| / max |reference|."""
    actual = np.asarray(actual, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    return float(np.max(np.abs(actual - reference)) / np.max(np.abs(reference)))


def test_dask_is_the_library():
    import dask

    assert hasattr(dask, "compute") and dask.__name__ == "dask"
    assert xdask.__name__ == "xrfgpu.dask"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("method", "engine", "options"),
    [
        ("rl", xrfgpu.richardson_lucy, {"num_iter": 20}),
        ("wiener", xrfgpu.wiener, {"balance": 0.01}),
        ("fista", xrfgpu.fista, {}),  # default lam and iterations, computed from the whole map
        ("tikhonov", xrfgpu.tikhonov, {"lam": 0.01, "order": 1}),
    ],
)
def test_tiled_equals_whole_map(scene, method, engine, options):
    counts, psf = scene
    whole = engine(counts, psf, background=BACKGROUND, **options)
    lazy = xdask.restore(da.from_array(counts, chunks=50), psf, method, tile=TILE, background=BACKGROUND, **options)
    assert isinstance(lazy, da.Array)
    assert lazy.chunks[0][0] == TILE and lazy.npartitions > 9
    tiled = lazy.compute(scheduler="threads")
    assert tiled.shape == SHAPE and tiled.dtype == np.float32
    assert _relative_error(tiled, whole) < 1e-4


def test_halo_too_small_is_visible(scene):
    """The comparison can fail: with a halo of the PSF half-width, RL tiles differ."""
    counts, psf = scene
    whole = xrfgpu.richardson_lucy(counts, psf, num_iter=20, background=BACKGROUND)
    tiled = xdask.restore(counts, psf, "rl", tile=TILE, halo=psf.shape[0] // 2, num_iter=20, background=BACKGROUND)
    assert _relative_error(tiled.compute(), whole) > 1e-3


def test_single_tile_is_the_engine(scene):
    """One tile covering the map: the tile loop is the core's RL, start level and guard included."""
    counts, psf = scene
    counts = counts.astype(np.float64)  # float64: no rounding of the level, the loops agree exactly
    whole = xrfgpu.richardson_lucy(counts, psf, num_iter=15, background=BACKGROUND, tv=0.002)
    tiled = xdask.restore(counts, psf, "rl", tile=512, num_iter=15, background=BACKGROUND, tv=0.002).compute()
    np.testing.assert_allclose(tiled, whole, rtol=0, atol=1e-12 * float(np.max(whole)))


def test_background_map_and_float64(scene):
    counts, psf = scene
    rows = np.linspace(80.0, 120.0, SHAPE[0])[:, None] * np.ones(SHAPE)
    counts64 = counts.astype(np.float64)
    whole = xrfgpu.richardson_lucy(counts64, psf, num_iter=10, background=rows)
    tiled = xdask.restore(
        da.from_array(counts64, chunks=70), psf, "rl", tile=TILE, num_iter=10, background=da.from_array(rows, chunks=40)
    ).compute()
    assert tiled.dtype == np.float64
    assert _relative_error(tiled, whole) < 1e-4


def test_stack_with_per_element_psfs():
    shape = (150, 170)
    sigmas = (1.0, 1.5, 2.0)
    maps, psfs = [], []
    for k, s in enumerate(sigmas):
        counts, _, h = observe(shape, s, seed=k, background_counts=50.0 * (k + 1))
        maps.append(counts)
        psfs.append(h)
    stack = np.stack(maps)
    backgrounds = [50.0, 100.0, 150.0]
    lazy = xdask.restore(da.from_array(stack), psfs, "rl", tile=48, num_iter=10, background=backgrounds)
    assert lazy.shape == stack.shape
    tiled = lazy.compute()
    for k in range(3):
        whole = xrfgpu.richardson_lucy(maps[k], psfs[k], num_iter=10, background=backgrounds[k])
        assert _relative_error(tiled[k], whole) < 1e-4, k


def test_zero_regions(scene):
    """Tiles of all-zero counts (outside a sample, say) are restored like the whole map."""
    counts, psf = scene
    holed = counts.copy()
    holed[:, 120:] = 0.0  # the last tile column and its halo are all zero
    for method, engine, opts in [("rl", xrfgpu.richardson_lucy, {"num_iter": 10}), ("wiener", xrfgpu.wiener, {})]:
        whole = engine(holed, psf, background=BACKGROUND, **opts)
        tiled = xdask.restore(holed, psf, method, tile=TILE, background=BACKGROUND, **opts).compute()
        assert _relative_error(tiled, whole) < 1e-4, method


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"method": "lucy"}, ValueError, "method must be one of"),
        ({"tol": 1e-4}, ValueError, "tol= cannot be used"),
        ({"discrepancy": 1.0}, ValueError, "discrepancy= cannot be used"),
        ({"accelerate": True}, ValueError, "accelerate=True cannot.*xrfgpu.dask_rl.richardson_lucy"),
        ({"boundary": "periodic"}, ValueError, "boundary='reflect' only"),
        ({"halo": 2}, ValueError, "smaller than the PSF half-width"),
        ({"tile": 0}, ValueError, "tile must be a positive integer"),
        ({"balanse": 0.1}, TypeError, "unknown Richardson-Lucy option"),
        ({"method": "wiener", "num_iter": 3}, TypeError, "unknown wiener option"),
    ],
)
def test_refusals(scene, options, error, match):
    counts, psf = scene
    options = dict(options)
    method = options.pop("method", "rl")
    options.setdefault("tile", TILE)
    with pytest.raises(error, match=match):
        xdask.restore(counts, psf, method, **options)


def test_stack_psf_count_must_match():
    stack = np.ones((3, 40, 40))
    with pytest.raises(ValueError, match="got 2 PSFs for a stack of 3"):
        xdask.restore(stack, [np.ones((3, 3))] * 2, "wiener")
    with pytest.raises(ValueError, match="2-D"):
        xdask.restore(np.ones(10), np.ones((3, 3)))


def test_default_halo_rule():
    assert xdask.default_halo((13, 13), "rl", num_iter=30) == 26
    assert xdask.default_halo((13, 11), "wiener") == 39
    assert xdask.default_halo((13, 13), "fista", num_iter=100) == 52
    assert xdask.fast_halo(2048, 50) == 56  # 2160 = 2^4 3^3 5
    assert xdask.default_halo((1, 1), "rl") >= 1


@pytest.mark.gpu
def test_cupy_chunks(scene):
    cupy = require_cupy()
    counts, psf = scene
    whole = xrfgpu.richardson_lucy(counts, psf, num_iter=10, background=BACKGROUND)
    lazy = da.from_array(counts, chunks=50).map_blocks(cupy.asarray)
    tiled = xdask.restore(lazy, psf, "rl", tile=TILE, num_iter=10, background=BACKGROUND).compute()
    assert isinstance(tiled, cupy.ndarray)
    assert _relative_error(cupy.asnumpy(tiled), whole) < 1e-4
