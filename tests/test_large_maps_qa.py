"""Fifth QA pass: large maps, many maps and streams (Dask tiles, Zarr/HDF5, stacks, dask.distributed).

Every test here failed before its fix (see ``docs/qa_real_maps.md``, "Fifth pass"). The maps are the
real HXN Fe map of ``tests/data`` mirror-tiled to a few hundred pixels, or small MAPS-layout stacks,
so the tests stay fast; the runs on 1024²–2048² maps and 20-map stacks are in the QA log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tifffile

da = pytest.importorskip("dask.array")
zarr = pytest.importorskip("zarr")
from zarr_stores import ZARR_MAJOR, new_array, new_member  # noqa: E402  (zarr 2 and 3)
h5py = pytest.importorskip("h5py")

import xrfgpu
from xrfgpu import dask as xdask
from xrfgpu.chunked_io import open_chunked, write_zarr
from xrfgpu.cli import main
from xrfgpu.output_safety import is_temp_name
from xrfgpu.psf import gaussian

from conftest import to_numpy

DATA = Path(__file__).parent / "data"
FE = DATA / "hxn_nanoparticles_xrf" / "SUM_maps_XRF_Fe_K.tiff"
REPO = Path(__file__).resolve().parents[1]


def _mirrored(shape):
    """The real 160² HXN Fe map, mirror-tiled (``a | a[::-1]``) to ``shape``: a real-looking larger map."""
    a = tifffile.imread(FE).astype(np.float32)
    row = np.concatenate([a, a[::-1]], 0)
    full = np.concatenate([row, row[:, ::-1]], 1)
    reps = (-(-shape[0] // full.shape[0]), -(-shape[1] // full.shape[1]))
    return np.ascontiguousarray(np.tile(full, reps)[: shape[0], : shape[1]])


def _maps_stack(path, maps, names):
    """A MAPS v9-layout HDF5 file (``MAPS/XRF_roi``, ``channel_names`` as bytes, ``x_axis`` in mm)."""
    with h5py.File(path, "w") as f:
        f["MAPS/XRF_roi"] = np.stack(maps).astype(np.float64)
        f["MAPS/channel_names"] = np.array([n.encode() for n in names])
        f["MAPS/x_axis"] = np.arange(maps[0].shape[1]) * 0.01
        f["MAPS/y_axis"] = np.arange(maps[0].shape[0]) * 0.01
    return path


# --------------------------------------------------------------------------- 1. tiles = whole map


@pytest.mark.parametrize("method", ["rl", "wiener", "tikhonov", "fista"])
def test_tiles_equal_the_whole_real_map_with_tiles_not_dividing_it(method):
    # works as documented (kept as a check on a real map): 150 x 173 tiles of a 301 x 347 map, and a
    # tile (16) far under the halo; the whole-map engine is the independent reference
    fe = _mirrored((301, 347))
    h = gaussian(None, 1.5)
    kwargs = {"num_iter": 10} if method in ("rl", "fista") else {}
    whole = {"rl": xrfgpu.richardson_lucy, "wiener": xrfgpu.wiener, "tikhonov": xrfgpu.tikhonov,
             "fista": xrfgpu.fista}[method](fe, h, background=0.003, **kwargs)
    for tile in (150, 16):
        part = fe if tile == 150 else fe[:90, :101]
        ref = whole if tile == 150 else {"rl": xrfgpu.richardson_lucy, "wiener": xrfgpu.wiener,
                                         "tikhonov": xrfgpu.tikhonov, "fista": xrfgpu.fista}[method](
            part, h, background=0.003, **kwargs)
        tiled = xdask.restore(da.from_array(part, chunks=(97, 89)), h, method, tile=tile, background=0.003,
                              **kwargs).compute()
        assert tiled.shape == part.shape and tiled.dtype == np.float32
        assert np.max(np.abs(tiled - ref)) <= 1e-4 * np.max(np.abs(ref))


def test_a_psf_larger_than_the_map_is_named_in_the_callers_shape():
    # dask.restore of a 2 x 500 map with a 13 x 13 PSF said "larger than the map (2, 160)": a tile's shape with
    # its halo, not the map the caller gave (the whole-map engine names (2, 500))
    h = gaussian(None, 1.5)
    with pytest.raises(ValueError, match=r"\(2, 500\)") as err:
        xdask.restore(np.full((2, 500), 3.0, np.float32), h, "rl", tile=100, num_iter=5)
    assert "160" not in str(err.value)
    with pytest.raises(ValueError, match=r"map 1 of the stack.*\(2, 500\)"):
        xdask.restore(np.full((2, 2, 500), 3.0, np.float32), [np.ones((1, 3)) / 3, h], "wiener", tile=100)


# --------------------------------------------------------------------------- 2. streams


@pytest.mark.parametrize("name", ["out.h5", "out.tif", "out.npy", "OUT.HDF5"])
def test_restore_zarr_refuses_an_output_named_as_another_format(tmp_path, name):
    # restore_zarr(..., "out.h5") wrote a Zarr folder called out.h5: h5py cannot open it, and xrfgpu's own
    # readers take the .h5 suffix for an HDF5 file
    src = tmp_path / "fe.zarr"
    new_array(str(src), shape=(64, 64), chunks=(32, 32), dtype="float32")[...] = _mirrored((64, 64))
    with pytest.raises(ValueError, match=r"Zarr store") as err:
        xdask.restore_zarr(src, tmp_path / name, gaussian(None, 1.0), "rl", tile=32, num_iter=2)
    assert name in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fe.zarr"]


def _half_written(tmp_path, monkeypatch):
    """Run write_zarr until half its chunks are written, then stop it; return the temporary store as left."""
    import xrfgpu.chunked_io as chunked_io

    seen = {}

    def stop_half_way(stored):
        (tmp,) = [p for p in tmp_path.iterdir() if is_temp_name(p.name)]
        z = zarr.open_array(store=str(tmp), mode="r+")
        z[:32, :] = 1.0  # the first two of four chunks written, as a run stopped half way leaves them
        seen["attrs"] = dict(zarr.open_array(store=str(tmp), mode="r").attrs)
        seen["data"] = zarr.open_array(store=str(tmp), mode="r")[...]
        with pytest.raises(ValueError, match="not finished"):
            open_chunked(tmp)
        raise KeyboardInterrupt

    monkeypatch.setattr(chunked_io, "_compute_to_the_last_task", stop_half_way)
    with pytest.raises(KeyboardInterrupt):
        write_zarr(da.ones((64, 64), chunks=(32, 32), dtype="f4"), tmp_path / "out.zarr", attrs={"xrfgpu": {}})
    return seen


def test_a_half_written_store_does_not_look_finished(tmp_path, monkeypatch):
    # a restore_zarr killed mid-way (SIGKILL) left .out.zarr.xrfgpu-tmp-…: zarr opened it as a complete
    # (2048, 2048) float32 array whose unwritten chunks read as 0.0 (84 % of the pixels), with no mark, and
    # xrfgpu.chunked_io.open_chunked read it as input
    seen = _half_written(tmp_path, monkeypatch)
    assert "xrfgpu" not in seen["attrs"] and "not finished" in seen["attrs"]["xrfgpu_incomplete"]
    assert np.all(seen["data"][:32] == 1.0) and np.all(np.isnan(seen["data"][32:]))  # never a plausible 0
    assert list(tmp_path.iterdir()) == []  # removed on the interrupt


def test_a_finished_store_has_its_record_and_no_incomplete_mark(tmp_path):
    out = write_zarr(da.zeros((64, 64), chunks=(32, 32), dtype="f4"), tmp_path / "z.zarr", attrs={"xrfgpu": {"a": 1}})
    z = zarr.open_array(store=str(out), mode="r")
    assert dict(z.attrs) == {"xrfgpu": {"a": 1}}
    assert np.array_equal(z[...], np.zeros((64, 64), np.float32))  # zeros written, not the NaN fill
    assert open_chunked(out).shape == (64, 64)


@pytest.mark.slow
def test_a_store_left_by_a_killed_run_is_marked_and_refused(tmp_path):
    # the real thing: the writing process dies of SIGKILL with half its chunks written
    script = textwrap.dedent(f"""
        import os, signal, numpy as np, dask, dask.array as da
        from xrfgpu.chunked_io import write_zarr
        def block(x, block_info=None):
            if block_info[0]["chunk-location"] == (1, 0):
                os.kill(os.getpid(), signal.SIGKILL)
            return x
        a = da.ones((64, 64), chunks=(32, 64), dtype="f4").map_blocks(block, dtype="f4")
        with dask.config.set(scheduler="synchronous"):
            write_zarr(a, {str(tmp_path / "out.zarr")!r}, attrs={{"xrfgpu": {{}}}})
    """)
    run = subprocess.run([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert run.returncode == -signal.SIGKILL
    (left,) = list(tmp_path.iterdir())
    assert is_temp_name(left.name) and not (tmp_path / "out.zarr").exists()
    z = zarr.open_array(store=str(left), mode="r")
    assert "xrfgpu" not in z.attrs and "xrfgpu_incomplete" in z.attrs
    data = z[...]
    assert np.all(np.isnan(data[32:])) and not np.any(data == 0)  # unwritten pixels read NaN, never a plausible 0
    with pytest.raises(ValueError, match="not finished"):
        open_chunked(left)


# --------------------------------------------------------------------------- 3. many maps


def test_a_corrupt_map_in_a_tiled_or_joint_stack_is_refused_before_any_map_is_restored(tmp_path, capsys,
                                                                                        monkeypatch):
    # 20 MAPS maps with --tile: a NaN map (the last) was refused after the 19 others had been restored
    # (29 s on 256² maps; hours on a large scan). NaN pixels are restored now (--tile since the ninth and tenth
    # sessions, --joint since the eleventh); a map that no method takes (infinite values) must still be refused
    # before the first map starts
    import xrfgpu.cli as cli

    fe = _mirrored((48, 48)).astype(np.float64)
    bad = fe.copy()
    bad[10:12, :] = np.inf
    src = _maps_stack(tmp_path / "scan.h5", [fe, fe * 2, bad], ["Fe", "Ca", "Zn"])
    calls = []
    monkeypatch.setattr(cli, "_run_tiled", lambda *a, **k: calls.append(a) or pytest.fail("restored a map"))
    monkeypatch.setattr(cli, "_run_joint", lambda *a, **k: calls.append(a) or pytest.fail("restored the maps"))
    for extra in (["--joint"], ["--tile", "32"]):
        out = tmp_path / "o.h5"
        code = main(["restore", str(src), "--dataset", "XRF_roi", "-o", str(out), "--psf-sigma", "1px",
                     "--iterations", "3", *extra])
        err = capsys.readouterr().err
        assert code == 2 and "'Zn'" in err and "infinite" in err, err
        assert "Fe:" not in err and "[1/3]" not in err  # no map was started
        assert not out.exists()
    assert calls == []


def test_restore_stack_names_the_maps_with_infinite_values(xp):
    # (NaN pixels are missing pixels since the tenth session: tests/test_stack_missing_pixels.py)
    stack = np.stack([_mirrored((40, 40))] * 4)
    stack[2, 5, 5] = np.inf
    stack[3, 0, 0] = -np.inf
    stack[1, 4, 4] = np.nan
    with pytest.raises(ValueError, match=r"stack \(maps 2, 3\) contains infinite values"):
        xrfgpu.restore_stack(xp.asarray(stack), xp.asarray(gaussian(None, 1.0)), "rl", num_iter=2)


@pytest.mark.slow
def test_restore_zarr_names_the_element_of_a_bad_map(tmp_path):
    # restore_zarr of a MAPS stack said "map 2 of the stack contains NaN", though the file names it. Since the
    # tenth session NaN pixels are missing pixels (restored as each map's whole-map run restores them); an
    # infinite value, or a map whose every pixel is missing, is refused naming the element
    fe = _mirrored((48, 48)).astype(np.float64)
    for value, name, match in ((np.inf, "Infmap", r"map 2 of the stack \('Infmap'\) contains infinite values"),
                               (np.nan, "Blank", r"every pixel of map 2 of the stack \('Blank'\) is missing")):
        bad = fe.copy()
        if name == "Blank":
            bad[...] = value
        else:
            bad[3, 3] = value
        src = _maps_stack(tmp_path / f"{name}.h5", [fe, fe, bad], ["Fe", "Ca", name])
        with pytest.raises(ValueError, match=match):
            xdask.restore_zarr(src, tmp_path / "o.zarr", gaussian(None, 1.0), "rl", dataset="MAPS/XRF_roi",
                               tile=32, num_iter=2)
        assert not (tmp_path / "o.zarr").exists()
    nan = fe.copy()
    nan[3, 3] = np.nan
    src = _maps_stack(tmp_path / "scan.h5", [fe, fe, nan], ["Fe", "Ca", "NaNmap"])
    xdask.restore_zarr(src, tmp_path / "o.zarr", gaussian(None, 1.0), "rl", dataset="MAPS/XRF_roi", tile=32,
                       num_iter=2)
    import zarr

    out = zarr.open_array(str(tmp_path / "o.zarr"), mode="r")[...]
    whole = xrfgpu.richardson_lucy(nan, gaussian(None, 1.0), num_iter=2)
    assert np.all(np.isfinite(out)) and np.abs(out[2] - whole).max() <= 1e-4 * np.abs(whole).max()


def test_restore_stack_of_a_mirrored_maps_stack_equals_map_by_map(xp):
    # works: a flat map among real ones keeps its level; every map equals its own whole-map run
    fe = _mirrored((64, 72)).astype(np.float64)
    stack = np.stack([fe, np.full_like(fe, 7.0), fe[::-1] * 3])
    h = gaussian(None, 1.2)
    out = to_numpy(xrfgpu.restore_stack(xp.asarray(stack), xp.asarray(h), "rl", num_iter=10, background=0.0))
    for k in range(3):
        ref = xrfgpu.richardson_lucy(stack[k], h, num_iter=10, background=0.0)
        assert np.max(np.abs(out[k] - ref)) <= 1e-9 * np.max(np.abs(ref))
    assert np.allclose(out[1], 7.0, rtol=1e-9)


# --------------------------------------------------------------------------- 4. dask.distributed


@pytest.mark.slow
def test_a_process_cluster_gives_the_local_numbers_and_survives_a_worker_death():
    distributed = pytest.importorskip("distributed")
    fe = _mirrored((300, 320))
    h = gaussian(None, 1.5)
    lazy = xdask.restore(fe, h, "rl", tile=100, num_iter=20, background=0.003)
    local = lazy.compute(scheduler="threads")
    whole = xrfgpu.richardson_lucy(fe, h, num_iter=20, background=0.003)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        remote = client.compute(lazy).result(timeout=120)
        assert np.max(np.abs(remote - whole)) <= 1e-4 * np.max(whole)
        assert np.max(np.abs(remote - local)) <= 1e-5 * np.max(whole)  # BLAS threads differ on workers: rounding
        long = client.compute(xdask.restore(fe, h, "rl", tile=64, num_iter=300, background=0.003))
        pid = next(iter(client.run(os.getpid).values()))
        os.kill(pid, signal.SIGKILL)  # the nanny restarts it; its tasks are recomputed elsewhere
        again = long.result(timeout=240)
    ref = xdask.restore(fe, h, "rl", tile=64, num_iter=300, background=0.003).compute(scheduler="threads")
    assert np.max(np.abs(again - ref)) <= 1e-5 * np.max(ref)


class _StoredMap:
    """A map on disk as zarr and h5py present one: shape, dtype, chunks, and reads by slices (recorded)."""

    def __init__(self, data, chunks):
        self.data, self.chunks = data, chunks
        self.shape, self.dtype, self.ndim = data.shape, data.dtype, data.ndim
        self.largest_read = 0

    def __getitem__(self, key):
        out = self.data[key]
        self.largest_read = max(self.largest_read, out.size)
        return out


@pytest.mark.parametrize("chunks", [(40, 50), None])
def test_a_zarr_or_h5py_array_is_read_in_pieces_not_whole(chunks):
    # xrfgpu.dask.restore(zarr.open_array(...)) wrapped the array with from_array(chunks=-1): the first task read
    # the whole map (an 8192² float32 Zarr map: 905 MiB peak RSS against 289 MiB through da.from_zarr)
    fe = _mirrored((130, 170))
    stored = _StoredMap(fe, chunks)
    h = gaussian(None, 1.0)
    tiled = xdask.restore(stored, h, "wiener", tile=64, background=0.003).compute(scheduler="threads")
    assert stored.largest_read <= (40 * 50 if chunks else 64 * 64)
    ref = xrfgpu.wiener(fe, h, background=0.003)
    assert np.max(np.abs(tiled - ref)) <= 1e-4 * np.max(np.abs(ref))


def test_restore_zarr_records_the_zarr_version_that_wrote_it(tmp_path):
    # the record listed numpy, scipy, dask, h5py, tifffile but not zarr, whose version decides the store's format
    src = tmp_path / "fe.zarr"
    new_array(str(src), shape=(64, 64), chunks=(32, 32), dtype="float32")[...] = _mirrored((64, 64))
    out = xdask.restore_zarr(src, tmp_path / "o.zarr", gaussian(None, 1.0), "wiener", tile=32, background=0.003)
    z = zarr.open_array(store=str(out), mode="r")
    assert z.attrs["xrfgpu"]["versions"]["zarr"] == zarr.__version__
    # the store's format is the installed zarr's own (v3 metadata under zarr 3, v2 under zarr 2)
    assert (Path(out) / ("zarr.json" if ZARR_MAJOR >= 3 else ".zarray")).is_file()
    assert z.chunks == (32, 32) and z.dtype == np.float32
    assert "xrfgpu_incomplete" not in z.attrs
    ref = xrfgpu.wiener(_mirrored((64, 64)), gaussian(None, 1.0), background=0.003)
    assert np.max(np.abs(z[...] - ref)) <= 1e-4 * np.max(np.abs(ref))


def test_a_joint_run_says_it_is_running(tmp_path, monkeypatch):
    # --joint on 18 maps of 256² ran for more than 15 minutes after the per-map lines with nothing on the
    # terminal (8 maps of 128²: 215 s); the other long steps show a stage with its elapsed seconds
    import io

    import xrfgpu.cli as cli

    stream = io.StringIO()
    monkeypatch.setattr(cli._Progress, "for_options", classmethod(lambda cls, quiet, as_json: cls(True, stream)))
    fe = _mirrored((40, 40)).astype(np.float64)
    src = _maps_stack(tmp_path / "scan.h5", [fe, fe[::-1] * 2], ["Fe", "Ca"])
    assert main(["restore", str(src), "--dataset", "XRF_roi", "-o", str(tmp_path / "o.h5"), "--psf-sigma", "1px",
                 "--joint", "--iterations", "3"]) == 0
    assert "joint restoration of 2 maps" in stream.getvalue()


def test_chunk_type_cupy_without_cupy_says_what_to_install(tmp_path, monkeypatch):
    # restore_zarr(..., chunk_type="cupy") without CuPy: a bare "No module named 'cupy'" after opening the input
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy raises ImportError, as where it is not installed
    src = tmp_path / "fe.zarr"
    new_array(str(src), shape=(64, 64), chunks=(32, 32), dtype="float32")[...] = _mirrored((64, 64))
    with pytest.raises(ImportError, match=r"chunk_type='cupy' needs CuPy.*pip install"):
        xdask.restore_zarr(src, tmp_path / "o.zarr", gaussian(None, 1.0), "rl", tile=32, num_iter=2,
                           chunk_type="cupy")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fe.zarr"]


def test_a_temporary_hdf5_file_is_not_read_as_input(tmp_path):
    # a .h5 output's temporary left by SIGKILL (.o.h5.xrfgpu-tmp-…) has the HDF5 signature: open_chunked read it
    from xrfgpu.output_safety import temp_name

    left = tmp_path / temp_name("o.h5")
    with h5py.File(left, "w") as f:
        f["maps"] = np.ones((8, 8))
    with pytest.raises(ValueError, match="not finished"):
        open_chunked(left, "maps")


def _axo(dataset="MAPS/XRF_roi"):
    with h5py.File(DATA / "aps_2ide_maps_axo_std" / "axo_std.h5", "r") as f:
        return f[dataset][()], [n.decode() for n in f["MAPS/channel_names"][()]]


@pytest.mark.parametrize("method", ["rl", "wiener"])
def test_tiles_smaller_than_the_halo_on_a_map_smaller_than_the_halo(method):
    # dask.restore of the real 11 x 11 MAPS maps in tiles of 8: "The overlapping depth 20 is larger than your
    # array 11" (Dask's words, naming no xrfgpu argument); the whole-map engine restores them
    roi, _ = _axo()
    fe = roi[11]
    h = gaussian(None, 0.8)
    # Wiener at a given weight: an 11 x 11 map seen through a 0.8 px spot has no frequencies blocked to read
    # its noise from ("auto" refuses it by name, NoiseNotReadableError)
    kwargs = {"num_iter": 5} if method == "rl" else {"balance": 0.01}
    engine = xrfgpu.richardson_lucy if method == "rl" else xrfgpu.wiener
    tiled = xdask.restore(fe, h, method, tile=8, background=200.0, **kwargs).compute()
    ref = engine(fe, h, background=200.0, **kwargs)
    assert tiled.dtype == np.float64 and np.max(np.abs(tiled - ref)) <= 1e-9 * np.max(np.abs(ref))
    stack = xdask.restore(roi[[11, 14]], h, method, tile=8, background=[200.0, 180.0], **kwargs).compute()
    assert np.max(np.abs(stack[0] - ref)) <= 1e-9 * np.max(np.abs(ref))


def test_tiled_rl_iteration_by_iteration_on_a_map_smaller_than_the_halo():
    from xrfgpu.dask_rl import richardson_lucy as tiled_rl

    roi, _ = _axo()
    fe = roi[11]
    h = gaussian(None, 1.25)  # 11 x 11: exact halo 10, more than a tile of 8
    ref = xrfgpu.richardson_lucy(fe, h, num_iter=5, background=200.0, accelerate=True)
    out = tiled_rl(fe, h, tile=8, num_iter=5, background=200.0)
    assert np.max(np.abs(out - ref)) <= 1e-9 * np.max(np.abs(ref))


@pytest.mark.slow
def test_restore_zarr_of_the_real_maps_file_in_tiles_smaller_than_its_maps(tmp_path):
    out = xdask.restore_zarr(DATA / "aps_2ide_maps_axo_std" / "axo_std.h5", tmp_path / "roi.zarr", gaussian(None, 0.8),
                             "wiener", dataset="MAPS/XRF_roi", tile=8, background=0.0, balance=0.01)
    z = zarr.open_array(store=str(out), mode="r")
    roi, names = _axo()
    assert z.shape == roi.shape and z.dtype == np.float64 and z.attrs["xrfgpu"]["elements"] == names
    ref = xrfgpu.restore_stack(roi, gaussian(None, 0.8), "wiener", background=0.0, balance=0.01)
    assert np.max(np.abs(z[...] - ref)) <= 1e-9 * np.max(np.abs(ref))


def test_tiled_rl_names_a_map_with_negative_values_before_any_tile_runs(tmp_path, monkeypatch):
    # restore_zarr(axo_std.h5, dataset="MAPS/XRF_roi_plus") with RL: the real Co map has 10 negative pixels
    # (down to -2.65); the engine refused them only inside the tile that held them ("image has negative
    # values"), after the tiles before it, naming no map
    calls = []
    monkeypatch.setattr(xdask, "_call_engine", lambda *a, **k: calls.append(a) or pytest.fail("a tile ran"))
    with pytest.raises(ValueError, match=r"map 12 of the stack \('Co'\): minimum -2\.64736"):
        xdask.restore_zarr(DATA / "aps_2ide_maps_axo_std" / "axo_std.h5", tmp_path / "o.zarr", gaussian(None, 0.8),
                           "rl", dataset="MAPS/XRF_roi_plus", tile=8, num_iter=3)
    with pytest.raises(ValueError, match=r"negative values \(the map: minimum -1\)"):
        fe = _mirrored((40, 40))
        fe[5, 5] = -1
        xdask.restore(fe, gaussian(None, 1.0), "rl", tile=16, num_iter=2)
    assert calls == [] and list(tmp_path.iterdir()) == []


def test_a_zarr_group_lists_its_nested_arrays(tmp_path):
    # a group holding maps/fe and maps/ca: "is a Zarr group with arrays []; name one with dataset="
    g = zarr.open_group(str(tmp_path / "scan.zarr"), mode="w")
    new_member(g, "maps/fe", shape=(40, 40), chunks=(20, 20), dtype="f4")[...] = _mirrored((40, 40))
    new_member(g, "maps/ca", shape=(40, 40), chunks=(20, 20), dtype="f4")[...] = 1.0
    with pytest.raises(ValueError, match=r"arrays \['maps/ca', 'maps/fe'\]; name one with dataset="):
        open_chunked(tmp_path / "scan.zarr")
    one = zarr.open_group(str(tmp_path / "one.zarr"), mode="w")
    new_member(one, "maps/fe", shape=(40, 40), chunks=(20, 20), dtype="f4")[...] = _mirrored((40, 40))
    assert np.array_equal(open_chunked(tmp_path / "one.zarr").compute(), _mirrored((40, 40)))
