"""The command line on the files XRF users have: tiling, legacy MAPS, folders, pixel units, progress.

Outputs are opened the way users open them (h5py, tifffile.imread) and
compared with an independent reference: the whole-map run of the same
command, or the input itself.
"""

import json

import h5py
import numpy as np
import pytest
import tifffile

from xrfgpu import phantom
from xrfgpu.cli import main
from xrfgpu.psf import gaussian

SHAPE = (52, 61)  # not a multiple of the tile, rows ≠ cols


@pytest.fixture(scope="module")
def count_map():
    h = gaussian(None, 2.0)
    scene = phantom.grains_and_veins((SHAPE[0] + 30, SHAPE[1] + 30), seed=4)
    blurred, _ = phantom.blurred_window(scene, h, SHAPE)
    return np.random.default_rng(5).poisson(300.0 * blurred + 30.0).astype(np.float32)


def _restore(tmp_path, src, name, *extra):
    out = tmp_path / name
    assert main(["restore", str(src), "-o", str(out), "--psf-sigma", "2px", "-q", *extra]) == 0
    with h5py.File(out, "r") as f:
        return f["xrfgpu/maps"][0], json.loads(f["xrfgpu"].attrs["provenance"])


@pytest.mark.parametrize(
    "method, extra",
    [("rl", []),  # count map: cross-validated count decided on the whole map, accelerated iterations
     ("rl", ["--iterations", "12", "--background", "0"]),
     ("wiener", []), ("tikhonov", []), ("fista", ["--iterations", "20"])],
)
def test_tile_output_equals_whole_map_output(tmp_path, count_map, method, extra):
    src = tmp_path / "map.npy"
    np.save(src, count_map)
    whole, prov_whole = _restore(tmp_path, src, "whole.h5", "--method", method, *extra)
    tiled, prov_tiled = _restore(tmp_path, src, "tiled.h5", "--method", method, "--tile", "24", *extra)
    assert np.abs(tiled - whole).max() <= 1e-4 * np.abs(whole).max()
    pw = prov_whole["parameters"]["per_element"]["map"]
    pt = prov_tiled["parameters"]["per_element"]["map"]
    assert pt["tile"] == 24 and "tiling" in pt
    assert pt.get("iterations") == pw.get("iterations") and pt.get("stop") == pw.get("stop")


@pytest.mark.parametrize("method, extra", [("rl", []), ("wiener", []), ("tikhonov", []),
                                           ("fista", ["--iterations", "20"])])
def test_tile_output_equals_whole_map_output_with_missing_pixels(tmp_path, count_map, method, extra):
    """A --mask file and NaN drop-outs: the tiles solve the whole map's weighted problem (before, --tile took
    missing pixels for rl only and refused the other methods)."""
    y = count_map.astype(np.float64)
    y[10:13, 20:30] = np.nan  # drop-outs across a tile edge
    weights = np.ones(y.shape)
    weights[30:34, 5:15] = 0.0  # a beam dump, marked in the mask file
    y[30:34, 5:15] = 9000.0  # whose counts are garbage
    np.save(tmp_path / "map.npy", y)
    np.save(tmp_path / "dead.npy", weights)
    flags = ("--method", method, "--mask", str(tmp_path / "dead.npy"), *extra)
    whole, _ = _restore(tmp_path, tmp_path / "map.npy", "whole.h5", *flags)
    tiled, prov = _restore(tmp_path, tmp_path / "map.npy", "tiled.h5", *flags, "--tile", "24")
    assert np.all(np.isfinite(tiled)) and float(tiled[30:34, 5:15].max()) < 1000.0
    assert np.abs(tiled - whole).max() <= 1e-4 * np.abs(whole).max()
    assert prov["parameters"]["per_element"]["map"]["tile"] == 24


def test_tile_output_equals_whole_map_output_on_a_fitted_map(tmp_path, count_map):
    """A fitted (non-integer) map: the whole map restores in effective counts with a cross-validated
    count, and so must the tiles (they once ran a fixed 30 on such maps while the whole map ran CV)."""
    src = tmp_path / "map.npy"
    np.save(src, (count_map * 0.0137).astype(np.float32))  # µg/cm²-like units, not counts
    whole, prov_whole = _restore(tmp_path, src, "whole.h5")
    tiled, prov_tiled = _restore(tmp_path, src, "tiled.h5", "--tile", "24")
    pw = prov_whole["parameters"]["per_element"]["map"]
    pt = prov_tiled["parameters"]["per_element"]["map"]
    assert pw.get("stop") == "cv" and pt.get("stop") == "cv" and pt.get("iterations") == pw.get("iterations")
    assert np.abs(tiled - whole).max() <= 1e-4 * np.abs(whole).max()


def test_tile_refuses_blind_methods_with_the_reason(tmp_path, count_map, capsys):
    np.save(tmp_path / "map.npy", count_map)
    assert main(["restore", str(tmp_path / "map.npy"), "-o", str(tmp_path / "o.h5"), "--method", "blind",
                 "--tile", "24"]) == 2
    assert "whole map" in capsys.readouterr().err


