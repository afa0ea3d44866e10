"""l1-regularised least squares by ISTA and FISTA (Beck & Teboulle 2009)."""

from __future__ import annotations

import math

from ._elementwise import difference, fista_step
from ._problem import prepare
from ._validate import check_num_iter

__all__ = ["fista", "ista", "l1_objective", "default_lam", "DEFAULT_LAM_FRACTION", "DEFAULT_LAM_RULE",
           "DEFAULT_NUM_ITER"]

#: Default λ of :func:`fista`/:func:`ista` as a fraction of the largest background-subtracted count.
DEFAULT_LAM_FRACTION = 0.03
#: the default λ's rule in words, as the records (``info["lam_rule"]``, the command line's defaults) give it
DEFAULT_LAM_RULE = f"{DEFAULT_LAM_FRACTION:g} × max|map − background| (xrfgpu.fista default)"
#: iterations of fista/ista, restore_stack's "fista" and the command line's --method fista when none are given
#: (the error to the truth grows after a few tens: semi-convergence, see ``num_iter`` below)
DEFAULT_NUM_ITER = 25
#: reflect padding of the proximal-gradient problems, in PSF extents (``pad=None``)
PAD_FACTOR = 4


def l1_objective(pb, x):
    """``‖h ⊛ x − (y − b)‖² + λ‖x‖₁`` without λ: returns (data term, ‖x‖₁) on the canvas."""
    xp = pb.xp
    r = pb.op.forward(x) - (pb.data - pb.canvas_background)
    return float(xp.sum(r * r)), float(xp.sum(xp.abs(x)))


def _solve(image, psf, *, lam, num_iter, nonneg, background, boundary, pad, callback, momentum, mask, start):
    num_iter = check_num_iter(num_iter)
    pb = proximal_problem(image, psf, background=background, boundary=boundary, pad=pad, mask=mask)
    return run_proximal_gradient(pb, lam=lam, num_iter=num_iter, nonneg=nonneg, momentum=momentum, callback=callback,
                                 start=start)


def _start_level(pb, start):
    """The flat start's level on the problem's scale: the map's mean above its background over its measured
    pixels (per map of a stack, (n, 1, 1)), or the given number (counts above background, a larger map's own
    when a tile of it is restored); raises on anything else."""
    xp = pb.xp
    if isinstance(start, str):
        if start != "flat":
            raise ValueError(f"start must be 'flat', 'data' or a number (counts above background), got {start!r}")
        above = pb.image - pb.background
        if pb.weights is None:
            return xp.mean(above, axis=(-2, -1), keepdims=True)
        return (xp.sum(pb.weights * above, axis=(-2, -1), keepdims=True)
                / xp.sum(pb.weights, axis=(-2, -1), keepdims=True))
    try:
        level = float(start)
    except (TypeError, ValueError):
        raise TypeError(f"start must be 'flat', 'data' or a number (counts above background), got {start!r}") from None
    if not math.isfinite(level):
        raise ValueError(f"start must be a finite number, got {start!r}")
    return level / pb.scale


def proximal_problem(image, psf, *, background, boundary, pad, mask, fill_level=None):
    """The prepared problem of :func:`fista` and :func:`ista`: iterative, missing pixels accepted, the reflect
    pad :data:`PAD_FACTOR` PSF extents by default. ``fill_level``: :func:`xrfgpu._problem.prepare`'s (a tile of
    a larger map passes the whole map's, :mod:`xrfgpu.dask`)."""
    return prepare(image, psf, background=background, boundary=boundary, pad=pad, pad_factor=PAD_FACTOR,
                   iterative=True, missing=True, mask=mask, fill_level=fill_level)


def default_lam(image, background, *, weights=None, xp, amax=None):
    """FISTA's λ where none is given: :data:`DEFAULT_LAM_FRACTION` × the largest ``|image − background|``.

    Parameters
    ----------
    image, background : array
        The map and its background, in the same units (counts above which the l1 penalty is set).
    weights : array, optional
        Pixel weights (0 at missing pixels, whose values are not read).
    xp : namespace
    amax : callable, optional
        The maximum to take (a stack's per-map maximum, :meth:`xrfgpu._problem.Problem.amax`); default the
        whole array's, as a float.

    Returns
    -------
    float or array
        λ in the map's units (one per map with a stack's ``amax``).
    """
    deviation = xp.abs(image - background)
    if weights is not None:
        deviation = weights * deviation
    return DEFAULT_LAM_FRACTION * (amax(deviation) if amax is not None else float(xp.max(deviation)))


