"""Wall time of the joint restoration (:func:`xrfgpu.joint.joint_richardson_lucy`) per stage, and a check
that a faster version gives the same numbers.

``run CASE --out DIR`` restores one case with the ``xrfgpu`` found first on
``PYTHONPATH`` (this branch's, or main's unpacked by ``git archive``) and
writes ``DIR/CASE.npz`` (the restored stack) and ``DIR/CASE.json`` (the whole
record, floats written exactly, the wall time of the call and the inclusive
time spent in each stage: the guide's and the λ = 0 maps' own RL
``_restore_alone``, the guide's field ``_guide_direction_field``, the members'
own-edge fields ``_member_fields``, the cross-validation ``_cross_validate``,
the final runs ``_batch_run``; stages nest, e.g. the cross-validation's own
guide restorations are also in ``_restore_alone``). ``--profile N`` also
prints cProfile's top N functions by internal time. ``compare OLD NEW`` reads
two such folders and says, per case, whether the restored stacks are equal
(``np.array_equal``) and the records identical, with the wall times. ``dtv MAPS SIDE`` times one
call of the dTV engine with the host engine off and on (``XRFGPU_HOST_KERNELS``; docs/performance.md,
"Host kernels").

Cases: ``maps:N`` (N maps of 128² cut from the middle of :mod:`skarn` seed 0's
scene: map k shows element k mod 3 (Si, Ca, Fe) at its rates and PSF σ
× (1 + 0.1 ⌊k/3⌋), Poisson counts with noise seed k; Fe (σ 8 px) guides),
``skarn:SEED:CROP`` (the benchmark's three maps, the central CROP² pixels),
``fitted:N`` (the first N real HXN maps (Fe, Cr, S, P, Si; fitted, not counts;
``../shared/data/hxn_nanoparticles_xrf``, licence and attribution in its README)
cropped to their central 128², Fe guide, ``background="auto"``).

Run (old = main's code unpacked by ``git archive``; alternate old and new so both see the same load)::

    git archive main | tar -x -C /tmp/old-jspeed
    for case in maps:2 maps:4 maps:8; do
        PYTHONPATH=/tmp/old-jspeed python benchmarks/joint_speed.py run $case --out /tmp/js/old
        PYTHONPATH=$PWD python benchmarks/joint_speed.py run $case --out /tmp/js/new
    done
    python benchmarks/joint_speed.py compare /tmp/js/old /tmp/js/new
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import joint_cases  # noqa: E402

SIDE = 128
STAGES = ("_restore_alone", "_guide_direction_field", "_member_fields", "_cross_validate", "_batch_run")


def _inputs(case):
    """(stack, psfs, keyword arguments of joint_richardson_lucy) of a case."""
    kind, *rest = case.split(":")
    if kind == "maps":
        import skarn

        from xrfgpu import psf as psf_mod
        from xrfgpu import simulate

        n = int(rest[0])
        conc, _ = skarn.scene(0, pad=skarn.PAD)
        r0 = skarn.PAD + (skarn.SIZE - SIDE) // 2
        inner = (slice(r0, r0 + SIDE), slice(r0, r0 + SIDE))
        counts, psfs, bgs = [], [], []
        for k in range(n):
            el = skarn.ELEMENTS[k % 3]
            h = psf_mod.gaussian(None, skarn.SIGMA_PX[el] * (1 + 0.1 * (k // 3)))
            if h.shape[0] >= SIDE:  # Si's 129² kernel is larger than the map: its central 127², unit sum
                cut = (h.shape[0] - (SIDE - 1)) // 2
                h = h[cut:-cut, cut:-cut] / h[cut:-cut, cut:-cut].sum()
            s, b = skarn.RATES[el]
            full = simulate.scan(conc[k % 3], h, signal_cps=s, background_cps=b, dwell_s=skarn.DWELL_S,
                                 pixel_size_um=5.0, seed=k)
            counts.append(full[inner])
            psfs.append(h.astype(np.float32))
            bgs.append(skarn.DWELL_S * b)
        return np.stack(counts), psfs, {"background": bgs}
    if kind == "skarn":
        return joint_cases.skarn_crop(int(rest[0]), int(rest[1]))
    if kind == "fitted":
        return joint_cases.real_hxn(int(rest[0]), side=SIDE)
    raise SystemExit(f"unknown case {case!r}")


def _exact(value):
    """The record as JSON with every float written exactly (``float.hex``)."""
    if isinstance(value, dict):
        return {str(k): _exact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_exact(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value).hex()
    if isinstance(value, np.integer):
        return int(value)
    if hasattr(value, "shape"):
        return ["array", np.asarray(value).tolist()]
    return value


def run(case, out, profile=0):
    import xrfgpu
    from xrfgpu import joint as J

    stack, psfs, options = _inputs(case)
    spent = dict.fromkeys(STAGES, 0.0)

    def timed(name, inner):
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - t0
        return wrapper

    for name in STAGES:
        setattr(J, name, timed(name, getattr(J, name)))
    prof = cProfile.Profile() if profile else None
    t0 = time.perf_counter()
    if prof:
        prof.enable()
    restored, info = J.joint_richardson_lucy(stack, psfs, return_info=True, **options)
    if prof:
        prof.disable()
    seconds = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    name = case.replace(":", "_")
    np.savez(out / f"{name}.npz", restored=np.asarray(restored))
    report = {"case": case, "xrfgpu": xrfgpu.__file__, "seconds": seconds, "stages_s": spent,
              "load_average": os.getloadavg(), "record": _exact(info)}
    (out / f"{name}.json").write_text(json.dumps(report, indent=1))
    print(f"{case}: {seconds:.1f} s with {xrfgpu.__file__} (load {os.getloadavg()[0]:.1f}); stages (inclusive) "
          + ", ".join(f"{k} {v:.1f}" for k, v in spent.items()), flush=True)
    if prof:
        pstats.Stats(prof).sort_stats("tottime").print_stats(profile)


def compare(old_dir, new_dir):
    for path in sorted(new_dir.glob("*.json")):
        other = old_dir / path.name
        if not other.exists():
            continue
        new, old = json.loads(path.read_text()), json.loads(other.read_text())
        with np.load(path.with_suffix(".npz")) as f, np.load(other.with_suffix(".npz")) as g:
            a, b = g["restored"], f["restored"]
        same = np.array_equal(a, b)
        print(f"{new['case']}: old {old['seconds']:.1f} s, new {new['seconds']:.1f} s "
              f"(× {old['seconds'] / new['seconds']:.2f}); restored stacks equal: {same}"
              + ("" if same else f" (max |diff| {np.max(np.abs(a - b)):.3g})")
              + f"; records identical: {old['record'] == new['record']}")


def dtv(maps, side, *, field="per-map", gamma=0.9, huber=False, repeats=10):
    """One call of the dTV engine (10 dual steps, float32) timed with the host engine off and on.

    The NumPy code (``XRFGPU_HOST_KERNELS=0``) and the host engine, ``kernels/host_dtv.cpp``
    (``XRFGPU_HOST_KERNELS=1``), alternate twice; each time is the best of ``repeats`` calls. Random
    inputs of the joint run's shapes: ``maps`` maps of ``side``², a guide field per map or shared,
    a step (and Huber δ) per map, warm start 0. Prints both times, their ratio and whether the
    results are equal bit for bit.
    """
    from xrfgpu import _elementwise as ew

    rng = np.random.default_rng(0)
    shape = (maps, side, side)
    z = rng.gamma(2.0, 20.0, shape).astype(np.float32)
    lam_w = (rng.gamma(2.0, 1.0, shape) * 0.05).astype(np.float32)
    xi = rng.normal(size=(2,) + (shape if field == "per-map" else shape[1:]))
    xi = (xi / (1.0 + np.sqrt((xi ** 2).sum(axis=0)))).astype(np.float32)
    p0 = np.zeros(shape, np.float32)
    step = np.full((maps, 1, 1), 0.1, np.float32)
    delta = np.full((maps, 1, 1), 0.5, np.float32) if huber else None

    def call():
        return ew.dtv_denoise_numpy(z, lam_w, xi[0], xi[1], gamma, p0, p0, step, 10, huber=delta)

    best, results = {}, {}
    for mode in ("0", "1", "0", "1"):
        os.environ["XRFGPU_HOST_KERNELS"] = mode
        results[mode] = call()  # the untimed first call builds or loads the library
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            call()
            times.append(time.perf_counter() - t0)
        best[mode] = min(best.get(mode, np.inf), min(times))
    (xa, (pxa, pya)), (xb, (pxb, pyb)) = results["0"], results["1"]
    same = all(np.array_equal(a, b) and np.array_equal(np.signbit(a), np.signbit(b))
               for a, b in ((xa, xb), (pxa, pxb), (pya, pyb)))
    from xrfgpu import _host_kernels

    print(f"dtv {maps} x {side}² ({field} field, γ {gamma}{', Huber' if huber else ''}), threads "
          f"{ew._dtv_workers()}: NumPy code {1e3 * best['0']:.1f} ms, host engine {1e3 * best['1']:.1f} ms "
          f"(× {best['0'] / best['1']:.2f}); equal bit for bit: {same}; {_host_kernels.status()['reason']}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run")
    p.add_argument("case")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--profile", type=int, default=0, help="print cProfile's top N functions by internal time")
    p = sub.add_parser("compare")
    p.add_argument("old", type=Path)
    p.add_argument("new", type=Path)
    p = sub.add_parser("dtv", help="time one dTV engine call with the host engine off and on")
    p.add_argument("maps", type=int)
    p.add_argument("side", type=int)
    p.add_argument("--field", choices=("per-map", "shared"), default="per-map")
    p.add_argument("--gamma", type=float, default=0.9)
    p.add_argument("--huber", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "run":
        run(args.case, args.out, profile=args.profile)
    elif args.command == "dtv":
        dtv(args.maps, args.side, field=args.field, gamma=args.gamma, huber=args.huber)
    else:
        compare(args.old, args.new)


if __name__ == "__main__":
    main()
