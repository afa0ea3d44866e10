"""σ from the map and the front door on the fresh held-out set of :mod:`sigma_scenes_fresh` (issue 14), scored once,
and on the third and fourth held-out sets of :mod:`sigma_scenes_third` and :mod:`sigma_scenes_fourth`.

    python benchmarks/bench_fresh_held_out.py [--set fresh-held-out|fresh-tuning|fresh-tuning-more|third-held-out|
        third-tuning|fourth-held-out|fourth-tuning|arc-tuning] [--csv FILE] [--summary FILE] [--front-door-max-size N]
    python benchmarks/bench_fresh_held_out.py --set fresh-tuning|third-tuning|fourth-tuning --mosaic FILE.png

Two measurements on every map of the set:

* ``estimate_sigma(counts)``: the rows and the summary table of
  :mod:`bench_sigma_generalisation` (imported, not copied): median / 90th
  percentile / worst |error|, share within ±10 % and ±25 %, interval
  coverage, wall and CPU time, over all maps, the maps not flagged uncertain,
  the flagged ones, per family, per size and per deciding stage;
* the front door, ``xrfgpu.restore(counts)`` with its default goal: MSE to the
  unblurred scene (counts above background) against the raw map's MSE (raw
  minus the true background), as the ratio restored / raw, compared as
  :mod:`goal_scenes` compares: the restoration is above its own automatic
  background, so ``restored + info["background"] − true background`` is
  what is compared with the scene. Median / 90th percentile / worst ratio,
  how many maps end worse than raw, wall and CPU time per map by size.

``--set fresh-held-out`` is the measurement (96 maps; frozen in the commit
"freeze: ..." before it was ever scored); ``fresh-tuning`` (16 maps) is the
only set looked at while writing the generators. ``third-held-out`` and
``third-tuning`` are the same for :mod:`sigma_scenes_third` (96 and 16 maps;
the held-out maps frozen before any was scored, for measuring old and new
code once each), and ``fourth-held-out`` and ``fourth-tuning`` for
:mod:`sigma_scenes_fourth` (96 and 16 maps, frozen the same way). ``--csv`` writes one row
per map (both measurements), ``--summary`` the tables as Markdown with the
command at the top; both atomically. ``--mosaic`` only draws the set's scenes
(unblurred, above) and maps (below) into a PNG, and scores nothing.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_sigma_generalisation  # noqa: E402
import sigma_scenes_fresh  # noqa: E402
import sigma_scenes_fourth  # noqa: E402
import sigma_scenes_third  # noqa: E402
import sigma_tuning_arcs  # noqa: E402

# each set: its scene module and the name of its case list there
SETS = {"fresh-held-out": (sigma_scenes_fresh, "FRESH_HELD_OUT"), "fresh-tuning": (sigma_scenes_fresh, "FRESH_TUNING"),
        "fresh-tuning-more": (sigma_scenes_fresh, "FRESH_TUNING_MORE"),
        "third-held-out": (sigma_scenes_third, "THIRD_HELD_OUT"), "third-tuning": (sigma_scenes_third, "THIRD_TUNING"),
        "fourth-held-out": (sigma_scenes_fourth, "FOURTH_HELD_OUT"),
        "fourth-tuning": (sigma_scenes_fourth, "FOURTH_TUNING"),
        "arc-tuning": (sigma_tuning_arcs, "ARC_TUNING")}
TITLES = {"fresh-held-out": "Fresh held-out set (issue 14), scored once", "fresh-tuning": "Fresh tuning set (issue 14)",
          "fresh-tuning-more": "Fresh tuning set (issue 14)", "third-held-out": "Third held-out set (issue 14)",
          "third-tuning": "Third tuning set (issue 14)", "fourth-held-out": "Fourth held-out set (issue 14)",
          "fourth-tuning": "Fourth tuning set (issue 14)",
          "arc-tuning": "Tuning maps of the third set's families, seeds 510-529 (issue 14, seventh round)"}


def _crash_row(case, label, stage, exc):
    family, seed, size, sigma, signal, background = case
    return dict(family=family, label=label, seed=seed, size=size, counts=f"{signal:g}/{background:g}",
                true_sigma=float(sigma), stage=stage, raised=f"{type(exc).__name__}: {exc}")


def run_sigma(cases, *, scenes=sigma_scenes_fresh):
    """:func:`bench_sigma_generalisation.run` map by map: (rows, crashes), a map whose ``estimate_sigma`` raises
    being recorded as a crash (a failure, reported apart) instead of ending the run; ``scenes`` is the scene
    module that builds the cases."""
    rows, crashes = [], []
    for case in cases:
        try:
            rows += bench_sigma_generalisation.run([case], scenes=scenes)
        except Exception as exc:
            label = scenes.scene_canvas(case)[2]
            crashes.append(_crash_row(case, label, "estimate_sigma", exc))
            print(f"{label:18s} {case[2]:4d}² σ={case[3]:5.2f} estimate_sigma RAISED {crashes[-1]['raised']}",
                  flush=True)
    return rows, crashes


def crash_table(crashes, n_maps):
    """Markdown: the maps on which a stage raised instead of answering (a failure, counted apart)."""
    if not crashes:
        return f"No map of the {n_maps} raised."
    out = [f"{len(crashes)} of {n_maps} maps raised instead of answering (failures; the tables above leave them out):",
           "", "| map | size | true σ | counts | stage | raised |", "|---|---|---|---|---|---|"]
    out += [f"| {c['label']} seed {c['seed']} | {c['size']}² | {c['true_sigma']:g} | {c['counts']} | {c['stage']} | "
            f"{c['raised']} |" for c in crashes]
    return "\n".join(out)


def run_front_door(cases, *, verbose=True, scenes=sigma_scenes_fresh):
    """(rows, crashes): one row per case (built by the scene module ``scenes``), the default-goal restoration's
    MSE to the scene against the raw map's; a map on which ``restore`` raises is a crash (a failure, reported
    apart)."""
    import xrfgpu
    from xrfgpu.stopping import _LAST_SPLIT

    rows, crashes = [], []
    for case in cases:
        family, seed, size, sigma, signal, background = case
        counts, truth_sigma, label, scene = scenes.make_case(case, return_scene=True)
        raw_mse = float(np.mean((counts - background - scene) ** 2))
        _LAST_SPLIT.clear()  # the σ estimate of this map drew the split just before: the front door draws its own
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                restored, info = xrfgpu.restore(counts, return_info=True)
        except Exception as exc:  # a failure of the front door on this map: recorded, the others still run
            crashes.append(_crash_row(case, label, "restore", exc))
            print(f"{label:22s} {size:4d}² σ={truth_sigma:5.2f} restore RAISED {crashes[-1]['raised']}", flush=True)
            continue
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        restored = np.asarray(restored, dtype=np.float64)
        mse = float(np.mean((restored + info["background"] - background - scene) ** 2))
        row = dict(family=family, label=label, seed=seed, size=size, counts=f"{signal:g}/{background:g}",
                   true_sigma=truth_sigma, goal=info["goal"], restore_sigma=info["sigma"],
                   restore_sigma_reliable=info.get("sigma_reliable"), restore_iterations=info["iterations"],
                   restore_background=info["background"], raw_mse=raw_mse, restored_mse=mse,
                   mse_ratio=mse / raw_mse, restore_warnings=len(caught), restore_seconds=seconds,
                   restore_cpu_seconds=cpu)
        rows.append(row)
        if verbose:
            print(f"{label:22s} {size:4d}² σ={truth_sigma:5.2f} {signal:g}/{background:g} restore σ={info['sigma']:.2f} "
                  f"k={info['iterations']} MSE {mse:10.1f} raw {raw_mse:10.1f} ratio {mse / raw_mse:.3f} "
                  f"{seconds:.2f} s (CPU {cpu:.2f} s)", flush=True)
    return rows, crashes


def front_door_summary(rows, *, scenes=sigma_scenes_fresh):
    """Markdown tables: MSE ratio restored / raw and time per map, over all maps, per size and per family of the
    scene module ``scenes``."""
    def line(name, subset):
        if not subset:
            return f"| {name} | 0 | | | | | | |"
        ratio = np.array([r["mse_ratio"] for r in subset])
        sec = np.array([r["restore_seconds"] for r in subset])
        cpu = np.array([r["restore_cpu_seconds"] for r in subset])
        return (f"| {name} | {len(subset)} | {np.median(ratio):.3f} | {np.quantile(ratio, 0.9):.3f} | "
                f"{ratio.max():.3f} | {int(np.sum(ratio >= 1.0))} | {np.median(sec):.2f} / {sec.max():.2f} s | "
                f"{np.median(cpu):.2f} / {cpu.max():.2f} s |")

    out = ["| maps | n | MSE restored / raw: median | 90th pct | worst | maps worse than raw (ratio ≥ 1) "
           "| wall time per map (median / max) | CPU time per map (median / max) |",
           "|---|---|---|---|---|---|---|---|",
           line("all", rows),
           line("σ reliable", [r for r in rows if r["restore_sigma_reliable"]]),
           line("σ flagged uncertain", [r for r in rows if not r["restore_sigma_reliable"]])]
    for size in scenes.SIZES:
        out.append(line(f"{size}² maps", [r for r in rows if r["size"] == size]))
    for family in scenes.FAMILIES:
        out.append(line(f"family {family}", [r for r in rows if r["family"] == family]))
    worse = [r for r in rows if r["mse_ratio"] >= 1.0]
    if worse:
        out += ["", "Maps the front door left worse than raw:", "",
                "| map | size | true σ | counts | σ used | iterations | ratio |", "|---|---|---|---|---|---|---|"]
        out += [f"| {r['label']} seed {r['seed']} | {r['size']}² | {r['true_sigma']:g} | {r['counts']} | "
                f"{r['restore_sigma']:.2f} | {r['restore_iterations']} | {r['mse_ratio']:.3f} |" for r in worse]
    return "\n".join(out)


def save_mosaic(cases, path, *, scenes=sigma_scenes_fresh):
    """A PNG of each case's unblurred scene (upper row) and its counts map (lower row), 8 cases a row pair, built
    by the scene module ``scenes``."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from xrfgpu._atomic import atomic_write_bytes

    per_row = 8
    pairs = -(-len(cases) // per_row)
    fig, axes = plt.subplots(2 * pairs, per_row, figsize=(3 * per_row, 3.1 * 2 * pairs), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, case in enumerate(cases):
        counts, truth_sigma, label, scene = scenes.make_case(case, return_scene=True)
        top, bottom = axes[2 * (i // per_row), i % per_row], axes[2 * (i // per_row) + 1, i % per_row]
        top.imshow(scene, cmap="gray")
        top.set_title(f"{label} seed {case[1]}, {case[2]}², scene", fontsize=11)
        bottom.imshow(counts, cmap="gray")
        bottom.set_title(f"map: σ = {truth_sigma:g} px, counts {case[4]:g}/{case[5]:g}", fontsize=11)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=40)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=tuple(SETS), default="fresh-held-out")
    parser.add_argument("--csv", type=Path, help="per-map rows (σ and front door)")
    parser.add_argument("--summary", type=Path, help="the summary tables, Markdown")
    parser.add_argument("--front-door-max-size", type=int, default=None,
                        help="restore only maps up to this side (px); default all")
    parser.add_argument("--mosaic", type=Path, help="draw the set's scenes and maps into this PNG and stop")
    args = parser.parse_args(argv)
    scenes, name = SETS[args.set]
    cases = getattr(scenes, name)
    if args.mosaic:
        save_mosaic(cases, args.mosaic, scenes=scenes)
        return 0
    command = "python benchmarks/bench_fresh_held_out.py " + " ".join(sys.argv[1:] if argv is None else argv)

    t0 = time.perf_counter()
    sigma_rows, sigma_crashes = run_sigma(cases, scenes=scenes)
    sigma_table = (bench_sigma_generalisation.summary(sigma_rows, scenes=scenes) + "\n\n"
                   + crash_table(sigma_crashes, len(cases)))
    print(sigma_table, flush=True)
    door_cases = [c for c in cases if args.front_door_max_size is None or c[2] <= args.front_door_max_size]
    door_rows, door_crashes = run_front_door(door_cases, scenes=scenes)
    door_table = front_door_summary(door_rows, scenes=scenes) + "\n\n" + crash_table(door_crashes, len(door_cases))
    print(door_table, flush=True)
    total = time.perf_counter() - t0

    if args.csv:
        # one row per map: its σ row (or crash), its front-door row (or crash); absent fields left empty
        merged = {}
        for stage, rows in (("sigma", sigma_rows + sigma_crashes), ("restore", door_rows + door_crashes)):
            for r in rows:
                row = merged.setdefault((r["family"], r["seed"]), {})
                r = dict(r)
                if "raised" in r:
                    r[f"{stage}_raised"] = r.pop("raised")
                    r.pop("stage")
                row.update({k: v for k, v in r.items() if k not in row})
        fields = []
        for row in merged.values():
            fields += [k for k in row if k not in fields]
        ordered = [merged[(c[0], c[1])] for c in cases if (c[0], c[1]) in merged]
        bench_sigma_generalisation.write_rows_csv(args.csv, [{k: row.get(k, "") for k in fields} for row in ordered])
    if args.summary:
        import xrfgpu
        from xrfgpu._atomic import atomic_write_text

        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).resolve().parent).stdout.strip() or "unknown"
        text = [f"# {TITLES[args.set]}: {len(cases)} maps", "", "```", command, "```", "",
                f"Code at commit {commit}; xrfgpu {xrfgpu.__version__}, NumPy {np.__version__}, Python {platform.python_version()}; "
                f"whole run {total / 60:.1f} min on a machine shared with other jobs (wall times are noisy; the "
                "CPU times of this process are the fairer figure).", "",
                "## estimate_sigma(counts)", "", sigma_table, "",
                "## xrfgpu.restore(counts), default goal: MSE to the truth against the raw map's", "", door_table, ""]
        atomic_write_text(args.summary, "\n".join(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
