"""Where GPU time goes in blind_l0 (512²) and the automatic restore() (1024²): cProfile, top functions.

    python benchmarks/gpu_profile.py OUTDIR

Writes ``OUTDIR/profile_blind_l0.txt`` and ``OUTDIR/profile_restore.txt`` (cumulative and
internal time, 30 lines each) after an untimed warm-up call of each.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import sys
import time


def profile(fn, path):
    import cupy as cp

    fn()
    cp.cuda.Device().synchronize()
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    fn()
    cp.cuda.Device().synchronize()
    prof.disable()
    wall = time.perf_counter() - t0
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(30)
    with open(path, "w") as f:
        f.write(f"wall {wall:.3f} s\n")
        f.write(out.getvalue())
    print(path, f"wall {wall:.3f} s", flush=True)


def main(outdir):
    import cupy as cp

    import xrfgpu
    from xrfgpu.blind import blind_l0
    from xrfgpu.phantom import observe

    counts, _, _ = observe((512, 512), 4.0, seed=5, background_counts=140.0)
    g = cp.asarray(counts)
    profile(lambda: blind_l0(g, 37), f"{outdir}/profile_blind_l0.txt")
    counts, _, _ = observe((1024, 1024), 6.5, seed=6, background_counts=140.0)
    g = cp.asarray(counts)
    profile(lambda: xrfgpu.restore(g), f"{outdir}/profile_restore.txt")
    # the front door's own stage times (info["seconds"]), on the GPU and on this machine's CPU
    for name, image in (("gpu", g), ("cpu", counts)):
        t0 = time.perf_counter()
        _, info = xrfgpu.restore(image, return_info=True)
        cp.cuda.Device().synchronize()
        stages = {k: round(v, 4) for k, v in info["seconds"].items()}
        print(f"restore 1024^2 {name}: {time.perf_counter() - t0:.3f} s, stages {stages}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
