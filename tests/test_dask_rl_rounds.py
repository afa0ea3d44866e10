"""Tiled Richardson–Lucy as raw task layers (xrfgpu.dask_rl): the numbers of the whole map, in any thread.

The tiled RL keeps each tile's prepared blur for every iteration and runs
several iterations a round. Its blurs must then not depend on what the
thread that runs them ran before (``Convolution.forget_scratch``), nor on the
scheduler or the round length; the progress callback still reports every
iteration. References: the whole-map :func:`xrfgpu.richardson_lucy`, and
operators built anew.
"""

import numpy as np
import pytest

pytest.importorskip("dask")

from conftest import require_cupy  # noqa: E402

from xrfgpu import phantom, richardson_lucy  # noqa: E402
from xrfgpu import dask_rl  # noqa: E402
from xrfgpu.fft import Convolution  # noqa: E402
from xrfgpu.psf import gaussian  # noqa: E402

SHAPE = (45, 58)


def _scan(seed=2):
    h = gaussian(None, 1.5)
    scene = phantom.grains_and_veins((SHAPE[0] + 20, SHAPE[1] + 20), seed=seed)
    blurred, _ = phantom.blurred_window(scene, h, SHAPE)
    return np.random.default_rng(seed).poisson(200.0 * blurred + 25.0).astype(np.float32), h


@pytest.mark.parametrize("engine,psf", [("separable", gaussian(None, 2.0)),
                                        ("extended", gaussian(None, 2.0, 3.0, rho=0.3))])
def test_forget_scratch_gives_the_blur_of_a_new_operator(engine, psf):
    rng = np.random.default_rng(0)
    x = rng.random((40, 37)).astype(np.float32)
    kept = Convolution(psf.astype(np.float32), x.shape, iterative=True)
    assert kept.engine == engine
    fresh = Convolution(psf.astype(np.float32), x.shape, iterative=True).forward(x)
    # another map's numbers, 10⁴ times larger, left in this thread's canvas
    kept.adjoint(1e4 * rng.random(x.shape).astype(np.float32))
    kept.forward(1e4 * rng.random(x.shape).astype(np.float32))
    kept.adjoint(1e4 * rng.random(x.shape).astype(np.float32))
    stale = kept.forward(x)
    if engine == "separable":  # its lines' gap holds the leftovers, which reach the result at the rounding level
        assert not np.array_equal(stale, fresh)
    kept.adjoint(1e4 * rng.random(x.shape).astype(np.float32))
    kept.forget_scratch()
    assert np.array_equal(kept.forward(x), fresh)


@pytest.mark.parametrize("per_round", [1, 3, 8])
def test_rounds_and_schedulers_give_the_same_numbers(monkeypatch, per_round):
    y, h = _scan()
    monkeypatch.setattr(dask_rl, "ITERATIONS_PER_ROUND", per_round)
    calls = []
    threads = dask_rl.richardson_lucy(y, h, tile=16, num_iter=7 if per_round == 1 else 11, background=25.0,
                                      callback=calls.append)
    sync = dask_rl.richardson_lucy(y, h, tile=16, num_iter=len(calls), background=25.0, scheduler="sync")
    assert calls == list(range(1, len(calls) + 1)) and len(calls) in (7, 11)  # every iteration reported, in order
    assert np.array_equal(threads, sync)  # bit for bit: no thread's leftovers in any tile
    whole = richardson_lucy(y, h, num_iter=len(calls), background=25.0, accelerate=True)
    assert np.abs(threads - whole).max() <= 1e-4 * np.abs(whole).max()


def test_tile_windows_reach_past_the_next_tile():
    # a 9 × 9 PSF (halo 8) on 3-px tiles: each window reads up to 3 tiles on each side, and a ragged edge
    y, _ = _scan(seed=5)
    y = y[:20, :25]  # 7 × 9 tiles
    h = gaussian(9, 1.3)
    grid = dask_rl._TileGrid(((3,) * 15, (3,) * 19 + (1,)), dask_rl.exact_halo(h.shape))
    assert grid.window_in_blocks(7, 10) == ((1, 20), (1, 20))  # rows 13–31 from block 4's corner, row 12
    assert grid.core_in_window(0, 19) == (slice(0, 3), slice(8, 9))
    whole = richardson_lucy(y, h, num_iter=4, background=25.0, accelerate=True)
    tiled = dask_rl.richardson_lucy(y, h, tile=3, num_iter=4, background=25.0)
    assert np.abs(tiled - whole).max() <= 1e-4 * np.abs(whole).max()


def test_an_empty_tile_window_is_corrected_to_zero():
    y, h = _scan()
    y[:, :30] = 0  # the left tiles' windows hold no counts at all
    whole = richardson_lucy(y, h, num_iter=8, background=0.0, accelerate=True)
    tiled = dask_rl.richardson_lucy(y, h, tile=16, num_iter=8, background=0.0)
    assert np.abs(tiled - whole).max() <= 1e-4 * np.abs(whole).max()
    assert np.all(tiled[:, :8] == 0)


