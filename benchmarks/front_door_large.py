"""Time and memory of ``restore(map)`` (the automatic front door) per stage, 512² to 4096², on the CPU.

    python benchmarks/front_door_large.py [--sizes 512 1024 2048 4096] [--repeats 1]
        [--compare OTHER_CHECKOUT] [--kind counts|fitted] [--profile]

Maps: the Voronoi-with-veins scene of :mod:`sigma_scenes` (seed 7) at σ = 4 px
and the paper's counts (77 signal / 137.5 background), drawn once per size in
this process and handed to the runs as a ``.npy`` file; ``--kind fitted``
multiplies the counts by 0.013 (a fitted map, whose gain is measured).

Each run is a fresh subprocess (``PYTHONPATH`` = the checkout under test), so
imports, FFT plans and the allocator start from nothing and the resident-set
peak (``resource.getrusage``, ``ru_maxrss``) belongs to that one call. A run
first restores the map once untimed and untraced (imports, FFT plans), then
once timed: the total, the process CPU time of that call (all threads: steadier than the wall
clock on a loaded machine) and ``info["seconds"]`` (gain, background, σ, CV stop,
restoration). A second subprocess repeats it under :mod:`tracemalloc`, which
traces NumPy's array memory (not the scratch of ducc0 or SciPy's C code): the
peak above the memory held when each stage starts, per stage, and the whole
call's peak. ``--compare DIR`` runs a second checkout (for example
``git archive main | tar -x -C /tmp/old-perf``) alternately with this one,
size by size, so both see the same load, and prints whether the two give the
same σ, iterations, background, gain and restored map (``np.array_equal``).
``--profile`` prints the 25 functions of largest own time (cProfile) instead.
The load average is printed before and after: the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# the child: restore one map once untimed, then once timed (or traced, or profiled); prints one JSON line
_CHILD = r"""
import json, resource, sys, time, warnings
import numpy as np
path, mode, out_path = sys.argv[1], sys.argv[2], sys.argv[3]
import xrfgpu
from xrfgpu import front_door
image = np.load(path)
warnings.simplefilter("ignore")
xrfgpu.restore(image[:256, :256], return_info=True)  # imports and first-call costs off the clock
stages = {}
if mode == "memory":
    import tracemalloc
    rl_module = sys.modules["xrfgpu.richardson_lucy"]  # the module (xrfgpu.richardson_lucy is the function)
    names = {"effective_counts": "gain", "_background_in_counts": "background", "_estimate_sigma": "sigma",
             "rl_iteration_count": "stop"}
    active = []
    highest = [0]  # the highest traced memory seen (each stage resets tracemalloc's peak)
    def traced(name, function):
        def wrapper(*args, **kwargs):
            if active:  # a stage inside another (RL inside the CV stop): the outer one records
                return function(*args, **kwargs)
            active.append(name)
            held = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            try:
                return function(*args, **kwargs)
            finally:
                peak = tracemalloc.get_traced_memory()[1]
                stages[name] = max(stages.get(name, 0.0), (peak - held) / 2**20)
                highest[0] = max(highest[0], peak)
                active.pop()
        return wrapper
    for attr, name in names.items():
        setattr(front_door, attr, traced(name, getattr(front_door, attr)))
    rl_module.richardson_lucy = traced("restore", rl_module.richardson_lucy)
    tracemalloc.start()
    start = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
if mode == "profile":
    import cProfile, pstats
    profiler = cProfile.Profile()
    profiler.enable()
t0, c0 = time.perf_counter(), time.process_time()
restored, info = xrfgpu.restore(image, return_info=True)
total = time.perf_counter() - t0
if mode == "profile":
    profiler.disable()
    pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)
record = {"xrfgpu": xrfgpu.__file__, "total": total, "seconds": info["seconds"], "sigma": info["sigma"], "iterations": info["iterations"],
          "cv_iterations": info.get("cv_iterations"), "background": info["background"], "gain": info["gain"],
          "sigma_interval": info.get("sigma_interval"), "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
          "cpu": time.process_time() - c0}
