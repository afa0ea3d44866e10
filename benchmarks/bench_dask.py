"""Tiled restoration with Dask: a map larger than comfortable, peak memory, throughput.

Not part of the default test run. Four modes::

    # 1. stream a 16384² float32 map (1 GiB) Zarr → Zarr, peak RSS of the worker process
    python benchmarks/bench_dask.py big --size 16384 --tile 2048 --num-iter 10 --sigma 3 --workdir /tmp/xrfgpu-bench

    # 2. megapixels per second, tiled vs the single-map path, on a size both can do
    python benchmarks/bench_dask.py compare --size 4096 --tile 2048 --num-iter 10 --sigma 3

    # 3. the halo scan behind xrfgpu.dask.default_halo
    python benchmarks/bench_dask.py halo-scan

    # 4. RL iteration by iteration in tiles (xrfgpu.dask_rl) against the whole map, and RL with missing pixels
    python benchmarks/bench_dask.py rl-tiles --size 1024 --tile 256 --num-iter 30

Also collected by pytest-benchmark (``pytest benchmarks/bench_dask.py``):
a 2048² map, whole-map RL vs tiled RL, one group.

The synthetic map is a coherent scene: a 1024-px grains-and-veins phantom
tiled periodically over the plane, blurred by *linear* convolution with the
Gaussian PSF on windows larger than each 2048² chunk (real borders, no
circular blur), plus 100 counts background and Poisson noise; written chunk
by chunk, so the generator never holds more than one chunk.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

BACKGROUND = 100.0
SIGNAL = 200.0


def _scene(seed=0, size=1024):
    from xrfgpu import phantom

    return phantom.grains_and_veins((size, size), seed=seed)


def make_chunk(base, psf, r0, c0, rows, cols, seed):
    """Observed counts of the window [r0, r0+rows) × [c0, c0+cols) of the tiled scene."""
    from xrfgpu import phantom

    kr, kc = psf.shape
    mr, mc = kr // 2 + 1, kc // 2 + 1
    ri = np.arange(r0 - mr, r0 + rows + mr) % base.shape[0]
    ci = np.arange(c0 - mc, c0 + cols + mc) % base.shape[1]
    window = base[np.ix_(ri, ci)]
    blurred, _ = phantom.blurred_window(window, psf, (rows, cols))
    rng = np.random.default_rng(seed)
    return rng.poisson(SIGNAL * blurred + BACKGROUND).astype(np.float32)


def write_input(path, size, chunk, sigma, seed=0):
    """Write a size² float32 observed map to a Zarr store, chunk by chunk."""
    import zarr

    import xrfgpu

    psf = xrfgpu.psf.gaussian(None, sigma)
    base = _scene(seed)
    z = zarr.create_array(store=str(path), shape=(size, size), chunks=(chunk, chunk), dtype="float32", overwrite=True)
    k = 0
    for r0 in range(0, size, chunk):
        for c0 in range(0, size, chunk):
            rows, cols = min(chunk, size - r0), min(chunk, size - c0)
            z[r0 : r0 + rows, c0 : c0 + cols] = make_chunk(base, psf, r0, c0, rows, cols, seed + k)
            k += 1
    return psf


def _child_restore(args):
    """Run in a subprocess: stream input → output; print JSON timings."""
    import xrfgpu
    from xrfgpu import dask as xdask

    psf = xrfgpu.psf.gaussian(None, args.sigma)
    t = time.perf_counter()
    xdask.restore_zarr(
        args.input, args.output, psf, "rl", tile=args.tile, scheduler="threads",
        num_iter=args.num_iter, background=BACKGROUND, overwrite=True,
    )
    seconds = time.perf_counter() - t
    print(json.dumps({"seconds": seconds}))


def big(args):
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    source, target = work / f"map{args.size}.zarr", work / f"restored{args.size}.zarr"
    if not source.exists() or args.regenerate:
        t = time.perf_counter()
        write_input(source, args.size, args.tile, args.sigma)
        print(f"input written in {time.perf_counter() - t:.0f} s: {source}", flush=True)
    cmd = [sys.executable, __file__, "_child", "--input", str(source), "--output", str(target),
           "--tile", str(args.tile), "--num-iter", str(args.num_iter), "--sigma", str(args.sigma)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # max over waited-for children
    seconds = json.loads(proc.stdout.strip().splitlines()[-1])["seconds"]
    mpix = args.size * args.size / 1e6
    result = {
        "size": args.size, "tile": args.tile, "num_iter": args.num_iter, "sigma_px": args.sigma,
        "seconds": round(seconds, 1), "megapixels_per_s": round(mpix / seconds, 3),
        "peak_rss_gib": round(peak_kib / 2**20, 2), "peak_rss_before_gib": round(before / 2**20, 2),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result))
    return result


def compare(args):
    """Whole-map RL vs tiled RL on the same in-memory map (threaded scheduler)."""
    import dask.array as da

    import xrfgpu
    from xrfgpu import dask as xdask

    psf = xrfgpu.psf.gaussian(None, args.sigma)
    counts = make_chunk(_scene(), psf, 0, 0, args.size, args.size, 1)
    mpix = args.size**2 / 1e6
    xrfgpu.richardson_lucy(counts[:256, :256], psf, num_iter=2, background=BACKGROUND)  # warm-up
    t = time.perf_counter()
    whole = xrfgpu.richardson_lucy(counts, psf, num_iter=args.num_iter, background=BACKGROUND)
    t_whole = time.perf_counter() - t
    t = time.perf_counter()
    tiled = xdask.restore(da.from_array(counts, chunks=args.tile), psf, "rl", tile=args.tile,
                          num_iter=args.num_iter, background=BACKGROUND).compute(scheduler="threads")
    t_tiled = time.perf_counter() - t
    result = {
        "size": args.size, "tile": args.tile, "num_iter": args.num_iter, "sigma_px": args.sigma,
        "whole_s": round(t_whole, 2), "whole_megapixels_per_s": round(mpix / t_whole, 3),
        "tiled_s": round(t_tiled, 2), "tiled_megapixels_per_s": round(mpix / t_tiled, 3),
        "max_rel_difference": float(np.max(np.abs(tiled - whole)) / np.max(np.abs(whole))),
    }
    print(json.dumps(result))
    return result


def rl_tiles(args):
    """``xrfgpu.dask_rl.richardson_lucy`` (iteration by iteration in tiles) against the whole-map RL, same run.

    Three cases, each the minimum of ``--repeats`` calls, whole map and tiles alternating: a Poisson map of
    ``--size``² (mean 100, σ 5 px, 31² PSF) in tiles of ``--tile`` for ``--num-iter`` accelerated iterations;
    the real HXN Fe map (160², ``tests/data``, scaled to 1000 counts at its maximum) in tiles of 64 for 400
    iterations; and the whole-map RL of the Poisson map with 1 % of its pixels NaN (missing: the weighted
    update) against the same map complete. Run it with another checkout's ``xrfgpu`` first on ``PYTHONPATH``
    (``git archive REV | tar -x -C DIR``) for a before/after pair.
    """
    import tifffile

    import xrfgpu
    from xrfgpu import dask_rl
    from xrfgpu.psf import gaussian

    def best(call):
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            out = call()
            times.append(time.perf_counter() - t)
        return min(times), out

    rng = np.random.default_rng(0)
    counts = rng.poisson(100.0, (args.size, args.size)).astype(np.float32)
    h = gaussian((31, 31), 5.0).astype(np.float32)
    data = Path(__file__).resolve().parent.parent / "tests" / "data" / "hxn_nanoparticles_xrf"
    fe = np.asarray(tifffile.imread(data / "SUM_maps_XRF_Fe_K.tiff"), np.float32)
    fe = fe / fe.max() * 1000.0
    h_fe = gaussian(None, 1.5)
    dask_rl.richardson_lucy(counts[:300, :300], h, tile=128, num_iter=3)  # imports and first calls
    result = {"xrfgpu": str(Path(xrfgpu.__file__).parent), "size": args.size, "tile": args.tile,
              "num_iter": args.num_iter}
    whole_s, whole = best(lambda: xrfgpu.richardson_lucy(counts, h, num_iter=args.num_iter, background=0.0,
                                                         accelerate=True))
    tiled_s, tiled = best(lambda: dask_rl.richardson_lucy(counts, h, tile=args.tile, num_iter=args.num_iter))
    result.update(whole_s=round(whole_s, 3), tiled_s=round(tiled_s, 3),
                  tiled_over_whole=round(tiled_s / whole_s, 2),
                  max_rel_difference=float(np.abs(tiled - whole).max() / np.abs(whole).max()))
    fe_whole_s, _ = best(lambda: xrfgpu.richardson_lucy(fe, h_fe, num_iter=400, accelerate=True))
    fe_tiled_s, _ = best(lambda: dask_rl.richardson_lucy(fe, h_fe, tile=64, num_iter=400))
    result.update(hxn_fe_400_whole_s=round(fe_whole_s, 3), hxn_fe_400_tiled_s=round(fe_tiled_s, 3))
    holes = counts.copy()
    holes[rng.random(holes.shape) < 0.01] = np.nan
    h3 = gaussian(None, 3.0).astype(np.float32)
    masked_s, _ = best(lambda: xrfgpu.richardson_lucy(holes, h3, num_iter=30, background=50.0, accelerate=True))
    complete_s, _ = best(lambda: xrfgpu.richardson_lucy(np.nan_to_num(holes), h3, num_iter=30, background=50.0,
                                                        accelerate=True))
    result.update(missing_1pct_whole_s=round(masked_s, 3), complete_whole_s=round(complete_s, 3))
    print(json.dumps(result))
    return result


def halo_scan(args):
    """Tiled vs whole-map error as a function of the halo (in PSF extents)."""
    import dask
    import dask.array as da

    import xrfgpu
    from xrfgpu import dask as xdask
    from xrfgpu.phantom import observe

    dask.config.set(scheduler="threads")
    engines = {"rl": xrfgpu.richardson_lucy, "wiener": xrfgpu.wiener, "tikhonov": xrfgpu.tikhonov,
               "fista": xrfgpu.fista}
    cases = [("rl", {"num_iter": 10}), ("rl", {"num_iter": 30}), ("rl", {"num_iter": 100}),
             ("wiener", {"balance": 0.01}), ("tikhonov", {"lam": 0.01, "order": 1}),
             ("fista", {"num_iter": 25}), ("fista", {"num_iter": 100})]
    for sigma in (2.0, 3.0):
        counts, _, psf = observe((600, 700), sigma, seed=3)
        extent = psf.shape[0]
        for method, opts in cases:
            whole = engines[method](counts, psf, background=BACKGROUND, **opts)
            row = []
            for factor in (0.5, 1, 2, 3, 4, 6):
                out = xdask.restore(da.from_array(counts, chunks=256), psf, method, tile=256,
                                    halo=int(factor * extent), background=BACKGROUND, **opts).compute()
                row.append(f"{factor}:{np.max(np.abs(out - whole)) / np.max(np.abs(whole)):.1e}")
            print(f"sigma={sigma} extent={extent} {method} {opts}  " + " ".join(row), flush=True)


# -- pytest-benchmark ----------------------------------------------------------------
def _bench_map(size=2048, sigma=3.0):
    import xrfgpu

    psf = xrfgpu.psf.gaussian(None, sigma)
    return make_chunk(_scene(), psf, 0, 0, size, size, 1), psf


@pytest.mark.parametrize("path", ["whole", "tiled"])
def test_whole_vs_tiled(benchmark, path):
    """2048² map, RL 10 iterations, σ = 3 px: the single-map path vs tiles of 1024 on the threaded scheduler."""
    import dask.array as da

    import xrfgpu
    from xrfgpu import dask as xdask

    counts, psf = _bench_map()
    if path == "whole":
        def run():
            return xrfgpu.richardson_lucy(counts, psf, num_iter=10, background=BACKGROUND)
    else:
        arr = da.from_array(counts, chunks=1024)

        def run():
            return xdask.restore(arr, psf, "rl", tile=1024, num_iter=10, background=BACKGROUND).compute(
                scheduler="threads"
            )
    benchmark.group = "dask size=2048 rl num_iter=10"
    benchmark.extra_info["megapixels"] = counts.size / 1e6
    out = benchmark.pedantic(run, rounds=1, iterations=1, warmup_rounds=0)
    assert out.shape == counts.shape


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["big", "compare", "halo-scan", "rl-tiles", "_child"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=16384)
    parser.add_argument("--tile", type=int, default=2048)
    parser.add_argument("--num-iter", type=int, default=10)
    parser.add_argument("--sigma", type=float, default=3.0)
    parser.add_argument("--workdir", default="/tmp/xrfgpu-bench-dask")
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--input")
    parser.add_argument("--output")
    args = parser.parse_args(argv)
    {"big": big, "compare": compare, "halo-scan": halo_scan, "rl-tiles": rl_tiles,
     "_child": _child_restore}[args.mode](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
