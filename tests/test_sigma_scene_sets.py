"""The third and fourth held-out sets (benchmarks/sigma_scenes_third.py, sigma_scenes_fourth.py) are what they
say (fast, about 2 s for both).

References: SciPy's Gaussian filter (a blur independent of the modules' Fourier one, for the expected counts),
Poisson statistics (the noise), and the earlier sets' families, seeds and random keys.
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

# per set: its module, its frozen held-out and tuning lists, their seeds, the sets drawn before it, a family
# of another set, and the digest of the held-out list as frozen
SETS = {
    "third": dict(module=third, held_out=third.THIRD_HELD_OUT, tuning=third.THIRD_TUNING,
                  held_seeds=set(range(400, 412)), tuning_seeds={500, 501}, earlier=(fresh,),
                  earlier_lists=(fresh.FRESH_TUNING, fresh.FRESH_TUNING_MORE, fresh.FRESH_HELD_OUT),
                  foreign="particles", digest="2e998aed63978099a8afbdb558164f18197314ff027351fc4e0510c242274152"),
    "fourth": dict(module=fourth, held_out=fourth.FOURTH_HELD_OUT, tuning=fourth.FOURTH_TUNING,
                   held_seeds=set(range(600, 612)), tuning_seeds={700, 701}, earlier=(fresh, third),
                   earlier_lists=(fresh.FRESH_TUNING, fresh.FRESH_TUNING_MORE, fresh.FRESH_HELD_OUT,
                                  third.THIRD_TUNING, third.THIRD_HELD_OUT),
                   foreign="circuit", digest="73bbab75e91799948d2d6aa73e30e6ed5e0632619a5a6888c2f8ffbe951f7501"),
}
SET_FAMILIES = [(name, family) for name, s in SETS.items() for family in s["module"].FAMILIES]


@pytest.mark.parametrize("name, family", SET_FAMILIES)
def test_each_family_is_deterministic_in_unit_range_and_not_flat(name, family):
    module = SETS[name]["module"]
    case = (family, 7, 160, 2.0, 2000.0, 100.0)
    scene_a, margin, label, truth = module.scene_canvas(case)
    scene_b, _, label_b, _ = module.scene_canvas(case)
    assert np.array_equal(scene_a, scene_b) and label == label_b == family and truth == 2.0
    assert scene_a.shape == (160 + 2 * margin,) * 2 and margin == int(5 * 2.0) + 8
    assert np.all(np.isfinite(scene_a)) and scene_a.min() >= 0.0 and scene_a.max() <= 1.0
    crop = scene_a[margin:-margin, margin:-margin]
    assert crop.max() - crop.min() > 0.2 and crop.std() > 0.02, "a map with almost no contrast"
    counts_a, _, _ = module.make_case(case)
    counts_b, _, _ = module.make_case(case)
    assert np.array_equal(counts_a, counts_b)
    other, _, _, _ = module.scene_canvas((family, 8, 160, 2.0, 2000.0, 100.0))
    assert not np.array_equal(scene_a, other)


@pytest.mark.parametrize("name, family", SET_FAMILIES)
def test_counts_are_poisson_around_background_plus_signal_times_the_blurred_scene(name, family):
    # SciPy's blur (wide truncation, periodic like the module's) of the whole canvas, cropped by the margin: the
    # counts are Poisson around background + signal × that, so their mean is near background + signal × the
    # mean blurred scene within a few standard errors, and the standardised residual has mean 0 and variance 1
    from scipy import ndimage

    module = SETS[name]["module"]
    case = (family, 3, 160, 2.0, 2000.0, 100.0)
    counts, truth, _, scene = module.make_case(case, return_scene=True)
    canvas, margin, _, _ = module.scene_canvas(case)
    blurred = ndimage.gaussian_filter(canvas, 2.0, mode="wrap", truncate=10.0)[margin:-margin, margin:-margin]
    expected = 100.0 + 2000.0 * blurred
    assert counts.shape == (160, 160) and np.array_equal(counts, np.round(counts)) and counts.min() >= 0
    standard_error = np.sqrt(expected.mean() / counts.size)
    assert abs(counts.mean() - expected.mean()) < 5 * standard_error
    z = (counts - expected) / np.sqrt(expected)
    assert abs(z.mean()) < 0.035 and abs(z.std() - 1.0) < 0.035
    np.testing.assert_array_equal(scene, 2000.0 * canvas[margin:-margin, margin:-margin])


@pytest.mark.parametrize("name", SETS)
def test_families_are_new(name):
    s = SETS[name]
    earlier = set(sigma_scenes.FAMILIES) | set(sigma_scenes.TUNING_FAMILIES)
    for module in s["earlier"]:
        earlier |= set(module.FAMILIES)
    assert len(s["module"].FAMILIES) == 8 and not set(s["module"].FAMILIES) & earlier


@pytest.mark.parametrize("name", SETS)
def test_seeds_and_keys_are_apart_from_each_other_and_from_the_earlier_sets(name):
    s, module = SETS[name], SETS[name]["module"]
    held = {c[1] for c in s["held_out"]}
    tuning = {c[1] for c in s["tuning"]}
    assert held == s["held_seeds"] and tuning == s["tuning_seeds"] and not held & tuning
    earlier_seeds = {c[1] for cases in (sigma_scenes.TUNING_EXTENDED, sigma_scenes.TUNING_MORE, sigma_scenes.HELD_OUT,
                                        *s["earlier_lists"])
                     for c in cases}
    assert not (held | tuning) & earlier_seeds
    # sigma_scenes seeds its scenes with [family, seed], its noise with [99, family, seed] and its case draws
    # with key 12345; each later module uses three keys of its own
    keys = {module._SCENE_KEY, module._NOISE_KEY, module._DRAW_KEY}
    earlier_keys = {99, 12345}
    for other in s["earlier"]:
        earlier_keys |= {other._SCENE_KEY, other._NOISE_KEY, other._DRAW_KEY}
    assert len(keys) == 3 and not keys & earlier_keys


@pytest.mark.parametrize("name", SETS)
def test_frozen_case_lists(name):
    s, module = SETS[name], SETS[name]["module"]
    assert len(s["held_out"]) == 96 and len(s["tuning"]) == 16
    for cases, per_family in ((s["held_out"], 12), (s["tuning"], 2)):
        assert all(sum(c[0] == family for c in cases) == per_family for family in module.FAMILIES)
    for family, _, size, sigma, signal, background in s["held_out"] + s["tuning"]:
        assert family in module.FAMILIES and size in (160, 256, 512) and sigma in (2.0, 3.0, 4.0, 6.0, 8.0, 12.0)
        assert (signal, background) in ((77.0, 137.5), (150.0, 140.0), (2000.0, 100.0))
    # the held-out list as frozen: any change of a size, σ, count level or seed shows here
    assert hashlib.sha256(repr(s["held_out"]).encode()).hexdigest() == s["digest"]


@pytest.mark.parametrize("name", SETS)
def test_unknown_family_is_named(name):
    foreign = SETS[name]["foreign"]
    with pytest.raises(ValueError, match=f"unknown family '{foreign}'"):
        SETS[name]["module"].scene_canvas((foreign, 0, 160, 2.0, 150.0, 140.0))
