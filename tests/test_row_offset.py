"""Every other line offset along the scan (a bidirectional scan's misregistration): found, said, undone.

References: the offset put in (``numpy.roll`` of the odd lines by a known number of pixels), the map
without it, and the real HXN Fe map (MIT; ``tests/data/hxn_nanoparticles_xrf``).
"""

import json
import warnings
from pathlib import Path

import array_api_strict
import h5py
import numpy as np
import pytest

import xrfgpu
from xrfgpu import phantom
from xrfgpu.cli import main
from xrfgpu.io import read_maps
from xrfgpu.row_offset import ScanMisregistrationWarning, alternate_row_offset, realign_alternate_lines

HXN_FE = Path(__file__).parent / "data" / "hxn_nanoparticles_xrf" / "SUM_maps_XRF_Fe_K.tiff"


def _offset_rows(image, d):
    out = image.copy()
    out[1::2] = np.roll(image[1::2], d, axis=1)
    return out


@pytest.mark.parametrize("sigma", [1.0, 2.0, 4.0])
def test_maps_without_the_fault_are_left_alone(sigma):
    for seed in range(4):
        counts, _, _ = phantom.observe((128, 128), sigma, seed=seed)
        assert alternate_row_offset(counts) is None
        assert alternate_row_offset(counts.T) is None


@pytest.mark.parametrize("xp", [np, array_api_strict], ids=["numpy", "strict"])
@pytest.mark.parametrize("d", [1, -1, 2, 3])
def test_the_offset_is_measured_along_rows_and_columns(xp, d):
    counts, _, _ = phantom.observe((128, 128), 1.0, seed=5)
    by_rows = alternate_row_offset(xp.asarray(_offset_rows(counts, d)))
    by_columns = alternate_row_offset(xp.asarray(_offset_rows(counts.T, d).T))
    assert by_rows.axis == "rows" and by_rows.offset_px == pytest.approx(d, abs=0.2)
    assert by_columns.axis == "columns" and by_columns.offset_px == pytest.approx(d, abs=0.2)


def test_the_real_fe_map_and_its_misregistered_copy():
    fe = np.asarray(read_maps(HXN_FE).maps["Fe_K"], dtype=np.float64)
    assert alternate_row_offset(fe) is None
    assert alternate_row_offset(_offset_rows(fe, 1)).offset_px == pytest.approx(1.0, abs=0.1)


def test_realigning_undoes_the_offset_and_marks_what_it_uncovers():
    counts, _, _ = phantom.observe((64, 80), 1.0, seed=1)
    for d in (2, -3):
        realigned = realign_alternate_lines(_offset_rows(counts, d), d)
        missing = np.isnan(realigned)
        assert missing.sum() == 32 * abs(d) and not missing[0::2].any()
        np.testing.assert_array_equal(realigned[~missing], counts[~missing])  # the counts themselves, not resampled
    columns = realign_alternate_lines(_offset_rows(counts.T, 1).T, 1, axis=1)
    np.testing.assert_array_equal(columns[~np.isnan(columns)], counts[~np.isnan(columns)])
    with pytest.raises(ValueError, match="whole number"):
        realign_alternate_lines(counts, 0.5)


@pytest.mark.slow
def test_restore_warns_records_and_the_realigned_map_reads_the_clean_sigma():
    """On the real Fe map odd rows rolled by 1 px took σ from 0.45 px (uncertain) to 1.15 px called reliable
    (QA helper 78); the warning says so, and the realigned map reads the clean map's σ again."""
    fe = np.asarray(read_maps(HXN_FE).maps["Fe_K"], dtype=np.float32)
    shifted = _offset_rows(fe, 1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, info = xrfgpu.restore(shifted, return_info=True)
        _, info_clean = xrfgpu.restore(fe, return_info=True)
        _, info_realigned = xrfgpu.restore(realign_alternate_lines(shifted, 1).astype(np.float32),
                                           return_info=True)
    said = [w for w in caught if issubclass(w.category, ScanMisregistrationWarning)]
    assert len(said) == 1 and "odd rows lie +0.99 px" in str(said[0].message)
    assert info["alternate_line_offset"] == {"axis": "rows", "offset_px": pytest.approx(1.0, abs=0.1),
                                             "z": pytest.approx(info["alternate_line_offset"]["z"])}
    json.dumps(info["alternate_line_offset"])
    assert "alternate_line_offset" not in info_clean and "alternate_line_offset" not in info_realigned
    assert info_realigned["sigma_estimated"] == pytest.approx(info_clean["sigma_estimated"], rel=0.05)


def test_the_command_line_says_so_once_and_records_it(tmp_path, capsys):
    counts, _, _ = phantom.observe((96, 96), 1.0, seed=2)
    np.save(tmp_path / "map.npy", _offset_rows(counts.astype(np.float64), 2))
    out = tmp_path / "out.h5"
    assert main(["restore", str(tmp_path / "map.npy"), "-o", str(out), "--psf-sigma", "1px", "--iterations", "5"]) == 0
    err = capsys.readouterr().err
    assert err.count("the odd rows lie +") == 1 and "in Python: xrfgpu.row_offset.realign_alternate_lines(map, 2)" in err
    with h5py.File(out, "r") as f:
        record = json.loads(f["xrfgpu"].attrs["provenance"])["parameters"]["per_element"]["map"]
    assert record["alternate_line_offset"]["offset_px"] == pytest.approx(2.0, abs=0.2)


def test_a_flat_map_has_no_offset():
    assert alternate_row_offset(np.full((64, 64), 3.5)) is None
    ramp = np.add.outer(np.arange(64.0), np.zeros(64))  # every row flat: every lag ties
    assert alternate_row_offset(ramp) is None
