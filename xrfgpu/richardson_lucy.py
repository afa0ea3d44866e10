"""Richardson–Lucy deconvolution with a known background (Poisson maximum likelihood)."""

from __future__ import annotations

import math

import numpy as np

from ._backend import is_numpy_namespace
from ._elementwise import difference, rl_extrapolate, rl_ratio, rl_update
from ._problem import prepare
from ._validate import check_filter_epsilon, check_num_iter, require_nonnegative

__all__ = ["richardson_lucy", "poisson_divergence"]


def poisson_divergence(data, model, *, xp, weights=None):
    """Poisson I-divergence Σ w [y log(y/μ) − y + μ] (counts), with 0·log 0 = 0.

    It is minus the Poisson log-likelihood up to a constant, zero only when
    ``model == data``; Richardson–Lucy decreases it at every iteration.

    Parameters
    ----------
    data : array
        Measured counts ``y`` (≥ 0).
    model : array, same shape
        Predicted counts ``μ`` (> 0 where ``data`` > 0).
    xp : namespace
        Array-API namespace of ``data`` and ``model``.
    weights : array, same shape, optional
        Per-pixel weights ``w``, 0 at missing pixels; default 1 everywhere.

    Returns
    -------
    float
        The divergence, in counts (a Python float, copied to the host).

    References
    ----------
    Csiszár, I. (1991). Why least squares and maximum entropy? An axiomatic
    approach to inference for linear inverse problems. *Ann. Statist.* 19,
    2032–2066 (the I-divergence).
    """
    mu = xp.clip(model, min=float(xp.finfo(model.dtype).smallest_normal))
    pos = data > 0
    safe = xp.where(pos, data, xp.ones_like(data))
    term = xp.where(pos, data * xp.log(safe / mu), xp.zeros_like(data))
    if weights is not None:
        return float(xp.sum(weights * (term - data + mu)))
    return float(xp.sum(term - data + mu))


def _tv_factor(x, weight, scale, *, xp):
    """RL-TV divisor 1 − λ div(∇x / |∇x|) (Dey et al. 2006), on the canvas.

    Forward differences with a zero last difference (Neumann boundary) for
    the gradient, the matching backward differences for the divergence (its
    negative adjoint). ``scale`` sets the smoothing of |∇x| near zero (1e-3
    of the mean level).
    """
    zc = xp.zeros_like(x[..., :, :1])
    zr = xp.zeros_like(x[..., :1, :])
    gx = xp.concat([x[..., :, 1:] - x[..., :, :-1], zc], axis=-1)
    gy = xp.concat([x[..., 1:, :] - x[..., :-1, :], zr], axis=-2)
    norm = xp.sqrt(gx * gx + gy * gy + (1e-3 * scale) ** 2)
    px = gx / norm
    py = gy / norm
    div = (px - xp.concat([zc, px[..., :, :-1]], axis=-1)) + (py - xp.concat([zr, py[..., :-1, :]], axis=-2))
    # keep the divisor positive: with λ well below 1/4 it always is
    return xp.clip(1.0 - weight * div, min=0.05)


