"""The fresh held-out scenes of benchmarks/sigma_scenes_fresh.py are what they say (fast, about 2 s).

References: the analytic Gaussian (the blur of a single bright pixel), SciPy's Gaussian filter (an
independent blur, for the map's mean), Poisson statistics (the noise), and the old set's name lists.
"""

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import sigma_scenes  # noqa: E402
import sigma_scenes_fresh as fresh  # noqa: E402


def _small_case(family, seed=7, sigma=2.0):
    return (family, seed, 160, sigma, 2000.0, 100.0)


@pytest.mark.parametrize("family", fresh.FAMILIES)
def test_each_family_is_deterministic_and_in_unit_range(family):
    case = _small_case(family)
    scene_a, margin, label, truth = fresh.scene_canvas(case)
    scene_b, _, label_b, _ = fresh.scene_canvas(case)
    assert np.array_equal(scene_a, scene_b) and label == label_b
    assert scene_a.shape == (160 + 2 * margin,) * 2 and margin == int(5 * 2.0) + 8
    assert np.all(np.isfinite(scene_a)) and scene_a.min() >= 0.0 and scene_a.max() <= 1.0
    assert scene_a.max() - scene_a.min() > 0.3, "a scene with almost no contrast"
    assert truth == 2.0
    counts_a, _, _ = fresh.make_case(case)
    counts_b, _, _ = fresh.make_case(case)
    assert np.array_equal(counts_a, counts_b)
    # another seed gives another scene
    other, _, _, _ = fresh.scene_canvas(_small_case(family, seed=8))
    assert not np.array_equal(scene_a, other)


@pytest.mark.parametrize("sigma", [2.0, 3.0])
def test_blur_of_a_single_bright_pixel_is_the_analytic_gaussian(sigma):
    n = 96
    delta = np.zeros((n, n))
    delta[n // 2, n // 2] = 1.0
    blurred = sigma_scenes._blur(delta, sigma)
    yy, xx = np.mgrid[0:n, 0:n] - n // 2
    gaussian = np.exp(-(yy**2 + xx**2) / (2 * sigma**2)) / (2 * math.pi * sigma**2)
    np.testing.assert_allclose(blurred, gaussian, rtol=0, atol=1e-6)


def test_map_is_poisson_around_the_blurred_cropped_scene():
    # independent blur (SciPy, wide truncation) of the whole canvas, cropped by the margin: the counts are
    # Poisson around background + signal × that, so the standardised residual has mean 0 and variance 1;
    # a crop one pixel off would make it far larger on these sharp-edged grains at 2000 counts
    from scipy import ndimage

    case = ("zoned_grains", 3, 160, 2.0, 2000.0, 100.0)
    counts, truth, _, scene = fresh.make_case(case, return_scene=True)
    canvas, margin, _, _ = fresh.scene_canvas(case)
    blurred = ndimage.gaussian_filter(canvas, 2.0, mode="wrap", truncate=10.0)
    expected = 100.0 + 2000.0 * np.clip(blurred[margin:-margin, margin:-margin], 0.0, None)
    z = (counts - expected) / np.sqrt(expected)
    assert abs(z.mean()) < 0.03 and abs(z.std() - 1.0) < 0.03
    shifted = 100.0 + 2000.0 * np.clip(blurred[margin + 1 : -margin + 1, margin:-margin], 0.0, None)
    assert ((counts - shifted) / np.sqrt(shifted)).std() > 1.2
    np.testing.assert_array_equal(scene, 2000.0 * canvas[margin:-margin, margin:-margin])
    assert counts.shape == (160, 160) and np.array_equal(counts, np.round(counts))


def test_fresh_families_and_images_are_not_the_old_ones():
    old_families = set(sigma_scenes.FAMILIES) | set(sigma_scenes.TUNING_FAMILIES)
    assert not set(fresh.FAMILIES) & old_families
    old_images = set(sigma_scenes.SKIMAGE_NAMES) | set(sigma_scenes.PHOTO_NAMES)
    assert not set(fresh.UNUSED_SKIMAGE_NAMES) & old_images
    assert len(fresh.FAMILIES) >= 6


def test_frozen_case_lists():
    assert len(fresh.FRESH_HELD_OUT) == 12 * len(fresh.FAMILIES)
    assert len(fresh.FRESH_TUNING) == 2 * len(fresh.FAMILIES)
    held_seeds = {c[1] for c in fresh.FRESH_HELD_OUT}
    assert held_seeds == set(range(200, 212)) and not held_seeds & {c[1] for c in fresh.FRESH_TUNING}
    for family, _, size, sigma, signal, background in fresh.FRESH_HELD_OUT:
        assert family in fresh.FAMILIES and size in (160, 256, 512) and sigma in (2.0, 3.0, 4.0, 6.0, 8.0, 12.0)
        assert (signal, background) in ((77.0, 137.5), (150.0, 140.0), (2000.0, 100.0))


def test_unknown_family_is_named():
    with pytest.raises(ValueError, match="unknown family 'voronoi'"):
        fresh.scene_canvas(("voronoi", 0, 160, 2.0, 150.0, 140.0))
