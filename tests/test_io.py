"""Readers and writers of xrfgpu.io, on files written by the real libraries of each format."""

import hashlib
import json
import os

import h5py
import numpy as np
import pytest
import tifffile

from xrfgpu.io import ElementMaps, MapFileError, match_name, read_maps, sidecar_path, write_maps
from xrfgpu.output_safety import UnsafeOutputError

SHAPE = (12, 17)  # rows ≠ cols so a transpose cannot pass


def _maps(n=3, seed=0):
    rng = np.random.default_rng(seed)
    names = ["Fe_K", "Ca_K", "Si_K"][:n]
    return {name: rng.uniform(0, 100, SHAPE).astype(np.float32) for name in names}


def _digest(path):
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


# ------------------------------------------------------------------ readers of third-party files


def test_imagej_tiff_stack_names_and_pixel_size(tmp_path):
    maps = _maps()
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, np.stack(list(maps.values())), imagej=True, resolution=(1 / 5.0, 1 / 5.0),
                     metadata={"axes": "ZYX", "Labels": list(maps), "unit": "um"})
    before = _digest(path)
    em = read_maps(path)
    assert em.names == list(maps)
    assert em.pixel_size_um == pytest.approx(5.0)
    for name, m in maps.items():
        np.testing.assert_array_equal(em.maps[name], m)
    assert _digest(path) == before


def test_single_page_tiff_takes_the_file_name(tmp_path):
    m = _maps(1)["Fe_K"]
    tifffile.imwrite(tmp_path / "Fe-Ka.tiff", m)
    em = read_maps(tmp_path / "Fe-Ka.tiff")
    assert em.names == ["Fe-Ka"] and em.pixel_size_um is None
    np.testing.assert_array_equal(em.maps["Fe-Ka"], m)


def test_pyxrf_layout_with_scalers_and_normalisation(tmp_path):
    maps = _maps()
    path = tmp_path / "scan2D_1.h5"
    i0 = np.random.default_rng(3).uniform(0.5, 2.0, SHAPE)
    with h5py.File(path, "w") as f:
        f["xrfmap/detsum/xrf_fit"] = np.stack(list(maps.values()))
        f["xrfmap/detsum/xrf_fit_name"] = np.array([n.encode() for n in maps])
        f["xrfmap/det1/xrf_fit"] = 2 * np.stack(list(maps.values()))
        f["xrfmap/det1/xrf_fit_name"] = np.array([n.encode() for n in maps])
        f["xrfmap/scalers/val"] = np.stack([i0, np.ones(SHAPE)], axis=-1)
        f["xrfmap/scalers/name"] = np.array([b"i0", b"time"])
        f["xrfmap/positions/pos"] = np.stack(np.meshgrid(np.arange(SHAPE[1]) * 0.01, np.arange(SHAPE[0]) * 0.01)[::1])
        f["xrfmap/positions/name"] = np.array([b"x_pos", b"y_pos"])
        f.create_group("xrfmap/scan_metadata").attrs["scan_id"] = 1
    before = _digest(path)
    em = read_maps(path)
    assert em.names == list(maps) and em.metadata["layout"] == "pyxrf"
    assert em.metadata["dataset"] == "xrfmap/detsum/xrf_fit"
    np.testing.assert_array_equal(em.maps["Ca_K"], maps["Ca_K"])
    np.testing.assert_array_equal(em.scalers["i0"], i0)
    det1 = read_maps(path, dataset="det1")
    np.testing.assert_array_equal(det1.maps["Si_K"], 2 * maps["Si_K"])
    norm = read_maps(path, normalize="i0")
    np.testing.assert_allclose(norm.maps["Fe_K"], maps["Fe_K"] / i0 * i0.mean(), rtol=1e-6)
    with pytest.raises(MapFileError, match="scaler 'I1' not found"):
        read_maps(path, normalize="I1")
    with pytest.raises(MapFileError, match="det9"):
        read_maps(path, dataset="det9")
    assert _digest(path) == before