@pytest.mark.gpu
def test_cupy_chunks():
    import dask.array as da

    cupy = require_cupy()
    y, h = _scan()
    whole = richardson_lucy(y, h, num_iter=10, background=25.0, accelerate=True)
    lazy = da.from_array(y, chunks=16).map_blocks(cupy.asarray)
    tiled = dask_rl.richardson_lucy(lazy, h, tile=16, num_iter=10, background=25.0)
    assert isinstance(tiled, np.ndarray)  # the docstring's promise: the map comes back to the host
    assert np.abs(tiled - whole).max() <= 1e-4 * np.abs(whole).max()


@pytest.mark.slow
def test_a_local_cluster_gives_the_threads_numbers():
    distributed = pytest.importorskip("distributed")
    y, h = _scan(seed=4)
    threads = dask_rl.richardson_lucy(y, h, tile=16, num_iter=12, background=25.0)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster):
        on_cluster = dask_rl.richardson_lucy(y, h, tile=16, num_iter=12, background=25.0, scheduler=None)
    assert np.array_equal(on_cluster, threads)


@pytest.mark.parametrize("exponent", [-50, 50])
def test_a_map_far_from_unit_magnitude_restores_as_the_whole_map(exponent):
    # a fitted map in g/cm² (1e-15) or a huge scaled count: the whole map's engine brings it into range by one
    # power of two; the tiles used to rescale each window on its own, against an iterate in the map's units
    # (7e12 times the whole map's result at 2**-50, all zeros at 2**50)
    y, h = _scan()
    scale = 2.0**exponent
    whole = richardson_lucy(y * np.float32(scale), h, num_iter=15, background=25.0 * scale, accelerate=True)
    tiled = dask_rl.richardson_lucy(y * np.float32(scale), h, tile=16, num_iter=15, background=25.0 * scale)
    assert np.abs(tiled - whole).max() <= 1e-4 * np.abs(whole).max()
    # and a dark corner in a bright map is not put in other units: its first tile's whole window (the tile and
    # its 12-px halo) is 2**-60 of the map there, below SAFE_PEAK, while the map's largest value is inside it
    # (the previous code: 0.06 of the maximum away from the whole map)
    dark = y.astype(np.float64).copy()
    dark[:30, :30] *= 2.0**-60
    whole = richardson_lucy(dark, h, num_iter=8, background=0.0, accelerate=True)
    tiled = dask_rl.richardson_lucy(dark, h, tile=16, num_iter=8, background=0.0)
    np.testing.assert_allclose(tiled, whole, rtol=0, atol=1e-9 * np.abs(whole).max())


@pytest.mark.slow
@pytest.mark.parametrize("accelerate", [True, False])
def test_missing_pixels_restore_as_the_whole_map(accelerate):
    y, h = _scan(seed=6)
    y[10:13, 20:24] = np.nan  # a drop-out inside a tile and across a tile edge
    y[30, 5] = np.nan
    weights = np.ones_like(y)
    weights[40:44, 50:] = 0  # a dead strip at the map's corner, by mask
    weights[5, 30] = 0.5  # a partial weight
    for mask in (None, weights):
        whole = richardson_lucy(y, h, num_iter=12, background=25.0, accelerate=accelerate, mask=mask)
        tiled = dask_rl.richardson_lucy(y, h, tile=16, num_iter=12, background=25.0, accelerate=accelerate, mask=mask)
        assert np.isfinite(tiled).all()
        assert np.abs(tiled - whole).max() <= 1e-4 * np.abs(whole).max()
    # the weights change the result, so the comparison can fail
    plain = dask_rl.richardson_lucy(np.nan_to_num(y), h, tile=16, num_iter=12, background=25.0, accelerate=accelerate)
    assert np.abs(plain - tiled).max() > 1e-2 * np.abs(tiled).max()


def test_bad_weights_and_missing_everything_are_refused():
    y, h = _scan()
    with pytest.raises(ValueError, match="mask has shape"):
        dask_rl.richardson_lucy(y, h, tile=16, num_iter=2, mask=np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"weights in \[0, 1\]"):
        dask_rl.richardson_lucy(y, h, tile=16, num_iter=2, mask=np.full(y.shape, 2.0))
    with pytest.raises(ValueError, match="mask contains NaN"):
        dask_rl.richardson_lucy(y, h, tile=16, num_iter=2, mask=np.full(y.shape, np.nan))
    with pytest.raises(ValueError, match="every pixel of image is missing"):
        dask_rl.richardson_lucy(y, h, tile=16, num_iter=2, mask=np.zeros(y.shape))
    with pytest.raises(ValueError, match="every pixel of image is missing"):
        dask_rl.richardson_lucy(np.full(y.shape, np.nan), h, tile=16, num_iter=2)


