"""Before/after panels of ``restore(map)`` on the real HXN fitted maps (tests/data, MIT): docs/hxn_before_after.png.

    python benchmarks/hxn_panels.py [OUTPUT_PNG]

Fe, Cr and Si K maps of the NSLS-II HXN nanoparticle aggregate (fitted values, not counts), each
restored by ``xrfgpu.restore(map)`` with nothing else given; the input and the restoration share a
colour scale per row; the title holds the effective gain, σ, its interval, the iterations and the
flux ratio. Si carries no σ information (the estimator warns); it is shown to make that visible.

Prints, per map, for the default goal (``"resolution"``, drawn) and for ``goal="fidelity"``: gain,
background, σ [interval], iterations, the share of (near-)zero pixels, the flux ratio and the
growth of the 99th percentile of the gradient magnitude over the input − background (edges).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", type=Path, default=ROOT / "docs" / "hxn_before_after.png",
                        help="the PNG to write (default: docs/hxn_before_after.png)")
    out_path = parser.parse_args(sys.argv[1:] if argv is None else argv).output
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import tifffile

    import xrfgpu
    from xrfgpu.figures import save_figure

    def edge(a):
        return float(np.quantile(np.hypot(*np.gradient(np.asarray(a, dtype=np.float64))), 0.99))

    from xrfgpu.figures import add_scale_bar, colorbar_extend

    pixel_um = 0.15  # not stored in the files: the companion XANES image's step, an assumption (data README)
    fig, axes = plt.subplots(3, 3, figsize=(11.5, 10.4), dpi=72, layout="constrained")
    print("| map | goal | gain (units/count) | background | σ (px) [interval] | iterations | zero pixels "
          "(input) | flux ratio | edge growth |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row, element in enumerate(("Fe", "Cr", "Si")):
        y = tifffile.imread(ROOT / "tests" / "data" / "hxn_nanoparticles_xrf" / f"SUM_maps_XRF_{element}_K.tiff")
        for goal in ("fidelity", None):  # None: the default, drawn
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                out, info = xrfgpu.restore(y, return_info=True, **({} if goal is None else {"goal": goal}))
            lo, hi = info["sigma_interval"]
            zeros = float(np.mean(out <= 1e-6 * out.max()))
            zeros_in = float(np.mean(y - info["background"] <= 1e-6 * np.max(y)))
            print(f"| {element} K | {info['goal']}{' (default)' if goal is None else ''} | {info['gain']:.3g} | "
                  f"{info['background']:.3g} (map max {float(np.max(y)):.3g}) | {info['sigma']:.2f} [{lo:.2f}, "
                  f"{hi:.2f}]{' (warned)' if caught else ''} | {info['iterations']} | {100 * zeros:.1f} % "
                  f"({100 * zeros_in:.1f} %) | {info['flux_ratio']:.3f} | "
                  f"{edge(out) / edge(y - info['background']):.3f} |", flush=True)
        note = ", σ uncertain" if caught else ""
        vmax = float(np.quantile(out, 0.999))
        axes[row, 0].imshow(y - info["background"], cmap="magma", vmin=0, vmax=vmax)
        axes[row, 0].set_title(f"{element} K, input − background\n(fitted units)", fontsize=9)
        im = axes[row, 1].imshow(out, cmap="magma", vmin=0, vmax=vmax)
        fig.colorbar(im, ax=list(axes[row, :2]), shrink=0.85, extend=colorbar_extend(0.0, vmax, y - info["background"], out),
                     label="fitted units above background\n(one scale per row)")
        axes[row, 1].set_title(f"restore(map): σ {info['sigma']:.2f} px [{lo:.2f}, {hi:.2f}]\n"
                               f"{info['iterations']} it.{note}", fontsize=9)
        r = int(np.argmax(out.max(axis=1)))
        axes[row, 2].plot(np.asarray(y)[r] - info["background"], label="input − b", lw=1)
        axes[row, 2].plot(out[r], label="restored", lw=1)
        axes[row, 2].set_title(f"row {r}; gain {info['gain']:.3g}/count, flux ratio {info['flux_ratio']:.3f}",
                               fontsize=9)
        axes[row, 2].legend(fontsize=8)
        axes[row, 2].set_xlabel("column (px)")
        axes[row, 2].set_ylabel("fitted units")
        for ax in axes[row, :2]:
            ax.set_xticks([])
            ax.set_yticks([])
            ax.axhline(r, color="w", lw=0.5, alpha=0.5)
            add_scale_bar(ax, pixel_um, y.shape[1])
    fig.suptitle("NSLS-II HXN nanoparticle maps (MIT; data courtesy A. Pattamattel, Y. Chu), restored "
                 f"with xrfgpu.restore(map) alone (default goal \"{info['goal']}\");\nscale bars assume "
                 f"{pixel_um * 1e3:g} nm pixels (not stored in the files)", fontsize=10)
    save_figure(fig, out_path, overwrite=True)
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
