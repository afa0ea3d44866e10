"""Richardson–Lucy in Dask tiles, iteration by iteration (xrfgpu.dask_rl): equal to the whole-map engine.

The reference is the whole-map :func:`xrfgpu.richardson_lucy` with the same
options; the tiles must reproduce it, accelerated included, to 1e-4 of the
map's maximum (float32) or 1e-9 (float64).
"""

import numpy as np
import pytest

pytest.importorskip("dask")

from xrfgpu import phantom, richardson_lucy  # noqa: E402
from xrfgpu.dask_rl import exact_halo, richardson_lucy as tiled_rl  # noqa: E402
from xrfgpu.psf import gaussian  # noqa: E402

SHAPE = (45, 58)


def _scan(dtype=np.float32, seed=2):
    h = gaussian(None, 1.5)
    scene = phantom.grains_and_veins((SHAPE[0] + 20, SHAPE[1] + 20), seed=seed)
    blurred, _ = phantom.blurred_window(scene, h, SHAPE)
    return np.random.default_rng(seed).poisson(200.0 * blurred + 25.0).astype(dtype), h


@pytest.mark.parametrize("accelerate", [True, False])
@pytest.mark.parametrize("tile", [16, 64])  # tiles with a ragged edge; one tile holding the map
def test_tiles_equal_the_whole_map(accelerate, tile):
    y, h = _scan()
    whole = richardson_lucy(y, h, num_iter=15, background=25.0, accelerate=accelerate)
    tiled = tiled_rl(y, h, tile=tile, num_iter=15, background=25.0, accelerate=accelerate)
    assert tiled.dtype == np.float32 and tiled.shape == SHAPE
    assert np.abs(tiled - whole).max() <= 1e-4 * np.abs(whole).max()


def test_float64_and_anisotropic_psf():
    y, _ = _scan(np.float64, seed=3)
    h = gaussian(None, 1.2, 2.2)
    whole = richardson_lucy(y, h, num_iter=10, background=20.0, accelerate=True)
    tiled = tiled_rl(y, h, tile=18, num_iter=10, background=20.0)
    assert tiled.dtype == np.float64
    np.testing.assert_allclose(tiled, whole, rtol=0, atol=1e-9 * np.abs(whole).max())


def test_acceleration_changes_the_result_so_the_comparison_can_fail():
    y, h = _scan()
    plain = tiled_rl(y, h, tile=16, num_iter=15, background=25.0, accelerate=False)
    fast = tiled_rl(y, h, tile=16, num_iter=15, background=25.0, accelerate=True)
    assert np.abs(fast - plain).max() > 1e-2 * np.abs(plain).max()


def test_halo_and_bad_input():
    assert exact_halo((13, 9)) == 12
    y, h = _scan()
    with pytest.raises(ValueError, match="non-negative"):
        tiled_rl(y - 100.0, h, tile=16, num_iter=2)
    with pytest.raises(ValueError, match="infinite"):  # NaN is a missing pixel (tests/test_dask_rl_rounds.py)
        bad = y.copy()
        bad[3, 4] = np.inf
        tiled_rl(bad, h, tile=16, num_iter=2)
    with pytest.raises(ValueError, match="2-D"):
        tiled_rl(np.stack([y, y]), h, tile=16, num_iter=2)
