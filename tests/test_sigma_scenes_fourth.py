"""The fourth held-out set of benchmarks/sigma_scenes_fourth.py is what it says (fast, about 1 s).

References: SciPy's Gaussian filter (a blur independent of the module's Fourier one, for the expected counts),
Poisson statistics (the noise), and the three earlier sets' families, seeds and random keys.
"""

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import sigma_scenes  # noqa: E402
import sigma_scenes_fourth as fourth  # noqa: E402
import sigma_scenes_fresh as fresh  # noqa: E402
import sigma_scenes_third as third  # noqa: E402


@pytest.mark.parametrize("family", fourth.FAMILIES)
def test_each_family_is_deterministic_in_unit_range_and_not_flat(family):
    case = (family, 7, 160, 2.0, 2000.0, 100.0)
    scene_a, margin, label, truth = fourth.scene_canvas(case)
    scene_b, _, label_b, _ = fourth.scene_canvas(case)
    assert np.array_equal(scene_a, scene_b) and label == label_b == family and truth == 2.0
    assert scene_a.shape == (160 + 2 * margin,) * 2 and margin == int(5 * 2.0) + 8
    assert np.all(np.isfinite(scene_a)) and scene_a.min() >= 0.0 and scene_a.max() <= 1.0
    crop = scene_a[margin:-margin, margin:-margin]
    assert crop.max() - crop.min() > 0.2 and crop.std() > 0.02, "a map with almost no contrast"
    counts_a, _, _ = fourth.make_case(case)
    counts_b, _, _ = fourth.make_case(case)
    assert np.array_equal(counts_a, counts_b)
    other, _, _, _ = fourth.scene_canvas((family, 8, 160, 2.0, 2000.0, 100.0))
    assert not np.array_equal(scene_a, other)


@pytest.mark.parametrize("family", fourth.FAMILIES)
def test_counts_are_poisson_around_background_plus_signal_times_the_blurred_scene(family):
    # SciPy's blur (wide truncation, periodic like the module's) of the whole canvas, cropped by the margin: the
    # counts are Poisson around background + signal × that, so their mean is near background + signal × the
    # mean blurred scene within a few standard errors, and the standardised residual has mean 0 and variance 1
    from scipy import ndimage

    case = (family, 3, 160, 2.0, 2000.0, 100.0)
    counts, truth, _, scene = fourth.make_case(case, return_scene=True)
    canvas, margin, _, _ = fourth.scene_canvas(case)
    blurred = ndimage.gaussian_filter(canvas, 2.0, mode="wrap", truncate=10.0)[margin:-margin, margin:-margin]
    expected = 100.0 + 2000.0 * blurred
    assert counts.shape == (160, 160) and np.array_equal(counts, np.round(counts)) and counts.min() >= 0
    standard_error = np.sqrt(expected.mean() / counts.size)
    assert abs(counts.mean() - expected.mean()) < 5 * standard_error
    z = (counts - expected) / np.sqrt(expected)
    assert abs(z.mean()) < 0.035 and abs(z.std() - 1.0) < 0.035
    np.testing.assert_array_equal(scene, 2000.0 * canvas[margin:-margin, margin:-margin])


def test_families_are_new():
    earlier = (set(sigma_scenes.FAMILIES) | set(sigma_scenes.TUNING_FAMILIES) | set(fresh.FAMILIES)
               | set(third.FAMILIES))
    assert len(fourth.FAMILIES) == 8 and not set(fourth.FAMILIES) & earlier


def test_seeds_and_keys_are_apart_from_each_other_and_from_the_earlier_sets():
    held = {c[1] for c in fourth.FOURTH_HELD_OUT}
    tuning = {c[1] for c in fourth.FOURTH_TUNING}
    assert held == set(range(600, 612)) and tuning == {700, 701} and not held & tuning
    earlier_seeds = {c[1] for cases in (sigma_scenes.TUNING_EXTENDED, sigma_scenes.TUNING_MORE, sigma_scenes.HELD_OUT,
                                        fresh.FRESH_TUNING, fresh.FRESH_TUNING_MORE, fresh.FRESH_HELD_OUT,
                                        third.THIRD_TUNING, third.THIRD_HELD_OUT)
                     for c in cases}
    assert not (held | tuning) & earlier_seeds
    # sigma_scenes seeds its scenes with [family, seed], its noise with [99, family, seed] and its case draws
    # with key 12345; the fresh and third modules use three keys each
    keys = {fourth._SCENE_KEY, fourth._NOISE_KEY, fourth._DRAW_KEY}
    earlier_keys = {99, 12345, fresh._SCENE_KEY, fresh._NOISE_KEY, fresh._DRAW_KEY, third._SCENE_KEY,
                    third._NOISE_KEY, third._DRAW_KEY}
    assert len(keys) == 3 and not keys & earlier_keys


def test_frozen_case_lists():
    assert len(fourth.FOURTH_HELD_OUT) == 96 and len(fourth.FOURTH_TUNING) == 16
    for cases, per_family in ((fourth.FOURTH_HELD_OUT, 12), (fourth.FOURTH_TUNING, 2)):
        assert all(sum(c[0] == family for c in cases) == per_family for family in fourth.FAMILIES)
    for family, _, size, sigma, signal, background in fourth.FOURTH_HELD_OUT + fourth.FOURTH_TUNING:
        assert family in fourth.FAMILIES and size in (160, 256, 512) and sigma in (2.0, 3.0, 4.0, 6.0, 8.0, 12.0)
        assert (signal, background) in ((77.0, 137.5), (150.0, 140.0), (2000.0, 100.0))
    # the held-out list as frozen: any change of a size, σ, count level or seed shows here
    digest = hashlib.sha256(repr(fourth.FOURTH_HELD_OUT).encode()).hexdigest()
    assert digest == HELD_OUT_DIGEST


def test_unknown_family_is_named():
    with pytest.raises(ValueError, match="unknown family 'circuit'"):
        fourth.scene_canvas(("circuit", 0, 160, 2.0, 150.0, 140.0))


HELD_OUT_DIGEST = "73bbab75e91799948d2d6aa73e30e6ed5e0632619a5a6888c2f8ffbe951f7501"
