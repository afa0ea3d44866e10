"""σ by fitting the map as a blurred mosaic of uniform shapes (grains, bars) on a flat matrix.

Model. The scene is x = B + Σ_g A_g s_g, with s_g the indicator of a
uniform ellipse or rectangle g (centre, two semi-axes, angle), its edge
softened to a pixel's width (an erf of standard deviation 1/√12 px, the
spread of a pixel's area), so the expected map is μ = h_σ ⊛ x with
h_σ the Gaussian spot. All parameters — σ, B, and per shape the geometry
and level A_g — are fitted jointly by least squares on the observed window
(:func:`scipy.optimize.minimize`, L-BFGS-B, analytic gradients through the
FFT blur and its adjoint). The scene is rendered on a canvas larger than
the window by ≈ 5σ₀ on each side, so shapes that lie partly outside the
scan, and the blur that their outer parts carry in, are part of the model.

Why it identifies σ. A blurred uniform shape is not a Gaussian blob: its
profile has the shoulder of the sharp boundary, which the shape's size and
σ cannot trade against each other once the shape is larger than about σ.
Shapes much smaller than σ carry little information on σ and do not bias
it; they are still modelled so that their blur is not mistaken for the
neighbours'.

Shapes are found, not given. An initial set comes from a linear (Wiener)
restoration with the spectral model of :func:`~.blind_sigma.estimate_sigma`
(stage 1): regions above the matrix level, each described by its second
moments as the ellipse or the rectangle that overlaps it best. After each
fit, residual blobs whose matched-filter signal-to-noise ratio exceeds 5
become new small ellipses, and the whole scene is refitted; this stops
when no such blob is left.

The Wiener restoration suits grain maps (shapes of many sizes and levels)
but breaks long bars into fragments, each then modelled as a blob, and the
fit trades the missing straight boundaries against σ (bar chart at σ = 6.5:
σ 1.10–1.31 × truth, χ² 1.2–1.5 per block). The second initialisation,
``init="richardson-lucy"``, reads the shapes from 50 Richardson–Lucy
iterations at σ₀ instead, split at the Otsu level (the scene is two-level:
the matrix and the shapes), which keeps each bar one region and separates
neighbouring bars down to a period of about 3σ; bars of a group the blur
has merged further become one rectangle, which the fit's χ² then shows.
With ``split`` > 0 the regions are first cut at intensity dips deeper than
``split`` noise spreads of the restoration (marker watershed,
:mod:`xrfgpu.psf.region_split`), so that touching grains of different levels
and bars joined into L shapes become one seed each instead of one large
ellipse. :func:`~.blind_sigma.estimate_sigma` tries it when the
Wiener-seeded fit is rejected and keeps the fit of lower Bayesian
information criterion, BIC = χ² + p ln n (p = 2 + 6 per shape free
parameters, n blocks; the χ² is a Gaussian log-likelihood with known
variance, so BIC is Schwarz's criterion): a seeding that needs more shapes
for the same χ² is not preferred for those extra shapes alone.

Shapes smaller than σ (``blob_below``). A uniform shape of semi-axes
a, b ≪ σ blurred by σ is a Gaussian blob of widths √(σ² + a²/4),
√(σ² + b²/4): the data fix only that width, which bounds σ from above, and
with noise the narrowest of many such noisy widths pulls σ low (grains at
σ = 10 px fitted from their true shapes and levels: 0.93–0.94 × truth with
Poisson noise, 1.00–1.01 without). After each round, shapes whose larger
semi-axis is below ``blob_below`` σ are replaced by Gaussian blobs of free
widths and flux drawn after the blur (same flux, widths √(σ² + a²/4) or
√(σ² + a²/3) for rectangles), so they model their own signal but no
longer constrain σ (true shapes: 0.97–1.00 × truth).

Maps are first summed in f × f blocks, f = ⌊σ₀/1.75⌋ (σ in block units
between 1.75 and 3.5). A block sum of Poisson counts is still Poisson, the
block average of the blurred scene is the Gaussian blur of the
block-averaged scene up to aliasing of relative size exp(−π²(σ/f)²/2)
(< 10⁻⁶ here), and the soft edge above has the spread of that block
average, so the model holds with σ/f in block units; it makes the fit f²
times cheaper. The noise variance is the white-noise level N of the
spectral stage times f² (for counts, N ≈ the mean count), so the fit and
its result do not change when a constant is added to the map.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import fft as sfft
from scipy import special

from ._spectra import gaussian_transfer, half_plane_weights, periodic_component
from .region_split import split_regions

__all__ = ["MosaicFit", "fit_mosaic_scene"]

# erf edge of the soft indicator: the standard deviation of a unit pixel's area, 1/√12
_EDGE_PX = 1.0 / math.sqrt(12.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
ELLIPSE, RECTANGLE, BLOB = 0, 1, 2


class MosaicFit(dict):
    """Result of :func:`fit_mosaic_scene` (a dict: ``sigma``, ``reduced_chi2``, ``n_shapes``, …)."""


class _Canvas:
    """Window inside a margin; renders the mosaic and gives ½ Σ (μ − y)² / v and its gradient."""

    def __init__(self, data, noise_var, margin):
        self.data = data
        self.noise_var = float(noise_var)
        self.margin = int(margin)
        rows, cols = data.shape
        self.shape = (sfft.next_fast_len(rows + 2 * self.margin, real=True),
                      sfft.next_fast_len(cols + 2 * self.margin, real=True))
        fy = sfft.fftfreq(self.shape[0])[:, None]
        fx = sfft.rfftfreq(self.shape[1])[None, :]
        self.k2 = fy * fy + fx * fx
        self.window = (slice(self.margin, self.margin + rows), slice(self.margin, self.margin + cols))
        self.yy, self.xx = np.mgrid[: self.shape[0], : self.shape[1]].astype(np.float64)
        self.rfft_weight = half_plane_weights(self.shape)

    def shape_image(self, p, kind, *, derivatives):
        """Soft indicator of one shape (cy, cx, log a, log b, θ) in its box; optional ∂s/∂p (5)."""
        cy, cx, la, lb, th = p
        a, b = math.exp(la), math.exp(lb)
        if kind == BLOB:
            half = 4.0 * max(a, b) + 2.0
        else:
            half = (math.hypot(a, b) if kind == RECTANGLE else max(a, b)) + 2.0
        r0, r1 = max(int(cy - half), 0), min(int(cy + half) + 2, self.shape[0])
        c0, c1 = max(int(cx - half), 0), min(int(cx + half) + 2, self.shape[1])
        box = (slice(r0, r1), slice(c0, c1))
        if r1 <= r0 or c1 <= c0:
            return box, None, None
        dy = self.yy[box] - cy
        dx = self.xx[box] - cx
        ct, st = math.cos(th), math.sin(th)
        u = dx * ct + dy * st
        v = -dx * st + dy * ct
        # ∂u, ∂v per parameter (cy, cx, log a, log b, θ)
        du = (-st, -ct, 0.0, 0.0, v)
        dv = (-ct, st, 0.0, 0.0, -u)
        if kind == BLOB:
            # unit-flux Gaussian of standard deviations a, b (already blurred: drawn after h_σ)
            ua, vb = u / a, v / b
            s = np.exp(-0.5 * (ua * ua + vb * vb)) / (2.0 * math.pi * a * b)
            if not derivatives:
                return box, s, None
            gu, gv = -s * ua / a, -s * vb / b
            ds = [gu * du[0] + gv * dv[0],
                  gu * du[1] + gv * dv[1],
                  s * (ua * ua - 1.0),
                  s * (vb * vb - 1.0),
                  gu * du[4] + gv * dv[4]]
            return box, s, ds
        if kind == ELLIPSE:
            q = u * u / (a * a) + v * v / (b * b)
            k = math.sqrt(a * b) / (2.0 * _EDGE_PX)
            z = (1.0 - q) * k
            s = special.ndtr(z)
            if not derivatives:
                return box, s, None
            phi = np.exp(-0.5 * z * z) * _INV_SQRT_2PI
            ua, vb = 2.0 * u / (a * a), 2.0 * v / (b * b)
            one_q = 0.5 * k * (1.0 - q)
            ds = [phi * (-k * (ua * du[0] + vb * dv[0])),
                  phi * (-k * (ua * du[1] + vb * dv[1])),
                  phi * (k * ua * u + one_q),
                  phi * (k * vb * v + one_q),
                  phi * (-k * (ua * du[4] + vb * dv[4]))]
            return box, s, ds
        zu = (a - np.abs(u)) / _EDGE_PX
        zv = (b - np.abs(v)) / _EDGE_PX
        su, sv = special.ndtr(zu), special.ndtr(zv)
        s = su * sv
        if not derivatives:
            return box, s, None
        gu = np.exp(-0.5 * zu * zu) * (_INV_SQRT_2PI / _EDGE_PX) * sv
        gv = np.exp(-0.5 * zv * zv) * (_INV_SQRT_2PI / _EDGE_PX) * su
        sgu, sgv = np.sign(u), np.sign(v)
        ds = [-(gu * sgu * du[0] + gv * sgv * dv[0]),
              -(gu * sgu * du[1] + gv * sgv * dv[1]),
              gu * a,
              gv * b,
              -(gu * sgu * du[4] + gv * sgv * dv[4])]
        return box, s, ds

    def scene(self, background, geom, kinds, amps, *, derivatives):
        """The unblurred mosaic x on the canvas, the sum of the (already blurred) blobs, and each
        shape's (box, indicator, ∂indicator)."""
        x = np.full(self.shape, background)
        post = np.zeros(self.shape) if BLOB in kinds else None
        parts = []
        for p, kind, amp in zip(geom, kinds, amps):
            box, s, ds = self.shape_image(p, kind, derivatives=derivatives)
            parts.append((box, s, ds))
            if s is not None:
                (post if kind == BLOB else x)[box] += amp * s
        return x, post, parts

    def model(self, sigma, background, geom, kinds, amps):
        x, post, _ = self.scene(background, geom, kinds, amps, derivatives=False)
        otf = gaussian_transfer(sigma, self.k2)
        mu = sfft.irfft2(sfft.rfft2(x) * otf, s=self.shape)
        if post is not None:
            mu += post
        return mu[self.window]

    def loss_grad(self, sigma, background, geom, kinds, amps):
        """½ Σ_window (μ − y)²/v and its gradient in (σ, B, per shape: 5 geometry, A)."""
        x, post, parts = self.scene(background, geom, kinds, amps, derivatives=True)
        otf = gaussian_transfer(sigma, self.k2)
        xf = sfft.rfft2(x)
        mu = sfft.irfft2(xf * otf, s=self.shape)[self.window]
        if post is not None:
            mu = mu + post[self.window]
        diff = mu - self.data
        res = diff / self.noise_var
        loss = 0.5 * float(np.vdot(res, diff))
        r = np.zeros(self.shape)
        r[self.window] = res
        rf = sfft.rfft2(r)
        g = sfft.irfft2(rf * otf, s=self.shape)
        dmu_dsigma_f = xf * otf * (-4.0 * math.pi**2 * sigma * self.k2)
        dsig = float(np.sum((rf.conj() * dmu_dsigma_f).real * self.rfft_weight)) / (self.shape[0] * self.shape[1])
        dgeom = np.zeros((len(geom), 5))
        damp = np.zeros(len(geom))
        for i, ((box, s, ds), amp, kind) in enumerate(zip(parts, amps, kinds)):
            if s is None:
                continue
            # blobs are drawn after the blur: their gradient is the residual itself
            gl = r[box] if kind == BLOB else g[box]
            damp[i] = float(np.vdot(gl, s))
            for j in range(5):
                dgeom[i, j] = amp * float(np.vdot(gl, ds[j]))
        return loss, dsig, float(np.sum(res)), dgeom, damp


