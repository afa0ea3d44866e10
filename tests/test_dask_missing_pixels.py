"""Tiled restoration (:func:`xrfgpu.dask.restore`) of maps with missing pixels against the whole-map engines.

The reference is the engine on the whole map with the same ``mask=`` (or NaN pixels): Richardson–Lucy and
FISTA leave the missing pixels out of the fit, Wiener and Tikhonov fill them from their neighbours. The
tolerance is that of ``tests/test_dask.py``, 1e-4 of the whole-map result's maximum; before ``mask=`` the
tiles refused NaN for RL and FISTA's default ``lam``, had no ``mask=``, and filled a hole wider than the PSF
with each tile's own mean (Wiener 15–16 % of the maximum off on the hole below, tiles of 32 and 16).
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import require_cupy

pytest.importorskip("dask.array")

import xrfgpu
from xrfgpu import dask as xdask
from xrfgpu.phantom import observe

SHAPE = (150, 170)  # not a multiple of TILE on either axis
TILE = 64
BACKGROUND = 100.0
ENGINES = {"rl": xrfgpu.richardson_lucy, "wiener": xrfgpu.wiener, "tikhonov": xrfgpu.tikhonov,
           "fista": xrfgpu.fista}
OPTIONS = {"rl": {"num_iter": 15}, "wiener": {}, "tikhonov": {"lam": 0.02, "order": 1},
           "fista": {"num_iter": 15}}  # FISTA: its default lam, the largest weighted deviation of the whole map


@pytest.fixture(scope="module")
def scene():
    counts, _truth, psf = observe(SHAPE, 2.0, seed=3)
    counts = counts.astype(np.float64)
    weights = np.ones(SHAPE)
    weights[40:48, 50:90] = 0.0  # a dead strip across a tile edge
    weights[100:103, 10:14] = 0.0
    weights[60:70, 130:140] = 0.5  # fractional weights
    nan_map = counts.copy()
    nan_map[70:75, 120:160] = np.nan  # drop-outs (NaN) across another tile edge
    nan_map[0, 0] = np.nan  # at the map's corner
    return counts, nan_map, weights, psf


def _relative_error(actual, reference):
    actual, reference = np.asarray(actual, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    return float(np.max(np.abs(actual - reference)) / np.max(np.abs(reference)))


@pytest.mark.parametrize("method", sorted(ENGINES))
@pytest.mark.parametrize("missing", ["mask", "nan", "both"])
def test_tiles_with_missing_pixels_equal_the_whole_map(scene, method, missing):
    counts, nan_map, weights, psf = scene
    image = counts if missing == "mask" else nan_map
    mask = None if missing == "nan" else weights
    whole = ENGINES[method](image, psf, background=BACKGROUND, mask=mask, **OPTIONS[method])
    tiled = xdask.restore(image, psf, method, tile=TILE, background=BACKGROUND, mask=mask,
                          **OPTIONS[method]).compute()
    assert np.all(np.isfinite(tiled))
    assert _relative_error(tiled, whole) < 1e-4, (method, missing)
    # the missing pixels matter: the map restored as if they were measured (zeros at NaN) is far off
    plain = ENGINES[method](np.nan_to_num(image), psf, background=BACKGROUND, **OPTIONS[method])
    assert _relative_error(plain, whole) > 1e-3, (method, missing)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["rl", "wiener", "tikhonov"])
def test_a_hole_wider_than_the_tiles_is_restored_as_the_whole_map(method):
    # a 120 x 140 hole and tiles of 16: windows (halo included) that hold no measured pixel. RL keeps its start
    # there, the filters filter the whole map's fill level (the mean of its measured pixels): 16 % of the
    # maximum off (Wiener, these tiles of 16) when each tile filled with its own mean
    counts, _truth, psf = observe((200, 220), 1.0, seed=0)
    weights = np.ones(counts.shape)
    weights[40:160, 50:190] = 0.0
    whole = ENGINES[method](counts.astype(np.float64), psf, background=BACKGROUND, mask=weights, **OPTIONS[method])
    tiled = xdask.restore(counts.astype(np.float64), psf, method, tile=16, background=BACKGROUND, mask=weights,
                          **OPTIONS[method]).compute()
    assert _relative_error(tiled, whole) < 1e-4


@pytest.mark.slow
def test_fista_inside_a_hole_wider_than_a_tile_is_refused_with_the_way_out():
    counts, _truth, psf = observe((200, 220), 1.0, seed=0)
    weights = np.ones(counts.shape)
    weights[40:160, 50:190] = 0.0
    lazy = xdask.restore(counts.astype(np.float64), psf, "fista", tile=16, background=BACKGROUND, mask=weights,
                         num_iter=5)
    with pytest.raises(ValueError, match="holds no measured pixel.*larger tile than the hole, or restore the map whole"):
        lazy.compute()
    # a tile larger than the hole restores it, equal to the whole map
    whole = xrfgpu.fista(counts.astype(np.float64), psf, background=BACKGROUND, mask=weights, num_iter=5)
    tiled = xdask.restore(counts.astype(np.float64), psf, "fista", tile=128, background=BACKGROUND, mask=weights,
                          num_iter=5).compute()
    assert _relative_error(tiled, whole) < 1e-4


def test_a_stack_takes_one_mask_for_all_maps_or_one_per_map(scene):
    counts, _nan_map, weights, psf = scene
    stack = np.stack([counts, 2.0 * counts])
    per_map = np.stack([weights, np.ones(SHAPE)])
    for mask in (weights, per_map):
        tiled = xdask.restore(stack, psf, "wiener", tile=TILE, background=BACKGROUND, mask=mask).compute()
        for k in range(2):
            whole = xrfgpu.wiener(stack[k], psf, background=BACKGROUND, mask=mask if mask.ndim == 2 else mask[k])
            assert _relative_error(tiled[k], whole) < 1e-4, (mask.ndim, k)


def test_without_missing_pixels_the_numbers_are_unchanged(scene):
    # no NaN and no mask: the same tiles as before mask= (an all-ones mask gives the weighted problem, equal to
    # the plain one to rounding)
    counts, _nan_map, _weights, psf = scene
    plain = xdask.restore(counts, psf, "rl", tile=TILE, background=BACKGROUND, num_iter=10).compute()
    whole = xrfgpu.richardson_lucy(counts, psf, background=BACKGROUND, num_iter=10)
    assert _relative_error(plain, whole) < 1e-4
    ones = xdask.restore(counts, psf, "rl", tile=TILE, background=BACKGROUND, num_iter=10,
                         mask=np.ones(SHAPE)).compute()
    assert _relative_error(ones, plain) < 1e-6


@pytest.mark.parametrize(("mask", "image", "error", "match"), [
    (np.ones((3, 3)), None, ValueError, "mask has shape"),
    (np.full(SHAPE, 2.0), None, ValueError, r"weights in \[0, 1\]"),
    (np.full(SHAPE, np.nan), None, ValueError, "mask of the array contains NaN"),
    (np.zeros(SHAPE), None, ValueError, "every pixel of the array is missing"),
    (None, "all-nan", ValueError, "every pixel of the array is missing"),
    (None, "inf", ValueError, "infinite values"),
    ("text", None, TypeError, "mask must be an array"),
    (np.zeros(SHAPE, dtype=complex), None, TypeError, "real weights"),
])
def test_bad_masks_and_maps_are_refused_before_any_tile(scene, mask, image, error, match):
    counts, _nan_map, _weights, psf = scene
    y = counts.copy()
    if image == "all-nan":
        y[:] = np.nan
    elif image == "inf":
        y[5, 5] = np.inf
    with pytest.raises(error, match=match):
        xdask.restore(y, psf, "wiener", tile=TILE, background=BACKGROUND, mask=mask)


def test_negative_values_at_missing_pixels_are_not_looked_at_by_rl(scene):
    counts, _nan_map, weights, psf = scene
    y = counts.copy()
    y[weights == 0] = -5.0  # junk where nothing was measured
    whole = xrfgpu.richardson_lucy(y, psf, background=BACKGROUND, num_iter=10, mask=weights)
    tiled = xdask.restore(y, psf, "rl", tile=TILE, background=BACKGROUND, num_iter=10, mask=weights).compute()
    assert _relative_error(tiled, whole) < 1e-4
    with pytest.raises(ValueError, match="negative values"):
        xdask.restore(y, psf, "rl", tile=TILE, background=BACKGROUND, num_iter=10)


@pytest.mark.gpu
def test_cupy_chunks_with_missing_pixels(scene):
    cupy = require_cupy()
    import dask.array as da

    counts, nan_map, weights, psf = scene
    whole = xrfgpu.wiener(nan_map, psf, background=BACKGROUND, mask=weights)
    lazy = da.from_array(nan_map, chunks=50).map_blocks(cupy.asarray)
    tiled = xdask.restore(lazy, psf, "wiener", tile=TILE, background=BACKGROUND, mask=weights).compute()
    assert isinstance(tiled, cupy.ndarray)
    assert _relative_error(cupy.asnumpy(tiled), whole) < 1e-4


def test_restore_zarr_streams_a_map_with_missing_pixels(tmp_path, scene):
    # Zarr in, Zarr out: the mask goes to the tiles as in restore(), and the record names it without its values
    zarr = pytest.importorskip("zarr")
    from zarr_stores import new_array
    import json

    counts, nan_map, weights, psf = scene
    source = tmp_path / "map.zarr"
    z = new_array(str(source), shape=SHAPE, chunks=(64, 64), dtype="float64")
    z[...] = nan_map
    xdask.restore_zarr(source, tmp_path / "out.zarr", psf, "wiener", tile=TILE, background=BACKGROUND, mask=weights)
    out = zarr.open_array(str(tmp_path / "out.zarr"), mode="r")
    whole = xrfgpu.wiener(nan_map, psf, background=BACKGROUND, mask=weights)
    assert _relative_error(out[...], whole) < 1e-4
    assert "array of shape (150, 170)" in json.dumps(dict(out.attrs))
