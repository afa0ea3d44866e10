"""Lost scan lines stored as 0 are missing pixels, not zero concentration (:mod:`xrfgpu.lost_lines`).

The reference is the same map with the lost line marked NaN, which every
path already reads as missing: a whole row of zeros between rows with no
zero must give the same restoration, background and iteration count, in
the library and on the command line, whole map and tiles alike. Maps whose
zeros are real (low counts, a clipped fitted map) must not change.
"""

import json
import warnings

import array_api_strict
import h5py
import numpy as np
import pytest

import xrfgpu
from xrfgpu import phantom
from xrfgpu.cli import main
from xrfgpu.lost_lines import MIN_LINE_PX, LostScanLinesWarning, find_lost_lines
from xrfgpu.psf import gaussian


@pytest.fixture(scope="module")
def count_map():
    """A blurred grain map at background 110 counts: no pixel is 0."""
    h = gaussian(None, 2.5)
    scene = phantom.grains_and_veins((100, 104), seed=7)
    blurred, _ = phantom.blurred_window(scene, h, (72, 76))
    return np.random.default_rng(11).poisson(400.0 * blurred + 110.0).astype(np.float64)


@pytest.mark.parametrize("xp", [np, array_api_strict], ids=["numpy", "strict"])
def test_interior_rows_columns_and_a_frame_are_found(count_map, xp):
    y = count_map.copy()
    y[30] = 0.0
    y[:, 50:52] = 0.0
    assert find_lost_lines(xp.asarray(y), xp=xp).record() == {"rows": [30], "columns": [50, 51]}
    framed = count_map.copy()  # padded onto a larger canvas: the corners' zeros are the other axis's lines
    framed[:3], framed[-2:], framed[:, :4], framed[:, -1] = 0.0, 0.0, 0.0, 0.0
    found = find_lost_lines(xp.asarray(framed), xp=xp)
    assert found.record() == {"rows": [0, 1, 2, 70, 71], "columns": [0, 1, 2, 3, 75]}
    assert found.words() == "rows 0–2, 70–71 and columns 0–3, 75"


def test_zeros_that_counts_can_give_are_kept():
    rng = np.random.default_rng(3)
    sparse = rng.poisson(0.8, (64, 64)).astype(float)  # low counts: every line holds zeros
    sparse[10] = 0.0
    assert not find_lost_lines(sparse, xp=np)
    short = rng.poisson(200.0, (40, MIN_LINE_PX - 1)).astype(float)  # lines too short to be impossible
    short[5] = 0.0
    assert not find_lost_lines(short, xp=np)
    # a fitted map clipped at 0 where the element ends: the edge of the zero region holds zeros
    rows = np.arange(96)[:, None]
    signal = np.clip((rows - 40.0) / 10.0, 0.0, None) * np.ones((1, 80))
    fitted = np.clip(signal + rng.normal(0.0, 0.3, signal.shape), 0.0, None)
    fitted[:20] = 0.0  # no element in the first rows: whole lines of zeros, beside lines with zeros
    assert (fitted[:20] == 0).all() and not find_lost_lines(fitted, xp=np)


def test_a_zero_line_beside_lines_lost_as_nan_is_found(count_map):
    """An aborted scan: the line in progress stored as 0, the lines never reached as NaN (QA helper 77)."""
    y = count_map.copy()
    y[50] = 0.0
    weights = np.ones(y.shape)
    weights[51:] = 0.0  # NaN to the end of the map: the zeros are a border run, judged by row 49
    assert find_lost_lines(y, weights, xp=np).rows == (50,)
    weights[:] = 1.0
    weights[51] = 0.0  # one NaN line between: passed over to row 52
    assert find_lost_lines(y, weights, xp=np).rows == (50,)


def test_a_dead_pixel_beside_the_line_does_not_hide_it(count_map):
    y = count_map.copy()
    y[30] = 0.0
    y[29, 17] = 0.0  # one dead pixel of 76: within the 2 % a clear neighbour may hold
    assert find_lost_lines(y, xp=np).rows == (30,)
    y[29, :3] = 0.0  # four of 76: the zeros may be data
    assert not find_lost_lines(y, xp=np)


