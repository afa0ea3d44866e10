"""Speed of the blind σ estimate (``xrfgpu.psf.estimate_sigma``) against an earlier commit, and proof of equal answers.

Four modes, all comparing this checkout's ``xrfgpu`` with the code of a base commit (exported with
``git archive <base> | tar -x -C <folder>`` and imported in the same process under another name):

* timing (default): the median of 3 calls on each map (a 1024² and a 512² phantom count map,
  ``xrfgpu.phantom.observe(..., 6.5, seed=6, background_counts=140.0)``, and the real HXN Fe map, 160²),
  old and new alternating after one untimed warm-up call each, and their ratio;
* ``--sizes``: CPU time (``time.process_time``: all threads of the process) and wall time per map, old
  and new, on ``--per-size`` tuning maps of each size: 256² and 512² maps of ``sigma_scenes_fresh.FRESH_TUNING_MORE``
  and ``sigma_scenes.TUNING_EXTENDED`` (alternately from the two lists), and at 1024² the same tuning cases
  drawn at 1024² (the first 512² cases of both lists with the size set to 1024) with the front door's
  timing map (``benchmarks/front_door_timing.py``: Voronoi seed 7, σ 4, 77/137.5 counts) first. Each map is
  estimated once by each code after one untimed warm-up call of each on the first map of the size, in
  alternating order (old first on even maps, new first on odd ones); median and largest time per size,
  and whether the answers were equal. In both timing modes the memo of the last binomial split
  (``xrfgpu.stopping._LastSplit``) is cleared before each timed call, so each call draws its split;
* ``--front-door``: CPU time (``time.process_time``, all threads) and wall time of the automatic
  ``restore(counts)`` (the front door: σ, background, the cross-validated stop, Richardson–Lucy) on the 1024²
  phantom of the timing mode, ``--repeats`` calls of each code after one untimed warm-up call of each,
  alternating (old first on even calls, new first on odd ones); the restored maps must be equal bit for bit.
  The memo of the last binomial split (``xrfgpu.stopping._LastSplit``) is cleared before each call of either
  code, so that each call draws the split once, as on a map not seen before;
* ``--equal``: old and new on tuning maps (``sigma_scenes_fresh.FRESH_TUNING_MORE``, ``sigma_scenes.TUNING_EXTENDED``
  and the five HXN maps of ``/work/shared/data``; never the held-out sets), checking
  that σ, σu, σv, ρ, the interval and the noise level agree to ``--rtol`` (1e-9) and that the method, the
  reliability flag, the evidence text and the warnings are identical; the largest relative difference
  is printed. Where a map differs at all, the base code is run on it up to five more times: SciPy's MINPACK
  (``lmder``, under ``least_squares(method="lm")`` and the direct call alike) can return results that differ
  in the last digits, or by up to 2e-4 on ill-conditioned fits, between two calls with the same input, so a
  map counts as failed only where the base code agrees with itself on every rerun and never gives the new
  code's answer.

Usage::

    python benchmarks/sigma_speed.py --base c3f393a
    python benchmarks/sigma_speed.py --base main --sizes [--per-size 8]
    python benchmarks/sigma_speed.py --base c3f393a --equal [--limit N]
    python benchmarks/sigma_speed.py --base 8f16747 --front-door [--repeats 5]

Run from the repository root with the checkout's ``xrfgpu`` importable (``PYTHONPATH=$PWD``).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
HXN = Path("/work/shared/data/hxn_nanoparticles_xrf")
HXN_ELEMENTS = ("Fe", "Cr", "S", "P", "Si")
BASE_NAME = "xrfgpu_base"
RERUNS = 5  # base runs more on a map whose answers differ (--equal)


def load_base(base):
    """The ``xrfgpu`` package of commit ``base``, exported once to a temporary folder, imported as ``xrfgpu_base``."""
    commit = subprocess.run(["git", "rev-parse", "--short", base], cwd=ROOT, check=True, capture_output=True,
                            text=True).stdout.strip()
    folder = Path(tempfile.gettempdir()) / f"xrfgpu_sigma_base_{commit}"
    if not (folder / "xrfgpu" / "__init__.py").exists():
        folder.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", commit, "xrfgpu"], cwd=ROOT, check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    spec = importlib.util.spec_from_file_location(BASE_NAME, folder / "xrfgpu" / "__init__.py",
                                                  submodule_search_locations=[str(folder / "xrfgpu")])
    module = importlib.util.module_from_spec(spec)
    sys.modules[BASE_NAME] = module
    spec.loader.exec_module(module)
    return module, commit


def hxn_map(element):
    """The real HXN map of ``element`` (160², fitted, float)."""
    import tifffile

    return tifffile.imread(HXN / f"SUM_maps_XRF_{element}_K.tiff").astype(np.float64)


def run(estimate, image):
    """(result, warnings as (category name, message) pairs) of ``estimate(image)``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = estimate(image)
    return result, [(w.category.__name__, str(w.message)) for w in caught]


