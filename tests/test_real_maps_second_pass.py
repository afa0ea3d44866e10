"""Second QA pass on real maps: bugs found by trying every feature on the real data, as a user would.

The maps are the real HXN nanoprobe TIFFs of ``tests/data/hxn_nanoparticles_xrf`` (fitted, not
counts; MIT, see its README) or tiny files written here. Each test failed before its fix; the log of
what was tried is in ``docs/qa_real_maps.md`` (second pass).
"""

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

import xrfgpu
from xrfgpu.background import estimate_gain
from xrfgpu.cli import main
from xrfgpu.io import read_maps

HXN = Path(__file__).parent / "data" / "hxn_nanoparticles_xrf"
FE = HXN / "SUM_maps_XRF_Fe_K.tiff"


def test_a_small_table_beside_the_maps_does_not_decide_the_folders_grid(tmp_path, capsys):
    # a folder of two HXN maps and an instrument log (log.csv: a header and one row of two numbers)
    # was read as the "map" log (1 x 2, first in name order), both real maps were skipped for their
    # shape, and the run failed with "map 'log': image must have at least 2 pixels along each axis"
    folder = tmp_path / "scan"
    folder.mkdir()
    fe = tifffile.imread(FE)
    tifffile.imwrite(folder / "scan_Fe_K.tif", fe)
    tifffile.imwrite(folder / "scan_Cr_K.tif", fe[::-1])
    (folder / "log.csv").write_text("time,value\n1,2\n")
    maps = read_maps(folder)
    assert maps.names == ["Cr_K", "Fe_K"]
    assert [s["file"] for s in maps.metadata["skipped"]] == ["log.csv"]
    out = tmp_path / "o.tif"
    assert main(["restore", str(folder), "-o", str(out), "--psf-sigma", "1px", "--iterations", "2"]) == 0
    assert tifffile.imread(out).shape == (2, 160, 160)
    err = capsys.readouterr().err
    assert "skipped log.csv" in err and "scan_Fe_K" not in err


def test_the_shape_most_maps_share_is_the_folders_grid(tmp_path):
    # an overview image of another size that sorts first (a_overview.tif) made the two maps "other sizes"
    folder = tmp_path / "scan"
    folder.mkdir()
    fe = tifffile.imread(FE)
    tifffile.imwrite(folder / "a_overview.tif", np.ones((40, 50), np.float32))
    tifffile.imwrite(folder / "scan_Fe_K.tif", fe)
    tifffile.imwrite(folder / "scan_Cr_K.tif", fe[::-1])
    maps = read_maps(folder)
    assert maps.names == ["Cr_K", "Fe_K"] and maps.shape == (160, 160)
    skipped = maps.metadata["skipped"]
    assert [s["file"] for s in skipped] == ["a_overview.tif"] and "(40, 50)" in skipped[0]["reason"]


def _dead_pixels(shape, fraction, seed=0):
    return np.random.default_rng(seed).random(shape) < fraction


@pytest.mark.parametrize("fraction", [0.005, 0.03])
def test_missing_pixels_do_not_change_a_fitted_maps_measured_gain(fraction):
    # the estimators saw missing pixels filled with the map's median: on the HXN Fe map (fitted; a
    # particle aggregate on a low substrate) 0.5 % dead pixels made the measured gain 6.6 x and 3 %
    # made it 42 x the gain of the complete map, so RL ran in far too few effective counts
    fe = tifffile.imread(FE).astype(np.float64)
    reference = float(estimate_gain(fe))  # independent: the complete map, nothing missing
    y = fe.copy()
    y[_dead_pixels(fe.shape, fraction)] = np.nan
    _, info = xrfgpu.restore(y, sigma=0.53, return_info=True)
    assert info["missing_pixels"] > 0
    assert info["gain"] == pytest.approx(reference, rel=0.1)


def test_the_command_line_measures_the_same_gain_with_a_mask(tmp_path):
    fe = tifffile.imread(FE)
    source = tmp_path / "scan_Fe_K.tif"
    tifffile.imwrite(source, fe)
    mask = tmp_path / "mask.npy"
    np.save(mask, (~_dead_pixels(fe.shape, 0.01)).astype(np.float32))
    out = tmp_path / "o.npz"
    assert main(["restore", str(source), "-o", str(out), "--psf-sigma", "0.53px", "--mask", str(mask), "-q"]) == 0
    import json

    record = json.loads(Path(str(out) + ".json").read_text())["xrfgpu"]["provenance"]
    gain = record["parameters"]["per_element"]["Fe_K"]["gain"]
    assert gain == pytest.approx(float(estimate_gain(fe.astype(np.float64))), rel=0.1)


