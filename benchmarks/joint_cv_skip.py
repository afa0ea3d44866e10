"""The joint restoration's cross-validation with and without the Huber candidates skipped (issue 18).

``run CASE --out DIR`` restores one case with the ``xrfgpu`` found first on
``PYTHONPATH`` (this branch's, or a copy of main's: the same script times and
records both; ``--single-batch``: this branch's with every candidate in one
batch, ``skip_huber=False``) and writes ``DIR/CASE.npz`` (the restored stack) and
``DIR/CASE.json`` (per weak map: λ, prior, iterations, the cross-validation
table and the note on the Huber candidates; the wall time of the whole call
and of its cross-validation, ``xrfgpu.joint._cross_validate``). ``compare OLD
NEW`` reads two such folders and prints, per case and weak map, whether λ, the
prior and the iterations agree, whether the restored maps are equal
(``np.array_equal``, else max |diff|) and, for every candidate both ran, the
largest change of the record's numbers; and the wall times.

Cases: ``skarn:SEED[:CROP]`` (:mod:`skarn` seed, the central CROP × CROP
pixels, default the whole 288²; Fe guides Ca and Si), ``hxn:SEED`` and
``grf:SEED`` (the pairs of :mod:`joint_reweight_smooth`: the real HXN Si map
under HXN Fe, a Gaussian random field under a grain guide), ``real`` (the five
real HXN maps in ``../shared/data/hxn_nanoparticles_xrf``, from the worktree's root, as
``benchmarks/hxn_joint.py`` restores them: Fe guide, σ from
:func:`xrfgpu.psf.estimate_sigma` on Fe, ``background="auto"``).

Run (old = main's code unpacked to /tmp/cv-main by ``git archive``)::

    git archive main xrfgpu kernels | tar -x -C /tmp/cv-main
    for case in skarn:0:160 hxn:0 hxn:1 hxn:2 grf:0 grf:1 real; do
        PYTHONPATH=/tmp/cv-main python benchmarks/joint_cv_skip.py run $case --out /tmp/cv/old
        PYTHONPATH=$PWD python benchmarks/joint_cv_skip.py run $case --out /tmp/cv/new
    done
    python benchmarks/joint_cv_skip.py compare /tmp/cv/old /tmp/cv/new
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import joint_cases  # noqa: E402


def _inputs(case):
    """(stack, psfs, keyword arguments of joint_richardson_lucy) of a case."""
    kind, *rest = case.split(":")
    if kind == "skarn":
        return joint_cases.skarn_crop(int(rest[0]), int(rest[1]) if len(rest) > 1 else None)
    if kind in ("hxn", "grf"):
        import joint_reweight_smooth as pairs

        seed = int(rest[0])
        guide_t, weak_t, sg, sw, bg, bw = pairs.scene(kind, seed)
        rng = np.random.default_rng(seed)
        yg, hg = pairs._scan(guide_t, sg, bg, rng)
        yw, hw = pairs._scan(weak_t, sw, bw, rng)
        return np.stack([yg, yw]), [hg, hw], {"guide": 0, "background": [bg, bw]}
    if kind == "real":
        return joint_cases.real_hxn()
    raise SystemExit(f"unknown case {case!r}")


def run(case, out, single_batch=False):
    import functools

    import xrfgpu
    from xrfgpu import joint as J

    stack, psfs, options = _inputs(case)
    spent = []
    original = J._cross_validate
    inner = functools.partial(original, skip_huber=False) if single_batch else J._cross_validate

    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        result = inner(*args, **kwargs)
        spent.append(time.perf_counter() - t0)
        return result

    J._cross_validate = timed
    t0 = time.perf_counter()
    restored, info = J.joint_richardson_lucy(stack, psfs, return_info=True, **options)
    seconds = time.perf_counter() - t0
    J._cross_validate = original
    out.mkdir(parents=True, exist_ok=True)
    name = case.replace(":", "_")
    np.savez(out / f"{name}.npz", restored=np.asarray(restored))
    maps = {}
    for i, rec in enumerate(info["per_map"]):
        if rec.get("role") == "guide":
            continue
        maps[str(i)] = {k: rec.get(k) for k in ("weight", "prior", "huber_delta", "iterations", "stop",
                                                 "cv_deviance", "huber_candidates")}
    report = {"case": case, "xrfgpu": xrfgpu.__file__, "seconds": seconds, "seconds_cv": sum(spent), "maps": maps}
    (out / f"{name}.json").write_text(json.dumps(report, indent=1))
    print(f"{case}: {seconds:.1f} s (cross-validation {sum(spent):.1f} s) with {xrfgpu.__file__}; "
          + "; ".join(f"map {i}: λ {m['weight']:g} {m['prior']} {m['iterations']} it"
                      + (f" ({m['huber_candidates']})" if m.get("huber_candidates") else "")
                      for i, m in maps.items()), flush=True)


def compare(old_dir, new_dir):
    for path in sorted(new_dir.glob("*.json")):
        other = old_dir / path.name
        if not other.exists():
            continue
        new, old = json.loads(path.read_text()), json.loads(other.read_text())
        with np.load(path.with_suffix(".npz")) as f, np.load(other.with_suffix(".npz")) as g:
            a, b = g["restored"], f["restored"]
        print(f"{new['case']}: old {old['seconds']:.1f} s (CV {old['seconds_cv']:.1f}), new {new['seconds']:.1f} s "
              f"(CV {new['seconds_cv']:.1f}); restored stacks equal: {np.array_equal(a, b)}"
              + ("" if np.array_equal(a, b) else f" (max |diff| {np.max(np.abs(a - b)):.3g})"))
        for i, m in new["maps"].items():
            o = old["maps"][i]
            same = all(o[k] == m[k] for k in ("weight", "prior", "iterations"))
            shared = [k for k in m["cv_deviance"] or {} if k in (o["cv_deviance"] or {})]
            moved = {field: max((abs(o["cv_deviance"][k][field] - m["cv_deviance"][k][field]) for k in shared),
                                default=0.0)
                     for field in ("deviance", "se", "late_deviance", "late_se", "iterations")}
            equal_map = np.array_equal(a[int(i)], b[int(i)])
            print(f"  map {i}: old λ {o['weight']:g} {o['prior']} {o['iterations']} it, new λ {m['weight']:g} "
                  f"{m['prior']} {m['iterations']} it -> {'same' if same else 'DIFFERENT'} choice; map "
                  f"{'equal' if equal_map else 'max |diff| %.3g' % np.max(np.abs(a[int(i)] - b[int(i)]))}; "
                  f"{len(shared)} of {len(o['cv_deviance'] or {})} candidates ran again; largest change "
                  + ", ".join(f"{k} {v:.3g}" for k, v in moved.items())
                  + (f"; {m['huber_candidates']}" if m.get("huber_candidates") else ""))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run")
    p.add_argument("case")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--single-batch", action="store_true",
                   help="this branch's code with every candidate in one batch (skip_huber=False), as before")
    p = sub.add_parser("compare")
    p.add_argument("old", type=Path)
    p.add_argument("new", type=Path)
    args = parser.parse_args(argv)
    if args.command == "run":
        run(args.case, args.out, single_batch=args.single_batch)
    else:
        compare(args.old, args.new)


if __name__ == "__main__":
    main()
