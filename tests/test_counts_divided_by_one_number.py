"""A count map divided by one number is restored as its counts, with that number as its gain.

Counts per second at a fixed dwell, counts per I0 read once, or a count map stored ×0.5 or /1000 are
real-valued, so :func:`xrfgpu.map_kind.classify_map` cannot call them counts; but their values keep the
photons' lattice ``step × n``. The known truth here is the number the counts were divided by: the front
door must find it exactly (the photon-transfer reading is a few % off: 0.489 for 0.5) and restore the
counts themselves, so σ, the iteration count and the restored map (in the map's units) are those of the
count map. A map scaled per pixel (no common step) keeps the fitted maps' rules.
"""

from __future__ import annotations

import warnings

import array_api_strict
import numpy as np
import pytest

import xrfgpu
from xrfgpu.front_door import effective_counts
from xrfgpu.phantom import observe


@pytest.fixture(scope="module")
def counts():
    c, _, _ = observe((128, 128), 2.0, seed=1)
    return np.asarray(c, dtype=np.float64)


SCALES = {
    "half": (lambda c: c * 0.5, 0.5),
    "per-thousand": (lambda c: c / 1000.0, 1e-3),
    "per-second-float32": (lambda c: c.astype(np.float32) / np.float32(3.7), 1.0 / 3.7),
}


@pytest.mark.parametrize("xp", [np, array_api_strict], ids=["numpy", "array_api_strict"])
@pytest.mark.parametrize("name", sorted(SCALES))
def test_the_counts_and_the_number_come_back(counts, name, xp):
    scale_map, scale = SCALES[name]
    y, gain, notes = effective_counts(xp.asarray(scale_map(counts)), xp=xp)
    assert gain == pytest.approx(scale, rel=1e-6)
    np.testing.assert_array_equal(np.asarray(y), counts)
    assert notes["map_kind"].startswith("counts divided by one number")
    assert notes["count_lattice_step"] == gain


@pytest.fixture(scope="module")
def restored_counts(counts):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return xrfgpu.restore(counts, return_info=True)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["half", "per-second-float32"])
def test_restored_as_the_count_map_is(counts, restored_counts, name):
    scale_map, scale = SCALES[name]
    reference, ref_info = restored_counts
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        restored, info = xrfgpu.restore(scale_map(counts), return_info=True)
    assert info["sigma"] == pytest.approx(ref_info["sigma"], rel=1e-9)
    assert info["iterations"] == ref_info["iterations"]
    assert info["background"] == pytest.approx(ref_info["background"] * scale, rel=1e-6)
    np.testing.assert_allclose(np.asarray(restored, dtype=np.float64) / scale, reference,
                               atol=1e-5 * float(np.max(reference)))


def test_a_map_scaled_per_pixel_is_not_taken_for_divided_counts(counts):
    # a dead-time or I0 correction scales each pixel by its own factor: no common step, the fitted rules
    factor = 1.0 + 0.03 * np.random.default_rng(0).random(counts.shape)
    _, gain, notes = effective_counts(counts * factor, xp=np)
    assert notes["map_kind"].startswith("fitted")
    assert "count_lattice_step" not in notes
    assert 0.9 < gain < 1.2
