"""Figures for the command line: PSF fits (the paper's Fig. 3/4 style) and before/after comparisons.

Figures are drawn with Matplotlib's object API on an Agg canvas (no pyplot
state, no display needed) and saved atomically (temporary file, then
:func:`os.replace`). Matplotlib comes with the ``io`` extra.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .metrics import affine_nrmse

__all__ = ["save_figure", "figure_format", "FIGURE_SUFFIXES", "dot_fit_figure", "edge_fit_figure", "kernel_figure", "compare_figure",
           "add_scale_bar", "shared_limits", "nice_length", "colorbar_extend", "residual_limit"]


def _figure(width, height):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover
        raise ImportError("figures need matplotlib; install it with: pip install 'xrfgpu[io]'") from exc
    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


#: the figure formats xrfgpu writes, each with the entry that names xrfgpu as its software: how
#: ``--overwrite`` recognises an earlier figure (:mod:`xrfgpu.output_safety`)
_CREATOR_KEY = {"png": "Software", "pdf": "Creator", "svg": "Creator"}
FIGURE_SUFFIXES = tuple(f".{fmt}" for fmt in _CREATOR_KEY)


def figure_format(path):
    """The format of figure file ``path`` from its suffix (any case): ``"png"``, ``"pdf"`` or ``"svg"``.

    Raises
    ------
    ValueError
        For any other name: a figure written as ``.tif`` or ``.npy`` would be read as a map, and a
        ``.jpg`` or a name without a suffix carries no mark of xrfgpu, so it could never be replaced.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in FIGURE_SUFFIXES:
        raise ValueError(f"figure {str(path)!r} must end in {', '.join(FIGURE_SUFFIXES[:-1])} or "
                         f"{FIGURE_SUFFIXES[-1]} (the formats that carry xrfgpu's mark; a figure saved as a map "
                         "format would be read as a map)")
    return suffix[1:]


def save_figure(fig, path, *, overwrite=False, inputs=()):
    """Save ``fig`` to ``path`` (format from the suffix) via a temporary file; returns the path.

    PNG, PDF and SVG files name xrfgpu as their software (``Software`` /
    ``Creator``), which is how ``overwrite=True`` recognises an earlier
    xrfgpu figure: nothing else is replaced, and never one of ``inputs``
    (see :func:`xrfgpu.output_safety.check_outputs`); any other suffix is
    refused (:func:`figure_format`).
    """
    from .output_safety import write_outputs

    path = Path(path)
    write_outputs([figure_output(fig, path)], inputs=inputs, overwrite=overwrite)
    return path


def figure_output(fig, path):
    """``fig`` as an :class:`xrfgpu.output_safety.Output` (format from the suffix, xrfgpu as its software),
    to be published together with the files it belongs to (e.g. ``xrfgpu psf``'s table)."""
    from . import __version__
    from .output_safety import Output

    path = Path(path)
    fmt = figure_format(path)
    metadata = {_CREATOR_KEY[fmt]: f"xrfgpu {__version__}"}
    return Output(path, lambda tmp: fig.savefig(tmp, format=fmt, metadata=metadata))


def nice_length(target):
    """Largest 1, 2 or 5 × 10^k not above ``target`` (> 0): a round scale-bar length."""
    import math

    k = math.floor(math.log10(target))
    for m in (5.0, 2.0, 1.0):
        if m * 10.0**k <= target * (1 + 1e-9):
            return m * 10.0**k
    return 10.0 ** (k - 1) * 5.0  # pragma: no cover - unreachable


def add_scale_bar(ax, pixel_size_um, width_px, *, axes_in_um=False, color="white", loc="lower left"):
    """A µm scale bar (about a fifth of the map's width) in a corner (``loc``) of an image axes.

    ``axes_in_um`` says whether the image was drawn with an extent in µm
    (else in pixels). Nothing is drawn when the pixel size is unknown.
    Returns the bar's length in µm (None without a pixel size).
    """
    if not pixel_size_um:
        return None
    from matplotlib.font_manager import FontProperties
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    length_um = nice_length(0.2 * width_px * pixel_size_um)
    size = length_um if axes_in_um else length_um / pixel_size_um
    label = f"{length_um:g} µm" if length_um >= 1 else f"{length_um * 1e3:g} nm"
    bar = AnchoredSizeBar(ax.transData, size, label, loc, pad=0.4, borderpad=0.4, sep=3, color=color,
                          frameon=False, size_vertical=max(size / 40.0, 1e-12),
                          fontproperties=FontProperties(size=8))
    ax.add_artist(bar)
    return length_um