def timing(old, new):
    from xrfgpu import phantom

    maps = []
    for n in (1024, 512):
        counts, _, _ = phantom.observe((n, n), 6.5, seed=6, background_counts=140.0)
        maps.append((f"phantom {n}² (σ 6.5, seed 6, background 140)", counts))
    maps.append(("HXN Fe 160² (real)", hxn_map("Fe")))
    print(f"{'map':48s} {'base s':>8s} {'new s':>8s} {'ratio':>6s}  same answer")
    for label, image in maps:
        run(old.psf.estimate_sigma, image)  # warm-up: imports, caches
        run(new.psf.estimate_sigma, image)
        t_old, t_new = [], []
        for _ in range(3):
            clear_split_memo(old)
            start = time.perf_counter()
            a, _ = run(old.psf.estimate_sigma, image)
            t_old.append(time.perf_counter() - start)
            clear_split_memo(new)  # the split drawn on each call, as on a map not seen before
            start = time.perf_counter()
            b, _ = run(new.psf.estimate_sigma, image)
            t_new.append(time.perf_counter() - start)
        m_old, m_new = statistics.median(t_old), statistics.median(t_new)
        same = a.sigma == b.sigma and a.interval == b.interval and a.evidence == b.evidence
        print(f"{label:48s} {m_old:8.3f} {m_new:8.3f} {m_old / m_new:6.2f}  {same}")


def tuning_cases_by_size(per_size):
    """{size: [(label, build)]}: ``per_size`` tuning maps at 256², 512² and 1024² (see the module docstring)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import sigma_scenes
    import sigma_scenes_fresh

    lists = [("fresh-tuning-more", sigma_scenes_fresh.FRESH_TUNING_MORE, sigma_scenes_fresh.make_case),
             ("tuning-extended", sigma_scenes.TUNING_EXTENDED, sigma_scenes.make_case)]
    out = {}
    for size in (256, 512):
        picked = []
        for i in range(per_size):
            name, cases, make = lists[i % 2]
            case = [c for c in cases if c[2] == size][i // 2]
            picked.append((f"{name} {case}", lambda case=case, make=make: make(case)[0]))
        out[size] = picked
    front_door = ("voronoi", 7, 1024, 4.0, 77.0, 137.5)
    picked = [(f"front door {front_door}", lambda: sigma_scenes.make_case(front_door)[0])]
    for i in range(per_size - 1):
        name, cases, make = lists[i % 2]
        case = [c for c in cases if c[2] == 512][i // 2]
        case = case[:2] + (1024,) + case[3:]
        picked.append((f"{name} {case}", lambda case=case, make=make: make(case)[0]))
    out[1024] = picked
    return out


def timed(estimate, image):
    """(result, CPU seconds of the process, wall seconds) of ``estimate(image)``, warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cpu, wall = time.process_time(), time.perf_counter()
        result = estimate(image)
        return result, time.process_time() - cpu, time.perf_counter() - wall


