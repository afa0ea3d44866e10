"""Figures for the command line: PSF fits (the paper's Fig. 3/4 style) and before/after comparisons.

Figures are drawn with Matplotlib's object API on an Agg canvas (no pyplot
state, no display needed) and saved atomically (temporary file, then
:func:`os.replace`). Matplotlib comes with the ``io`` extra.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["save_figure", "dot_fit_figure", "edge_fit_figure", "kernel_figure", "compare_figure"]


def _figure(width, height):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover
        raise ImportError("figures need matplotlib; install it with: pip install 'xrfgpu[io]'") from exc
    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


_CREATOR_KEY = {"png": "Software", "pdf": "Creator", "svg": "Creator"}


def save_figure(fig, path, *, overwrite=False, inputs=()):
    """Save ``fig`` to ``path`` (format from the suffix) via a temporary file; returns the path.

    PNG, PDF and SVG files name xrfgpu as their software (``Software`` /
    ``Creator``), which is how ``overwrite=True`` recognises an earlier
    xrfgpu figure: nothing else is replaced, and never one of ``inputs``
    (see :func:`xrfgpu.output_safety.check_outputs`).
    """
    from . import __version__
    from .output_safety import Output, write_outputs

    path = Path(path)
    fmt = path.suffix[1:].lower() or "png"
    key = _CREATOR_KEY.get(fmt)
    metadata = {key: f"xrfgpu {__version__}"} if key else None
    write_outputs([Output(path, lambda tmp: fig.savefig(tmp, format=fmt, metadata=metadata))],
                  inputs=inputs, overwrite=overwrite)
    return path


def _extent(shape, pixel_size_um):
    rows, cols = shape
    p = pixel_size_um or 1.0
    return (-0.5 * p, (cols - 0.5) * p, (rows - 0.5) * p, -0.5 * p)


def dot_fit_figure(data, fit, *, pixel_size_um=None, title="Dot scan"):
    """Map of the dot with the fitted 1σ/2σ/3σ ellipses, fit, residual and profiles through the centre.

    ``fit`` is a :class:`xrfgpu.psf.GaussianSpotFit` (from :func:`xrfgpu.psf.fit_dot`).
    """
    from matplotlib.patches import Ellipse

    data = np.asarray(data, dtype=np.float64)
    p = pixel_size_um or 1.0
    unit = "µm" if pixel_size_um else "px"
    fig = _figure(11, 3.4)
    axes = fig.subplots(1, 4)
    ext = _extent(data.shape, pixel_size_um)
    im = axes[0].imshow(data, extent=ext, cmap="viridis")
    for e in fit.ellipses():
        axes[0].add_patch(Ellipse((e["center"][0] * p, e["center"][1] * p), 2 * e["semi_major"] * p,
                                  2 * e["semi_minor"] * p, angle=e["angle_deg"], fill=False, color="w", lw=1))
    axes[0].set_title(f"{title}: data, 1/2/3σ")
    fig.colorbar(im, ax=axes[0], shrink=0.8)
    axes[1].imshow(fit.model, extent=ext, cmap="viridis")
    axes[1].set_title("fit g = αh + β")
    r = axes[2].imshow(fit.residual, extent=ext, cmap="RdBu_r")
    axes[2].set_title("residual")
    fig.colorbar(r, ax=axes[2], shrink=0.8)
    row = int(round(fit.mu_v))
    col = int(round(fit.mu_u))
    row = min(max(row, 0), data.shape[0] - 1)
    col = min(max(col, 0), data.shape[1] - 1)
    x = np.arange(data.shape[1]) * p
    y = np.arange(data.shape[0]) * p
    axes[3].plot(x, data[row], "o", ms=3, label="row data")
    axes[3].plot(x, fit.model[row], "-", label="row fit")
    axes[3].plot(y, data[:, col], "s", ms=3, label="column data")
    axes[3].plot(y, fit.model[:, col], "--", label="column fit")
    axes[3].set_xlabel(unit)
    axes[3].legend(fontsize=7)
    su, sv = fit.sigma_u * p, fit.sigma_v * p
    axes[3].set_title(f"σu={su:.3g}, σv={sv:.3g} {unit}, ρ={fit.rho:.2f}", fontsize=9)
    for ax in axes[:3]:
        ax.set_xlabel(unit)
    return fig


def edge_fit_figure(fit, *, title="Knife edge"):
    """Edge-spread function (binned data and erf fit) and its residual; ``fit`` from :func:`xrfgpu.psf.fit_knife_edge`."""
    from scipy import special

    fig = _figure(8, 3.4)
    ax, axr = fig.subplots(1, 2)
    p = fit.pixel_size_um or 1.0
    unit = "µm" if fit.pixel_size_um else "px"
    t = np.asarray(fit.positions, dtype=np.float64)
    esf = np.asarray(fit.esf, dtype=np.float64)
    tt = np.linspace(t.min(), t.max(), 400)
    model = fit.beta + fit.alpha * 0.5 * (1.0 + special.erf((tt - fit.edge) / (np.sqrt(2.0) * fit.sigma)))
    ax.plot((t - fit.edge) * p, esf, ".", ms=3, label="binned ESF")
    ax.plot((tt - fit.edge) * p, model, "-", label="erf fit")
    ax.set_xlabel(f"distance from edge ({unit})")
    ax.set_title(f"{title}: σ={fit.sigma * p:.3g}±{fit.sigma_stderr * p:.2g} {unit}", fontsize=9)
    ax.legend(fontsize=7)
    axr.plot((t - fit.edge) * p, np.asarray(fit.residual, dtype=np.float64), ".", ms=3)
    axr.axhline(0.0, color="k", lw=0.5)
    axr.set_title("residual")
    axr.set_xlabel(f"distance from edge ({unit})")
    return fig


def kernel_figure(kernel, sigma_px, *, pixel_size_um=None, title="Blind kernel"):
    """The blind kernel next to the Gaussian of the fitted σ."""
    from .psf import gaussian

    kernel = np.asarray(kernel, dtype=np.float64)
    g = np.asarray(gaussian(kernel.shape, sigma_px), dtype=np.float64)
    fig = _figure(8, 3.4)
    a, b, c = fig.subplots(1, 3)
    a.imshow(kernel, cmap="magma")
    a.set_title(title)
    b.imshow(g, cmap="magma")
    p = pixel_size_um or 1.0
    b.set_title(f"Gaussian σ={sigma_px * p:.3g} {'µm' if pixel_size_um else 'px'}")
    mid = kernel.shape[0] // 2
    c.plot(kernel[mid], "o-", ms=3, label="kernel row")
    c.plot(g[mid], "--", label="Gaussian")
    c.legend(fontsize=7)
    return fig


def compare_figure(before, after, names, *, row=None, pixel_size_um=None, truth=None):
    """Before/after maps per element with a line profile along ``row`` (default the middle row).

    Parameters
    ----------
    before, after : sequence of 2-D arrays
        Input and restored maps, same order as ``names``.
    names : sequence of str
    row : int, optional
        Row of the profile (marked on the maps).
    pixel_size_um : float, optional
        Axis units.
    truth : sequence of 2-D arrays, optional
        Drawn in the profile when given.
    """
    n = len(names)
    fig = _figure(11, 3.2 * n)
    axes = np.atleast_2d(fig.subplots(n, 3, squeeze=False))
    p = pixel_size_um or 1.0
    unit = "µm" if pixel_size_um else "px"
    for i, name in enumerate(names):
        b = np.asarray(before[i], dtype=np.float64)
        a = np.asarray(after[i], dtype=np.float64)
        r = b.shape[0] // 2 if row is None else int(row)
        ext = _extent(b.shape, pixel_size_um)
        lo, hi = np.percentile(b, [0.5, 99.5])
        axes[i, 0].imshow(b, extent=ext, cmap="viridis", vmin=lo, vmax=hi)
        axes[i, 0].set_title(f"{name}: input")
        lo2, hi2 = np.percentile(a, [0.5, 99.5])
        axes[i, 1].imshow(a, extent=ext, cmap="viridis", vmin=lo2, vmax=hi2)
        axes[i, 1].set_title(f"{name}: restored")
        for ax in axes[i, :2]:
            ax.axhline(r * p, color="w", lw=0.8, ls="--")
            ax.set_xlabel(unit)
        x = np.arange(b.shape[1]) * p
        axes[i, 2].plot(x, b[r], label="input", lw=1)
        axes[i, 2].plot(x, a[r], label="restored", lw=1)
        if truth is not None:
            axes[i, 2].plot(x, np.asarray(truth[i])[r], label="truth", lw=1, color="k", alpha=0.6)
        axes[i, 2].set_title(f"row {r} profile")
        axes[i, 2].set_xlabel(unit)
        axes[i, 2].legend(fontsize=7)
    return fig