def run_proximal_gradient(pb, *, lam=None, num_iter=DEFAULT_NUM_ITER, nonneg=True, momentum=True, callback=None,
                          start="flat"):
    """ISTA/FISTA iterations on a prepared :class:`~xrfgpu._problem.Problem`.

    ``start``: ``"flat"`` (each map's mean above its background), ``"data"`` (the map itself) or a number
    (counts above background: a tile's start is its whole map's level), see :func:`fista`.

    ``lam`` is a float, or for a stack one value per map; the step ``1/L`` and
    the threshold ``λ/L`` are per map, so every map of a stack gets the
    numbers of its single-map call.

    With ``pb.weights`` (missing pixels) the data term is
    ``‖w^½ (h ⊛ x − (y − b))‖²``: its gradient ``2 Hᵀ(w (Hx − y))`` has a
    Lipschitz constant no larger than the unweighted one (0 ≤ w ≤ 1), so the
    step is unchanged; the start fills the missing pixels from their
    neighbours (:meth:`~xrfgpu._problem.Problem.filled_data`).
    """
    num_iter = check_num_iter(num_iter)
    xp, op = pb.xp, pb.op
    weights = pb.canvas_weights
    target = pb.data - pb.canvas_background
    if lam is None:
        lam = default_lam(pb.image, pb.background, weights=pb.weights, xp=xp, amax=pb.amax)
    else:
        if isinstance(lam, (str, bytes)):  # list("auto") had been checked letter by letter ("got 'a'")
            raise TypeError(f"lam must be a number >= 0, or None for FISTA's own rule ({DEFAULT_LAM_FRACTION:g} × "
                            f"max|map − background|), got {lam!r}" + ("; 'auto' is Wiener's and Tikhonov's"
                                                                     if lam == "auto" else ""))
        values = [lam] if isinstance(lam, (int, float)) else list(lam)
        for v in values:
            try:
                ok = float(v) >= 0 and math.isfinite(float(v))
            except (TypeError, ValueError):
                raise TypeError(f"lam must be a number >= 0, got {v!r}") from None
            if not ok:
                raise ValueError(f"lam must be a finite number >= 0, got {v!r}")
        lam = pb.per_map(lam)
        if pb.scale != 1.0:
            lam = lam / pb.scale  # λ is in counts; the problem was divided by pb.scale
    # Lipschitz constant of ∇‖Hx − y‖² = 2 Hᵀ(Hx − y), per map
    lipschitz = 2.0 * op.norm_squared_bound(pb.amax)
    step = 1.0 / lipschitz
    threshold = lam / lipschitz
    if isinstance(start, str) and start == "data":
        x = xp.asarray(target, copy=True) if weights is None else pb.filled_data() - pb.canvas_background
    else:
        x = xp.zeros_like(target) + _start_level(pb, start)
    if nonneg:
        x = xp.clip(x, min=0.0)
    z = x
    t = 1.0
    for it in range(1, num_iter + 1):
        blurred = op.forward(z)
        residual = difference(blurred, target, xp=xp, out=blurred)
        if weights is not None:
            residual = residual * weights
        # ∇ = 2 Hᵀ(Hz − y): the factor 2 rides on the step (exact: a power of two)
        half_gradient = op.adjoint(residual)
        if momentum:
            t_next = (1.0 + math.sqrt(1.0 + 4.0 * t * t)) / 2.0
            beta = (t - 1.0) / t_next
            t = t_next
        else:
            beta = 0.0
        x, z = fista_step(z, half_gradient, x, 2.0 * step, threshold, beta, nonneg, xp=xp)
        if callback is not None:
            callback(it, op.crop(x) if pb.scale == 1.0 else pb.to_user_units(op.crop(x)))
    return pb.finish(x)


