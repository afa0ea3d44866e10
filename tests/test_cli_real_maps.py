"""The command line on real maps and on the mistakes real files carry: found by trying every feature.

Each test here is a bug found while restoring the real HXN nanoprobe TIFFs
(``tests/data/hxn_nanoparticles_xrf``, MIT, see its README) and the APS MAPS
v9 file of ``/work/shared/data`` with the installed command, as a user would.
Inputs are the real TIFFs or tiny files written here; outputs are opened with
the readers users have (tifffile, numpy) and the messages are read as a user
reads them: one line, naming the map and the problem, no Python warning text.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from xrfgpu.cli import main

HXN = Path(__file__).parent / "data" / "hxn_nanoparticles_xrf"
FE = HXN / "SUM_maps_XRF_Fe_K.tiff"


def _python_warning_text(err):
    """Traces of a raw Python warning on stderr: its category or a source path with a line number."""
    return any(text in err for text in ("SigmaUncertainWarning", "ComplexWarning", "UserWarning", ".py:"))


@pytest.mark.parametrize("psf_option", [["--psf-sigma", "1px"], ["--psf-auto"]])
@pytest.mark.parametrize("method", ["blind", "blind-rl"])
def test_blind_methods_refuse_a_psf_they_would_ignore(tmp_path, capsys, method, psf_option):
    # the blind methods estimate the PSF themselves: a given σ was silently ignored and the record
    # claimed "given with --psf-sigma" for a map restored with another σ
    out = tmp_path / "o.tif"
    assert main(["restore", str(FE), "-o", str(out), "--method", method, *psf_option]) == 2
    err = capsys.readouterr().err
    assert psf_option[0] in err and method in err and "estimate" in err
    assert not out.exists() and not Path(f"{out}.json").exists()


@pytest.mark.slow
def test_blind_rl_reports_an_uncertain_sigma_in_one_line_naming_the_map(tmp_path, capsys):
    # the HXN Fe map's σ is flagged uncertain by estimate_sigma; blind-rl printed it as a raw
    # Python warning (category, source file and line) instead of the CLI's one-line warning
    out = tmp_path / "o.tif"
    assert main(["restore", str(FE), "-o", str(out), "--method", "blind-rl", "--iterations", "3"]) == 0
    err = capsys.readouterr().err
    assert "Warning: Fe_K: estimate_sigma: σ is uncertain" in err
    assert not _python_warning_text(err), err
    restored = tifffile.imread(out)
    assert restored.shape == (160, 160) and np.isfinite(restored).all() and restored.max() > 0
    record = json.loads(Path(f"{out}.json").read_text())["xrfgpu"]["provenance"]
    assert record["psf"]["Fe_K"]["source"]["how"] == "blind (blind-rl)"
    assert record["psf"]["Fe_K"]["sigma_px"] > 0.05


@pytest.mark.slow
def test_psf_blind_reports_an_uncertain_sigma_in_one_line(tmp_path, capsys):
    args = ["psf", "blind", str(FE), "--pixel-size", "0.15um", "--map-only", "-o", str(tmp_path / "fe.toml"),
            "--figure", str(tmp_path / "fe.png")]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "Warning: Fe_K: estimate_sigma: σ is uncertain" in err
    assert not _python_warning_text(err), err


def test_psf_without_a_pixel_size_is_refused_before_the_work(tmp_path, capsys, monkeypatch):
    # the table holds σ in µm: without a pixel size the fit ran for seconds and then failed
    import xrfgpu.psf

    def fail(*args, **kwargs):
        raise AssertionError("estimate_sigma ran although the table could not be written")

    monkeypatch.setattr(xrfgpu.psf, "estimate_sigma", fail)
    assert main(["psf", "blind", str(FE), "--map-only", "-o", str(tmp_path / "fe.toml")]) == 2
    assert "--pixel-size" in capsys.readouterr().err


def _count_map(shape, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[: shape[0], : shape[1]]
    scene = 50.0 + 400.0 * np.exp(-((y - shape[0] / 2) ** 2 + (x - shape[1] / 3) ** 2) / 30.0)
    return rng.poisson(scene).astype(np.float32)


def test_an_all_zero_map_among_others_is_written_as_zeros(tmp_path, capsys):
    # MAPS XRF_roi_plus of the real AXO file has four all-zero channels (Pt_L, Pb_M, s_i, Bkgnd):
    # the whole run failed with "image is all zeros" and did not say which map
    src = tmp_path / "scan.npz"
    np.savez(src, Fe=_count_map((40, 40)), Pt_L=np.zeros((40, 40), np.float32), Ca=_count_map((40, 40), 1))
    out = tmp_path / "o.npz"
    assert main(["restore", str(src), "-o", str(out), "--psf-sigma", "1.5px", "--iterations", "5"]) == 0
    err = capsys.readouterr().err
    assert "Pt_L" in err and "all zeros" in err
    restored = np.load(out)
    assert list(restored.files[:3]) == ["Fe", "Pt_L", "Ca"]
    assert restored["Pt_L"].dtype == np.float32 and not restored["Pt_L"].any()
    for name in ("Fe", "Ca"):  # the others restored as usual: flux above the background kept
        assert restored[name].max() > 0
    record = json.loads(Path(f"{out}.json").read_text())["xrfgpu"]["provenance"]
    assert "all zeros" in record["parameters"]["per_element"]["Pt_L"]["skipped"]


@pytest.mark.parametrize("extra", [[], ["--joint"], ["--method", "wiener"]])
def test_an_all_zero_map_keeps_its_place_in_every_mode(tmp_path, capsys, extra):
    src = tmp_path / "scan.npz"
    np.savez(src, Fe=_count_map((40, 40)), Zn=np.zeros((40, 40), np.float32), Ca=_count_map((40, 40), 1))
    out = tmp_path / "o.tif"
    iterations = [] if "wiener" in extra else ["--iterations", "5"]  # a filter does not iterate (refused)
    assert main(["restore", str(src), "-o", str(out), "--psf-sigma", "1.5px", *iterations, *extra]) == 0
    with tifffile.TiffFile(out) as tif:
        assert tif.imagej_metadata["Labels"] == ["Fe", "Zn", "Ca"]
        stack = tif.asarray()
    assert not stack[1].any() and stack[0].max() > 0 and stack[2].max() > 0


def test_only_all_zero_maps_are_refused_naming_them(tmp_path, capsys):
    src = tmp_path / "scan.npz"
    np.savez(src, Pt_L=np.zeros((40, 40)), Pb_M=np.zeros((40, 40)))
    out = tmp_path / "o.npz"
    assert main(["restore", str(src), "-o", str(out), "--psf-sigma", "1px"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Pt_L" in err[0] and "Pb_M" in err[0] and "all zeros" in err[0]
    assert not out.exists()


def test_a_map_the_library_refuses_is_named(tmp_path, capsys):
    # the real MAPS file is 11 × 11: --psf-auto said "image must be at least 32×32 pixels to estimate σ"
    # without naming the file or the map
    src = tmp_path / "small.npz"
    np.savez(src, Fe=_count_map((11, 11)), Ca=_count_map((11, 11), 1))
    assert main(["restore", str(src), "-o", str(tmp_path / "o.npz"), "--psf-auto"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'Fe'" in err[0] and "32×32" in err[0] and "small.npz" in err[0]
    # and it says the way round on the command line (the library's message named restore()'s arguments)
    assert "--psf-sigma" in err[0] and "--psf-file" in err[0]


def test_a_complex_map_is_refused(tmp_path, capsys):
    # the command cast complex maps to real (numpy's ComplexWarning on stderr) and restored the real part
    src = tmp_path / "scan_Fe.npy"
    np.save(src, _count_map((40, 40)).astype(np.complex64))
    out = tmp_path / "o.npz"
    assert main(["restore", str(src), "-o", str(out), "--psf-sigma", "1px"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "complex" in err[0] and "'Fe'" in err[0]
    assert not out.exists()


def test_dataset_on_a_file_without_datasets_is_refused(tmp_path, capsys):
    # --dataset XRF_fits on a TIFF was silently ignored
    out = tmp_path / "o.npz"
    assert main(["restore", str(FE), "-o", str(out), "--psf-sigma", "1px", "--dataset", "XRF_fits"]) == 2
    err = capsys.readouterr().err
    assert "--dataset" in err and "HDF5" in err
    assert not out.exists()


def test_a_background_above_every_pixel_is_warned_about(tmp_path, capsys):
    # --background 1e6 on the HXN maps (fitted, largest value 19) restored every map to ~1e-10 in silence
    src = tmp_path / "scan.npz"
    np.savez(src, Fe=_count_map((40, 40)), Ca=_count_map((40, 40), 1) + 2000.0)
    out = tmp_path / "o.npz"
    assert main(["restore", str(src), "-o", str(out), "--psf-sigma", "1px", "--iterations", "3",
                 "--background", "1000"]) == 0
    err = capsys.readouterr().err
    assert "Warning: Fe: --background 1000 is at or above every pixel" in err
    assert "Ca:" not in err  # 2000 + counts: above the background, restored in silence


def test_clipped_negative_values_of_a_fitted_map_are_recorded(tmp_path):
    # a fitted map (not integer counts) is clipped at 0 before RL; the record did not say how much was clipped
    fitted = _count_map((40, 40)) * 0.01 - 0.45  # 0.01 map units per count, an offset: a fifth below zero
    negative = float(np.mean(fitted < 0))
    assert 0.02 < negative < 0.5
    src = tmp_path / "scan_Fe.npy"
    np.save(src, fitted.astype(np.float32))
    out = tmp_path / "o.npz"
    assert main(["restore", str(src), "-o", str(out), "--psf-sigma", "1px", "--iterations", "3", "-q"]) == 0
    record = json.loads(Path(f"{out}.json").read_text())["xrfgpu"]["provenance"]
    assert record["parameters"]["per_element"]["Fe"]["negative_fraction_clipped"] == pytest.approx(negative)


@pytest.mark.parametrize("name, data", [("channel_names", np.array([b"Fe", b"Ca", b"Zn"])),
                                        ("x_axis", np.linspace(5.475, 5.575, 11)),
                                        ("mca_4d", np.zeros((2, 3, 4, 5)))])
def test_streaming_a_dataset_that_is_no_map_is_refused_naming_it(tmp_path, name, data):
    # xrfgpu.dask.restore_zarr on the MAPS file's MAPS/channel_names said
    # "Chunks do not add up to shape. Got chunks=((1024, 1024),), shape=(23,)"
    import h5py

    from xrfgpu.dask import restore_zarr
    from xrfgpu.psf import gaussian

    src = tmp_path / "scan.h5"
    with h5py.File(src, "w") as f:
        f[f"MAPS/{name}"] = data
    with pytest.raises(ValueError, match=rf"dataset 'MAPS/{name}' of shape \({data.shape[0]},.*not a map"):
        restore_zarr(src, tmp_path / "o.zarr", gaussian(None, 1.0), "rl", dataset=f"MAPS/{name}", tile=16,
                     num_iter=2, background=0.0)
    assert not (tmp_path / "o.zarr").exists()


def test_a_bare_element_name_is_its_k_line_in_a_psf_table(tmp_path, capsys):
    # MAPS names its K-line maps by the element alone (Ti, Mn, Cu; Pt_L, Pb_M for the others): 'Ti' between
    # Ca-Ka and Fe-Ka of a PSF table was refused ("cannot read the X-ray line 'Ti'") instead of interpolated
    pytest.importorskip("xraylib")
    src = tmp_path / "scan.npz"
    np.savez(src, Fe=_count_map((40, 40)), Ti=_count_map((40, 40), 1))
    table = tmp_path / "psf.toml"
    table.write_text('pixel_size_um = 10.0\n\n[sigma_um]\n"Ca-Ka" = 11.0\n"Fe-Ka" = 12.0\n')
    out = tmp_path / "o.npz"
    assert main(["restore", str(src), "-o", str(out), "--psf-file", str(table), "--iterations", "3", "-q"]) == 0
    record = json.loads(Path(f"{out}.json").read_text())["xrfgpu"]["provenance"]
    ti = record["psf"]["Ti"]
    assert ti["source"]["line"] == "Ti-Ka" and 11.0 < ti["sigma_um"] < 12.0  # Ti-Ka (4.5 keV): Ca-Ka 3.7, Fe-Ka 6.4
    assert record["psf"]["Fe"]["sigma_um"] == 12.0


def test_an_empty_element_list_is_refused_naming_the_option(tmp_path, capsys):
    # --elements "," said "ElementMaps needs at least one map (a non-empty dict name -> 2-D array)"
    assert main(["restore", str(FE), "-o", str(tmp_path / "o.tif"), "--psf-sigma", "1px", "--elements", ","]) == 2
    err = capsys.readouterr().err
    assert "--elements" in err and "ElementMaps" not in err


def _legacy_maps_file(path):
    """A small MAPS v9 file: XRF_fits and XRF_roi (three times larger) of Fe and Ca, scalers, 10 µm steps."""
    import h5py

    fits = np.stack([_count_map((24, 24)), _count_map((24, 24), 1)]).astype(np.float64)
    us_ic = np.random.default_rng(5).uniform(0.5, 1.5, (24, 24))
    with h5py.File(path, "w") as f:
        f["MAPS/XRF_fits"] = fits
        f["MAPS/XRF_roi"] = 3.0 * fits + 7.0
        f["MAPS/channel_names"] = np.array([b"Fe", b"Ca"])
        f["MAPS/x_axis"] = np.arange(24) * 0.01
        f["MAPS/y_axis"] = np.arange(24) * 0.01
        f["MAPS/scalers"] = np.stack([us_ic, np.ones((24, 24))])
        f["MAPS/scaler_names"] = np.array([b"us_ic", b"ds_ic"])
    return f"{path}"


@pytest.mark.parametrize("option", [["--dataset", "XRF_roi"], ["--normalize", "us_ic"]])
def test_compare_reads_the_input_as_the_restoration_did(tmp_path, capsys, option):
    # a restoration of MAPS/XRF_roi_plus was compared with the file's default XRF_fits (and a --normalize
    # run with the raw maps): the flux ratio and the figure's "before" panel were of other maps
    import h5py

    src = _legacy_maps_file(tmp_path / "scan.h5")
    out = tmp_path / "o.h5"
    assert main(["restore", src, "-o", str(out), "--psf-sigma", "1px", "--iterations", "5", "--background", "0",
                 "-q", *option]) == 0
    capsys.readouterr()
    assert main(["compare", src, str(out), "--no-figure", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)["metrics"]
    with h5py.File(src, "r") as f:
        if option[0] == "--dataset":
            before = f["MAPS/XRF_roi"][()]
        else:  # MAPS normalisation keeps the scale: map × mean(I0) / I0
            us_ic = f["MAPS/scalers"][0]
            before = f["MAPS/XRF_fits"][()] * us_ic.mean() / us_ic
    with h5py.File(out, "r") as f:
        after = f["xrfgpu/maps"][()]
    for i, name in enumerate(["Fe", "Ca"]):
        assert metrics[name]["flux_ratio"] == pytest.approx(after[i].sum() / before[i].sum(), rel=1e-6)


@pytest.mark.slow
def test_a_tiff_hyperstack_of_two_stack_axes_is_refused(tmp_path, capsys):
    # an ImageJ ZCYX hyperstack (3 slices × 2 channels) was read as six maps map0..map5, in silence
    fe = tifffile.imread(FE)
    src = tmp_path / "zstack.tif"
    tifffile.imwrite(src, np.stack([np.stack([fe, fe])] * 3), imagej=True, metadata={"axes": "ZCYX"})
    out = tmp_path / "o.tif"
    assert main(["restore", str(src), "-o", str(out), "--psf-sigma", "1px"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ZCYX" in err[0] and "(3, 2, 160, 160)" in err[0]
    assert not out.exists()
    # one stack axis is a stack of element maps, as before
    tifffile.imwrite(tmp_path / "three.tif", np.stack([fe, fe, fe]), photometric="minisblack")
    assert main(["restore", str(tmp_path / "three.tif"), "-o", str(out), "--psf-sigma", "1px", "-q"]) == 0
    assert tifffile.imread(out).shape == (3, 160, 160)


def test_every_file_of_a_folder_that_is_not_read_is_named(tmp_path, capsys):
    # docs/command_line.md: "Files in a folder that are not maps ... are skipped with one line each on stderr"; a
    # README.md, an overview .png and an instrument .json beside the maps were skipped in silence
    folder = tmp_path / "scan"
    folder.mkdir()
    fe = tifffile.imread(FE)
    tifffile.imwrite(folder / "scan_Fe_K.tif", fe)
    tifffile.imwrite(folder / "scan_Cr_K.tif", fe[::-1])
    (folder / "README.md").write_text("# a scan\n")
    (folder / "overview.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (folder / "scan.json").write_text("{}")
    (folder / "scan_Fe_K.tif.json").write_text("{}")  # a sidecar of a map in the folder: not reported
    out = tmp_path / "o.tif"
    assert main(["restore", str(folder), "-o", str(out), "--psf-sigma", "1px", "--iterations", "2"]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("skipped ")]
    assert sorted(line.split(":")[0] for line in err) == ["skipped README.md", "skipped overview.png",
                                                          "skipped scan.json"]
    assert tifffile.imread(out).shape == (2, 160, 160)


@pytest.mark.parametrize("method, expected", [
    # the weight is chosen from the map (xrfgpu.filter_weight); the record gives the number and the rule
    ("wiener", {"balance": float, "balance_rule": "discrepancy", "regularizer": "laplacian"}),
    ("tikhonov", {"lam": float, "lam_rule": "discrepancy", "order": 0}),
    ("fista", {"nonneg": True, "iterations": int, "stop": "cv"}),  # --help: FISTA's count by cross-validation
])
@pytest.mark.parametrize("tiles", [[], ["--tile", "32"]])
def test_the_record_holds_the_defaults_a_method_used(tmp_path, method, expected, tiles):
    # the README promises "every parameter" in the record; a Wiener run without --balance recorded no balance
    src = tmp_path / "scan_Fe.npy"
    np.save(src, _count_map((40, 40)))
    out = tmp_path / "o.npz"
    assert main(["restore", str(src), "-o", str(out), "--method", method, "--psf-sigma", "1px", "-q", *tiles]) == 0
    per = json.loads(Path(f"{out}.json").read_text())["xrfgpu"]["provenance"]["parameters"]["per_element"]["Fe"]
    for key, value in expected.items():
        if value in (float, int):
            assert isinstance(per[key], value) and per[key] > 0, (key, per[key])
        elif key.endswith("_rule"):
            assert value in per[key]
        else:
            assert per[key] == value
    if method in ("wiener", "tikhonov"):
        assert per["noise_variance"] > 0 and per["noise_band"] == "blocked"
    if method == "fista":  # the number where the whole map ran (in its effective counts), and the rule
        assert "0.03" in (per["lam"] if tiles else per["lam_rule"])
        assert tiles or (isinstance(per["lam"], float) and per["lam"] > 0)  # λ = 0.03 max|y − b| from the map


@pytest.mark.parametrize("separator", [";", "\t"])
def test_a_matrix_with_decimal_commas_reads(tmp_path, separator):
    # a European-locale export ("0,0123;0,0456") was refused with "no rows of numbers found": the ','
    # inside every number was taken for the column separator
    from xrfgpu.io import read_maps

    matrix = np.round(tifffile.imread(FE)[:12, :15].astype(np.float64), 4)
    lines = ["Fe K-alpha;counts" if separator == ";" else "Fe K-alpha\tcounts"]
    lines += [separator.join(f"{v:.4f}".replace(".", ",") for v in row) for row in matrix]
    src = tmp_path / "scan_Fe.csv"
    src.write_text("\n".join(lines) + "\n")
    maps = read_maps(src)
    np.testing.assert_allclose(maps.maps["Fe"], matrix, rtol=0, atol=1e-12)


def test_comma_separated_rows_with_a_stray_tab_still_read(tmp_path):
    from xrfgpu.io import read_maps

    matrix = np.arange(12.0).reshape(3, 4) / 8
    src = tmp_path / "scan_Fe.csv"
    src.write_text("\n".join(",".join(f"{v:g}" for v in row) + "\t" for row in matrix) + "\n")
    np.testing.assert_array_equal(read_maps(src).maps["Fe"], matrix)


def test_compare_a_single_map_with_a_restored_folder(tmp_path, capsys):
    # restoring the HXN folder and comparing with one of its TIFFs stopped at the first restored element
    # the TIFF does not hold ("element 'Cr_K' not found"); the elements both hold are compared, the others named
    out = tmp_path / "o.tif"
    assert main(["restore", str(HXN), "-o", str(out), "--psf-sigma", "1px", "--iterations", "3", "-q"]) == 0
    assert main(["compare", str(FE), str(out), "--no-figure", "--json"]) == 0
    captured = capsys.readouterr()
    assert list(json.loads(captured.out)["metrics"]) == ["Fe_K"]
    assert "Cr_K" in captured.err and "Si_K" in captured.err
    assert main(["compare", str(HXN / "SUM_maps_XRF_Si_K.tiff"), str(out), "--no-figure", "--elements", "Fe"]) == 2


def test_a_psf_sigma_entry_no_map_uses_is_warned_about(tmp_path, capsys):
    # "--psf-sigma Fe=0.08um,F=0.07um,..." on the HXN maps: the F (a typo) entry was dropped in silence
    out = tmp_path / "o.tif"
    assert main(["restore", str(HXN), "-o", str(out), "--psf-sigma", "Fe=1px,Cr=1px,Si=1px,Zn=2px",
                 "--iterations", "2"]) == 0
    err = capsys.readouterr().err
    assert "Warning: --psf-sigma entry 'Zn' matches none of the restored maps" in err
    assert "'Fe'" not in err and "'Cr'" not in err


def test_the_psf_sigma_entry_of_an_all_zero_map_is_not_stray(tmp_path, capsys):
    src = tmp_path / "scan.npz"
    np.savez(src, Fe=_count_map((40, 40)), Zn=np.zeros((40, 40), np.float32))
    assert main(["restore", str(src), "-o", str(tmp_path / "o.npz"), "--psf-sigma", "Fe=1px,Zn=2px",
                 "--iterations", "2"]) == 0
    err = capsys.readouterr().err
    assert "Zn: all zeros" in err and "matches none" not in err


def test_an_all_nan_map_is_missing_data_not_zeros(tmp_path, capsys):
    src = tmp_path / "scan.npz"
    np.savez(src, Fe=_count_map((40, 40)), Zn=np.full((40, 40), np.nan, np.float32))
    out = tmp_path / "o.npz"
    assert main(["restore", str(src), "-o", str(out), "--psf-sigma", "1px", "--iterations", "2"]) == 2
    err = capsys.readouterr().err
    assert "'Zn'" in err and "every pixel is missing" in err and "zeros" not in err
    assert not out.exists()


def test_a_dataset_a_restored_file_does_not_hold_is_refused(tmp_path):
    # read_maps(restored_from_XRF_roi.h5, dataset="XRF_fits") returned the XRF_roi maps in silence
    from xrfgpu.io import MapFileError, read_maps

    src = _legacy_maps_file(tmp_path / "scan.h5")
    out = tmp_path / "o.h5"
    assert main(["restore", src, "-o", str(out), "--dataset", "XRF_roi", "--psf-sigma", "1px", "--iterations", "2",
                 "-q"]) == 0
    for same in ("XRF_roi", "xrf_roi", "MAPS/XRF_roi"):
        assert read_maps(out, dataset=same).metadata["dataset"] == "MAPS/XRF_roi"
    with pytest.raises(MapFileError, match=r"'XRF_fits' not found.*MAPS/XRF_roi"):
        read_maps(out, dataset="XRF_fits")


@pytest.mark.slow
def test_joint_clips_a_fitted_maps_negative_values_and_names_the_guide(tmp_path, capsys):
    # a fitted map with a few negative values (fit noise) was refused by --joint ("image has negative
    # values") where plain RL clips them; now they are clipped and the fraction recorded
    folder = tmp_path / "maps"
    folder.mkdir()
    fe = tifffile.imread(FE).astype(np.float32)
    cr = tifffile.imread(HXN / "SUM_maps_XRF_Cr_K.tiff").astype(np.float32)
    cr[:4, :10] = -0.001
    tifffile.imwrite(folder / "Fe_K.tif", fe)
    tifffile.imwrite(folder / "Cr_K.tif", cr)
    out = tmp_path / "joint.npz"
    assert main(["restore", str(folder), "-o", str(out), "--psf-sigma", "1px", "--joint", "--guide", "Fe",
                 "--iterations", "10", "-q"]) == 0
    record = json.loads(Path(f"{out}.json").read_text())
    element = record["xrfgpu"]["provenance"]["parameters"]["per_element"]["Cr_K"]
    assert element["negative_fraction_clipped"] == pytest.approx(40 / cr.size)
    # fitted maps are restored in effective counts: the record gives each map's gain and how λ was chosen
    from xrfgpu.front_door import effective_counts
    from xrfgpu.joint import DEFAULT_HUBER_WEIGHTS, DEFAULT_WEIGHTS

    for name, image in (("Fe_K", fe), ("Cr_K", np.clip(cr, 0, None))):
        entry = record["xrfgpu"]["provenance"]["parameters"]["per_element"][name]
        assert entry["kind"].startswith("fitted") and entry["gain"] == pytest.approx(
            effective_counts(image, xp=np)[1], rel=1e-6)
    assert element["weight_how"] == "cross-validation" and element["weight"] in DEFAULT_WEIGHTS + DEFAULT_HUBER_WEIGHTS
    # the dTV weights and the Huber-dTV ones, each a candidate of the cross-validation; the Huber ones run
    # only where a dTV weight beat plain RL, and the record says when they did not
    huber_ran = not element.get("huber_candidates", "").startswith("skipped")
    assert set(element["cv_deviance"]) == {f"{w:g}" for w in DEFAULT_WEIGHTS} | (
        {f"{w:g} huber" for w in DEFAULT_HUBER_WEIGHTS} if huber_ran else set()) and element["iterations"] == 10
    assert huber_ran == (element["weight"] > 0) and element["huber_candidates"].startswith(("ran", "skipped"))
    with np.load(out) as f:
        assert np.all(f["Cr_K"] >= 0) and f["Cr_K"].max() > 0
    # a guide of pure noise: the fallback warning names the guide map, not its index in the stack
    rng = np.random.default_rng(0)
    tifffile.imwrite(folder / "Fe_K.tif", (0.01 * rng.poisson(50.0, fe.shape)).astype(np.float32))
    capsys.readouterr()
    assert main(["restore", str(folder), "-o", str(tmp_path / "noise.npz"), "--psf-sigma", "1px", "--joint",
                 "--guide", "Fe", "--iterations", "10"]) == 0
    err = capsys.readouterr().err
    assert "fell back to independent RL" in err and "(Fe_K as the guide)" in err and "(map " not in err


@pytest.mark.slow
def test_psf_edge_warns_when_the_map_holds_no_straight_edge(tmp_path, capsys):
    # the HXN Fe map (particles, no knife edge) gave "σ = 13.7 ± 3.5 px" as if measured; an erf on a
    # clean synthetic edge gives its σ to about 2 % and no warning
    from scipy.special import erf

    out = tmp_path / "fe.toml"
    assert main(["psf", "edge", str(FE), "--pixel-size", "0.15um", "--line", "Fe-Ka", "-o", str(out),
                 "--figure", str(tmp_path / "fe.png"), "--json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert "uncertain" in result["warning"] and "Warning:" in captured.err and "straight edge" in captured.err
    xx = np.arange(64)[None, :] * np.ones((64, 1))
    edge = np.random.default_rng(1).poisson(20 + 300 * 0.5 * (1 + erf((xx - 30.3) / (np.sqrt(2) * 2.5))))
    np.save(tmp_path / "edge.npy", edge.astype(np.float64))
    assert main(["psf", "edge", str(tmp_path / "edge.npy"), "--pixel-size", "5um", "--line", "Fe-Ka", "-o",
                 str(tmp_path / "e.toml"), "--figure", str(tmp_path / "e.png"), "--json"]) == 0
    captured = capsys.readouterr()
    assert "warning" not in json.loads(captured.out) and "Warning" not in captured.err


@pytest.mark.parametrize(("state", "quiet", "said"), [("not built", False, True), ("not built", True, False),
                                                      ("loaded", False, False)])
def test_joint_says_when_it_builds_the_cpu_engine(tmp_path, capsys, monkeypatch, state, quiet, said):
    # the first joint run on a machine compiles kernels/host_dtv.cpp (about 10 s) before restoring: the
    # command line says why it pauses, once, and not with -q; the build itself is stood in for (None: the
    # NumPy code runs, the same numbers)
    from xrfgpu import _host_kernels

    monkeypatch.setattr(_host_kernels, "status", lambda build=False: {"state": state, "cache_dir": "CACHE-DIR"})
    monkeypatch.setattr(_host_kernels, "library", lambda: None)
    folder = tmp_path / "maps"
    folder.mkdir()
    for name, path in (("Fe_K", FE), ("Cr_K", HXN / "SUM_maps_XRF_Cr_K.tiff")):
        tifffile.imwrite(folder / f"{name}.tif", tifffile.imread(path).astype(np.float32)[40:88, 40:88])
    capsys.readouterr()
    assert main(["restore", str(folder), "-o", str(tmp_path / "joint.npz"), "--psf-sigma", "1px", "--joint",
                 "--iterations", "3"] + (["-q"] if quiet else [])) == 0
    err = capsys.readouterr().err
    assert ("building the CPU engine of the joint prior" in err and "CACHE-DIR" in err) == said


def test_joint_chooses_its_guide_among_the_element_maps(tmp_path):
    # a file with other channels beside the elements (MAPS: scatter s_e, total fluorescence TFY): with equal
    # PSFs the automatic guide (narrowest PSF, then the larger mean count) was the channel of most counts;
    # now it is chosen among the element maps, every map is still restored, and the record says so
    from xrfgpu.front_door import effective_counts
    from xrfgpu.joint import joint_richardson_lucy

    folder = tmp_path / "maps"
    folder.mkdir()
    maps = {"Fe_K": tifffile.imread(FE), "Cr_K": tifffile.imread(HXN / "SUM_maps_XRF_Cr_K.tiff")}
    maps = {k: v.astype(np.float32)[40:88, 40:88] for k, v in maps.items()}
    # the total fluorescence: both elements' counts together, in the Fe map's units (more counts than either)
    gains = {k: effective_counts(v, xp=np)[1] for k, v in maps.items()}
    maps["TFY"] = maps["Fe_K"] + maps["Cr_K"] * np.float32(gains["Fe_K"] / gains["Cr_K"])
    for name, image in maps.items():
        tifffile.imwrite(folder / f"{name}.tif", image)
    out = tmp_path / "joint.npz"
    assert main(["restore", str(folder), "-o", str(out), "--psf-sigma", "1px", "--joint", "--iterations", "3",
                 "-q"]) == 0
    record = json.loads(Path(f"{out}.json").read_text())["xrfgpu"]["provenance"]["parameters"]
    joint = record.get("joint") or record
    assert sorted(joint["guide_chosen_among"]) == ["Cr_K", "Fe_K"] and joint["guide"] in ("Cr_K", "Fe_K")
    with np.load(out) as f:
        assert {"Fe_K", "Cr_K", "TFY"} <= set(f.files)
    # the library alone, with every map eligible, takes the channel of most effective counts
    order = sorted(maps)
    stack = np.stack([maps[k] for k in order])
    from xrfgpu.psf import gaussian

    _, info = joint_richardson_lucy(stack, [gaussian(None, 1.0)] * 3, background=[0.0] * 3, weight=0.05,
                                    num_iter=3, guide_iter=3, return_info=True)
    levels = [float(np.mean(m)) / effective_counts(m, xp=np)[1] for m in stack]
    assert order[info["guide"]] == "TFY" == order[int(np.argmax(levels))]
