"""Small things the QA on real maps (``docs/qa_real_maps.md``) found and left alone, each fixed here.

The real maps are the NSLS-II HXN nanoprobe TIFFs (``tests/data/hxn_nanoparticles_xrf``) and the APS
MAPS v9 file of the AXO standard (``tests/data/aps_2ide_maps_axo_std``), both MIT, see the READMEs
there. Every test failed before its fix.
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile

import xrfgpu
import xrfgpu.front_door
from xrfgpu.cli import main

DATA = Path(__file__).parent / "data"
FE = DATA / "hxn_nanoparticles_xrf" / "SUM_maps_XRF_Fe_K.tiff"
AXO = DATA / "aps_2ide_maps_axo_std" / "axo_std.h5"


def _count_gain_estimates(monkeypatch):
    """Count the calls of the effective-gain measurement (:func:`xrfgpu.background.estimate_gain`)."""
    calls = []
    measure = xrfgpu.front_door.estimate_gain

    def counted(*args, **kwargs):
        calls.append(1)
        return measure(*args, **kwargs)

    monkeypatch.setattr(xrfgpu.front_door, "estimate_gain", counted)
    return calls


# --------------------------------------------------------------------------- 1. one gain measurement per map


@pytest.mark.slow
@pytest.mark.parametrize("tile", [[], ["--tile", "64"]], ids=["whole", "tiled"])
def test_psf_auto_measures_a_fitted_maps_gain_once(tmp_path, monkeypatch, tile):
    """``--psf-auto`` with the automatic background on a fitted map: one gain measurement, the library's numbers.

    Before, the background, the σ estimate and the restoration (or the tiled run's iteration count) each
    measured the gain again: three measurements of the same map.
    """
    from xrfgpu.psf.blind_sigma import SigmaUncertainWarning

    out = tmp_path / "fe.tif"
    calls = _count_gain_estimates(monkeypatch)
    assert main(["restore", str(FE), "-o", str(out), "--psf-auto", "-q", *tile]) == 0
    assert len(calls) == 1
    monkeypatch.undo()
    # the numbers of the library's own front door on the same map (its independent path, measuring itself)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SigmaUncertainWarning)
        ref, info = xrfgpu.restore(tifffile.imread(FE), return_info=True)
    with tifffile.TiffFile(out) as tif:
        restored = tif.asarray()
        record = json.loads(tif.imagej_metadata["Info"])["xrfgpu"]["provenance"]
    element = record["parameters"]["per_element"]["Fe_K"]
    psf = record["psf"]["Fe_K"]
    assert element["background"] == info["background"]
    assert element["iterations"] == info["iterations"] and element["cv_iterations"] == info["cv_iterations"]
    assert psf["source"]["sigma_estimated_px"] == info["sigma_estimated"]
    assert psf["sigma_px"] == pytest.approx(info["sigma"], rel=1e-12)
    if not tile:  # the same calls, so the same numbers to the last bit
        np.testing.assert_array_equal(restored, ref)
    else:  # tiles equal the whole map to rounding (tests/test_cli_files.py)
        np.testing.assert_allclose(restored, ref, rtol=0, atol=1e-5 * float(np.max(ref)))


def test_a_given_gain_is_used_instead_of_measuring_it(xp, monkeypatch):
    """``restore(map, gain=g)``: the map restored in map / g counts, without a measurement; bad gains refused."""
    from conftest import to_numpy

    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:48, :48]
    mean = 30.0 + 400.0 * np.exp(-((yy - 20.0) ** 2 + (xx - 27.0) ** 2) / (2 * 4.0**2))
    counts = rng.poisson(mean).astype(np.float64)
    gain = 0.0125  # a fitted map: 0.0125 map units per count, as known from a calibration
    fitted = xp.asarray(counts * gain)
    calls = _count_gain_estimates(monkeypatch)
    out, info = xrfgpu.restore(fitted, sigma=1.5, background=30.0 * gain, num_iter=8, gain=gain, return_info=True)
    assert calls == [] and info["gain"] == gain
    # the independent reference: the counts themselves, restored as counts and scaled back
    ref = xrfgpu.restore(xp.asarray(counts), sigma=1.5, background=30.0, num_iter=8)
    np.testing.assert_allclose(to_numpy(out), to_numpy(ref) * gain, rtol=1e-9, atol=1e-12 * float(np.max(mean)))
    for bad, error in ((0.0, ValueError), (float("nan"), ValueError), (-1.0, ValueError), ("x", TypeError)):
        with pytest.raises(error, match="gain"):
            xrfgpu.restore(fitted, sigma=1.5, gain=bad)
    with pytest.raises(ValueError, match="count map"):
        xrfgpu.restore(xp.asarray(counts), sigma=1.5, gain=2.0)


# --------------------------------------------------------------------------- 2. --psf-extrapolate


def _psf_table(tmp_path):
    table = tmp_path / "psf.toml"
    table.write_text('[sigma_um]\n"Ca-Ka" = 11.0\n"Fe-Ka" = 12.0\n"Zn-Ka" = 14.0\n')
    return table


def test_a_line_beyond_the_psf_table_names_the_command_line_option(tmp_path, capsys):
    """Pt_L (9.4 keV) of the MAPS file lies above the table's Zn-Kα: the error names what a CLI user can do.

    Before, it said "pass extrapolate=True", a library argument with no command-line spelling.
    """
    out = tmp_path / "o.h5"
    assert main(["restore", str(AXO), "-o", str(out), "--psf-file", str(_psf_table(tmp_path)),
                 "--elements", "Pt_L,Fe"]) == 2
    err = capsys.readouterr().err
    assert "--psf-extrapolate" in err and "extrapolate=True" not in err
    assert "Pt-La" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_psf_extrapolate_extends_the_table_and_records_it(tmp_path):
    """``--psf-extrapolate``: σ of Pt-Lα on the Fe-Kα–Zn-Kα segment carried on in energy, in the record."""
    import h5py
    import xraylib

    out = tmp_path / "o.h5"
    assert main(["restore", str(AXO), "-o", str(out), "--psf-file", str(_psf_table(tmp_path)),
                 "--elements", "Pt_L,Fe", "--psf-extrapolate", "-q"]) == 0
    e_fe, e_zn = xraylib.LineEnergy(26, xraylib.KA_LINE), xraylib.LineEnergy(30, xraylib.KA_LINE)
    e_pt = xraylib.LineEnergy(78, xraylib.LA_LINE)
    expected_um = 12.0 + (14.0 - 12.0) * (e_pt - e_fe) / (e_zn - e_fe)  # the straight line, by hand
    with h5py.File(out, "r") as f:
        record = json.loads(f["xrfgpu"].attrs["provenance"])
    assert record["parameters"]["psf_extrapolate"] is True
    pt, fe = record["psf"]["Pt_L"], record["psf"]["Fe"]
    assert pt["sigma_um"] == pytest.approx(expected_um, rel=1e-9)
    assert pt["sigma_px"] == pytest.approx(expected_um / 10.0, rel=1e-9)  # the file's 10 µm steps
    assert pt["source"]["extrapolated"] is True and "--psf-extrapolate" in pt["source"]["interpolated"]
    assert fe["sigma_um"] == 12.0 and "extrapolated" not in fe["source"]  # a measured line stays as measured


@pytest.mark.parametrize("psf", [["--psf-sigma", "1px"], ["--psf-auto"]])
def test_psf_extrapolate_without_a_psf_table_is_refused(tmp_path, capsys, psf):
    out = tmp_path / "o.h5"
    assert main(["restore", str(FE), "-o", str(out), *psf, "--psf-extrapolate"]) == 2
    err = capsys.readouterr().err
    assert "--psf-extrapolate" in err and "--psf-file" in err


def test_a_sigma_um_table_is_not_told_to_add_a_default_line(tmp_path, capsys):
    """A ``[sigma_um]`` table names X-ray lines only: its errors name the file and do not suggest 'default'.

    Before, a missing line was answered "add it or a 'default' line", and the 'default' line then added
    failed with "cannot read the X-ray line 'default'", without naming the file.
    """
    table = tmp_path / "psf.toml"
    table.write_text('[sigma_um]\n"Fe-Ka" = 12.0\n')  # one line: nothing to interpolate from
    assert main(["restore", str(AXO), "-o", str(tmp_path / "o.h5"), "--psf-file", str(table),
                 "--elements", "Ca"]) == 2
    err = capsys.readouterr().err
    assert "[sigma_um]" in err and "'default'" not in err
    table.write_text('[sigma_um]\n"Fe-Ka" = 12.0\ndefault = 13.0\n')
    assert main(["restore", str(AXO), "-o", str(tmp_path / "o.h5"), "--psf-file", str(table),
                 "--elements", "Ca"]) == 2
    err = capsys.readouterr().err
    assert str(table) in err and "'default'" in err and len(err.strip().splitlines()) == 1


# --------------------------------------------------------------------------- 3. ImageJ labels of a one-map TIFF


def _imagej_entries(path):
    """``{type: [values]}`` of a TIFF's ImageJ IJMetadata tag, read from its bytes (ImageJ's own layout).

    The tag holds ``IJIJ``, then (4-byte type, count) pairs, then the values, whose lengths are the
    IJMetadataByteCounts tag's entries after the header's; strings are UTF-16. Read here
    without tifffile's ``imagej_metadata``, which returns an entry of one value as that value. A
    little-endian file reverses the magic and the type names and stores UTF-16-LE.
    """
    import struct

    with tifffile.TiffFile(path) as tif:
        tags = tif.pages[0].tags
        counts = list(tags[50838].value)
        raw = tags[50839]  # tifffile decodes its value; the bytes are read from the file at its offset
        tif.filehandle.seek(raw.valueoffset)
        data = tif.filehandle.read(raw.count)
    little = {b"IJIJ": False, b"JIJI": True}[data[:4]]  # the magic, reversed in a little-endian file
    n_types = (counts[0] - 4) // 8
    header = struct.unpack(("<" if little else ">") + "4sI" * n_types, data[4:4 + 8 * n_types])
    entries, pos, k = {}, counts[0], 1
    for kind, count in zip(header[::2], header[1::2]):
        values = []
        for _ in range(count):
            values.append(data[pos:pos + counts[k]].decode("utf-16-le" if little else "utf-16-be"))
            pos, k = pos + counts[k], k + 1
        entries[(kind[::-1] if little else kind).decode()] = values
    return entries


@pytest.mark.parametrize("elements", [["Fe_K"], ["Cr_K", "Fe_K", "Si_K"]], ids=["one", "three"])
def test_tiff_labels_are_one_per_map_as_imagej_reads_them(tmp_path, elements):
    """One label per map in ImageJ's IJMetadata, for one map as for several: the file is consistent.

    ``TiffFile(out).imagej_metadata["Labels"]`` is a ``str`` for one map because tifffile returns every
    ImageJ entry of one value as that value (``Info`` too); ImageJ gives a one-image file's one slice label
    to the image as its ``Label`` property. The header's ``elements`` is a list in both cases.
    """
    src = tmp_path / "maps"
    src.mkdir()
    for name in elements:
        (src / f"SUM_maps_XRF_{name}.tiff").write_bytes((DATA / "hxn_nanoparticles_xrf" /
                                                         f"SUM_maps_XRF_{name}.tiff").read_bytes())
    out = tmp_path / "o.tif"
    assert main(["restore", str(src if len(elements) > 1 else src / f"SUM_maps_XRF_{elements[0]}.tiff"),
                 "-o", str(out), "--psf-sigma", "0.5px", "--iterations", "2", "-q"]) == 0
    entries = _imagej_entries(out)
    assert entries["labl"] == elements
    with tifffile.TiffFile(out) as tif:
        labels = tif.imagej_metadata["Labels"]
        header = json.loads(tif.imagej_metadata["Info"])["xrfgpu"]
        shape = tif.asarray().shape
    assert labels == (elements[0] if len(elements) == 1 else elements)  # tifffile's reading, as docs/command_line.md says
    assert header["elements"] == elements
    assert shape == ((160, 160) if len(elements) == 1 else (len(elements), 160, 160))


# --------------------------------------------------------------------------- 4. blank CSV cells are missing pixels


def _csv_map(seed=5, shape=(40, 44)):
    """A small count map (Poisson counts of a blurred disc on a background) as exact integers."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    mean = 20.0 + 200.0 * ((yy - 18) ** 2 + (xx - 24) ** 2 < 60)
    return rng.poisson(mean).astype(np.float64)