def _refine(canvas, sigma, background, geom, kinds, amps, *, maxiter):
    """Joint L-BFGS-B fit of σ, B and every shape; returns (σ, B, geom, amps, ½χ², result)."""
    from scipy import optimize

    n = len(geom)
    amp_scale = max(float(np.median(np.abs(amps))) if n else 1.0, 1.0)

    def unpack(theta):
        return theta[0], theta[1] * amp_scale, theta[2 : 2 + 5 * n].reshape(n, 5), theta[2 + 5 * n :] * amp_scale

    def fun(theta):
        loss, dsig, dB, dgeom, damp = canvas.loss_grad(*unpack(theta)[:3], kinds, unpack(theta)[3])
        return loss, np.concatenate([[dsig, dB * amp_scale], dgeom.ravel(), damp * amp_scale])

    theta0 = np.concatenate([[sigma, background / amp_scale], np.asarray(geom, float).ravel(),
                             np.asarray(amps, float) / amp_scale])
    log_lo, log_hi = math.log(0.4), math.log(0.5 * max(canvas.shape))
    bounds = [(0.3, 0.25 * min(canvas.data.shape)), (None, None)]
    bounds += [(None, None), (None, None), (log_lo, log_hi), (log_lo, log_hi), (None, None)] * n
    bounds += [(None, None)] * n
    res = optimize.minimize(fun, theta0, jac=True, method="L-BFGS-B", bounds=bounds,
                            options={"maxiter": maxiter, "maxcor": 20})
    s, bg, gm, am = unpack(res.x)
    return s, bg, gm.copy(), am.copy(), float(res.fun), res


