"""Third QA pass: how commands are invoked (working folders, relative names, default names, figures).

Each test runs the command in-process from a working folder of its own (``monkeypatch.chdir``), as a
user types it, and failed before its fix. The log of what was tried is in ``docs/qa_real_maps.md``
(third pass).
"""

import errno
import os
from pathlib import Path

import numpy as np
import pytest
import tifffile

from conftest import file_names as _files
from conftest import pretend_read_only as _read_only
from conftest import spot_counts as _spot
from xrfgpu.cli import main
from xrfgpu.io import read_maps


@pytest.mark.parametrize("figure", ["fit.tif", "fit.jpg", "fit", "fit.xyz"])
def test_psf_refuses_a_figure_format_it_cannot_mark_before_the_fit(tmp_path, monkeypatch, capsys, figure):
    # `--figure fit.tif` wrote the fit figure as an RGBA TIFF, which xrfgpu's own readers take for a map
    # file; `fit.jpg` and `fit` (no suffix, written as PNG) carried no xrfgpu mark, so `--overwrite`
    # could never replace them; `fit.xyz` ran the whole fit and then failed with Matplotlib's list of
    # formats (exit status 1). Only .png, .pdf and .svg are written; others are refused in one line first.
    monkeypatch.chdir(tmp_path)
    tifffile.imwrite("dot_Fe_K.tif", _spot())

    def no_fit(*args, **kwargs):
        raise AssertionError("the fit ran before the figure name was checked")

    monkeypatch.setattr("xrfgpu.psf.fit_dot", no_fit)
    rc = main(["psf", "dot", "dot_Fe_K.tif", "--pixel-size", "1um", "-o", "psf.toml", "--figure", figure, "-q"])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: --figure: ") and len(err.strip().splitlines()) == 1
    assert ".png" in err and ".pdf" in err and ".svg" in err
    assert _files(tmp_path) == ["dot_Fe_K.tif"]


