"""GPU speed and memory of one Richardson–Lucy iteration, measured in one run on one device.

Run on a machine with CuPy and a CUDA device (``benchmarks/gpu_check.sh`` does)::

    python benchmarks/gpu_speed.py --out gpu_speed.json [--quick]

What it measures (CUDA events around synchronised work, median of repeats,
after an untimed warm-up that compiles kernels and builds cuFFT plans):

``rl``
    Per map size (512² … 8192², float32, σ = 7.5 px, 61 × 61 Gaussian PSF,
    background 140 counts, 50 iterations): the time of one iteration of

    * ``xrfgpu`` — :func:`xrfgpu.richardson_lucy` on CuPy by its transforms
      (exact reflect borders; ``xrfgpu._gpu_rl.DIRECT_BLUR`` off; the engine
      it picks is recorded, and ``default_blur`` says which blur the default
      call uses),
    * ``xrfgpu_accelerated`` — the same with ``accelerate=True``,
    * ``naive`` — a 10-line periodic CuPy RL (``irfft2(rfft2(x)·H)``, ratio,
      ``irfft2(rfft2(r)·H*)``, multiply), wrong at the borders,
    * ``floor_map`` — four cuFFT real transforms of the map itself,
    * ``floor_canvas`` — four cuFFT real transforms of the engine's own canvas,
    * ``cucim`` — ``cucim.skimage.restoration.richardson_lucy`` (when
      installed) at equal iterations;
    * ``xrfgpu_direct`` (and ``_accelerated``) — the same call with the
      real-space separable blur (``xrfgpu._gpu_rl.DIRECT_BLUR``, the default
      for PSFs of at most ``DIRECT_MAX_TAPS`` taps), with its largest
      difference from the transforms' result (``direct_max_rel_diff``,
      relative to the map's maximum) and its memory
      (``peak_live_x_map_direct*``);

    and memory as a multiple of the map's bytes: the peak bytes the call's own
    arrays hold at once, plus the input map (``peak_live_x_map_*``, a memory
    hook), and the CuPy memory pool's bytes after the run (pool and cuFFT plan
    cache emptied first; ``memory_x_map_*``, which also counts pool blocks
    pinned by earlier small allocations).
``taps``
    One plain iteration by the transforms and by the real-space blur at 2048²
    and 4096² for σ = 2 … 30 px (17 … 241 taps): where the real-space blur
    stops paying (``xrfgpu._gpu_rl.DIRECT_MAX_TAPS``).
``stack``
    64 maps of 512² through :func:`xrfgpu.restore_stack` against one 4096²
    map (the same number of pixels): per-pixel throughput ratio.
``joint``
    Joint restoration (:func:`xrfgpu.joint.joint_richardson_lucy`) of the
    simulated skarn (``benchmarks/skarn.py``, 3 maps of 288²): CPU against GPU
    at a fixed weight (0.05) and 100 iterations, with the largest difference
    of the results, and the fully automatic call (cross-validated weights and
    stops) timed on the GPU.
``fft_lengths``
    Time of an rfft2 + irfft2 pair of square canvases of every 7-smooth even
    length from ``n`` to 1.3 ``n`` for the canvases the engine needs — the
    data behind the GPU cost model in :mod:`xrfgpu.fft`.

Ratios are only meaningful within one run on one device: the JSON records the
device name, driver and library versions.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import sys
import time

import numpy as np

SIGMA = 7.5
BACKGROUND = 140.0
ITERS = 50


def _cupy():
    import cupy

    return cupy


def timed(fn, reps=3, warm=1):
    """Median wall time of ``fn()`` in seconds, device synchronised, by CUDA events."""
    cp = _cupy()
    for _ in range(warm):
        fn()
    cp.cuda.Device().synchronize()
    times = []
    for _ in range(reps):
        start, end = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, end) / 1e3)
    return float(np.median(times))


def psf_host():
    from xrfgpu.psf import gaussian

    h = gaussian(None, SIGMA)
    return (h / h.sum()).astype(np.float32)


def count_map(size, seed=0, n=None):
    """A Poisson count map (or ``n`` maps) on the GPU: smooth random scene, blurred, plus background."""
    cp = _cupy()
    rs = cp.random.RandomState(seed)
    shape = (size, size) if n is None else (n, size, size)
    scene = rs.random_sample(shape, dtype=cp.float32) * 200.0
    return rs.poisson(scene + BACKGROUND).astype(cp.float32)


def naive_rl(y, otf, b, num_iter):
    """Periodic RL in plain CuPy: the comparison the issue names (wrong at the borders)."""
    cp = _cupy()
    x = cp.full_like(y, float(y.mean()) - b)
    otf_conj = cp.conj(otf)
    for _ in range(num_iter):
        est = cp.fft.irfft2(cp.fft.rfft2(x) * otf, s=y.shape)
        ratio = y / (est + b)
        x = x * cp.fft.irfft2(cp.fft.rfft2(ratio) * otf_conj, s=y.shape)
    return x


def periodic_otf(psf, shape):
    cp = _cupy()
    canvas = np.zeros(shape, np.float32)
    kr, kc = psf.shape
    canvas[:kr, :kc] = psf
    canvas = np.roll(canvas, (-(kr // 2), -(kc // 2)), axis=(0, 1))
    return cp.asarray(np.fft.rfft2(canvas).astype(np.complex64))


def four_transforms(shape):
    cp = _cupy()
    a = cp.random.random_sample(shape, dtype=cp.float32)

    def four():
        for _ in range(2):
            s = cp.fft.rfft2(a)
            cp.fft.irfft2(s, s=shape)

    return four


def pool_bytes_after(fn):
    """Peak device bytes of ``fn()``: the CuPy pool's bytes after it, started from an emptied pool.

    The pool keeps every block it handed out, so its total after the call is
    the call's peak working set, plus the live arrays held before it (the
    input map). cuFFT plan caches (CuPy's and xrfgpu.cuda.real_fft_plans') are emptied first,
    so the plans' work areas are counted too.
    """
    cp = _cupy()
    from xrfgpu import cuda

    cp.cuda.Device().synchronize()
    cp.fft.config.get_plan_cache().clear()
    cuda._FFT_PLANS.clear()
    pool = cp.get_default_memory_pool()
    pool.free_all_blocks()
    out = fn()
    cp.cuda.Device().synchronize()
    held = pool.total_bytes()
    del out
    return int(held)


def peak_live_bytes(fn):
    """Peak bytes held at once by the arrays ``fn()`` allocates (a CuPy memory hook), or None.

    Counts only blocks handed out during the call, each from its allocation to
    its release, so neither arrays the caller already holds nor pool blocks
    pinned by earlier small allocations enter; add the input's bytes to compare
    with :func:`pool_bytes_after`. cuFFT work areas are counted (CuPy allocates
    them from the pool) when plans are made during the call.
    """
    cp = _cupy()
    from xrfgpu import cuda

    try:
        from cupy.cuda import memory_hook
    except ImportError:  # pragma: no cover - an old CuPy
        return None

    class Peak(memory_hook.MemoryHook):
        name = "xrfgpu_peak_live_bytes"

        def __init__(self):
            self.live, self.blocks, self.peak = 0, {}, 0

        def malloc_postprocess(self, **kw):
            self.blocks[kw["mem_ptr"]] = kw["mem_size"]
            self.live += kw["mem_size"]
            self.peak = max(self.peak, self.live)

        def free_postprocess(self, **kw):
            self.live -= self.blocks.pop(kw["mem_ptr"], 0)

    cp.cuda.Device().synchronize()
    cp.fft.config.get_plan_cache().clear()
    cuda._FFT_PLANS.clear()
    hook = Peak()
    try:
        with hook:
            out = fn()
            cp.cuda.Device().synchronize()
    except Exception:  # noqa: BLE001 - a hook API that differs: report no figure
        return None
    del out
    return int(hook.peak)


@contextlib.contextmanager
def blur_path(direct):
    """``xrfgpu._gpu_rl`` set to blur by the transforms (``direct=False``) or in real space at any PSF width
    (``direct=True``: ``DIRECT_MAX_TAPS`` lifted, so a wide PSF is not silently given the transforms), and
    put back as it was after the block."""
    from xrfgpu import _gpu_rl

    before = _gpu_rl.DIRECT_BLUR, _gpu_rl.DIRECT_MAX_TAPS
    _gpu_rl.DIRECT_BLUR = direct
    if direct:
        _gpu_rl.DIRECT_MAX_TAPS = 10**9
    try:
        yield
    finally:
        _gpu_rl.DIRECT_BLUR, _gpu_rl.DIRECT_MAX_TAPS = before


def measure_rl(size, *, reps=3, iters=ITERS, with_cucim=True):
    import xrfgpu
    from xrfgpu.fft import Convolution

    cp = _cupy()
    h = psf_host()
    y = count_map(size)
    hd = cp.asarray(h)
    row = {"size": size, "iterations": iters}

    from xrfgpu import _gpu_rl

    def run(accelerate=False, direct=False):
        """The transforms' iteration (``direct=False``) or the real-space blur's, whatever the default is."""
        with blur_path(direct):
            return xrfgpu.richardson_lucy(y, hd, num_iter=iters, background=BACKGROUND, accelerate=accelerate)

    row["xrfgpu_s"] = timed(run, reps) / iters
    row["xrfgpu_accelerated_s"] = timed(lambda: run(True), reps) / iters

    def run_direct(accelerate=False):
        return run(accelerate, direct=True)

    try:
        row["xrfgpu_direct_s"] = timed(run_direct, reps) / iters
        row["xrfgpu_direct_accelerated_s"] = timed(lambda: run_direct(True), reps) / iters
        reference, direct = run(), run_direct()
        row["direct_max_rel_diff"] = float(cp.max(cp.abs(direct - reference)) / cp.max(cp.abs(reference)))
        del reference, direct
        for key, accelerate in (("direct", False), ("direct_accelerated", True)):
            live = peak_live_bytes(lambda a=accelerate: run_direct(a))
            row[f"peak_live_x_map_{key}"] = None if live is None else (live + y.nbytes) / y.nbytes
    except Exception as exc:  # noqa: BLE001 - the unmeasured engine must not cost the rest of the run
        row["direct_error"] = f"{type(exc).__name__}: {exc}"
    op = Convolution(hd, y.shape, iterative=True)
    row["engine"] = op.engine
    row["default_blur"] = "direct" if _gpu_rl.direct_blur_taps(op) is not None else "transforms"
    row["canvas"] = list(op.transform_shape)
    otf = periodic_otf(h, y.shape)
    row["naive_s"] = timed(lambda: naive_rl(y, otf, BACKGROUND, iters), reps) / iters
    row["floor_map_s"] = timed(four_transforms(y.shape), max(reps, 5))
    row["floor_canvas_s"] = timed(four_transforms(tuple(op.transform_shape)), max(reps, 5))
    if with_cucim:
        try:
            from cucim.skimage.restoration import richardson_lucy as cucim_rl

            scale = float(y.max())
            row["cucim_s"] = timed(lambda: cucim_rl(y / scale, hd, num_iter=iters, clip=False), reps) / iters
        except Exception as exc:  # noqa: BLE001 - a missing or broken peer is reported, not fatal
            row["cucim_error"] = f"{type(exc).__name__}: {exc}"
    map_bytes = y.nbytes
    del op, otf  # the naive RL's transfer function would count as RL's memory otherwise
    # peak of the call's own arrays (+ the input map), then the pool's total after the call (which also
    # holds pool blocks pinned by small earlier allocations)
    for key, accelerate in (("rl", False), ("rl_accelerated", True)):
        live = peak_live_bytes(lambda a=accelerate: run(a))
        row[f"peak_live_x_map_{key}"] = None if live is None else (live + map_bytes) / map_bytes
    row["pool_bytes_rl"] = pool_bytes_after(run)
    row["pool_bytes_rl_accelerated"] = pool_bytes_after(lambda: run(True))
    row["memory_x_map_rl"] = row["pool_bytes_rl"] / map_bytes
    row["memory_x_map_rl_accelerated"] = row["pool_bytes_rl_accelerated"] / map_bytes
    for key in ("xrfgpu_s", "xrfgpu_accelerated_s"):
        row[key.replace("_s", "_vs_naive")] = row[key] / row["naive_s"]
    row["xrfgpu_vs_floor_canvas"] = row["xrfgpu_s"] / row["floor_canvas_s"]
    if "cucim_s" in row:
        row["cucim_vs_xrfgpu"] = row["cucim_s"] / row["xrfgpu_s"]
        if "xrfgpu_direct_s" in row:
            row["cucim_vs_direct"] = row["cucim_s"] / row["xrfgpu_direct_s"]
    if "xrfgpu_direct_s" in row:
        row["direct_vs_default"] = row["xrfgpu_direct_s"] / row["xrfgpu_s"]
    return row


def measure_taps(sizes=(2048, 4096), sigmas=(2.0, 4.0, 7.5, 12.0, 20.0, 30.0), reps=3, iters=20):
    """One plain RL iteration by the transforms and by the real-space blur, per map size and PSF width.

    The real-space blur's cost grows with the taps (2·⌈4σ⌉ + 1 per axis) and the transforms' does not:
    where the two cross is ``xrfgpu._gpu_rl.DIRECT_MAX_TAPS``.
    """
    import xrfgpu
    from xrfgpu import _gpu_rl
    from xrfgpu.fft import Convolution
    from xrfgpu.psf import gaussian

    cp = _cupy()
    rows = []
    for size in sizes:
        y = count_map(size, seed=4)
        for sigma in sigmas:
            h = gaussian(None, sigma)
            hd = cp.asarray((h / h.sum()).astype(np.float32))
            row = {"size": size, "sigma": sigma, "taps": int(h.shape[0])}
            for key, direct in (("transforms_s", False), ("direct_s", True)):
                with blur_path(direct):
                    # which blur the call takes (a PSF the real-space blur cannot take keeps the transforms)
                    row[key.replace("_s", "_runs_direct")] = _gpu_rl.direct_blur_taps(
                        Convolution(hd, y.shape, iterative=True)) is not None
                    row[key] = timed(lambda y=y, hd=hd: xrfgpu.richardson_lucy(y, hd, num_iter=iters,
                                                                                 background=BACKGROUND), reps) / iters
            row["direct_vs_transforms"] = row["direct_s"] / row["transforms_s"]
            rows.append(row)
            print("taps (progress)", json.dumps(row), flush=True)
    return rows


def measure_stack(reps=3, iters=20):
    import xrfgpu

    cp = _cupy()
    h = cp.asarray(psf_host())
    stack = count_map(512, seed=1, n=64)
    big = count_map(4096, seed=2)
    t_stack = timed(lambda: xrfgpu.restore_stack(stack, h, "rl", num_iter=iters, background=BACKGROUND), reps)
    t_big = timed(lambda: xrfgpu.richardson_lucy(big, h, num_iter=iters, background=BACKGROUND), reps)
    return {"maps": 64, "size": 512, "big": 4096, "iterations": iters, "stack_s": t_stack, "big_s": t_big,
            "throughput_ratio": (stack.size / t_stack) / (big.size / t_big)}


def measure_numpy_vs_cupy(size=2048, iters=20):
    """The same RL on NumPy (this machine's cores) and on CuPy, and the largest difference of the results."""
    import xrfgpu

    cp = _cupy()
    y = count_map(size, seed=3)
    h = psf_host()
    y_host = cp.asnumpy(y)
    t0 = time.perf_counter()
    cpu = xrfgpu.richardson_lucy(y_host, h, num_iter=iters, background=BACKGROUND, accelerate=True)
    t_cpu = time.perf_counter() - t0
    gpu_fn = lambda: xrfgpu.richardson_lucy(y, cp.asarray(h), num_iter=iters, background=BACKGROUND,  # noqa: E731
                                            accelerate=True)
    t_gpu = timed(gpu_fn, reps=3)
    gpu = cp.asnumpy(gpu_fn())
    return {"size": size, "iterations": iters, "accelerate": True, "numpy_s": t_cpu, "cupy_s": t_gpu,
            "speedup": t_cpu / t_gpu, "max_rel_diff": float(np.abs(gpu - cpu).max() / np.abs(cpu).max())}


def measure_blind():
    """blind_l0 at 512² (kernel 37): CPU against GPU, same map."""
    from xrfgpu.blind import blind_l0
    from xrfgpu.phantom import observe

    cp = _cupy()
    out = {}
    counts, _, _ = observe((512, 512), 4.0, seed=5, background_counts=140.0)
    t0 = time.perf_counter()
    blind_l0(counts, 37)
    out["blind_l0_512_cpu_s"] = time.perf_counter() - t0
    g = cp.asarray(counts)
    out["blind_l0_512_gpu_s"] = timed(lambda: blind_l0(g, 37), reps=1)
    out["blind_l0_speedup"] = out["blind_l0_512_cpu_s"] / out["blind_l0_512_gpu_s"]
    return out


def measure_restore(reps=3):
    """The automatic restore() at 1024²: CPU against GPU, same map, both timed the same way.

    Each path gets one untimed warm-up call (imports, FFT plans, kernel compilation), then ``reps`` timed
    calls, each of which draws its own binomial split (:data:`xrfgpu.stopping._LAST_SPLIT` cleared) and
    returns its own stage times (``info["seconds"]``), so the total and its stages come from the same call.
    Recorded per path: the median total (the GPU's device-synchronised), the median of each stage, and
    ``outside_stages_s``, the median of total − Σ stages (input checks, transfers, the flux sums: work no
    stage clock holds). The speed-up is the ratio of the medians. (Until the eighth session the CPU side
    was one call, the first of its process for this map, and the GPU's total and stage times came from two
    different calls.)
    """
    import xrfgpu
    from xrfgpu.phantom import observe
    from xrfgpu.stopping import _LAST_SPLIT

    cp = _cupy()
    counts, _, _ = observe((1024, 1024), 6.5, seed=6, background_counts=140.0)

    def timed_calls(image, synchronise):
        _LAST_SPLIT.clear()
        xrfgpu.restore(image)  # warm-up, untimed
        synchronise()
        totals, stages = [], []
        for _ in range(reps):
            _LAST_SPLIT.clear()  # every timed call draws its own split, as a user's first call does
            t0 = time.perf_counter()
            _, info = xrfgpu.restore(image, return_info=True)
            synchronise()
            totals.append(time.perf_counter() - t0)
            stages.append(info["seconds"])
        names = list(stages[0])
        return {
            "total_s": float(np.median(totals)),
            "totals_s": [round(t, 4) for t in totals],
            "stages_s": {k: round(float(np.median([st[k] for st in stages])), 4) for k in names},
            "outside_stages_s": round(float(np.median([t - sum(st.values()) for t, st in zip(totals, stages)])), 4),
        }

    out = {"reps": reps}
    out["cpu"] = timed_calls(counts, lambda: None)
    out["gpu"] = timed_calls(cp.asarray(counts), cp.cuda.Device().synchronize)
    out["restore_auto_1024_cpu_s"] = out["cpu"]["total_s"]
    out["restore_auto_1024_gpu_s"] = out["gpu"]["total_s"]
    out["restore_auto_speedup"] = out["restore_auto_1024_cpu_s"] / out["restore_auto_1024_gpu_s"]
    return out


def measure_joint(fixed_iter=100, fixed_weight=0.05):
    """Joint restoration (issue 18) of the simulated skarn (3 maps of 288², Fe the guide): CPU against GPU.

    At a fixed weight and iteration count (no cross-validation) both paths run, and the largest
    difference of their results is reported; the fully automatic call (two-fold cross-validation of
    the 6 plain candidates × 2 weak maps up to 400 iterations, then the 3 Huber-dTV candidates for the
    maps a dTV weight won, the guide's CV stop and EM-TV field) is timed on the GPU only (it takes minutes on 2 CPU cores: docs/joint.md, "Cost").
    """
    import skarn

    from xrfgpu.joint import joint_richardson_lucy

    cp = _cupy()
    counts, _, psfs, backgrounds, _ = skarn.observe(0)
    counts = np.asarray(counts, dtype=np.float32)
    psfs = [np.asarray(h, dtype=np.float32) for h in psfs]
    fixed = dict(background=list(backgrounds), weight=fixed_weight, num_iter=fixed_iter)
    t0 = time.perf_counter()
    cpu = np.asarray(joint_richardson_lucy(counts, psfs, **fixed))
    out = {"maps": int(counts.shape[0]), "size": int(counts.shape[-1]), "fixed_weight": fixed_weight,
           "fixed_iterations": fixed_iter, "fixed_cpu_s": time.perf_counter() - t0}
    print("joint (progress)", json.dumps(out), flush=True)
    g, gh = cp.asarray(counts), [cp.asarray(h) for h in psfs]
    gpu_fn = lambda: joint_richardson_lucy(g, gh, **fixed)  # noqa: E731
    out["fixed_gpu_s"] = timed(gpu_fn, reps=1)
    gpu = cp.asnumpy(gpu_fn())
    out["fixed_speedup"] = out["fixed_cpu_s"] / out["fixed_gpu_s"]
    out["fixed_max_rel_diff"] = float(np.abs(gpu - cpu).max() / np.abs(cpu).max())
    print("joint (progress)", json.dumps(out), flush=True)
    # the automatic call once, timed by the wall clock after a device synchronisation (it returns its record)
    cp.cuda.Device().synchronize()
    t0 = time.perf_counter()
    _, info = joint_richardson_lucy(g, gh, background=list(backgrounds), return_info=True)
    cp.cuda.Device().synchronize()
    out["automatic_gpu_s"] = time.perf_counter() - t0
    out["automatic_weights"] = [m.get("weight") for m in info["per_map"]]
    out["automatic_iterations"] = [m.get("iterations") for m in info["per_map"]]
    out["automatic_priors"] = [m.get("prior") for m in info["per_map"]]
    return out


def smooth_lengths(lo, hi):
    out = []
    for m in range(lo + (lo % 2), hi + 1, 2):
        r = m
        for p in (2, 3, 5, 7):
            while r % p == 0:
                r //= p
        if r == 1:
            out.append(m)
    return out


def measure_fft_lengths(bases=(512, 1024, 2048, 4096, 8192), reach=60):
    cp = _cupy()
    rows = []
    for n in bases:
        for m in smooth_lengths(n + reach, int(1.3 * (n + reach))) + [n]:
            t = timed(four_transforms((m, m)), reps=5) / 2
            rows.append({"length": m, "pair_s": t, "per_element_ns": t / (m * m) * 1e9})
            cp.fft.config.get_plan_cache().clear()
            cp.get_default_memory_pool().free_all_blocks()
    return rows


def environment():
    cp = _cupy()
    props = cp.cuda.runtime.getDeviceProperties(0)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    return {
        "device": name,
        "memory_gib": props["totalGlobalMem"] / 2**30,
        "multiprocessors": props["multiProcessorCount"],
        "driver": cp.cuda.runtime.driverGetVersion(),
        "runtime": cp.cuda.runtime.runtimeGetVersion(),
        "cupy": cp.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--sizes", default="512,1024,2048,4096,8192")
    parser.add_argument("--parts", default="rl,taps,stack,numpy,blind,restore,joint,fft")
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    result = {"environment": environment(), "command": " ".join(sys.argv)}
    t0 = time.time()

    def save():
        result["wall_s"] = time.time() - t0
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)

    if "rl" in parts:
        result["rl"] = []
        for size in [int(s) for s in args.sizes.split(",")]:
            try:
                result["rl"].append(measure_rl(size))
            except Exception as exc:  # noqa: BLE001 - record and go on to the next size
                result["rl"].append({"size": size, "error": f"{type(exc).__name__}: {exc}"})
            save()
            print(json.dumps(result["rl"][-1]), flush=True)
    if "taps" in parts:
        try:
            result["taps"] = measure_taps()
        except Exception as exc:  # noqa: BLE001
            result["taps"] = {"error": f"{type(exc).__name__}: {exc}"}
        save()
    if "stack" in parts:
        try:
            result["stack"] = measure_stack()
        except Exception as exc:  # noqa: BLE001
            result["stack"] = {"error": f"{type(exc).__name__}: {exc}"}
        save()
        print(json.dumps(result["stack"]), flush=True)
    if "beyond" in parts:  # the name of both parts in earlier runs
        parts |= {"blind", "restore"}
    for name, fn in (("numpy", measure_numpy_vs_cupy), ("blind", measure_blind), ("restore", measure_restore),
                     ("joint", measure_joint)):
        if name in parts:
            try:
                result[name] = fn()
            except Exception as exc:  # noqa: BLE001
                result[name] = {"error": f"{type(exc).__name__}: {exc}"}
            save()
            print(name, json.dumps(result[name]), flush=True)
    if "fft" in parts:
        result["fft_lengths"] = measure_fft_lengths()
        save()
    save()
    print_table(result)


def print_table(result):
    env = result["environment"]
    print(f"\n{env['device']}  CuPy {env['cupy']}  (one run)")
    print(f"{'map':>6} {'engine':>9} {'xrfgpu ms':>10} {'accel ms':>9} {'naive ms':>9} {'floor ms':>9} "
          f"{'canvas fl':>9} {'cuCIM ms':>9} {'x/naive':>8} {'x/floor':>8} {'cuCIM/x':>8} {'mem x':>6} {'live x':>6} "
          f"{'acc mem':>7} {'acc live':>8}")
    for r in result.get("rl", []):
        if "error" in r:
            print(f"{r['size']:>6} ERROR {r['error']}")
            continue
        ms = lambda k: f"{1e3 * r[k]:.3f}" if k in r else "-"  # noqa: E731
        print(f"{r['size']:>6} {r['engine']:>9} {ms('xrfgpu_s'):>10} {ms('xrfgpu_accelerated_s'):>9} "
              f"{ms('naive_s'):>9} {ms('floor_map_s'):>9} {ms('floor_canvas_s'):>9} {ms('cucim_s'):>9} "
              f"{r['xrfgpu_vs_naive']:>8.2f} {r['xrfgpu_vs_floor_canvas']:>8.2f} "
              f"{r.get('cucim_vs_xrfgpu') or float('nan'):>8.2f} {r['memory_x_map_rl']:>6.1f} "
              f"{r.get('peak_live_x_map_rl') or float('nan'):>6.2f} {r['memory_x_map_rl_accelerated']:>7.1f} "
              f"{r.get('peak_live_x_map_rl_accelerated') or float('nan'):>8.2f}")
    print(f"{'map':>6} {'direct ms':>10} {'d accel ms':>10} {'direct/x':>9} {'cuCIM/direct':>12} {'max rel diff':>12} "
          f"{'live x':>6} {'acc live':>8}  (real-space separable blur, DIRECT_BLUR)")
    for r in result.get("rl", []):
        if "error" in r:
            continue
        if "direct_error" in r:
            print(f"{r['size']:>6} direct ERROR {r['direct_error']}")
            continue
        nan = float("nan")
        print(f"{r['size']:>6} {1e3 * r['xrfgpu_direct_s']:>10.3f} {1e3 * r['xrfgpu_direct_accelerated_s']:>10.3f} "
              f"{r['direct_vs_default']:>9.2f} {r.get('cucim_vs_direct') or nan:>12.2f} "
              f"{r['direct_max_rel_diff']:>12.2e} {r.get('peak_live_x_map_direct') or nan:>6.2f} "
              f"{r.get('peak_live_x_map_direct_accelerated') or nan:>8.2f}")
    taps = result.get("taps")
    if isinstance(taps, list):
        print(f"{'map':>6} {'sigma':>6} {'taps':>5} {'transforms ms':>13} {'direct ms':>10} {'direct/transforms':>17}")
        for r in taps:
            print(f"{r['size']:>6} {r['sigma']:>6} {r['taps']:>5} {1e3 * r['transforms_s']:>13.3f} "
                  f"{1e3 * r['direct_s']:>10.3f} {r['direct_vs_transforms']:>17.2f}")
    s = result.get("stack")
    if s and "error" not in s:
        print(f"stack 64x512^2 {s['stack_s']:.3f} s vs 4096^2 {s['big_s']:.3f} s: throughput ratio "
              f"{s['throughput_ratio']:.2f}")
    for name in ("numpy", "blind", "restore", "joint"):
        if name in result:
            print(name, json.dumps(result[name]))


if __name__ == "__main__":
    main()
