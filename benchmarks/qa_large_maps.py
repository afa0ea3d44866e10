"""The fifth QA pass's measurements on large, real-looking maps (``docs/qa_real_maps.md``, "Fifth pass").

Not part of the test run. The maps are the real ones of ``tests/data`` made large: the 160² HXN Fe
map mirror-tiled (``a | a[::-1]`` along both axes) to the requested size, and MAPS-layout stacks of
the ``axo_std.h5`` ``XRF_roi`` channels mirror-tiled and textured with the Fe map (the thin film
alone is uniform). Each mode prints one JSON line::

    python benchmarks/qa_large_maps.py zarr --size 2048 --tile 512 --num-iter 30 --workdir /tmp/qa5-bench
    python benchmarks/qa_large_maps.py stack --size 512 --counts 5 10 18
    python benchmarks/qa_large_maps.py cluster --size 1024 --tile 300

``zarr``: the Fe map as a chunked HDF5 dataset (300² chunks) streamed through
:func:`xrfgpu.dask.restore_zarr` (RL, σ = 1.5 px) in a child process, its time and peak RSS, and the
largest difference from the whole-map :func:`xrfgpu.richardson_lucy` relative to its maximum.
``stack``: :func:`xrfgpu.restore_stack` (RL, 30 iterations) on growing stacks, time and
``tracemalloc`` peak. ``cluster``: ``dask.distributed.LocalCluster(n_workers=2,
threads_per_worker=1)`` against the threaded scheduler on :func:`xrfgpu.dask.restore`.

The data are MIT-licensed (see ``tests/data/*/LICENSE.txt`` and ``README.md`` there).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
SIGMA_PX = 1.5
BACKGROUND = 0.003  # the Fe map's units (fitted, µg/cm²-like); the front door estimates 0.00298


def mirrored(image, shape):
    """``image`` mirror-tiled (``a | a[::-1]`` along both axes) and cut to ``shape``."""
    row = np.concatenate([image, image[::-1]], 0)
    full = np.concatenate([row, row[:, ::-1]], 1)
    reps = tuple(-(-n // m) for n, m in zip(shape, full.shape))
    return np.ascontiguousarray(np.tile(full, reps)[: shape[0], : shape[1]])


def fe_map(size):
    import tifffile

    return mirrored(tifffile.imread(DATA / "hxn_nanoparticles_xrf" / "SUM_maps_XRF_Fe_K.tiff"), (size, size))


def maps_stack(size, count):
    """``count`` textured ``XRF_roi`` maps (float64) of ``size``², cycling through the 23 channels."""
    import h5py

    with h5py.File(DATA / "aps_2ide_maps_axo_std" / "axo_std.h5", "r") as f:
        roi = f["MAPS/XRF_roi"][()]
    fe = fe_map(size).astype(np.float64)
    texture = 0.5 + fe / fe.max()
    channels = [k % roi.shape[0] for k in range(count)]
    return np.stack([mirrored(roi[k], (size, size)) * texture for k in channels])


def run_zarr(args):
    import h5py

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    source = work / f"fe{args.size}.h5"
    fe = fe_map(args.size)
    with h5py.File(source, "w") as f:
        f.create_dataset("xrf/fe", data=fe, chunks=(300, 300))
    out = work / f"fe{args.size}_restored.zarr"
    child = (
        "import json, resource, sys, time\n"
        "from xrfgpu import dask as xd, psf\n"
        "t = time.perf_counter()\n"
        f"xd.restore_zarr({str(source)!r}, {str(out)!r}, psf.gaussian(None, {SIGMA_PX}), 'rl', dataset='xrf/fe',\n"
        f"               tile={args.tile}, num_iter={args.num_iter}, background={BACKGROUND}, scheduler='local')\n"
        "print(json.dumps({'seconds': round(time.perf_counter() - t, 2),\n"
        "                  'peak_rss_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}))\n"
    )
    if out.exists():
        import shutil

        shutil.rmtree(out)
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    import zarr

    import xrfgpu
    from xrfgpu import psf

    restored = zarr.open_array(store=str(out), mode="r")
    whole = xrfgpu.richardson_lucy(fe, psf.gaussian(None, SIGMA_PX), num_iter=args.num_iter, background=BACKGROUND)
    result.update(size=args.size, tile=args.tile, num_iter=args.num_iter, chunks=list(restored.chunks),
                  dtype=str(restored.dtype), max_rel_difference=float(np.max(np.abs(restored[...] - whole))
                                                                      / np.max(np.abs(whole))))
    print(json.dumps(result))


def run_stack(args):
    import tracemalloc

    import xrfgpu
    from xrfgpu import psf

    rows = []
    for count in args.counts:
        stack = maps_stack(args.size, count)
        tracemalloc.start()
        t = time.perf_counter()
        xrfgpu.restore_stack(stack, psf.gaussian(None, SIGMA_PX), "rl", num_iter=30, background=0.0)
        seconds = time.perf_counter() - t
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        rows.append({"maps": count, "seconds": round(seconds, 2), "peak_mib": round(peak / 2**20),
                     "stack_mib": round(stack.nbytes / 2**20)})
    print(json.dumps({"size": args.size, "method": "rl", "num_iter": 30, "runs": rows}))


def run_cluster(args):
    from distributed import Client, LocalCluster

    from xrfgpu import dask as xd, psf

    fe = fe_map(args.size)
    h = psf.gaussian(None, SIGMA_PX)
    result = {"size": args.size, "tile": args.tile}
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as cluster, Client(cluster) as client:
        for method, options in (("rl", {"num_iter": 30}), ("wiener", {}), ("fista", {})):
            lazy = xd.restore(fe, h, method, tile=args.tile, background=BACKGROUND, **options)
            local = lazy.compute(scheduler="threads")
            remote = client.compute(lazy).result(timeout=300)
            result[method] = float(np.max(np.abs(remote - local)) / np.max(np.abs(local)))
    print(json.dumps(result))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    z = sub.add_parser("zarr")
    z.add_argument("--size", type=int, default=2048)
    z.add_argument("--tile", type=int, default=512)
    z.add_argument("--num-iter", type=int, default=30)
    z.add_argument("--workdir", default="/tmp/qa5-bench")
    s = sub.add_parser("stack")
    s.add_argument("--size", type=int, default=512)
    s.add_argument("--counts", type=int, nargs="+", default=[5, 10, 18])
    c = sub.add_parser("cluster")
    c.add_argument("--size", type=int, default=1024)
    c.add_argument("--tile", type=int, default=300)
    args = parser.parse_args(argv)
    {"zarr": run_zarr, "stack": run_stack, "cluster": run_cluster}[args.mode](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