def richardson_lucy(
    image,
    psf,
    *,
    num_iter=30,
    background=0.0,
    tol=None,
    discrepancy=None,
    tv=0.0,
    accelerate=False,
    boundary="reflect",
    pad=None,
    filter_epsilon=None,
    callback=None,
    mask=None,
):
    """Richardson–Lucy restoration of a count map with a known background.

    Iterates the paper's update with the background in the denominator,

    ``x ← x · ĥ ⊛ [ y / max(h ⊛ x + b, ε) ]``,

    which is the EM algorithm for the Poisson model ``y ~ Poisson(h ⊛ x + b)``.
    The estimate stays non-negative and (for a unit-sum PSF) keeps the flux
    ``Σ x ≈ Σ (y − b)``.

    Parameters
    ----------
    image : array or numpy.ma.MaskedArray, shape (rows, cols)
        Observed map in counts (≥ 0); integer maps are converted to float32.
        Masked entries and NaN pixels are missing data: they are left out of
        the likelihood and restored from their neighbours (see ``mask``).
    psf : array, shape (kr, kc)
        Point spread function in pixels of the map; normalised to unit sum.
        May come from another namespace (it is moved to the map's).
    num_iter : int, default 30
        Maximum number of iterations, 1 to
        :data:`xrfgpu._validate.MAX_NUM_ITER` (10 000); exactly this many
        unless ``tol`` or ``discrepancy`` stops earlier.
    background : float or array
        Known background ``b`` in counts per pixel (scalar or a map of the
        image's shape). XRF maps sit on a large background (scatter,
        neighbouring lines); leaving it out biases RL.
    tol : float, optional
        Stop when the relative change of the Poisson I-divergence between two
        iterations falls below ``tol`` (e.g. 1e-4). Each check costs a few
        elementwise passes.
    discrepancy : float, optional
        Poisson discrepancy principle (Bertero et al. 2010): stop at the first
        iteration whose model ``μ = h ⊛ x + b`` satisfies
        ``2 · I-divergence(y, μ) / n_pixels ≤ discrepancy``. For Poisson
        data the expected value of the left side at the true model is close to
        1, so ``discrepancy=1.0`` stops when the model fits the data to the
        noise level and not beyond (later iterations fit the noise).
    tv : float
        Weight λ of the total-variation term (RL-TV); 0 switches it off.
        Dimensionless (the TV gradient is scale free); 0.001–0.01 is typical.
    accelerate : bool
        Biggs–Andrews vector extrapolation: fewer iterations for the same
        likelihood (each iteration costs the same).
    boundary : {"reflect", "periodic"}
        Boundary model, see :mod:`xrfgpu.fft`.
    pad : int, optional
        Reflect padding per side, pixels. By default none is needed: the
        exact reflect operator (:mod:`xrfgpu.fft`: separable, DCT or extended engine)
        keeps the unknowns on the map. Given, RL runs on the reflect-padded
        canvas with the scene beyond the map as unknowns too, and crops.
    filter_epsilon : float, optional
        Guard ε > 0 of the division, counts; default 1e-6 of the mean count.
    mask : array, shape (rows, cols), optional
        Weights in [0, 1]: 1 (True) for a measured pixel, 0 (False) for a
        missing one (dead pixel, detector drop-out, beam dump). Missing
        pixels are left out of the Poisson likelihood — the weighted EM
        update ``x ← x · ĥ ⊛ [w y / (h ⊛ x + b)] / (ĥ ⊛ w)`` — and are
        restored from the measured pixels their PSF reaches. Note the sense:
        a weight, the opposite of ``numpy.ma``'s mask. ``None`` (default)
        with no NaN or masked pixel runs the unweighted update.
    callback : callable, optional
        ``callback(iteration, estimate, divergence)`` after every iteration;
        ``estimate`` is a view of the current map (do not keep it) and
        ``divergence`` the I-divergence of the model at this iteration's
        forward projection (None unless ``tol`` or ``discrepancy`` is set).

    Returns
    -------
    restored : array, shape (rows, cols)
        Same namespace, device and working dtype as the input.

    Raises
    ------
    ValueError
        Infinite values, negative counts, all-zero map, bad PSF, PSF larger
        than map, every pixel missing, ``num_iter`` outside [1, 10 000],
        ``filter_epsilon`` not a finite number > 0, a map that is not 2-D
        (a length-1 axis: the message gives the index that removes it).
    TypeError
        ``image`` or ``psf`` not an array (an h5py dataset, a list: the
        message says what to pass), a complex map.

    Notes
    -----
    Maps whose magnitude lies outside 2**±40 (near the float32 maximum, or
    subnormal) are divided by a power of two before iterating and
    multiplied back after; RL is equivariant under this exact rescaling.

    Each iteration costs one forward and one adjoint blur (two real FFT
    pairs, or for a separable PSF on NumPy two pairs of 1-D line
    convolutions) plus fused elementwise passes (:mod:`xrfgpu._elementwise`). The TV variant
    divides the correction by ``1 − λ div(∇x/|∇x|)`` (Dey et al. 2006).
    Acceleration follows Biggs & Andrews (1997): the next point is
    ``x_k + α (x_k − x_{k−1})`` with ``α = ⟨g_{k−1}, g_{k−2}⟩ / ⟨g_{k−2}, g_{k−2}⟩``
    clipped to [0, 1], ``g`` being the change made by the last RL step.

    References
    ----------
    W. H. Richardson, J. Opt. Soc. Am. 62, 55 (1972), doi:10.1364/JOSA.62.000055.
    L. B. Lucy, Astron. J. 79, 745 (1974), doi:10.1086/111605.
    M. Bertero et al., Inverse Problems 26, 105004 (2010), doi:10.1088/0266-5611/26/10/105004.
    D. S. C. Biggs, M. Andrews, Appl. Opt. 36, 1766 (1997), doi:10.1364/AO.36.001766.
    N. Dey et al., Microsc. Res. Tech. 69, 260 (2006), doi:10.1002/jemt.20294.
    J. Yang, Z. Zhang, Q. Cheng, J. Anal. At. Spectrom. 37, 750 (2022), doi:10.1039/d1ja00425e.

    Examples
    --------
    >>> import numpy as np
    >>> from xrfgpu import psf, richardson_lucy
    >>> rng = np.random.default_rng(0)
    >>> truth = np.zeros((64, 64)); truth[20:40, 30:34] = 100.0
    >>> h = psf.gaussian(25, sigma=3.0)
    >>> from scipy.ndimage import convolve
    >>> counts = rng.poisson(convolve(truth, h, mode="reflect") + 20.0)
    >>> restored = richardson_lucy(counts, h, num_iter=50, background=20.0)
    >>> restored.shape, restored.dtype
    ((64, 64), dtype('float32'))

    Backends
    --------
    Any array-API namespace (NumPy, CuPy with fused CUDA kernels, array_api_strict).
    """
    num_iter = check_num_iter(num_iter)
    filter_epsilon = check_filter_epsilon(filter_epsilon)
    pb = prepare(image, psf, background=background, boundary=boundary, pad=pad, iterative=True,
                 missing=True, mask=mask)
    require_nonnegative(pb.image, xp=pb.xp, what="Richardson-Lucy")
    return run_richardson_lucy(pb, num_iter=num_iter, tol=tol, discrepancy=discrepancy, tv=tv,
                               accelerate=accelerate, filter_epsilon=filter_epsilon, callback=callback)