@pytest.mark.gpu
def test_cupy_chunks_with_a_numpy_mask():
    import dask.array as da

    cupy = require_cupy()
    y, h = _scan(seed=6)
    weights = np.ones_like(y)
    weights[10:13, 20:24] = 0
    whole = richardson_lucy(y, h, num_iter=10, background=25.0, accelerate=True, mask=weights)
    lazy = da.from_array(y, chunks=16).map_blocks(cupy.asarray)
    tiled = dask_rl.richardson_lucy(lazy, h, tile=16, num_iter=10, background=25.0, mask=weights)
    assert np.abs(tiled - whole).max() <= 1e-4 * np.abs(whole).max()


def test_a_map_too_small_for_its_psf_is_refused_with_its_own_shape():
    # the tiles used to raise from inside a task, naming a window's shape: (1, 22) and (3, 22) for these maps
    h = gaussian(None, 1.5)  # 13 × 13
    with pytest.raises(ValueError, match=r"at least 2 pixels along each axis, got shape \(1, 58\)"):
        dask_rl.richardson_lucy(np.ones((1, 58), np.float32), h, tile=16, num_iter=2)
    with pytest.raises(ValueError, match=r"larger than the map \(3, 58\)"):
        dask_rl.richardson_lucy(np.ones((3, 58), np.float32), h, tile=16, num_iter=2)


def test_deep_inside_a_hole_the_tiles_give_the_whole_map_numbers():
    # a 6-row hole at σ 0.6 px across three tiles: its middle rows see 4e-6 of their PSF weight on measured
    # pixels; with float32 sums there, tiles and the whole map differed by several per cent of the maximum
    # (2.9 % on the HXN Fe map with a hole); the weighted sums are float64 in both
    counts, _, _ = phantom.observe((48, 40), 0.6, seed=11, signal_counts=150, background_counts=140.0)
    y = counts.astype(np.float32)
    y[20:26, 5:35] = np.nan
    h = gaussian(None, 0.6)
    whole = richardson_lucy(y, h, num_iter=10, background=140.0, accelerate=True)
    tiled = dask_rl.richardson_lucy(y, h, tile=16, num_iter=10, background=140.0)
    assert np.abs(tiled - whole).max() <= 1e-5 * np.abs(whole).max()


@pytest.mark.slow
def test_worker_processes_give_the_threads_numbers():
    # the tiles' prepared problems and states travel between worker processes (pickled: the operator drops its
    # scratch canvases, the namespace goes by reference), with missing pixels too
    distributed = pytest.importorskip("distributed")
    y, h = _scan(seed=4)
    y[10:13, 20:24] = np.nan
    threads = dask_rl.richardson_lucy(y, h, tile=16, num_iter=9, background=25.0)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster):
        on_cluster = dask_rl.richardson_lucy(y, h, tile=16, num_iter=9, background=25.0, scheduler=None)
    assert np.array_equal(on_cluster, threads)


@pytest.mark.slow
def test_a_hole_wider_than_the_psf_across_tile_edges_restores_as_the_whole_map(monkeypatch):
    """A 12 × 12 hole across a tile corner: its barely seen pixels are filled from the well-seen pixels around
    them after each update (``WeightedCorrection.fill``), which reads the updated iterate one PSF half-width
    beyond the correction's reach; the tiles' halo of three half-widths gives the whole map's numbers (float64,
    to 1e-9 of the maximum), and two half-widths, the halo without missing pixels, do not."""
    from xrfgpu.richardson_lucy import BARELY_SEEN_SHARE

    y, h = _scan(seed=4)
    y = y.astype(np.float64)
    y[10:22, 10:22] = np.nan  # tiles of 16: the hole spans four of them
    share = Convolution(h, SHAPE, boundary="reflect").adjoint(np.isfinite(y).astype(np.float64))
    assert np.any((share < BARELY_SEEN_SHARE) & np.isnan(y))  # pixels the fill sets
    assert dask_rl.exact_halo(h.shape, missing_pixels=True) == 3 * (h.shape[0] // 2)
    whole = richardson_lucy(y, h, num_iter=20, background=25.0, accelerate=True)
    tiled = dask_rl.richardson_lucy(y, h, tile=16, num_iter=20, background=25.0)
    np.testing.assert_allclose(tiled, whole, rtol=0, atol=1e-9 * np.abs(whole).max())
    monkeypatch.setattr(dask_rl, "exact_halo", lambda shape, missing_pixels=False: 2 * (max(shape) // 2))
    short = dask_rl.richardson_lucy(y, h, tile=16, num_iter=20, background=25.0)
    assert np.abs(short - whole).max() > 1e-6 * np.abs(whole).max()
