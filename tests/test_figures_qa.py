"""The figures' QA pass (docs/figures_qa.md): what a figure says must be true and readable.

Each test holds one defect found by looking at the figures on the real HXN/APS maps and on the
demo: a restored map drawn against an input that still holds the background, no error to the truth
beside a sharper map, colour scales that clip without saying so, invisible 1×N maps, "counts" on
fitted maps, the demo's panels without their error to the truth. References are independent of the
drawing code: hand-made arrays, NumPy's least squares, the fit's own parameters.
"""

import io
import json
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from xrfgpu import demo  # noqa: E402
from xrfgpu.figures import compare_figure, dot_fit_figure, edge_fit_figure  # noqa: E402


def _keywords_passed_to(monkeypatch, module, name):
    """A dict that receives the keyword arguments of every call of ``module.name`` (still called) in the test."""
    seen = {}
    original = getattr(module, name)

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, spy)
    return seen


def _maps(fig):
    return [ax for ax in fig.axes if ax.images and ax.get_label() != "<colorbar>"]


def _colorbars(fig):
    return [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]


def _profiles(fig):
    return [ax for ax in fig.axes if ax.lines and not ax.images and ax.get_label() != "<colorbar>"]


# --- xrfgpu compare ---------------------------------------------------------------------------------

def test_compare_draws_the_input_minus_the_background_the_restoration_removed():
    rng = np.random.default_rng(1)
    before = rng.poisson(100.0 + 50.0 * (rng.random((30, 40)) > 0.7)).astype(np.float64)
    after = np.clip(before - 100.0, 0.0, None)
    fig = compare_figure([before], [after], ["Fe"], background=[100.0])
    shown = np.asarray(_maps(fig)[0].images[0].get_array())
    np.testing.assert_allclose(shown, before - 100.0)
    assert "background" in _maps(fig)[0].get_title() and "100" in _maps(fig)[0].get_title()
    profile = _profiles(fig)[0]
    np.testing.assert_allclose(profile.lines[0].get_ydata(), (before - 100.0)[15])
    lo, hi = _maps(fig)[0].images[0].get_clim()
    assert lo == pytest.approx(min(np.percentile(before - 100.0, 0.5), np.percentile(after, 0.5)))


def test_compare_command_passes_the_recorded_background(tmp_path, monkeypatch):
    import tifffile

    from xrfgpu import figures
    from xrfgpu.cli import main
    from xrfgpu.phantom import observe

    counts, _, _ = observe((48, 56), 2.0, seed=2, signal_counts=120, background_counts=90)
    tifffile.imwrite(tmp_path / "scan.tif", counts.astype(np.uint16))
    assert main(["restore", str(tmp_path / "scan.tif"), "-o", str(tmp_path / "r.tif"), "--psf-sigma", "2px",
                 "--iterations", "5", "-q"]) == 0
    seen = _keywords_passed_to(monkeypatch, figures, "compare_figure")
    assert main(["compare", str(tmp_path / "scan.tif"), str(tmp_path / "r.tif"), "-o", str(tmp_path / "c.png"),
                 "-q"]) == 0
    record = json.loads((tmp_path / "r.tif.json").read_text())["xrfgpu"]["provenance"]
    expected = record["parameters"]["per_element"]["scan"]["background"]
    assert seen["background"] == [pytest.approx(expected)]


def _affine_nrmse(a, t):
    a, t = a.ravel(), t.ravel()
    slope, offset = np.polyfit(a, t, 1)
    return np.sqrt(np.mean((slope * a + offset - t) ** 2)) / (t.max() - t.min())


def test_compare_with_truth_writes_the_error_to_the_truth_beside_each_map():
    rng = np.random.default_rng(3)
    truth = np.zeros((32, 32))
    truth[8:24, 10:20] = 1.0
    before = truth + 0.3 * rng.standard_normal(truth.shape)
    after = truth + 0.1 * rng.standard_normal(truth.shape)
    fig = compare_figure([before], [after], ["Ca"], truth=[truth])
    titles = [ax.get_title() for ax in _maps(fig)]
    assert f"NRMSE to truth {_affine_nrmse(before, truth):.4f}" in titles[0]  # as compare prints it
    assert f"NRMSE to truth {_affine_nrmse(after, truth):.4f}" in titles[1]


