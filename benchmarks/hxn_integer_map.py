"""The real HXN Fe map stored as integers: detected as scaled integers, restored as the float map is.

    python benchmarks/hxn_integer_map.py

The HXN Fe K map (``tests/data/hxn_nanoparticles_xrf``, MIT, "Copyright (c) 2022 stetef", data
courtesy of A. Pattamattel and Y. Chu, NSLS-II HXN) holds fitted values (0.0003–19.02). Two integer
versions, as a program that stores fitted maps as integers would write them:

* µg/cm² × 1000 as uint16 (``round(fe · 1000)``, largest 19020 ≤ 65535);
* ``round(fe · 10⁵)`` as uint32 (largest 1.9·10⁶).

For each: the kind and gain :func:`xrfgpu.map_kind.classify_map` gives, against the float map's
measured gain × the scale; then ``xrfgpu.restore`` of the integer map (default goal, everything
estimated) against ``restore`` of the float map × the scale: the iteration counts and the largest
and median relative difference of the restorations (over pixels above 1 % of the float result's
maximum). Then the map in counts (``round(fe / gain)``, up to 3·10⁵), whole and windows, which must
stay counts; the counts × 20 restored as counts (``gain=1``, what every integer map got before) and as
detected; and the time of :func:`classify_map` on a 1024² Poisson count map (median of 7 calls).
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np

FE = Path(__file__).resolve().parent.parent / "tests" / "data" / "hxn_nanoparticles_xrf" / "SUM_maps_XRF_Fe_K.tiff"


def main():
    import tifffile

    import xrfgpu
    from xrfgpu.background import estimate_gain
    from xrfgpu.map_kind import classify_map

    fe = tifffile.imread(FE).astype(np.float64)
    float_gain = float(estimate_gain(fe))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the σ estimate's uncertainty warning (README, "Real fitted maps")
        ref, ref_info = xrfgpu.restore(fe, return_info=True)
    print(f"float map: gain {float_gain:.4g}, {ref_info['iterations']} iterations, σ {ref_info['sigma']:.3f} px")
    for scale, dtype in ((1e3, np.uint16), (1e5, np.uint32)):
        stored = np.round(fe * scale)
        assert stored.max() <= np.iinfo(dtype).max
        stored = stored.astype(dtype)
        kind = classify_map(stored)
        line = f"×{scale:g} as {np.dtype(dtype).name}: {kind.kind}"
        if kind.is_counts:
            print(f"{line} ({kind.evidence}); gain × scale would be {float_gain * scale:.4g}")
            continue
        print(f"{line}, gain {kind.gain:.4g} against float gain × scale {float_gain * scale:.4g} "
              f"(ratio {kind.gain / (float_gain * scale):.4f})")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out, info = xrfgpu.restore(stored, return_info=True)
        expected = np.asarray(ref) * scale
        bright = expected > 0.01 * expected.max()
        rel = np.abs(np.asarray(out)[bright] - expected[bright]) / expected[bright]
        print(f"  restore: {info['iterations']} iterations (float map {ref_info['iterations']}), "
              f"σ {info['sigma']:.3f} px; |restored − float result × scale| / (float result × scale): median {np.median(rel):.4f}, "
              f"99th pct {np.quantile(rel, 0.99):.4f}, largest {rel.max():.4f}; record map_kind: {info['map_kind']}")
    # the same map in counts (map / gain, rounded; up to 3·10⁵): the whole map and windows inside it, the
    # high-count texture whose variance / mean reads far above 1, all of which must stay counts
    as_counts = np.round(fe / float_gain)
    for (r, c, side) in ((0, 0, 160), (0, 0, 96), (64, 64, 96), (64, 64, 64), (32, 32, 64)):
        kind = classify_map(as_counts[r : r + side, c : c + side])
        print(f"Fe in counts, {side}² at ({r}, {c}): {kind.kind}, variance/mean {kind.measured_gain:.3g} "
              f"over {kind.blocks} blocks")
    # the fault this rule fixes: the counts × 20, restored as counts (gain=1 forced, what every integer map
    # got before) and as scaled integers (detected), against 20 × the restoration of the counts themselves
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base, base_info = xrfgpu.restore(as_counts, sigma=0.45, return_info=True)
        for label, gain in (("taken for counts (gain=1)", 1), ("detected", None)):
            out, info = xrfgpu.restore(20.0 * as_counts, sigma=0.45, gain=gain, return_info=True)
            err = np.linalg.norm(np.asarray(out) - 20.0 * np.asarray(base)) / np.linalg.norm(20.0 * np.asarray(base))
            print(f"Fe in counts × 20, {label}: {info['iterations']} iterations (the counts: "
                  f"{base_info['iterations']}), relative L2 distance to 20 × the counts' restoration {err:.4f}")
    counts = np.random.default_rng(0).poisson(100.0, (1024, 1024))
    classify_map(counts)  # warm-up
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        classify_map(counts)
        times.append(time.perf_counter() - t0)
    print(f"classify_map on a 1024² Poisson count map: {1e3 * np.median(times):.0f} ms (median of 7)")


if __name__ == "__main__":
    main()
