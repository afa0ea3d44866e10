"""Streaming restoration: Zarr/HDF5 in, Zarr out, on a dask.distributed LocalCluster."""

from __future__ import annotations

import json

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
zarr = pytest.importorskip("zarr")
from zarr_stores import new_array  # noqa: E402  (zarr 2 and 3)

import xrfgpu
from xrfgpu import dask as xdask
from xrfgpu.chunked_io import open_chunked, write_zarr
from xrfgpu.phantom import observe

SHAPE = (130, 147)
SIGMAS = (1.0, 1.5, 2.0)
BACKGROUNDS = (40.0, 80.0, 120.0)


@pytest.fixture(scope="module")
def stack():
    maps, psfs = [], []
    for k, (s, b) in enumerate(zip(SIGMAS, BACKGROUNDS)):
        counts, _, h = observe(SHAPE, s, seed=20 + k, background_counts=b)
        maps.append(counts)
        psfs.append(h)
    return np.stack(maps), psfs


def _relative_error(actual, reference):
    return float(np.max(np.abs(np.asarray(actual, np.float64) - reference)) / np.max(np.abs(reference)))


def _single_process(stack, psfs, num_iter):
    return [
        xrfgpu.richardson_lucy(stack[k], psfs[k], num_iter=num_iter, background=BACKGROUNDS[k]) for k in range(3)
    ]


@pytest.mark.slow
def test_local_cluster_zarr_stack(tmp_path, stack):
    distributed = pytest.importorskip("distributed")
    maps, psfs = stack
    source = tmp_path / "maps.zarr"
    z = new_array(str(source), shape=maps.shape, chunks=(1, 64, 64), dtype="float32")
    z[...] = maps
    before = sorted(p.name for p in source.rglob("*"))

    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
    ) as cluster, distributed.Client(cluster) as client:
        out = xdask.restore_zarr(
            source, tmp_path / "restored.zarr", psfs, "rl", tile=48, scheduler=client,
            num_iter=10, background=list(BACKGROUNDS),
        )
    result = zarr.open_array(store=str(out), mode="r")
    assert result.shape == maps.shape and result.dtype == np.float32
    assert result.chunks == (1, 48, 48)
    for k, whole in enumerate(_single_process(maps, psfs, 10)):
        assert _relative_error(result[k], whole) < 1e-4, k
    record = result.attrs["xrfgpu"]
    json.dumps(record)
    assert record["method"] == "rl" and record["parameters"]["num_iter"] == 10
    assert record["parameters"]["tile"] == 48 and len(record["parameters"]["halo"]) == 3
    assert record["input"]["sha256"] and record["backend"]["scheduler"] == "Client"
    assert sorted(p.name for p in source.rglob("*")) == before  # input untouched
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries left


@pytest.mark.slow
def test_hdf5_input_local_scheduler(tmp_path, stack):
    h5py = pytest.importorskip("h5py")
    maps, psfs = stack
    source = tmp_path / "scan.h5"
    with h5py.File(source, "w") as fh:
        fh.create_dataset("xrf/maps", data=maps[1], chunks=(40, 40))
        fh.create_dataset("xrf/energy", data=np.arange(4.0))
    with pytest.raises(ValueError, match="name one with dataset="):
        open_chunked(source)
    out = xdask.restore_zarr(
        source, tmp_path / "fe.zarr", psfs[1], "wiener", dataset="xrf/maps", tile=64, scheduler="local",
        balance=0.01, background=BACKGROUNDS[1],
    )
    whole = xrfgpu.wiener(maps[1], psfs[1], balance=0.01, background=BACKGROUNDS[1])
    result = zarr.open_array(store=str(out), mode="r")
    assert _relative_error(result[...], whole) < 1e-4
    assert result.attrs["xrfgpu"]["input"]["format"] == "hdf5"
    assert result.attrs["xrfgpu"]["dataset"] == "xrf/maps"
    # existing output is refused, then replaced on request
    with pytest.raises(FileExistsError):
        xdask.restore_zarr(source, out, psfs[1], "wiener", dataset="xrf/maps", tile=64)
    xdask.restore_zarr(source, out, psfs[1], "wiener", dataset="xrf/maps", tile=100, overwrite=True)
    assert zarr.open_array(store=str(out), mode="r").chunks == (100, 100)


def test_open_chunked_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        open_chunked(tmp_path / "missing.zarr")
    other = tmp_path / "notes.txt"
    other.write_text("not a map")
    with pytest.raises(ValueError, match="neither a Zarr store nor an HDF5 file"):
        open_chunked(other)
    with pytest.raises(ValueError, match="scheduler must be"):
        xdask.restore_zarr(tmp_path / "missing.zarr", tmp_path / "o.zarr", np.ones((3, 3)), scheduler="bogus")


def test_write_zarr_is_atomic_on_failure(tmp_path):
    def boom(block):
        raise RuntimeError("worker died")

    lazy = da.ones((20, 20), chunks=10).map_blocks(boom, dtype=float)
    with pytest.raises(RuntimeError, match="worker died"):
        write_zarr(lazy, tmp_path / "out.zarr")
    assert list(tmp_path.iterdir()) == []