def shared_limits(*images, percentiles=(0.5, 99.5)):
    """One (vmin, vmax) for several maps: the lowest low and highest high robust percentile.

    Of the measured pixels: missing ones (NaN, e.g. blank CSV cells) are left out.
    """
    lows, highs = [], []
    for img in images:
        img = np.asarray(img, dtype=np.float64)
        measured = img[np.isfinite(img)]
        if measured.size == 0:
            continue
        lo, hi = np.percentile(measured, percentiles)
        lows.append(lo)
        highs.append(hi)
    if not lows:
        return 0.0, 1.0
    lo, hi = float(min(lows)), float(max(highs))
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def colorbar_extend(vmin, vmax, *images):
    """Matplotlib's ``extend`` for a colour bar of limits (vmin, vmax): which ends the scale clips.

    ``"min"``, ``"max"`` or ``"both"`` when measured (finite) pixels of ``images`` lie below ``vmin``
    or above ``vmax`` (a sharpened peak above a percentile scale); ``"neither"`` when the scale holds
    every pixel. The colour bar then draws a pointed end, so a clipped scale says so.
    """
    below = above = False
    for img in images:
        img = np.asarray(img, dtype=np.float64)
        measured = img[np.isfinite(img)]
        if measured.size:
            below = below or bool(np.min(measured) < vmin)
            above = above or bool(np.max(measured) > vmax)
    return {(False, False): "neither", (True, False): "min", (False, True): "max", (True, True): "both"}[(below, above)]


#: a map whose sides differ by more than this factor is drawn with a stretched aspect: at equal aspect a
#: 1 × 200 line scan is a hairline
STRETCH_ASPECT_ABOVE = 20.0

#: profiles of at most this many pixels mark each pixel (an 11 × 11 MAPS map)
MARK_PIXELS_UP_TO = 32


def _aspect(shape):
    """``("auto", " (aspect stretched)")`` for a map much longer than wide, else ``("equal", "")``."""
    rows, cols = shape
    return ("auto", " (aspect stretched)") if max(rows, cols) > STRETCH_ASPECT_ABOVE * min(rows, cols) else ("equal", "")


def unit_of_length(pixel_size_um):
    """Axis unit: "µm" with a pixel size, else "px"."""
    return "µm" if pixel_size_um else "px"


#: colour of missing (NaN) pixels on the compare maps: apart from viridis, the white scale bar and the page
MISSING_COLOUR = "red"


def _map_colours():
    """viridis with missing pixels in :data:`MISSING_COLOUR`."""
    from matplotlib import colormaps

    return colormaps["viridis"].with_extremes(bad=MISSING_COLOUR)


#: characters per line of a map's title: two titles side by side in a 12-inch row at 9 pt must not meet
TITLE_CHARACTERS = 44


def _wrapped(title):
    """``title`` with each line broken at spaces to :data:`TITLE_CHARACTERS` (long MAPS channel names)."""
    import textwrap

    return "\n".join(textwrap.fill(line, TITLE_CHARACTERS, break_long_words=True) or line
                     for line in title.split("\n"))


def _pixel_ticks(ax, shape, p, *, up_to=5):
    """On a stretched map, ticks at the pixel centres of its short axis (one tick for a one-pixel side)."""
    rows, cols = shape
    if rows <= up_to:
        ax.set_yticks([k * p for k in range(rows)])
    if cols <= up_to:
        ax.set_xticks([k * p for k in range(cols)])


#: the residual panel's colour scale holds this percentile of |residual| (symmetric about 0)
RESIDUAL_PERCENTILE = 99.5