class _Terminal:
    """stderr that says it is a terminal, and keeps what was written."""

    def __init__(self):
        self.text = ""

    def isatty(self):
        return True

    def write(self, text):
        self.text += text

    def flush(self):
        pass


@pytest.mark.parametrize("flags, shown", [([], True), (["-q"], False), (["--json"], False)])
def test_progress_on_a_terminal_only(tmp_path, count_map, monkeypatch, flags, shown):
    np.save(tmp_path / "map.npy", count_map)
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    args = ["restore", str(tmp_path / "map.npy"), "-o", str(tmp_path / "o.h5"), "--psf-sigma", "2px"]
    assert main(args + ["--iterations", "5", *flags]) == 0
    assert ("map: iterations [" in terminal.text and "5/5" in terminal.text) == shown
    assert main(args + ["--overwrite", *flags]) == 0  # CV stopping reports nothing itself: a timed stage
    assert ("iterations by cross-validation" in terminal.text) == shown


def test_no_progress_when_stderr_is_not_a_terminal(tmp_path, count_map, capsys):
    np.save(tmp_path / "map.npy", count_map)
    assert main(["restore", str(tmp_path / "map.npy"), "-o", str(tmp_path / "o.h5"), "--psf-sigma", "2px",
                 "--iterations", "5"]) == 0
    assert "iterations [" not in capsys.readouterr().err


def test_maps_v9_file_restores_without_pixel_size_into_maps_layout(tmp_path, count_map, capsys):
    """The legacy APS 2-ID-E layout: µg/cm² float64 XRF_fits, mm axes, scalers with names."""
    path = tmp_path / "axo.h5"
    fits = np.stack([count_map, 2 * count_map]).astype(np.float64) / 100.0
    us_ic = np.random.default_rng(1).uniform(1.5e5, 2.5e5, SHAPE)
    with h5py.File(path, "w") as f:
        f["MAPS/XRF_fits"] = fits
        f["MAPS/XRF_roi"] = fits + 1
        f["MAPS/channel_names"] = np.array([b"Fe", b"Ca"], dtype="S5")
        f["MAPS/channel_units"] = np.array([[b"ug/cm^2"] * 2] * 3, dtype="S7")
        f["MAPS/scalers"] = np.stack([np.ones(SHAPE), us_ic])
        f["MAPS/scaler_names"] = np.array([b"SRcurrent", b"us_ic"], dtype="S12")
        f["MAPS/x_axis"] = 5.475 + 0.01 * np.arange(SHAPE[1])
        f["MAPS/y_axis"] = 13.83 + 0.01 * np.arange(SHAPE[0])
    out = tmp_path / "out.h5"
    assert main(["restore", str(path), "-o", str(out), "--psf-sigma", "20um", "--dataset", "XRF_fits",
                 "--normalize", "us_ic", "--iterations", "3", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["pixel_size_um"] == pytest.approx(10.0)  # from MAPS/x_axis (mm)
    assert summary["psf"]["Fe"]["sigma_px"] == pytest.approx(2.0)
    with h5py.File(out, "r") as f:
        assert f["MAPS/XRF_fits"].dtype == np.float64 and f["MAPS/XRF_fits"].shape == (2,) + SHAPE
        assert [n.decode() for n in f["MAPS/channel_names"][()]] == ["Fe", "Ca"]
        assert f["MAPS/channel_units"][2, 0] == b"ug/cm^2"
        assert "XRF_Analyzed" not in f["MAPS"]
        prov = json.loads(f["xrfgpu"].attrs["provenance"])
    assert prov["parameters"]["normalize"] == "us_ic"


def test_folder_with_a_licence_file_restores_and_says_what_it_skipped(tmp_path, count_map, capsys):
    folder = tmp_path / "hxn"
    folder.mkdir()
    for name in ("Fe_K", "Cr_K"):
        tifffile.imwrite(folder / f"SUM_maps_XRF_{name}.tiff", count_map)
    (folder / "LICENSE.txt").write_text("MIT License\n")
    out = tmp_path / "o.tif"
    assert main(["restore", str(folder), "-o", str(out), "--psf-sigma", "2px", "--iterations", "3"]) == 0
    err = capsys.readouterr().err
    assert err.count("skipped") == 1 and "LICENSE.txt" in err
    with tifffile.TiffFile(out) as tif:
        assert tif.imagej_metadata["Labels"] == ["Cr_K", "Fe_K"]


def test_auto_background_of_a_fitted_map_stays_in_its_range(tmp_path, count_map):
    """Fitted maps (HXN, PyXRF, MAPS) are not counts: no Poisson correction in the map's units."""
    fitted = count_map * 1.3e-4 + 1e-5  # values 0.004-0.05 like the HXN Si map, not integers
    np.save(tmp_path / "si.npy", fitted)
    restored, prov = _restore(tmp_path, tmp_path / "si.npy", "o.h5", "--iterations", "10")
    b = prov["parameters"]["per_element"]["si"]["background"]
    smooth_low = np.percentile(fitted, 2.0)
    assert 0.5 * smooth_low < b < fitted.max()  # the Poisson formula gave about 0.05 + sqrt(0.05)/5·2 > max
    assert restored.max() > 0.5 * (fitted.max() - b)
