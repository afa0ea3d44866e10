"""The command line on the files XRF users have: tiling, legacy MAPS, folders, pixel units, progress.

Outputs are opened the way users open them (h5py, tifffile.imread) and
compared with an independent reference: the whole-map run of the same
command, or the input itself.
"""

import json

import h5py
import numpy as np
import pytest
import tifffile

from xrfgpu import phantom
from xrfgpu.cli import main
from xrfgpu.psf import gaussian

SHAPE = (52, 61)  # not a multiple of the tile, rows ≠ cols


@pytest.fixture(scope="module")
def count_map():
    h = gaussian(None, 2.0)
    scene = phantom.grains_and_veins((SHAPE[0] + 30, SHAPE[1] + 30), seed=4)
    blurred, _ = phantom.blurred_window(scene, h, SHAPE)
    return np.random.default_rng(5).poisson(300.0 * blurred + 30.0).astype(np.float32)


def _restore(tmp_path, src, name, *extra):
    out = tmp_path / name
    assert main(["restore", str(src), "-o", str(out), "--psf-sigma", "2px", "-q", *extra]) == 0
    with h5py.File(out, "r") as f:
        return f["xrfgpu/maps"][0], json.loads(f["xrfgpu"].attrs["provenance"])


@pytest.mark.parametrize(
    "method, extra",
    [("rl", []),  # count map: cross-validated count decided on the whole map, accelerated iterations
     ("rl", ["--iterations", "12", "--background", "0"]),
     ("wiener", []), ("tikhonov", []), ("fista", ["--iterations", "20"])],
)
def test_tile_output_equals_whole_map_output(tmp_path, count_map, method, extra):
    src = tmp_path / "map.npy"
    np.save(src, count_map)
    whole, prov_whole = _restore(tmp_path, src, "whole.h5", "--method", method, *extra)
    tiled, prov_tiled = _restore(tmp_path, src, "tiled.h5", "--method", method, "--tile", "24", *extra)
    assert np.abs(tiled - whole).max() <= 1e-4 * np.abs(whole).max()
    pw = prov_whole["parameters"]["per_element"]["map"]
    pt = prov_tiled["parameters"]["per_element"]["map"]
    assert pt["tile"] == 24 and "tiling" in pt
    assert pt.get("iterations") == pw.get("iterations") and pt.get("stop") == pw.get("stop")


def test_tile_refuses_blind_methods_with_the_reason(tmp_path, count_map, capsys):
    np.save(tmp_path / "map.npy", count_map)
    assert main(["restore", str(tmp_path / "map.npy"), "-o", str(tmp_path / "o.h5"), "--method", "blind",
                 "--tile", "24"]) == 2
    assert "whole map" in capsys.readouterr().err
