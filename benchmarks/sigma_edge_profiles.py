"""The edge-profile stage of ``estimate_sigma`` on its own, on the frozen sets of :mod:`sigma_scenes`.

    python benchmarks/sigma_edge_profiles.py [--set tuning|tuning-extended|tuning-more] [--csv FILE]

For every map: the stage's combined σ (median of the accepted local edge profiles,
:mod:`xrfgpu.psf.edge_profiles`, with the spectral σ as σ₀), the number of profiles and
their robust spread in ln σ, whether the stage decided in ``estimate_sigma``, and the
spectral σ of the same map. Prints one line per map, then median / 90th percentile / worst
|error| and the median signed error of the stage alone (maps with at least 8 profiles),
by family, σ, size and counts, beside the spectral σ on the same maps. This is how the
stage's biases (smooth fields high, thin lines and σ = 12 px low) were found; the held-out
set is not offered (it is measured by ``bench_sigma_generalisation.py`` only).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sigma_scenes  # noqa: E402
from bench_sigma_generalisation import write_rows_csv  # noqa: E402


def run(cases, *, verbose=True):
    from xrfgpu.psf import estimate_sigma
    from xrfgpu.psf.blind_sigma import _edge_profile_stage

    rows = []
    for case in cases:
        counts, truth, label = sigma_scenes.make_case(case)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = estimate_sigma(counts)
        d = est.details
        stage = d.get("edge_profiles")
        if stage is None:  # straight edges decided: the stage did not run there
            stage = _edge_profile_stage(counts, d["whittle_sigma"], d["noise"], d["spectral_interval"])
        sigma = stage.get("sigma", float("nan"))
        row = dict(family=case[0], label=label, seed=case[1], size=case[2], sigma_applied=case[3],
                   counts=f"{case[4]:g}/{case[5]:g}", true_sigma=truth, profiles=stage.get("n", 0),
                   log_spread=stage.get("log_spread", float("nan")), profile_sigma=sigma,
                   profile_error=sigma / truth - 1.0, decided=est.method == "edge-profiles",
                   spectral_error=d["whittle_sigma"] / truth - 1.0, method=est.method)
        rows.append(row)
        if verbose:
            print(f"{label:26s} {case[2]:4d}² σ={truth:5.2f} profiles {row['profiles']:3d} "
                  f"spread {row['log_spread']:.3f} error {row['profile_error']:+.3f} "
                  f"(spectrum {row['spectral_error']:+.3f}) {est.method}", flush=True)
    return rows


def summary(rows):
    def line(name, subset):
        if not subset:
            return f"{name}: 0 maps"
        p = np.array([r["profile_error"] for r in subset])
        s = np.array([r["spectral_error"] for r in subset])
        return (f"{name}: {len(subset)} maps | profiles {100 * np.median(np.abs(p)):.1f} / "
                f"{100 * np.quantile(np.abs(p), 0.9):.1f} / {100 * np.abs(p).max():.1f} %, signed median "
                f"{100 * np.median(p):+.1f} % | spectrum {100 * np.median(np.abs(s)):.1f} / "
                f"{100 * np.quantile(np.abs(s), 0.9):.1f} / {100 * np.abs(s).max():.1f} %")

    usable = [r for r in rows if r["profiles"] >= 8]
    out = [line("maps with 8+ profiles", usable),
           line("decided by the profiles", [r for r in rows if r["decided"]])]
    for key, values in (("family", sigma_scenes.FAMILIES + sigma_scenes.TUNING_FAMILIES),
                        ("sigma_applied", sigma_scenes.SIGMAS), ("size", sigma_scenes.SIZES),
                        ("counts", [f"{a:g}/{b:g}" for a, b in sigma_scenes.COUNTS])):
        for v in values:
            subset = [r for r in usable if r[key] == v]
            if subset:
                out.append(line(f"  {key} {v}", subset))
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=("tuning", "tuning-extended", "tuning-more"), default="tuning")
    parser.add_argument("--csv", type=Path)
    args = parser.parse_args(argv)
    cases = {"tuning": sigma_scenes.TUNING, "tuning-extended": sigma_scenes.TUNING_EXTENDED,
             "tuning-more": sigma_scenes.TUNING_MORE}[args.set]
    rows = run(cases)
    print(summary(rows))
    if args.csv:
        write_rows_csv(args.csv, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
