"""Sixth QA pass (28 November) on the readers and writers of xrfgpu.io.

Every input is written the way a user's tool writes it (tifffile with ImageJ metadata, h5py in the PyXRF
and MAPS layouts, the exact text pandas' ``DataFrame.to_csv`` writes) and every output is opened the way
users open it (tifffile, h5py, numpy.loadtxt); the expectations are the arrays written, not xrfgpu's own
output. Each test failed before its fix.
"""

import json

import h5py
import numpy as np
import pytest
import tifffile

from xrfgpu.cli import main
from xrfgpu.io import ElementMaps, MapFileError, MapReadWarning, read_maps, write_maps

SHAPE = (12, 17)  # rows ≠ cols so a transpose cannot pass


def _stack(n, seed=0):
    return np.random.default_rng(seed).uniform(1, 100, (n,) + SHAPE).astype(np.float32)


# ------------------------------------------------------------------ 1. repeated map names


def test_imagej_labels_that_repeat_keep_every_map(tmp_path):
    # two detector channels both labelled Fe_K: the second used to replace the first under 'Fe_K', so one
    # map was lost and 'Fe_K' held the Cr page
    st = _stack(3)
    path = tmp_path / "ij_dup.tif"
    tifffile.imwrite(path, st, imagej=True, metadata={"axes": "CYX", "Labels": ["Fe_K", "Fe_K", "S_K"]})
    with pytest.warns(MapReadWarning, match=r"'Fe_K' is given to 2 maps \(positions 0, 1"):
        em = read_maps(path)
    assert em.names == ["Fe_K", "Fe_K_2", "S_K"]
    for k, name in enumerate(em.names):
        np.testing.assert_array_equal(em.maps[name], st[k])
    np.testing.assert_array_equal(em["Fe_K"], st[0])
    assert em.metadata["renamed"] == [{"name": "Fe_K", "position": 1, "as": "Fe_K_2"}]


def test_pyxrf_repeated_xrf_fit_name_keeps_every_map(tmp_path):
    st = _stack(4)
    path = tmp_path / "pyxrf_dup.h5"
    with h5py.File(path, "w") as f:
        f["xrfmap/detsum/xrf_fit"] = st
        f["xrfmap/detsum/xrf_fit_name"] = np.array([b"Fe_K", b"Fe_K", b"S_K", b"Fe_K"])
    with pytest.warns(MapReadWarning, match=r"'Fe_K' is given to 3 maps \(positions 0, 1, 3"):
        em = read_maps(path)
    assert em.names == ["Fe_K", "Fe_K_2", "S_K", "Fe_K_3"]
    for k, name in enumerate(em.names):
        np.testing.assert_array_equal(em.maps[name], st[k])
    assert [r["position"] for r in em.metadata["renamed"]] == [1, 3]


def test_maps_v9_repeated_channel_name_keeps_every_map_and_its_unit(tmp_path):
    st = np.random.default_rng(1).uniform(0, 5, (3,) + SHAPE)
    path = tmp_path / "axo_dup.h5"
    with h5py.File(path, "w") as f:
        f["MAPS/XRF_fits"] = st
        f["MAPS/channel_names"] = np.array([b"Ca", b"Ca", b"Fe"])
        f["MAPS/channel_units"] = np.array([[b"cts/s"] * 3, [b"cts/s"] * 3, [b"ug/cm^2", b"cts/s", b"ug/cm^2"]])
        f["MAPS/x_axis"] = np.arange(SHAPE[1]) * 0.01
        f["MAPS/y_axis"] = np.arange(SHAPE[0]) * 0.01
    with pytest.warns(MapReadWarning, match="'Ca' is given to 2 maps"):
        em = read_maps(path, dataset="XRF_fits")
    assert em.names == ["Ca", "Ca_2", "Fe"]
    for k, name in enumerate(em.names):
        np.testing.assert_array_equal(em.maps[name], st[k])
    assert em.metadata["units"] == {"Ca": "ug/cm^2", "Ca_2": "cts/s", "Fe": "ug/cm^2"}