def test_compare_colour_bar_says_where_the_scale_clips():
    before = np.tile(np.linspace(0.0, 1.0, 40), (30, 1))
    after = before.copy()
    after[5, 5] = 50.0  # a sharpened hot pixel far above the 99.5th percentile
    fig = compare_figure([before], [after], ["Cr"])
    assert _maps(fig)[1].images[0].colorbar.extend == "max"
    flat = compare_figure([np.zeros((8, 8))], [np.zeros((8, 8))], ["zero"])
    assert _maps(flat)[1].images[0].colorbar.extend == "neither"


@pytest.mark.parametrize("shape", [(1, 200), (3, 500), (200, 1)])
def test_compare_line_and_column_maps_stay_visible(shape):
    rng = np.random.default_rng(4)
    before = rng.random(shape)
    fig = compare_figure([before], [2 * before], ["Fe-Ka"], pixel_size_um=0.15)
    for ax in _maps(fig):
        assert ax.get_aspect() == "auto"  # an equal-aspect 1 × 200 map is a hairline
        assert "stretched" in ax.get_title()
    profile = _profiles(fig)[0]
    assert len(profile.lines[0].get_xdata()) == max(shape)  # along the long axis
    if shape[1] == 1:
        assert "column" in profile.get_title()


def test_compare_profile_of_a_few_pixels_shows_the_pixels():
    fig = compare_figure([np.arange(121.0).reshape(11, 11)], [np.ones((11, 11))], ["Fe"])
    for line in _profiles(fig)[0].lines:
        assert line.get_marker() not in (None, "None", "")


def test_compare_label_counts_one_iteration_in_the_singular():
    from xrfgpu.cli import _restoration_label

    maps = SimpleNamespace(metadata={"provenance": {"method": "rl", "psf": {"Fe": {"sigma_px": 1.0}},
                                                    "parameters": {"per_element": {"Fe": {"iterations": 1}}}}})
    assert _restoration_label(maps, "Fe") == "rl, σ = 1 px, 1 iteration"


# --- xrfgpu psf dot / edge ----------------------------------------------------------------------------

def _dot(shape=(25, 25), sigma=(2.0, 3.0), scale=1e-3):
    v, u = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
    return scale * (5.0 * np.exp(-0.5 * (((u - 12) / sigma[0]) ** 2 + ((v - 11) / sigma[1]) ** 2)) + 0.2)


def test_dot_figure_names_the_maps_unit_and_the_recorded_sigma():
    from xrfgpu.psf import fit_dot

    data = _dot()
    fit = fit_dot(data, pixel_size_um=0.5)
    fig = dot_fit_figure(data, fit, pixel_size_um=0.5, title="Cr", unit="input units", sigma_stderr=0.02)  # px
    assert [ax.get_ylabel() for ax in _colorbars(fig)] == ["input units", "input units"]
    assert _profiles(fig)[0].get_ylabel() == "input units"
    sigma_um = np.sqrt(fit.sigma_u * fit.sigma_v) * 0.5  # the σ the PSF table records: √(σu σv)
    text = " ".join(ax.get_title() for ax in fig.axes) + fig.get_suptitle()
    assert f"σ = {sigma_um:.3g} ± 0.01 µm" in text


@pytest.mark.slow
def test_psf_dot_command_labels_a_fitted_map_in_input_units(tmp_path, monkeypatch):
    import tifffile

    from xrfgpu import figures
    from xrfgpu.cli import main

    tifffile.imwrite(tmp_path / "dot.tif", _dot().astype(np.float32))
    seen = _keywords_passed_to(monkeypatch, figures, "dot_fit_figure")
    assert main(["psf", "dot", str(tmp_path / "dot.tif"), "--line", "Cr-Ka", "--pixel-size", "0.5um",
                 "-o", str(tmp_path / "p.toml"), "--figure", str(tmp_path / "p.png"), "-q"]) == 0
    assert seen["unit"] == "input units"
    table = (tmp_path / "p.toml").read_text()
    stderr = float(table.split("stderr_um = ")[1].split()[0])
    assert seen["sigma_stderr"] == pytest.approx(stderr / 0.5)  # pixels, as the fit's σ


