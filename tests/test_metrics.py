"""MSE and SSIM against independent references (NumPy arithmetic, scikit-image)."""

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from xrfgpu import metrics


def _pair(seed=0, shape=(40, 53)):
    rng = np.random.default_rng(seed)
    a = rng.random(shape)
    b = np.clip(a + 0.2 * rng.standard_normal(shape), 0, 1)
    return a, b


def test_mse_matches_definition(xp):
    a, b = _pair()
    assert metrics.mse(xp.asarray(a), xp.asarray(b)) == pytest.approx(np.mean((a - b) ** 2), rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ssim_matches_scikit_image(xp, seed):
    a, b = _pair(seed)
    expected = structural_similarity(a, b, win_size=7, K1=0.01, K2=0.03, data_range=1.0)
    assert metrics.ssim(xp.asarray(a), xp.asarray(b)) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_ssim_other_window_and_range_match_scikit_image():
    a, b = _pair(3)
    a, b = 5 * a, 5 * b
    expected = structural_similarity(a, b, win_size=11, K1=0.02, K2=0.05, data_range=5.0)
    assert metrics.ssim(a, b, win_size=11, k1=0.02, k2=0.05, data_range=5.0) == pytest.approx(expected, rel=1e-9)


def test_ssim_identical_is_one_and_drops_with_noise():
    a, b = _pair()
    assert metrics.ssim(a, a) == pytest.approx(1.0)
    assert metrics.ssim(a, b) < 0.9


def test_normalize_to_reference_maps_class_means_to_0_and_1():
    truth = np.zeros((20, 20))
    truth[5:15, 5:15] = 1.0
    truth[0, 0] = 0.5  # partial pixel, left out
    img = 137.0 + 77.0 * truth
    n = metrics.normalize_to_reference(img, truth)
    assert np.mean(n[truth == 1]) == pytest.approx(1.0)
    assert np.mean(n[truth == 0]) == pytest.approx(0.0, abs=1e-12)
    assert metrics.normalize(img).max() == pytest.approx(1.0)


@pytest.mark.parametrize("bad", [np.zeros((5, 6)), np.zeros((7, 7, 2))])
def test_bad_shapes_raise(bad):
    with pytest.raises(ValueError):
        metrics.ssim(np.zeros((7, 7)), bad)


def test_ssim_rejects_even_window_and_small_images():
    with pytest.raises(ValueError, match="win_size"):
        metrics.ssim(np.zeros((9, 9)), np.zeros((9, 9)), win_size=6)
    with pytest.raises(ValueError, match="smaller"):
        metrics.ssim(np.zeros((5, 9)), np.zeros((5, 9)))
