"""USAF-1951 geometry (MIL-STD-150A) and the objective resolution test."""

import math

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from xrfgpu import usaf


def test_frequencies_and_widths_follow_the_standard():
    # 2^(G+(E-1)/6): G6E6 = 114.0 lp/mm, G3E6 = 14.3, G4E1 = 16 (the paper's figures)
    assert usaf.lp_per_mm(6, 6) == pytest.approx(114.0, abs=0.05)
    assert usaf.lp_per_mm(3, 6) == pytest.approx(14.25, abs=0.01)
    assert usaf.lp_per_mm(4, 1) == 16.0
    assert usaf.bar_width_um(2, 1) == pytest.approx(125.0)


def test_chart_geometry_and_area_coverage():
    c = usaf.chart(5.0, groups=range(3, 5))
    assert len(c.blocks) == 2 * 6 * 2
    assert c.image.min() >= 0 and c.image.max() <= 1
    for b in c.blocks:
        w = b.width_um
        top, bottom, left, right = b.box
        assert bottom - top == pytest.approx(5 * w) and right - left == pytest.approx(5 * w)
        for bar in b.bars:
            length = (bar[1] - bar[0]) if b.orientation == "vertical" else (bar[3] - bar[2])
            width = (bar[3] - bar[2]) if b.orientation == "vertical" else (bar[1] - bar[0])
            assert length == pytest.approx(5 * w) and width == pytest.approx(w)
    # exact area coverage: the chrome area equals the drawn geometry
    area = sum(w * w * 15 for w in (b.width_um for b in c.blocks))
    side = c.square[1] - c.square[0]
    assert c.image.sum() * 25.0 == pytest.approx(area + side * side, rel=1e-9)


def test_oversampled_chart_averages_to_the_coarse_one():
    coarse = usaf.chart(5.0, groups=[4])
    fine = usaf.chart(5.0, groups=[4], oversample=4)
    r, c = coarse.shape
    binned = fine.image[: 4 * r, : 4 * c].reshape(r, 4, c, 4).mean(axis=(1, 3))
    np.testing.assert_allclose(binned, coarse.image, atol=1e-12)


def test_truth_resolves_down_to_the_grid_limit():
    c = usaf.chart(5.0, groups=range(3, 6))
    res = usaf.smallest_resolved(c.image, c)
    # every element with bars of at least one pixel (5 µm) is resolved in the truth
    finest = max((e for e in res.elements if 1000 / (2 * e.lp_per_mm) >= 5.0), key=lambda e: e.lp_per_mm)
    assert (res.group, res.element) == (finest.group, finest.element)


def test_noise_free_gaussian_blur_matches_an_analytic_threshold():
    # noiseless: only the 10 % contrast floor acts. The dip of a 3-bar pattern blurred by a Gaussian
    # is computed independently here from error functions; the limit must be the finest element
    # whose analytic dips are all >= 0.1 (checked from coarse to fine).
    sigma_px = 3.0
    c = usaf.chart(5.0, groups=range(3, 6))
    blurred = gaussian_filter(c.image, sigma_px, mode="constant")
    res = usaf.smallest_resolved(blurred, c)

    def phi(x):
        return 0.5 * (1 + math.erf(x / math.sqrt(2)))

    def level(x, w):  # blurred 3-bar profile at x (bars at [0,w),[2w,3w),[4w,5w))
        return sum(phi((x - 2 * k * w) / sigma_px) - phi((x - (2 * k + 1) * w) / sigma_px) for k in range(3))

    expected = None
    for e in res.elements:
        w = 1000 / (2 * e.lp_per_mm) / 5.0
        b = [level((2 * k + 0.5) * w, w) for k in range(3)]
        g = [level((2 * k + 1.5) * w, w) for k in range(2)]
        dips = [min(b[0], b[1]) - g[0], min(b[1], b[2]) - g[1]]
        if min(dips) < 0.1 or w < 1:
            break
        expected = e
    assert (res.group, res.element) == (expected.group, expected.element)


def test_noise_significance_blocks_noisy_contrast():
    rng = np.random.default_rng(0)
    c = usaf.chart(5.0, groups=range(3, 5))
    clean = gaussian_filter(c.image, 2.0, mode="constant")
    quiet = usaf.smallest_resolved(clean + 0.01 * rng.standard_normal(c.shape), c)
    loud = usaf.smallest_resolved(clean + 1.0 * rng.standard_normal(c.shape), c)
    assert loud.lp_per_mm is None or loud.lp_per_mm < quiet.lp_per_mm
    # the measured noise null is near the analytic std of the dip for white noise
    worst = min(quiet.elements, key=lambda e: e.lp_per_mm)
    assert math.isfinite(worst.z)


def test_affine_units_do_not_change_the_result():
    rng = np.random.default_rng(1)
    c = usaf.chart(5.0, groups=range(3, 5))
    img = gaussian_filter(c.image, 4.0, mode="constant") + 0.05 * rng.standard_normal(c.shape)
    a = usaf.smallest_resolved(img, c)
    b = usaf.smallest_resolved(275.0 + 154.0 * img, c)
    assert a.label == b.label
    assert [e.resolved for e in a.elements] == [e.resolved for e in b.elements]


def test_contrast_reversal_is_not_resolution():
    c = usaf.chart(5.0, groups=[4])
    assert usaf.smallest_resolved(1.0 - c.image, c).group is None


def test_bad_input():
    c = usaf.chart(5.0, groups=[4])
    with pytest.raises(ValueError, match="shape"):
        usaf.smallest_resolved(np.zeros((3, 3)), c)
    with pytest.raises(ValueError):
        usaf.chart(-1.0)
    with pytest.raises(ValueError):
        usaf.chart(5.0, groups=[])
    with pytest.raises(ValueError):
        usaf.lp_per_mm(3, 7)