@pytest.mark.slow
def test_psf_writes_a_pdf_figure_named_in_capitals(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tifffile.imwrite("dot_Fe_K.tif", _spot())
    assert main(["psf", "dot", "dot_Fe_K.tif", "--pixel-size", "1um", "-o", "psf.toml", "--figure", "fit.PDF",
                 "-q"]) == 0
    assert Path("fit.PDF").read_bytes()[:5] == b"%PDF-"


@pytest.mark.parametrize("figure", ["c.tif", "c.npy"])
def test_compare_refuses_a_figure_format_it_cannot_mark(tmp_path, monkeypatch, capsys, figure):
    # `compare a.tif b.tif -o c.tif` wrote the before/after figure as an RGBA TIFF
    monkeypatch.chdir(tmp_path)
    tifffile.imwrite("scan_Fe_K.tif", _spot())
    tifffile.imwrite("restored_Fe_K.tif", _spot(seed=1))
    assert main(["compare", "scan_Fe_K.tif", "restored_Fe_K.tif", "-o", figure, "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"Error: -o: figure {figure!r} must end in .png") and len(err.strip().splitlines()) == 1
    assert _files(tmp_path) == ["restored_Fe_K.tif", "scan_Fe_K.tif"]


def _two_folders(root):
    for name, seed in (("scan", 0), ("restored", 1)):
        (root / name).mkdir()
        np.savetxt(root / name / "Fe_K.csv", _spot(seed=seed), delimiter=",")


@pytest.mark.slow
@pytest.mark.parametrize("spelling", [".", "./"])
def test_compare_run_inside_the_restored_folder(tmp_path, monkeypatch, capsys, spelling):
    # `cd restored && xrfgpu compare ../scan .` failed with "PosixPath('.') has an empty name" (exit
    # status 1): the default figure is named after RESTORED, and "." has no name. It is now
    # restored_compare.png beside the folder, as `xrfgpu compare scan restored` names it.
    _two_folders(tmp_path)
    monkeypatch.chdir(tmp_path / "restored")
    assert main(["compare", "../scan", spelling, "-q"]) == 0
    assert _files(tmp_path) == ["restored", "restored_compare.png", "scan"]
    assert _files(tmp_path / "restored") == ["Fe_K.csv"]
    assert Path("../restored_compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_psf_default_names_of_a_folder_given_as_dot(tmp_path, monkeypatch, capsys):
    # `cd scan && xrfgpu psf blind . --element Fe` named its outputs "_psf.toml" and "_psf_blind.png"
    # (the name of "." is empty); they are named after the folder. (Here they would lie inside the
    # input folder, so the run is refused, naming them.)
    (tmp_path / "scan").mkdir()
    np.savetxt(tmp_path / "scan" / "Fe_K.csv", _spot(), delimiter=",")
    monkeypatch.chdir(tmp_path / "scan")
    assert main(["psf", "blind", ".", "--element", "Fe", "--map-only", "--pixel-size", "1um", "-q"]) == 2
    err = capsys.readouterr().err
    assert "'scan_psf.toml'" in err and "'_psf" not in err
    assert _files(tmp_path / "scan") == ["Fe_K.csv"]


def test_a_demo_that_fails_leaves_no_empty_folder(tmp_path, monkeypatch, capsys):
    # the command made OUTPUT_DIR before the demo ran, so the demo's own clean-up (remove the folder
    # it made when no file came, e.g. on a full disk) never applied: an empty folder was left behind
    monkeypatch.chdir(tmp_path)

    def disk_full(out, **kwargs):
        raise OSError(errno.ENOSPC, f"cannot write output {str(out / 'panels.png')!r}: No space left on device")

    monkeypatch.setattr("xrfgpu.demo._run_demo_into", disk_full)
    assert main(["demo", "report", "-q"]) == 1
    assert "No space left" in capsys.readouterr().err
    assert _files(tmp_path) == []


def test_restore_from_the_data_folder_with_relative_names(tmp_path, monkeypatch):
    # the names as typed in the data folder; the output beside the input, read back with tifffile
    monkeypatch.chdir(tmp_path)
    tifffile.imwrite("scan_Fe_K.tif", _spot())
    assert main(["restore", "./scan_Fe_K.tif", "-o", "./scan_Fe_K restored µ é.tif", "--psf-sigma", "1px",
                 "--iterations", "3", "-q"]) == 0
    assert _files(tmp_path) == ["scan_Fe_K restored µ é.tif", "scan_Fe_K restored µ é.tif.json", "scan_Fe_K.tif"]
    assert tifffile.imread("scan_Fe_K restored µ é.tif").shape == (21, 21)
    assert read_maps("scan_Fe_K restored µ é.tif").names == ["Fe_K"]


@pytest.mark.parametrize("command", ["dot", "edge", "blind"])
def test_psf_refuses_a_map_not_named_after_a_line_before_the_fit(tmp_path, monkeypatch, capsys, command):
    # a crop saved as particle_1.tif ran the whole fit (seconds on a real map) and only then said
    # "map 'particle_1' is not named after an X-ray line; say which with --line"
    monkeypatch.chdir(tmp_path)
    tifffile.imwrite("particle_1.tif", _spot())

    def no_fit(*args, **kwargs):
        raise AssertionError("the fit ran before the line was checked")

    for name in ("fit_dot", "fit_knife_edge", "estimate_sigma"):
        monkeypatch.setattr(f"xrfgpu.psf.{name}", no_fit)
    assert main(["psf", command, "particle_1.tif", "--pixel-size", "1um", "-q"]) == 2
    assert "--line" in capsys.readouterr().err
    assert _files(tmp_path) == ["particle_1.tif"]
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    if command == "dot":  # with --line the same file is measured, and the table names the line
        assert main(["psf", "dot", "particle_1.tif", "--pixel-size", "1um", "--line", "Fe-Ka", "-q"]) == 0
        assert "Fe-Ka" in Path("particle_1_psf.toml").read_text()


@pytest.mark.parametrize("command", ["restore", "psf"])
def test_a_read_only_output_folder_is_refused_before_the_work(tmp_path, monkeypatch, capsys, command):
    # on a read-only mount (found with `unshare -m` and a remounted tmpfs) the run did all its work
    # (a minute for --joint on the five HXN maps) and then failed with "[Errno 30] ... Read-only file system"
    monkeypatch.chdir(tmp_path)
    tifffile.imwrite("scan_Fe_K.tif", _spot())
    (tmp_path / "ro").mkdir()
    _read_only(monkeypatch, tmp_path / "ro")
    monkeypatch.setattr("xrfgpu.psf.fit_dot", lambda *a, **k: pytest.fail("the fit ran"))
    monkeypatch.setattr("xrfgpu.cli._run_method", lambda *a, **k: pytest.fail("the restoration ran"))
    argv = (["restore", "scan_Fe_K.tif", "-o", "ro/out.tif", "--psf-sigma", "1px"] if command == "restore" else
            ["psf", "dot", "scan_Fe_K.tif", "--pixel-size", "1um", "-o", "ro/psf.toml", "--figure", "fit.png"])
    assert main(argv + ["-q"]) == 2
    err = capsys.readouterr().err
    assert "'ro'" in err and "not writable" in err
    assert _files(tmp_path) == ["ro", "scan_Fe_K.tif"] and _files(tmp_path / "ro") == []


def test_an_output_that_is_a_dangling_link_is_refused_naming_the_link(tmp_path, monkeypatch, capsys):
    # `-o out.tif` where out.tif is a link to a path on an unmounted disk said "output 'out.tif': '.' does
    # not exist", though the working folder exists: the folder that is missing is the link's target's
    monkeypatch.chdir(tmp_path)
    tifffile.imwrite("scan_Fe_K.tif", _spot())
    os.symlink(tmp_path / "unmounted" / "x.tif", "out.tif")
    for extra in ([], ["--overwrite"]):
        assert main(["restore", "scan_Fe_K.tif", "-o", "out.tif", "--psf-sigma", "1px", "-q", *extra]) == 2
        err = capsys.readouterr().err
        assert "symbolic link" in err and repr(str(tmp_path / "unmounted")) in err and "'.'" not in err
    assert _files(tmp_path) == ["out.tif", "scan_Fe_K.tif"] and os.path.islink("out.tif")


def test_an_output_through_a_link_and_dotdot_is_checked_where_it_lands(tmp_path, monkeypatch, capsys):
    # `-o lk/../scan/inside.tif`, lk a link to data/scan: the checks took "lk/.." as the working folder
    # (os.path.abspath removes "x/.." before the link is followed), so they checked work/scan/inside.tif,
    # while the file system wrote data/scan/inside.tif: into the input folder, which rule 1 forbids
    (tmp_path / "data" / "scan").mkdir(parents=True)
    tifffile.imwrite(tmp_path / "data" / "scan" / "scan_Fe_K.tif", _spot())
    (tmp_path / "work" / "scan").mkdir(parents=True)  # the folder the lexical reading points at
    os.symlink(tmp_path / "data" / "scan", tmp_path / "work" / "lk")
    monkeypatch.chdir(tmp_path / "work")
    assert main(["restore", "../data/scan", "-o", "lk/../scan/inside.tif", "--psf-sigma", "1px", "-q"]) == 2
    assert "lies inside the input folder" in capsys.readouterr().err
    assert _files(tmp_path / "data" / "scan") == ["scan_Fe_K.tif"] and _files(tmp_path / "work" / "scan") == []


def test_an_earlier_output_in_an_input_folder_is_named(tmp_path, monkeypatch, capsys):
    # `xrfgpu restore scan_Fe_K.tif -o scan_Fe_K_restored.tif` run in the data folder, then `xrfgpu restore .
    # -o ../all.tif`: the restored map was read as a raw map and restored a second time without a word
    monkeypatch.chdir(tmp_path)
    tifffile.imwrite("scan_Fe_K.tif", _spot())
    tifffile.imwrite("scan_Cr_K.tif", _spot(seed=2))
    restore = ["--psf-sigma", "1px", "--iterations", "2"]
    assert main(["restore", "scan_Fe_K.tif", "-o", "scan_Fe_K_restored.tif", *restore, "-q"]) == 0
    capsys.readouterr()
    assert main(["restore", ".", "-o", "../all.tif", *restore]) == 0
    err = capsys.readouterr().err
    assert "Warning: scan_Fe_K_restored.tif in '.' is an earlier xrfgpu output" in err
    assert "scan_Cr_K.tif" not in err and "scan_Fe_K.tif " not in err
    assert read_maps("../all.tif").names == ["Cr_K", "Fe_K", "Fe_K_restored"]  # read, as before: only named
    # a folder of outputs only (restored maps gathered on purpose) is meant: no warning
    (tmp_path / "restored").mkdir()
    assert main(["restore", "scan_Cr_K.tif", "-o", "restored/Cr_K.tif", *restore, "-q"]) == 0
    assert main(["restore", "scan_Fe_K.tif", "-o", "restored/Fe_K.tif", *restore, "-q"]) == 0
    capsys.readouterr()
    assert main(["restore", "restored", "-o", "../again.tif", *restore]) == 0
    assert "earlier xrfgpu" not in capsys.readouterr().err


def test_a_full_disk_is_said_in_words(tmp_path, monkeypatch, capsys):
    # a full disk (a 64 KiB tmpfs) printed "Error: [Errno 28] cannot write output 'x.tif': No space left on
    # device"; docs/command_line.md ("Your files are safe") shows the line without the errno, as here
    monkeypatch.chdir(tmp_path)
    tifffile.imwrite("scan_Fe_K.tif", _spot())

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("xrfgpu.io._write_tiff", disk_full)
    assert main(["restore", "scan_Fe_K.tif", "-o", "x.tif", "--psf-sigma", "1px", "-q"]) == 1
    assert capsys.readouterr().err.strip() == "Error: cannot write output 'x.tif': No space left on device"
    assert _files(tmp_path) == ["scan_Fe_K.tif"]
