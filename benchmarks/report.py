"""Report table for a pytest-benchmark JSON file of the xrfgpu benchmarks.

    python benchmarks/report.py bench.json

Each benchmark carries ``extra_info["role"]`` (``xrfgpu``, ``skimage``,
``floor``, ...) and ``extra_info["iterations"]``; rows are grouped by the
benchmark group and ratios are taken within a group:
``vs floor`` = time / transform floor time (target ≤ 1.3 for RL),
``speed-up`` = competitor time / xrfgpu time (target ≥ 3 for RL vs scikit-image).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict


def format_report(rows) -> str:
    groups = defaultdict(list)
    for r in rows:
        groups[r.get("group") or ""].append(r)
    lines = [f"{'group':<22} {'case':<44} {'mean s':>9} {'s/iter':>9} {'vs floor':>9} {'speed-up':>9}  extra"]
    for group in sorted(groups):
        members = groups[group]
        by_role = {r.get("extra_info", {}).get("role"): r for r in members}
        floor = by_role.get("floor")
        for r in sorted(members, key=lambda r: r.get("name", "")):
            info = dict(r.get("extra_info", {}))
            mean = r["stats"]["mean"]
            iters = info.get("iterations") or 1
            per_iter = mean / iters
            vs_floor = ""
            if floor is not None and info.get("role") not in ("floor", None) and info.get("per_iteration_floor"):
                f = floor["stats"]["mean"] / (floor["extra_info"].get("iterations") or 1)
                vs_floor = f"{per_iter / f:.2f}"
            speed = ""
            ref = by_role.get(info.get("compare_to")) if info.get("compare_to") else None
            if ref is not None:
                speed = f"{ref['stats']['mean'] / mean:.2f}"
            extra = {k: v for k, v in info.items()
                     if k not in ("role", "iterations", "compare_to", "per_iteration_floor")}
            extra_s = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in extra.items())
            lines.append(f"{group:<22} {r.get('name', '')[:44]:<44} {mean:>9.4f} {per_iter:>9.4f} {vs_floor:>9} "
                         f"{speed:>9}  {extra_s}")
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__)
        return 2
    with open(argv[0]) as fh:
        data = json.load(fh)
    print(format_report(data["benchmarks"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