def test_aps_maps_layouts(tmp_path):
    maps = _maps()
    stack = np.stack(list(maps.values()))
    path = tmp_path / "2xfm_0008.mda.h5"
    with h5py.File(path, "w") as f:
        f["MAPS/XRF_Analyzed/Fitted/Counts_Per_Sec"] = stack
        f["MAPS/XRF_Analyzed/Fitted/Channel_Names"] = np.array([b"Fe", b"Ca", b"Si"])
        f["MAPS/XRF_Analyzed/ROI/Counts_Per_Sec"] = stack + 1
        f["MAPS/XRF_Analyzed/ROI/Channel_Names"] = np.array([b"Fe", b"Ca", b"Si"])
        f["MAPS/Scalers/Values"] = np.ones((2,) + SHAPE)
        f["MAPS/Scalers/Names"] = np.array([b"SRcurrent", b"us_ic"])
        f["MAPS/Scan/x_axis"] = np.arange(SHAPE[1]) * 0.002
    em = read_maps(path)
    assert em.names == ["Fe", "Ca", "Si"] and em.metadata["layout"] == "maps"
    np.testing.assert_array_equal(em.maps["Si"], maps["Si_K"])
    assert set(em.scalers) == {"SRcurrent", "us_ic"}
    np.testing.assert_array_equal(read_maps(path, dataset="ROI").maps["Fe"], maps["Fe_K"] + 1)
    legacy = tmp_path / "legacy.h5"
    with h5py.File(legacy, "w") as f:
        f["MAPS/XRF_fits"] = stack
        f["MAPS/channel_names"] = np.array([b"Fe", b"Ca", b"Si"])
    np.testing.assert_array_equal(read_maps(legacy).maps["Ca"], maps["Ca_K"])


def test_csv_folder_as_benchtop_export(tmp_path):
    maps = _maps()
    folder = tmp_path / "export"
    folder.mkdir()
    for i, (name, m) in enumerate(maps.items()):
        sep = [",", ";", "\t"][i]
        header = "Bruker M4 TORNADO\nElement map\n" if i == 0 else ""
        np.savetxt(folder / f"sample7_{name}.{'csv' if i < 2 else 'txt'}", m, delimiter=sep, fmt="%.6f", header=header,
                   comments="")
    em = read_maps(folder)
    assert sorted(em.names) == sorted(maps)  # the common prefix 'sample7_' is removed
    for name, m in maps.items():
        np.testing.assert_allclose(em.maps[name], m, atol=1e-6)


def test_npy_npz(tmp_path):
    maps = _maps()
    np.save(tmp_path / "Fe.npy", maps["Fe_K"])
    assert read_maps(tmp_path / "Fe.npy").names == ["Fe"]
    np.savez(tmp_path / "maps.npz", **maps, pixel_size_um=np.float64(2.5))
    em = read_maps(tmp_path / "maps.npz")
    assert em.names == list(maps) and em.pixel_size_um == 2.5
    np.savez(tmp_path / "stack.npz", maps=np.stack(list(maps.values())), names=np.array(list(maps)))
    np.testing.assert_array_equal(read_maps(tmp_path / "stack.npz").maps["Si_K"], maps["Si_K"])


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.with_suffix(".tif").write_bytes(b"not a tiff"), "cannot read|not a"),
        (lambda p: p.with_suffix(".csv").write_text("a,b\nc,d\n"), "no rows of numbers"),
        (lambda p: p.with_suffix(".csv").write_text("1,2,3\n4,5\n"), "line 2 has 2 values"),
        (lambda p: p.with_suffix(".xyz").write_text("1"), "unknown map format"),
        (lambda p: np.save(p.with_suffix(".npy"), np.zeros(5)), "neither a map"),
    ],
)
def test_bad_files_name_the_file_and_problem(tmp_path, make, message):
    base = tmp_path / "bad"
    make(base)
    path = next(tmp_path.iterdir())
    with pytest.raises(MapFileError, match=message) as info:
        read_maps(path)
    assert str(path) in str(info.value)