def _write_csv(path, m, blanks=(), sep=",", decimal="."):
    """``m`` as a CSV with the cells at ``blanks`` (row, col) left empty, the way spreadsheets write them."""
    lines = []
    for i, row in enumerate(m):
        cells = ["" if (i, j) in blanks else f"{v:g}".replace(".", decimal) for j, v in enumerate(row)]
        lines.append(sep.join(cells))
    path.write_text("# counts, exported\n" + "\n".join(lines) + "\n")


@pytest.mark.parametrize("sep, decimal", [(",", "."), (";", ","), ("\t", ".")], ids=["comma", "semicolon", "tab"])
def test_a_blank_csv_cell_is_read_as_a_missing_pixel(tmp_path, sep, decimal):
    """Empty cells (a dropped pixel, or one deleted in a spreadsheet) are NaN, counted with where the first is.

    Before, the file was refused ("line 4 is not a row of numbers"), and in a folder the element was skipped.
    The blanks include the first data row (not to be taken for a header) and the last column.
    """
    from xrfgpu.io import read_maps

    m = _csv_map() / 8.0  # fitted-looking values with decimals
    blanks = {(0, 3), (7, 10), (7, 43), (39, 0)}
    path = tmp_path / "scan_Fe.csv"
    _write_csv(path, m, blanks, sep=sep, decimal=decimal)
    em = read_maps(path)
    a = np.asarray(em.maps["Fe"])
    assert a.shape == m.shape
    expected = m.copy()
    for cell in blanks:
        expected[cell] = np.nan
    np.testing.assert_array_equal(a, expected)  # NaN where blank, every other value exact
    note = em.metadata["blank_cells"]
    assert note == [{"file": "scan_Fe.csv", "map": "Fe", "count": 4, "first": {"line": 2, "column": 4}}]


