"""Extra tuning maps of the third set's families, for the straight-edge stage of ``estimate_sigma`` (issue 14,
seventh round).

On the third held-out set the straight-edge stage read long smooth arcs (growth bands, ooids, spherulites) and
soft scene edges (diffusion halos, corrosion) as blur. Those held-out maps may not be used to fix it, so this
module draws more maps of the same families, from the frozen generators of :mod:`sigma_scenes_third` (not
edited, not copied: its :func:`~sigma_scenes_third.make_case` and its case drawing, with other seeds):

* :data:`ARC_TUNING` — one case per family and seed for seeds 510–529 of all eight families (160 maps). The
  third module uses seeds 400–411 (held out), 500–501 (:data:`sigma_scenes_third.THIRD_TUNING`) and 600–639
  (built for numbers only while its generators were written), never 510–529.

These are tuning maps: constants may be set on them. Each case is ``(family, seed, size, sigma, signal,
background)``; :func:`make_case` builds it.

    python benchmarks/sigma_tuning_arcs.py      # build only: shapes and min / max counts
    python benchmarks/sigma_stage_choice.py --set arc-tuning       # what each σ stage says on every map
    python benchmarks/bench_fresh_held_out.py --set arc-tuning     # σ and the front door
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sigma_scenes  # noqa: E402
import sigma_scenes_third  # noqa: E402

# the third set's protocol, re-exported (the frozen module's functions, not copies)
make_case = sigma_scenes_third.make_case
scene_canvas = sigma_scenes_third.scene_canvas
SIZES = sigma_scenes_third.SIZES
FAMILIES = sigma_scenes_third.FAMILIES
TUNING_FAMILIES = sigma_scenes_third.TUNING_FAMILIES
#: the families where the straight-edge stage failed on the third held-out set (arcs, soft edges)
ARC_FAMILIES = ("growth_bands", "corrosion", "spherulites", "ooids", "diffusion_halos", "paint")
ARC_SEEDS = range(510, 530)
ARC_TUNING = sigma_scenes_third._draw_cases(ARC_SEEDS)


def main(argv=None):
    """Build every map of :data:`ARC_TUNING` and print its shape and smallest / largest count
    (:func:`sigma_scenes.print_built`)."""
    sigma_scenes.print_built(ARC_TUNING, make_case)
    return 0


if __name__ == "__main__":
    sys.exit(main())