def test_unknown_hdf5_layout_and_missing_file(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["entry/data"] = np.zeros(SHAPE)
    with pytest.raises(MapFileError, match="layout not recognised.*entry"):
        read_maps(path)
    with pytest.raises(FileNotFoundError, match="nothere.tif"):
        read_maps(tmp_path / "nothere.tif")


# ------------------------------------------------------------------ writers


@pytest.mark.parametrize("name", ["out.tif", "out.h5", "out.npz", "out.npy", "outdir"])
def test_round_trip_keeps_names_shape_pixel_size_orientation(tmp_path, name):
    maps = _maps()
    em = ElementMaps(maps, pixel_size_um=7.5, metadata={"format": "test"})
    prov = {"method": "rl", "parameters": {"num_iter": 30}, "xrfgpu_version": "x"}
    written = write_maps(tmp_path / name, em, provenance=prov)
    back = read_maps(tmp_path / name)
    assert back.names == list(maps) and back.shape == SHAPE
    if name != "outdir":  # CSV text carries no pixel size; the sidecar inside the folder does
        assert back.pixel_size_um == pytest.approx(7.5)
    for k, m in maps.items():
        np.testing.assert_allclose(back.maps[k], m, rtol=1e-6)
    side = json.loads(sidecar_path(tmp_path / name).read_text())
    assert side["xrfgpu"]["provenance"]["parameters"] == {"num_iter": 30}
    assert side["xrfgpu"]["elements"] == list(maps)
    assert all(p.exists() for p in written)
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]  # no temporary files left


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_tiff_output_opens_in_plain_readers_with_names_and_pixel_size(tmp_path, n):
    """Open the TIFF as users do: tifffile.imread, scikit-image, tifffile's ImageJ metadata."""
    import skimage.io

    maps = {name: m for name, m in zip(["Fe_K", "Ca_K", "Si_K", "Cr_K", "Zn_K"],
                                       np.random.default_rng(n).uniform(0, 100, (5,) + SHAPE).astype(np.float32))}
    maps = dict(list(maps.items())[:n])
    expected = np.stack(list(maps.values())) if n > 1 else next(iter(maps.values()))
    em = ElementMaps(maps, pixel_size_um=0.15)
    path = tmp_path / "o.tif"
    write_maps(path, em, provenance={"method": "rl", "parameters": {"num_iter": 30}})
    np.testing.assert_array_equal(tifffile.imread(path), expected)
    sk = skimage.io.imread(path)
    if n in (3, 4):  # scikit-image's rule: a leading axis of 3 or 4 is RGB(A) and goes last
        sk = np.moveaxis(sk, -1, 0)
    np.testing.assert_array_equal(sk, expected)
    with tifffile.TiffFile(path) as tif:
        assert tif.is_imagej
        ij = tif.imagej_metadata
        labels = [ij["Labels"]] if isinstance(ij["Labels"], str) else ij["Labels"]
        assert labels == list(maps)
        assert ij["unit"] == "um"
        num, den = tif.pages[0].tags["XResolution"].value
        assert den / num == pytest.approx(0.15, rel=1e-9)  # µm per pixel
        assert tif.series[0].axes == ("CYX" if n > 1 else "YX")
        header = json.loads(ij["Info"])["xrfgpu"]  # provenance in ImageJ's Info entry, valid JSON
        assert header["provenance"]["parameters"] == {"num_iter": 30}
        assert tif.pages[0].tags["Software"].value.startswith("xrfgpu")
        assert not tif.pages[0].description.lstrip().startswith("{")  # no JSON for tifffile to take as 'shaped'
    back = read_maps(path)
    assert back.names == list(maps) and back.pixel_size_um == pytest.approx(0.15)
    assert back.metadata["provenance"]["method"] == "rl"


def test_hdf5_output_of_pyxrf_input_opens_as_pyxrf_with_provenance(tmp_path):
    em = ElementMaps(_maps(), pixel_size_um=10.0, metadata={"layout": "pyxrf"},
                     scalers={"i0": np.ones(SHAPE)})
    write_maps(tmp_path / "o.h5", em, provenance={"method": "rl", "parameters": {"a": 1}})
    with h5py.File(tmp_path / "o.h5", "r") as f:
        names = [n.decode() for n in f["xrfmap/detsum/xrf_fit_name"][()]]
        assert names == em.names
        np.testing.assert_allclose(f["xrfmap/detsum/xrf_fit"][1], em.maps["Ca_K"], rtol=1e-6)
        assert json.loads(f["xrfgpu"].attrs["provenance"])["parameters"] == {"a": 1}
        assert f["xrfmap/scalers/val"].shape == SHAPE + (1,)


