"""What each stage of ``estimate_sigma`` would have said on every tuning map, and why the edge profiles did not decide.

    python benchmarks/sigma_stage_choice.py --set fresh-tuning-more|tuning-extended|tuning-more|tuning|fresh-tuning|third-tuning|arc-tuning
        [--records FILE.pkl] [--shard I/N]
    python benchmarks/sigma_stage_choice.py --from-records FILE.pkl [FILE.pkl ...]

``estimate_sigma`` has three stages (docs/psf_measurement.md, "4. From the map alone"): straight
edges, local edge profiles and the windowed power spectrum. Only one decides; this script
reads, for every map of a tuning set, what the other two would have said:

* the straight-edge consensus (σ, or – where at least three clean edges do not agree);
* the local edge profiles (``result.details["edge_profiles"]``; on maps decided by straight edges
  the stage did not run, so it is run here with the same σ₀ and noise): the combined σ, the
  number of profiles that pass the χ² test, their spread in ln σ, and the gate that kept them
  from deciding alone: ``too few`` (under 8 pass), ``spread`` (spread of ln σ above 0.1),
  ``outside`` (the median outside the whole map's spectral interval); ``shares`` where they
  spread by 0.1–0.3 inside the spectral interval and share the answer with the spectrum
  (``method == "whittle+edge-profiles"``, docs/psf_measurement.md, sixth round);
* the spectral σ and its interval.

It prints one line per map, then median / 90th percentile / worst |error| of each stage on the
maps where it answers, split by the stage that decided and by the profiles' gate. ``--records``
keeps every map's readings (the profile fits too) in a pickle, from which decision rules can be
replayed without refitting; ``--from-records`` prints the tables of one or more such pickles
(e.g. the shards of one set). Only tuning sets are offered: the held-out sets are measured by
``bench_sigma_generalisation.py`` and ``bench_fresh_held_out.py`` only, once.
"""

from __future__ import annotations

import argparse
import math
import pickle
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sigma_scenes  # noqa: E402
import sigma_scenes_fresh  # noqa: E402
import sigma_scenes_third  # noqa: E402
import sigma_tuning_arcs  # noqa: E402

SETS = {"tuning": (sigma_scenes, "TUNING"), "tuning-extended": (sigma_scenes, "TUNING_EXTENDED"),
        "tuning-more": (sigma_scenes, "TUNING_MORE"), "fresh-tuning": (sigma_scenes_fresh, "FRESH_TUNING"),
        "fresh-tuning-more": (sigma_scenes_fresh, "FRESH_TUNING_MORE"),
        "third-tuning": (sigma_scenes_third, "THIRD_TUNING"), "arc-tuning": (sigma_tuning_arcs, "ARC_TUNING")}


def _profile_gate(stage):
    """Why the edge profiles did or did not decide: 'decides', 'shares' (with the spectrum), 'too few', 'spread',
    'outside' (spectral interval), or 'spread+outside'."""
    if stage.get("decides"):
        return "decides"
    if stage.get("blends"):
        return "shares"
    if "sigma" not in stage:
        return "too few"
    reasons = [name for name, bad in (("spread", not stage["consistent"]), ("outside", not stage["inside_spectral"]))
               if bad]
    return "+".join(reasons) if reasons else "decides"


def record(case, scenes):
    """Every stage's reading on one map (a dict; the profile fits and straight-edge fits included)."""
    from xrfgpu.psf import estimate_sigma
    from xrfgpu.psf.blind_sigma import SigmaUncertainWarning, _edge_consensus, _edge_profile_stage
    from xrfgpu.psf.edge_profiles import profiles_on_thinned_halves

    counts, truth, label = scenes.make_case(case)
    c0 = time.process_time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SigmaUncertainWarning)
        est = estimate_sigma(counts)
    cpu = time.process_time() - c0
    d = est.details
    flagged = any(issubclass(w.category, SigmaUncertainWarning) for w in caught)
    edge_sigma, agreeing = _edge_consensus(d["edges"])
    stage = d.get("edge_profiles")
    if stage is None:  # straight edges decided; the profile stage did not run: run it as it would have
        fits = profiles_on_thinned_halves(counts, d["whittle_sigma"], d["noise"])
        stage = _edge_profile_stage(counts, d["whittle_sigma"], d["noise"], d["spectral_interval"], fits=fits)
        stage["fits"] = fits
    keep = ("whittle_sigma", "spectral_interval", "spectral_interval_with_submaps", "submap_sigmas",
            "scene_exponent", "spectral_sigmas", "profile_interval", "spectral_grid", "noise", "stripes")
    return dict(family=case[0], label=label, seed=case[1], size=case[2], counts=f"{case[4]:g}/{case[5]:g}",
                true_sigma=float(truth), sigma=float(est.sigma), method=est.method, interval=est.interval,
                reliable=bool(est.reliable), flagged=flagged, evidence=est.evidence, cpu_seconds=cpu,
                spectral={k: d[k] for k in keep if k in d}, edges=d["edges"],
                edge_consensus=edge_sigma, edges_agreeing=len(agreeing) if edge_sigma is not None else 0,
                edges_clean=len(agreeing) if edge_sigma is None else None,
                profiles=stage, profile_gate=_profile_gate(stage))


def _stats(errors):
    e = np.abs(np.asarray(errors, dtype=np.float64))
    e = e[np.isfinite(e)]
    if e.size == 0:
        return "–"
    return f"{100 * np.median(e):.1f} / {100 * np.quantile(e, 0.9):.1f} / {100 * e.max():.1f} %"


