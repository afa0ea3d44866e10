"""Tiles of a map blurred by a compact kernel equal the whole map with the default halo.

The default halo was a multiple of the PSF array's side, calibrated on Gaussians cut at ±4σ. A 5 × 5 box
(σ 1.41 px) got 10 px, where the restoration's reach is that of the Gaussian it blurs like: tiled RL came out
8.2e-3 of the maximum from the whole map, FISTA 2.5e-2 (helper 75). The halo now takes the PSF's second
moments into account (``xrfgpu.dask._moment_extent``).
"""

from __future__ import annotations

import numpy as np
import pytest

import xrfgpu
from xrfgpu.phantom import observe

xdask = pytest.importorskip("xrfgpu.dask")
pytest.importorskip("dask")


def _kernels():
    yy, xx = np.mgrid[-3:4, -3:4]
    disk = (yy**2 + xx**2 <= 9).astype(np.float64)
    return {"box 5 × 5": np.ones((5, 5)) / 25.0, "box 3 × 3": np.ones((3, 3)) / 9.0, "disk r 3": disk / disk.sum()}


@pytest.fixture(scope="module")
def counts():
    return observe((96, 104), sigma=2.0, seed=3, signal_counts=200, background_counts=50)[0]


@pytest.mark.parametrize("name", list(_kernels()))
@pytest.mark.parametrize("method", ["rl", "fista", "tikhonov"])
def test_tiles_equal_the_whole_map_for_a_compact_kernel(counts, name, method):
    psf = _kernels()[name]
    options = {"rl": dict(num_iter=30, accelerate=False), "fista": dict(num_iter=25), "tikhonov": {}}[method]
    whole = {"rl": xrfgpu.richardson_lucy, "fista": xrfgpu.fista, "tikhonov": xrfgpu.tikhonov}[method](
        counts, psf, background=50.0, **options)
    tiled = np.asarray(xdask.restore(counts, psf, method, tile=48, background=50.0, **options).compute())
    assert np.max(np.abs(tiled - np.asarray(whole))) <= 1e-4 * float(np.max(whole))


def test_the_moment_extent_is_the_gaussians_for_a_box_and_leaves_a_cut_gaussian_alone():
    # a 5 × 5 box: variance (5² − 1) / 12 = 2 per axis, σ √2, extent 2 ⌈4 √2⌉ + 1 = 13
    assert xdask._moment_extent(np.ones((5, 5))) == 13
    # a Gaussian cut at ±4σ: its own side (the cut lowers its variance a little)
    h = xrfgpu.psf.gaussian(None, 2.0)
    assert xdask._moment_extent(h) <= h.shape[0]
    assert xdask.default_halo(h.shape, "rl", psf=h) == xdask.default_halo(h.shape, "rl")