def test_refuses_overwrite_and_writing_onto_input(tmp_path):
    em = ElementMaps(_maps(), pixel_size_um=1.0)
    out = tmp_path / "o.npz"
    write_maps(out, em)
    before = _digest(out)
    with pytest.raises(FileExistsError, match="exists; pass overwrite=True"):
        write_maps(out, em)
    assert _digest(out) == before
    write_maps(out, em.with_maps({"Zn_K": np.zeros(SHAPE)}), overwrite=True)
    assert read_maps(out).names == ["Zn_K"]
    src = read_maps(out)
    with pytest.raises(UnsafeOutputError, match="is the input file"):
        write_maps(out, src, overwrite=True)
    with pytest.raises(MapFileError, match="several|holds one map"):
        write_maps(tmp_path / "one.csv", em)


def test_element_maps_validation_and_matching():
    with pytest.raises(ValueError, match="shape"):
        ElementMaps({"a": np.zeros((2, 3)), "b": np.zeros((3, 2))})
    with pytest.raises(ValueError, match="2-D"):
        ElementMaps({"a": np.zeros(3)})
    with pytest.raises(ValueError, match="pixel_size_um"):
        ElementMaps({"a": np.zeros((2, 2))}, pixel_size_um=-1)
    names = ["Fe_K", "Ca_K", "Si_K", "Ca_L"]
    assert match_name("Fe-Ka", names) == "Fe_K"
    assert match_name("fe", names) == "Fe_K"
    assert match_name("Ca-Ka", names) == "Ca_K"
    with pytest.raises(KeyError, match="ambiguous"):
        match_name("Ca", names)
    with pytest.raises(KeyError, match="'Zn-Ka' not found.*available: Fe_K"):
        match_name("Zn-Ka", names)
    assert match_name("Fe-Ka", ["Fe", "Ca"]) == "Fe"  # MAPS names have no line


def test_umask_respected(tmp_path):
    em = ElementMaps(_maps(1), pixel_size_um=1.0)
    write_maps(tmp_path / "o.tif", em)
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "o.tif").stat().st_mode & 0o777 == 0o666 & ~mask


def _maps_v9_file(path, rows=9, cols=13):
    """A MAPS v9 file of the real layout (APS 2-ID-E axo_std.h5, smaller): legacy /MAPS datasets."""
    rng = np.random.default_rng(11)
    names = [b"Ca", b"Fe", b"Pt_L", b"s_i"]
    fits, roi, roi_plus = (rng.uniform(0, 5, (4, rows, cols)) for _ in range(3))
    scalers = rng.uniform(1e5, 3e5, (3, rows, cols))
    with h5py.File(path, "w") as f:
        f["MAPS/XRF_fits"], f["MAPS/XRF_roi"], f["MAPS/XRF_roi_plus"] = fits, roi, roi_plus
        f["MAPS/channel_names"] = np.array(names, dtype="S5")
        f["MAPS/channel_units"] = np.array([[b"cts/s"] * 4, [b"cts/s+"] * 4, [b"ug/cm^2"] * 3 + [b"cts/s"]], dtype="S7")
        f["MAPS/scalers"] = scalers
        f["MAPS/scaler_names"] = np.array([b"SRcurrent", b"us_ic", b"ds_ic"], dtype="S12")
        f["MAPS/scaler_units"] = np.array([b"mA", b"cts/s", b"cts/s"], dtype="S5")
        f["MAPS/x_axis"] = 5.475 + 0.01 * np.arange(cols)  # mm: 10 µm steps
        f["MAPS/y_axis"] = 13.83 + 0.01 * np.arange(rows)
        f["MAPS/mca_arr"] = np.zeros((8, rows, cols))
        f["MAPS/version"] = np.int32(9)
        f["exchange/images"] = np.zeros((2, rows, cols))
    return {"fits": fits, "roi": roi, "roi_plus": roi_plus, "scalers": scalers}