def residual_limit(residual, percentile=RESIDUAL_PERCENTILE):
    """Half-width of a colour scale centred on 0 for a residual map: the ``percentile`` of |residual|.

    Of the finite pixels; 1.0 when there are none or all are 0 (a scale of zero width draws nothing).
    Used as ``vmin=-limit, vmax=limit`` with a diverging colour map, white is then 0.
    """
    r = np.abs(np.asarray(residual, dtype=np.float64))
    r = r[np.isfinite(r)]
    limit = float(np.percentile(r, percentile)) if r.size else 0.0
    return limit if limit > 0 else (float(r.max()) if r.size and r.max() > 0 else 1.0)


def _extent(shape, pixel_size_um):
    rows, cols = shape
    p = pixel_size_um or 1.0
    return (-0.5 * p, (cols - 0.5) * p, (rows - 0.5) * p, -0.5 * p)


def dot_fit_figure(data, fit, *, pixel_size_um=None, title="Dot scan", unit="counts", sigma_stderr=None):
    """Map of the dot with the fitted 1σ/2σ/3σ ellipses, fit, residual and profiles through the centre.

    The residual's colour scale is symmetric about 0 (white), ± :func:`residual_limit` of it.

    Parameters
    ----------
    data : 2-D array
        The fitted map.
    fit : xrfgpu.psf.GaussianSpotFit
        From :func:`xrfgpu.psf.fit_dot`.
    pixel_size_um : float, optional
        Axes and σ in µm when given, else in pixels.
    title : str
        The map's name.
    unit : str
        Intensity unit of the map for the colour bars and the profile axis: "counts" for count maps,
        the file's unit, or "input units" for fitted values (``xrfgpu psf dot`` says which).
    sigma_stderr : float, optional
        Standard error of σ = √(σu σv), pixels: shown with σ in the title, as the PSF table records it.
    """
    from matplotlib.patches import Ellipse

    data = np.asarray(data, dtype=np.float64)
    p = pixel_size_um or 1.0
    length = unit_of_length(pixel_size_um)
    fig = _figure(11, 3.6)
    axes = fig.subplots(1, 4)
    ext = _extent(data.shape, pixel_size_um)
    err = "" if sigma_stderr is None else f" ± {sigma_stderr * p:.2g}"
    fig.suptitle(f"{title}: σ = {fit.sigma * p:.3g}{err} {length} = √(σu·σv), "
                 "the σ the PSF table records", fontsize=10)
    im = axes[0].imshow(data, extent=ext, cmap="viridis")
    for e in fit.ellipses():
        axes[0].add_patch(Ellipse((e["center"][0] * p, e["center"][1] * p), 2 * e["semi_major"] * p,
                                  2 * e["semi_minor"] * p, angle=e["angle_deg"], fill=False, color="w", lw=1))
    axes[0].set_title(f"{title}: data, 1/2/3σ")
    fig.colorbar(im, ax=axes[0], shrink=0.8, label=unit)
    add_scale_bar(axes[0], pixel_size_um, data.shape[1], axes_in_um=True)
    axes[1].imshow(fit.model, extent=ext, cmap="viridis", vmin=im.get_clim()[0], vmax=im.get_clim()[1])
    axes[1].set_title("fit g = αh + β (same scale)")
    # white at 0: symmetric limits, so an unbiased residual looks unbiased (a hot pixel past them clips,
    # and the colour bar's pointed end says so)
    bound = residual_limit(fit.residual)
    r = axes[2].imshow(fit.residual, extent=ext, cmap="RdBu_r", vmin=-bound, vmax=bound)
    axes[2].set_title("residual")
    fig.colorbar(r, ax=axes[2], shrink=0.8, label=unit, extend=colorbar_extend(-bound, bound, fit.residual))
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
    axes[3].set_xlabel(length)
    axes[3].set_ylabel(unit)
    axes[3].legend(fontsize=7)
    su, sv = fit.sigma_u * p, fit.sigma_v * p
    # two lines: in one, long numbers (σ of 0.0242 µm, a negative ρ) ran past the figure's right edge
    axes[3].set_title(f"σu={su:.3g}, σv={sv:.3g} {length}\nρ={fit.rho:.2f}", fontsize=9)
    for ax in axes[:3]:
        ax.set_xlabel(length)
    return fig