def run_richardson_lucy(pb, *, num_iter, tol=None, discrepancy=None, tv=0.0, accelerate=False,
                        filter_epsilon=None, callback=None, init=None, level=None):
    """The RL iterations on a prepared :class:`~xrfgpu._problem.Problem`.

    A stack problem (n, rows, cols) runs all maps at once with per-map
    scalars (guard, start value, acceleration weight), giving each map the
    numbers of its single-map call; the stopping rules and the callback are
    per map, so they need a single map.

    ``level`` (mean count level: sets the default guard ε and the TV
    smoothing) and ``init`` (the constant start value) default to the values
    derived from ``pb.image``; a tile of a larger map passes the whole map's
    values (:mod:`xrfgpu.dask`) so that it iterates exactly as the whole map.
    Like ``filter_epsilon`` they are in the caller's units (divided here by
    ``pb.scale``).

    With ``pb.weights`` (missing pixels) it runs the weighted EM update;
    without, the plain one, unchanged.
    """
    num_iter = check_num_iter(num_iter)
    filter_epsilon = check_filter_epsilon(filter_epsilon)
    tv = float(tv)
    if tv < 0 or not math.isfinite(tv):
        raise ValueError(f"tv must be a finite weight >= 0, got {tv}")
    if tol is not None and not float(tol) > 0:
        raise ValueError(f"tol must be > 0, got {tol}")
    if discrepancy is not None and not float(discrepancy) > 0:
        raise ValueError(f"discrepancy must be > 0, got {discrepancy}")
    xp, op = pb.xp, pb.op
    track = tol is not None or discrepancy is not None
    if pb.batch and (track or callback is not None):
        raise ValueError("tol, discrepancy and callback stop or report per map: restore the maps one at a time")
    if pb.weights is not None:
        return _run_weighted(pb, num_iter=num_iter, tol=tol, discrepancy=discrepancy, tv=tv, accelerate=accelerate,
                             filter_epsilon=filter_epsilon, callback=callback, init=init, level=level)
    if pb.scale != 1.0:
        # user values in counts; the problem was divided by pb.scale
        level = None if level is None else level / pb.scale
        init = None if init is None else init / pb.scale
        filter_epsilon = None if filter_epsilon is None else filter_epsilon / pb.scale

    if level is None:
        level = pb.mean(pb.image)
    eps = float(filter_epsilon) if filter_epsilon is not None else 1e-6 * pb.largest(level, 1e-30)
    if init is None:
        init = pb.largest(level - pb.mean(pb.background), 1e-3 * level, 1e-30)
    from . import _gpu_rl

    if _gpu_rl.applies(pb, tv=tv, track=track, callback=callback):
        # CuPy with an exact reflect engine: fixed buffers and one CUDA graph per iteration (xrfgpu._gpu_rl)
        return _gpu_rl.run(pb, num_iter=num_iter, eps=eps, init=init, accelerate=accelerate)
    x = xp.ones(tuple(pb.image.shape[:-2]) + op.canvas_shape, dtype=pb.image.dtype, device=_device(pb.image)) * init
    return _iterate(pb, x, num_iter=num_iter, eps=eps, tv=tv, level=level, accelerate=accelerate,
                    callback=callback, tol=tol, discrepancy=discrepancy)


