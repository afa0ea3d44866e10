"""A count map with a few non-integer values (filled dead pixels) is still restored as counts.

One pixel of a 160² count map filled with the mean of its four neighbours (67.25) had made the whole map
"fitted": no element-free area, background 0 for a true 50, 8 iterations for 22, twice the error to the truth
(helper 75). At most 1 % of the nonzero values may now be non-integers; they are rounded and the record says
how many. A given ``gain=1`` on a map that is not integers had stopped the cross-validated split.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import xrfgpu
from xrfgpu.map_kind import STRAY_FRACTION_MAX, classify_map, round_stray_values
from xrfgpu._backend import to_numpy
from xrfgpu.phantom import observe


@pytest.fixture(scope="module")
def counts():
    return observe((160, 160), sigma=3.0, seed=1, signal_counts=200, background_counts=50)[0].astype(np.float64)


def _restore(image, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return xrfgpu.restore(image, return_info=True, **options)


@pytest.mark.slow
def test_a_filled_dead_pixel_is_rounded_and_the_map_restored_as_counts(counts):
    filled = counts.copy()
    filled[5, 5] = (counts[4, 5] + counts[6, 5] + counts[5, 4] + counts[5, 6]) / 4.0 + 0.3  # never an integer
    reference = filled.copy()
    reference[5, 5] = np.round(reference[5, 5])  # the same map with that pixel rounded by NumPy: counts
    out, info = _restore(filled)
    ref_out, ref_info = _restore(reference)
    assert info["stray_values_rounded"] == 1 and "stray_values_rounded" not in ref_info
    assert info["map_kind"] == ref_info["map_kind"] == "counts"
    assert info["background"] == ref_info["background"] and info["iterations"] == ref_info["iterations"]
    np.testing.assert_array_equal(np.asarray(out), np.asarray(ref_out))
    kind = classify_map(filled)
    assert kind.kind == "counts" and "1 non-integer value" in kind.evidence


def test_a_filled_dead_column_is_rounded_too(counts):
    filled = counts.copy()
    filled[:, 80] = 0.5 * (counts[:, 79] + counts[:, 81]) + 0.1  # 160 of 25 600 values: 0.6 %
    _, info = _restore(filled)
    assert info["map_kind"] == "counts" and info["stray_values_rounded"] == 160


@pytest.mark.parametrize("case", ["scaled", "sparse fitted", "too many strays"])
def test_maps_that_are_not_counts_stay_fitted(counts, case):
    if case == "scaled":
        image = counts * 0.37
    elif case == "sparse fitted":  # mostly exact zeros, every nonzero value fitted (not an integer)
        image = np.zeros_like(counts)
        image[40:60, 40:60] = counts[40:60, 40:60] * 0.013
    else:
        image = counts.copy()
        rng = np.random.default_rng(0)
        n = int(2 * STRAY_FRACTION_MAX * image.size)
        image.flat[rng.choice(image.size, n, replace=False)] += 0.5
    assert round_stray_values(image) == (None, 0)
    assert classify_map(image).kind == "fitted"


@pytest.mark.slow
def test_gain_one_on_a_map_that_is_not_integers_is_restored(counts):
    scaled = counts * 1.0001  # counts in a unit a little off, its gain given as 1
    out, info = _restore(scaled, gain=1.0)
    assert info["gain"] == 1.0 and info["iterations"] >= 1 and np.all(np.isfinite(np.asarray(out)))


@pytest.mark.slow
def test_the_joint_restoration_rounds_a_maps_stray_values_and_says_so(counts):
    # the joint path had handed the unrounded stack to its cross-validated split, which refused it
    small = counts[40:104, 40:104]
    filled = small.copy()
    filled[10, 10] += 0.3
    psf = xrfgpu.psf.gaussian(None, 3.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, info = xrfgpu.restore_stack(np.stack([small, filled]), [psf, psf], "rl", joint=True,
                                       background=[50.0, 50.0], return_info=True)
    assert info["mode"] == "joint"
    assert info["per_map"][1]["stray_values_rounded"] == 1 and "stray_values_rounded" not in info["per_map"][0]


def test_stray_values_are_rounded_in_the_maps_own_namespace(xp, counts):
    # the rule is array-API: on NumPy and array_api_strict the same values rounded, in the input's namespace
    filled = counts[:64, :64].copy()
    filled[3, 4] += 0.3
    rounded, stray = round_stray_values(xp.asarray(filled))
    assert stray == 1 and type(rounded) is type(xp.asarray(filled))
    np.testing.assert_array_equal(np.asarray(to_numpy(rounded)), np.round(filled))
    assert classify_map(xp.asarray(filled)).kind == "counts"
