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