_DOC_PARAMS = """
    Parameters
    ----------
    image : array or numpy.ma.MaskedArray, shape (rows, cols)
        Observed map (counts). Masked entries and NaN pixels are missing
        data (see ``mask``).
    psf : array, shape (kr, kc)
        PSF in pixels of the map; normalised to unit sum.
    lam : float, optional
        Weight λ of the l1 term, in counts (the data term is a sum of squared
        counts). Default 0.03 of the largest background-subtracted count.
    num_iter : int, default 25
        Number of iterations, 1 to 10 000
        (:data:`xrfgpu._validate.MAX_NUM_ITER`). An l1 penalty on intensities regularises
        weakly, so on noisy maps the error to the truth is smallest after a
        few tens of iterations and grows after (semi-convergence): on a
        96² grains-and-veins phantom (σ = 4 px, 150 counts over 140
        background) the MSE was lowest near 20 iterations with λ ≈ 0.03 of
        the peak, 0.73 of the raw map's, and above the raw map's after 100
        (measured from the map itself, ``start="data"``). The best count
        depends on the map: :func:`xrfgpu.restore` chooses it by
        cross-validation (:func:`xrfgpu.stopping.fista_cv_iterations`).
    nonneg : bool
        Also constrain x ≥ 0 (the prox becomes a one-sided threshold).
    background : float or array
        Background (counts) subtracted from the data.
    boundary : {"reflect", "periodic"}
        Boundary model, see :mod:`xrfgpu.fft`.
    pad : int, optional
        Reflect padding per side, pixels. By default none is needed (the
        exact reflect operator, see :mod:`xrfgpu.fft`); given, FISTA runs on
        the reflect-padded canvas and crops.
    callback : callable, optional
        ``callback(iteration, estimate)``; ``estimate`` is a view.
    mask : array, shape (rows, cols), optional
        Weights in [0, 1]: 1 (True) for a measured pixel, 0 (False) for a
        missing one (dead pixel, drop-out, beam dump). The data term becomes
        ``‖w^½ (h ⊛ x − (y − b))‖²``, so missing pixels are restored from the
        measured pixels their PSF reaches. A weight: the opposite sense of
        ``numpy.ma``'s mask.

    start : {"flat", "data"} or float, default "flat"
        Where the iterations start: the map's mean above its background
        everywhere (``"flat"``), the background-subtracted map itself
        (``"data"``, the start before the fifteenth session), or a level
        in counts above background. From the map itself the first steps
        already sharpen its noise; from a flat map the early iterations are
        smooth and the error falls further before it turns: at 25 iterations
        on the 24 tuning maps of ``benchmarks/sigma_scenes.py`` (true σ,
        error to the truth over the raw map's, median / worst) 0.61 / 1.00
        against 0.78 / 1.51, and at 20 counts 0.51 / 1.93 against 1.36 /
        2.66. The minimiser is the same (the problem is convex); the count
        that is best is not.
    Returns
    -------
    restored : array, shape (rows, cols)
        Same namespace, device and working dtype as the input.
"""


def fista(image, psf, *, lam=None, num_iter=DEFAULT_NUM_ITER, nonneg=True, background=0.0, boundary="reflect", pad=None,
          callback=None, mask=None, start="flat"):
    return _solve(image, psf, lam=lam, num_iter=num_iter, nonneg=nonneg, background=background,
                  boundary=boundary, pad=pad, callback=callback, momentum=True, mask=mask, start=start)


def ista(image, psf, *, lam=None, num_iter=DEFAULT_NUM_ITER, nonneg=True, background=0.0, boundary="reflect", pad=None,
          callback=None, mask=None, start="flat"):
    return _solve(image, psf, lam=lam, num_iter=num_iter, nonneg=nonneg, background=background,
                  boundary=boundary, pad=pad, callback=callback, momentum=False, mask=mask, start=start)


fista.__doc__ = (
    """FISTA: min ``‖h ⊛ x − (y − b)‖² + λ‖x‖₁`` with momentum, O(1/k²).

    Proximal gradient steps of size ``1/L``, ``L = 2 max|H|²`` the Lipschitz
    constant of the data term's gradient, taken from the transfer function,
    with Nesterov momentum ``t_{k+1} = (1 + √(1 + 4 t_k²)) / 2``.
"""
    + _DOC_PARAMS
    + """
    References
    ----------
    A. Beck, M. Teboulle, SIAM J. Imaging Sci. 2, 183 (2009), doi:10.1137/080716542.
    J. Yang et al., J. Anal. At. Spectrom. 37, 750 (2022), doi:10.1039/d1ja00425e.

    Backends
    --------
    Any array-API namespace; the step is one fused kernel on CuPy.
"""
)

ista.__doc__ = (
    """ISTA: the same problem as :func:`fista` without momentum, O(1/k).
"""
    + _DOC_PARAMS
    + """
    References
    ----------
    A. Beck, M. Teboulle, SIAM J. Imaging Sci. 2, 183 (2009), doi:10.1137/080716542.

    Backends
    --------
    Any array-API namespace.
"""
)