def test_missing_pixels_of_a_count_map_keep_it_a_count_map():
    counts = np.random.default_rng(1).poisson(40.0, (64, 64)).astype(np.float64)
    counts[_dead_pixels(counts.shape, 0.02)] = np.nan
    _, info = xrfgpu.restore(counts, sigma=1.0, return_info=True)
    assert info["map_kind"] == "counts" and info["gain"] == 1.0


@pytest.mark.parametrize("gain", [True, False, np.True_])
def test_a_boolean_gain_is_refused_as_not_a_number(gain):
    # gain=True was taken for 1 and failed later with "cross-validated stopping needs a map of
    # non-negative integer counts", which names neither gain nor the mistake
    fe = tifffile.imread(FE)
    with pytest.raises(TypeError, match="gain must be a number"):
        xrfgpu.restore(fe, sigma=0.53, gain=gain)


def test_the_estimators_fill_is_the_nearest_measured_pixel(xp):
    from conftest import assert_array, to_numpy

    from xrfgpu.front_door import filled_for_estimators

    rng = np.random.default_rng(2)
    y = rng.random((9, 11)).astype(np.float32)
    weights = np.ones(y.shape, np.float32)
    weights[4, 5] = 0.0  # an isolated dead pixel: nearest neighbours at distance 1 (any of four)
    weights[0:3, 0:2] = 0.0  # a beam dump in the corner
    measured = np.argwhere(weights > 0)
    # reference by brute force: every missing pixel takes a value of a measured pixel at the least distance
    out = filled_for_estimators(xp.asarray(y), xp.asarray(weights), xp=xp)
    got = np.asarray(to_numpy(out))
    for r, c in np.argwhere(weights == 0):
        d = np.hypot(*(measured - (r, c)).T)
        nearest = {float(y[tuple(m)]) for m in measured[d == d.min()]}
        assert float(got[r, c]) in nearest
    # namespace, dtype and shape kept; the measured pixels unchanged
    assert_array(out, np.where(weights > 0, y, got), xp, dtype=xp.float32, rtol=0.0)
    assert np.array_equal(got[weights > 0], y[weights > 0])