if mode == "memory":
    record["peak_mb"] = (max(highest[0], tracemalloc.get_traced_memory()[1]) - start) / 2**20
    record["stage_peak_mb"] = stages
np.save(out_path, restored)
print(json.dumps(record))
"""


def _run(root, path, mode, out_path):
    env = dict(os.environ, PYTHONPATH=str(root))
    # run from the map's folder: ``python -c`` puts the working directory first on sys.path, and a run
    # started in a checkout would import that checkout's xrfgpu whatever PYTHONPATH says
    done = subprocess.run([sys.executable, "-c", _CHILD, str(path), mode, str(out_path)], env=env, check=True,
                          stdout=subprocess.PIPE, text=True, cwd=Path(path).parent)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _load():
    return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def _row(size, label, timed, memory):
    s = timed["seconds"]
    parts = [f"{k} {s[k]:.2f}" for k in ("gain", "background", "sigma", "stop", "restore") if k in s]
    line = (f"{size}² {label}: {timed['total']:.2f} s ({', '.join(parts)}), CPU {timed['cpu']:.2f} s; "
            f"RSS peak {timed['maxrss_mb']:.0f} MB")
    if memory is not None:
        m = memory["stage_peak_mb"]
        line += (f"; traced peak {memory['peak_mb']:.0f} MB ("
                 + ", ".join(f"{k} {m[k]:.0f}" for k in ("gain", "background", "sigma", "stop", "restore") if k in m)
                 + ")")
    line += (f"; σ {timed['sigma']:.6g}, {timed['iterations']} iterations (CV {timed['cv_iterations']}), "
             f"background {timed['background']:.6g}, gain {timed['gain']:.6g}")
    return line


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048, 4096])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--compare", type=Path, default=None,
                        help="another checkout (its root, holding xrfgpu/) run alternately with this one")
    parser.add_argument("--kind", choices=("counts", "fitted"), default="counts")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--no-memory", action="store_true", help="skip the tracemalloc runs")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE))
    import numpy as np
    import sigma_scenes

    checkouts = [("this", ROOT)] + ([("compare", args.compare.resolve())] if args.compare else [])
    print(_load(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            counts, sigma, _ = sigma_scenes.make_case(("voronoi", 7, size, 4.0, 77.0, 137.5))
            image = counts if args.kind == "counts" else counts * 0.013
            path = Path(tmp) / f"map{size}.npy"
            np.save(path, image)
            del counts, image
            for r in range(args.repeats):
                outputs = {}
                # alternate the order between repeats, so neither checkout always runs first
                for label, root in (checkouts if r % 2 == 0 else checkouts[::-1]):
                    out_path = Path(tmp) / f"out_{label}.npy"
                    if args.profile:
                        print(f"--- {size}² {label} ({root})", flush=True)
                        _run(root, path, "profile", out_path)
                        continue
                    timed = _run(root, path, "time", out_path)
                    memory = None if args.no_memory else _run(root, path, "memory", Path(tmp) / "mem.npy")
                    imported = Path(timed["xrfgpu"]).resolve().parent.parent
                    if imported != Path(root).resolve():
                        raise RuntimeError(f"the run for {root} imported xrfgpu from {imported}")
                    outputs[label] = (timed, np.load(out_path))
                    print(_row(size, label, timed, memory) + f"  [{_load()}]", flush=True)
                if len(outputs) == 2:
                    (a, ra), (b, rb) = outputs["this"], outputs["compare"]
                    keys = ("sigma", "iterations", "cv_iterations", "background", "gain", "sigma_interval")
                    same = {k: a[k] == b[k] for k in keys}
                    print(f"{size}² same numbers: {all(same.values())} {same}; restored maps equal: "
                          f"{bool(np.array_equal(ra, rb))}", flush=True)
    print(_load(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
