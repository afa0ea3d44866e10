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
    threads = dask_rl.richardson_lucy(y, h, tile=16, num_iter=11, background=25.0, callback=calls.append)
    sync = dask_rl.richardson_lucy(y, h, tile=16, num_iter=11, background=25.0, scheduler="sync")
    assert calls == list(range(1, 12))  # every iteration reported, in order
    assert np.array_equal(threads, sync)  # bit for bit: no thread's leftovers in any tile
    whole = richardson_lucy(y, h, num_iter=11, background=25.0, accelerate=True)
    assert np.abs(threads - whole).max() <= 1e-4 * np.abs(whole).max()


def test_tile_windows_reach_past_the_next_tile():
    # a 9 × 9 PSF (halo 8) on 3-px tiles: each window reads up to 3 tiles on each side, and a ragged edge
    y, _ = _scan(seed=5)
    y = y[:20, :25]  # 7 × 9 tiles
    h = gaussian(9, 1.3)
    grid = dask_rl._TileGrid(((3,) * 15, (3,) * 19 + (1,)), dask_rl.exact_halo(h.shape))
    assert grid.window_in_blocks(7, 10) == ((1, 20), (1, 20))  # rows 13–31 from block 4's corner, row 12
    assert grid.core_in_window(0, 19) == (slice(0, 3), slice(8, 9))
    for accelerate in (True, False):
        whole = richardson_lucy(y, h, num_iter=6, background=25.0, accelerate=accelerate)
        tiled = dask_rl.richardson_lucy(y, h, tile=3, num_iter=6, background=25.0, accelerate=accelerate)
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


def test_a_local_cluster_gives_the_threads_numbers():
    distributed = pytest.importorskip("distributed")
    y, h = _scan(seed=4)
    threads = dask_rl.richardson_lucy(y, h, tile=16, num_iter=12, background=25.0)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster):
        on_cluster = dask_rl.richardson_lucy(y, h, tile=16, num_iter=12, background=25.0, scheduler=None)
    assert np.array_equal(on_cluster, threads)
