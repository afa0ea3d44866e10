"""Joint restoration of an element stack: a sharp, high-count map guides the edges of the weak ones.

A micro-XRF scan gives several element maps of one area, each blurred by its
own spot (polychromatic optics focus low-energy lines worse) and each with its
own count level. Restoring every map alone throws away the strongest prior a
scan has: the minerals' boundaries are shared. This module restores the weak
maps with Richardson–Lucy and a *directional total variation* (dTV) penalty
whose directions come from a well-resolved guide map (Ehrhardt & Betcke 2016):

``R(x) = Σ_p | P_p ∇x(p) |``,  ``P_p = I − γ ξ_p ξ_pᵀ``,
``ξ = ∇v / sqrt(|∇v|² + η²)``,

with ``v`` the guide (restored on its own, then smoothed by a small Gaussian),
``η`` the edge parameter set from the guide's gradient noise and
``0 < γ < 1``. Where the guide is flat (``|∇v| ≪ η``) ``ξ ≈ 0`` and ``R`` is
the ordinary TV (Rudin–Osher–Fatemi); at a guide edge (``|ξ| → 1``) only the
part of ``∇x`` *along* the edge is penalised, so a jump of ``x`` across it is
(nearly) free while noise along it is smoothed. This is the structure-guided
special case of parallel level sets (Ehrhardt & Arridge 2014): it rewards
level sets of ``x`` parallel to the guide's, but unlike a coupling that pulls
``x``'s gradient towards the guide's (colour TV, Blomgren & Chan 1998; the
guided filter, He et al. 2013, which copies the guide's local linear
structure into the output) it never *creates* an edge: with ``γ < 1`` every
penalty is ≥ 0 and ``P`` only lowers the cost of a jump the data ask for. So
a guide-only feature does not appear in the weak map. A weak-only feature
(where the guide is flat) would meet plain TV, which flattens a thin one; so
each weak map's own significant edges (from its own plain RL) join its
field wherever they are stronger than the guide's (:func:`combined_field`).

Each weak map keeps its own PSF, background and Poisson likelihood. The
iteration is EM-TV (Sawatzky et al. 2013) with the directional TV: the RL
(EM) step, then a weighted dTV denoising of its result,

``z = x_k · Hᵀ[ y / (H x_k + b) ]``,
``x_{k+1} = argmin_x Σ (x − z)² / (2 x_k) + λ R(x)``,

a majorisation step of ``−log L(x) + λ R(x)`` that stays stable for any λ
(the one-step-late form of Green 1990 / Dey et al. 2006, tried first, made
the benchmark's Si map 2.5× worse at λ = 0.1: its divisor 1 + λ∂R nears 0).
The inner problem is solved on its dual by projected gradient (Chambolle
2004), warm-started, ten steps per outer iteration. The
maps run batched (one FFT per chunk, per-map PSF and λ) as in
:func:`xrfgpu.restore_stack`. The weight λ (dimensionless: both terms are in
counts) and the iteration count are chosen per map by Poisson-thinning
cross-validation over a grid of weights, λ = 0 included: the held-out
deviance is summed over both halves of a split (cross-fitting). A λ > 0
runs all ``max_iter`` iterations (the penalised estimate is their limit)
and is judged by its held-out deviance there, λ = 0 (plain RL) at its
early stop, and the lowest wins, so the coupling is only as strong as the
held-out counts support (:func:`joint_richardson_lucy`). A map for which
λ = 0 wins is restored exactly as alone.

The guide's field is built from its EM-TV restoration (plain isotropic TV,
``guide_tv``), not its RL: sharper edges and a cleaner flat ground put the
field's long vectors on a narrow band at the true edges, which sharpens the
weak maps' shared edges; η is still set from the guide's RL noise (a TV
restoration's flats have no gradient spread to set it from). The output's
guide map stays plain RL.

The prior creates no edge, but it can move variation that a weak map's noise
allows onto a guide-only contour (on the benchmark skarn, Si formed a plateau
inside the Fe-only inclusion's blurred outline on three of nine scenes). The
evidence gate, on by default (``guide_evidence_px="auto"``,
:func:`weak_evidence`), weights the guide's field by the significance of each
weak map's own raw-count gradient, smoothed at half that map's PSF σ, which
removes that at a cost in MSE.

Fitted maps (PyXRF, MAPS: µg/cm², normalised counts) are not counts, and
Poisson thinning needs counts. Each map therefore goes through the front
door's first step (:func:`xrfgpu.front_door.effective_counts`): a fitted map
is divided by its effective Poisson gain (:func:`xrfgpu.background.estimate_gain`),
its background is divided by the same gain (or, for ``background="auto"``,
estimated by the front door's rule in those counts), the stack is restored
in effective counts (the splits thin the rounded effective counts, as the
front door's stop does) and each map is multiplied back by its gain. The
iteration is 1-homogeneous (RL and EM-TV: ``x → c x`` for ``y, b → c y, c b``),
so the gain only matters to the cross-validation, which then chooses λ and
the stop on fitted maps as on counts. A map whose gain cannot be measured
(flat) keeps the fixed :data:`NONCOUNT_WEIGHT` and :data:`NONCOUNT_ITER` in
its own units, and the record says so.

On a smooth weak map the dTV's limit is a cartoon of flat terraces
(staircasing) whose fine error the held-out counts barely see, so the
cross-validation also tries the dTV's Huber form (quadratic below a
threshold δ set from the map's own noise; ``huber_weights``): it keeps
gradations smooth and jumps linear. It may only replace a dTV weight that
has already beaten plain RL, so a smoother never switches the coupling on;
so the Huber candidates run only for those maps, after the plain ones.

Missing pixels (NaN, ``mask=``, masked arrays) are left out of every
likelihood: the EM step is the weighted one of :func:`xrfgpu.richardson_lucy`
(``z = x_k · Hᵀ[w y / (H x_k + b)] / Hᵀw``, Shepp & Vardi 1982) and the
denoising weight ``x_k / Hᵀw`` (``Hᵀw`` floored at :data:`MISSING_SHARE_FLOOR`),
so where the data see a pixel less the prior decides more, and inside a hole
the dTV fills it along the guide's edges. The cross-validation scores
measured pixels only; the estimators (gain, background, the guide's check,
the evidence gate) see each missing pixel as its nearest measured one, as the
front door's do.

An opt-in iteratively reweighted dTV (``reweight_every``,
:func:`reweighting_factors`; Candès, Wakin & Boyd 2008) approximates a
non-convex log penalty on ``|P∇x|``. Plain TV charges a thin bar of fixed
integral its contrast times its sides, which falls as the bar widens; the
log penalty is nearly indifferent to the contrast. On a bar alone it keeps
the bar higher and narrower than TV, but on the benchmark skarn it did not
lower Si's error (the Si-only vein stays as wide as plain RL makes it: the
likelihood, not the prior, leaves its width undecided), so it is off by
default.

References
----------
M. J. Ehrhardt, M. M. Betcke, "Multicontrast MRI reconstruction with
structure-guided total variation", SIAM J. Imaging Sci. 9, 1084 (2016),
doi:10.1137/15M1047325 (directional TV).
M. J. Ehrhardt, S. R. Arridge, "Vector-valued image processing by parallel
level sets", IEEE Trans. Image Process. 23, 9 (2014), doi:10.1109/TIP.2013.2277775.
E. J. Candès, M. B. Wakin, S. P. Boyd, "Enhancing sparsity by reweighted ℓ1
minimization", J. Fourier Anal. Appl. 14, 877 (2008), doi:10.1007/s00041-008-9045-x.
P. Blomgren, T. F. Chan, "Color TV: total variation methods for restoration
of vector-valued images", IEEE Trans. Image Process. 7, 304 (1998), doi:10.1109/83.661180.
K. He, J. Sun, X. Tang, "Guided image filtering", IEEE Trans. Pattern Anal.
Mach. Intell. 35, 1397 (2013), doi:10.1109/TPAMI.2012.213.
A. Sawatzky, C. Brune, T. Kösters, F. Wübbeling, M. Burger, "EM-TV methods for
inverse problems with Poisson noise", Lecture Notes in Math. 2090, 71 (2013),
doi:10.1007/978-3-319-01712-9_2.
A. Chambolle, "An algorithm for total variation minimization and applications",
J. Math. Imaging Vis. 20, 89 (2004), doi:10.1023/B:JMIV.0000011325.36760.1e.
P. J. Green, "Bayesian reconstructions from emission tomography data using a
modified EM algorithm", IEEE Trans. Med. Imaging 9, 84 (1990), doi:10.1109/42.52985.
N. Dey et al., Microsc. Res. Tech. 69, 260 (2006), doi:10.1002/jemt.20294.
J. Leiner, B. Duan, L. Wasserman, A. Ramdas, J. Am. Stat. Assoc. (2023),
doi:10.1080/01621459.2023.2270748 (data fission: Poisson thinning).
L. Breiman, J. H. Friedman, R. A. Olshen, C. J. Stone, Classification and
Regression Trees (Wadsworth, 1984), §3.4.3 (the one-standard-error rule).
T. Hastie, R. Tibshirani, J. Friedman, The Elements of Statistical Learning,
2nd ed. (Springer, 2009), §7.10, doi:10.1007/978-0-387-84858-7.
J. Yang, Z. Zhang, Q. Cheng, J. Anal. At. Spectrom. 37, 750 (2022),
doi:10.1039/d1ja00425e (the skarn: σ 40, 50, 80 µm for Fe, Ca, Si).
P. J. Huber, "Robust estimation of a location parameter", Ann. Math. Stat.
35, 73 (1964), doi:10.1214/aoms/1177703732 (the Huber function).
L. A. Shepp, Y. Vardi, "Maximum likelihood reconstruction for emission
tomography", IEEE Trans. Med. Imaging 1, 113 (1982), doi:10.1109/TMI.1982.4307558
(the EM step; with missing pixels, their rows left out of the blur matrix).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np

from ._backend import array_device, array_namespace, is_numpy_namespace, to_numpy
from ._elementwise import dtv_denoise_cuda, dtv_denoise_numpy, rl_ratio, rl_update
from ._problem import Problem, as_namespace, check_positive_int
from ._validate import as_image, is_count_map, require_nonnegative
from .stopping import refuse_counts_beyond_split, split_counts

__all__ = [
    "joint_richardson_lucy",
    "guide_field",
    "guide_structure",
    "directional_tv",
    "combined_field",
    "weak_evidence",
    "reweighting_factors",
    "JointFallbackWarning",
    "DEFAULT_WEIGHTS",
]

#: Weights λ tried by the cross-validation (0 = plain RL).
DEFAULT_WEIGHTS = (0.0, 0.01, 0.02, 0.03, 0.05, 0.1)
#: Weights λ of the Huber-dTV also tried by the cross-validation (smooth-friendly: quadratic below δ).
DEFAULT_HUBER_WEIGHTS = (0.1, 0.2, 0.4)
#: The Huber threshold δ as a multiple of the gradient noise of each weak map's own plain RL
#: (:func:`_own_gradient_noise`, map units per pixel).
HUBER_NOISE_FACTOR = 1.0
#: The record's note (``huber_candidates``) on a map whose Huber-dTV candidates the cross-validation skipped.
HUBER_SKIPPED = "skipped: plain RL beat every dTV weight"
#: Weight used on a fitted map whose effective Poisson gain cannot be measured (no thinning possible).
NONCOUNT_WEIGHT = 0.03
#: Iterations of such a map (as :func:`xrfgpu.restore`'s fixed count).
NONCOUNT_ITER = 30
#: The evidence gate's smoothing σ as a fraction of each weak map's PSF σ (``guide_evidence_px="auto"``):
#: on the benchmark skarn ½ of Si's 16 px is the 8 px at which the gate was measured.
GATE_PSF_FRACTION = 0.5
#: Smallest smoothing σ of the gate (pixels), for maps whose PSF is a pixel or less.
GATE_MIN_PX = 0.5
#: Weight λ of the plain TV in the EM-TV restoration of the guide that the direction field is built
#: from (``guide_tv``); the output's guide map stays plain RL.
GUIDE_TV_WEIGHT = 0.1
#: With missing pixels, the least share ``hᵀw`` of a pixel's PSF weight on measured pixels that the EM-TV
#: weight ``x / hᵀw`` divides by (:func:`_run_guided_rl`): a pixel that the data see less than this is
#: weighted as if they saw this much, at most 4 × a fully measured pixel's weight, so that the dual step
#: ``1 / (8 λ max w)`` of the denoising, set by the largest weight of the map, stays within 4 × its usual size.
MISSING_SHARE_FLOOR = 0.25
#: With missing pixels, the least share ``hᵀw`` of a pixel's PSF weight on measured pixels at which a weak
#: map's own edges join its direction field (:func:`_member_fields`): a hole wider than the PSF's reach
#: stays flat in the map's own RL, and the borders of that flat patch are no edges of the map. On the
#: test scene of ``tests/test_joint_missing_pixels.py`` (seeds 0–5, bands of 5 and 12 lost columns) the
#: RMS error in the band, as a ratio to independent RL's, went from median 0.57 / worst 0.89 with own
#: edges everywhere to 0.53 / 0.66 at 0.5 (0.25: 0.53 / 0.71; 0.75: 0.53 / 0.66).
OWN_EDGE_MIN_SHARE = 0.5


class JointFallbackWarning(UserWarning):
    """The guide carries no usable structure: the maps were restored independently."""


# -- finite differences on the map (Neumann boundary) ------------------------------------


def _edge_zeros(x, axis, *, xp):
    """Zeros of one column (``axis=-1``) or one row (``axis=-2``) of ``x``, its dtype and device, made without
    slicing ``x``.

    The array-API loops call :func:`_gradient` and :func:`_divergence` thousands of times; on
    ``array_api_strict`` each operation costs tens of µs whatever the array's size (a slice about 50 µs, its
    index validation), so the differences are taken with ``xp.diff`` (one operation for two slices and a
    subtraction) and the edges made without slicing.
    """
    shape = list(x.shape)
    shape[axis] = 1
    return xp.zeros(tuple(shape), dtype=x.dtype, device=array_device(x))


def _gradient(x, *, xp, edges=None):
    """Forward differences with a zero last difference (Neumann), as in RL-TV.

    ``edges``: the zero column and zero row of :func:`_edge_zeros` for ``x``, made once by a caller that
    takes many gradients of arrays of one shape (None: made here).
    """
    zc, zr = edges if edges is not None else (_edge_zeros(x, -1, xp=xp), _edge_zeros(x, -2, xp=xp))
    gx = xp.concat([xp.diff(x, axis=-1), zc], axis=-1)
    gy = xp.concat([xp.diff(x, axis=-2), zr], axis=-2)
    return gx, gy


def _divergence(px, py, *, xp):
    """Backward differences: the negative adjoint of :func:`_gradient`.

    ``div_x[j] = px[j] − px[j−1]`` with ``px[−1] = px[last] = 0``: the differences of ``px`` without its last
    column, a zero column before and after (``px[0] − 0`` and ``0 − px[last−1]`` are exact).
    """
    zc, zr = _edge_zeros(px, -1, xp=xp), _edge_zeros(py, -2, xp=xp)
    dx = xp.diff(px[..., :, :-1], axis=-1, prepend=zc, append=zc)
    dy = xp.diff(py[..., :-1, :], axis=-2, prepend=zr, append=zr)
    return dx + dy


def _project(gx, gy, xix, xiy, gamma):
    """``P g = g − γ ξ (ξ · g)`` pointwise."""
    s = gamma * (xix * gx + xiy * gy)
    return gx - s * xix, gy - s * xiy


def directional_tv(image, field, *, gamma=0.9, eps=0.0, huber=0.0):
    """Directional total variation ``Σ_p H_δ(|P_p ∇x(p)|_ε)`` of a map under a guide field.

    Parameters
    ----------
    image : array, shape (rows, cols) or (n, rows, cols)
        The map ``x`` (any unit; the value has the map's unit × pixels⁰).
    field : array, shape (2, rows, cols)
        Guide directions ``ξ = (ξ_x, ξ_y)`` with ``|ξ| ≤ 1`` (:func:`guide_field`);
        zeros give the ordinary (isotropic) TV.
    gamma : float
        Coupling strength ``0 ≤ γ < 1``.
    eps : float
        Smoothing ε of the norm (map units), ``sqrt(|·|² + ε²)``.
    huber : float
        Huber threshold δ ≥ 0 (map units per pixel): ``H_δ(s) = s²/(2δ)`` for
        ``s ≤ δ`` and ``s − δ/2`` above; 0 (the default) is ``H(s) = s``, the dTV.

    Returns
    -------
    float or array
        One value, or one per map for a stack.

    Notes
    -----
    Forward differences with a zero last difference (Neumann boundary), the
    discretisation the restoration uses (Ehrhardt & Betcke 2016, eq. 2.3).
    The Huber form is quadratic (a gradient penalty, no staircases) below δ
    and the dTV above it, so a smooth gradation is not cut into flat terraces
    while a jump keeps the TV's linear cost (Huber 1964; the Huber-ROF
    model of Chambolle & Pock 2011, §6.2).

    References
    ----------
    P. J. Huber, "Robust estimation of a location parameter", Ann. Math. Stat.
    35, 73 (1964), doi:10.1214/aoms/1177703732.
    A. Chambolle, T. Pock, "A first-order primal-dual algorithm for convex
    problems with applications to imaging", J. Math. Imaging Vis. 40, 120
    (2011), doi:10.1007/s10851-010-0251-1.

    Backends
    --------
    Any array-API namespace.
    """
    xp = array_namespace(image)
    gx, gy = _gradient(image, xp=xp)
    px, py = _project(gx, gy, field[0, ...], field[1, ...], float(gamma))
    val = xp.sqrt(px * px + py * py + float(eps) ** 2)
    delta = float(huber)
    if not (delta >= 0 and math.isfinite(delta)):
        raise ValueError(f"huber must be finite and >= 0, got {huber!r}")
    if delta > 0:
        val = xp.where(val <= delta, val * val / (2.0 * delta), val - 0.5 * delta)
    if image.ndim == 3:
        return xp.sum(val, axis=(-2, -1))
    return float(xp.sum(val))


# -- the guide -------------------------------------------------------------------------


def _smooth(x, sigma, *, xp):
    """Gaussian smoothing (σ in pixels) with reflect borders; identity for σ ≤ 0."""
    if sigma <= 0:
        return x
    from .fft import Convolution
    from .psf import gaussian

    h = gaussian(None, float(sigma), xp=xp, device=array_device(x), dtype=x.dtype)
    size = min(x.shape[-2:])
    if h.shape[0] > size:
        n = size - 1 + size % 2
        h = gaussian((n, n), float(sigma), xp=xp, device=array_device(x), dtype=x.dtype)
    op = Convolution(h, tuple(x.shape), boundary="reflect")
    return op.crop(op.forward(op.embed(x)))


def _robust_sd(a, *, xp):
    """1.4826 × median absolute value (a zero-centred robust spread), on the host."""
    host = np.abs(np.asarray(to_numpy(a), dtype=np.float64)).ravel()
    return 1.4826 * float(np.median(host))


def guide_field(guide, *, smoothing_px=1.0, eta=None, eta_factor=3.0):
    """Normalised gradient field ``ξ = ∇v / sqrt(|∇v|² + η²)`` of a guide map.

    Parameters
    ----------
    guide : array, shape (rows, cols)
        The guide (usually the independently restored high-count map).
    smoothing_px : float
        σ of the Gaussian applied to the guide first, pixels (noise in the
        guide becomes noise in the directions).
    eta : float, optional
        Edge parameter η in guide units per pixel. Default
        ``eta_factor × s``, with ``s`` the robust spread
        (1.4826 × median |·|) of the smoothed guide's gradient components:
        in a map where edges cover less than half the pixels this is the
        gradient noise, so ``|ξ|`` is small on noise and near 1 on edges
        well above it.
    eta_factor : float
        Multiple of the gradient noise used for the default η.

    Returns
    -------
    field : array, shape (2, rows, cols)
        ``(ξ_x, ξ_y)``, ``|ξ| < 1``.
    eta : float
        The η used.

    Raises
    ------
    ValueError
        Not a 2-D map, non-finite values, a flat guide (η would be 0).

    References
    ----------
    M. J. Ehrhardt, M. M. Betcke, SIAM J. Imaging Sci. 9, 1084 (2016), doi:10.1137/15M1047325.

    Backends
    --------
    Any array-API namespace.
    """
    xp = array_namespace(guide)
    v = as_image(guide, xp=xp, name="guide")
    if v.ndim != 2:
        raise ValueError(f"guide must be a 2-D map, got shape {tuple(v.shape)}")
    v = _smooth(v, float(smoothing_px), xp=xp)
    gx, gy = _gradient(v, xp=xp)
    if eta is None:
        spread = _robust_sd(xp.concat([xp.reshape(gx, (-1,)), xp.reshape(gy, (-1,))]), xp=xp)
        eta = float(eta_factor) * spread
    eta = float(eta)
    if not (eta > 0 and math.isfinite(eta)):
        raise ValueError("guide is flat: its gradient noise is 0, so no edge parameter η can be set")
    norm = xp.sqrt(gx * gx + gy * gy + eta * eta)
    return xp.stack([gx / norm, gy / norm], axis=0), eta


def combined_field(field, own, *, smoothing_px=2.0, eta_factor=3.0):
    """Direction field of a weak map: the guide's, or the map's own where its own edge is stronger.

    The directional TV only lowers the cost of a jump across an edge that
    its field knows. A feature that only the weak map has (a quartz vein in
    Si) would otherwise be penalised by the plain TV that the field leaves
    where the guide is flat. Here the map's own independent restoration
    gives a second field ``ξ_own`` (:func:`guide_field`, smoothed by
    ``smoothing_px``, η from its own gradient noise), and each pixel keeps
    whichever of ``ξ_guide`` and ``ξ_own`` is longer. ``|ξ| < 1`` still
    holds, so the prior still never creates an edge; ``ξ_own`` comes from the
    weak map alone, so it carries no guide-only feature.

    Parameters
    ----------
    field : array, shape (2, rows, cols)
        The guide's field (:func:`guide_field`).
    own : array, shape (rows, cols)
        The weak map restored on its own (same counts it will be restored from).
    smoothing_px : float
        Gaussian σ (pixels) applied to ``own`` before its gradient.
    eta_factor : float
        η of ``own`` as a multiple of its gradient noise.

    Returns
    -------
    array, shape (2, rows, cols)

    References
    ----------
    M. J. Ehrhardt, M. M. Betcke, SIAM J. Imaging Sci. 9, 1084 (2016), doi:10.1137/15M1047325.

    Backends
    --------
    Any array-API namespace.
    """
    xp = array_namespace(field)
    try:
        mine, _ = guide_field(own, smoothing_px=smoothing_px, eta_factor=eta_factor)
    except ValueError:  # a flat own map: nothing to add
        return field
    keep_guide = (field[0, ...] ** 2 + field[1, ...] ** 2) >= (mine[0, ...] ** 2 + mine[1, ...] ** 2)
    return xp.where(keep_guide, field, mine)


def _gradient_noise(y, smoothing_px, *, xp):
    """Pixel noise σ_n (diagonal Haar detail, Donoho & Johnstone 1994) and the noise σ_g of one
    gradient component of the map smoothed by a Gaussian of σ ``smoothing_px``: ``σ_n ‖D g‖₂``."""
    hh = (y[:-1, :-1] - y[:-1, 1:] - y[1:, :-1] + y[1:, 1:]) * 0.5
    noise = _robust_sd(hh, xp=xp) / 1.4826 / 0.6745
    # ‖D g‖₂ for the sampled, unit-sum Gaussian (on the host: a small 1-D sum)
    s = float(smoothing_px)
    r = int(math.ceil(4 * s)) + 1
    t = np.arange(-r, r + 1, dtype=np.float64)
    g1 = np.exp(-0.5 * (t / s) ** 2)
    g1 /= g1.sum()
    dg1 = np.diff(np.concatenate([[0.0], g1, [0.0]]))
    return noise, noise * math.sqrt(float(np.sum(dg1 ** 2)) * float(np.sum(g1 ** 2)))


def weak_evidence(counts, *, smoothing_px=8.0, factor=2.0):
    """Where a map's own counts show a gradient: ``t²/(1 + t²)``, ``t = |∇(g ⊛ y)| / (factor · σ_g)``.

    The weight of the guide's direction field on a weak map when the gate is
    on (``guide_evidence_px`` of :func:`joint_richardson_lucy`): the guide's
    edges are trusted only where the weak map's raw counts, smoothed by a
    Gaussian ``g`` of σ ``smoothing_px``, have a gradient above their noise.
    ``σ_g`` is the noise of one gradient component of ``g ⊛ y``, from the
    pixel noise of the diagonal Haar detail (as :func:`guide_structure`).
    On pure white noise ``X = |∇(g ⊛ y)|² / σ_g²`` is close to χ² with two
    degrees of freedom and the weight is ``X / (factor² + X)``, so its mean
    is ``E[X / (factor² + X)]`` (0.28 for ``factor = 2``); at an edge many
    noise deviations high it tends to 1.

    Parameters
    ----------
    counts : array, shape (rows, cols)
        The weak map's raw counts (in cross-validation, the training half).
    smoothing_px : float
        Gaussian σ before the gradient, pixels (about half the weak PSF's σ).
    factor : float
        Gradient, in noise deviations, at which the weight is ½.

    Returns
    -------
    array, shape (rows, cols)
        Weights in [0, 1).

    References
    ----------
    D. L. Donoho, I. M. Johnstone, Biometrika 81, 425 (1994), doi:10.1093/biomet/81.3.425.

    Backends
    --------
    Any array-API namespace (the noise median on the host).
    """
    xp = array_namespace(counts)
    y = as_image(counts, xp=xp, name="counts")
    _, gradient_noise = _gradient_noise(y, smoothing_px, xp=xp)
    v = _smooth(y, float(smoothing_px), xp=xp)
    gx, gy = _gradient(v, xp=xp)
    scale = (float(factor) * gradient_noise) ** 2
    if not scale > 0:  # noiseless counts: every gradient is evidence
        return xp.astype(gx * gx + gy * gy > 0, y.dtype)
    t2 = (gx * gx + gy * gy) / scale
    return t2 / (1.0 + t2)


def guide_structure(counts, *, smoothing_px=2.0, threshold=5.0):
    """Whether a raw guide map shows edges above its noise (else joint restoration falls back).

    The pixel noise ``σ_n`` is estimated from the diagonal Haar detail
    ``(y₀₀ − y₀₁ − y₁₀ + y₁₁)/2`` by its median absolute value / 0.6745
    (Donoho & Johnstone 1994), which edges barely touch. The guide smoothed
    by a Gaussian of σ ``smoothing_px`` has gradient-component noise
    ``σ_g = σ_n ‖D g‖₂`` (``D`` the forward difference, ``g`` the Gaussian);
    the guide has structure when more than ``max(20, 0.1 %)`` of its pixels
    have ``|∇(g ⊛ y)| > threshold · σ_g`` (for white noise a fraction
    ``exp(−threshold²/2)`` ≈ 4·10⁻⁶ of them would).

    Parameters
    ----------
    counts : array, shape (rows, cols)
        The raw guide map.
    smoothing_px : float
        Gaussian σ before the gradient, pixels.
    threshold : float
        Multiple of the gradient noise an edge pixel must exceed.

    Returns
    -------
    has_structure : bool
    stats : dict
        ``noise`` (σ_n, map units), ``gradient_noise`` (σ_g),
        ``edge_fraction`` (fraction of pixels above threshold), ``reason``.

    References
    ----------
    D. L. Donoho, I. M. Johnstone, Biometrika 81, 425 (1994), doi:10.1093/biomet/81.3.425.

    Backends
    --------
    Any array-API namespace (the medians on the host).
    """
    xp = array_namespace(counts)
    y = as_image(counts, xp=xp, name="guide")
    rows, cols = y.shape[-2:]
    noise, gradient_noise = _gradient_noise(y, smoothing_px, xp=xp)
    span = float(xp.max(y) - xp.min(y))
    if not span > 0:
        return False, {"noise": noise, "gradient_noise": 0.0, "edge_fraction": 0.0,
                       "reason": "guide is flat (constant)"}
    v = _smooth(y, float(smoothing_px), xp=xp)
    gx, gy = _gradient(v, xp=xp)
    mag = xp.sqrt(gx * gx + gy * gy)
    if not gradient_noise > 0:
        gradient_noise = 1e-6 * span
    above = int(xp.sum(xp.astype(mag > threshold * gradient_noise, xp.int32)))
    fraction = above / float(rows * cols)
    ok = above > max(20, 0.001 * rows * cols)
    reason = ("edges above the noise" if ok else
              f"guide is all noise: {above} pixel(s) with a gradient above {threshold:g} noise deviations")
    return ok, {"noise": noise, "gradient_noise": gradient_noise, "edge_fraction": fraction, "reason": reason}


# -- the batched iterations --------------------------------------------------------------


def _weighted_dtv_denoise(z, w, lam, xix, xiy, gamma, p, *, xp, n_inner, wmax, rw=None, huber=None):
    """``argmin_x Σ (x − z)²/(2w) + λ Σ r H_δ(|P∇x|)`` by projected gradient on the dual (Chambolle 2004).

    ``H_0(s) = s`` (the dTV); with ``huber`` = δ > 0 (map units per pixel) the Huber function
    ``H_δ(s) = s²/(2δ)`` for ``s ≤ δ``, ``s − δ/2`` above (:func:`directional_tv` with ``huber``), whose
    conjugate adds ``(δ/2)|p|²`` to the dual: its gradient is ``P∇x − δ p``.
    ``x(p) = z + λ w div(P (r p))`` with ``|p| ≤ 1`` pointwise; the dual step is
    ``1/(8 λ max w + δ)`` (‖r P∇‖² ≤ ‖∇‖² ≤ 8 for ``0 < r ≤ 1``). ``p`` (2, m, rows, cols) is
    warm-started from the previous outer iteration. ``xix, xiy`` are (rows, cols) or one
    field per map (m, rows, cols). ``rw`` (m, rows, cols), values in (0, 1], are the
    reweighting factors ``r`` of the penalty per pixel (:func:`reweighting_factors`;
    None: 1 everywhere, the plain dTV). ``huber``: None (δ = 0) or δ per map (m, 1, 1).
    Returns ``(max(x, 0), p)``. On NumPy the loop runs in
    :func:`xrfgpu._elementwise.dtv_denoise_numpy`: the same operations in place, a few maps at a
    time, bit-identical; a map with λ = 0 is not iterated there (its ``x = z + 0 · div(…)`` is ``z``;
    its ``p``, which nothing reads, stays as it was). On CuPy each dual step is two fused kernels
    (:func:`xrfgpu._elementwise.dtv_denoise_cuda`, ``kernels/dtv.cu``), the loop's operations in its
    order; :func:`_dtv_dual_iterations` is their fallback (and the engine ``"xp"``).
    """
    lam_w = lam * w
    lw = lam * wmax
    # a map with λ = 0 keeps x = z whatever p is: give it a harmless unit step
    if huber is None:
        step = xp.where(lw > 0, 1.0 / (8.0 * xp.clip(lw, min=1e-30)), 1.0) if hasattr(lw, "shape") else (
            1.0 / (8.0 * lw) if lw > 0 else 1.0)
    else:
        step = xp.where(lw > 0, 1.0 / (8.0 * xp.clip(lw, min=1e-30) + huber), 1.0)
    px, py = p
    # on CuPy: two fused kernels per dual step (kernels/dtv.cu), the same numbers as the loop below
    fused = dtv_denoise_cuda(z, lam_w, xix, xiy, gamma, px, py, step, n_inner, xp=xp, rw=rw, huber=huber)
    if fused is not None:
        x, p = fused
        return xp.clip(x, min=0.0), p
    if is_numpy_namespace(xp) and _same_dtype(z, lam_w, xix, xiy, px, py, step, rw, huber):
        # the same operations in place, bit for bit (one set of buffers per call instead of ~30 per step),
        # on the maps with λ > 0 only: at λ = 0, x = z + 0 · div(…) = z whatever p is
        lam_host = np.asarray(to_numpy(lam) if hasattr(lam, "shape") else lam, dtype=np.float64).reshape(-1)
        active = None
        if lam_host.size in (1, z.shape[0]) and np.any(lam_host == 0):
            active = np.flatnonzero(np.broadcast_to(lam_host, (z.shape[0],)) != 0)
        x, p = dtv_denoise_numpy(z, lam_w, xix, xiy, gamma, px, py, step, n_inner, rw=rw, huber=huber,
                                 active=active)
        return xp.clip(x, min=0.0), p
    return _dtv_dual_iterations(z, lam_w, xix, xiy, gamma, px, py, step, n_inner, xp=xp, rw=rw, huber=huber)


def _dtv_dual_iterations(z, lam_w, xix, xiy, gamma, px, py, step, n_inner, *, xp, rw=None, huber=None):
    """The array-API loop of :func:`_weighted_dtv_denoise`: ``(max(x, 0), (px, py))``.

    The dual ``p`` and the field ``ξ`` are held stacked, (2, …), so that each elementwise step
    acts on both components in one operation: 35 array operations per dual step instead of 50. The
    zero edges of the differences are made once per call, not per step, and the divergence slices each
    component of the stacked dual once: 37 arrays made per step on ``array_api_strict`` instead of 43
    (counted by ``Array._new``; the values are the same bits). On
    ``array_api_strict`` every operation costs tens of µs whatever the array's size, and one joint
    restoration in the tests ran about 2,000 dual steps here (27 % less time per step at 96² × 2 maps).
    The values are those of :func:`_project`, :func:`_divergence`, :func:`_gradient` and
    :func:`xrfgpu._elementwise.dtv_dual_step` applied to each component, bit for bit: ``ξ · g`` is the
    sum over the stacked axis of two terms (``ξ_x g_x + ξ_y g_y``), ``|u|²`` likewise, and every other
    operation is the same elementwise one (``tests/test_joint_dtv_engine.py`` compares the NumPy engine
    with this loop on ``array_api_strict``; ``tests/test_dtv_fused_kernels.py`` the kernels with the
    per-component expressions).
    """
    xi = xp.stack([xix, xiy])
    if xix.ndim < px.ndim:  # a field shared by the maps: (2, 1, …, rows, cols) against p's (2, m, rows, cols)
        xi = xp.reshape(xi, (2,) + (1,) * (px.ndim - xix.ndim) + tuple(xix.shape))
    p = xp.stack([px, py])
    # the zero edges of every gradient and divergence of the loop, made once per dtype and shape (the same
    # zeros :func:`_gradient` and :func:`_divergence` would make at each step)
    made_edges = {}

    def edges(shape, dtype):
        key = (str(dtype), tuple(shape))
        if key not in made_edges:
            device = array_device(z)
            made_edges[key] = (xp.zeros(tuple(shape[:-1]) + (1,), dtype=dtype, device=device),
                               xp.zeros(tuple(shape[:-2]) + (1, shape[-1]), dtype=dtype, device=device))
        return made_edges[key]

    def project(g):
        # P g = g − γ ξ (ξ · g), both components at once (_project)
        s = gamma * xp.sum(xi * g, axis=0)
        return g - s * xi

    def primal(p):
        # x = z + λw div(r P p)
        q = project(p)
        if rw is not None:
            q = rw * q
        # _divergence(q[0], q[1]) with one slice of q per component instead of two
        zc, zr = edges(q.shape[1:], q.dtype)
        div = (xp.diff(q[0, ..., :, :-1], axis=-1, prepend=zc, append=zc)
               + xp.diff(q[1, ..., :-1, :], axis=-2, prepend=zr, append=zr))
        return z + lam_w * div

    for _ in range(n_inner):
        x = primal(p)
        g = project(xp.stack(_gradient(x, xp=xp, edges=edges(x.shape, x.dtype))))
        if rw is not None:
            g = rw * g
        if huber is not None:
            # the Huber term's dual gradient −δ p, around the unchanged projected step (kernels/dtv.cu)
            g = g - huber * p
        # p ← u / max(1, |u|), u = p + s g (dtv_dual_step)
        u = p + step * g
        p = u / xp.maximum(xp.sqrt(xp.sum(u * u, axis=0)), 1.0)
    x = primal(p)
    return xp.clip(x, min=0.0), (p[0, ...], p[1, ...])


def _same_dtype(first, *others):
    """Whether every array among ``others`` (None and Python floats skipped) has ``first``'s dtype."""
    return all(not hasattr(a, "dtype") or a.dtype == first.dtype for a in others if a is not None)


def reweighting_factors(image, field, eps, *, gamma=0.9, smoothing_px=0.0):
    """Factors ``r = ε / (|P∇x| + ε)`` of iteratively reweighted directional TV (Candès et al. 2008).

    Weighting each pixel's dTV term ``|P∇x|`` by ``r`` computed from the
    previous iterate makes ``Σ r |P∇x|`` a majoriser (up to a constant and
    the factor ε) of the non-convex ``Σ ε log(|P∇x| + ε)``, whose cost of a
    jump grows only with the log of its height. Plain TV charges a thin bar
    of fixed integral ``M`` per unit length about ``2 M / w`` (its contrast
    times its two sides), which falls as the width ``w`` grows, so TV turns a
    narrow feature under a wide blur into a wide, low one; the log penalty is
    nearly indifferent to the contrast, so the likelihood decides the width.
    ``r = 1`` where ``|P∇x| ≪ ε`` (plain dTV, same λ on flat ground) and
    ``r ≈ ε / |P∇x|`` on a jump well above ε.

    Parameters
    ----------
    image : array, shape (rows, cols) or (m, rows, cols)
        The current iterate ``x`` (map units).
    field : array, shape (2, rows, cols) or (2, m, rows, cols)
        Direction field ``ξ`` of the dTV (:func:`guide_field`); zeros give plain TV.
    eps : float or array, shape (m, 1, 1)
        ε > 0, map units per pixel: gradients well below it are penalised as TV.
    gamma : float
        Coupling γ of the directional TV.
    smoothing_px : float
        σ (pixels) of a Gaussian applied to ``x`` before its gradient (0: none), so that
        single-pixel noise does not lower its own weight.

    Returns
    -------
    array, shape of ``image``
        Factors in (0, 1].

    References
    ----------
    E. J. Candès, M. B. Wakin, S. P. Boyd, "Enhancing sparsity by reweighted ℓ1
    minimization", J. Fourier Anal. Appl. 14, 877 (2008), doi:10.1007/s00041-008-9045-x.

    Backends
    --------
    Any array-API namespace.
    """
    xp = array_namespace(image)
    x = image
    if smoothing_px > 0:
        x = xp.stack([_smooth(image[i, ...], smoothing_px, xp=xp) for i in range(image.shape[0])], axis=0) \
            if image.ndim == 3 else _smooth(image, smoothing_px, xp=xp)
    gx, gy = _gradient(x, xp=xp)
    gx, gy = _project(gx, gy, field[0, ...], field[1, ...], float(gamma))
    return eps / (xp.sqrt(gx * gx + gy * gy) + eps)


def _run_guided_rl(pb, field, weights, *, num_iter, gamma, level, init, watch=None, n_inner=10, reweight=None,
                   huber=None):
    """EM-dTV on a (m, rows, cols) stack problem; ``weights`` (m, 1, 1) or float.

    Each iteration is the RL (EM) step followed by a weighted dTV denoising
    of the EM image with weights the current estimate (Sawatzky et al. 2013):
    a majorisation of the Poisson likelihood plus λ R, stable for any λ.
    ``watch(iteration, estimate_on_map)`` is called after every iteration
    (cross-validation). ``reweight = (every, eps)``: every ``every``
    iterations the dTV terms are reweighted by :func:`reweighting_factors`
    of the current estimate with ``eps`` (float or (m, 1, 1)); None: plain
    dTV. ``huber``: None, or δ per map (m, 1, 1), 0 for a map with the plain dTV
    (:func:`_weighted_dtv_denoise`). Returns the estimate on the map.

    With missing pixels (``pb.weights``) the EM step is the weighted one of
    :func:`xrfgpu.richardson_lucy` (``x · hᵀ(w r) / hᵀw``, :class:`~xrfgpu.richardson_lucy.WeightedCorrection`;
    a pixel that no measured pixel sees keeps its value) and the denoising
    weight is ``x / hᵀw`` (Sawatzky et al. 2013 with the missing rows taken out
    of the blur matrix), ``hᵀw`` floored at :data:`MISSING_SHARE_FLOOR`: where
    the data say little the prior says more, so inside a hole the dTV fills in
    along the guide's edges.
    """
    xp, op = pb.xp, pb.op
    y, b = pb.data, pb.canvas_background
    xix, xiy = field[0, ...], field[1, ...]
    eps = 1e-6 * pb.largest(level, 1e-30)
    weighted = share = fill_plain = None
    if pb.weights is not None:
        from .richardson_lucy import WeightedCorrection

        w_canvas = pb.canvas_weights
        weighted = WeightedCorrection(pb)
        # each pixel's share hᵀw of its PSF's weight that fell on measured pixels: the EM-TV weight is x / hᵀw
        # (x / hᵀ1 = x without missing pixels), floored so that a pixel deep in a hole (share → 0), which only
        # the prior decides, does not shrink every pixel's dual step
        share = op.crop(xp.where(weighted.seen, weighted.normaliser, xp.zeros_like(weighted.normaliser)))
        share = xp.clip(xp.astype(share, y.dtype), min=MISSING_SHARE_FLOOR)
        # a map at λ = 0 is plain RL: its barely seen pixels lean on their neighbours after each
        # EM step (WeightedCorrection.fill), as richardson_lucy fills them; a map with λ > 0 leaves them to its
        # dTV, whose weight there (x / hᵀw, the share floored) lets the prior fill the hole along the guide's
        # edges (the thirteenth session's first fill, applied there too, gave a 12-column hole 2.3 × the RMS
        # error, tests/test_joint_missing_pixels.py)
        if hasattr(weights, "shape"):
            fill_plain = weights == 0
            fill_plain = fill_plain if bool(xp.any(fill_plain)) else None
        else:
            fill_plain = True if float(weights) == 0 else None
    x = xp.ones(tuple(pb.image.shape[:-2]) + op.canvas_shape, dtype=y.dtype, device=array_device(y)) * init
    current = op.crop(x)
    zeros = xp.zeros_like(current)
    p = (zeros, xp.zeros_like(current))
    rw = None
    for it in range(1, num_iter + 1):
        blurred = op.forward(x)
        ratio = rl_ratio(y, blurred, b, eps, xp=xp)
        correction = op.adjoint(ratio) if weighted is None else weighted(ratio * w_canvas)
        em = rl_update(x, correction, xp=xp)
        if fill_plain is not None:  # the maps at λ = 0 (plain RL): their barely seen pixels filled as RL's
            filled = weighted.fill(em, x)
            em = xp.where(fill_plain, filled, em) if hasattr(fill_plain, "shape") else filled
        em = op.crop(em)
        if reweight is not None and it > 1 and (it - 1) % reweight[0] == 0:
            rw = reweighting_factors(current, field, reweight[1], gamma=gamma,
                                     smoothing_px=reweight[2] if len(reweight) > 2 else 0.0)
        tv_weight = current if share is None else current / share
        current, p = _weighted_dtv_denoise(em, tv_weight, weights, xix, xiy, gamma, p, xp=xp, n_inner=n_inner,
                                           wmax=pb.amax(tv_weight), rw=rw, huber=huber)
        x = op.embed(current)
        if watch is not None:
            watch(it, current)
    return xp.asarray(current, copy=True)


def _map_background(b, i):
    """Background of map ``i`` from a normalised stack background (float, (n,1,1), (r,c), (n,r,c))."""
    if hasattr(b, "shape"):
        if b.ndim == 3:
            bi = b[i, ...]
            if tuple(bi.shape) == (1, 1):
                return float(bi[0, 0])
            return bi
        return b
    return float(b)


def _restore_alone(y, h, b, *, num_iter, seed, split=None, weights=None):
    """Independent RL of one map: the front door's rule (CV stop + acceleration on counts).

    ``split`` is the map the CV stop thins: the rounded effective counts of a fitted map
    (:func:`xrfgpu.front_door.rl_iteration_count` rounds them the same way); default ``y`` itself
    when it is integer counts, else no CV (the fixed count). ``weights`` (rows, cols): 0 at missing
    pixels, which the RL and the CV stop leave out (as :func:`xrfgpu.restore` does); None: none missing.
    """
    from .stopping import cv_iterations
    from .richardson_lucy import richardson_lucy

    xp = array_namespace(y)
    if split is None and is_count_map(y, xp=xp):
        split = y
    if num_iter is None and split is not None:
        k = cv_iterations(split, h, background=b, seed=seed, mask=weights)
        return (richardson_lucy(y, h, num_iter=k, background=b, accelerate=True, mask=weights),
                {"iterations": k, "stop": "cv"})
    k = int(num_iter) if num_iter is not None else NONCOUNT_ITER
    return (richardson_lucy(y, h, num_iter=k, background=b, accelerate=True, mask=weights),
            {"iterations": k, "stop": "fixed"})


def _effective_stack(y, *, xp, gains_given=None, map_kinds=None):
    """Each map of a stack in (effective) counts, as :func:`xrfgpu.restore` takes a single map.

    :func:`xrfgpu.front_door.effective_counts` per map: a count map stays as it is (gain 1); a
    fitted or normalised map (PyXRF, MAPS) is clipped at 0 and divided by its effective Poisson
    gain (:func:`xrfgpu.background.estimate_gain`, map units per count). A map whose gain cannot be
    measured (flat) stays in its own units with gain None: it gets the fixed
    :data:`NONCOUNT_WEIGHT` and :data:`NONCOUNT_ITER`.

    Returns ``(stack, gains, records)``: the working stack, one gain (or None) per map and one dict
    per map (``map_kind``, ``kind`` with the same value for readers of earlier records, ``gain``, and the
    front door's notes: ``gain_spread`` or ``gain_note``, ``negative_fraction_clipped``, or
    ``gain_error``). ``gains_given``: one gain per map, or None per map (or for all) to measure it;
    ``map_kinds``: one :class:`xrfgpu.map_kind.MapKind` per map, or None per map (or for all) to classify it.
    """
    from ._validate import check_positive_finite
    from .front_door import GainNotMeasurableError, effective_counts

    if gains_given is None:
        gains_given = [None] * y.shape[0]
    elif len(gains_given) != y.shape[0]:
        raise ValueError(f"gain: {len(gains_given)} values for a stack of {y.shape[0]} maps")
    # a given gain that is no gain is refused here, naming its map (the front door's message names no map)
    gains_given = [None if g is None else check_positive_finite(g, f"gain of map {i}", "map units per count")
                   for i, g in enumerate(gains_given)]
    if map_kinds is None:
        map_kinds = [None] * y.shape[0]
    elif len(map_kinds) != y.shape[0]:
        raise ValueError(f"map_kind: {len(map_kinds)} values for a stack of {y.shape[0]} maps")

    maps, gains, records = [], [], []
    for i in range(y.shape[0]):
        yi = y[i, ...]
        if bool(xp.all(xp.round(yi) == yi)):  # integer values: counts, which cannot be negative
            try:
                require_nonnegative(yi, xp=xp, what="Richardson-Lucy")
            except ValueError as exc:  # which map of the stack
                raise ValueError(f"map {i} of the stack: {exc}") from None
        try:
            ei, gain, notes = effective_counts(yi, xp=xp, gain=gains_given[i], map_kind=map_kinds[i])
        except GainNotMeasurableError as exc:  # a flat fitted map stays in its own units
            gains.append(None)
            maps.append(xp.clip(yi, min=0.0))
            unmeasured = "fitted, gain not measurable: restored in its own units"
            records.append({"kind": unmeasured, "map_kind": unmeasured, "gain": None, "gain_error": str(exc)})
            continue
        except ValueError as exc:  # nothing to restore, or a gain given for a count map: named
            raise ValueError(f"map {i}: {exc}") from None
        kind = notes.pop("map_kind")  # counts, scaled integers (xrfgpu.map_kind.classify_map) or fitted
        if kind.startswith("fitted"):
            kind = "fitted: restored in effective counts (map / gain), then multiplied back"
        gains.append(gain)
        maps.append(ei)
        records.append({"kind": kind, "map_kind": kind, "gain": gain, **notes})
    # count maps come back as they are (a count map with a few stray values is rounded, so it is restacked)
    if all(r["kind"] == "counts" and "stray_values_rounded" not in r for r in records):
        return y, gains, records
    return xp.stack(maps, axis=0), gains, records


def _psf_width(h):
    """RMS radius of a PSF (pixels), from its second moments on the host."""
    from .psf._gaussian import axis_variances

    var_r, var_c = axis_variances(h)
    return math.sqrt((var_r + var_c) / 2.0)


def _as_stack(stack):
    """A 3-D stack from an array or a sequence of equally shaped 2-D maps."""
    if hasattr(stack, "shape") and hasattr(stack, "dtype"):
        return stack
    if isinstance(stack, Sequence) and not isinstance(stack, (str, bytes)):
        if len(stack) == 0:
            raise ValueError("stack is empty: give at least two element maps")
        shapes = [tuple(getattr(m, "shape", np.shape(m))) for m in stack]
        if len(set(shapes)) != 1:
            raise ValueError(f"element maps have different shapes {shapes}: joint restoration needs one "
                             "pixel grid (register and crop the maps first)")
        xp = array_namespace(stack[0])
        return xp.stack([xp.asarray(m) for m in stack], axis=0)
    raise TypeError(f"stack must be an array (n, rows, cols) or a sequence of 2-D maps, got {type(stack).__name__}")


def joint_richardson_lucy(stack, psfs, *, guide="auto", background=0.0, num_iter=None, guide_iter=None, weight=None,
                          weights=DEFAULT_WEIGHTS, max_iter=400, gamma=0.9, smoothing_px=1.0, eta=None,
                          own_edges=True, own_eta_factor=2.0, guide_evidence_px="auto", guide_evidence_factor=2.0,
                          guide_tv=GUIDE_TV_WEIGHT, reweight_every=None, reweight_eps_factor=1.0,
                          reweight_smoothing_px=0.0, boundary="reflect", seed=0, cv_folds=2, gain=None,
                          huber_weights="auto", huber_factor=HUBER_NOISE_FACTOR, return_info=False, map_kind=None,
                          guide_among=None, mask=None):
    """Restore an element stack jointly: RL with a directional-TV prior set by a guide map.

    The guide map is restored alone (Richardson–Lucy, as :func:`xrfgpu.restore`);
    every other map is restored with its own PSF, background and Poisson
    likelihood by EM-TV with a directional TV whose directions are the
    guide's, taken from the guide's EM-TV restoration (``guide_tv``; see the
    module notes). The weight of the prior and the
    iteration count are chosen per map by Poisson-thinning cross-validation.

    Parameters
    ----------
    stack : array, shape (n, rows, cols), or sequence of n 2-D maps
        Element maps on one pixel grid (``n ≥ 2``): counts, or fitted /
        normalised maps (PyXRF, MAPS), which are restored in effective
        counts (see Notes). A fitted map's negative values (fit noise) are
        set to 0 and their share recorded; an integer map must not be
        negative.
    psfs : array or sequence of arrays
        One PSF per map (or one shared), pixels of the map; see
        :func:`xrfgpu.restore_stack`.
    guide : "auto" or int
        Index of the guide map. ``"auto"``: the map with the narrowest PSF
        (RMS radius), ties broken by the larger mean (effective) count, among the maps whose raw map
        shows edges above its noise (:func:`guide_structure`); where none does, the first by that
        order, and the restoration falls back to independent RL.
    guide_among : sequence of int, optional
        With ``guide="auto"``, the maps it may choose from (default: all). The command line passes
        the element maps of a file that also holds other channels (scatter, total fluorescence, a
        fitted background: MAPS's ``s_e``, ``TFY``, ``Bkgnd``), so that a channel of high counts and
        no element's edges does not guide by its mean count alone; every map is still restored.
    background : "auto", float, sequence or array
        Background in each map's own units, as in :func:`xrfgpu.restore_stack`
        (a fitted map's is divided by its gain). ``"auto"``: per map, the
        front door's rule (:func:`xrfgpu.front_door.background_from_map`:
        estimated in effective counts; 0 for a fitted map with no
        element-free area).
    num_iter : int, optional
        Iterations of the guided (weak) maps. Default: ``max_iter`` for a
        weight > 0, the cross-validated stop for a map whose weight is 0
        (restored as alone); 30 on a map whose gain cannot be measured.
    guide_iter : int, optional
        Iterations of the guide's own (accelerated) RL. Default: as
        :func:`xrfgpu.restore` (cross-validation on (effective) counts, else 30).
    weight : float or sequence of float, optional
        Prior weight λ (dimensionless, as RL-TV's ``tv``), one for all weak
        maps or one per map (the guide's entry is ignored). Default: chosen
        by cross-validation from ``weights`` on count and fitted maps,
        ``NONCOUNT_WEIGHT`` (0.03) on a map whose gain cannot be measured
        (or all maps, if the guide's cannot).
    weights : sequence of float
        Candidates for the cross-validation, λ ≥ 0.
    max_iter : int
        Most iterations the cross-validation tries, and the iterations of a
        map guided with a weight > 0 (unless ``num_iter`` is given).
    gamma : float
        Coupling ``0 ≤ γ < 1`` of the directional TV (1 would leave a jump
        across a guide edge entirely free).
    smoothing_px : float
        Gaussian σ (pixels) applied to the restored guide before its gradient.
    eta : float, optional
        Edge parameter η (guide's units per pixel); default three times the guide's
        gradient noise (:func:`guide_field`). The record's ``eta`` is in the
        guide's (effective) counts per pixel.
    own_edges : bool
        Add each weak map's own significant edges to its direction field
        (:func:`combined_field`, from its own plain RL at ``max_iter``
        iterations, or ``num_iter`` if larger), so that a
        feature only that map has is not flattened by the plain TV left
        where the guide is flat. False: the guide's field alone.
    own_eta_factor : float
        η of a weak map's own field as a multiple of its own gradient noise
        (:func:`combined_field`): an own edge at this many noise deviations
        gets ``|ξ_own|² = ½``. 2 (not the guide's 3) because a weak-only
        feature is by nature faint: on the benchmark skarn, 3 let λ = 0.1
        flatten the Si-only vein to 72 % of its RL contrast on one seed.
    guide_evidence_px : "auto", float or None
        The evidence gate: the guide's field on each weak map is weighted by
        the square root of :func:`weak_evidence`, the evidence of a gradient
        in that map's own counts smoothed by a Gaussian of this σ (pixels),
        so a guide edge where the weak map's counts show nothing (a
        guide-only feature) couples less. ``"auto"`` (the default):
        :data:`GATE_PSF_FRACTION` (½) of each weak map's own PSF σ (second
        moments), at least 0.5 px; a number: that σ for every weak map;
        None: no gate. On the benchmark skarn (nine seeds; Si: σ 16 px, so
        8 px) the gate kept the Fe-only inclusion out of Si on every seed
        (within −0.06…+0.01 counts; without it +0.11 to +1.21 on three
        seeds) at a cost of 0.01–0.08 in Si's MSE ratio to independent RL
        (docs/joint.md, "Evidence gate").
    guide_evidence_factor : float
        Gradient, in noise deviations, at which that weight is ½.
    guide_tv : float or None
        Weight λ of the plain (isotropic) TV in the EM-TV restoration of the
        guide (``num_iter`` iterations if given, else ``max_iter``) from which the direction field is
        built; η is still set from the guide's plain RL. Its edges are
        sharper and its flat ground cleaner than RL's, so the field is long
        on a narrower band at the true edges: on the benchmark skarn
        (tuning scenes, fixed λ 0.1 on the weak maps) Si's MSE ratio to
        independent RL went from 0.83 / 0.92 / 0.75 to 0.68 / 0.84 / 0.57
        and Ca's from 0.39 / 0.38 / 0.39 to 0.30 / 0.23 / 0.25 (docs/joint.md,
        "What the previous default showed"). The restored guide in the output
        stays plain RL. 0 or None: the field of the guide's plain RL (the
        previous behaviour).
    reweight_every : int, optional
        Iteratively reweighted dTV (Candès, Wakin & Boyd 2008): every this
        many iterations each weak map's dTV terms are weighted by
        :func:`reweighting_factors` of the current estimate, an approximation
        of a log penalty that is nearly indifferent to a jump's height (plain
        TV charges a thin feature its contrast times its sides, which favours
        a wide, low restoration). Also used in the cross-validation. None
        (the default): plain dTV. Off by default because it did not help on
        the benchmark skarn: at cross-validated weights (ε 4 × noise, smoothed
        2 px, every 10) Si's MSE ratio to independent RL rose on the tuning
        scenes (seed 1 0.84 → 0.86, seed 20 0.89 → 0.94; docs/joint.md,
        "Reweighted directional TV").
    reweight_eps_factor : float
        The reweighting's ε as a multiple of the gradient noise of each weak
        map's own plain RL (smoothed 2 px; the noise whose multiple is the own
        field's η): jumps well above ε cost about ε log(height).
    reweight_smoothing_px : float
        σ (pixels) of the Gaussian applied to the estimate before the
        reweighting's gradient (0: none), so that single-pixel noise does not
        make its own jumps cheap.
    boundary : {"reflect", "periodic"}
        Boundary model, see :mod:`xrfgpu.fft`.
    seed : int
        Seed of the binomial splits.
    cv_folds : int
        Folds of the cross-validation (≥ 1): each Poisson-thinning split
        gives two (train on one half and score the other, then swap), so 2
        holds every count out once; the held-out deviances are summed over
        the folds. Each fold costs one batched run.
    gain : sequence of float or None, optional
        Each map's effective Poisson gain (map units per count) where it is
        already known or measured (:func:`xrfgpu.front_door.effective_counts`,
        as the command line measures each map once); None (or a None entry)
        measures it. A count map takes 1 (or None).
    map_kind : sequence of xrfgpu.map_kind.MapKind or None, optional
        Each map's :func:`xrfgpu.map_kind.classify_map` answer where already
        had (the command line classifies each map once and passes it on);
        None (or a None entry) classifies the map where needed.
    huber_weights : "auto", sequence of float or None
        Weights λ of the Huber-dTV (the dTV with its cost quadratic below δ,
        :func:`directional_tv` with ``huber``) that the cross-validation also
        tries. ``"auto"``: :data:`DEFAULT_HUBER_WEIGHTS` (0.1, 0.2, 0.4) with the
        default ``weights``, none when ``weights`` are given; None or ``()``:
        none (the dTV alone, as before). A Huber candidate competes only
        once a dTV weight > 0 has beaten plain RL (see Notes). Not used with
        a given ``weight``.
    huber_factor : float
        The Huber threshold δ as a multiple of the gradient noise of each
        weak map's own plain RL (smoothed 2 px; map units per pixel, the
        noise whose multiple is the own field's η): gradations below it are
        smoothed quadratically instead of cut into TV terraces.
    return_info : bool
        Also return the record (dict) of what was done.
    mask : array, shape (rows, cols) or (n, rows, cols), optional
        Weights of the pixels, 1 (True) measured and 0 (False) missing, one mask for every
        map or one per map; NaN pixels and the masked entries of a NumPy masked array are
        missing too. Every likelihood leaves them out (the weighted EM step of
        :func:`xrfgpu.richardson_lucy`, whose weight in the EM-TV step becomes ``x / hᵀw``,
        :data:`MISSING_SHARE_FLOOR`), the cross-validation scores measured pixels only, and
        the estimators (gain, background, the guide's check, the evidence gate) see each
        missing pixel filled with its nearest measured one
        (:func:`xrfgpu.front_door.filled_for_estimators`), as :func:`xrfgpu.restore` does.
        Inside a hole the prior decides: the dTV fills it along the guide's edges.

    Returns
    -------
    restored : array, shape (n, rows, cols)
        In the working dtype, namespace and device of ``stack``.
    info : dict
        With ``return_info``: ``mode`` (``"joint"`` or ``"independent"``),
        ``fallback`` (None or the reason), ``guide`` (index), ``guide_how`` ("given" or the automatic
        rule), ``guide_passed_over`` (the maps the automatic choice ranked before the guide and passed
        over, each with :func:`guide_structure`'s reason), ``eta``,
        ``gamma``, ``smoothing_px``, ``own_edges``, ``guide_tv``, ``reweight`` (None, or ``every``,
        ``eps_factor``, ``smoothing_px`` and each guided map's ``eps``), ``guide_check`` (:func:`guide_structure`
        stats), ``per_map`` (per map: ``map_kind`` ("counts", scaled integers or
        fitted and restored in effective counts (:func:`xrfgpu.map_kind.classify_map`),
        or fitted with no measurable gain; the key :func:`xrfgpu.restore` and the
        command line's records use), ``kind`` (the same value, the key records
        written before ``map_kind`` was added hold, kept for readers of them),
        ``missing_pixels`` (how many of the map's pixels were missing: NaN, masked, mask 0),
        ``gain`` (map units per effective count: 1 for counts, None where it
        could not be measured) with the front door's ``gain_spread`` or
        ``gain_note`` (or ``gain_error``), ``negative_fraction_clipped``,
        ``background`` (map units, or "map") and for ``"auto"``
        ``background_source``, ``role``, ``weight``, ``weight_how``,
        ``prior`` (``"dtv"`` or ``"huber-dtv"``; ``"none"`` for a weak map restored
        at weight 0, plain RL; earlier records said ``"dtv"`` there), ``huber_delta`` (δ in map
        units per pixel, or None), ``iterations``, ``stop`` (``"cv"``: the cross-validated
        count; ``"max_iter"``: a weight > 0 without ``num_iter``, run to ``max_iter``;
        ``"fixed"``: given), ``cv_deviance``
        per candidate that ran: ``"0.1"`` a dTV weight, ``"0.1 huber"`` a Huber one;
        ``huber_candidates``: None without Huber candidates, else whether they
        ran, or :data:`HUBER_SKIPPED` on a map where plain RL beat every dTV
        weight, whose Huber candidates could not be chosen and were not run).

    Raises
    ------
    ValueError
        Fewer than two maps, maps of different shapes, a bad ``mask``, infinite values, a map
        whose every pixel is missing, maps narrower than
        :data:`xrfgpu.stack.MIN_STACK_MAP_SIDE_PX` pixels on a side (a channels-last
        stack: pass ``numpy.moveaxis(stack, -1, 0)``), a bad guide index,
        negative counts (an integer map with values < 0), an all-zero map,
        bad PSFs or options.
    TypeError
        Non-array input.

    Warns
    -----
    JointFallbackWarning
        The guide is flat or all noise (:func:`guide_structure`): every map
        is restored independently and the record says so.

    Notes
    -----
    Cross-validation: each count map ``y`` is split by binomial thinning
    into two independent Poisson halves; the batch of all weak maps × all
    candidate weights (the Huber ones in a second batch, only for the maps
    where they can be chosen) runs on one half (background halved) and at every
    checkpoint the held-out Poisson deviance of the other half under
    ``h ⊛ x + b/2`` is evaluated (in float64) away from the borders; then
    the halves swap roles (``cv_folds`` = 2: every count is held out once),
    and the deviance curves are summed. Each candidate is judged by its
    summed deviance where it will be used: λ = 0 at its lowest, a weight
    > 0 at ``max_iter``; the lowest wins, and each candidate's excess over
    it is recorded with its standard error ``sqrt(Σ μ_best log²(μ_c/μ_best))``
    (Poisson variance of the held-out counts). Until this version the
    weight used was the largest within one standard error of the lowest,
    each judged at its own lowest (the one-standard-error rule, Hastie et
    al. 2009 §7.10, the larger weight taken for the simpler model). On a
    smooth weak map (a Gaussian random field under an unrelated grain
    guide) that chose λ 0.02–0.05, whose restoration at 400 iterations had
    2.8–4.2 × the MSE of independent RL; judged at 400 iterations, λ = 0
    wins there, and on the benchmark skarn the choices and MSEs hardly
    move. A weight > 0 runs all ``max_iter`` iterations (or
    ``num_iter``): for λ > 0 the estimate is the penalised likelihood's
    minimiser, which the iterations approach, and the held-out curve cannot
    say when to stop short of it. It was trained on half the counts, whose
    noise is √2 larger against the same signal, so it turns up earlier than
    the full map's would, and stopping there adds a regularisation the full
    counts do not ask for: on one skarn scene Si at λ = 0.05 stopped at 70
    of 400 iterations (its held-out excess at 75 already above its paired
    standard error), and the Si-only vein kept 74 % of its independent-RL
    contrast instead of 87 % at 400, with a higher MSE against the truth
    (2.43 against 2.31). Earlier rules stopped at the lowest deviance, then
    at the last checkpoint within one paired standard error of it. λ = 0
    keeps its lowest (plain RL needs its early stop).

    The smooth-friendly prior: the dTV at its limit cuts a smooth weak map
    into flat terraces (staircasing), and on such a map (the real HXN Si
    map as a truth, under the HXN Fe guide) the held-out counts still
    preferred λ = 0.1, whose restoration had 1.07–1.21 × the MSE of
    independent RL. On two of three seeds its error is lower than RL's
    wherever the PSF passes more than 1 % and the excess lies beyond, where
    held-out counts can hardly see it (docs/joint.md, "Smooth weak maps"). The
    Huber-dTV candidates (``huber_weights``, δ = ``huber_factor`` × the map's
    own RL gradient noise) are quadratic below δ, so gradations stay smooth
    and jumps keep the TV's linear cost; there the held-out counts prefer
    them and the MSE is 0.87–0.95 × independent RL. But a generic smoother
    at its limit also predicts the held-out counts of a smooth map with no
    relation to the guide better than early-stopped RL while adding
    invisible detail (a Gaussian random field: 1.4 × RL's MSE), so the
    coupling itself is still decided between plain RL and the dTV: a Huber
    candidate wins only if a dTV weight > 0 has beaten λ = 0 and the Huber
    one predicts best of all. The map is then restored with that weight and count on
    all its counts (as :func:`xrfgpu.stopping.cv_iterations` does for plain
    RL). With one fold
    the split's first half trains. Because λ = 0 is a candidate, the
    coupling is switched off where every λ > 0 predicts the held-out counts
    significantly worse; such a map is then restored exactly as alone. The
    guide field is built from the guide restored on the training half, so
    the halves stay independent.

    Fitted maps: each map goes through :func:`xrfgpu.front_door.effective_counts`
    (a count map unchanged, gain 1; a fitted map clipped at 0 and divided
    by its measured gain ``g``), its background is divided by ``g``, the
    cross-validation and the guide's CV stop thin the rounded effective
    counts (as :func:`xrfgpu.front_door.rl_iteration_count` does), the
    restoration runs on the unrounded effective counts, and each map comes
    back × ``g``. Because the iteration is 1-homogeneous, a count stack
    × ``c`` gives the count stack's result × ``c`` whenever the
    cross-validation makes the same choices (the rounded effective counts
    ``round(y c / ĝ)`` are split, not ``y``, so its draws differ).

    Cost: ``cv_folds`` batched runs of (weak maps × dTV weights) maps for
    ``max_iter`` iterations at most, ``cv_folds`` more of (maps whose best
    dTV weight beat plain RL × Huber weights), then one of the weak maps. Each iteration is one
    forward and one adjoint blur plus ten dual steps of ~20 elementwise
    passes each (the projection is one fused kernel pair on CuPy; on NumPy they run in place on a
    few maps at a time, and not at all on a λ = 0 candidate), and the
    cross-validation adds one forward blur per check (every iteration up to
    20, then every 5th).

    References
    ----------
    M. J. Ehrhardt, M. M. Betcke, SIAM J. Imaging Sci. 9, 1084 (2016), doi:10.1137/15M1047325.
    M. J. Ehrhardt, S. R. Arridge, IEEE Trans. Image Process. 23, 9 (2014), doi:10.1109/TIP.2013.2277775.
    E. J. Candès, M. B. Wakin, S. P. Boyd, J. Fourier Anal. Appl. 14, 877 (2008), doi:10.1007/s00041-008-9045-x.
    A. Sawatzky et al., Lecture Notes in Math. 2090, 71 (2013), doi:10.1007/978-3-319-01712-9_2.
    A. Chambolle, J. Math. Imaging Vis. 20, 89 (2004), doi:10.1023/B:JMIV.0000011325.36760.1e.
    P. J. Huber, Ann. Math. Stat. 35, 73 (1964), doi:10.1214/aoms/1177703732 (the Huber-dTV).
    J. Leiner et al., J. Am. Stat. Assoc. (2023), doi:10.1080/01621459.2023.2270748.
    J. Yang, Z. Zhang, Q. Cheng, J. Anal. At. Spectrom. 37, 750 (2022), doi:10.1039/d1ja00425e.

    Examples
    --------
    >>> import numpy as np
    >>> from xrfgpu import phantom, psf
    >>> from xrfgpu.joint import joint_richardson_lucy
    >>> scene = phantom.grains_and_veins((100, 100), seed=1)
    >>> maps, psfs = [], []
    >>> for k, (sigma, level) in enumerate(((1.5, 400.0), (3.0, 40.0))):
    ...     c, _, h = phantom.observe((60, 60), sigma, seed=k, signal_counts=level, scene=scene)
    ...     maps.append(c); psfs.append(h)
    >>> out, info = joint_richardson_lucy(np.stack(maps), psfs, background=100.0, num_iter=20,
    ...                                   weight=0.01, return_info=True)
    >>> out.shape, info["guide"], info["mode"]
    ((2, 60, 60), 0, 'joint')

    Backends
    --------
    Any array-API namespace; CuPy runs the batched FFTs, the fused RL kernels
    and a fused dual projection.
    """
    from .front_door import _background_in_counts, filled_for_estimators
    from .stack import (_missing_pixels, _own_weights, _stack_background, check_stack_map_sides,
                        masked_entries_as_mask, stack_psfs)

    stack, mask = masked_entries_as_mask(_as_stack(stack), mask)
    check_stack_map_sides(stack.shape)
    xp = array_namespace(stack)
    stack, pixel_weights = _missing_pixels(stack, mask, xp=xp)
    y = as_image(stack, xp=xp, name="stack", allow_batch=True)
    if y.ndim != 3 or y.shape[0] < 2:
        raise ValueError(f"joint restoration needs a stack of at least two maps (n, rows, cols), "
                         f"got shape {tuple(y.shape)}")
    n = y.shape[0]
    dev = array_device(y)
    missing = [0] * n
    if pixel_weights is not None:
        # the solvers leave missing pixels out through their weights (every batch of this call is weighted,
        # a complete map with weights 1, so that a map's numbers do not depend on its batch); the estimators
        # see each filled with its nearest measured pixel, as the front door fills a single map
        pixel_weights = xp.astype(pixel_weights, y.dtype)
        missing = [int(xp.sum(xp.astype(pixel_weights[i, ...] == 0, xp.int32))) for i in range(n)]
        y = xp.stack([filled_for_estimators(y[i, ...], pixel_weights[i, ...], xp=xp) for i in range(n)], axis=0)

    def weights_of(i):  # map i's weights for a single-map call, None where it misses no pixel (the plain call)
        return _own_weights(pixel_weights, i, xp=xp)
    for i in range(n):
        if not bool(xp.any(y[i, ...] != 0)):
            raise ValueError(f"map {i} of the stack is all zeros: there is nothing to restore")
    stack_psfs(psfs, y.shape, xp=xp, dtype=y.dtype, device=dev)  # validates count, sizes and values
    hs = _each_psf(psfs, y, xp=xp)
    # every map in (effective) counts, as the front door restores one map: count maps unchanged
    y_given = y
    y, gains, kinds = _effective_stack(y_given, xp=xp, gains_given=gain, map_kinds=map_kind)
    fitted = [k["kind"].startswith("fitted") for k in kinds]  # the background rule of fitted maps
    in_effective_counts = [k["kind"] != "counts" for k in kinds]  # fitted or scaled integers: map / gain
    auto_background = isinstance(background, str)
    if auto_background:
        if background != "auto":
            raise ValueError(f'background must be "auto", a number, a sequence or an array, got {background!r}')
        bs = []
        for i in range(n):
            bi, source = _background_in_counts("auto", y[i, ...], gains[i] or 1.0, xp=xp, fitted=fitted[i])
            bs.append(float(bi))
            kinds[i]["background_source"] = source
    else:
        b = _stack_background(background, y_given, xp=xp)
        bs = [_map_background(b, i) for i in range(n)]
        bs = [bi / gains[i] if gains[i] not in (None, 1.0) else bi for i, bi in enumerate(bs)]
    for i in range(n):  # the background in the map's own units, as the front door records it
        bi = bs[i]
        kinds[i]["background"] = "map" if hasattr(bi, "shape") else (
            float(bi) * gains[i] if gains[i] not in (None, 1.0) else float(bi))
    # the Poisson splits of the cross-validation need integers: a fitted map's effective counts are
    # rounded for them (as the front door's CV stop does); the restoration itself uses them unrounded
    splittable = [gains[i] is not None for i in range(n)]
    y_split = y if not any(in_effective_counts) else xp.stack(
        [xp.round(y[i, ...]) if in_effective_counts[i] else y[i, ...] for i in range(n)], axis=0)
    if num_iter is not None:
        num_iter = check_positive_int(num_iter, "num_iter")
    if guide_iter is not None:
        guide_iter = check_positive_int(guide_iter, "guide_iter")
    max_iter = check_positive_int(max_iter, "max_iter")
    cv_folds = check_positive_int(cv_folds, "cv_folds")
    own_eta = float(own_eta_factor) if own_edges else None
    if own_eta is not None and not (own_eta > 0 and math.isfinite(own_eta)):
        raise ValueError(f"own_eta_factor must be finite and > 0, got {own_eta_factor!r}")
    gate = None
    if guide_evidence_px is not None:
        if isinstance(guide_evidence_px, str):
            if guide_evidence_px != "auto":
                raise ValueError(f"guide_evidence_px must be 'auto', a number of pixels > 0 or None, got "
                                 f"{guide_evidence_px!r}")
            gate_smoothing = tuple(max(GATE_MIN_PX, GATE_PSF_FRACTION * _psf_width(h)) for h in hs)
        else:
            gate_smoothing = (float(guide_evidence_px),) * n
        gate = (gate_smoothing, float(guide_evidence_factor))
        if not all(v > 0 and math.isfinite(v) for v in (*gate_smoothing, gate[1])):
            raise ValueError(f"guide_evidence_px and guide_evidence_factor must be finite and > 0, got "
                             f"{guide_evidence_px!r}, {guide_evidence_factor!r}")
    guide_tv = 0.0 if guide_tv is None else float(guide_tv)
    reweight = None
    if reweight_every is not None:
        reweight = (check_positive_int(reweight_every, "reweight_every"), float(reweight_eps_factor),
                    float(reweight_smoothing_px))
        if not (reweight[1] > 0 and math.isfinite(reweight[1])):
            raise ValueError(f"reweight_eps_factor must be finite and > 0, got {reweight_eps_factor!r}")
        if not (reweight[2] >= 0 and math.isfinite(reweight[2])):
            raise ValueError(f"reweight_smoothing_px must be finite and >= 0, got {reweight_smoothing_px!r}")
    if not (guide_tv >= 0 and math.isfinite(guide_tv)):
        raise ValueError(f"guide_tv must be finite and >= 0 (or None), got {guide_tv!r}")
    gamma = float(gamma)
    if not 0.0 <= gamma < 1.0:
        raise ValueError(f"gamma must be in [0, 1), got {gamma}")
    candidates = [float(w) for w in weights]
    if not candidates:
        raise ValueError("weights (the candidate λ the cross-validation chooses among) must hold at least one")
    if any(not (w >= 0 and math.isfinite(w)) for w in candidates):
        raise ValueError(f"weights must be finite and >= 0, got {weights!r}")
    if isinstance(huber_weights, str):
        if huber_weights != "auto":
            raise ValueError(f"huber_weights must be 'auto', a sequence of weights > 0 or None, got {huber_weights!r}")
        # the default grid with the default dTV weights; weights given alone are exactly the candidates
        huber_weights = DEFAULT_HUBER_WEIGHTS if tuple(candidates) == tuple(DEFAULT_WEIGHTS) else ()
    huber_candidates = [float(w) for w in (huber_weights or ())]
    if any(not (w > 0 and math.isfinite(w)) for w in huber_candidates):
        raise ValueError(f"huber_weights must be finite and > 0, got {huber_weights!r}")
    huber_factor = float(huber_factor)
    if not (huber_factor > 0 and math.isfinite(huber_factor)):
        raise ValueError(f"huber_factor must be finite and > 0, got {huber_factor!r}")

    if guide_among is not None:
        pool = []
        for i in guide_among:
            if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= int(i) < n:
                raise ValueError(f"guide_among must hold map indices of a stack of {n}, got {list(guide_among)!r}")
            pool.append(int(i))
        if not pool:
            raise ValueError("guide_among must name at least one map")
        if guide != "auto":
            raise ValueError("guide_among chooses among maps for guide='auto'; with a guide given, leave it out")
    checked = {}  # map -> guide_structure(raw map), for the maps the automatic choice looked at
    passed_over = []
    if guide == "auto":
        pool = range(n) if guide_among is None else sorted(set(pool))
        widths = {i: _psf_width(hs[i]) for i in pool}
        levels = {i: float(xp.mean(y[i, ...])) - float(xp.mean(xp.asarray(bs[i]))) for i in pool}
        order = sorted(pool, key=lambda i: (round(widths[i], 6), -levels[i]))
        # the first in that order whose raw map shows edges above its noise: a fit's floor channel (MAPS
        # XRF_fits Pt_L, 1.0e-10 ± 0.2 %, measured gain 3.9e-16: the "most counts" of the file) was chosen
        # before and failed the check, and every map fell back to independent RL; where none has edges the
        # first is the guide, and the restoration falls back as before
        g = order[0]
        for i in order:
            checked[i] = guide_structure(y[i, ...])
            if checked[i][0]:
                g = i
                break
        else:
            checked = {g: checked[g]}
        passed_over = [i for i in checked if i != g]
    else:
        try:
            g = int(guide)
        except (TypeError, ValueError):
            raise ValueError(f"guide must be 'auto' or a map index, got {guide!r}") from None
        if g != guide or not 0 <= g < n:
            raise ValueError(f"guide index {guide!r} is not a map of a stack of {n}")
    weak = [i for i in range(n) if i != g]
    if weight is None:
        given = None
    elif (isinstance(weight, Sequence) and not isinstance(weight, (str, bytes))) or getattr(weight, "ndim", 0) == 1:
        # a list, a tuple or a 1-D array (restore_stack takes arrays for per-map balance and lam too)
        weight = [float(w) for w in (to_numpy(weight) if hasattr(weight, "ndim") else weight)]
        if len(weight) != n:
            raise ValueError(f"got {len(weight)} weights for a stack of {n} maps")
        given = list(weight)
    else:
        given = [float(weight)] * n
    if given is not None and any(not (w >= 0 and math.isfinite(w)) for w in given):
        raise ValueError(f"weight must be finite and >= 0, got {weight!r}")
    if eta is not None and gains[g] not in (None, 1.0):
        eta = float(eta) / gains[g]  # given in the guide's units per pixel; the field works in its counts
    if guide_iter is None or num_iter is None or given is None:  # a Poisson split will run: name a hot pixel
        for i in range(n):
            if splittable[i]:
                refuse_counts_beyond_split(y_split[i, ...], weights=weights_of(i), gain=gains[i],
                                           name=f"map {i} of the stack",
                                           fixed_count="fixed counts and weights (num_iter=, guide_iter=, weight=)")

    def split_of(i):
        return y_split[i, ...] if splittable[i] else None

    def finish(out_maps):
        """The restored maps back in their own units (× gain), and the per-map record completed."""
        for i in range(n):
            if gains[i] not in (None, 1.0):
                out_maps[i] = out_maps[i] * gains[i]
            info["per_map"][i] = {**kinds[i], "missing_pixels": missing[i], **info["per_map"][i]}
        out = xp.stack(out_maps, axis=0)
        return (out, info) if return_info else out

    info = {"mode": "joint", "fallback": None, "guide": g, "gamma": gamma, "smoothing_px": float(smoothing_px),
            "eta": None, "guide_check": None, "per_map": [dict() for _ in range(n)],
            "guide_how": ("given" if guide != "auto" else
                          "automatic: the narrowest PSF, then the most (effective) counts, among the maps whose raw "
                          "map shows edges above its noise"),
            "guide_passed_over": {i: checked[i][1]["reason"] for i in passed_over}}
    ok, stats = checked[g] if g in checked else guide_structure(y[g, ...])
    info["guide_check"] = stats
    restored = [None] * n
    guide_map, guide_info = _restore_alone(y[g, ...], hs[g], bs[g], num_iter=guide_iter, seed=seed, split=split_of(g),
                                           weights=weights_of(g))
    restored[g] = guide_map
    info["per_map"][g] = {"role": "guide", "weight": None, "weight_how": None, **guide_info}
    if not ok:
        warnings.warn(f"joint restoration fell back to independent RL: {stats['reason']} "
                      f"(map {g} as the guide)", JointFallbackWarning, stacklevel=2)
        info["mode"], info["fallback"] = "independent", stats["reason"]
        for i in weak:
            restored[i], ri = _restore_alone(y[i, ...], hs[i], bs[i], num_iter=guide_iter, seed=seed,
                                             split=split_of(i), weights=weights_of(i))
            info["per_map"][i] = {"role": "independent", "weight": 0.0, "weight_how": "fallback", **ri}
        return finish(restored)

    # the cross-validation runs on the maps in (effective) counts; a map whose gain could not be
    # measured keeps the fixed weight and count (and with such a guide, every map does)
    cv_maps = [i for i in weak if splittable[i]] if splittable[g] else []
    # the guide's TV restoration runs as many iterations as the weak maps may (num_iter given, else max_iter)
    field, eta_used = _guide_direction_field(y[g, ...], hs[g], bs[g], guide_map, guide_tv, num_iter or max_iter,
                                             smoothing_px, eta, boundary, xp=xp, weights=weights_of(g))
    info["eta"] = eta_used
    info["guide_tv"] = guide_tv
    info["reweight"] = None if reweight is None else {
        "every": reweight[0], "eps_factor": reweight[1], "smoothing_px": reweight[2], "eps": {},
        "how": "eps = eps_factor x the gradient noise of each weak map's own plain RL (smoothed 2 px)"}
    info["own_edges"] = bool(own_edges)
    info["own_eta_factor"] = own_eta
    info["guide_evidence"] = None if gate is None else {
        "smoothing_px": {i: gate[0][i] for i in weak}, "factor": gate[1],
        "how": (f"{GATE_PSF_FRACTION} x each weak map's PSF sigma (at least {GATE_MIN_PX} px)"
                if isinstance(guide_evidence_px, str) else "given")}
    chosen_w = {i: (given[i] if given is not None else None) for i in weak}
    chosen_k = {i: num_iter for i in weak}
    chosen_h = {i: False for i in weak}  # the Huber-dTV (True) or the dTV
    huber_delta = {i: None for i in weak}
    how = {i: "given" if given is not None else None for i in weak}
    stops = {i: "fixed" for i in weak}
    cv_dev = {i: None for i in weak}
    huber_note = {i: None for i in weak}  # whether the cross-validation ran the Huber candidates, and why not
    if cv_maps and (given is None or num_iter is None):
        sel = _cross_validate(y_split, hs, bs, g, cv_maps, given, num_iter, guide_iter, candidates, max_iter, gamma,
                              smoothing_px, eta, boundary, seed, own_eta, xp=xp, folds=cv_folds, gate=gate,
                              guide_tv=guide_tv, reweight=reweight, huber_candidates=huber_candidates,
                              huber_factor=huber_factor, weights=pixel_weights)
        for i in cv_maps:
            (w, hb), k, table, huber_note[i] = sel[i]
            if given is None:
                chosen_w[i], how[i] = w, "cross-validation"
                chosen_h[i] = hb
            if num_iter is None:  # λ = 0: the CV's lowest; a weight > 0 runs max_iter (see _judge)
                chosen_k[i], stops[i] = k, ("cv" if chosen_w[i] == 0.0 else "max_iter")
            cv_dev[i] = table
    for i in weak:
        if chosen_w[i] is None:
            chosen_w[i], how[i] = NONCOUNT_WEIGHT, ("default: the guide's gain could not be measured"
                                                    if not splittable[g] else
                                                    "default: the map's gain could not be measured")
        if chosen_k[i] is None:
            chosen_k[i] = NONCOUNT_ITER
    # a map whose weight is 0 (chosen or given) has no coupling: it is restored exactly as alone (the front
    # door's rule: accelerated, num_iter iterations if given, else as the guide's), not by unaccelerated EM at
    # the joint iteration count (a given weight 0 ran that, 1.1 % of the maximum from restore's result)
    by_k = {}
    for i in weak:
        if chosen_w[i] == 0.0:
            restored[i], ri = _restore_alone(y[i, ...], hs[i], bs[i], num_iter=num_iter if num_iter is not None
                                             else guide_iter, seed=seed, split=split_of(i), weights=weights_of(i))
            chosen_k[i], stops[i] = ri["iterations"], ri["stop"]
            continue
        by_k.setdefault(chosen_k[i], []).append(i)
    for k, members in by_k.items():
        noise = [] if reweight is not None or any(chosen_h[i] for i in members) else None
        fields = _member_fields(y, hs, bs, members, field, own_eta, max(k, max_iter), xp=xp, evidence=gate,
                                noise_out=noise, weights=pixel_weights)
        huber = None
        if any(chosen_h[i] for i in members):
            huber = [huber_factor * noise[j] if chosen_h[i] else 0.0 for j, i in enumerate(members)]
            for j, i in enumerate(members):
                huber_delta[i] = huber[j] if chosen_h[i] else None
        rw = None
        if reweight is not None:
            rw_eps = [reweight[1] * v for v in noise]
            rw = (reweight[0], rw_eps, reweight[2])
            for j, i in enumerate(members):
                info["reweight"]["eps"][i] = rw_eps[j]
        out = _batch_run(y, hs, bs, members, [chosen_w[i] for i in members], fields, k, gamma, boundary, xp=xp,
                         reweight=rw, huber=huber, weights=pixel_weights)
        for j, i in enumerate(members):
            restored[i] = out[j, ...]
    for i in weak:
        role = ("guided" if chosen_w[i] > 0 else
                "independent (weight 0 chosen)" if how[i] == "cross-validation" else "independent (weight 0 given)")
        delta = huber_delta[i]
        if delta is not None and gains[i] not in (None, 1.0):
            delta = delta * gains[i]  # in the map's own units per pixel
        info["per_map"][i] = {"role": role, "weight": chosen_w[i], "weight_how": how[i],
                              "prior": _prior_name(chosen_w[i], chosen_h[i]), "huber_delta": delta,
                              "iterations": chosen_k[i], "stop": stops[i], "cv_deviance": cv_dev[i],
                              "huber_candidates": huber_note[i]}
    return finish(restored)


def _prior_name(weight, huber):
    """The record's ``prior`` of a weak map restored at ``weight`` λ: ``"none"`` at λ = 0 (plain RL, no
    prior; the record said ``"dtv"`` there before), else ``"huber-dtv"`` with a Huber δ, else ``"dtv"``."""
    if weight == 0.0:
        return "none"
    return "huber-dtv" if huber else "dtv"


def _each_psf(psfs, y, *, xp):
    """One validated, unit-sum PSF per map at its own size (the guide and fallbacks use these)."""
    from ._validate import as_psf

    n, dev = y.shape[0], array_device(y)
    if hasattr(psfs, "shape") and hasattr(psfs, "dtype"):
        psfs = as_namespace(psfs, xp, dev)
        items = [psfs] * n if psfs.ndim == 2 else [psfs[i, ...] for i in range(n)]
    else:
        items = [as_namespace(p, xp, dev) for p in psfs]
    return [as_psf(p, y.shape, xp=xp, dtype=y.dtype, device=dev, name=f"psfs[{i}]") for i, p in enumerate(items)]


def _stack_problem(y, hs, bs, members, *, boundary, repeat=1, keep=None, weights=None):
    """A batched :class:`Problem` of maps ``members`` (each repeated ``repeat`` times; a map may recur).

    ``weights`` (n, rows, cols) of the whole stack, or None: the members' weights (0 at missing pixels).

    ``keep``: the :func:`_batch_layout` of a batch that held every map. The PSFs are zero-padded
    to its PSF shape, the operator uses its engine (and the separable engine its reach), so that a
    map's numbers do not depend on which other maps share its batch: the PSF stack is padded to its
    largest member, which sets the canvas, the automatic engine depends on every PSF of the batch,
    and the separable engine's line length on the union of their supports.
    """
    from .fft import Convolution
    from .stack import stack_psfs

    xp = array_namespace(y)
    dev = array_device(y)
    idx = [i for i in members for _ in range(repeat)]
    yy = xp.stack([y[i, ...] for i in idx], axis=0)
    hh = stack_psfs([hs[i] for i in idx], yy.shape, xp=xp, dtype=y.dtype, device=dev)
    if any(hasattr(bs[i], "shape") for i in idx):
        bb = xp.stack([bs[i] * xp.ones_like(y[0, ...]) if not hasattr(bs[i], "shape") else bs[i] for i in idx],
                      axis=0)
    else:
        bb = xp.reshape(xp.asarray([float(bs[i]) for i in idx], dtype=y.dtype, device=dev), (-1, 1, 1))
    ww = None if weights is None else xp.stack([weights[i, ...] for i in idx], axis=0)
    if keep is None:
        return Problem.from_validated(yy, hh, bb, boundary=boundary, pad_factor=2, iterative=True, weights=ww)
    (kr, kc), engine, reach = keep
    r, c = hh.shape[-2:]
    if (r, c) != (kr, kc):  # centred as stack_psfs centres each PSF: (r // 2, c // 2) on (kr // 2, kc // 2)
        top, left = kr // 2 - r // 2, kc // 2 - c // 2
        padded = xp.zeros((hh.shape[0], kr, kc), dtype=hh.dtype, device=dev)
        padded[:, top:top + r, left:left + c] = hh
        hh = padded
    op = Convolution(hh, yy.shape, boundary=boundary, pad_factor=2, iterative=True, engine=engine,
                     separable_reach=reach)
    canvas_b = op.embed(bb) if bb.shape[-2:] != (1, 1) else bb
    return Problem(xp=xp, image=yy, psf=hh, background=bb, op=op, _data=None, canvas_background=canvas_b,
                   weights=ww)


def _batch_layout(pb):
    """``(PSF shape, engine, separable reach or None)`` of a batched problem, for :func:`_stack_problem`'s ``keep``."""
    return (tuple(pb.psf.shape[-2:]), pb.op.engine, pb.op.separable_reach)


def _start(pb):
    """Per-map RL start level and mean count (as :func:`xrfgpu.richardson_lucy`; with missing pixels the
    mean over the measured ones)."""
    level = pb.mean(pb.image) if pb.weights is None else pb.measured_mean()
    init = pb.largest(level - pb.mean(pb.background), 1e-3 * level, 1e-30)
    return level, init


def _member_fields(y, hs, bs, members, field, own_eta, own_iter, *, xp, repeat=1, evidence=None, noise_out=None,
                   weights=None):
    """Direction fields (2, m·repeat, rows, cols) of the maps ``members`` (:func:`combined_field`).

    Each map's own edges come from its plain (unaccelerated) RL at ``own_iter`` iterations, the
    most the guided run may use: the edges the data alone support at that resolution. With
    ``evidence = (smoothing_px per map, factor)`` the guide's field is first weighted, per map, by
    the square root of :func:`weak_evidence` of that map's counts. A list given as ``noise_out``
    receives the gradient noise of each map's own plain RL (:func:`_own_gradient_noise`, map units
    per pixel) once per member (repeated): the scale of the reweighting's ε and the Huber δ.
    ``weights``: the stack's pixel weights (0 at missing pixels; the own RL leaves them out), or None;
    a map's own edges then count only where at least :data:`OWN_EDGE_MIN_SHARE` of the PSF's weight
    was measured.
    """
    from .richardson_lucy import richardson_lucy
    from .stack import _own_weights

    if own_eta is None and evidence is None and noise_out is None:
        return field
    out = []
    for i in members:
        f = field
        if evidence is not None:
            f = field * xp.sqrt(weak_evidence(y[i, ...], smoothing_px=evidence[0][i], factor=evidence[1]))
        own = None
        if own_eta is not None or noise_out is not None:
            wi = _own_weights(weights, i, xp=xp)
            own = richardson_lucy(y[i, ...], hs[i], num_iter=own_iter, background=bs[i], mask=wi)
        if noise_out is not None:
            noise_out.extend([_own_gradient_noise(own, xp=xp)] * repeat)
        if own_eta is not None:
            mixed = combined_field(f, own, eta_factor=own_eta)
            if wi is not None:
                # a hole wider than the PSF's reach stays flat in the own RL (at its start value): its borders
                # are no edges of the map. Own edges count only where most of the PSF's weight was measured
                seen = _measured_share(wi, hs[i], xp=xp) >= OWN_EDGE_MIN_SHARE
                mixed = xp.where(seen, mixed, f)
            f = mixed
        out.extend([f] * repeat)
    return xp.stack(out, axis=1) if (own_eta is not None or evidence is not None) else field


def _measured_share(weights, h, *, xp):
    """``hᵀw`` on the map (rows, cols): each pixel's share of its PSF's weight that falls on measured pixels
    (1 with none missing; reflect borders)."""
    from .fft import Convolution

    op = Convolution(h, tuple(weights.shape), boundary="reflect")
    return op.crop(op.adjoint(op.embed(weights)))


def _own_gradient_noise(own, *, smoothing_px=2.0, xp):
    """Robust spread of the gradient components of a map's own plain RL smoothed by ``smoothing_px``
    (map units per pixel): its noise level, the ``s`` whose multiple is the own field's η
    (:func:`combined_field`). Floored at 10⁻⁶ × the map's mean so that ε > 0."""
    v = _smooth(own, float(smoothing_px), xp=xp)
    gx, gy = _gradient(v, xp=xp)
    spread = _robust_sd(xp.concat([xp.reshape(gx, (-1,)), xp.reshape(gy, (-1,))]), xp=xp)
    return max(spread, 1e-6 * abs(float(xp.mean(own))), 1e-30)


def _guide_direction_field(y, h, b, guide_rl, tv_weight, num_iter, smoothing_px, eta, boundary, *, xp,
                           weights=None):
    """The guide's direction field ``(field, η)``: from its EM-TV restoration when ``tv_weight > 0``.

    η is always set from the guide's plain RL (``guide_rl``: :func:`guide_field`'s default, 3 ×
    its gradient noise, unless ``eta`` is given): the TV restoration's flat regions have almost no
    gradient, so their robust spread would make η ≈ 0 and every staircase step an edge. The field's
    directions and lengths then come from the EM-TV restoration (plain isotropic TV, weight
    ``tv_weight``, ``num_iter`` iterations) of the same counts, whose edges are sharper and whose
    flat ground is cleaner than RL's. ``tv_weight`` 0 or None: the field of ``guide_rl`` itself.
    ``weights``: the guide's pixel weights (rows, cols), or None.
    """
    field, eta_used = guide_field(guide_rl, smoothing_px=smoothing_px, eta=eta)
    if not tv_weight:
        return field, eta_used
    flat = xp.zeros((2,) + tuple(y.shape), dtype=y.dtype, device=array_device(y))
    tv = _batch_run(y[None, ...], [h], [b], [0], [float(tv_weight)], flat, num_iter, 0.0, boundary, xp=xp,
                    weights=None if weights is None else weights[None, ...])
    field, _ = guide_field(tv[0, ...], smoothing_px=smoothing_px, eta=eta_used)
    return field, eta_used


def _batch_run(y, hs, bs, members, member_weights, field, num_iter, gamma, boundary, *, xp, reweight=None,
               huber=None, weights=None):
    """EM-dTV of the maps ``members`` at their weights; ``reweight = (every, eps per member)`` or None;
    ``huber``: None or the Huber δ per member (0: plain dTV); ``weights``: the stack's pixel weights or None."""
    pb = _stack_problem(y, hs, bs, members, boundary=boundary, weights=weights)
    level, init = _start(pb)
    w = pb.per_map(member_weights)
    if reweight is not None:
        reweight = (reweight[0], pb.per_map(reweight[1]), *reweight[2:])
    if huber is not None:
        huber = pb.per_map(huber)
    return _run_guided_rl(pb, field, w, num_iter=num_iter, gamma=gamma, level=level, init=init, reweight=reweight,
                          huber=huber)


def _candidate_label(candidate):
    """Record key of a CV candidate ``(λ, huber)``: ``"0.1"`` (dTV) or ``"0.1 huber"`` (Huber-dTV)."""
    lam, huber = candidate
    return f"{lam:g} huber" if huber else f"{lam:g}"


def _judge(curve, checkpoints, cands, horizon):
    """Each candidate of one map judged where it will be used: λ = 0 at its lowest, a weight > 0 at ``horizon``.

    ``curve`` (candidates, checkpoints) is the summed held-out deviance. Returns ``(per_cand, lowest,
    per_it, chosen_it, late_at)``: the deviance each candidate is judged by, the index of its lowest
    checkpoint, the iterations there, the iterations it would use and the checkpoint index it is judged at.
    """
    m = len(cands)
    lowest = curve.argmin(axis=-1)
    per_it = [checkpoints[int(t)] for t in lowest]
    # iterations of a weight > 0: all max_iter. The estimate is the penalised likelihood's minimiser,
    # which the iterations approach; the held-out curve of a half-count training map turns up
    # earlier than the full map's would (its noise is √2 larger against the same signal), so its
    # stop would add a regularisation the full counts do not ask for (on the skarn it cut the Si-only
    # vein's contrast: seed 7 stopped Si at 70 iterations). λ = 0 keeps its lowest.
    chosen_it = list(per_it)
    late_at = list(lowest)
    for c2 in range(m):
        if cands[c2][0] > 0:
            chosen_it[c2] = horizon
            late_at[c2] = len(checkpoints) - 1
    per_cand = curve[np.arange(m), late_at]
    return per_cand, lowest, per_it, chosen_it, late_at


def _best_plain(per_cand, cands):
    """Index of the best plain candidate (λ = 0 or a dTV weight) by the judged deviance."""
    return min((c2 for c2 in range(len(cands)) if not cands[c2][1]), key=lambda c2: per_cand[c2])


def _cross_validate(y, hs, bs, g, weak, given, num_iter, guide_iter, candidates, max_iter, gamma, smoothing_px, eta,
                    boundary, seed, own_eta, *, xp, folds=2, gate=None, guide_tv=None, reweight=None,
                    huber_candidates=(), huber_factor=1.0, skip_huber=True, weights=None):
    """((weight, huber), iterations, record, note) per weak map: the lowest held-out deviance, summed over folds.

    The candidates are the dTV weights ``candidates`` and the Huber-dTV weights
    ``huber_candidates`` (δ = ``huber_factor`` × the gradient noise of each map's own plain RL
    on the training half); ``huber`` in the result is whether the winner is a Huber one. Record
    keys: ``f"{λ:g}"`` for the dTV, ``f"{λ:g} huber"`` for the Huber-dTV, one per candidate that
    ran. ``note`` says whether the Huber candidates ran (None without Huber candidates).

    Poisson thinning splits the counts into two independent halves; each
    split gives two folds (train on one half, score the other, then swap:
    cross-fitting), and ``folds > 2`` draws further splits. Each fold runs
    the weak maps × candidates in a batch, scoring the held-out deviance at the same
    checkpoints (every iteration up to 20, then every 5th) up to ``max_iter``
    (``num_iter`` if given). The deviance curves are summed over folds:
    every count is held out once per split, so the noise of the choice falls
    with the number of folds. A weight > 0 runs all ``max_iter`` iterations
    (the penalised estimate is the iterations' limit, and a half-count
    training map's held-out curve turns up earlier than the full map's), so
    it is judged by its deviance there; λ = 0 (plain RL, which needs its
    early stop) by its lowest. The lowest of these wins, except that a Huber
    candidate may only win on a map whose best plain candidate is a dTV weight > 0.

    Because of that rule the run has two phases (``skip_huber``, the default): each fold's
    split, guide field and member fields are built once; phase 1 runs the plain candidates
    (λ = 0 and the dTV weights) of every weak map on every fold, phase 2 the Huber candidates
    of the maps whose phase-1 winner is a dTV weight > 0 only: on a map where plain RL wins,
    the Huber candidates could not be chosen, and they are not run (the note
    :data:`HUBER_SKIPPED`). Every map of a batch is computed independently of the others
    (per-map steps and reductions; the PSF extent, the engine and the separable engine's reach are
    kept from phase 1, :func:`_stack_problem`), so the candidates that run give the numbers they
    would give in one batch of all candidates (``skip_huber=False``, the previous single batch),
    exactly except on the separable engine, whose blur rounds with what its scratch canvas held from
    the map before (relative differences ~10⁻⁶; the choices and restored maps were identical on the
    benchmark cases, docs/joint.md, "Two-phase cross-validation").

    The record also gives, per candidate, the standard error of its summed
    deviance difference to the best candidate that ran, ``sqrt(Σ_folds Σ μ_best log²(μ_c/μ_best))``
    (the held-out counts' Poisson variance, at each fold's best iterations),
    so a reader can see how clearly the held-out counts preferred the
    weight chosen, the iterations at the lowest deviance
    (``iterations_lowest``) and those used (``iterations``), and the excess
    deviance at the last checkpoint scored (``late_iterations``) with its
    standard error (``late_deviance``, ``late_se``: ``sqrt(Σ_folds Σ μ_b
    log²(μ_k/μ_b))``, ``μ_b`` the fold's best iterate up to checkpoint ``k``).

    ``weights`` (n, rows, cols), 0 at missing pixels, or None: the training runs leave missing
    pixels out and the held-out deviance and its standard errors are sums over measured pixels only.
    """
    from .stack import _own_weights

    dev = array_device(y)
    rng = np.random.default_rng(seed)
    half_b = [bi * 0.5 for bi in bs]
    if given is not None:
        cands = sorted({(given[i], False) for i in weak})
    else:
        cands = sorted({(float(c), False) for c in candidates}) + sorted(
            {(float(c), True) for c in huber_candidates if c > 0})
    any_huber = any(hc for _, hc in cands)
    two_phase = bool(skip_huber) and any_huber
    m, nw = len(cands), len(weak)
    rows, cols = y.shape[-2:]
    pairs = []
    for _ in range((int(folds) + 1) // 2):
        a, b = split_counts(y, seed=rng)  # successive draws of one generator (xrfgpu.stopping)
        pairs.extend([(a, b), (b, a)])
    pairs = pairs[: int(folds)]
    nf = len(pairs)
    curves = {}  # checkpoint -> (nw, m) deviance summed over folds (0 where a candidate did not run)
    late_var = {}  # checkpoint -> (nw, m) Poisson variance of (deviance there − at the fold's best so far)
    seen = {}  # checkpoint -> runs (folds × phases) that scored it
    mus = {}  # (fold, j, c2) -> (best, last, row): the candidate's held-out mean at its best / last checkpoint
    ran = np.zeros((nw, m), dtype=bool)
    setups = [None] * nf  # per fold: [train, test, member fields, noise, batch layout], built once
    runs = [0]
    inner_of = [None]  # the scored interior of one map, (rows, cols) slices
    # each weight is judged where it is used (a weight > 0 at max_iter), so every fold runs that far
    horizon = num_iter or max_iter

    def setup(f):
        if setups[f] is not None:
            return setups[f]
        train, test = pairs[f]
        # the guide restored from the training half, so that the held-out half stays unseen
        wg = _own_weights(weights, g, xp=xp)
        g1, _ = _restore_alone(train[g, ...], hs[g], half_b[g], num_iter=guide_iter, seed=seed + 1 + f, weights=wg)
        field, _ = _guide_direction_field(train[g, ...], hs[g], half_b[g], g1, guide_tv, num_iter or max_iter,
                                          smoothing_px, eta, boundary, xp=xp, weights=wg)
        # each weak map's own edges from the training half too: one field per map (or the shared one)
        noise = [] if any_huber or reweight is not None else None
        field = _member_fields(train, hs, half_b, weak, field, own_eta, max_iter, xp=xp, evidence=gate,
                               noise_out=noise, weights=weights)
        setups[f] = [train, test, field, noise, None]
        return setups[f]

    def run(f, cells):
        """One batched run of fold ``f`` over ``cells`` [(map j, candidate c2)], scoring the held-out half."""
        train, test, field, noise, keep = setup(f)
        members = [weak[j] for j, _ in cells]
        pb = _stack_problem(train, hs, half_b, members, boundary=boundary, keep=keep, weights=weights)
        if keep is None:  # the first batch holds every weak map: later ones keep its PSF extent and engine
            setups[f][4] = keep = _batch_layout(pb)
        if field.ndim == 4:
            field = xp.stack([field[:, j, ...] for j, _ in cells], axis=1)
        huber = None
        if any(cands[c2][1] for _, c2 in cells):  # δ per cell: the map's own noise × factor on Huber cells, else 0
            huber = pb.per_map([float(huber_factor) * noise[j] if cands[c2][1] else 0.0 for j, c2 in cells])
        rw = None
        if reweight is not None:
            rw = (reweight[0], pb.per_map([reweight[1] * noise[j] for j, _ in cells]), reweight[2])
        held = _stack_problem(test, hs, half_b, members, boundary=boundary, keep=keep, weights=weights)
        level, init = _start(pb)
        w = pb.per_map([cands[c2][0] for _, c2 in cells])
        kr, kc = pb.psf.shape[-2:]
        mr, mc = (min(kr // 2, rows // 4), min(kc // 2, cols // 4))
        inner = (slice(None), slice(mr, rows - mr), slice(mc, cols - mc))
        inner_of[0] = inner[1:]  # one map's interior (every run keeps the first batch's PSF extent)
        counts2 = xp.astype(held.image[inner], xp.float64)
        # missing pixels hold no held-out count: 0 leaves them out of every sum below
        w2 = None if held.weights is None else xp.astype(held.weights[inner], xp.float64)
        at = (np.asarray([j for j, _ in cells]), np.asarray([c2 for _, c2 in cells]))
        best = np.full(len(cells), np.inf)
        best_mu = [None]  # (cells, rows, cols) float64: each cell's held-out mean at its best so far
        last_mu = [None]  # the same at the last checkpoint scored
        for r, (j, c2) in enumerate(cells):
            mus[(f, j, c2)] = (best_mu, last_mu, r)
        ran[at] = True
        runs[0] += 1

        def watch(it, estimate):
            # every iteration up to 20, then every 5th (the deviance changes slowly by then)
            if num_iter is not None and it != num_iter:
                return
            if num_iter is None and it > 20 and it % 5 and it != horizon:
                return
            mu = held.op.crop(held.op.forward(held.op.embed(estimate))) + held.background
            mu = xp.clip(mu[inner], min=1e-12)
            # Poisson deviance terms μ − y log μ summed in float64 (float32 sums of ~10⁵ pixels would
            # round away the differences between candidates)
            mu64 = xp.astype(mu, xp.float64)
            last_mu[0] = mu64
            terms = mu64 - counts2 * xp.log(mu64)
            d = to_numpy(xp.sum(terms if w2 is None else w2 * terms, axis=(-2, -1))).reshape(-1)
            curves.setdefault(it, np.zeros((nw, m)))[at] += d
            seen[it] = seen.get(it, 0) + 1
            improved = d < best
            best[improved] = d[improved]
            if best_mu[0] is None:
                best_mu[0] = mu64
            else:
                now = xp.asarray(improved.reshape(-1, 1, 1), device=dev)
                best_mu[0] = xp.where(now, mu64, best_mu[0])
            # Var Σ y log(μ_it/μ_best) ≈ Σ μ_best log²(μ_it/μ_best): the noise of this checkpoint's
            # deviance excess over the fold's best iterate so far (0 where this one is the best)
            v = best_mu[0] * xp.log(mu64 / best_mu[0]) ** 2
            v = to_numpy(xp.sum(v if w2 is None else w2 * v, axis=(-2, -1))).reshape(-1)
            late_var.setdefault(it, np.zeros((nw, m)))[at] += v

        _run_guided_rl(pb, field, w, num_iter=horizon, gamma=gamma, level=level, init=init, watch=watch,
                       reweight=rw, huber=huber)

    def tables():
        # a checkpoint counts only if every run scored it
        checkpoints = sorted(it for it in curves if seen[it] == runs[0])
        table = np.stack([curves[it] for it in checkpoints], axis=-1)  # (nw, m, checkpoints)
        noise = np.sqrt(np.stack([late_var[it] for it in checkpoints], axis=-1))  # (nw, m, checkpoints)
        return checkpoints, table, noise

    # phase 1: the plain candidates of every map (all candidates in one batch without the skip)
    first = [(j, c2) for j in range(nw) for c2 in range(m) if not (two_phase and cands[c2][1])]
    for f in range(nf):
        run(f, first)
    huber_ran = [any_huber and not two_phase] * nw
    if two_phase:
        # phase 2: the Huber candidates only where a dTV weight > 0 beat plain RL (the rule below)
        checkpoints, table, _ = tables()
        for j in range(nw):
            per_cand = _judge(table[j], checkpoints, cands, horizon)[0]
            huber_ran[j] = cands[_best_plain(per_cand, cands)][0] > 0
        second = [(j, c2) for j in range(nw) if huber_ran[j] for c2 in range(m) if cands[c2][1]]
        if second:
            for f in range(nf):
                run(f, second)
    checkpoints, table, noise = tables()
    result = {}
    for j, i in enumerate(weak):
        per_cand, lowest, per_it, chosen_it, late_at = _judge(table[j], checkpoints, cands, horizon)
        done = [c2 for c2 in range(m) if ran[j, c2]]
        top = min(done, key=lambda c2: per_cand[c2])
        # Var Σ y log(μ_c/μ_top) ≈ Σ μ_top log²(μ_c/μ_top), summed over the folds' held-out halves
        var = dict.fromkeys(done, 0.0)
        for f in range(nf):
            def mean_of(c2):
                best_mu, last_mu, r = mus[(f, j, c2)]
                return (last_mu[0] if cands[c2][0] > 0 else best_mu[0])[r, ...]
            mu_t = mean_of(top)
            w_j = None if weights is None else xp.astype(weights[weak[j], ...][inner_of[0]], xp.float64)
            for c2 in done:
                v = mu_t * xp.log(mean_of(c2) / mu_t) ** 2
                var[c2] += float(xp.sum(v if w_j is None else w_j * v))
        # the lowest deviance wins. (The one-standard-error rule, kept before, took the largest weight
        # within one standard error of it as the simpler model; but λ = 0 is RL stopped early, the
        # most regularised candidate, and on a smooth weak map λ 0.05 at 400 iterations passed that
        # rule with 2.8× independent RL's MSE)
        # the coupling itself is decided between plain RL and the dTV, as before; the Huber-dTV (its
        # smooth-friendly form) competes only once a dTV weight has beaten plain RL. A generic smoother at
        # its limit predicts the blurred counts better than early-stopped RL while adding detail no
        # data can check (on a smooth random field under an unrelated guide: 1.4× RL's MSE), so it
        # must not be what switches the coupling on
        top_plain = _best_plain(per_cand, cands)
        chosen = top if cands[top_plain][0] > 0 else top_plain
        c = cands.index((given[i], False)) if given is not None else chosen
        record = {_candidate_label(cands[c2]): {"deviance": float(per_cand[c2] - per_cand[top]),
                                                "se": math.sqrt(var[c2]), "iterations": int(chosen_it[c2]),
                                                "iterations_lowest": int(per_it[c2]),
                                                "late_iterations": int(checkpoints[late_at[c2]]),
                                                "late_deviance": float(per_cand[c2] - table[j, c2, lowest[c2]]),
                                                "late_se": float(noise[j, c2, late_at[c2]]),
                                                "folds": nf} for c2 in done}
        note = None
        if any_huber:
            note = (f"ran: the dTV weight {cands[top_plain][0]:g} beat plain RL" if huber_ran[j] and two_phase else
                    "ran: in one batch with the plain candidates" if huber_ran[j] else HUBER_SKIPPED)
        result[i] = (cands[c], int(chosen_it[c]), record, note)
    return result