def test_edge_figure_labels_its_intensity_axis():
    from xrfgpu.psf import fit_knife_edge
    from scipy import special

    u = np.arange(64.0)
    data = np.tile(2.0 + 10.0 * 0.5 * (1 + special.erf((u - 30.3) / (np.sqrt(2) * 2.5))), (48, 1))
    fit = fit_knife_edge(data, pixel_size_um=1.0, angle=0.0, poisson=False)
    fig = edge_fit_figure(fit, title="Fe", unit="counts")
    assert [ax.get_ylabel() for ax in fig.axes] == ["counts", "data − fit (counts)"]


# --- xrfgpu demo ------------------------------------------------------------------------------------

def _demo_result():
    truth = np.zeros((40, 30))
    truth[10:30, 8:20] = 1.0
    rng = np.random.default_rng(5)
    raw = 137.0 + rng.poisson(100.0 * truth + 5.0)
    rows = [dict(method="raw scan", sigma_um=None, element="G3E2", lp_per_mm=8.98, mse=0.1267, ssim=0.027),
            dict(method="RL (true σ, CV stop)", sigma_um=32.5, iterations=31, element="G3E4", lp_per_mm=11.31,
                 mse=0.0353, ssim=0.130),
            dict(method="automatic: restore(map)", sigma_um=29.2, iterations=52, element="G3E5",
                 lp_per_mm=12.70, mse=0.0326, ssim=0.129)]
    images = {"truth": truth, "raw scan": raw, "RL (true σ, CV stop)": 100.0 * truth,
              "automatic: restore(map)": 110.0 * truth}
    return {"images": images, "rows": rows, "pixel_size_um": 5.0}


def test_demo_panels_give_the_error_to_the_truth_beside_each_resolution():
    fig = demo.panels_figure(_demo_result())
    titles = {ax.get_title().split("\n")[0]: ax.get_title() for ax in _maps(fig)}
    for row in _demo_result()["rows"]:
        key = next(k for k in titles if k.startswith(row["method"]))
        assert f"resolves {row['element']}" in titles[key]
        assert f"MSE {row['mse']:.4f}" in titles[key]  # as the report's table writes it


def test_demo_panels_one_colour_bar_one_scale_no_empty_cell():
    fig = demo.panels_figure(_demo_result())
    assert len(_colorbars(fig)) == 1  # the truth's scale is said in its title, not by a second bar
    truth = next(ax for ax in _maps(fig) if ax.get_title().startswith("truth"))
    assert "chrome" in truth.get_title() and "glass" in truth.get_title()
    limits = {ax.images[0].get_clim() for ax in _maps(fig) if ax is not truth}
    assert len(limits) == 1
    for ax in fig.axes:  # every cell shows something: a map, a colour bar or a note
        assert ax.images or ax.get_label() == "<colorbar>" or ax.texts


@pytest.mark.slow
def test_demo_figures_leave_pyplot_and_its_backend_alone(monkeypatch):
    import matplotlib

    def refuse(*args, **kwargs):
        raise AssertionError("the demo must not switch the caller's Matplotlib backend")

    monkeypatch.setattr(matplotlib, "use", refuse)
    demo.figure_panels(_demo_result())
    demo.figure_sweep([dict(sigma_um=s, mse=0.03 + 0.001 * s, ssim=0.1, lp_per_mm=10.0, iterations=29)
                       for s in (27.5, 30.0)], knife_sigma_um=31.7)


def test_demo_sweep_figure_plots_the_table_and_says_how_it_ran():
    sweep = [dict(sigma_um=s, mse=m, ssim=q, lp_per_mm=lp, iterations=29)
             for s, m, q, lp in [(27.5, 0.0339, 0.121, 11.31), (32.5, 0.0361, 0.126, None), (40.0, 0.0489, 0.106, 8.98)]]
    fig = demo.sweep_figure(sweep, knife_sigma_um=31.7)
    mse_ax, ssim_ax, lp_ax = fig.axes
    np.testing.assert_allclose(mse_ax.lines[0].get_ydata(), [0.0339, 0.0361, 0.0489])
    np.testing.assert_allclose(lp_ax.lines[0].get_ydata(), [11.31, np.nan, 8.98])
    assert "normalised" in mse_ax.get_ylabel()
    assert "29 iterations" in fig.get_suptitle()