#: A missing pixel (or one of weight below this) whose share ``hᵀw`` of its PSF's weight on measured pixels is
#: below this is *barely seen*: after each update it is pulled toward the PSF-weighted mean of the other pixels
#: around it, the more the less it is seen (:meth:`WeightedCorrection.fill`).
BARELY_SEEN_SHARE = 0.1


class WeightedCorrection:
    """The weighted EM correction ``hᵀ(w r) / hᵀ w`` of a problem with missing pixels; 1 where ``hᵀ w`` ≤ 10⁻⁶.

    **Barely seen pixels.** A missing pixel (weight 0) whose share ``s = hᵀw`` is below
    ``τ`` = :data:`BARELY_SEEN_SHARE` sits deep in a hole or between lost lines. Its EM correction is the average
    ratio of the few measured pixels its PSF's tail reaches, at which it weighs almost nothing: the data hardly
    identify it (the likelihood rises as such a pixel grows until its tail explains those pixels' noise), and
    the iteration grew it without bound — on the HXN Fe map with a 20 × 20 hole at σ 1.5 px and the 413
    cross-validated accelerated iterations a hole pixel reached 10995 where the map's largest value is 19.
    :meth:`fill` blends, after every update, such a pixel's new value ``x'`` with ``F``, the PSF-weighted mean
    ``hᵀ(g x') / hᵀg`` of the new values of the pixels that are measured or well seen (``g`` = 1 there;
    normalised convolution of the estimate, Knutsson & Westin 1993): ``κ x' + (1 − κ) F`` with
    ``κ = min(1, max(w, s / τ))`` (``w`` the pixel's own weight: a pixel of weight 10⁻⁹ is as barely seen as a
    missing one, so the rule is continuous in the weights).
    Where no such pixel reaches it, ``F`` is its previous value, so the step is the EM step damped by ``κ``
    (the EM step of the complete data with the missing counts imputed, scaled). Deep in a hole (κ → 0) the
    pixel follows its neighbours and cannot grow; at ``s`` near ``τ`` it follows its data. A measured pixel of
    weight 1 (or of share ≥ τ), however isolated, keeps its EM step and explains its own count. Measured (docs/algorithms.md, "Missing pixels"): the HXN hole's
    largest value 10995 → 91 (the restored measured pixels' 120).

    Deep inside a hole the measured pixels hold a small share ``hᵀ w`` of a pixel's PSF weight, and the
    correction is the ratio of two small sums. A float32 blur computes each with an absolute error of about
    5e-7 (the FFT's rounding is relative to the largest value of the line, not to the sum), so at a share of
    4e-5 the float32 and float64 restorations of the HXN Fe map with a 4 × 30 hole differed by 2.6 % of the
    map's maximum there after 5 iterations, and tiles from the whole map by 2.9 %. For float32 maps both sums
    are therefore taken by the same blur in float64 (the same engine and lines; the sums of positive terms are
    then accurate to the inputs' rounding at any share), and the correction comes back in float32.

    Parameters
    ----------
    pb : xrfgpu._problem.Problem
        A single map with ``weights``; ``pb.op`` its blur.
    """

    def __init__(self, pb):
        xp, op = pb.xp, pb.op
        self.xp, self.dtype = xp, pb.image.dtype
        self.own = xp.isdtype(self.dtype, xp.float32)  # a float64 blur of its own (float64 maps: pb.op itself)
        self.work = xp.float64 if self.own else self.dtype
        self.op = op
        if self.own:
            from .fft import Convolution

            psf = xp.astype(pb.psf, xp.float64)
            if op.engine == "separable":  # the float32 PSF's own factors (float64), an outer product to 1e-16
                u, v = op._factors  # (kr,), (kc,), or one row per map of a stack
                psf = xp.asarray(u[..., :, None] * v[..., None, :])
            self.op = Convolution(psf, op.shape, boundary=op.boundary, pad=op.pad if op.engine == "padded" else None,
                                  iterative=True, engine=op.engine, separable_reach=op.separable_reach)
        weights = xp.astype(pb.canvas_weights, self.work)  # embedded once: the normaliser and κ read it
        normaliser = self._adjoint(weights)
        self.seen = normaliser > 1e-6
        self._ones = xp.ones_like(normaliser)  # made once, not per iteration
        self.normaliser = xp.where(self.seen, normaliser, self._ones)
        # NumPy: the unseen pixels of the quotient are set in place (the same values as the lines below,
        # without the where's third map-sized array)
        self._numpy = is_numpy_namespace(xp)
        self._unseen = ~self.seen if self._numpy else None
        # the barely seen pixels: κ = min(1, max(w, s / τ)) < 1, blended with their other neighbours' mean
        self._kappa = None
        kappa = xp.clip(xp.maximum(xp.clip(normaliser, min=0.0) / BARELY_SEEN_SHARE, weights), max=1.0)
        barely = kappa < 1.0
        if bool(xp.any(barely)):
            self._barely = barely
            self._kappa = kappa
            self._source = xp.astype(~barely, self.work)
            reach = self._adjoint(self._source)
            self._reached = reach > 1e-6
            self._reach = xp.where(self._reached, reach, xp.ones_like(reach))

    def _adjoint(self, a):
        if not self.own:
            return self.op.adjoint(a)
        self.op.forget_scratch()  # its own blur: no canvas kept, nor read from another call
        try:
            return self.op.adjoint(a)
        finally:
            self.op.forget_scratch()

    def __call__(self, weighted_ratio):
        """The correction on the canvas, in the map's dtype, from ``w · ratio`` on the canvas."""
        xp = self.xp
        total = self._adjoint(xp.astype(weighted_ratio, self.work))
        if self._numpy:
            quotient = np.divide(total, self.normaliser)
            np.copyto(quotient, 1.0, where=self._unseen)
            return quotient.astype(self.dtype, copy=False)
        return xp.astype(xp.where(self.seen, total / self.normaliser, self._ones), self.dtype)

    def fill(self, x, previous):
        """``x`` (the canvas iterate after an update) with each barely seen pixel set to ``κ x + (1 − κ) F``.

        ``F = hᵀ(g x) / hᵀg``, ``g`` = 1 at the measured and well-seen pixels, where such a pixel reaches;
        ``previous`` (the iterate the update started from) elsewhere. ``κ = min(1, max(w, s / τ))``
        (:data:`BARELY_SEEN_SHARE`).
        The sums and the blend are taken in the correction's working dtype (float64 for float32 maps). ``x``
        itself, bit for bit, at every other pixel, and when there is no barely seen pixel.

        Parameters
        ----------
        x, previous : array, the canvas's shape
            The updated iterate and the one before the update (map units divided by the problem's scale).

        Returns
        -------
        array
            ``x``'s dtype.
        """
        if self._kappa is None:
            return x
        xp = self.xp
        new = xp.astype(x, self.work, copy=False)  # no copy per iteration where x is already in the work dtype
        mean = self._adjoint(new * self._source) / self._reach
        anchor = xp.where(self._reached, mean, xp.astype(previous, self.work, copy=False))
        blend = self._kappa * new + (1.0 - self._kappa) * anchor
        return xp.where(self._barely, xp.astype(blend, x.dtype), x)