def test_an_all_blank_row_inside_is_a_missing_line_and_blank_rows_at_the_end_are_not_rows(tmp_path):
    """``,,,`` between data rows is a scan line lost (NaN); trailing ``,,,`` lines (spreadsheet exports) are not."""
    from xrfgpu.io import read_maps

    m = _csv_map(shape=(6, 5))
    text = "\n".join(",".join(f"{v:g}" for v in row) if i != 2 else ",,,," for i, row in enumerate(m))
    path = tmp_path / "Ca.csv"
    path.write_text(text + "\n,,,,\n,,,,\n")
    em = read_maps(path)
    a = np.asarray(em.maps["Ca"])
    assert a.shape == (6, 5)
    assert np.all(np.isnan(a[2])) and np.array_equal(a[[0, 1, 3, 4, 5]], m[[0, 1, 3, 4, 5]])
    assert em.metadata["blank_cells"][0]["count"] == 5


def test_trailing_separators_on_every_line_are_not_blank_cells(tmp_path):
    """Exporters that end each row with the separator (``1,2,3,``) give no NaN and no note, as before."""
    from xrfgpu.io import read_maps

    m = _csv_map(shape=(5, 4))
    path = tmp_path / "K.csv"
    path.write_text("".join(",".join(f"{v:g}" for v in row) + ",\n" for row in m))
    em = read_maps(path)
    np.testing.assert_array_equal(np.asarray(em.maps["K"]), m)
    assert "blank_cells" not in em.metadata


