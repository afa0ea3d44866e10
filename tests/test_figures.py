"""Figures: colour bars with units, µm scale bars, one colour scale for input and restored, honest kernels."""

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar  # noqa: E402

from xrfgpu.figures import compare_figure, kernel_figure, nice_length  # noqa: E402
from xrfgpu.psf import gaussian  # noqa: E402


def _bars(ax):
    return [a for a in ax.artists if isinstance(a, AnchoredSizeBar)]


@pytest.mark.parametrize("target, expected", [(4.8, 2.0), (24.0, 20.0), (0.3, 0.2), (100.0, 100.0), (7.0, 5.0)])
def test_nice_length(target, expected):
    assert nice_length(target) == pytest.approx(expected)


def test_compare_figure_shares_colour_limits_and_labels_units_and_scale():
    rng = np.random.default_rng(0)
    before = [rng.uniform(0, 10, (40, 50)), rng.uniform(0, 3, (40, 50))]
    after = [3 * b for b in before]  # restored maps reach higher: the scale must cover both
    fig = compare_figure(before, after, ["Fe", "Ca"], pixel_size_um=0.15, unit=["ug/cm^2", "counts"],
                         labels=["rl, σ = 0.3 µm (2 px), 20 iterations", ""])
    images = [ax for ax in fig.axes if ax.images]
    maps = [ax for ax in images if ax.get_label() != "<colorbar>"]
    for k in range(2):
        lim_in, lim_out = maps[2 * k].images[0].get_clim(), maps[2 * k + 1].images[0].get_clim()
        assert lim_in == lim_out
        lo, hi = np.percentile(before[k], 0.5), np.percentile(after[k], 99.5)
        assert lim_in == pytest.approx((lo, hi))
        assert len(_bars(maps[2 * k])) == 1  # scale bar
    colorbars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert sorted(ax.get_ylabel() for ax in colorbars) == ["counts", "ug/cm^2"]
    titles = [ax.get_title() for ax in maps]
    assert "rl, σ = 0.3 µm (2 px), 20 iterations" in titles[1]
    bar = _bars(maps[0])[0]
    assert bar.txt_label.get_text() == "1 µm"  # a fifth of 50 px × 0.15 µm = 1.5 µm, rounded down to 1


def test_compare_figure_without_pixel_size_has_no_scale_bar():
    fig = compare_figure([np.ones((8, 9))], [np.ones((8, 9))], ["x"])
    assert not any(_bars(ax) for ax in fig.axes)


def test_kernel_figure_draws_the_blind_kernel_not_the_gaussian():
    kernel = np.zeros((9, 9))
    kernel[3:6, 4:7] = 1.0 / 9.0  # a box: nothing like a Gaussian
    fig = kernel_figure(kernel, 1.2, pixel_size_um=0.5, kernel_label="blind L0 kernel")
    shown = [ax.images[0].get_array() for ax in fig.axes if ax.images and ax.get_label() != "<colorbar>"]
    np.testing.assert_array_equal(np.asarray(shown[0]), kernel)
    np.testing.assert_allclose(np.asarray(shown[1]), np.asarray(gaussian((9, 9), 1.2)))
    only = kernel_figure(None, 1.2)  # map-only estimate: no kernel panel at all
    assert len([ax for ax in only.axes if ax.images and ax.get_label() != "<colorbar>"]) == 1