def test_zeros_at_a_border_that_can_be_data_are_kept():
    """A scan that starts off the sample on a map with no background: a ramp, or a quantised map's lowest step,
    beside the border's zero lines (QA helper 77: both were read as lost and restored brighter than the map)."""
    rng = np.random.default_rng(1)
    rows = np.arange(96)[:, None] * np.ones((1, 128))
    ramp = rng.poisson(150.0 * np.clip((rows - 4.0) / 4.0, 0.0, 1.0)).astype(float)  # rows 0–4 of mean 0
    assert (ramp[:5] == 0).all() and not find_lost_lines(ramp, xp=np)
    quantised = np.round(0.6 + 0.1 * rows + rng.normal(0.0, 0.05, rows.shape))  # row 0 rounds to 0, row 1 to 1
    quantised[0] = 0.0
    assert (quantised[1] >= 1).all() and not find_lost_lines(quantised, xp=np)
    lifted = quantised + rng.poisson(40.0, rows.shape)  # over a background: its first row of zeros is no measurement
    lifted[0] = 0.0
    assert find_lost_lines(lifted, xp=np).rows == (0,)


def test_round_off_about_zero_is_no_evidence():
    """A noise-free simulation clipped at 0: lines of ±1e-11 beside exact zeros are not clear lines."""
    y = np.zeros((40, 40))
    y[20:] = 1.0
    y[1:20:2] = 1e-11  # round-off lines alternating with exact zeros
    assert not find_lost_lines(y, xp=np)


def test_a_line_beside_missing_pixels_is_judged_on_the_measured_ones(count_map):
    y = count_map.copy()
    y[20] = 0.0
    weights = np.ones(y.shape)
    weights[21, :70] = 0.0  # the next line mostly lost as NaN: too few measured pixels to be evidence
    assert not find_lost_lines(y, weights, xp=np)
    weights[21, :40] = 0.0
    weights[21, 40:] = 1.0
    assert find_lost_lines(y, weights, xp=np).rows == (20,)


def _restored(image, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out, info = xrfgpu.restore(image, return_info=True, **kwargs)
    return np.asarray(out), info, [w for w in caught if issubclass(w.category, LostScanLinesWarning)]


@pytest.mark.parametrize("method", ["rl", "fista"])
def test_restore_reads_a_zero_row_as_the_same_row_marked_nan(count_map, method):
    zero_row, nan_row = count_map.copy(), count_map.copy()
    zero_row[36], nan_row[36] = 0.0, np.nan
    out_zero, info_zero, said = _restored(zero_row, sigma=2.5, method=method)
    out_nan, info_nan, _ = _restored(nan_row, sigma=2.5, method=method)
    assert len(said) == 1 and "row 36" in str(said[0].message)
    assert info_zero["lost_scan_lines"] == {"rows": [36], "columns": []}
    assert info_zero["lost_scan_lines_read_as"] == "missing" and info_zero["missing_pixels"] == 76
    assert info_zero["background"] == info_nan["background"]
    assert info_zero["iterations"] == info_nan["iterations"]
    np.testing.assert_allclose(out_zero, out_nan, rtol=0, atol=1e-5 * out_nan.max())
    # the lost row is restored from its neighbours, not left as a trench
    assert out_zero[36].mean() > 0.5 * 0.5 * (out_zero[35].mean() + out_zero[37].mean())


def test_the_automatic_background_no_longer_falls_with_a_zero_row(count_map):
    """The finding that started this: a zero row pulled the background down (111 → 92 on its map)."""
    y = count_map.copy()
    y[:, 40] = 0.0
    _, info_clean, said_clean = _restored(count_map, sigma=2.5)
    _, info_lost, _ = _restored(y, sigma=2.5)
    assert not said_clean and "lost_scan_lines" not in info_clean
    assert info_lost["background"] == pytest.approx(info_clean["background"], rel=0.03)


def test_a_given_mask_is_the_whole_statement_of_missing_pixels(count_map):
    y = count_map.copy()
    y[36] = 0.0
    _, info, said = _restored(y, sigma=2.5, num_iter=5, mask=np.ones(y.shape))
    assert not said and "lost_scan_lines" not in info and info.get("missing_pixels", 0) == 0


@pytest.mark.slow
def test_a_masked_arrays_mask_is_a_given_mask(count_map):
    y = np.ma.masked_array(count_map.copy(), mask=np.zeros(count_map.shape, dtype=bool))
    y[36] = 0.0
    y[5, 5] = np.ma.masked
    _, info, said = _restored(y, sigma=2.5, num_iter=5)
    assert not said and "lost_scan_lines" not in info and info["missing_pixels"] == 1


def test_the_blind_methods_refuse_missing_pixels_before_warning_of_lines(count_map):
    y = count_map[:48, :48].copy()
    y[20] = 0.0
    y[3, 3] = np.nan
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match="blind methods take no missing pixels"):
            xrfgpu.restore(y, method="blind-rl")
    assert not [w for w in caught if issubclass(w.category, LostScanLinesWarning)]


