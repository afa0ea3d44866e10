"""What the sixth QA pass (28 November) found outside the readers: a stale sidecar that let
``--overwrite`` replace a user's own file, and the missing-pixel paths (an infinite value the user
had already marked missing, a σ called unreliable but recorded reliable, the CLI record without
missing pixels, ``cv_stop`` reading the values of missing pixels)."""

from __future__ import annotations

import hashlib

import h5py
import numpy as np
import pytest
import tifffile

from xrfgpu.io import ElementMaps, write_maps
from xrfgpu.output_safety import UnsafeOutputError, check_outputs, is_xrfgpu_output


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _users_own(path):
    """What a user saves under a name xrfgpu used before: a file of the same format with their data."""
    suffix = path.suffix
    if suffix == ".tif":
        tifffile.imwrite(path, np.ones((20, 20), np.float32))
    elif suffix == ".h5":
        with h5py.File(path, "w") as f:
            f["my_analysis"] = np.arange(10)
    elif suffix == ".npz":
        np.savez(path, mine=np.ones(3))
    elif suffix == ".npy":
        np.save(path, np.ones((20, 21)))
    else:
        np.savetxt(path, np.ones((5, 7)), delimiter=",")


@pytest.mark.parametrize("suffix", [".tif", ".h5", ".npz", ".npy", ".csv"])
def test_a_stale_sidecar_does_not_let_overwrite_replace_the_users_file(tmp_path, suffix):
    out = tmp_path / f"out{suffix}"
    maps = ElementMaps({"Fe": np.arange(12, dtype=np.float32).reshape(3, 4)})
    write_maps(out, maps)
    assert is_xrfgpu_output(out)[0]
    check_outputs([out], overwrite=True)  # xrfgpu's own earlier output may be replaced
    _users_own(out)  # the sidecar out.*.json of the earlier run stays beside it
    assert (tmp_path / f"out{suffix}.json").exists()
    before = _digest(out)
    ok, why = is_xrfgpu_output(out)
    assert not ok and "replaced after xrfgpu wrote it" in why
    with pytest.raises(UnsafeOutputError, match="replaced after xrfgpu wrote it"):
        write_maps(out, maps, overwrite=True)
    assert _digest(out) == before
