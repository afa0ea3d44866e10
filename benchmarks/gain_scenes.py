"""How well the effective Poisson gain is measured from a map: known-gain scenes and crops of real maps.

:func:`xrfgpu.background.estimate_gain` turns a fitted map (µg/cm², normalised
counts) into effective counts for the front door and the joint restoration; a
wrong gain changes the cross-validated stop, the σ estimate's noise model and
the joint weight. Two measurements:

* **Known gain.** Scenes of the σ benchmark's eight families
  (:mod:`sigma_scenes`: Voronoi, scikit-image samples, ellipses, bars, random
  fields, the HXN maps, photographs, filaments) at the sharp end of what a
  nanoprobe or a fine XRF scan gives (σ 0.4, 0.7, 1, 2, 4 px), small maps and
  crops (48², 64², 96², 160², 256²), counts from 20 over 2 to 3000 over 50 (and
  100 over 0), each Poisson map multiplied by a gain drawn log-uniformly from
  10⁻⁵ to 10. Size, σ, counts and gain are drawn from the seed. Seeds 0–11 per
  family are the tuning set (what the clip was chosen on), seeds 100–123 the
  held-out set (scored once). Printed: |ln(estimate / gain)| median, 90th
  percentile and worst, the median signed ln ratio, and the maps where no
  block could be measured.
* **Crops of the real HXN maps** (``tests/data``… copies of
  ``/work/shared/data/hxn_nanoparticles_xrf``, MIT, "Copyright (c) 2022
  stetef", data courtesy of A. Pattamattel and Y. Chu, NSLS-II HXN): the gain
  of 96² and 64² windows at three places over the gain of the whole map. The
  truth is unknown; the gain is a property of the instrument and the fit, so a
  crop should give about the whole map's.

``--estimator previous`` runs the estimator before the structure clip (the
flatter half's mean ratio, no clip) for comparison.

Integer maps (``--kind``), asked of :func:`xrfgpu.map_kind.classify_map`, the
front door's rule for "counts or scaled integers":

* ``--kind counts``: every case's scene at each of the four count levels,
  plain Poisson counts, with a smooth flat field (the mean × 0.5 at one
  corner to × 2 at the other) and with a dead column of zeros; printed: how
  many were reclassified (the target is none).
* ``--kind scaled``: ``round(k · counts)`` of the same plain maps for k in
  :data:`SCALES`; printed per k: the share detected as scaled integers and
  |ln(gain / k)| median, 90th percentile and worst over those detected.

Run::

    python benchmarks/gain_scenes.py --set tuning
    python benchmarks/gain_scenes.py --set held-out
    python benchmarks/gain_scenes.py --set held-out --estimator previous
    python benchmarks/gain_scenes.py --set tuning --kind counts
    python benchmarks/gain_scenes.py --set tuning --kind scaled
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sigma_scenes  # noqa: E402

from xrfgpu import background  # noqa: E402

FAMILIES = sigma_scenes.FAMILIES + sigma_scenes.TUNING_FAMILIES
SIZES = (48, 64, 96, 160, 256)
SIGMAS = (0.4, 0.7, 1.0, 2.0, 4.0)
#: (signal, background) in counts
COUNTS = ((20.0, 2.0), (300.0, 10.0), (3000.0, 50.0), (100.0, 0.0))
SETS = {"tuning": range(0, 12), "held-out": range(100, 124), "tuning-more": range(12, 72)}
#: the scales k of the scaled integer maps round(k · counts): quantised (0.25), a lattice with two spacings
#: (2.5), whole multiples (3, 10, 1000)
SCALES = (0.25, 2.5, 3.0, 10.0, 1000.0)
HXN = Path(__file__).resolve().parent.parent / "tests" / "data" / "hxn_nanoparticles_xrf"
CROPS = ((0, 0), (64, 64), (32, 32))


def cases(seeds):
    """One case per (family, seed): (family, seed, side, σ px, (signal, background), gain), drawn from the seed."""
    out = []
    for family in FAMILIES:
        for seed in seeds:
            r = np.random.default_rng([777, FAMILIES.index(family), seed])
            out.append((family, int(seed), SIZES[r.integers(len(SIZES))], SIGMAS[r.integers(len(SIGMAS))],
                        COUNTS[r.integers(len(COUNTS))], float(10.0 ** r.uniform(-5.0, 1.0))))
    return out


def make(case):
    """The map (gain × Poisson counts), its gain and a label."""
    family, seed, side, sigma, (signal, bkg), gain = case
    scene, margin, label, _ = sigma_scenes.scene_canvas((family, seed, max(side, 160), 4.0, signal, bkg))
    blurred = sigma_scenes._blur(scene, sigma)[margin : margin + side, margin : margin + side]
    mean = bkg + signal * np.clip(blurred, 0.0, None)
    counts = np.random.default_rng([55, FAMILIES.index(family), seed]).poisson(mean).astype(np.float64)
    return gain * counts, gain, f"{label} {side}² σ {sigma:g} {signal:g}/{bkg:g}"


def integer_maps(case):
    """The Poisson count maps of a case's scene at each count level: ``(label, variant, counts)``.

    Variants: ``plain``; ``flat``, the mean times a smooth flat field from 0.5 (top left) to 2 (bottom
    right); ``dead``, the plain map with a column of zeros at a third of its width.
    """
    family, seed, side, sigma, _, _ = case
    scene, margin, label, _ = sigma_scenes.scene_canvas((family, seed, max(side, 160), 4.0, 1.0, 0.0))
    blurred = np.clip(sigma_scenes._blur(scene, sigma)[margin : margin + side, margin : margin + side], 0.0, None)
    rows, cols = np.mgrid[0:side, 0:side] / (side - 1.0)
    flat_field = 0.5 * 4.0 ** ((rows + cols) / 2.0)
    for level, (signal, bkg) in enumerate(COUNTS):
        mean = bkg + signal * blurred
        name = f"{label} {side}² σ {sigma:g} {signal:g}/{bkg:g}"
        rng = np.random.default_rng([56, FAMILIES.index(family), seed, level])
        plain = rng.poisson(mean).astype(np.float64)
        dead = plain.copy()
        dead[:, side // 3] = 0.0
        yield name, "plain", plain
        yield name, "flat", rng.poisson(mean * flat_field).astype(np.float64)
        yield name, "dead", dead


def run_integer_maps(kind, seeds, verbose):
    """``--kind counts`` / ``--kind scaled``: :func:`xrfgpu.map_kind.classify_map` on integer maps."""
    from xrfgpu.map_kind import MIN_BLOCKS, classify_map

    t0 = time.perf_counter()
    if kind == "counts":
        total, wrong, readings, unmeasured = 0, [], [], 0
        for case in cases(seeds):
            for name, variant, counts in integer_maps(case):
                total += 1
                found = classify_map(counts)
                if not found.is_counts:
                    wrong.append(f"{name} {variant}: {found.note}")
                if found.measured_gain is None:
                    unmeasured += 1
                elif found.blocks >= MIN_BLOCKS:
                    readings.append(found.measured_gain)
        print(f"count maps: {len(wrong)} of {total} reclassified; variance/mean on {len(readings)} maps with "
              f">= {MIN_BLOCKS} blocks: {min(readings):.3f} to {max(readings):.3g} (1st pct "
              f"{np.quantile(readings, 0.01):.3f}); {unmeasured} not measurable [{time.perf_counter() - t0:.0f} s]")
        for line in wrong:
            print("  reclassified:", line)
        return
    found = {k: [] for k in SCALES}
    missed = {k: 0 for k in SCALES}
    for case in cases(seeds):
        for name, variant, counts in integer_maps(case):
            if variant != "plain":
                continue
            for k in SCALES:
                result = classify_map(np.round(k * counts))
                if result.is_counts:
                    missed[k] += 1
                    if verbose:
                        print(f"  k {k:g} missed: {name}: {result.evidence}")
                else:
                    found[k].append(abs(np.log(result.gain / k)))
    print(f"scaled integer maps round(k · counts) [{time.perf_counter() - t0:.0f} s]")
    for k in SCALES:
        err = np.array(found[k])
        n = len(err) + missed[k]
        line = f"  k {k:g}: detected {len(err)} of {n} ({len(err) / n:.0%})"
        if len(err):
            line += (f"; |ln(gain/k)| median {np.median(err):.3f}, 90th pct {np.quantile(err, 0.9):.3f}, "
                     f"worst {err.max():.3f}")
        print(line)


def previous_estimator(image, block=8):
    """The estimator before the structure clip: the flatter half's mean ratio."""
    saved = background._STRUCTURE_CLIP
    background._STRUCTURE_CLIP = np.inf
    try:
        return background.estimate_gain(image, block=block)
    finally:
        background._STRUCTURE_CLIP = saved


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=sorted(SETS), default="tuning")
    parser.add_argument("--estimator", choices=["current", "previous"], default="current")
    parser.add_argument("--verbose", action="store_true", help="one line per map")
    parser.add_argument("--kind", choices=["fitted", "counts", "scaled"], default="fitted",
                        help="fitted: gain × counts as floats (default); counts / scaled: integer maps, "
                             "classified by xrfgpu.map_kind.classify_map")
    args = parser.parse_args(argv)
    if args.kind != "fitted":
        run_integer_maps(args.kind, SETS[args.set], args.verbose)
        return 0
    estimate = background.estimate_gain if args.estimator == "current" else previous_estimator
    t0 = time.perf_counter()
    logs, failed = [], []
    for case in cases(SETS[args.set]):
        image, gain, label = make(case)
        try:
            ln = float(np.log(float(estimate(image)) / gain))
        except ValueError as err:
            failed.append(f"{label}: {err}")
            continue
        logs.append(ln)
        if args.verbose:
            print(f"{label}: estimate / gain {np.exp(ln):.3f}")
    err = np.abs(np.array(logs))
    print(f"{args.set} ({args.estimator}), {len(logs)} maps measured: |ln(estimate/gain)| median {np.median(err):.3f}, "
          f"90th pct {np.quantile(err, 0.9):.3f}, worst {err.max():.3f}; median signed {np.median(logs):+.4f}; "
          f"within 10 % {np.mean(err <= np.log(1.1)):.0%}, within 25 % {np.mean(err <= np.log(1.25)):.0%} "
          f"[{time.perf_counter() - t0:.0f} s]")
    for line in failed:
        print("  not measured:", line)
    import tifffile

    print("crops of the real HXN maps: gain / the whole map's gain")
    for path in sorted(HXN.glob("*.tif*")):
        full = tifffile.imread(path).astype(np.float64)
        whole = float(estimate(full))
        cells = [f"{side}² at {r},{c}: {float(estimate(full[r:r + side, c:c + side])) / whole:.2f}"
                 for (r, c) in CROPS for side in (96, 64)]
        print(f"  {path.stem}: whole {whole:.3g}; " + ", ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
