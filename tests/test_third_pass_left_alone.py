"""Third QA pass, "Found, left alone" (``docs/qa_real_maps.md``): each item reproduced, then fixed.

Each test failed before its fix: ``-o -`` wrote a file or folder named ``-``; ``xrfgpu demo`` into a
read-only folder printed a bare ``[Errno 30]``; the library's refusal of an existing output said
``pass --overwrite``; the joint record said ``kind`` (not ``map_kind``) and ``prior "dtv"`` for a map
restored with no prior; ``--gain`` for all maps classified each integer map twice or more.
"""

import errno
import os
from pathlib import Path

import numpy as np
import pytest
import tifffile

from xrfgpu.cli import main


def _spot(size=21, sigma=2.0, peak=500.0, background=20.0, seed=0):
    """A Gaussian dot scan: counts of a spot of ``sigma`` px on a flat background (float32)."""
    r = np.arange(size) - size // 2
    d2 = r[:, None] ** 2 + r[None, :] ** 2
    mean = background + peak * np.exp(-d2 / (2 * sigma**2))
    return np.random.default_rng(seed).poisson(mean).astype(np.float32)


def _files(folder):
    return sorted(p.name for p in Path(folder).iterdir())


# --------------------------------------------------------------------------- 1. `-o -`

STDOUT_CASES = {
    "restore": ["restore", "scan_Fe_K.tif", "-o", "-", "--psf-sigma", "1px", "--iterations", "2"],
    "restore-json": ["restore", "scan_Fe_K.tif", "-o", "-", "--psf-sigma", "1px", "--iterations", "2", "--json"],
    "psf-dot": ["psf", "dot", "scan_Fe_K.tif", "--pixel-size", "1um", "-o", "-"],
    "psf-edge": ["psf", "edge", "scan_Fe_K.tif", "--pixel-size", "1um", "-o", "-"],
    "psf-blind-figure": ["psf", "blind", "scan_Fe_K.tif", "--pixel-size", "1um", "--figure", "-"],
    "compare": ["compare", "scan_Fe_K.tif", "scan_Fe_K.tif", "-o", "-"],
    "demo": ["demo", "-"],
}


@pytest.mark.parametrize("case", list(STDOUT_CASES))
def test_a_dash_for_an_output_is_refused_as_standard_output(tmp_path, monkeypatch, capsys, case):
    # `-o -` wrote a folder named "-" (one CSV per map), a PSF table named "-", a figure named "-"; a
    # user typing "-" expects standard output. Refused in one line (status 2) before any work, naming the
    # option, saying standard output is not supported and what to give instead
    monkeypatch.chdir(tmp_path)
    tifffile.imwrite("scan_Fe_K.tif", _spot())
    for name in ("fit_dot", "fit_knife_edge", "estimate_sigma"):
        monkeypatch.setattr(f"xrfgpu.psf.{name}", lambda *a, **k: pytest.fail("the fit ran"))
    monkeypatch.setattr("xrfgpu.cli._run_method", lambda *a, **k: pytest.fail("the restoration ran"))
    monkeypatch.setattr("xrfgpu.demo._run_demo_into", lambda *a, **k: pytest.fail("the demo ran"))
    assert main(STDOUT_CASES[case]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("Error: ")
    assert "standard output is not supported" in err and "e.g. " in err and "./-" in err
    option = {"demo": "OUTPUT_DIR -:", "psf-blind-figure": "--figure -:"}.get(case, "-o/--output -:")
    assert option in err
    assert _files(tmp_path) == ["scan_Fe_K.tif"]


def test_a_file_named_dash_is_still_written_as_dot_slash_dash(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tifffile.imwrite("scan_Fe_K.tif", _spot())
    assert main(["restore", "scan_Fe_K.tif", "-o", "./-", "--psf-sigma", "1px", "--iterations", "2", "-q"]) == 0
    assert (tmp_path / "-").is_dir() and "Fe_K.csv" in _files(tmp_path / "-")


# --------------------------------------------------------------------------- 2. `xrfgpu demo` on a read-only folder


def _read_only(monkeypatch, folder):
    """``folder`` reports itself not writable, as a read-only mount does (root may write anywhere else)."""
    real_access = os.access
    folder = os.path.realpath(folder)

    def access(path, mode, *args, **kwargs):
        if mode & os.W_OK and os.path.realpath(path) == folder:
            return False
        return real_access(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)


@pytest.mark.parametrize("target", ["ro", "ro/report", "ro/a/b"])
def test_a_demo_into_a_read_only_folder_is_refused_naming_it_before_the_work(tmp_path, monkeypatch, capsys, target):
    # a read-only mount: `demo ro/report` printed "Error: [Errno 30] Read-only file system: 'ro/report'" (its
    # mkdir), and `demo ro` ran the whole demo before failing to write. Now refused first, in one line naming
    # the folder that cannot be written, with status 2 as the other commands' read-only output folders
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ro").mkdir()
    _read_only(monkeypatch, tmp_path / "ro")
    monkeypatch.setattr("xrfgpu.demo._run_demo_into", lambda *a, **k: pytest.fail("the demo ran"))
    monkeypatch.setattr(Path, "mkdir", lambda *a, **k: pytest.fail("mkdir ran in a read-only folder"))
    assert main(["demo", target, "-q"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Errno" not in err
    assert f"output folder {target!r}" in err and "folder 'ro' is not writable" in err
    assert "read-only file system" in err and "choose another folder" in err
    assert _files(tmp_path) == ["ro"] and _files(tmp_path / "ro") == []


def test_a_demo_folder_that_cannot_be_made_is_said_in_words(tmp_path, monkeypatch, capsys):
    # where the check cannot see it coming (an ACL, a mount that turns read-only meanwhile) the folder's mkdir
    # fails: its line names the folder and the problem, without "[Errno 30]"
    monkeypatch.chdir(tmp_path)

    def read_only_mkdir(self, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))

    monkeypatch.setattr(Path, "mkdir", read_only_mkdir)
    monkeypatch.setattr("xrfgpu.demo._run_demo_into", lambda *a, **k: pytest.fail("the demo ran"))
    assert main(["demo", "report", "-q"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "Error: cannot make output folder 'report': Read-only file system"
    assert _files(tmp_path) == []


def test_a_demo_into_a_file_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("notes.txt").write_text("mine")
    monkeypatch.setattr("xrfgpu.demo._run_demo_into", lambda *a, **k: pytest.fail("the demo ran"))
    assert main(["demo", "notes.txt", "-q"]) == 2
    err = capsys.readouterr().err
    assert "output folder 'notes.txt' is a file, not a folder" in err and len(err.strip().splitlines()) == 1
    assert Path("notes.txt").read_text() == "mine"
