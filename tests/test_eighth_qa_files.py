"""What the eighth QA pass (fourteenth session) found in how files are read.

Each test writes a file the way a user's tool writes it (tifffile, numpy) and reads it with the command line or
:func:`xrfgpu.io.read_maps`, against what the file holds, known here.
"""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from xrfgpu.cli import main
from xrfgpu.io import MapFileError, MapReadWarning, read_maps


def _dstack(count, side=64):
    """``count`` Poisson maps of ``side``² stacked on the last axis (numpy.dstack), float32."""
    rng = np.random.default_rng(count)
    return np.dstack([rng.poisson(50.0 + 10 * i, (side, side)) for i in range(count)]).astype(np.float32)


@pytest.mark.parametrize("suffix", [".tif", ".npy"])
def test_a_channels_last_file_of_narrow_strips_is_refused(tmp_path, suffix):
    # tifffile.imwrite(path, np.dstack(maps)) of four maps read as 64 maps of 64 x 4 px, restored without a word
    path = tmp_path / f"scan{suffix}"
    stack = _dstack(4)
    tifffile.imwrite(path, stack, photometric="minisblack") if suffix == ".tif" else np.save(path, stack)
    with pytest.raises(MapFileError, match=r"stack of shape \(64, 64, 4\) would be 64 maps of 64 x 4 pixels.*"
                                           r"save the stack as \(maps, rows, cols\): numpy.moveaxis"):
        read_maps(path)


def test_a_channels_last_file_that_may_be_maps_is_read_with_a_warning(tmp_path, capsys):
    path = tmp_path / "scan.tif"
    tifffile.imwrite(path, _dstack(5))  # tifffile stores 64 pages of 64 x 5 (series axes QYX)
    with pytest.warns(MapReadWarning, match=r"stack of shape \(64, 64, 5\) is read as 64 maps of 64 x 5 pixels"):
        maps = read_maps(path)
    assert len(maps) == 64 and maps.shape == (64, 5)  # as stored: the file says pages
    assert "channels last" in maps.metadata["read_warnings"][0]
    status = main(["restore", str(path), "-o", str(tmp_path / "out.tif"), "--psf-sigma", "2px", "--iterations", "2"])
    assert status == 0
    assert "Warning: input" in capsys.readouterr().err


def test_maps_of_a_file_stored_maps_first_are_read_without_a_warning(tmp_path, recwarn):
    path = tmp_path / "scan.tif"
    tifffile.imwrite(path, np.moveaxis(_dstack(5), -1, 0))
    maps = read_maps(path)
    assert len(maps) == 5 and maps.shape == (64, 64)
    assert not [w for w in recwarn if issubclass(w.category, MapReadWarning)]