def test_the_blind_methods_warn_and_restore_the_lines_as_data(count_map):
    y = count_map[:48, :48].copy()
    y[20] = 0.0
    _, info, said = _restored(y, method="blind-rl", num_iter=3, kernel_size=9)
    assert info["lost_scan_lines_read_as"] == "data" and "missing_pixels" not in info
    assert len(said) == 1 and "blind-rl method takes no missing pixels" in str(said[0].message)


def _cli(tmp_path, src, name, *extra):
    out = tmp_path / name
    assert main(["restore", str(src), "-o", str(out), "--psf-sigma", "2.5px", "-q", *extra]) == 0
    with h5py.File(out, "r") as f:
        return f["xrfgpu/maps"][0], json.loads(f["xrfgpu"].attrs["provenance"])["parameters"]["per_element"]["map"]


@pytest.mark.slow
def test_command_line_whole_map_and_tiles_read_the_zero_row_as_the_nan_row(tmp_path, count_map):
    zero_row, nan_row = count_map.copy(), count_map.copy()
    zero_row[36], nan_row[36] = 0.0, np.nan
    (tmp_path / "zero").mkdir()
    (tmp_path / "nan").mkdir()
    np.save(tmp_path / "zero" / "map.npy", zero_row)  # the map is named for its file: "map" in both
    np.save(tmp_path / "nan" / "map.npy", nan_row)
    whole_nan, record_nan = _cli(tmp_path, tmp_path / "nan" / "map.npy", "nan.h5")
    whole, record = _cli(tmp_path, tmp_path / "zero" / "map.npy", "whole.h5")
    tiled, record_tiled = _cli(tmp_path, tmp_path / "zero" / "map.npy", "tiled.h5", "--tile", "32")
    assert record["lost_scan_lines"] == record_tiled["lost_scan_lines"] == {"rows": [36], "columns": []}
    assert record["iterations"] == record_nan["iterations"] == record_tiled["iterations"]
    assert record["background"] == record_nan["background"]
    scale = np.abs(whole_nan).max()
    assert np.abs(whole - whole_nan).max() <= 1e-5 * scale
    assert np.abs(tiled - whole).max() <= 1e-4 * scale


def test_command_line_says_so_and_mask_turns_it_off(tmp_path, count_map, capsys):
    y = count_map.copy()
    y[36] = 0.0
    np.save(tmp_path / "map.npy", y)
    np.save(tmp_path / "ones.npy", np.ones(y.shape))
    assert main(["restore", str(tmp_path / "map.npy"), "-o", str(tmp_path / "a.h5"), "--psf-sigma", "2.5px",
                 "--iterations", "5"]) == 0
    err = capsys.readouterr().err
    assert "Warning: map: row 36 is all 0" in err and "read as a lost scan line" in err
    assert "to keep it as data, give --mask with a map of ones" in err
    _, record = _cli(tmp_path, tmp_path / "map.npy", "b.h5", "--iterations", "5", "--mask",
                     str(tmp_path / "ones.npy"))
    assert "lost_scan_lines" not in record