def _wiener_restoration(data, sigma, scene_power, corner_frequency, noise):
    """Linear MMSE restoration with the random-mosaic spectrum of the spectral stage."""
    rows, cols = data.shape
    mean = float(data.mean())
    per = periodic_component(data - mean)
    fy = sfft.fftfreq(rows)[:, None]
    fx = sfft.rfftfreq(cols)[None, :]
    k2 = fy * fy + fx * fx
    h = gaussian_transfer(sigma, k2)
    # the periodogram was normalised by rows·cols: S and N are per-pixel powers
    s = scene_power * (k2 + corner_frequency**2) ** -1.5
    filt = h * s / (h * h * s + noise)
    return sfft.irfft2(sfft.rfft2(per) * filt, s=data.shape) + mean


def _shapes_from_regions(rest, *, mask=None, min_area=4, split=0.0):
    """Ellipse or rectangle (whichever overlaps the region best) from each bright region's moments.

    ``split`` > 0: regions are first split at intensity dips deeper than ``split`` times the
    restoration's noise spread (:func:`~.region_split.split_regions`).
    """
    from scipy import ndimage

    if mask is None:
        matrix = float(np.median(rest))
        spread = 1.4826 * float(np.median(np.abs(rest[rest < matrix] - matrix)))
        mask = rest > matrix + 3.0 * max(spread, 1e-12)
    else:
        matrix = float(np.median(rest[~mask]))
        below = rest[~mask]
        spread = 1.4826 * float(np.median(np.abs(below[below < matrix] - matrix)))
    if split > 0:
        labels, _ = split_regions(rest, mask, split * max(spread, 1e-12))
    else:
        labels, _ = ndimage.label(mask)
    geom, kinds, amps = [], [], []
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        region = labels[sl] == i
        if int(region.sum()) < min_area:
            continue
        yy, xx = np.nonzero(region)
        yy = yy + float(sl[0].start)
        xx = xx + float(sl[1].start)
        cy, cx = yy.mean(), xx.mean()
        cov = np.cov(np.vstack([yy - cy, xx - cx])) + np.eye(2) / 12.0
        evals, evecs = np.linalg.eigh(cov)
        lam_major, lam_minor = max(evals[1], 0.1), max(evals[0], 0.1)
        th = math.atan2(evecs[0, 1], evecs[1, 1])  # major axis, from +col towards +row
        u = (xx - cx) * math.cos(th) + (yy - cy) * math.sin(th)
        v = -(xx - cx) * math.sin(th) + (yy - cy) * math.cos(th)
        best = None
        # uniform ellipse: variance along a semi-axis a is a²/4; rectangle of half-side a: a²/3
        for kind, factor in ((ELLIPSE, 4.0), (RECTANGLE, 3.0)):
            a, b = math.sqrt(factor * lam_major), math.sqrt(factor * lam_minor)
            if kind == ELLIPSE:
                inside = (u / a) ** 2 + (v / b) ** 2 <= 1.0
                area = math.pi * a * b
            else:
                inside = (np.abs(u) <= a) & (np.abs(v) <= b)
                area = 4.0 * a * b
            iou = inside.sum() / (yy.size + area - inside.sum())
            if best is None or iou > best[0]:
                best = (iou, kind, a, b)
        _, kind, a, b = best
        geom.append([cy, cx, math.log(a), math.log(b), th])
        kinds.append(kind)
        amps.append(float(rest[sl][region].mean()) - matrix)
    return np.array(geom, dtype=float).reshape(-1, 5), kinds, np.array(amps, dtype=float), matrix


