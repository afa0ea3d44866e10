"""The measured gain of a map does not depend on which way up the map is read.

``estimate_gain`` tiles the map in 8 × 8 blocks. One grid flush with the
top-left corner left a different strip of the map out when the map was
flipped, so a 64² crop of the real HXN Fe map measured 0.97–40× the whole
map's gain by orientation (the fourth QA pass). The grids flush with each
corner give the same blocks, mirrored, whichever way up.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xrfgpu.background import estimate_gain

HXN = Path(__file__).parent / "data" / "hxn_nanoparticles_xrf"


def _orientations(a):
    out = []
    for k in range(4):
        r = np.rot90(a, k)
        out += [r, r[::-1]]
    return [np.ascontiguousarray(o) for o in out]


@pytest.fixture(scope="module")
def fe_map():
    tifffile = pytest.importorskip("tifffile")
    return tifffile.imread(HXN / "SUM_maps_XRF_Fe_K.tiff").astype(np.float64)


def test_a_crop_measures_the_same_gain_every_way_up_and_near_the_whole_maps(xp, fe_map):
    """The 64² crop at (32, 32): the same gain in all eight orientations, within 10 % of the whole map's."""
    whole = float(estimate_gain(xp.asarray(fe_map)))
    crop = fe_map[32:96, 32:96]
    gains = [float(estimate_gain(xp.asarray(o))) for o in _orientations(crop)]
    np.testing.assert_allclose(gains, gains[0], rtol=1e-12)
    assert abs(gains[0] / whole - 1.0) < 0.10, gains[0] / whole


@pytest.mark.parametrize("shape", [(64, 64), (70, 53), (41, 90)])
def test_scaled_poisson_maps_of_any_shape_measure_one_gain_every_way_up(xp, shape):
    """Scaled Poisson counts (gain 0.01) on maps whose blocks do not fill them: one gain, within 10 %."""
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    mean = 200.0 + 150.0 * (np.hypot(yy - 20.0, xx - 30.0) < 12)  # a disk off-centre: the halves differ
    y = rng.poisson(mean).astype(np.float64) * 0.01
    gains = [float(estimate_gain(xp.asarray(o))) for o in _orientations(y)]
    np.testing.assert_allclose(gains, gains[0], rtol=1e-12)
    assert abs(gains[0] / 0.01 - 1.0) < 0.10, gains[0]