@pytest.mark.parametrize("as_folder", [False, True], ids=["file", "folder"])
def test_cli_restores_blank_cells_as_missing_pixels_and_says_so(tmp_path, capsys, as_folder):
    """The command line restores a CSV with blank cells as the same map with NaN there (as ``.npy``), warned once.

    The reference is the documented NaN route: the same map written as ``.npy`` with NaN at the blank cells.
    """
    from xrfgpu.io import read_maps

    m = _csv_map()
    blanks = {(5, 6), (20, 30)}
    folder = tmp_path / "scan"
    folder.mkdir()
    _write_csv(folder / "scan_Fe.csv", m, blanks)
    if as_folder:
        _write_csv(folder / "scan_Ca.csv", m[::-1].copy())
    with_nan = m.copy()
    for cell in blanks:
        with_nan[cell] = np.nan
    np.save(tmp_path / "scan_Fe.npy", with_nan)
    src = folder if as_folder else folder / "scan_Fe.csv"
    capsys.readouterr()
    assert main(["restore", str(src), "-o", str(tmp_path / "csv.npz"), "--psf-sigma", "1.5px",
                 "--iterations", "5"]) == 0
    err = capsys.readouterr().err
    warned = [line for line in err.splitlines() if "blank" in line]
    assert len(warned) == 1 and "2 blank cells" in warned[0] and "missing" in warned[0]
    assert "scan_Fe.csv" in warned[0] and "line 7, column 7" in warned[0] and "skipped" not in err
    assert main(["restore", str(tmp_path / "scan_Fe.npy"), "-o", str(tmp_path / "npy.npz"), "--psf-sigma", "1.5px",
                 "--iterations", "5", "-q"]) == 0
    got, ref = read_maps(tmp_path / "csv.npz"), read_maps(tmp_path / "npy.npz")
    np.testing.assert_array_equal(np.asarray(got.maps["Fe"]), np.asarray(ref.maps["Fe"]))
    assert np.all(np.isfinite(np.asarray(got.maps["Fe"])))