def test_a_map_without_a_positive_value_is_refused_naming_that(tmp_path, capsys):
    # -Fe (a fitted map with every value below 0, e.g. a background-subtracted channel of an absent
    # element) failed with "could not measure the map's noise (effective Poisson gain); pass a count map"
    fe = tifffile.imread(FE)
    with pytest.raises(ValueError, match="no positive value"):
        xrfgpu.restore(-fe, sigma=0.53)
    source = tmp_path / "scan_Fe_K.npy"
    np.save(source, -fe)
    assert main(["restore", str(source), "-o", str(tmp_path / "o.tif"), "--psf-sigma", "1px"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Fe_K" in err[0] and "no positive value" in err[0]


def test_a_failed_zarr_write_leaves_no_temporary_store(tmp_path):
    # xrfgpu.dask.restore_zarr(axo_std.h5, ..., dataset="MAPS/XRF_roi_plus") fails (negative fitted
    # values, which RL refuses) and left '.out.zarr.xrfgpu-tmp-...' behind in 3 of 3 runs: Dask raised
    # the first error while other threads were still restoring maps, and they wrote their chunks into
    # the temporary store after it had been removed. Here block 1 is still being computed when block 0
    # fails, and is written afterwards unless the write waits for it.
    import threading
    import time

    dask = pytest.importorskip("dask")
    da = pytest.importorskip("dask.array")
    pytest.importorskip("zarr")
    from xrfgpu.chunked_io import write_zarr

    failed = threading.Event()

    def block(x, block_info=None):
        if block_info[0]["chunk-location"][0] == 0:
            time.sleep(0.05)  # block 1 is running by now
            failed.set()
            raise ValueError("a map RL refuses")
        failed.wait(5.0)
        time.sleep(0.2)  # still running when the error reaches the caller
        return x + 1.0

    array = da.zeros((2, 16, 16), chunks=(1, 16, 16)).map_blocks(block, dtype=np.float64)
    with dask.config.set(scheduler="threads", num_workers=2):
        with pytest.raises(ValueError, match="RL refuses"):
            write_zarr(array, tmp_path / "out.zarr")
    time.sleep(0.5)  # anything still running has finished by now
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def _one_error_line(err):
    lines = [line for line in err.strip().splitlines() if line.startswith("Error")]
    assert len(lines) == 1, err
    return lines[0]


def test_a_map_without_a_psf_sigma_entry_is_named_with_the_way_out(tmp_path, capsys):
    # --psf-sigma Fe=1px on the five HXN maps said "--psf-sigma entry 'Cr_K' not found in --psf-sigma;
    # available: Fe", which reads as if Cr_K had been typed
    out = tmp_path / "o.tif"
    assert main(["restore", str(HXN), "-o", str(out), "--psf-sigma", "Fe=1px"]) != 0
    line = _one_error_line(capsys.readouterr().err)
    assert "no σ for map 'Cr_K'" in line and "Fe" in line and "--elements" in line
    assert not out.exists()


def test_a_scheduler_that_is_no_address_is_refused_naming_the_option(tmp_path, capsys):
    # --tile 64 --scheduler nonsense failed inside the first map's run with "map 'Cr_K': missing port
    # number in address 'nonsense'" (from dask.distributed), naming neither the option nor what it takes
    out = tmp_path / "o.tif"
    assert main(["restore", str(FE), "-o", str(out), "--psf-sigma", "1px", "--tile", "64",
                 "--scheduler", "nonsense"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "--scheduler" in line and "'nonsense'" in line and "tcp://" in line
    assert not out.exists()


@pytest.mark.parametrize("extra", [[], ["--tile", "64"], ["--method", "wiener"], ["--background", "0.01"]])
def test_the_record_holds_the_gain_a_fitted_map_was_restored_with(tmp_path, extra):
    # the run divides a fitted map by its measured effective gain (restore(map, gain=) reproduces it), but
    # the record held it only as three digits inside the background_how text, and not at all with a
    # given --background
    import json

    out = tmp_path / "o.npz"
    assert main(["restore", str(FE), "-o", str(out), "--psf-sigma", "0.53px", "-q", *extra]) == 0
    entry = json.loads(Path(str(out) + ".json").read_text())["xrfgpu"]["provenance"]["parameters"]["per_element"]
    fe = tifffile.imread(FE).astype(np.float64)
    assert entry["Fe_K"]["gain"] == pytest.approx(float(estimate_gain(fe)), rel=1e-6)
    assert entry["Fe_K"]["map_kind"].startswith("fitted")


def test_a_pixel_size_given_for_a_maps_file_is_written_into_its_axes(tmp_path, capsys):
    # --pixel-size 5um on the AXO MAPS file (10 µm steps stored in MAPS/x_axis, y_axis in mm) was recorded
    # as 5 µm, but the output's MAPS/x_axis and y_axis kept the 10 µm steps, which MAPS viewers read
    import h5py

    source = Path(__file__).parent / "data" / "aps_2ide_maps_axo_std" / "axo_std.h5"
    out = tmp_path / "o.h5"
    assert main(["restore", str(source), "-o", str(out), "--psf-sigma", "1px", "--elements", "Fe,Cu",
                 "--iterations", "2", "--pixel-size", "5um", "-q"]) == 0
    with h5py.File(source, "r") as f:
        x_in, y_in = f["MAPS/x_axis"][()], f["MAPS/y_axis"][()]
    with h5py.File(out, "r") as f:
        x, y = f["MAPS/x_axis"][()], f["MAPS/y_axis"][()]
    for written, given in ((x, x_in), (y, y_in)):
        assert written.shape == given.shape and written[0] == given[0]
        np.testing.assert_allclose(np.abs(np.diff(written)), 0.005, rtol=1e-9)  # mm
        assert np.all(np.sign(np.diff(written)) == np.sign(np.diff(given)))
    assert read_maps(out).pixel_size_um == pytest.approx(5.0)


def _pyxrf_file(path, maps, i0):
    import h5py

    with h5py.File(path, "w") as f:
        f["xrfmap/detsum/xrf_fit"] = np.stack(list(maps.values()))
        f["xrfmap/detsum/xrf_fit_name"] = np.array([n.encode() for n in maps])
        f["xrfmap/scalers/val"] = i0[..., None]
        f["xrfmap/scalers/name"] = np.array([b"i0"])


def test_pixels_where_the_scaler_is_zero_are_missing_not_zero_signal(tmp_path):
    # HXN Fe and Cr in a PyXRF file whose I0 is 0 at one pixel (a beam dump) and NaN at another:
    # --normalize i0 set those pixels to 0 signal (inside the aggregate, where Fe is about 4.5) and
    # restored them as 0, and the Fe map ran 8 iterations where the same map without them runs 7; they
    # are missing pixels, restored from their neighbours like NaN or --mask
    import json

    fe, cr = tifffile.imread(FE), tifffile.imread(HXN / "SUM_maps_XRF_Cr_K.tiff")
    i0 = np.full(fe.shape, 1000.0)
    i0[80, 80], i0[10, 10] = 0.0, np.nan
    source = tmp_path / "scan.h5"
    _pyxrf_file(source, {"Fe_K": fe, "Cr_K": cr}, i0)
    maps = read_maps(source, normalize="i0")
    assert np.isnan(maps.maps["Fe_K"][80, 80]) and np.isnan(maps.maps["Fe_K"][10, 10])
    np.testing.assert_allclose(maps.maps["Fe_K"][i0 == 1000.0], fe[i0 == 1000.0], rtol=1e-6)
    out = tmp_path / "o.npz"
    assert main(["restore", str(source), "-o", str(out), "--psf-sigma", "0.53px", "--normalize", "i0", "-q"]) == 0
    record = json.loads(Path(str(out) + ".json").read_text())["xrfgpu"]["provenance"]["parameters"]["per_element"]
    # the reference: the same maps with those two pixels missing (NaN), through the library
    y = fe.astype(np.float64)  # the normalised maps are float64 (map × 1000 / 1000: the map itself)
    y[80, 80] = y[10, 10] = np.nan
    _, info = xrfgpu.restore(y, sigma=0.53, return_info=True)
    assert record["Fe_K"]["iterations"] == info["iterations"] < 50
    restored = np.load(out)["Fe_K"]
    assert np.all(np.isfinite(restored)) and restored[80, 80] > 0.1 * fe[79:82, 79:82].mean()


@pytest.mark.slow
def test_a_joint_run_names_the_scaler_as_a_source_of_missing_pixels(tmp_path, capsys):
    fe = tifffile.imread(FE)
    i0 = np.full(fe.shape, 1000.0)
    i0[80, 80] = 0.0
    source = tmp_path / "scan.h5"
    _pyxrf_file(source, {"Fe_K": fe, "Cr_K": fe[::-1]}, i0)
    # (a tiled Wiener run was refused here too until the tenth session; it restores them now, below; a joint
    # run was refused until the eleventh: it leaves the pixel out of both maps' likelihoods now)
    assert main(["restore", str(source), "-o", str(tmp_path / "o.npz"), "--psf-sigma", "1px",
                 "--normalize", "i0", "--joint", "--iterations", "8", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["joint"]["mode"] == "joint"
    record = json.loads((tmp_path / "o.npz.json").read_text())["xrfgpu"]["provenance"]["parameters"]
    assert all(record["per_element"][name]["missing_pixels"] == 1 for name in ("Fe_K", "Cr_K"))
    with np.load(tmp_path / "o.npz") as f:
        assert all(np.all(np.isfinite(f[name])) for name in ("Fe_K", "Cr_K"))
    # RL and Wiener restore the scaler's missing pixel in tiles as the whole map does
    for method in ("rl", "wiener"):
        for name, tile in (("tiled.npz", ["--tile", "64"]), ("whole.npz", [])):
            iterations = ["--iterations", "8"] if method == "rl" else []  # a filter refuses it
            assert main(["restore", str(source), "-o", str(tmp_path / name), "--psf-sigma", "1px", "--normalize",
                         "i0", "--elements", "Fe_K", *iterations, "--method", method, "-q", "--overwrite",
                         *tile]) == 0
        tiled, whole = (np.load(tmp_path / n)["Fe_K"] for n in ("tiled.npz", "whole.npz"))
        assert np.all(np.isfinite(tiled)) and np.abs(tiled - whole).max() <= 1e-4 * np.abs(whole).max(), method