def edge_fit_figure(fit, *, title="Knife edge", unit="counts"):
    """Edge-spread function (binned data and erf fit) and its residual; ``fit`` from :func:`xrfgpu.psf.fit_knife_edge`.

    ``unit`` is the map's intensity unit (the ESF axis): "counts", the file's unit, or "input units".
    """
    from scipy import special

    fig = _figure(8, 3.4)
    ax, axr = fig.subplots(1, 2)
    p = fit.pixel_size_um or 1.0
    length = unit_of_length(fit.pixel_size_um)
    t = np.asarray(fit.positions, dtype=np.float64)
    esf = np.asarray(fit.esf, dtype=np.float64)
    tt = np.linspace(t.min(), t.max(), 400)
    slope = getattr(fit, "slope", 0.0)  # the background's slope along the normal, when one was fitted
    model = (fit.beta + slope * (tt - fit.edge)
             + fit.alpha * 0.5 * (1.0 + special.erf((tt - fit.edge) / (np.sqrt(2.0) * fit.sigma))))
    ax.plot((t - fit.edge) * p, esf, ".", ms=3, label="binned ESF")
    ax.plot((tt - fit.edge) * p, model, "-", label="erf fit")
    ax.set_xlabel(f"distance from edge ({length})")
    ax.set_ylabel(unit)
    ax.set_title(f"{title}: σ={fit.sigma * p:.3g}±{fit.sigma_stderr * p:.2g} {length}", fontsize=9)
    ax.legend(fontsize=7)
    axr.plot((t - fit.edge) * p, np.asarray(fit.residual, dtype=np.float64), ".", ms=3)
    axr.axhline(0.0, color="k", lw=0.5)
    axr.set_title("residual", fontsize=9)
    axr.set_xlabel(f"distance from edge ({length})")
    axr.set_ylabel(f"data − fit ({unit})")
    return fig