@pytest.mark.slow
@pytest.mark.parametrize("method", ["rl", "wiener"])
def test_cli_restores_blank_cells_in_tiles_as_the_whole_map(tmp_path, method):
    """A blank CSV cell is a missing pixel: ``--tile`` restores it as the whole map does (the whole-map run is
    the reference), by RL and, since the tenth session, by Wiener too (before, refused with "rl only")."""
    m = _csv_map()
    _write_csv(tmp_path / "Fe.csv", m, {(3, 3)})
    for name, tile in (("tiled.npz", ["--tile", "16"]), ("whole.npz", [])):
        assert main(["restore", str(tmp_path / "Fe.csv"), "-o", str(tmp_path / name), "--psf-sigma", "1.5px",
                     "--method", method, "-q", *tile]) == 0
    from xrfgpu.io import read_maps

    tiled, whole = (np.asarray(read_maps(tmp_path / n).maps["Fe"]) for n in ("tiled.npz", "whole.npz"))
    assert np.all(np.isfinite(tiled)) and np.abs(tiled - whole).max() <= 1e-4 * np.abs(whole).max()


@pytest.mark.slow
def test_compare_measures_a_map_with_missing_pixels_on_its_measured_pixels(tmp_path, capsys):
    """``compare`` of a CSV with a blank cell: contrast and flux over the measured pixels, by hand with NumPy.

    Before, the NaN made the input's contrast 0 and the flux ratio nan.
    """
    from xrfgpu.figures import shared_limits
    from xrfgpu.io import read_maps

    m = _csv_map()
    _write_csv(tmp_path / "scan_Fe.csv", m, {(4, 9)})
    assert main(["restore", str(tmp_path / "scan_Fe.csv"), "-o", str(tmp_path / "r.tif"), "--psf-sigma", "1.5px",
                 "--iterations", "5", "-q"]) == 0
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "scan_Fe.csv"), str(tmp_path / "r.tif"), "--json",
                 "-o", str(tmp_path / "c.png")]) == 0
    metrics = json.loads(capsys.readouterr().out)["metrics"]["Fe"]
    restored = np.asarray(read_maps(tmp_path / "r.tif").maps["Fe"], dtype=np.float64)
    measured = np.ones(m.shape, bool)
    measured[4, 9] = False
    b, a = m[measured], restored[measured]
    lo, hi = np.percentile(b, [0.5, 99.5])
    assert metrics["contrast_input_with_background"] == pytest.approx((hi - lo) / b.mean(), rel=1e-12)
    # like for like with the restoration: the input above the background the restoration recorded
    above = b - metrics["background"]
    lo, hi = np.percentile(above, [0.5, 99.5])
    assert metrics["contrast_input"] == pytest.approx((hi - lo) / np.abs(above).mean(), rel=1e-12)
    assert metrics["flux_ratio"] == pytest.approx(a.sum() / b.sum(), rel=1e-12)
    with_nan = m.copy()
    with_nan[4, 9] = np.nan
    assert shared_limits(with_nan) == pytest.approx(tuple(np.percentile(b, [0.5, 99.5])), rel=1e-12)