def _residual_blobs(canvas, sigma, background, geom, kinds, amps, *, threshold, max_new):
    """New small ellipses where the matched-filtered residual exceeds ``threshold`` (its SNR)."""
    from scipy import ndimage

    resid = canvas.data - canvas.model(sigma, background, geom, kinds, amps)
    radius = 2.0
    width = math.hypot(sigma, radius / math.sqrt(2.0))
    num = ndimage.gaussian_filter(resid, width, mode="constant")
    # white noise of variance v through a unit-sum Gaussian of width w: variance v / (4π w²)
    snr = num / math.sqrt(canvas.noise_var / (4.0 * math.pi * width * width))
    mag = np.abs(snr)
    peak = ndimage.maximum_filter(mag, size=int(2.0 * sigma) | 1, mode="constant")
    idx = np.argwhere((mag == peak) & (mag > threshold))
    order = np.argsort(-mag[idx[:, 0], idx[:, 1]])[:max_new]
    new_geom, new_amps = [], []
    # a disc of radius r blurred by σ peaks at 1 − exp(−r²/2σ²) of its level
    gain = 1.0 - math.exp(-radius * radius / (2.0 * sigma * sigma))
    for i in order:
        rr, cc = idx[i]
        new_geom.append([rr + canvas.margin, cc + canvas.margin, math.log(radius), math.log(radius), 0.0])
        new_amps.append(float(num[rr, cc]) * (width / sigma) ** 2 / gain)
    return np.array(new_geom, dtype=float).reshape(-1, 5), np.array(new_amps, dtype=float)


