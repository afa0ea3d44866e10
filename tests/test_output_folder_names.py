"""Outputs named through two spellings of one folder: a relative default beside an absolute ``-o``.

``xrfgpu psf dot map.tif -o /abs/dir/psf.toml``, run from ``/abs/dir``, writes the table by its absolute
name and the fit figure by its default, relative name (``map_psf_dot.png``). Both lie in one folder.
The writer takes an exclusive ``flock`` on each output folder while it publishes; before this test the
folders were told apart by their spelling, so the process opened the folder twice and its second
``flock`` waited for its own first one, forever (found on the real HXN S map). The reference here is
the outcome a user sees: the command ends, and both files are there.
"""

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import tifffile

from xrfgpu.output_safety import _folder_locks


@pytest.mark.slow
def test_psf_dot_with_an_absolute_table_and_the_default_figure_ends(tmp_path):
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:31, :33]
    dot = 2000.0 * np.exp(-((xx - 16.2) ** 2 + (yy - 15.4) ** 2) / (2 * 2.5**2)) / (2 * np.pi * 2.5**2) + 20
    tifffile.imwrite(tmp_path / "dot.tif", rng.poisson(dot).astype(np.float32))
    table = tmp_path / "cr.toml"
    done = subprocess.run([sys.executable, "-m", "xrfgpu", "psf", "dot", "dot.tif", "--pixel-size", "5um",
                           "--line", "Cr-Ka", "-o", str(table), "-q"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert table.is_file() and (tmp_path / "dot_psf_dot.png").stat().st_size > 1000


def _locks_end(names, cwd):
    """Whether ``_folder_locks(names)`` is entered and left within 10 s (run in a thread, from ``cwd``)."""
    finished = []

    def take():
        with _folder_locks(names):
            finished.append(True)

    old = os.getcwd()
    os.chdir(cwd)
    try:
        worker = threading.Thread(target=take, daemon=True)
        worker.start()
        worker.join(10.0)
    finally:
        os.chdir(old)
    return bool(finished)


def test_one_folder_under_a_relative_an_absolute_and_a_linked_name_is_locked_once(tmp_path):
    (tmp_path / "out").mkdir()
    os.symlink(tmp_path / "out", tmp_path / "link")
    assert _locks_end([str(tmp_path / "out"), "out", str(tmp_path / "link"), "./out/"], tmp_path)


def test_two_folders_are_both_locked_and_released(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    assert _locks_end([a, b], tmp_path)
    assert _locks_end([b, a], tmp_path)  # released by the first call, so the second can take them