def _run_weighted(pb, *, num_iter, tol, discrepancy, tv, accelerate, filter_epsilon, callback, init, level):
    """RL with missing pixels: ``x ← x · ĥ ⊛ [w y / max(h ⊛ x + b, ε)] / (ĥ ⊛ w)``.

    The EM algorithm for ``y_i ~ Poisson((h ⊛ x + b)_i)`` observed only where
    ``w_i = 1``: Shepp & Vardi's EM (IEEE Trans. Med. Imaging 1, 113 (1982))
    with the rows of the missing pixels taken out of the blur matrix. Pixels whose
    normaliser ``ĥ ⊛ w`` vanishes (a hole wider than the PSF) see no data
    and keep their value. A stack (:func:`xrfgpu.restore_stack`) runs every map with
    its own weights and its own level (an (n, 1, 1) array), each map's numbers those of
    its single-map call.
    """
    xp, op = pb.xp, pb.op
    s = pb.scale
    # each map's mean over its measured pixels ((n, 1, 1) for a stack)
    level = level / s if level is not None else pb.measured_mean()
    init = None if init is None else init / s
    # (pb.largest: max of floats for one map, elementwise per map for a stack)
    eps = filter_epsilon / s if filter_epsilon is not None else 1e-6 * pb.largest(level, 1e-30)
    if init is None:
        init = pb.largest(level - pb.mean(pb.background), 1e-3 * level, 1e-30)
    x = xp.ones(tuple(pb.image.shape[:-2]) + op.canvas_shape, dtype=pb.image.dtype, device=_device(pb.image)) * init
    return _iterate(pb, x, num_iter=num_iter, eps=eps, tv=tv, level=level, accelerate=accelerate,
                    callback=callback, tol=tol, discrepancy=discrepancy)