def test_text_errors_and_blank_cells_give_the_files_own_line_numbers(tmp_path):
    """Line numbers count every line of the file, as an editor does; blank lines used to be left out."""
    from xrfgpu.io import MapFileError, read_maps

    path = tmp_path / "Fe.csv"
    path.write_text("# scan 7\n\n1,2,3\n\n4,,6\n7,8,9\n")
    em = read_maps(path)
    assert em.metadata["blank_cells"][0]["first"] == {"line": 5, "column": 2}
    np.testing.assert_array_equal(np.asarray(em.maps["Fe"]), [[1, 2, 3], [4, np.nan, 6], [7, 8, 9]])
    path.write_text("# scan 7\n\n1,2,3\n\n4,x,6\n")
    with pytest.raises(MapFileError, match="line 5 is not a row of numbers"):
        read_maps(path)


# --------------------------------------------------------------------------- 5. failing runs leave nothing data-like


def _disk_full(*args, **kwargs):
    import errno

    raise OSError(errno.ENOSPC, "No space left on device")


def _half_written_then_disk_full(real):
    """A writer that writes its file, cuts it to half and then fails as a full disk does."""
    import os

    def write(tmp, *args, **kwargs):
        real(tmp, *args, **kwargs)
        with open(tmp, "r+b") as fh:
            fh.truncate(os.path.getsize(tmp) // 2)
        _disk_full()

    return write


def _everything_under(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))  # hidden temporaries included


@pytest.mark.parametrize("suffix, writer", [(".tif", "_write_tiff"), (".h5", "_write_hdf5"), (".npy", "_write_npy"),
                                            (".npz", "_write_npz"), (".csv", "_write_text")])