def test_maps_v9_pixel_size_datasets_scalers(tmp_path):
    path = tmp_path / "axo_small.h5"
    data = _maps_v9_file(path)
    before = _digest(path)
    em = read_maps(path)
    assert em.metadata["dataset"] == "MAPS/XRF_fits" and em.names == ["Ca", "Fe", "Pt_L", "s_i"]
    assert em.pixel_size_um == pytest.approx(10.0, rel=1e-9)  # from MAPS/x_axis in mm
    assert em.metadata["units"]["Fe"] == "ug/cm^2" and em.metadata["units"]["s_i"] == "cts/s"
    np.testing.assert_array_equal(em.maps["Fe"], data["fits"][1])
    for query, key in [("XRF_roi", "roi"), ("MAPS/XRF_roi", "roi"), ("xrf_roi_plus", "roi_plus"),
                       ("MAPS/XRF_fits", "fits")]:
        np.testing.assert_array_equal(read_maps(path, dataset=query).maps["Pt_L"], data[key][2])
    with pytest.raises(MapFileError, match=r"'Fitted' not found; available: XRF_fits \(MAPS/XRF_fits\)"):
        read_maps(path, dataset="Fitted")
    norm = read_maps(path, normalize="us_ic")
    us = data["scalers"][1]
    np.testing.assert_allclose(norm.maps["Ca"], data["fits"][0] * us.mean() / us, rtol=1e-12)
    assert _digest(path) == before


def test_maps_v9_in_maps_v9_out(tmp_path):
    path = tmp_path / "axo_small.h5"
    data = _maps_v9_file(path)
    em = read_maps(path, dataset="XRF_roi").select(["Pt_L", "Ca"])
    restored = em.with_maps({n: m * 0.5 for n, m in em.maps.items()})  # stands in for a restoration
    write_maps(tmp_path / "out.h5", restored, provenance={"method": "rl"})
    with h5py.File(tmp_path / "out.h5", "r") as f:
        out = f["MAPS/XRF_roi"]
        assert out.dtype == np.float64  # the input's dtype, not float32
        np.testing.assert_array_equal(out[0], 0.5 * data["roi"][2])
        np.testing.assert_array_equal(out[1], 0.5 * data["roi"][0])
        assert [n.decode() for n in f["MAPS/channel_names"][()]] == ["Pt_L", "Ca"]
        units = f["MAPS/channel_units"][()]
        assert units.shape == (3, 2) and units[0, 0] == b"cts/s" and units[2, 0] == b"ug/cm^2"
        np.testing.assert_array_equal(f["MAPS/x_axis"][()], 5.475 + 0.01 * np.arange(13))
        assert [n.decode() for n in f["MAPS/scaler_names"][()]] == ["SRcurrent", "us_ic", "ds_ic"]
        np.testing.assert_array_equal(f["MAPS/scalers"][()], data["scalers"])
        assert "XRF_Analyzed" not in f["MAPS"]  # no counts/s label on µg/cm² maps
    back = read_maps(tmp_path / "out.h5")
    assert back.names == ["Pt_L", "Ca"] and back.pixel_size_um == pytest.approx(10.0)
    write_maps(tmp_path / "again.h5", back)  # a restored file restored again keeps the MAPS shape
    with h5py.File(tmp_path / "again.h5", "r") as f:
        assert f["MAPS/XRF_roi"].dtype == np.float64
        np.testing.assert_array_equal(f["MAPS/XRF_roi"][1], 0.5 * data["roi"][0])