def kernel_figure(kernel, sigma_px, *, pixel_size_um=None, title="Blind kernel", kernel_label="blind L0 kernel"):
    """The estimated kernel, the Gaussian of the fitted σ, and profiles of both through the centre.

    Parameters
    ----------
    kernel : 2-D array or None
        The kernel the blind method estimated (unit sum). None when σ came
        from the map alone (no kernel): then only the Gaussian is drawn, and
        labelled as the Gaussian, so no panel pretends to be a measured kernel.
    sigma_px : float
        Fitted σ, pixels.
    pixel_size_um : float, optional
        Axes and σ in µm when given.
    title : str
        The figure's title.
    kernel_label : str
        The kernel panel's title and its profile's legend entry (what
        estimated the kernel).
    """
    from .psf import gaussian

    p = pixel_size_um or 1.0
    unit = "µm" if pixel_size_um else "px"
    if kernel is not None:
        kernel = np.asarray(kernel, dtype=np.float64)
        shape = kernel.shape
    else:
        half = max(3, int(np.ceil(3.5 * sigma_px)))
        shape = (2 * half + 1, 2 * half + 1)
    g = np.asarray(gaussian(shape, sigma_px), dtype=np.float64)
    fit = "fitted Gaussian" if kernel is not None else "Gaussian"
    panels = ([(kernel, kernel_label)] if kernel is not None else []) + [
        (g, f"{fit} σ = {sigma_px * p:.3g} {unit}" + (f" ({sigma_px:.3g} px)" if pixel_size_um else ""))]
    fig = _figure(4.0 * (len(panels) + 1), 3.6)
    axes = fig.subplots(1, len(panels) + 1)
    ext = (-(shape[1] // 2 + 0.5) * p, (shape[1] // 2 + 0.5) * p, (shape[0] // 2 + 0.5) * p, -(shape[0] // 2 + 0.5) * p)
    vmax = max(float(np.max(a)) for a, _ in panels)
    for ax, (a, label) in zip(axes, panels):
        im = ax.imshow(a, cmap="magma", extent=ext, vmin=0.0, vmax=vmax)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel(unit)
    fig.colorbar(im, ax=list(axes[: len(panels)]), shrink=0.8, label="weight (unit sum)")
    c = axes[-1]
    mid = shape[0] // 2
    x = (np.arange(shape[1]) - shape[1] // 2) * p
    if kernel is not None:
        c.plot(x, kernel[mid], "o-", ms=3, label=f"{kernel_label}, centre row")
    c.plot(x, g[mid], "--", label="Gaussian, centre row")
    c.set_xlabel(unit)
    c.set_ylabel("weight")
    c.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return fig


def _map_list(maps, what, names):
    """``maps`` as a list of 2-D float arrays, one per name (masked pixels as NaN), or a ValueError."""
    if hasattr(maps, "ndim") and maps.ndim == 2:
        maps = [maps]  # one map, as a 2-D array
    out = []
    for m in maps:
        a = np.ma.filled(np.ma.asarray(m, dtype=np.float64), np.nan) if isinstance(m, np.ma.MaskedArray) else \
            np.asarray(m, dtype=np.float64)
        if a.ndim != 2:
            raise ValueError(f"{what} must hold 2-D maps (one per name), got one of shape {a.shape}")
        out.append(a)
    if len(out) != len(names):
        raise ValueError(f"{what} holds {len(out)} map(s) for {len(names)} name(s) {names}: give one name per map")
    return out


def compare_figure(before, after, names, *, row=None, pixel_size_um=None, truth=None, unit="counts", labels=None,
                   background=None):
    """Before/after maps per element with a line profile along ``row`` (default the middle row).

    Input and restored maps of an element share one colour scale (the
    lower 0.5 and upper 99.5 percentiles of both) and one colour bar
    labelled with ``unit``, pointed at an end the scale clips
    (:func:`colorbar_extend`); a µm scale bar is drawn when the pixel size
    is known.

    Parameters
    ----------
    before, after : sequence of 2-D arrays
        Input and restored maps, same order as ``names``.
    names : sequence of str
    row : int, optional
        Row of the profile (marked on the maps).
    pixel_size_um : float, optional
        Axis units and scale bar.
    truth : sequence of 2-D arrays, optional
        Drawn in the profile when given, and each map's error to it
        (:func:`xrfgpu.metrics.affine_nrmse`, as ``xrfgpu compare`` prints it) is written
        over the map: a sharper map can be noise.
    unit : str or sequence of str
        Intensity unit of the maps (one for all, or one per element).
    labels : sequence of str, optional
        How each element was restored (method, σ, iterations), shown over
        the restored map.
    background : float or sequence of float (or None), optional
        The background the restoration removed (its record's
        ``background``), in the maps' unit: the input is drawn minus it, so
        both maps show the signal above it on one footing (the model
        y = h ⊛ x + b restores x). None: the input as it is.

    Notes
    -----
    One map may be given as a 2-D array with one name; names given as bytes
    (h5py) are decoded; the masked pixels of a NumPy masked array are drawn
    as missing (NaN), left out of the colour scale. A map whose sides differ
    more than :data:`STRETCH_ASPECT_ABOVE`-fold (a 1 × N line scan) is drawn
    stretched, and says so; a one-column map gets a column profile; a
    profile of at most :data:`MARK_PIXELS_UP_TO` pixels marks each pixel.

    Raises
    ------
    ValueError
        ``before``, ``after`` (or ``truth``) not holding one 2-D map per name,
        maps of different shapes, or ``row`` outside the maps.
    """
    names = [n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n) for n in
             ([names] if isinstance(names, (str, bytes)) else names)]
    before, after = (_map_list(x, what, names) for x, what in ((before, "before"), (after, "after")))
    truth = None if truth is None else _map_list(truth, "truth", names)
    for i, name in enumerate(names):
        if before[i].shape != after[i].shape or (truth is not None and truth[i].shape != before[i].shape):
            raise ValueError(f"map {name!r}: input {before[i].shape} and restored {after[i].shape} differ in shape")
        if row is not None and not 0 <= int(row) < before[i].shape[0]:
            raise ValueError(f"row={row} is outside map {name!r} of {before[i].shape[0]} rows")
    n = len(names)
    backgrounds = [background] * n if background is None or np.ndim(background) == 0 else list(background)
    if len(backgrounds) != n:
        raise ValueError(f"background holds {len(backgrounds)} value(s) for {n} map(s) {names}")
    backgrounds = [None if bg is None or float(bg) == 0.0 else float(bg) for bg in backgrounds]  # 0: nothing removed
    fig = _figure(12, 3.3 * n)
    axes = np.atleast_2d(fig.subplots(n, 3, squeeze=False))
    p = pixel_size_um or 1.0
    axis_unit = unit_of_length(pixel_size_um)
    units = [unit] * n if isinstance(unit, str) else list(unit)
    for i, name in enumerate(names):
        b = np.asarray(before[i], dtype=np.float64)
        a = np.asarray(after[i], dtype=np.float64)
        input_title = f"{name}: input"
        if backgrounds[i] is not None:
            b = b - float(backgrounds[i])
            input_title = f"{name}: input − background ({float(backgrounds[i]):.3g})"
        restored_title = f"{name}: restored"
        if truth is not None:
            input_title += f"\nNRMSE to truth {affine_nrmse(before[i], truth[i]):.4f}"  # as compare prints it
            restored_title += f", NRMSE to truth {affine_nrmse(a, truth[i]):.4f}"
        column_profile = b.shape[1] == 1 and b.shape[0] > 1
        r = b.shape[0] // 2 if row is None else int(row)
        ext = _extent(b.shape, pixel_size_um)
        aspect, stretched = _aspect(b.shape)
        lo, hi = shared_limits(b, a)
        missing = int(np.sum(~np.isfinite(b)))
        if missing:
            input_title += f"\n{missing} missing pixel{'s' if missing > 1 else ''} ({MISSING_COLOUR})"
        cmap = _map_colours()
        axes[i, 0].imshow(b, extent=ext, cmap=cmap, vmin=lo, vmax=hi, aspect=aspect)
        axes[i, 0].set_title(_wrapped(input_title + stretched), fontsize=9)
        im = axes[i, 1].imshow(a, extent=ext, cmap=cmap, vmin=lo, vmax=hi, aspect=aspect)
        label = f"\n{labels[i]}" if labels is not None and labels[i] else ""
        axes[i, 1].set_title(_wrapped(f"{restored_title}{label}{stretched}"), fontsize=9)
        fig.colorbar(im, ax=list(axes[i, :2]), shrink=0.85, label=units[i], extend=colorbar_extend(lo, hi, b, a))
        for ax in axes[i, :2]:
            if column_profile:
                ax.axvline(0.0, color="w", lw=0.8, ls="--")
            else:
                ax.axhline(r * p, color="w", lw=0.8, ls="--")
            ax.set_xlabel(axis_unit)
            if stretched:  # the axes are in µm already; a bar's thickness would be a block on one axis
                _pixel_ticks(ax, b.shape, p)
            else:
                add_scale_bar(ax, pixel_size_um, b.shape[1], axes_in_um=True)
        if column_profile:
            x, pb, pa = np.arange(b.shape[0]) * p, b[:, 0], a[:, 0]
            pt = None if truth is None else np.asarray(truth[i], dtype=np.float64)[:, 0]
            where = "column 0"
        else:
            x, pb, pa = np.arange(b.shape[1]) * p, b[r], a[r]
            pt = None if truth is None else np.asarray(truth[i], dtype=np.float64)[r]
            where = f"row {r}"
        mark = {"marker": ".", "ms": 5} if x.size <= MARK_PIXELS_UP_TO else {}
        axes[i, 2].plot(x, pb, label="input" + (" − background" if backgrounds[i] is not None else ""), lw=1, **mark)
        axes[i, 2].plot(x, pa, label="restored", lw=1, **mark)
        if pt is not None:
            axes[i, 2].plot(x, pt, label="truth", lw=1, color="k", alpha=0.6, **mark)
        axes[i, 2].set_title(f"{where} profile", fontsize=9)
        axes[i, 2].set_xlabel(axis_unit)
        axes[i, 2].set_ylabel(units[i])
        axes[i, 2].legend(fontsize=7)
    return fig