def test_demo_pngs_carry_xrfgpus_mark_and_open_everywhere():
    import matplotlib.image
    from PIL import Image

    data = demo.figure_panels(_demo_result())
    with Image.open(io.BytesIO(data)) as im:
        assert im.info["Software"].startswith("xrfgpu")
        assert im.size[0] >= 800
    assert matplotlib.image.imread(io.BytesIO(data), format="png").ndim == 3


def test_compare_a_zero_background_leaves_the_input_title_alone():
    fig = compare_figure([np.ones((6, 6))], [np.ones((6, 6))], ["Fe"], background=[0.0])
    assert _maps(fig)[0].get_title() == "Fe: input"


def test_compare_stretched_maps_get_no_false_scale_bar_and_readable_ticks():
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    fig = compare_figure([np.ones((1, 200))], [np.ones((1, 200))], ["Fe"], pixel_size_um=0.15)
    for ax in _maps(fig):
        assert not [a for a in ax.artists if isinstance(a, AnchoredSizeBar)]  # its bar would be a block
        assert list(ax.get_yticks()) == [0.0]  # the one row, not -0.075 ... 0.075
    column = compare_figure([np.ones((200, 1))], [np.ones((200, 1))], ["Fe"], pixel_size_um=0.15)
    assert list(_maps(column)[0].get_xticks()) == [0.0]


@pytest.mark.slow
@pytest.mark.parametrize("shape", [(1, 200), (40, 40)])
def test_compare_long_element_names_do_not_run_into_the_next_title(shape):
    name = "Fe-Ka with a very long element name from a MAPS file"
    fig = compare_figure([np.ones(shape)], [np.ones(shape)], [name], pixel_size_um=0.15,
                         labels=["rl, σ = 0.18 µm (1.2 px), 186 iterations (cv)"], background=[0.000239])
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    left, right = (ax.title.get_window_extent(renderer) for ax in _maps(fig))
    assert left.x1 <= right.x0


def test_compare_missing_pixels_have_their_own_colour_and_are_counted():
    from matplotlib.colors import to_rgba

    before = np.ones((20, 20))
    before[3, 4] = before[10, 11] = np.nan
    fig = compare_figure([before], [np.ones((20, 20))], ["Fe"], pixel_size_um=0.5)
    shown = _maps(fig)[0]
    bad = shown.images[0].cmap.get_bad()
    assert bad[3] == 1.0 and tuple(bad) != to_rgba("white")  # not the blank page, not the white scale bar
    assert "2 missing" in shown.get_title()


def test_demo_scale_bar_sits_on_glass_not_on_the_charts_square():
    # the chart's large chrome square fills the lower left of the full chart (G2-G7): the bar goes lower right
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    fig = demo.panels_figure(_demo_result())
    for ax in _maps(fig):
        bars = [a for a in ax.artists if isinstance(a, AnchoredSizeBar)]
        assert len(bars) == 1 and bars[0].loc == 4  # matplotlib's code of "lower right"


def test_compare_reports_the_flux_above_the_background_the_restoration_removed(tmp_path):
    # the plain flux ratio divides signal-above-background by input-with-background (0.15 on such a map)
    import tifffile

    from xrfgpu.cli import main
    from xrfgpu.phantom import observe

    counts, _, _ = observe((48, 56), 2.0, seed=6, signal_counts=120, background_counts=90)
    tifffile.imwrite(tmp_path / "scan.tif", counts.astype(np.uint16))
    assert main(["restore", str(tmp_path / "scan.tif"), "-o", str(tmp_path / "r.tif"), "--psf-sigma", "2px",
                 "--iterations", "5", "-q"]) == 0
    import contextlib

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["compare", str(tmp_path / "scan.tif"), str(tmp_path / "r.tif"), "--no-figure", "--json"]) == 0
    metrics = json.loads(buf.getvalue())["metrics"]["scan"]
    background = json.loads((tmp_path / "r.tif.json").read_text())["xrfgpu"]["provenance"]["parameters"][
        "per_element"]["scan"]["background"]
    restored = tifffile.imread(tmp_path / "r.tif").astype(np.float64)
    expected = restored.sum() / (counts.astype(np.float64) - background).sum()
    assert metrics["flux_ratio_above_background"] == pytest.approx(expected, rel=1e-6)
    assert metrics["flux_ratio"] < 0.7 < metrics["flux_ratio_above_background"]  # what the fix is about