def test_command_line_joint_reads_the_lost_row_as_missing(tmp_path):
    guide, _, _ = phantom.observe((64, 64), 2.0, seed=1)
    weak, _, _ = phantom.observe((64, 64), 3.0, seed=1)
    weak = weak.astype(np.float64)
    weak[30] = 0.0
    np.savez(tmp_path / "stack.npz", Fe=guide.astype(np.float64), Si=weak)
    out = tmp_path / "joint.h5"
    assert main(["restore", str(tmp_path / "stack.npz"), "-o", str(out), "--psf-sigma", "Fe=2px,Si=3px",
                 "--joint", "--iterations", "5", "--background", "100", "-q"]) == 0
    with h5py.File(out, "r") as f:
        per_element = json.loads(f["xrfgpu"].attrs["provenance"])["parameters"]["per_element"]
    assert per_element["Si"]["lost_scan_lines"] == {"rows": [30], "columns": []}
    assert per_element["Si"]["missing_pixels"] == 64 and "lost_scan_lines" not in per_element["Fe"]


@pytest.fixture(scope="module")
def tall_map():
    """A 96 × 128 count map at background 111 and its truth (σ 2.5 px)."""
    counts, truth, _ = phantom.observe((96, 128), 2.5, seed=3)
    return counts.astype(np.float64), truth


def test_a_scan_stopped_mid_line_is_found_in_each_scan_order(tall_map):
    counts, _ = tall_map
    stopped = counts.copy()
    stopped[70, 64:], stopped[71:] = 0.0, 0.0  # row by row, left to right: stopped at row 70, column 64
    found = find_lost_lines(stopped, xp=np)
    assert found.record() == {"rows": list(range(71, 96)), "columns": [],
                              "scan_stopped_in": {"row": 70, "columns": [64, 127]}}
    assert found.words().startswith("row 70 from column 64 on (the scan stopped there) and rows 71–95")
    serpentine = counts.copy()
    serpentine[70, :40], serpentine[71:] = 0.0, 0.0  # row 70 scanned right to left
    assert find_lost_lines(serpentine, xp=np).stopped == ("row", 70, 0, 39)
    by_columns = counts.copy()
    by_columns[64:, 70], by_columns[:, 71:] = 0.0, 0.0
    assert find_lost_lines(array_api_strict.asarray(by_columns), xp=array_api_strict).stopped == ("column", 70, 64, 95)
    last_row = counts.copy()
    last_row[95, 100:] = 0.0  # 28 pixels of the last row
    assert find_lost_lines(last_row, xp=np).record() == {"rows": [], "columns": [],
                                                         "scan_stopped_in": {"row": 95, "columns": [100, 127]}}
    short = counts.copy()
    short[95, 120:] = 0.0  # 8 pixels: fewer than a line needs
    assert not find_lost_lines(short, xp=np)


def test_a_stopped_scan_restores_as_the_same_scan_marked_nan(tall_map):
    counts, _ = tall_map
    zeros, nans = counts.copy(), counts.copy()
    zeros[70, 64:], zeros[71:] = 0.0, 0.0
    nans[70, 64:], nans[71:] = np.nan, np.nan
    out_zero, info_zero, said = _restored(zeros, sigma=2.5)
    out_nan, info_nan, _ = _restored(nans, sigma=2.5)
    assert len(said) == 1 and "the scan stopped there" in str(said[0].message)
    assert info_zero["missing_pixels"] == info_nan["missing_pixels"] == 64 + 25 * 128
    assert info_zero["iterations"] == info_nan["iterations"] and info_zero["background"] == info_nan["background"]
    np.testing.assert_allclose(out_zero, out_nan, rtol=0, atol=1e-5 * out_nan.max())


def test_a_wide_band_of_missing_rows_leaves_a_count_map_counts(tall_map):
    """The nearest-pixel fill of 25 lost rows repeats row 70 down the band: its tiles had no noise, and the
    photon-transfer gain read 0.18, "integers, but not counts", which took the CV stop to 382 iterations at the
    true σ (the map cropped above the band: 23) and the error to 10 × the crop's. The crop is the reference."""
    counts, truth = tall_map
    band = counts.copy()
    band[71:] = np.nan
    out, info, _ = _restored(band, sigma=2.5, background=111.0)
    crop, info_crop, _ = _restored(counts[:71], sigma=2.5, background=111.0)
    assert info["map_kind"] == "counts" and info["gain"] == 1.0
    assert abs(info["iterations"] - info_crop["iterations"]) <= 0.2 * info_crop["iterations"]

    def error(restored):
        return np.mean((restored[:64] - truth[:64]) ** 2) / np.var(truth)

    assert error(out) <= 1.1 * error(crop)
