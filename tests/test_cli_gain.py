"""``xrfgpu restore --gain``: a fitted map's effective Poisson gain given instead of measured.

A window inside the HXN particle aggregate (``tests/data/hxn_nanoparticles_xrf``, MIT, see its
README) has no block of flat ground, so the gain measured on it is the texture's, tens to hundreds
of times the whole map's. The remedy is the whole map's gain, which the library takes as
``restore(map, gain=)`` and the command line as ``--gain``.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

import xrfgpu
from xrfgpu.background import estimate_gain
from xrfgpu.cli import main

FE = Path(__file__).parent / "data" / "hxn_nanoparticles_xrf" / "SUM_maps_XRF_Fe_K.tiff"


def _record(out):
    return json.loads(Path(str(out) + ".json").read_text())["xrfgpu"]["provenance"]["parameters"]


@pytest.fixture(scope="module")
def crop(tmp_path_factory):
    fe = tifffile.imread(FE).astype(np.float32)
    path = tmp_path_factory.mktemp("crop") / "Fe_K.tif"
    tifffile.imwrite(path, fe[56:104, 56:104])
    return path, fe


def test_a_crop_restored_with_the_whole_maps_gain_is_the_librarys_result(tmp_path, crop):
    path, fe = crop
    whole = float(estimate_gain(fe.astype(np.float64)))
    window = tifffile.imread(path)
    # the window alone measures some of the texture's variance: its own gain is well above the whole map's
    # (2.7× with the lower-quartile clip; above 10× with the median clip before it)
    assert float(estimate_gain(window.astype(np.float64))) > 2 * whole
    out = tmp_path / "o.tif"
    assert main(["restore", str(path), "-o", str(out), "--psf-sigma", "0.45px", "--gain", repr(whole), "-q"]) == 0
    # the reference: the library's front door told the same gain, background and σ
    entry = _record(out)["per_element"]["Fe_K"]
    expected = xrfgpu.restore(window, sigma=0.45, gain=whole, background=entry["background"])
    assert np.allclose(tifffile.imread(out), expected, rtol=1e-5, atol=1e-6 * float(np.max(expected)))
    assert entry["gain"] == pytest.approx(whole)
    assert entry["gain_note"] == "given with --gain"
    assert _record(out)["gain"] == repr(whole)


def test_without_gain_the_record_says_it_was_measured(tmp_path, crop):
    path, _ = crop
    out = tmp_path / "o.tif"
    assert main(["restore", str(path), "-o", str(out), "--psf-auto", "-q"]) == 0
    entry = _record(out)["per_element"]["Fe_K"]
    assert "gain_note" not in entry and entry["gain_spread"] > 0
    assert entry["gain"] == pytest.approx(float(estimate_gain(tifffile.imread(path).astype(np.float64))), rel=1e-6)


def test_a_gain_per_element_and_one_for_all_leave_count_maps_at_one(tmp_path):
    rng = np.random.default_rng(0)
    counts = rng.poisson(50.0, (64, 64)).astype(np.float32)
    fitted = (3e-4 * rng.poisson(80.0, (64, 64))).astype(np.float32)
    folder = tmp_path / "scan"
    folder.mkdir()
    tifffile.imwrite(folder / "scan_Ca_K.tif", counts)
    tifffile.imwrite(folder / "scan_Fe_K.tif", fitted)
    for option in ("3e-4", "Fe=3e-4"):
        out = tmp_path / f"o{option.replace('=', '')}.tif"
        assert main(["restore", str(folder), "-o", str(out), "--psf-sigma", "1px", "--iterations", "3",
                     "--gain", option, "-q"]) == 0
        entries = _record(out)["per_element"]
        assert entries["Fe_K"]["gain"] == pytest.approx(3e-4) and entries["Ca_K"]["gain"] == 1.0


@pytest.mark.parametrize(("option", "words"), [("abc", "not a number"), ("-1", "> 0"), ("0", "> 0"),
                                               ("nan", "finite"), ("Fe=1e-4,Cr", "NAME=VALUE")])
def test_a_bad_gain_is_refused_naming_the_option(tmp_path, crop, capsys, option, words):
    out = tmp_path / "o.tif"
    assert main(["restore", str(crop[0]), "-o", str(out), "--psf-sigma", "1px", "--gain", option]) == 2
    err = capsys.readouterr().err
    assert "--gain" in err and words in err and "Traceback" not in err
    assert not out.exists()


def test_a_gain_named_for_a_count_map_is_refused_and_a_stray_entry_warned(tmp_path, capsys):
    counts = np.random.default_rng(1).poisson(50.0, (64, 64)).astype(np.float32)
    path = tmp_path / "Ca_K.tif"
    tifffile.imwrite(path, counts)
    assert main(["restore", str(path), "-o", str(tmp_path / "o.tif"), "--psf-sigma", "1px", "--iterations", "2",
                 "--gain", "Ca=0.5"]) != 0
    assert "count map" in capsys.readouterr().err
    assert main(["restore", str(path), "-o", str(tmp_path / "p.tif"), "--psf-sigma", "1px", "--iterations", "2",
                 "--gain", "Cr=0.5"]) == 0
    assert "--gain entry 'Cr' matches none" in capsys.readouterr().err