def _iterate(pb, x, *, num_iter, eps, tv, level, accelerate, callback, tol, discrepancy):
    """The RL iterations from the canvas estimate ``x``, plain or (with ``pb.weights``) weighted.

    Without missing pixels the update is ``x · hᵀ[y / max(h ⊛ x + b, ε)]``;
    with them each ratio is multiplied by the pixel's weight and the
    correction divided by ``hᵀ w`` where that is positive (elsewhere the
    pixel keeps its value; :class:`WeightedCorrection`). ``eps``, ``level`` and ``x`` are in the
    problem's units (divided by ``pb.scale``); the callback receives the
    estimate and the Poisson divergence in the caller's units, and the
    discrepancy ``2 KL / n`` counts the measured pixels.
    """
    xp, op, s = pb.xp, pb.op, pb.scale
    y, b = pb.data, pb.canvas_background
    w_map = pb.weights
    if w_map is None:
        n_data = pb.image.shape[-1] * pb.image.shape[-2]
    else:
        n_data = float(xp.sum(w_map))
        w = pb.canvas_weights
        weighted = WeightedCorrection(pb)
    track = tol is not None or discrepancy is not None
    previous_div = None
    x_prev = None
    g1 = g2 = None
    for it in range(1, num_iter + 1):
        point = _extrapolation_point(pb, x, x_prev, g1, g2, accelerate)  # x_prev is free from here on
        blurred = op.forward(point)
        divergence = None
        if track:
            divergence = s * poisson_divergence(pb.image, op.crop(blurred) + pb.background, xp=xp, weights=w_map)
        ratio = rl_ratio(y, blurred, b, eps, xp=xp)
        if w_map is None:
            correction = op.adjoint(ratio)
        else:
            correction = weighted(ratio * w)
        if tv > 0:
            # TV is a prior on the map: computed there and extended by the boundary rule, so the
            # mirror canvas gives the numbers of the DCT engine
            correction = correction / op.embed(_tv_factor(op.crop(point), tv, level, xp=xp))
        new = rl_update(point, correction, xp=xp)
        if w_map is not None:
            new = weighted.fill(new, point)
        if accelerate:
            g2, g1 = g1, difference(new, point, xp=xp, out=g2)  # the oldest change's memory is reused
            x_prev = x
        x = new
        if callback is not None:
            estimate = op.crop(x) if s == 1.0 else pb.to_user_units(op.crop(x))
            callback(it, estimate, divergence)
        if discrepancy is not None and 2.0 * divergence / n_data <= float(discrepancy):
            break
        if tol is not None:
            if previous_div is not None and abs(previous_div - divergence) <= float(tol) * abs(divergence):
                break
            previous_div = divergence
    return pb.finish(x)


def _extrapolation_point(pb, x, x_prev, g1, g2, accelerate):
    """Where the next RL step starts: ``x``, or with acceleration, once two changes exist,
    Biggs–Andrews' ``max(x + α (x − x_prev), 0)`` (``x_prev`` is overwritten)."""
    if accelerate and g2 is not None:
        alpha = pb.clip01(pb.inner(g1, g2) / (pb.inner(g2, g2) + 1e-300))
        return rl_extrapolate(x, x_prev, alpha, xp=pb.xp)
    return x


def _device(x):
    from ._backend import array_device

    return array_device(x)
