"""The closed-form filters' weight chosen from the map (``balance="auto"``, ``lam="auto"``, xrfgpu.filter_weight).

References are independent of the rule: the Poisson variance of a simulated map (its mean count), the truth's
MSE (against the raw map and against the best weight of a grid), exact scalings of the data, and the
whole-map call for stacks and tiles.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import xrfgpu
from xrfgpu import phantom, psf
from xrfgpu.filter_weight import FIT_BAND_TRANSFER, NOISE_BAND_TRANSFER, NoiseNotReadableError, discrepancy_weight
from xrfgpu.wiener import auto_weight, filter_problem, regularized_inverse

GRID = np.logspace(-5, 3, 25)


@pytest.fixture(scope="module")
def low_counts():
    """Grains and veins at 20/2 counts (signal/background) through σ 2.5 px: where the fixed 0.01 failed."""
    counts, truth, h = phantom.observe((160, 160), 2.5, seed=3, signal_counts=20.0, background_counts=2.0)
    return np.asarray(counts, np.float64), truth, h, 2.0


@pytest.fixture(scope="module")
def high_counts():
    counts, truth, h = phantom.observe((160, 160), 2.5, seed=4, signal_counts=2000.0, background_counts=100.0)
    return np.asarray(counts, np.float64), truth, h, 100.0


def _mse_ratio(restored, counts, truth, background):
    return float(np.mean((np.asarray(restored) - truth) ** 2) / np.mean((counts - background - truth) ** 2))


@pytest.mark.parametrize("which", ["low_counts", "high_counts"])
def test_the_noise_read_is_the_maps_poisson_variance(request, which):
    # Poisson: the variance of a pixel is its expected count; over the map, the mean count
    counts, _, h, b = request.getfixturevalue(which)
    pb = filter_problem(counts, h, background=b, boundary="reflect", pad=None, mask=None)
    (chosen,) = discrepancy_weight(pb, 2)
    assert chosen.noise_band == "blocked" and chosen.bound is None
    assert chosen.noise_variance == pytest.approx(counts.mean(), rel=0.05)


@pytest.mark.parametrize("method", ["wiener", "tikhonov"])
@pytest.mark.parametrize("which", ["low_counts", "high_counts"])
def test_auto_beats_the_raw_map_and_nears_the_best_weight(request, xp, method, which):
    counts, truth, h, b = request.getfixturevalue(which)
    function = getattr(xrfgpu, method)
    auto = _mse_ratio(function(xp.asarray(counts), xp.asarray(h), background=b), counts, truth, b)
    key = "balance" if method == "wiener" else "lam"
    best = min(_mse_ratio(function(counts, h, background=b, **{key: float(w)}), counts, truth, b) for w in GRID)
    assert auto < 0.8, auto  # the fixed 0.01 gave Wiener 2.0x the raw map's error at 20 counts
    assert auto < 1.25 * best, (auto, best)


def test_the_weight_does_not_depend_on_the_maps_unit(low_counts):
    # a fitted map is counts times a number: the same weight, the noise variance times its square
    counts, _, h, b = low_counts
    first = auto_weight("wiener", counts, h, background=b)
    scaled = auto_weight("wiener", counts * 3.7e-4, h, background=b * 3.7e-4)
    assert scaled.weight == pytest.approx(first.weight, rel=1e-6)
    assert scaled.noise_variance == pytest.approx(first.noise_variance * 3.7e-4**2, rel=1e-6)


def test_numpy_and_array_api_strict_choose_the_same_weight(xp, high_counts):
    # the strict namespace has no DCT: its canvas is the FFT of the mirrored map, whose zero-frequency row and
    # column count twice; the weight must not see the difference
    counts, _, h, b = high_counts
    pb_host = filter_problem(counts, h, background=b, boundary="reflect", pad=None, mask=None)
    pb = filter_problem(xp.asarray(counts), xp.asarray(h), background=b, boundary="reflect", pad=None, mask=None)
    assert discrepancy_weight(pb, 2)[0].weight == pytest.approx(discrepancy_weight(pb_host, 2)[0].weight, rel=1e-6)


def test_the_weight_solves_the_discrepancy_equation(high_counts):
    # the residual of the filtered map, in the transmitted band, equals the noise's share there
    counts, _, h, b = high_counts
    pb = filter_problem(counts, h, background=b, boundary="reflect", pad=None, mask=None)
    (chosen,) = discrepancy_weight(pb, 2)
    op = pb.op
    restored_canvas = op.inverse_transform(op.transform(pb.data - pb.canvas_background) * op.otf
                                           / (op.otf**2 + chosen.weight * _laplacian_power(op)))
    residual = op.transform(pb.data - pb.canvas_background - op.forward(restored_canvas))
    band = op.otf**2 >= FIT_BAND_TRANSFER
    # DCT-II: white noise of variance v gives |Y|² = 4 R C v off the zero row and column
    rows, cols = op.canvas_shape
    inner = band.copy()
    inner[0, :] = inner[:, 0] = False
    assert np.mean(residual[inner] ** 2) / (4.0 * rows * cols) == pytest.approx(chosen.noise_variance, rel=0.05)


def _laplacian_power(op):
    wr, wc = op.frequency_grid()
    return (4.0 - 2.0 * np.cos(wr) - 2.0 * np.cos(wc)) ** 2


def test_a_spot_under_a_pixel_takes_a_count_maps_noise_from_its_mean_count():
    # σ 0.5 px: |H|² never falls below the noise band's 1e-4 on the map's grid; the 256 coefficients of least
    # transfer, read instead, held the scene too (19-29x the raw map's error at σ 0.3 px, 2000 counts)
    counts, truth, _ = phantom.observe((128, 128), 0.5, seed=5, signal_counts=2000.0, background_counts=100.0)
    counts = np.asarray(counts, np.float64)
    h = psf.gaussian(5, 0.5)
    assert float(np.min(np.abs(np.fft.rfft2(h, (128, 128))) ** 2)) > NOISE_BAND_TRANSFER
    chosen = auto_weight("wiener", counts, h, background=100.0)
    assert chosen.noise_band == "poisson" and chosen.noise_variance == pytest.approx(counts.mean(), rel=1e-9)
    assert _mse_ratio(xrfgpu.wiener(counts, h, background=100.0), counts, truth, 100.0) < 1.0
    # a fitted map (not counts) has no such fallback: refused by name, and restore() reads its effective counts
    with pytest.raises(NoiseNotReadableError, match="cannot be read.*pass the weight as a number"):
        xrfgpu.wiener(counts * 1.3e-3, h, background=0.13)
    _, info = xrfgpu.restore(counts * 1.3e-3, h, method="wiener", background=0.13, gain=1.3e-3, return_info=True)
    assert info["noise_band"] == "poisson" and info["balance"] == pytest.approx(chosen.weight, rel=1e-6)


@pytest.mark.parametrize("side, sigma", [(11, 1.0), (16, 1.0)])
def test_a_small_map_reads_its_noise_where_the_spot_blocks_it(side, sigma):
    # 11 x 11 and 16 x 16 maps have 19 and 49 blocked coefficients: enough; the 256 of least transfer had been
    # the whole spectrum, the map's mean included (218x the mean count read as noise, 2-5x the raw map's error)
    counts, truth, h = phantom.observe((side, side), sigma, seed=0, signal_counts=1000.0, background_counts=100.0)
    counts = np.asarray(counts, np.float64)
    chosen = auto_weight("wiener", counts, h, background=100.0)
    assert chosen.noise_band == "blocked" and chosen.noise_variance < 3.0 * counts.mean()


def test_tikhonovs_identity_penalty_wants_the_background_subtracted():
    # order 0 pulls the map toward 0: with background=0 (the library default) the discrepancy keeps the
    # mean's shrinkage at the noise's level (1.4x the raw map's error here, the fixed 0.01 gave 1.8x); given the
    # background, or with a derivative penalty, the map is restored (docs/algorithms.md)
    counts, truth, h = phantom.observe((160, 160), 2.0, seed=0, signal_counts=100.0, background_counts=500.0)
    counts = np.asarray(counts, np.float64)

    raw = np.mean((counts - 500.0 - truth) ** 2)

    def ratio(out, b):  # the map restored above b, against the truth above b
        return float(np.mean((np.asarray(out) - (truth + 500.0 - b)) ** 2) / raw)

    assert ratio(xrfgpu.tikhonov(counts, h), 0.0) < ratio(xrfgpu.tikhonov(counts, h, lam=0.01), 0.0)
    assert ratio(xrfgpu.tikhonov(counts, h, background=500.0), 500.0) < 0.5
    assert ratio(xrfgpu.tikhonov(counts, h, order=1), 0.0) < 0.5


def test_a_map_without_noise_gets_a_small_weight_and_a_finite_map():
    scene = phantom.grains_and_veins((200, 200), seed=6)
    h = psf.gaussian(None, 2.0)
    blurred, truth = phantom.blurred_window(scene, h, (160, 160))
    restored = xrfgpu.wiener(100.0 * blurred, h)
    assert np.all(np.isfinite(restored))
    noiseless = auto_weight("wiener", 100.0 * blurred, h).weight
    noisy = auto_weight("wiener", np.random.default_rng(6).poisson(100.0 * blurred).astype(np.float64), h).weight
    assert noiseless < 0.05 * noisy  # little to smooth away


def test_a_stack_gets_each_maps_own_weight(low_counts, high_counts):
    # a stack's maps share no noise: each map's weight is its single-map call's
    a, _, h, _ = low_counts
    c, _, _, _ = high_counts
    stack = np.stack([a, c])
    out, info = xrfgpu.restore_stack(stack, h, "wiener", background=[2.0, 100.0], return_info=True)
    singles = [auto_weight("wiener", m, h, background=b).weight for m, b in ((a, 2.0), (c, 100.0))]
    assert info["options"]["balance"] == pytest.approx(singles, rel=1e-6)
    assert singles[0] > 10 * singles[1]  # 20 counts need a much larger weight than 2000
    for k, (m, b) in enumerate(((a, 2.0), (c, 100.0))):
        single = xrfgpu.wiener(m, h, background=b)
        assert np.abs(out[k] - single).max() <= 1e-6 * np.abs(single).max()
    json.dumps(info)


def test_tiles_use_the_whole_maps_weight(high_counts):
    pytest.importorskip("dask")
    from xrfgpu import dask as xd

    counts, _, h, b = high_counts
    whole = xrfgpu.wiener(counts, h, background=b)
    tiled = np.asarray(xd.restore(counts, h, "wiener", tile=64, background=b))
    # each tile choosing its own weight had given 2.8 % of the maximum
    assert np.abs(tiled - whole).max() <= 1e-4 * np.abs(whole).max()


def test_restore_records_the_weight_and_the_noise_in_the_maps_units(low_counts):
    counts, _, h, b = low_counts
    unit = 2.5e-3  # a fitted map: counts per I0 read once
    _, info = xrfgpu.restore(counts * unit, h, method="wiener", background=b * unit, gain=unit, return_info=True)
    assert info["balance"] == pytest.approx(auto_weight("wiener", counts, h, background=b).weight, rel=1e-5)
    assert "discrepancy" in info["balance_rule"]
    assert info["noise_variance"] == pytest.approx(counts.mean() * unit**2, rel=0.05)
    _, info = xrfgpu.restore(counts, h, method="tikhonov", background=b, lam=0.02, return_info=True)
    assert info["lam"] == 0.02 and "lam_rule" not in info


@pytest.mark.parametrize("value", ["Auto", "", b"auto"])
def test_a_weight_that_is_neither_a_number_nor_auto_is_refused(value, low_counts):
    counts, _, h, b = low_counts
    with pytest.raises(TypeError, match="number >= 0 or 'auto'"):
        xrfgpu.wiener(counts, h, balance=value)


def test_regularized_inverse_takes_auto_per_map_of_a_stack(low_counts, high_counts):
    from xrfgpu.stack import restore_stack

    a, _, h, _ = low_counts
    c, _, _, _ = high_counts
    record = []
    pb = filter_problem(a, h, background=2.0, boundary="reflect", pad=None, mask=None)
    regularized_inverse(pb, "auto", 0, record=record)
    assert len(record) == 1 and record[0].weight > 0
    out = restore_stack(np.stack([a, c]), h, "tikhonov", background=[2.0, 100.0], lam="auto")
    assert out.shape == (2, 160, 160)


@pytest.mark.slow
def test_restore_zarr_records_the_weight_each_map_ran_with(tmp_path, low_counts, high_counts):
    h5py = pytest.importorskip("h5py")
    zarr = pytest.importorskip("zarr")
    from xrfgpu import dask as xd

    a, _, h, _ = low_counts
    c, _, _, _ = high_counts
    src = tmp_path / "scan.h5"
    with h5py.File(src, "w") as f:
        f["maps"] = np.stack([a, c])
    out = xd.restore_zarr(src, tmp_path / "out.zarr", h, "wiener", dataset="maps", tile=64, background=[2.0, 100.0])
    parameters = zarr.open_array(store=str(out), mode="r").attrs["xrfgpu"]["parameters"]
    singles = [auto_weight("wiener", m, h, background=b).weight for m, b in ((a, 2.0), (c, 100.0))]
    assert parameters["balance"] == pytest.approx(singles, rel=1e-6) and "discrepancy" in parameters["balance_rule"]


@pytest.mark.parametrize("value", ["Auto", "0.1", ""])
def test_tiles_refuse_a_weight_that_is_neither_a_number_nor_auto(value, high_counts):
    # "0.1" from a file had run "auto" without a word
    from xrfgpu import dask as xd

    counts, _, h, b = high_counts
    with pytest.raises(TypeError, match="number >= 0 or 'auto'"):
        xd.restore(counts, h, "wiener", tile=64, background=b, balance=value)


def test_messages_name_auto_where_it_does_not_apply(low_counts):
    counts, _, h, b = low_counts
    with pytest.raises(TypeError, match="or None for FISTA's own rule.*'auto' is Wiener's and Tikhonov's"):
        xrfgpu.fista(counts, h, background=b, lam="auto")
    with pytest.raises(TypeError, match="pass balance='auto' for the whole stack"):
        xrfgpu.restore_stack(np.stack([counts, counts]), h, "wiener", background=b, balance=[0.1, "auto"])