def test_pyxrf_in_pyxrf_out_keeps_detector_group_and_dtype(tmp_path):
    path = tmp_path / "scan2D_9.h5"
    fit = np.random.default_rng(2).uniform(0, 9, (2,) + SHAPE)
    with h5py.File(path, "w") as f:
        f["xrfmap/det1/xrf_fit"] = fit  # float64
        f["xrfmap/det1/xrf_fit_name"] = np.array([b"Fe_K", b"Ca_K"])
    em = read_maps(path, dataset="det1")
    write_maps(tmp_path / "out.h5", em.with_maps({n: m + 1 for n, m in em.maps.items()}))
    with h5py.File(tmp_path / "out.h5", "r") as f:
        assert f["xrfmap/det1/xrf_fit"].dtype == np.float64
        np.testing.assert_array_equal(f["xrfmap/det1/xrf_fit"][()], fit + 1)
        assert [n.decode() for n in f["xrfmap/det1/xrf_fit_name"][()]] == ["Fe_K", "Ca_K"]


def test_folder_skips_files_that_are_not_maps_and_names_match_single_files(tmp_path):
    """The HXN layout: SUM_maps_XRF_<El>_K.tiff files and a LICENSE.txt in one folder."""
    maps = _maps()
    folder = tmp_path / "hxn"
    folder.mkdir()
    for name, m in maps.items():
        tifffile.imwrite(folder / f"SUM_maps_XRF_{name}.tiff", m)
    (folder / "LICENSE.txt").write_text("MIT License\n\nCopyright (c) 2022 someone\n")
    em = read_maps(folder)
    assert sorted(em.names) == sorted(maps)
    assert em.metadata["skipped"] == [{"file": "LICENSE.txt", "reason": "not a map (no rows of numbers found)"}]
    for name, m in maps.items():
        np.testing.assert_array_equal(em.maps[name], m)
        single = read_maps(folder / f"SUM_maps_XRF_{name}.tiff")
        assert single.names == [name]  # same name as inside the folder
    (folder / "LICENSE.txt").unlink()
    for p in folder.iterdir():
        p.unlink()
    (folder / "notes.txt").write_text("nothing here\n")
    with pytest.raises(MapFileError, match="no readable maps.*notes.txt"):
        read_maps(folder)


@pytest.mark.parametrize("stem, name", [("SUM_maps_XRF_Fe_K", "Fe_K"), ("sample7-Ca-Ka", "Ca-Ka"),
                                        ("scan12_Fe", "Fe"), ("Fe-Ka", "Fe-Ka"), ("S", "S"), ("map_3", "map_3"),
                                        ("Pt_L", "Pt_L"), ("overview", "overview"), ("XRF_Zn_Kb1", "Zn_Kb1"),
                                        ("Cr", "Cr")])
def test_element_name_from_file_name(stem, name):
    from xrfgpu.io import element_name_from_stem

    assert element_name_from_stem(stem) == name


def test_tiff_from_earlier_xrfgpu_with_json_description_still_reads(tmp_path):
    """Files xrfgpu wrote before ImageJ hyperstacks: JSON page description, PageName tags, pixels per cm."""
    maps = _maps(2)
    path = tmp_path / "old.tif"
    header = {"xrfgpu": {"elements": list(maps), "pixel_size_um": 4.0, "provenance": {"method": "rl"}}}
    with tifffile.TiffWriter(path) as tw:
        for i, (name, m) in enumerate(maps.items()):
            tw.write(m, description=json.dumps(header) if i == 0 else json.dumps({"xrfgpu": {"element": name}}),
                     metadata=None, resolution=(1e4 / 4.0, 1e4 / 4.0), resolutionunit="CENTIMETER",
                     extratags=[(285, "s", 0, name, True)])
    em = read_maps(path)
    assert em.names == list(maps) and em.pixel_size_um == 4.0
    assert em.metadata["provenance"]["method"] == "rl"
    np.testing.assert_array_equal(em.maps["Ca_K"], maps["Ca_K"])


def test_folder_mixing_bare_and_prefixed_element_names(tmp_path):
    maps = _maps(2)
    np.savetxt(tmp_path / "Fe_K.csv", maps["Fe_K"], delimiter=",")
    np.savetxt(tmp_path / "scan7_Ca_K.csv", maps["Ca_K"], delimiter=",")
    assert sorted(read_maps(tmp_path).names) == ["Ca_K", "Fe_K"]