def timing_by_size(old, new, per_size):
    print(f"{'size':>5s} {'maps':>4s}  {'CPU s per map, base: median / max':>34s}  {'new: median / max':>18s}  "
          f"{'speed-up (medians)':>18s}  {'wall s, base / new (medians)':>29s}  same answers")
    for size, maps in tuning_cases_by_size(per_size).items():
        rows = []
        for i, (label, build) in enumerate(maps):
            image = build()
            if i == 0:  # untimed warm-up of both codes (imports, caches, the first-call checks)
                timed(old.psf.estimate_sigma, image)
                timed(new.psf.estimate_sigma, image)
            order = (("old", old), ("new", new)) if i % 2 == 0 else (("new", new), ("old", old))
            got = {}
            for name, module in order:
                clear_split_memo(module)  # each map's split drawn, as on a map not seen before (the warm-up saw it)
                got[name] = timed(module.psf.estimate_sigma, image)
            a, b = got["old"][0], got["new"][0]
            same = (a.sigma == b.sigma and a.interval == b.interval and a.method == b.method
                    and a.reliable == b.reliable and a.evidence == b.evidence)
            rows.append((got["old"][1], got["new"][1], got["old"][2], got["new"][2], same))
            print(f"      {label}: CPU {got['old'][1]:.3f} -> {got['new'][1]:.3f} s, wall {got['old'][2]:.3f} -> "
                  f"{got['new'][2]:.3f} s, same {same}", flush=True)
        cpu_old, cpu_new, wall_old, wall_new, same = zip(*rows)
        m_old, m_new = statistics.median(cpu_old), statistics.median(cpu_new)
        print(f"{size:5d} {len(rows):4d}  {m_old:21.3f} / {max(cpu_old):.3f}  {m_new:11.3f} / {max(cpu_new):.3f}  "
              f"{m_old / m_new:17.2f}×  {statistics.median(wall_old):20.3f} / {statistics.median(wall_new):.3f}  "
              f"{sum(same)}/{len(same)}", flush=True)


def clear_split_memo(module):
    """Forget the last binomial split of ``module`` (an ``xrfgpu`` package), where it keeps one."""
    memo = getattr(importlib.import_module(module.__name__ + ".stopping"), "_LAST_SPLIT", None)
    if memo is not None:
        memo.clear()


def front_door_timing(old, new, repeats):
    from xrfgpu import phantom

    counts, _, _ = phantom.observe((1024, 1024), 6.5, seed=6, background_counts=140.0)
    codes = (("old", old), ("new", new))
    for _, module in codes:  # untimed warm-up (imports, FFT plans, first-call checks)
        clear_split_memo(module)
        timed(module.restore, counts)
    rows = {"old": [], "new": []}
    for i in range(repeats):
        outputs = {}
        for name, module in (codes if i % 2 == 0 else codes[::-1]):
            clear_split_memo(module)
            outputs[name], cpu, wall = timed(module.restore, counts)
            rows[name].append((cpu, wall))
        same = np.asarray(outputs["old"]).tobytes() == np.asarray(outputs["new"]).tobytes()
        print(f"  call {i + 1}: CPU {rows['old'][-1][0]:.3f} -> {rows['new'][-1][0]:.3f} s, wall "
              f"{rows['old'][-1][1]:.3f} -> {rows['new'][-1][1]:.3f} s, restored maps equal {same}", flush=True)
    for name in ("old", "new"):
        cpu, wall = zip(*rows[name])
        print(f"{name}: CPU s median {statistics.median(cpu):.3f} (min {min(cpu):.3f}, max {max(cpu):.3f}); wall s "
              f"median {statistics.median(wall):.3f} (min {min(wall):.3f}, max {max(wall):.3f})")
    ratio = statistics.median(c for c, _ in rows["old"]) / statistics.median(c for c, _ in rows["new"])
    print(f"speed-up of the medians, CPU: {ratio:.3f}×")


def differences(a, b, wa, wb):
    """Largest relative difference of the continuous answers, and the names of the discrete ones that differ."""
    pairs = [(a.sigma, b.sigma), (a.sigma_u, b.sigma_u), (a.sigma_v, b.sigma_v), (a.rho, b.rho),
             (a.interval[0], b.interval[0]), (a.interval[1], b.interval[1]), (a.noise_level, b.noise_level)]
    worst = 0.0
    for x, y in pairs:
        x, y = float(x), float(y)
        if x != y:
            worst = max(worst, abs(x - y) / max(abs(x), abs(y), 1e-300))
    discrete = [name for name, x, y in (("method", a.method, b.method), ("reliable", a.reliable, b.reliable),
                                        ("evidence", a.evidence, b.evidence), ("warnings", wa, wb),
                                        ("elongated", a.elongated, b.elongated)) if x != y]
    return worst, discrete