def test_a_full_disk_leaves_no_output_and_the_error_names_it(tmp_path, capsys, monkeypatch, suffix, writer):
    """A writer failing midway: exit 1, one line naming the output and the reason, nothing left in its folder.

    Before, the line was ``Error: [Errno 28] No space left on device``, without the file it was writing.
    """
    import xrfgpu.io as io

    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / f"fe{suffix}"
    monkeypatch.setattr(io, writer, _half_written_then_disk_full(getattr(io, writer)))
    assert main(["restore", str(FE), "-o", str(out), "--psf-sigma", "0.5px", "--iterations", "2", "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(out) in err[0] and "No space left on device" in err[0]
    assert _everything_under(out_dir) == []


def test_a_folder_output_failing_at_its_second_map_leaves_nothing(tmp_path, capsys, monkeypatch):
    """One CSV per element: the second CSV fails; no folder, no first CSV, the error names the folder."""
    calls = []
    real = np.savetxt

    def second_fails(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            _disk_full()
        return real(*args, **kwargs)

    out_dir = tmp_path / "out"
    out_dir.mkdir()
    monkeypatch.setattr(np, "savetxt", second_fails)
    assert main(["restore", str(FE.parent), "-o", str(out_dir / "maps"), "--psf-sigma", "0.5px",
                 "--iterations", "2", "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(out_dir / "maps") in err[0]
    assert _everything_under(out_dir) == []


@pytest.mark.parametrize("kind", ["edge", "dot"])
def test_psf_table_and_figure_land_together(tmp_path, capsys, monkeypatch, kind):
    """``xrfgpu psf``: when the figure cannot be written, no PSF table is left either (it used to stay).

    A table left by a failed run would be taken for a measurement by ``restore --psf-file``, and would
    refuse the next run's output.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    src = FE
    if kind == "dot":  # a small scan of a dot (the HXN map is slow to fit as one)
        yy, xx = np.mgrid[:33, :33]
        src = tmp_path / "dot_Fe_K.npy"
        np.save(src, np.random.default_rng(2).poisson(5 + 400 * np.exp(-((yy - 16) ** 2 + (xx - 15) ** 2) / 8.0)))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    monkeypatch.setattr(Figure, "savefig", _disk_full)
    argv = ["psf", kind, str(src), "--pixel-size", "0.15um", "-q", "-o", str(out_dir / "psf.toml"),
            "--figure", str(out_dir / "psf.png")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert str(out_dir / "psf.png") in err and "No space left on device" in err
    assert _everything_under(out_dir) == []


@pytest.mark.slow
def test_a_demo_that_fails_while_writing_leaves_nothing_and_can_be_run_again(tmp_path, capsys, monkeypatch):
    """The demo's five files land together: a failure at the last leaves none, and the next run is not refused.

    Before, a failure at the report left ``panels.png``, ``sigma_sweep.*`` and ``table.csv``, and the next
    ``xrfgpu demo`` into that folder was refused: "not written by an earlier xrfgpu demo".
    (The experiment is cut to one method and two σ here, to keep the test fast.)
    """
    from xrfgpu import demo

    real_experiment, real_sweep, real_findings = demo.run_experiment, demo.sigma_sweep, demo.findings
    monkeypatch.setattr(demo, "run_experiment", lambda size, **kw: real_experiment(size, methods=["rl-knife"], **kw))
    monkeypatch.setattr(demo, "sigma_sweep", lambda counts, chart, sigmas, **kw: real_sweep(counts, chart, sigmas[:2],
                                                                                             **kw))
    monkeypatch.setattr(demo, "findings", _disk_full)  # the report's last section: every other file is made
    out = tmp_path / "demo"
    assert main(["demo", str(out), "-q"]) == 1
    assert "No space left on device" in capsys.readouterr().err
    assert not out.exists() or _everything_under(out) == []
    monkeypatch.setattr(demo, "findings", real_findings)
    assert main(["demo", str(out), "-q"]) == 0
    assert sorted(_everything_under(out)) == ["panels.png", "report.md", "sigma_sweep.csv", "sigma_sweep.png",
                                              "table.csv"]


# --------------------------------------------------------------------------- 5b. tiles and the record of clipping


@pytest.mark.parametrize("method", ["rl", "wiener", "tikhonov"])
def test_tiles_clip_a_fitted_maps_negative_values_as_the_whole_map_does_and_record_it(tmp_path, method):
    """A fitted map with negative values (fit noise below an offset), restored whole and in 32-px tiles.

    The whole map (the front door) sets the negative values to 0 and records the fraction. Before, the tiled
    record left the fraction out (rl), and Wiener and Tikhonov tiles restored the negative values as
    they were: a flux 5 % off the whole map's, where docs/command_line.md promises tiles equal to 1e-4.
    """
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:64, :64]
    counts = rng.poisson(30 + 300 * ((yy - 30) ** 2 + (xx - 28) ** 2 < 150)).astype(np.float64)
    fitted = (counts * 0.01 - 0.3).astype(np.float32)
    negative = float(np.mean(fitted < 0))
    assert 0.3 < negative < 0.5
    src = tmp_path / "neg_Fe.npy"
    np.save(src, fitted)
    results = {}
    for label, tile in (("whole", []), ("tiled", ["--tile", "32"])):
        out = tmp_path / f"{label}.npz"
        iterations = ["--iterations", "4"] if method in ("rl", "fista") else []  # a filter refuses it
        assert main(["restore", str(src), "-o", str(out), "--psf-sigma", "1.5px", *iterations,
                     "--method", method, "--background", "0.05", "-q", *tile]) == 0
        record = json.loads(Path(f"{out}.json").read_text())["xrfgpu"]["provenance"]
        results[label] = (np.load(out)["Fe"], record["parameters"]["per_element"]["Fe"])
    (whole, whole_record), (tiled, tiled_record) = results["whole"], results["tiled"]
    assert whole_record["negative_fraction_clipped"] == pytest.approx(negative)
    assert tiled_record["negative_fraction_clipped"] == pytest.approx(negative)
    np.testing.assert_allclose(tiled, whole, rtol=0, atol=1e-4 * float(np.max(np.abs(whole))))


def test_tiled_fista_takes_a_given_lam_as_the_whole_map_does(tmp_path):
    """``--lam`` with FISTA on a fitted map (HXN Fe): tiles equal the whole map, which applies λ in effective counts.

    Before, the tiles applied λ to the map in its own units, 1/gain times weaker on this map: 2 % of the
    maximum apart and 7 % more flux than the whole map. (The default λ, a fraction of the map's range,
    was already the same in both.)
    """
    outs = {}
    for label, tile in (("whole", []), ("tiled", ["--tile", "64"])):
        out = tmp_path / f"{label}.npz"
        assert main(["restore", str(FE), "-o", str(out), "--psf-sigma", "0.5px", "--method", "fista",
                     "--iterations", "20", "--lam", "0.5", "-q", *tile]) == 0
        outs[label] = np.load(out)["Fe_K"]
        record = json.loads(Path(f"{out}.json").read_text())["xrfgpu"]["provenance"]
        assert record["parameters"]["per_element"]["Fe_K"]["lam"] == 0.5  # the value given, as given
    np.testing.assert_allclose(outs["tiled"], outs["whole"], rtol=0, atol=1e-4 * float(np.max(outs["whole"])))


@pytest.mark.slow
@pytest.mark.parametrize("options, expected", [
    (["--psf-sigma", "0.5px", "--background", "0.01"], 1),  # the restoration's own measurement
    (["--psf-sigma", "0.5px"], 1),  # the background's, passed on to the restoration
    # measured once for the record's gain, as the untiled Wiener run records it (it recorded none before)
    (["--psf-sigma", "0.5px", "--background", "0.01", "--method", "wiener", "--tile", "64"], 1),
    (["--psf-sigma", "0.5px", "--background", "0.01", "--method", "fista", "--lam", "0.5", "--tile", "64"], 1),
    (["--psf-auto", "--joint"], 1),  # the CLI's measurement, passed on to the joint restoration
    (["--psf-sigma", "0.5px", "--background", "0.01", "--joint"], 1),  # the joint restoration's own
], ids=["given", "auto-background", "tiled-wiener", "tiled-fista-lam", "joint-auto", "joint-given"])
def test_no_run_measures_a_maps_gain_more_than_once(tmp_path, monkeypatch, options, expected):
    """Gain measurements per map for the other ways of running: at most one, none where nothing needs it."""
    folder = tmp_path / "maps"
    folder.mkdir()
    for name in ("Fe_K", "Cr_K"):
        (folder / f"SUM_maps_XRF_{name}.tiff").write_bytes((FE.parent / f"SUM_maps_XRF_{name}.tiff").read_bytes())
    calls = _count_gain_estimates(monkeypatch)
    iterations = [] if "wiener" in options else ["--iterations", "3"]  # a filter refuses it
    assert main(["restore", str(folder), "-o", str(tmp_path / "o.npz"), *iterations, "-q", *options]) == 0
    assert len(calls) == 2 * expected


@pytest.mark.parametrize("kind", ["dot", "edge", "blind"])
def test_psf_fits_refuse_missing_pixels_naming_the_file_map_and_count(tmp_path, capsys, kind):
    """``xrfgpu psf`` on a CSV with blank cells: one line naming the file, the map and how many pixels are missing.

    Before, the fit said "image contains NaN or infinite values; mask or fill them first" (dot), without the
    file, and named a library argument (``mask``) the command does not have.
    """
    m = _csv_map(shape=(48, 48))
    src = tmp_path / "scan_Fe.csv"
    _write_csv(src, m, {(3, 5), (10, 11)})
    capsys.readouterr()
    assert main(["psf", kind, str(src), "--pixel-size", "1um", "-o", str(tmp_path / "p.toml"),
                 "--figure", str(tmp_path / "p.png")]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("Error")]
    assert len(err) == 1 and str(src) in err[0] and "'Fe'" in err[0] and "2 missing pixels" in err[0]
    assert "mask" not in err[0]
    assert not (tmp_path / "p.toml").exists() and not (tmp_path / "p.png").exists()