def _block_sum(data, f):
    rows, cols = (data.shape[0] // f) * f, (data.shape[1] // f) * f
    return data[:rows, :cols].reshape(rows // f, f, cols // f, f).sum(axis=(1, 3))


def _otsu_threshold(values, bins=256):
    """Level that best splits ``values`` into two classes (Otsu: largest between-class variance)."""
    hist, edges = np.histogram(values, bins)
    centres = 0.5 * (edges[1:] + edges[:-1])
    w0 = np.cumsum(hist, dtype=float)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (m0 * w1 - (m0[-1] - m0) * w0) ** 2 / (w0 * w1)
    return float(centres[np.nanargmax(between)])


def _rl_restoration(data, sigma, num_iter=50):
    """Richardson–Lucy restoration at σ (the map shifted to be non-negative, then shifted back)."""
    from .. import richardson_lucy
    from ._gaussian import gaussian

    shifted = data - float(data.min())
    rest = np.asarray(richardson_lucy(shifted, gaussian(None, sigma), num_iter=num_iter), dtype=np.float64)
    if not np.all(np.isfinite(rest)):
        # guard: never hand a non-finite restoration to the Otsu split; the map itself still has the shapes
        return data.copy()
    return rest + float(data.min())


def _small_shapes_to_blobs(geom, kinds, amps, sigma, limit):
    """Shapes whose larger semi-axis is below ``limit``·σ become blurred Gaussian blobs of free width."""
    geom, amps, kinds = geom.copy(), amps.copy(), list(kinds)
    for i, (p, kind) in enumerate(zip(geom, kinds)):
        a, b = math.exp(p[2]), math.exp(p[3])
        if kind == BLOB or max(a, b) >= limit * sigma:
            continue
        # variance of the uniform shape along each axis (ellipse a²/4, rectangle a²/3) plus σ²
        factor, area = (4.0, math.pi * a * b) if kind == ELLIPSE else (3.0, 4.0 * a * b)
        geom[i, 2] = 0.5 * math.log(sigma * sigma + a * a / factor)
        geom[i, 3] = 0.5 * math.log(sigma * sigma + b * b / factor)
        amps[i] *= area
        kinds[i] = BLOB
    return geom, kinds, amps


def fit_mosaic_scene(data, spectral, *, threshold=5.0, max_rounds=4, max_new=25, maxiter=300, init="wiener",
                     blob_below=0.0, split=0.0):
    """σ (pixels) of the Gaussian spot by the blurred-mosaic fit (see the module docstring).

    Parameters
    ----------
    data : ndarray of float64, shape (rows, cols)
        Counts.
    spectral : dict
        Output of the spectral stage (``sigma_u``, ``sigma_v``, ``scene_power``,
        ``corner_frequency``, ``noise``): σ₀ and the Wiener filter for the
        initial shapes.
    threshold : float
        Matched-filter SNR above which a residual blob becomes a new shape.
    max_rounds, max_new : int
        Rounds of shape additions, and shapes added per round at most.
    maxiter : int
        L-BFGS-B iterations of the final joint fit.
    init : {"wiener", "richardson-lucy"}
        Restoration the initial shapes are read from (see the module docstring).
    blob_below : float
        Shapes whose larger semi-axis is below this many σ become free-width
        blurred Gaussian blobs (see the module docstring); 0 keeps all shapes.
    split : float
        Split the seed regions at intensity dips deeper than this many noise
        spreads of the restoration (robust standard deviation of the matrix
        pixels; :func:`~.region_split.split_regions`); 0 does not split.

    Returns
    -------
    MosaicFit
        ``sigma`` (pixels), ``reduced_chi2`` (χ² per block of the final fit,
        with the noise variance of the spectral stage), ``n_shapes``,
        ``n_rectangles``, ``n_blobs``, ``block`` (f), ``rounds``, ``iterations``,
        ``init``, ``n_params``, ``n_data`` (blocks) and ``bic`` (χ² + n_params ln n_data).

    References
    ----------
    G. Schwarz, "Estimating the dimension of a model", Ann. Stat. 6, 461
    (1978), doi:10.1214/aos/1176344136.
    """
    sigma0 = math.sqrt(spectral["sigma_u"] * spectral["sigma_v"])
    # B absorbs any constant; removing the median first makes counts and counts + c give the same fit
    data = data - np.median(data)
    if init == "wiener":
        rest = _wiener_restoration(data, sigma0, spectral["scene_power"], spectral["corner_frequency"],
                                   spectral["noise"])
        geom, kinds, amps, matrix = _shapes_from_regions(rest, split=split)
    elif init == "richardson-lucy":
        rest = _rl_restoration(data, sigma0)
        geom, kinds, amps, matrix = _shapes_from_regions(rest, mask=rest > _otsu_threshold(rest), split=split)
    else:
        raise ValueError(f"init must be 'wiener' or 'richardson-lucy', got {init!r}")
    f = max(1, int(sigma0 / 1.75))
    if f > 1:
        data = _block_sum(data, f)
        geom[:, :2] = (geom[:, :2] - 0.5 * (f - 1)) / f
        geom[:, 2:4] -= math.log(f)
        amps = amps * f * f
        matrix *= f * f
    sigma = sigma0 / f
    canvas = _Canvas(data, f * f * spectral["noise"], math.ceil(5.0 * sigma) + 2)
    geom[:, :2] += canvas.margin
    background = matrix
    rounds = 0
    for rounds in range(1, max_rounds + 1):
        sigma, background, geom, amps, loss, _ = _refine(canvas, sigma, background, geom, kinds, amps, maxiter=100)
        if blob_below > 0:
            geom, kinds, amps = _small_shapes_to_blobs(geom, kinds, amps, sigma, blob_below)
        new_geom, new_amps = _residual_blobs(canvas, sigma, background, geom, kinds, amps,
                                             threshold=threshold, max_new=max_new)
        if not len(new_geom):
            break
        geom = np.vstack([geom, new_geom])
        amps = np.concatenate([amps, new_amps])
        kinds = list(kinds) + [ELLIPSE] * len(new_geom)
    if blob_below > 0:
        geom, kinds, amps = _small_shapes_to_blobs(geom, kinds, amps, sigma, blob_below)
    sigma, background, geom, amps, loss, res = _refine(canvas, sigma, background, geom, kinds, amps, maxiter=maxiter)
    # σ, B and six parameters per shape (five of geometry, one level) or blob (five of geometry, one flux)
    n_params = 2 + 6 * len(geom)
    return MosaicFit(sigma=f * sigma, block=f, n_shapes=len(geom), rounds=rounds, init=init,
                     n_params=n_params, n_data=int(data.size),
                     bic=2.0 * loss + n_params * math.log(data.size),
                     n_blobs=int(sum(k == BLOB for k in kinds)),
                     reduced_chi2=2.0 * loss / data.size, iterations=int(res.nit),
                     n_rectangles=int(sum(k == RECTANGLE for k in kinds)))