def _error(value, truth):
    return value / truth - 1.0 if value is not None and math.isfinite(value) else float("nan")


def tables(records):
    """The summary tables (Markdown) of a list of :func:`record` dicts."""
    out = ["Median / 90th pct / worst |error| of each stage's reading, on the maps where it gives one "
           "(n: maps; 'returned σ' is estimate_sigma's answer, 'covered' how often its interval holds the truth)", "",
           "| maps | n | returned σ | covered | straight edges (n) | edge profiles, ≥ 8 pass (n) | spectrum |",
           "|---|---|---|---|---|---|---|"]

    def line(name, subset):
        if not subset:
            return
        edge = [_error(r["edge_consensus"], r["true_sigma"]) for r in subset if r["edge_consensus"] is not None]
        prof = [_error(r["profiles"]["sigma"], r["true_sigma"]) for r in subset if "sigma" in r["profiles"]]
        spec = [_error(r["spectral"]["whittle_sigma"], r["true_sigma"]) for r in subset]
        covered = np.mean([r["interval"][0] <= r["true_sigma"] <= r["interval"][1] for r in subset])
        out.append(f"| {name} | {len(subset)} | {_stats([r['sigma'] / r['true_sigma'] - 1 for r in subset])} | "
                   f"{100 * covered:.0f} % | {_stats(edge)} ({len(edge)}) | {_stats(prof)} ({len(prof)}) | "
                   f"{_stats(spec)} |")

    line("all", records)
    line("not flagged", [r for r in records if not r["flagged"]])
    line("flagged uncertain", [r for r in records if r["flagged"]])
    for method in ("straight-edges", "edge-profiles", "whittle+edge-profiles", "whittle"):
        line(f"decided by {method}", [r for r in records if r["method"] == method])
    for gate in ("decides", "shares", "too few", "spread", "outside", "spread+outside"):
        line(f"profiles' gate: {gate}", [r for r in records if _profile_gate(r["profiles"]) == gate])
    families = sorted({r["family"] for r in records})
    for fam in families:
        line(f"family {fam}", [r for r in records if r["family"] == fam])
    out += ["", "Why the edge profiles did not decide alone, among the maps the spectrum decided or shared (count):",
            "", "| gate | maps | of which at 2000/100 counts |", "|---|---|---|"]
    spectral = [r for r in records if r["method"] in ("whittle", "whittle+edge-profiles")]
    for gate in ("shares", "too few", "spread", "outside", "spread+outside"):
        sub = [r for r in spectral if _profile_gate(r["profiles"]) == gate]
        out.append(f"| {gate} | {len(sub)} | {sum(r['counts'] == '2000/100' for r in sub)} |")
    cpu = np.array([r["cpu_seconds"] for r in records])
    big = np.array([r["cpu_seconds"] for r in records if r["size"] == 512] or [float("nan")])
    out += ["", f"CPU time of estimate_sigma per map: median {np.median(cpu):.2f} s, max {cpu.max():.2f} s; "
            f"512² maps median {np.median(big):.2f} s, max {np.max(big):.2f} s"]
    return "\n".join(out)


def map_line(r):
    p = r["profiles"]
    prof = (f"prof {p['sigma']:6.2f} ({_error(p['sigma'], r['true_sigma']):+.3f}) n {p['n']:3d} "
            f"spread {p['log_spread']:.3f}" if "sigma" in p else f"prof    –  n {p.get('n_fitted', 0):3d} fitted   ")
    edge = (f"edges {r['edge_consensus']:6.2f} ({_error(r['edge_consensus'], r['true_sigma']):+.3f})"
            if r["edge_consensus"] is not None else "edges    –           ")
    lo, hi = r["spectral"]["spectral_interval"]
    spec = r["spectral"]["whittle_sigma"]
    return (f"{r['label'][:24]:24s} {r['size']:4d}² σ={r['true_sigma']:5.2f} {r['counts']:>8s} "
            f"-> {r['sigma']:6.2f} ({r['sigma'] / r['true_sigma'] - 1:+.3f}) {r['method'][:6]:6s}"
            f"{' FLAG' if r['flagged'] else '     '} | {edge} | {prof} [{_profile_gate(p)}] | "
            f"spec {spec:6.2f} ({_error(spec, r['true_sigma']):+.3f}) [{lo:.2f}, {hi:.2f}]")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=tuple(SETS))
    parser.add_argument("--records", type=Path, help="keep every map's readings in this pickle")
    parser.add_argument("--shard", default="0/1", help="I/N: only every N-th map, from the I-th (0-based)")
    parser.add_argument("--from-records", type=Path, nargs="+", help="print the tables of these pickles")
    args = parser.parse_args(argv)
    if args.from_records:
        records = [r for path in args.from_records for r in pickle.loads(path.read_bytes())]
        for r in records:
            print(map_line(r))
        print(tables(records))
        return 0
    if args.set is None:
        parser.error("--set or --from-records is needed")
    module, name = SETS[args.set]
    index, count = (int(v) for v in args.shard.split("/"))
    cases = getattr(module, name)[index::count]
    records = []
    for case in cases:
        records.append(record(case, module))
        print(map_line(records[-1]), flush=True)
    print(tables(records))
    if args.records:
        from xrfgpu._atomic import atomic_write_bytes

        atomic_write_bytes(args.records, pickle.dumps(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
