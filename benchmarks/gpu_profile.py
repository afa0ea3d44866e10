"""Where GPU time goes in blind_l0 (512²) and the automatic restore() (1024²): cProfile, top functions.

    python benchmarks/gpu_profile.py OUTDIR

Writes ``OUTDIR/profile_blind_l0.txt``, ``OUTDIR/profile_restore.txt`` and ``OUTDIR/profile_rl_setup.txt``
(cumulative and internal time, 30 lines each) after an untimed warm-up call of each; the last also holds the
time per RL call and per iteration at 512² and 2048² (:func:`rl_setup`).
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


def rl_setup(outdir, sizes=(512, 2048), counts_of_iterations=(1, 2, 10, 50)):
    """The set-up of one RL call on the GPU against its iterations: a line through the call's time at 1 … 50
    iterations (CUDA events, median of 5 after a warm-up) gives the time per call (intercept) and per
    iteration (slope); the 7th session's H200 calls implied about 5 ms per call at 2048² (0.1 ms of each of 50
    iterations), which the per-launch sums do not hold. Writes ``OUTDIR/profile_rl_setup.txt``: the fit, and a
    cProfile of a 1-iteration call (where the host time goes)."""
    import cupy as cp
    import numpy as np

    import xrfgpu
    from xrfgpu.psf import gaussian

    h = gaussian(None, 7.5)
    hd = cp.asarray((h / h.sum()).astype(np.float32))
    lines = []
    for size in sizes:
        rng = np.random.default_rng(size)
        y = cp.asarray(rng.poisson(200.0, (size, size)).astype(np.float32))

        def call(n, y=y):
            return xrfgpu.richardson_lucy(y, hd, num_iter=n, background=140.0)

        times = []
        for n in counts_of_iterations:
            call(n)
            cp.cuda.Device().synchronize()
            runs = []
            for _ in range(5):
                start, end = cp.cuda.Event(), cp.cuda.Event()
                start.record()
                call(n)
                end.record()
                end.synchronize()
                runs.append(cp.cuda.get_elapsed_time(start, end))
            times.append(float(np.median(runs)))
        slope, intercept = np.polyfit(np.asarray(counts_of_iterations, float), np.asarray(times), 1)
        line = (f"rl {size}^2: call ms at {list(counts_of_iterations)} iterations {[round(t, 3) for t in times]}; "
                f"per call {intercept:.3f} ms, per iteration {slope:.4f} ms")
        print(line, flush=True)
        lines.append(line)
    profile(lambda: call(1), f"{outdir}/profile_rl_setup.txt")
    with open(f"{outdir}/profile_rl_setup.txt", "a") as f:
        f.write("\n".join(lines) + "\n")


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
    from xrfgpu.stopping import _LAST_SPLIT

    # each call draws its own binomial split (xrfgpu.stopping keeps the last draw of a map)
    profile(lambda: (_LAST_SPLIT.clear(), xrfgpu.restore(g)), f"{outdir}/profile_restore.txt")
    rl_setup(outdir)
    # the front door's own stage times (info["seconds"]), on the GPU and on this machine's CPU
    for name, image in (("gpu", g), ("cpu", counts)):
        _LAST_SPLIT.clear()
        t0 = time.perf_counter()
        _, info = xrfgpu.restore(image, return_info=True)
        cp.cuda.Device().synchronize()
        stages = {k: round(v, 4) for k, v in info["seconds"].items()}
        print(f"restore 1024^2 {name}: {time.perf_counter() - t0:.3f} s, stages {stages}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
