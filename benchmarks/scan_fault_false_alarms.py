"""False alarms of the scan-fault checks on the frozen scene sets: each scene as built and in realistic variants.

    python benchmarks/scan_fault_false_alarms.py [SET ...]

:func:`xrfgpu.lost_lines.find_lost_lines` (lost scan lines stored as 0) and
:func:`xrfgpu.row_offset.alternate_row_offset` (every other line offset along the scan) are run on every
scene of the σ benchmark's frozen sets (tuning and held-out alike: none of these maps has the fault, so every
hit is a false alarm) as built, and as variants a real map could be: Poisson counts without background (at the
case's signal, and at 5 counts), the counts clipped at the background and 1.2 × it, the noise-free blurred
scene clipped and rounded, and the unblurred truth; then the gain benchmark's maps and integer maps (whose
"dead" variant sets one column to 0 on purpose: found, as it should be). Prints each hit and the counts per
variant (maps checked, maps flagged). Optional arguments: set names to run (e.g. ``HELD_OUT gain``).
"""
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gain_scenes  # noqa: E402
import sigma_scenes  # noqa: E402
import sigma_scenes_fourth  # noqa: E402
import sigma_scenes_fresh  # noqa: E402
import sigma_scenes_third  # noqa: E402

from xrfgpu.lost_lines import find_lost_lines  # noqa: E402
from xrfgpu.row_offset import alternate_row_offset  # noqa: E402

#: the frozen σ scene sets, tuning and held-out alike
SETS = ([(sigma_scenes, name) for name in ("TUNING", "HELD_OUT", "TUNING_EXTENDED", "TUNING_MORE",
                                           "HELD_OUT_SECOND", "HELD_OUT_THIRD")]
        + [(sigma_scenes_fresh, name) for name in ("FRESH_TUNING", "FRESH_HELD_OUT", "FRESH_TUNING_MORE")]
        + [(sigma_scenes_third, name) for name in ("THIRD_TUNING", "THIRD_HELD_OUT")]
        + [(sigma_scenes_fourth, name) for name in ("FOURTH_TUNING", "FOURTH_HELD_OUT")])


def _check(counts, kind, label, image):
    """Run both checks on one map; count it, and print each hit."""
    tally = counts.setdefault(kind, [0, 0, 0])
    tally[0] += 1
    lost = find_lost_lines(image, xp=np)
    if lost:
        tally[1] += 1
        print(f"LOST LINES [{kind}] {label} {image.shape}: {lost.words()}", flush=True)
    offset = alternate_row_offset(image)
    if offset is not None:
        tally[2] += 1
        print(f"LINE OFFSET [{kind}] {label} {image.shape}: {offset.record()}", flush=True)


def _variants(module, case):
    """The scene as built and the variants a real map could be (see the module's docstring)."""
    _, seed, size, sigma, signal, background = case
    scene, margin, _, _ = module.scene_canvas(case)
    window = (slice(margin, margin + size), slice(margin, margin + size))
    blurred = np.clip(sigma_scenes._blur(scene, sigma)[window], 0, None)
    rng = np.random.default_rng(seed)
    built = module.make_case(case)[0]
    return {"as built": built,
            "bkg 0 counts": rng.poisson(signal * blurred).astype(float),
            "bkg 0, 5 counts": rng.poisson(5 * blurred).astype(float),
            "clip(counts-bkg)": np.clip(built - background, 0, None),
            "clip(counts-1.2bkg)": np.clip(built - 1.2 * background, 0, None),
            "noise-free clip": signal * blurred,
            "noise-free rounded": np.round(signal * blurred),
            "scene (truth)": scene[window]}


def main(argv=None):
    warnings.simplefilter("ignore")
    only = sys.argv[1:] if argv is None else argv
    counts, seen, start = {}, set(), time.time()
    for module, set_name in SETS:
        if only and set_name not in only:
            continue
        for case in getattr(module, set_name):
            if (module.__name__, case) in seen:
                continue
            seen.add((module.__name__, case))
            for kind, image in _variants(module, case).items():
                _check(counts, kind, f"{module.__name__}.{set_name} {case}", image)
        print(f"-- {set_name} done {time.time() - start:.0f}s {counts}", flush=True)
    if not only or "gain" in only:  # the gain benchmark's maps (background 0 among them) and integer maps
        for set_name, seeds in gain_scenes.SETS.items():
            for case in gain_scenes.cases(seeds):
                image, _, label = gain_scenes.make(case)
                _check(counts, "gain_scenes make", f"gain {set_name} {case} {label}", image)
                for name, variant, integer_map in gain_scenes.integer_maps(case):
                    _check(counts, f"gain_scenes int {variant}", f"gain {set_name} {case} {name}", integer_map)
            print(f"-- gain {set_name} done {time.time() - start:.0f}s {counts}", flush=True)
    print("TOTAL (maps, lost lines found, line offsets found):", counts)


if __name__ == "__main__":
    main()
