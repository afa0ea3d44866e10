"""σ from the map on scenes nobody tuned it for: ``estimate_sigma`` on the frozen sets of :mod:`sigma_scenes`.

    python benchmarks/bench_sigma_generalisation.py [--set tuning|tuning-extended|tuning-more|held-out|held-out-second
        |held-out-third]
        [--csv FILE]
        [--thorough]

Prints one line per map (family, size, true σ, estimate, interval, whether
flagged, seconds) and the summary: median / 90th percentile / worst
|error|, share within ±10 % and ±25 %, interval coverage, flagged share,
and wall and CPU time per map (median / 90th / max; the CPU time of this
process is the fairer figure on a shared machine), over all maps and over the maps not
flagged as uncertain. ``--set held-out`` is the measurement; ``tuning`` is
what the estimator's constants were chosen on; ``tuning-extended`` adds 168 more tuning maps (other
seeds, and two tuning-only families: more photographs, thin filaments); ``tuning-more`` 192 further tuning
maps (seeds 24–47 of all eight families); ``held-out-second`` a second held-out draw of the six families
(seeds 600–623, 144 maps), frozen before it was scored; ``held-out-third`` a third (seeds 700–723), frozen
before the ninth session's round.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sigma_scenes  # noqa: E402


def run(cases, *, thorough=False, verbose=True, scenes=sigma_scenes):
    """One row per case of ``cases``, built by ``scenes.make_case`` (a scene module: this set's, or another
    with the same interface, e.g. ``sigma_scenes_fresh``)."""
    from xrfgpu.psf import estimate_sigma
    from xrfgpu.psf.blind_sigma import SigmaUncertainWarning

    rows = []
    for case in cases:
        counts, truth, label = scenes.make_case(case)
        t0, c0 = time.perf_counter(), time.process_time()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SigmaUncertainWarning)
            est = estimate_sigma(counts, thorough=thorough)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        flagged = any(issubclass(w.category, SigmaUncertainWarning) for w in caught)
        lo, hi = est.interval
        row = dict(family=case[0], label=label, seed=case[1], size=case[2], counts=f"{case[4]:g}/{case[5]:g}",
                   true_sigma=truth, sigma=est.sigma, error=est.sigma / truth - 1.0, lo=lo, hi=hi,
                   covered=lo <= truth <= hi, flagged=flagged, method=est.method, seconds=seconds, cpu_seconds=cpu)
        rows.append(row)
        if verbose:
            print(f"{label:18s} {case[2]:4d}² σ={truth:5.2f} est {est.sigma:6.2f} ({row['error']:+.3f}) "
                  f"[{lo:.2f}, {hi:.2f}] {'FLAG ' if flagged else ''}{est.method} {seconds:.2f} s (CPU {cpu:.2f} s)",
                  flush=True)
    return rows


def summary(rows, *, scenes=sigma_scenes):
    def line(name, subset):
        if not subset:
            return f"| {name} | 0 maps | | | | | | | |"
        err = np.abs([r["error"] for r in subset])
        sec = np.array([r["seconds"] for r in subset])
        cpu = np.array([r["cpu_seconds"] for r in subset])
        cover = np.mean([r["covered"] for r in subset])
        return (f"| {name} | {len(subset)} | {100 * np.median(err):.1f} % | {100 * np.quantile(err, 0.9):.1f} % | "
                f"{100 * err.max():.1f} % | {100 * np.mean(err <= 0.10):.0f} % / {100 * np.mean(err <= 0.25):.0f} % | "
                f"{100 * cover:.0f} % | {np.median(sec):.2f} / {np.quantile(sec, 0.9):.2f} / {sec.max():.2f} s | "
                f"{np.median(cpu):.2f} / {np.quantile(cpu, 0.9):.2f} / {cpu.max():.2f} s |")

    out = ["| maps | n | median \\|error\\| | 90th pct | worst | within ±10 % / ±25 % | interval covers truth "
           "| wall time per map (median / 90th / max) | CPU time per map |",
           "|---|---|---|---|---|---|---|---|---|",
           line("all", rows),
           line("not flagged", [r for r in rows if not r["flagged"]]),
           line("flagged uncertain", [r for r in rows if r["flagged"]])]
    for fam in scenes.FAMILIES + scenes.TUNING_FAMILIES:
        if not any(r["family"] == fam for r in rows):
            continue
        out.append(line(f"family {fam}", [r for r in rows if r["family"] == fam]))
    for size in scenes.SIZES:
        out.append(line(f"{size}² maps", [r for r in rows if r["size"] == size]))
    for method in ("straight-edges", "edge-profiles", "whittle+edge-profiles", "whittle", "mosaic-scene",
                   "elliptical-edge-profiles", "elliptical-spectrum"):
        if any(r["method"] == method for r in rows):
            out.append(line(f"decided by {method}", [r for r in rows if r["method"] == method]))
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=("tuning", "tuning-extended", "tuning-more", "held-out", "held-out-second",
                                          "held-out-third"),
                        default="held-out")
    parser.add_argument("--csv", type=Path)
    parser.add_argument("--thorough", action="store_true", help="estimate_sigma(thorough=True): the mosaic fits")
    args = parser.parse_args(argv)
    cases = {"tuning": sigma_scenes.TUNING, "tuning-extended": sigma_scenes.TUNING_EXTENDED,
             "tuning-more": sigma_scenes.TUNING_MORE,
             "held-out": sigma_scenes.HELD_OUT, "held-out-second": sigma_scenes.HELD_OUT_SECOND,
             "held-out-third": sigma_scenes.HELD_OUT_THIRD}[args.set]
    rows = run(cases, thorough=args.thorough)
    print(summary(rows))
    if args.csv:
        write_rows_csv(args.csv, rows)
    return 0


def write_rows_csv(path, rows):
    """The per-map rows as a CSV file (columns: the first row's keys), written atomically."""
    from xrfgpu._atomic import atomic_write_text

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


if __name__ == "__main__":
    sys.exit(main())