def test_npz_stack_with_repeated_names_keeps_every_map(tmp_path):
    st = _stack(2)
    path = tmp_path / "dup.npz"
    np.savez(path, maps=st, names=np.array(["Fe_K", "Fe_K"]))
    with pytest.warns(MapReadWarning, match="'Fe_K'"):
        em = read_maps(path)
    np.testing.assert_array_equal(em.maps["Fe_K"], st[0])
    np.testing.assert_array_equal(em.maps["Fe_K_2"], st[1])


def test_folder_with_two_files_for_one_map_name_is_refused_naming_both(tmp_path):
    # Fe_K.csv and Fe_K.tif: the .tif replaced the .csv in silence
    st = _stack(3)
    folder = tmp_path / "folder"
    folder.mkdir()
    np.savetxt(folder / "Fe_K.csv", st[0], delimiter=",")
    tifffile.imwrite(folder / "Fe_K.tif", st[1])
    tifffile.imwrite(folder / "S_K.tif", st[2])
    with pytest.raises(MapFileError, match=r"'Fe_K\.csv' and 'Fe_K\.tif' both give the map 'Fe_K'"):
        read_maps(folder)


def test_restore_of_a_stack_with_repeated_labels_writes_every_map(tmp_path, capsys):
    st = _stack(3, seed=2)
    path = tmp_path / "ij_dup.tif"
    tifffile.imwrite(path, st, imagej=True, metadata={"axes": "CYX", "Labels": ["Fe_K", "Fe_K", "S_K"]})
    out = tmp_path / "out.tif"
    # the command line says it in a Warning: line of its own (not Python's warning format)
    rc = main(["restore", str(path), "-o", str(out), "--psf-sigma", "1px", "--iterations", "2"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "Warning: input" in err and "'Fe_K' is given to 2 maps" in err and "MapReadWarning" not in err
    assert tifffile.imread(out).shape == (3,) + SHAPE
    with tifffile.TiffFile(out) as tif:
        assert list(tif.imagej_metadata["Labels"]) == ["Fe_K", "Fe_K_2", "S_K"]


# ------------------------------------------------------------------ 2. contiguous samples


def test_one_page_of_contiguous_samples_is_maps_along_the_last_axis(tmp_path):
    # axes YXS (12, 17, 5): read as 12 maps of 17 × 5 before
    st = _stack(5)
    path = tmp_path / "scan5.tif"
    tifffile.imwrite(path, np.moveaxis(st, 0, -1), photometric="minisblack", planarconfig="contig")
    with tifffile.TiffFile(path) as tif:
        assert tif.series[0].axes == "YXS"
    em = read_maps(path)
    assert len(em) == 5 and em.shape == SHAPE
    np.testing.assert_array_equal(em.stack(), st)


def test_three_contiguous_grey_samples_are_maps_and_an_rgb_photo_is_still_refused(tmp_path):
    st = _stack(3)
    grey = tmp_path / "three.tif"
    tifffile.imwrite(grey, np.moveaxis(st, 0, -1), photometric="minisblack", planarconfig="contig")
    np.testing.assert_array_equal(read_maps(grey).stack(), st)
    rgb = tmp_path / "photo.tif"
    tifffile.imwrite(rgb, np.zeros(SHAPE + (3,), np.uint8), photometric="rgb")
    with pytest.raises(MapFileError, match="RGB image"):
        read_maps(rgb)


# ------------------------------------------------------------------ 3. rectangular pixels


def test_rectangular_imagej_pixels_are_recorded_and_written_back(tmp_path):
    fe = _stack(1)[0]
    path = tmp_path / "scan_Fe_K.tif"
    tifffile.imwrite(path, fe, imagej=True, resolution=(1 / 0.15, 1 / 0.30), metadata={"unit": "um"})
    with pytest.warns(MapReadWarning, match="x step 0.15 µm, y step 0.3 µm: pixels are not square"):
        em = read_maps(path)
    assert em.pixel_size_um == pytest.approx(0.15)
    assert em.metadata["pixel_size_y_um"] == pytest.approx(0.30)
    assert "pixels are not square" in em.metadata["pixel_size_note"]
    out = tmp_path / "out.tif"
    write_maps(out, em)
    with tifffile.TiffFile(out) as tif:
        x, y = (tif.pages[0].tags[t].value for t in ("XResolution", "YResolution"))
        assert x[1] / x[0] == pytest.approx(0.15, rel=1e-6) and y[1] / y[0] == pytest.approx(0.30, rel=1e-6)
        assert json.loads(tif.imagej_metadata["Info"])["xrfgpu"]["metadata"]["pixel_size_y_um"] == pytest.approx(0.3)
    back = read_maps(out)  # xrfgpu's own output: the y step comes back with the note
    assert back.pixel_size_um == pytest.approx(0.15) and back.metadata["pixel_size_y_um"] == pytest.approx(0.3)
    write_maps(tmp_path / "out.h5", em)
    with h5py.File(tmp_path / "out.h5", "r") as f:
        assert json.loads(f["xrfgpu/input_metadata"][()])["pixel_size_y_um"] == pytest.approx(0.3)


def test_square_pixels_within_one_percent_give_no_note(tmp_path):
    path = tmp_path / "scan_Fe_K.tif"
    tifffile.imwrite(path, _stack(1)[0], imagej=True, resolution=(1 / 0.15, 1 / 0.1505), metadata={"unit": "um"})
    em = read_maps(path)  # the suite turns warnings into errors: none is raised
    assert em.pixel_size_um == pytest.approx(0.15) and "pixel_size_y_um" not in em.metadata


def test_maps_axes_with_different_steps_give_the_y_step(tmp_path):
    path = tmp_path / "rect.h5"
    with h5py.File(path, "w") as f:
        f["MAPS/XRF_roi"] = _stack(1).astype(np.float64)
        f["MAPS/channel_names"] = np.array([b"Fe"])
        f["MAPS/x_axis"] = 1.0 + np.arange(SHAPE[1]) * 0.002  # mm: 2 µm
        f["MAPS/y_axis"] = 3.0 + np.arange(SHAPE[0]) * 0.005  # 5 µm
    with pytest.warns(MapReadWarning, match="x step 2 µm, y step 5 µm"):
        em = read_maps(path)
    assert em.pixel_size_um == pytest.approx(2.0) and em.metadata["pixel_size_y_um"] == pytest.approx(5.0)


# ------------------------------------------------------------------ 4. pandas CSV


def _pandas_csv(path, a, index=True):
    """The text ``pandas.DataFrame(a).to_csv(path, index=index)`` writes (pandas is not a dependency)."""
    lines = [("," if index else "") + ",".join(str(c) for c in range(a.shape[1]))]
    for i, row in enumerate(a):
        lines.append((f"{i}," if index else "") + ",".join(repr(float(v)) for v in row))
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("index", [True, False])
def test_pandas_csv_header_and_index_are_dropped(tmp_path, index):
    fe = _stack(1)[0].astype(np.float64)
    path = tmp_path / "scan_Fe_K.csv"
    _pandas_csv(path, fe, index=index)
    with pytest.warns(MapReadWarning, match="pandas' DataFrame.to_csv"):
        em = read_maps(path)
    np.testing.assert_array_equal(em["Fe_K"], fe)
    assert em.metadata["csv_layout"] == ("pandas header and index dropped" if index else "pandas header dropped")


def test_pandas_csv_written_by_pandas_itself(tmp_path):
    pd = pytest.importorskip("pandas")
    fe = _stack(1)[0].astype(np.float64)
    pd.DataFrame(fe).to_csv(tmp_path / "a_Fe_K.csv")
    pd.DataFrame(fe).to_csv(tmp_path / "b_Fe_K.csv", index=False)
    for name in ("a_Fe_K.csv", "b_Fe_K.csv"):
        with pytest.warns(MapReadWarning):
            np.testing.assert_array_equal(read_maps(tmp_path / name)["Fe_K"], fe)


def test_pandas_csv_in_a_folder_is_dropped_and_noted(tmp_path):
    fe, s = _stack(2).astype(np.float64)
    _pandas_csv(tmp_path / "Fe_K.csv", fe)
    np.savetxt(tmp_path / "S_K.csv", s, delimiter=",")
    with pytest.warns(MapReadWarning, match="Fe_K.csv"):
        em = read_maps(tmp_path)
    np.testing.assert_array_equal(em["Fe_K"], fe)
    np.testing.assert_array_equal(em["S_K"], s)
    assert em.metadata["csv_layout"] == [{"file": "Fe_K.csv", "map": "Fe_K", "layout": "pandas header and index dropped"}]


def test_other_numeric_first_rows_are_data(tmp_path):
    a = _stack(1)[0].astype(np.float64)
    a[0] = np.arange(1, SHAPE[1] + 1)  # 1 … n, not pandas' 0 … n-1
    path = tmp_path / "Fe_K.csv"
    np.savetxt(path, a, delimiter=",")
    em = read_maps(path)  # no warning
    np.testing.assert_array_equal(em["Fe_K"], a)
    assert "csv_layout" not in em.metadata


# ------------------------------------------------------------------ 5. text output separators


@pytest.mark.parametrize("suffix, delimiter", [(".tsv", "\t"), (".txt", "\t"), (".dat", "\t"), (".asc", "\t"),
                                               (".csv", ",")])
def test_text_output_separator_follows_the_suffix(tmp_path, suffix, delimiter):
    fe = _stack(1)[0]
    out = tmp_path / f"fe{suffix}"
    write_maps(out, ElementMaps({"Fe_K": fe}))
    first = out.read_text().splitlines()[0]
    assert "," not in first or suffix == ".csv"
    back = np.loadtxt(out, delimiter=delimiter)
    np.testing.assert_allclose(back, fe, rtol=1e-6)
    if delimiter == "\t":  # whitespace-separated too: numpy.loadtxt without a delimiter reads it
        np.testing.assert_allclose(np.loadtxt(out), fe, rtol=1e-6)
    np.testing.assert_array_equal(read_maps(out)["Fe_K"], back)  # the reader reads it back identically


def test_restore_to_tsv_on_the_command_line(tmp_path, capsys):
    path = tmp_path / "scan_Fe_K.tif"
    tifffile.imwrite(path, _stack(1)[0])
    out = tmp_path / "fe.tsv"
    assert main(["restore", str(path), "-o", str(out), "--psf-sigma", "1px", "--iterations", "2", "-q"]) == 0
    assert np.loadtxt(out, delimiter="\t").shape == SHAPE


# ------------------------------------------------------------------ 6. TIFF resolution units


@pytest.mark.parametrize("kwargs, expected", [
    (dict(imagej=True, resolution=(1000, 1000), metadata={"unit": "cm"}), 10.0),  # ImageJ unit cm
    (dict(resolution=(2540, 2540), resolutionunit="INCH"), 10.0),  # 2540 dpi, no ImageJ
    (dict(resolution=(1000, 1000), resolutionunit="CENTIMETER"), 10.0),
    (dict(imagej=True, resolution=(72, 72), resolutionunit="INCH", metadata={"unit": "inch"}), None),  # Fiji PNG
    (dict(resolution=(72, 72), resolutionunit="INCH"), None),
    (dict(resolution=(96, 96), resolutionunit="INCH"), None),
])
def test_tiff_resolution_units(tmp_path, kwargs, expected):
    path = tmp_path / "scan_Fe_K.tif"
    tifffile.imwrite(path, _stack(1)[0], **kwargs)
    em = read_maps(path)
    if expected is None:
        assert em.pixel_size_um is None
        assert "screen default" in em.metadata["pixel_size_note"]
    else:
        assert em.pixel_size_um == pytest.approx(expected)


# ------------------------------------------------------------------ 7. OME-TIFF


def test_ome_tiff_channel_names_and_physical_size(tmp_path):
    names = ["Cr_K", "Fe_K", "P_K"]
    st = _stack(3)
    path = tmp_path / "scan.ome.tif"
    tifffile.imwrite(path, st, ome=True, metadata={"axes": "CYX", "Channel": {"Name": names},
                                                   "PhysicalSizeX": 150, "PhysicalSizeXUnit": "nm",
                                                   "PhysicalSizeY": 150, "PhysicalSizeYUnit": "nm"})
    em = read_maps(path)
    assert em.names == names
    assert em.pixel_size_um == pytest.approx(0.15)
    np.testing.assert_array_equal(em.stack(), st)