def equality(old, new, *, limit, rtol):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import sigma_scenes
    import sigma_scenes_fresh

    fresh = sigma_scenes_fresh.FRESH_TUNING_MORE
    cases = ([("fresh-tuning-more", case, sigma_scenes_fresh.make_case) for case in fresh]
             + [("tuning-extended", case, sigma_scenes.make_case) for case in sigma_scenes.TUNING_EXTENDED])
    cases = cases[:limit] if limit else cases
    maps = [(f"{name} {case[:4]}", lambda case=case, make=make: make(case)[0]) for name, case, make in cases]
    maps += [(f"HXN {element}", lambda element=element: hxn_map(element)) for element in HXN_ELEMENTS]
    worst, worst_label, failures, base_noise = 0.0, "", [], []
    start = time.perf_counter()
    for label, build in maps:
        image = build()
        a, wa = run(old.psf.estimate_sigma, image)
        b, wb = run(new.psf.estimate_sigma, image)
        rel, discrete = differences(a, b, wa, wb)
        if rel > worst:
            worst, worst_label = rel, label
        if rel > 0 or discrete:  # any difference: is it one the base code shows against itself?
            # up to RERUNS more base runs: the new answer may be one of the base code's own answers, or the base
            # code may give another answer than its first
            rel_base, discrete_base, matched = 0.0, [], False
            for _ in range(RERUNS):
                again, wagain = run(old.psf.estimate_sigma, image)
                r, d = differences(a, again, wa, wagain)
                rel_base, discrete_base = max(rel_base, r), discrete_base + [x for x in d if x not in discrete_base]
                matched = matched or differences(again, b, wagain, wb) == (0.0, [])
                if matched:
                    break
            base_noise.append((label, rel, discrete, rel_base, discrete_base, matched))
            if not (matched or rel_base > rtol or discrete_base):
                failures.append((label, rel, discrete))
    print(f"{len(maps)} maps in {time.perf_counter() - start:.0f} s; largest relative difference of σ, σu, σv, ρ, "
          f"interval, noise level: {worst:.3g} ({worst_label or 'none'})")
    for label, rel, discrete, rel_base, discrete_base, matched in base_noise:
        print(f"  {label}: new vs base {rel:.3g} {discrete or ''}; base vs its first run (up to {RERUNS} more runs) "
              f"{rel_base:.3g} {discrete_base or ''}; "
              + ("a base rerun gave the new answer exactly" if matched else "no base rerun gave the new answer"))
    print(f"maps whose answers differ beyond rtol {rtol:g} or in method/flag/evidence/warnings, where the base "
          f"code agrees with itself and never gives the new answer: {len(failures)}")
    return 1 if failures else 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", default="main", help="commit whose code is the reference (default: main)")
    parser.add_argument("--equal", action="store_true", help="check equal answers on the tuning maps")
    parser.add_argument("--sizes", action="store_true", help="CPU time per map at 256², 512², 1024² (tuning maps)")
    parser.add_argument("--per-size", type=int, default=8, help="maps per size with --sizes (default 8)")
    parser.add_argument("--front-door", action="store_true", help="CPU time of restore() on the 1024² phantom")
    parser.add_argument("--repeats", type=int, default=5, help="calls of each code with --front-door (default 5)")
    parser.add_argument("--limit", type=int, default=0, help="at most this many scene maps (0: all)")
    parser.add_argument("--rtol", type=float, default=1e-9)
    args = parser.parse_args(argv)
    import xrfgpu

    old, commit = load_base(args.base)
    print(f"base {commit} ({old.__file__}) vs new ({xrfgpu.__file__}); numpy {np.__version__}, "
          f"{'equality' if args.equal else 'timing'}")
    if args.equal:
        return equality(old, xrfgpu, limit=args.limit, rtol=args.rtol)
    if args.sizes:
        timing_by_size(old, xrfgpu, args.per_size)
        return 0
    if args.front_door:
        front_door_timing(old, xrfgpu, args.repeats)
        return 0
    timing(old, xrfgpu)
    return 0


if __name__ == "__main__":
    sys.exit(main())
