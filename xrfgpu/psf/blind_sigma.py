"""Blind estimate of a Gaussian PSF σ from the blurred map alone."""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass

import numpy as np

from .._backend import array_device, array_namespace, is_numpy_namespace, to_numpy
from .._validate import as_background, as_image
from ._gaussian import _check_pixel_size
from ._bfgs import minimize_bfgs
from ._results import PixelLengths
from ._spectra import half_plane_weights, periodic_component, ring_sums, ring_table, windowed_periodogram
from .edge_profiles import combine_profile_sigmas, profiles_on_thinned_halves, smoothed_gradient
from .elongation import covariance_to_axes, directional_edge_fit, spectral_ellipse
from .mosaic_scene_fit import fit_mosaic_scene

__all__ = ["SigmaEstimate", "SigmaUncertainWarning", "estimate_sigma"]

# the mosaic model is accepted when its χ² per pixel (noise of the spectral stage) is at most this:
# above 1.2 the misfit measured on bar charts is local (merged or missed bars) and the RL-seeded σ
# (0.92–1.08 × truth at σ = 10, χ² 1.01–1.26, seeds 0–9) beats the spectral fallback (0.85–1.11)
_MOSAIC_CHI2_MAX = 1.35
# the Richardson–Lucy-seeded mosaic fit is also tried when the Wiener-seeded one's χ² per pixel
# exceeds this (about two standard deviations of χ²/n above 1 for 1600–2500 blocks); the lower BIC wins
_RL_TRIGGER = 1.05
# shapes smaller than this many σ become free-width blurred blobs in the mosaic fit (0: never)
_BLOB_BELOW = 1.0
# RL seed regions are split at intensity dips deeper than this many noise spreads of the restoration:
# the same three standard deviations at which bright regions are told from the matrix
_SPLIT_DIP = 3.0
# scene laws k^-β of the spectral profile: the mosaic law 3 and its neighbours; their spread is the
# model part of the interval
_BETAS = (2.5, 3.0, 3.5)
# the profile fits the scene exponent β per map, with a Gaussian prior (mean, standard deviation) centred
# on the mosaic law: on the 192 maps of sigma_scenes.TUNING_EXTENDED the median |error| of the default path
# was 9.4 % with β fixed at 3, 8.1 % with prior sd 0.5, 7.7 / 6.6 / 6.6 / 7.1 % with sd 0.1 / 0.15 / 0.2 / 0.3
# (90th pct 30.5 % fixed, 27.1 / 27.0 / 26.4 / 26.5 %); a free β without prior trades the scene law against σ
_BETA_PRIOR = (3.0, 0.2)
# points of the σ grid of the spectral profile (log-spaced from 0.4 px to min(40, side/4) px; the minimum is
# refined by a parabola in log σ through its three nearest points). The parabola on this grid (16.6 % steps at
# 512²) puts the minimum of the asymmetric profile 1–2 % low (tests: the expected spectrum). A finer grid
# removes most of that (61 points: median signed error of the spectral σ on the tuning maps of
# benchmarks/sigma_scenes.py -4.0 / -4.2 % -> -2.8 / -3.1 %, TUNING_EXTENDED / TUNING_MORE) but did not
# improve the whole estimator there (median / 90th pct / worst |error| 6.0 / 26.4 / 87.7 % -> 7.1 / 27.9 /
# 88.0 % and 7.5 / 25.7 / 95.0 % -> 7.3 / 25.1 / 95.0 %: seven maps change stage because the straight-edge
# stage's strips and minimum length scale with the spectral σ) at 1.5 times the CPU, so 31 stay
_PROFILE_POINTS = 31
# model-error allowance of the spectral interval (multiplies its ends): on the tuning scenes of
# benchmarks/sigma_scenes.py the spectral σ ran 0.45–1.02 × truth, mostly low, while the profiles'
# own intervals covered the truth on 8 of 24 maps; widened by (0.9, 1.35) they covered it on 20 of 24.
# With the scene exponent fitted, on the 168 maps of TUNING_EXTENDED decided by the spectrum, (0.9, 1.35)
# covered the truth on 89 % and (0.8, 1.4) on 95 %. The spectral interval is then about a factor 2.2 wide even
# on informative maps, so the reliability limits below scale with it (2 → 2.3, 4 → 4.6): the same 18 % of
# those maps are flagged as with (0.9, 1.35) and limits 2 and 4
_SPECTRAL_ALLOWANCE = (0.8, 1.4)
# sub-map agreement: the spectral σ is also fitted on the four corner sub-maps of this fraction of the
# map's side (overlapping; chosen before measuring, not tuned), and the spectral interval is widened to
# contain their σ's. A scene whose law changes across the map (text beside a margin, a photograph's sky
# beside its detail) gives sub-maps that disagree, and its interval widens until it is flagged. On the
# 192 extended tuning maps (sigma_scenes.TUNING_EXTENDED) the maps not flagged went from worst 86 % /
# 90th pct 22 % to 27 % / 18 % (coverage 93 -> 96 %), on 192 further tuning maps (seeds 24-47) from
# 40 % / 19 % to 34 % / 16 % (96 -> 99 %); 29 % of the maps are then flagged instead of 18-19 %
_SUBMAP_FRACTION = 0.625
#: the smallest side, pixels, of a map (or corner sub-map) whose σ the estimator reads
MIN_SIDE_PX = 32
# the local edge-profile stage (xrfgpu.psf.edge_profiles) decides σ on maps without straight-edge consensus
# when at least this many profiles pass (reduced χ² ≤ _PROFILE_CHI2_MAX), their σ's agree (robust spread of
# ln σ, 1.4826 MAD, at most _PROFILE_SPREAD_MAX) and their median lies inside the whole map's spectral
# interval. Chosen on the 192 extended tuning maps of benchmarks/sigma_scenes.py (spread limits 0.1 / 0.15 /
# 0.2 / 0.3 / none, minimum counts 8 / 15 / 30 / 60, χ² limits 1.1 / 1.2 / 1.5, and a consistency test of
# the spread against the profiles' own standard errors: 0.1 gave the lowest median and did not move the tail)
_PROFILE_MIN = 8
_PROFILE_CHI2_MAX = 1.2
_PROFILE_SPREAD_MAX = 0.1
# the edge-profile interval: median × exp(±2 standard errors of ln σ), widened by this factor each way
_PROFILE_ALLOWANCE = 1.1
# profiles that pass (at least _PROFILE_MIN) and spread by more than _PROFILE_SPREAD_MAX but at most
# _PROFILE_BLEND_SPREAD_MAX in ln σ, with their median inside the whole map's spectral interval, do not decide
# alone but share the answer with the spectrum: σ is the weighted geometric mean of the two readings, the
# profiles' median with weight _PROFILE_BLEND_WEIGHT (method "whittle+edge-profiles"; the interval and the
# reliability stay the spectrum's). On the maps of the three tuning sets that the spectrum decided where the
# profiles spread by 0.1-0.3 inside its interval (36 / 31 / 35), the profiles' median and the spectral σ were
# about equally good (median |error| 8.8 / 9.2 / 5.2 % and 8.4 / 6.7 / 5.8 %) with weakly correlated errors
# (of ln σ: +0.07, +0.40, -0.07; benchmarks/sigma_stage_choice.py). The weight was chosen on
# benchmarks/sigma_scenes_fresh.FRESH_TUNING_MORE (1/4, 1/3 and 1/2 gave the maps not flagged a 90th
# percentile of 17.8 / 16.9 / 16.9 %, against 20.1 % before) and confirmed
# on sigma_scenes.TUNING_EXTENDED and TUNING_MORE, where 1/2 let the worst unflagged map go from 27 to 30 %
# and 1/3 improved every figure or left it (docs/psf_measurement.md, sixth round). The spread limits 0.2,
# 0.25, 0.3 and 0.35 gave the same figures on the fresh maps
_PROFILE_BLEND_SPREAD_MAX = 0.3
_PROFILE_BLEND_WEIGHT = 1.0 / 3.0
# edge profiles that spread by at most this in ln σ (the blend's limit) and lie outside the spectral interval make
# the two stages disagree, and σ uncertain. It was _PROFILE_SPREAD_MAX (0.1): a checkerboard whose 38 profiles read
# 5.7 px (truth 6) against the spectrum's 10.9 px was flagged or not by the luck of the split (spread 0.089 in one
# draw, 0.125 in another). On sigma_scenes.TUNING_EXTENDED the maps not flagged read 3.8 / 18.5 / 31.7 % (median /
# 90th / worst) at 0.1, 3.7 / 17.8 / 31.7 % at 0.2 (a photo σ 4 read 3.1, spread 0.16, flagged) and 3.6 / 17.7 /
# 31.7 % at 0.3 (also bars σ 12 read 14.8, spread 0.30). At 0.3 a grain map at σ 10 that the mosaic fit reads
# right (9.5 px) is flagged too (its profiles read 6.3 px, spread 0.28: at large σ short profiles read low): a
# warning on a right σ costs less than a silent wrong one, so 0.3 (sixteenth session; the held-out draws were
# measured at 0.3 and, once, at 0.2, after this choice was first made)
_PROFILE_DISAGREE_SPREAD_MAX = _PROFILE_BLEND_SPREAD_MAX
# a fitted scene exponent below this (a scene spectrum that rises with frequency, which no stationary
# scene has; the periodic checkerboards of the fresh tuning maps fitted k^+1.7 against a prior centred on
# k^-3, and read σ 73 % high) means the blurred power law does not describe the map: no σ information
_SCENE_EXPONENT_MIN = 0.0
# elongated spots (xrfgpu.psf.elongation; see estimate_sigma, Notes, "Elongated spots"). Chosen on the tuning
# maps of benchmarks/sigma_elongated.py (TUNING, TUNING_MORE) and the round maps of sigma_scenes.TUNING_EXTENDED:
# the spot is called elongated when the edge profiles' σ(θ) fit is clean and the 5th percentile of its axis
# ratio (bootstrap) is at least _ELONGATION_RATIO, or, without clean edges, when the directional spectrum of the
# whole map and of each corner sub-map all show an axis ratio of at least _ELONGATION_SPECTRAL_LOW along the
# whole map's long axis; "may be elongated" (a warning, σ unchanged) when all but one of them show
# _ELONGATION_SPECTRAL_MAYBE, or the clean edges' lower ratio exceeds _ELONGATION_ROUND_VETO
_ELONGATION_MIN_PROFILES = 12
_ELONGATION_NORMAL_SPREAD = 0.05
_ELONGATION_RATIO = 1.1
_ELONGATION_ROUND_VETO = 1.05
_ELONGATION_SPECTRAL_LOW = 1.2
_ELONGATION_SPECTRAL_MAYBE = 1.25
# the estimate is called reliable when hi/lo of its interval is at most this
_RELIABLE_RATIO = 2.3
# and it carries no σ information when hi/lo exceeds this or the profile is flat to a grid end
_NO_INFORMATION_RATIO = 4.6


class SigmaUncertainWarning(UserWarning):
    """:func:`estimate_sigma` could not pin σ down: the interval is wide or the map carries no σ information."""


@dataclass(frozen=True)
class SigmaEstimate(PixelLengths):
    """Result of :func:`estimate_sigma`.

    Attributes
    ----------
    sigma : float
        Estimated isotropic σ in pixels (√(σu σv) when elliptical).
    sigma_u, sigma_v, rho : float
        Elliptical parameters (equal to ``sigma``, ``sigma``, 0 for the
        isotropic model). u = columns, v = rows.
    method : str
        Which estimator produced the number ("straight-edges",
        "edge-profiles", "whittle", "whittle+edge-profiles" (the spectrum
        and edge profiles that spread too much to decide alone, together),
        "mosaic-scene"; "elliptical-edge-profiles" or "elliptical-spectrum"
        when the spot was found elongated).
    noise_level : float
        Fitted white-noise power per pixel (counts² for a count map).
    details : dict
        Estimator-specific diagnostics.
    pixel_size_um : float or None
        Scan step for the ``*_um`` twins.
    interval : (float, float) or None
        Range of σ (pixels) that the evidence supports (see
        :func:`estimate_sigma`, Notes, "Interval").
    reliable : bool
        Whether the interval is narrow enough to restore with (hi/lo ≤ 2.3) or
        independent stages agree.
    evidence : str
        What decided σ, in words.
    """

    sigma: float
    sigma_u: float
    sigma_v: float
    rho: float
    method: str
    noise_level: float = float("nan")
    details: dict | None = None
    pixel_size_um: float | None = None
    interval: tuple | None = None
    reliable: bool = True
    evidence: str = ""

    def __float__(self) -> float:
        return float(self.sigma)

    sigma_u_um = property(lambda self: self._um(self.sigma_u), doc="σu in µm.")
    sigma_v_um = property(lambda self: self._um(self.sigma_v), doc="σv in µm.")

    @property
    def elongated(self) -> bool:
        """Whether the estimate is an elliptical spot (σu ≠ σv or ρ ≠ 0), as ``elongation=True`` can find."""
        return float(self.sigma_u) != float(self.sigma_v) or float(self.rho) != 0.0

    def psf(self, shape=None, *, xp=None, device=None, dtype=None):
        """The estimated Gaussian PSF (see :func:`xrfgpu.psf.gaussian`)."""
        from ._gaussian import gaussian

        return gaussian(shape, self.sigma_u, self.sigma_v, self.rho, xp=xp, device=device, dtype=dtype)


def _whittle_fit(data, *, elliptical):
    """Maximum Whittle likelihood of the blurred random-mosaic spectrum; returns params dict."""
    from scipy import fft as sfft
    from scipy import optimize

    rows, cols = data.shape
    per = periodic_component(data - data.mean())
    power = np.abs(sfft.rfft2(per)) ** 2 / (rows * cols)
    ky = sfft.fftfreq(rows)[:, None] * np.ones((1, power.shape[1]))
    kx = sfft.rfftfreq(cols)[None, :] * np.ones((rows, 1))
    # each rfft column except the first (and Nyquist for even widths) stands for two frequencies
    weight = half_plane_weights((rows, cols))
    keep = (kx * kx + ky * ky) > 0
    power, kx, ky, weight = power[keep], kx[keep], ky[keep], weight[keep]
    k2 = kx * kx + ky * ky
    high = power[k2 > 0.16]
    noise0 = float(np.median(high)) / math.log(2.0) if high.size else float(np.median(power))
    noise0 = max(noise0, 1e-12 * float(power.max()) + 1e-300)
    four_pi2 = 4.0 * math.pi**2

    def unpack(theta):
        if elliptical:
            log_a, su, sv, t_rho, log_n, log_k0 = theta
            rho = math.tanh(t_rho)
        else:
            log_a, su, log_n, log_k0 = theta
            sv, rho = su, 0.0
        return log_a, abs(su), abs(sv), rho, log_n, log_k0

    def spectrum(theta):
        log_a, su, sv, rho, log_n, log_k0 = unpack(theta)
        quad = su * su * kx * kx + sv * sv * ky * ky + 2.0 * rho * su * sv * kx * ky
        scene = np.exp(log_a) * (k2 + math.exp(2.0 * log_k0)) ** -1.5
        return scene * np.exp(-four_pi2 * quad) + math.exp(log_n)

    def nll(theta):
        p = spectrum(theta)
        return float(np.sum(weight * (np.log(p) + power / p)))

    low = power[k2 < 0.0004]
    amp0 = math.log(max(float(low.mean()) if low.size else noise0, noise0)) + 1.5 * math.log(0.0004)
    best = None
    for s0 in (1.5, 3.0, 6.0, 12.0):
        if elliptical:
            theta0 = [amp0, s0, s0, 0.0, math.log(noise0), math.log(0.01)]
        else:
            theta0 = [amp0, s0, math.log(noise0), math.log(0.01)]
        res = optimize.minimize(
            nll, theta0, method="Nelder-Mead", options={"maxiter": 3000, "xatol": 1e-4, "fatol": 1e-6}
        )
        if best is None or res.fun < best.fun:
            best = res
    _log_a, su, sv, rho, log_n, log_k0 = unpack(best.x)
    return {"sigma_u": su, "sigma_v": sv, "rho": rho, "noise": math.exp(log_n),
            "corner_frequency": math.exp(log_k0), "scene_power": math.exp(best.x[0]), "nll": best.fun}


_STRIPE_BAND = (0.3, 0.5)
_STRIPE_RATIO = 3.0
"""Above this excess of axis power (:func:`_stripe_ratios`) a map has row or column stripes, and the ring
spectrum leaves that axis out. Maps without stripes gave at most 1.9 (192 tuning maps, five HXN maps)."""
_AXIS_BINS_LEFT_OUT = 1
"""Frequency bins either side of a striped axis that the ring spectrum leaves out (the Hann window
spreads the axis's power one bin further)."""


def _ring_geometry(shape):
    """What :func:`_ring_spectrum` needs of a map's shape alone: the Hann taper with its sum and its
    sum of squares, the half plane's weights, each bin's ring, and per kept ring its weight and mean
    k². The four corner sub-maps share one shape, so :func:`_submap_sigmas` builds it once for them."""
    from scipy import fft as sfft
    from scipy.signal import windows

    rows, cols = shape
    taper = np.outer(windows.hann(rows, sym=False), windows.hann(cols, sym=False))
    ky = sfft.fftfreq(rows)[:, None]
    kx = sfft.rfftfreq(cols)[None, :]
    k2 = kx * kx + ky * ky
    w = half_plane_weights((rows, cols))
    n = min(rows, cols)
    ring = np.floor(np.sqrt(k2) * n).astype(np.int64).ravel()
    m = np.bincount(ring, w.ravel())
    mean_k2 = np.bincount(ring, (w * k2).ravel())
    idx = np.arange(m.size)
    keep = (idx >= 3) & (m > 0)
    ay, ax = np.abs(ky[:, 0]), kx[0]
    band_rows = (ay >= _STRIPE_BAND[0]) & (ay <= _STRIPE_BAND[1])
    band_cols = (ax >= _STRIPE_BAND[0]) & (ax <= _STRIPE_BAND[1])
    off_rows = (ay * rows >= 3) & (ay * rows <= 6)  # 3–6 bins off the ky = 0 axis, both signs
    return {"shape": (rows, cols), "taper": taper, "taper_sum": taper.sum(),
            "taper_power": float((taper * taper).sum()), "weights": w.ravel(), "ring": ring, "keep": keep,
            "m": m[keep], "mean_k2": mean_k2[keep] / m[keep], "k2": k2,
            "band_rows": band_rows, "band_cols": band_cols, "off_rows": off_rows,
            "axis_rows": ay * rows <= _AXIS_BINS_LEFT_OUT, "axis_cols": ax * cols <= _AXIS_BINS_LEFT_OUT}


def _stripe_ratios(power, geometry):
    """Excess power on the frequency axes at high frequency: (rows, columns).

    Row stripes (a gain that changes from one scan line to the next: beam current, a fly scan's line
    overhead) add the same offset to a whole row, so their power lies on the kx = 0 column of the
    spectrum at every ky; column stripes on the ky = 0 row. Each ratio is the mean power on that axis
    over |k| in :data:`_STRIPE_BAND` (cycles/px, where a blur of σ ≥ 1 px leaves little of the scene)
    divided by the mean over the bins 3–6 off the axis at the same frequencies: about 1 on maps
    without stripes (0.5–1.9 on 192 tuning maps and the five HXN maps), 3–67 with 1 % row jitter.
    """
    rows_ratio = float(power[geometry["band_rows"], 0].mean() / power[geometry["band_rows"], 3:7].mean())
    cols_ratio = float(power[0, geometry["band_cols"]].mean()
                       / power[geometry["off_rows"]][:, geometry["band_cols"]].mean())
    return rows_ratio, cols_ratio


def _ring_spectrum(data, geometry=None, *, report=None, leave_out_stripes=True, xp=None):
    """Hann-windowed periodogram averaged over rings 1/n wide: (mean k², mean power, weight).

    The window (Hann along each axis, the mean removed with the window's weights, power
    normalised by Σw² so that white noise of variance N has power N) stops the strong
    low-frequency power of the scene from leaking to the high frequencies where the blur is
    read: Moisan's periodic component alone left leakage falling only as |k|^-4, slower than the
    blurred spectrum, and σ came out 15–55 % low on the tuning scenes. Rings 0–2, inside the
    window's main lobe around zero frequency, are left out. ``geometry``: :func:`_ring_geometry`
    of ``data.shape``, when the caller has it. With ``leave_out_stripes`` a frequency axis whose
    high-frequency power marks scan stripes (:func:`_stripe_ratios`) is left out of every ring;
    ``report`` (a dict) receives both ratios and which axes were left out.

    ``data`` is a NumPy array, or, with ``xp`` another array-API namespace, an array of it: a map
    on a device (CuPy) then has its periodogram and ring sums computed there
    (:func:`._spectra.windowed_periodogram`, :func:`._spectra.ring_sums`), and only the ring sums
    and the stripe ratios come to the host. Those sums are added in another order than
    ``numpy.bincount`` adds them on the host, so the two paths agree to rounding, not bit for bit.
    """
    if geometry is None or geometry["shape"] != tuple(data.shape):
        geometry = _ring_geometry(tuple(data.shape))
    keep, m = geometry["keep"], geometry["m"]
    if xp is None or is_numpy_namespace(xp):
        from scipy import fft as sfft

        taper = geometry["taper"]
        centred = (data - float((data * taper).sum() / geometry["taper_sum"])) * taper
        power = np.abs(sfft.rfft2(centred)) ** 2 / geometry["taper_power"]
        rows_ratio, cols_ratio = _stripe_ratios(power, geometry)
        flat_power = power.ravel()

        def ring_total(weights):
            return np.bincount(geometry["ring"], weights * flat_power, minlength=keep.size)
    else:
        device = _device_geometry(geometry, xp, array_device(data))
        power = windowed_periodogram(data, device["taper"], float(geometry["taper_sum"]), geometry["taper_power"],
                                     xp=xp)
        rows_ratio, cols_ratio = _stripe_ratios_xp(power, device, xp)

        def ring_total(weights):
            return ring_sums(power, xp.asarray(weights, device=array_device(data)), device["table"], xp=xp)
    striped = [name for name, ratio in (("rows", rows_ratio), ("columns", cols_ratio))
               if leave_out_stripes and ratio > _STRIPE_RATIO]
    if report is not None:
        report.update(stripe_ratio_rows=rows_ratio, stripe_ratio_columns=cols_ratio, stripes=striped)
    if not striped:
        total = ring_total(geometry["weights"])
        return geometry["mean_k2"].copy(), total[keep] / m, m.copy()
    # stripes: the axis (and its Hann neighbours) is left out of every ring, so it does not read as
    # scene or noise power; on maps without stripes the axes stay in (bars and grains along the scan
    # axes put their edges' power there)
    w = geometry["weights"].reshape(geometry["k2"].shape).copy()
    if "rows" in striped:
        w[:, geometry["axis_cols"]] = 0.0
    if "columns" in striped:
        w[geometry["axis_rows"], :] = 0.0
    w = w.ravel()
    m_all = np.bincount(geometry["ring"], w, minlength=keep.size)[keep]
    k2_all = np.bincount(geometry["ring"], w * geometry["k2"].ravel(), minlength=keep.size)[keep]
    total = ring_total(w)[keep]
    ok = m_all > 0
    return k2_all[ok] / m_all[ok], total[ok] / m_all[ok], m_all[ok]


def _device_geometry(geometry, xp, device):
    """The parts of :func:`_ring_geometry` that :func:`_ring_spectrum` needs on a device: the taper, the
    bins of each ring (:func:`._spectra.ring_table`) and the index arrays of the stripe bands, made once
    per namespace and device and kept in ``geometry``."""
    key = ("device", xp.__name__, str(device))
    if key not in geometry:
        rows, cols = geometry["shape"]
        on_device = functools.partial(xp.asarray, device=device)
        geometry[key] = {
            "taper": on_device(geometry["taper"]),
            "table": on_device(ring_table(geometry["ring"])),
            "band_rows": on_device(np.flatnonzero(geometry["band_rows"])),
            "band_cols": on_device(np.flatnonzero(geometry["band_cols"])),
            "off_rows": on_device(np.flatnonzero(geometry["off_rows"])),
        }
    return geometry[key]


def _stripe_ratios_xp(power, device, xp):
    """:func:`_stripe_ratios` of a periodogram in namespace ``xp`` (``device``: :func:`_device_geometry`)."""
    band_rows, band_cols = device["band_rows"], device["band_cols"]
    rows_ratio = (xp.mean(xp.take(power[:, 0], band_rows, axis=0))
                  / xp.mean(xp.take(power[:, 3:7], band_rows, axis=0)))
    off_axis = xp.take(xp.take(power, device["off_rows"], axis=0), band_cols, axis=1)
    cols_ratio = xp.mean(xp.take(power[0, :], band_cols, axis=0)) / xp.mean(off_axis)
    return float(rows_ratio), float(cols_ratio)


_LOG_K0_RANGE = (math.log(1e-4), math.log(0.3))


def _spectral_nll(theta, k2, power, weight, beta, beta_prior=None):
    """Ring Whittle negative log-likelihood and its gradient in θ = (log A, t, log N, log σ[, β]).

    The corner frequency is k0 = exp(l), l = lo + (hi − lo)/(1 + e^−t) kept in ``_LOG_K0_RANGE``
    (a smooth bound, so that an unconstrained BFGS can be used: SciPy's L-BFGS-B spent 1 ms per
    step in its Fortran driver on these three- and four-parameter problems). With ``beta_prior``
    = (mean, sd) the scene exponent is the fifth parameter (``beta`` is then ignored) and the
    Gaussian prior's −log density, (β − mean)²/(2 sd²), is added (a penalised likelihood).
    """
    if beta_prior is not None:
        log_a, t_k0, log_n, log_s, beta = theta
    else:
        log_a, t_k0, log_n, log_s = theta
    lo, hi = _LOG_K0_RANGE
    squash = 1.0 / (1.0 + math.exp(-max(min(t_k0, 50.0), -50.0)))
    log_k0 = lo + (hi - lo) * squash
    s = math.exp(max(min(log_s, 10.0), -10.0))
    k0sq = math.exp(2.0 * log_k0)
    four_pi2 = 4.0 * math.pi**2
    log_k2 = np.log(k2 + k0sq)
    # exponents clipped so that no intermediate overflows while the optimiser explores
    with np.errstate(under="ignore"):
        scene = np.exp(np.minimum(log_a - 0.5 * beta * log_k2 - four_pi2 * s * s * k2, 600.0))
    noise = math.exp(max(min(log_n, 60.0), -60.0))  # the power is scaled to a median of 1
    p = scene + noise
    ratio = power / p
    value = float(np.sum(weight * (np.log(p) + ratio)))
    dp = weight * (1.0 - ratio) / p
    grad = [
        float(np.sum(dp * scene)),
        float(np.sum(dp * scene * (-beta * k0sq / (k2 + k0sq)))) * (hi - lo) * squash * (1.0 - squash),
        float(np.sum(dp)) * noise,
        float(np.sum(dp * scene * (-2.0 * four_pi2 * s * s * k2))),
    ]
    if beta_prior is not None:
        mean, sd = beta_prior
        value += 0.5 * ((beta - mean) / sd) ** 2
        grad.append(float(np.sum(dp * scene * (-0.5 * log_k2))) + (beta - mean) / sd**2)
    return value, np.array(grad)


class _ProfileLikelihood:
    """:func:`_spectral_nll` at one fixed σ, as a function of the other parameters: (value, gradient without
    its σ entry), what the σ profile minimises at each grid point.

    The same floating-point operations as :func:`_spectral_nll` (so the same numbers, bit for bit), with
    what depends on σ alone (4π²σ²k²) computed once per σ, the terms shared
    by the value and the gradient computed once, and the σ entry of the gradient, which the profile
    drops, not computed. The value and the gradient at one point are kept for BFGS's second request.
    """

    def __init__(self, k2, power, weight, beta, beta_prior):
        self.k2, self.power, self.weight = k2, power, weight
        self.beta, self.beta_prior = beta, beta_prior
        self._work = np.empty((5, k2.size))
        self._at = None
        self._value = self._grad = None

    def at_sigma(self, log_s):
        """Fix σ = exp(``log_s``) px (as :func:`_spectral_nll` reads log σ, clipped to ±10)."""
        s = math.exp(max(min(log_s, 10.0), -10.0))
        four_pi2 = 4.0 * math.pi**2
        self._blur = four_pi2 * s * s * self.k2
        self._at = None
        return self

    def _evaluate(self, theta):
        if self.beta_prior is not None:
            log_a, t_k0, log_n, beta = theta.tolist()
        else:
            (log_a, t_k0, log_n), beta = theta.tolist(), self.beta
        k2, power, weight = self.k2, self.power, self.weight
        # rows: the value's terms, dp·scene, the k0 term, dp, the β term; summed row by row in one reduction
        # (each row's sum is the one np.add.reduce gives the row alone: the same pairwise summation)
        work = self._work
        lo, hi = _LOG_K0_RANGE
        squash = 1.0 / (1.0 + math.exp(-max(min(t_k0, 50.0), -50.0)))
        log_k0 = lo + (hi - lo) * squash
        k0sq = math.exp(2.0 * log_k0)
        # in place where a temporary is not needed again; each product and sum is the one of _spectral_nll
        shifted = k2 + k0sq
        log_k2 = np.log(shifted, out=work[4])
        scene = log_k2 * (0.5 * beta)
        np.subtract(log_a, scene, out=scene)
        scene -= self._blur
        np.minimum(scene, 600.0, out=scene)
        with np.errstate(under="ignore"):
            np.exp(scene, out=scene)
        noise = math.exp(max(min(log_n, 60.0), -60.0))
        p = scene + noise
        ratio = power / p
        terms = np.log(p, out=work[0])
        terms += ratio
        terms *= weight
        dp = np.subtract(1.0, ratio, out=work[3])
        dp *= weight
        dp /= p
        dp_scene = np.multiply(dp, scene, out=work[1])
        dk0 = np.divide(-beta * k0sq, shifted, out=work[2])
        dk0 *= dp_scene
        if self.beta_prior is not None:
            log_k2 *= -0.5
            log_k2 *= dp_scene
            sums = np.add.reduce(work, axis=1).tolist()
        else:
            sums = np.add.reduce(work[:4], axis=1).tolist()
        value = sums[0]
        grad = [sums[1], sums[2] * (hi - lo) * squash * (1.0 - squash), sums[3] * noise]
        if self.beta_prior is not None:
            mean, sd = self.beta_prior
            value += 0.5 * ((beta - mean) / sd) ** 2
            grad.append(sums[4] + (beta - mean) / sd**2)
        self._at, self._value, self._grad = theta.tobytes(), value, np.array(grad)

    def value(self, theta):
        """The negative log-likelihood at ``theta`` = (log A, t, log N[, β])."""
        if self._at != theta.tobytes():
            self._evaluate(theta)
        return self._value

    def gradient(self, theta):
        """Its gradient in ``theta``."""
        if self._at != theta.tobytes():
            self._evaluate(theta)
        return self._grad


def _spectral_profile(k2, power, weight, beta, grid, beta_prior=None):
    """Profile Whittle likelihood of σ over ``grid`` for the scene law A (k² + k0²)^(−β/2) plus white noise.

    Each ring mean of m periodogram values is Gamma(m, P/m) distributed, so its negative
    log-likelihood is m (log P + Ī/P) up to a constant; at every σ the amplitude, corner
    frequency and noise (and, with ``beta_prior``, the exponent β, starting from ``beta``) are
    refitted (BFGS with the analytic gradient, warm-started from the previous σ; :func:`.minimize_bfgs`,
    SciPy's BFGS iterates without its wrappers). Returns (σ at the minimum, profile values, nuisance
    parameters there).
    """
    tail = power[-max(5, power.size // 5):]
    lo, hi = _LOG_K0_RANGE
    t0 = math.log((math.log(0.005) - lo) / (hi - math.log(0.005)))
    theta = [math.log(max(float(power[:3].mean()), 1e-300)) + 0.5 * beta * math.log(float(k2[0])),
             t0, math.log(max(float(np.median(tail)), 1e-300))]
    if beta_prior is not None:
        theta.append(float(beta))
    theta = np.array(theta)
    profile = np.empty(grid.size)
    best = (math.inf, theta)
    likelihood = _ProfileLikelihood(k2, power, weight, beta, beta_prior)
    for i, s in enumerate(grid):
        likelihood.at_sigma(math.log(float(s)))
        x, fun = minimize_bfgs(likelihood.value, likelihood.gradient, theta, gtol=1e-4)
        if np.isfinite(fun):
            theta = x
        profile[i] = fun if np.isfinite(fun) else math.inf
        if fun < best[0]:
            best = (fun, x)
    j = int(np.argmin(profile))
    sigma = float(grid[j])
    if 0 < j < grid.size - 1:
        # parabola through the three points around the minimum, in log σ
        c2, c1, _ = np.polyfit(np.log(grid[j - 1 : j + 2]), profile[j - 1 : j + 2], 2)
        if c2 > 0:
            sigma = float(np.clip(math.exp(-c1 / (2.0 * c2)), grid[j - 1], grid[j + 1]))
    return sigma, profile, best[1]


def _spectral_point(k2, power, weight, beta, start):
    """Joint Whittle fit of (log A, log k0, log N, σ) from ``start``; returns σ."""
    kept = {}  # the last point's (value, gradient): BFGS asks for both at each point

    def evaluate(theta):
        key = theta.tobytes()
        if key not in kept:
            kept.clear()
            kept[key] = _spectral_nll(theta, k2, power, weight, beta)
        return kept[key]

    x, _ = minimize_bfgs(lambda theta: evaluate(theta)[0], lambda theta: evaluate(theta)[1],
                         np.asarray(start, dtype=np.float64), gtol=1e-4)
    return math.exp(float(x[3]))


def _sigma_grid(shape):
    """The σ values (px) of the spectral profile for a map of ``shape``: ``_PROFILE_POINTS`` log-spaced
    from 0.4 px to min(40, side/4) px (at least 2 px)."""
    largest = max(2.0, min(40.0, min(shape) / 4.0))
    return np.geomspace(0.4, largest, _PROFILE_POINTS)


def _profile_of_map(data, spectrum=None, geometry=None):
    """Ring spectrum of ``data`` and its σ profile with the scene exponent under ``_BETA_PRIOR``;
    returns (k2, power, weight, grid, σ, profile, nuisance). ``spectrum``: ``_ring_spectrum(data)``
    when the caller has it already (it is not changed); ``geometry``: :func:`_ring_geometry` of its shape."""
    k2, power, weight = _ring_spectrum(data, geometry) if spectrum is None else spectrum
    # unit median power: the likelihood's parameters are then O(1) whatever the map's units
    power = power / max(float(np.median(power)), 1e-300)
    grid = _sigma_grid(data.shape)
    sigma, profile, nuisance = _spectral_profile(k2, power, weight, _BETA_PRIOR[0], grid, _BETA_PRIOR)
    if not np.isfinite(profile.min()):
        raise ValueError("the map's power spectrum could not be fitted (no finite likelihood)")
    return k2, power, weight, grid, sigma, profile, nuisance


def _submap_sigmas(data, device_map=None, xp=None):
    """Spectral σ (profile, exponent under its prior) of the four corner sub-maps, each
    ``_SUBMAP_FRACTION`` of the map's side; empty when a sub-map would be under ``MIN_SIDE_PX``.
    ``device_map``: the same map in namespace ``xp`` on its device, where the sub-maps' periodograms
    are then taken (:func:`_ring_spectrum`)."""
    rows, cols = data.shape
    r, c = round(_SUBMAP_FRACTION * rows), round(_SUBMAP_FRACTION * cols)
    if min(r, c) < MIN_SIDE_PX:
        return []
    out = []
    geometry = _ring_geometry((r, c))  # one shape for the four
    for r0 in (0, rows - r):
        for c0 in (0, cols - c):
            sub = data[r0 : r0 + r, c0 : c0 + c]
            if float(sub.max() - sub.min()) > 0:
                spectrum = (None if device_map is None else
                            _ring_spectrum(device_map[r0 : r0 + r, c0 : c0 + c], geometry, xp=xp))
                out.append(_profile_of_map(sub, spectrum, geometry=geometry)[4])
    return out


def _spectral_interval(data, spectrum=None):
    """σ profile with the scene exponent fitted under its prior ``_BETA_PRIOR`` and fits under the
    fixed laws β = 2.5, 3, 3.5; returns (σ of the profile, lo, hi, flat_to_grid_end, details).
    ``spectrum``: ``_ring_spectrum(data)`` when the caller has it already."""
    k2, power, weight, grid, sigma, profile, nuisance = _profile_of_map(data, spectrum)
    inside = grid[profile <= profile.min() + 1.92]  # 95 % profile-likelihood interval
    flat = bool(inside.min() <= grid[0] or inside.max() >= grid[-1])
    beta_fit = float(nuisance[3])
    sigmas = {}
    for beta in _BETAS:
        start = [nuisance[0] + 0.5 * (beta - beta_fit) * math.log(float(k2[0])), nuisance[1], nuisance[2],
                 math.log(sigma)]
        fixed_law_sigma = _spectral_point(k2, power, weight, beta, start)
        # a law far steeper than the map's (a dendrite map fits k^-1.6) can run ln σ to -inf, where σ
        # underflows to 0 and the interval's ratio divided by it: the grid's smallest σ stands in
        sigmas[beta] = fixed_law_sigma if fixed_law_sigma > 0 and math.isfinite(fixed_law_sigma) else float(grid[0])
    lo = min(float(inside.min()), sigma, *sigmas.values()) * _SPECTRAL_ALLOWANCE[0]
    hi = max(float(inside.max()), sigma, *sigmas.values()) * _SPECTRAL_ALLOWANCE[1]
    return sigma, lo, hi, flat, {"spectral_sigmas": sigmas, "spectral_grid": (float(grid[0]), float(grid[-1])),
                                 "profile_interval": (float(inside.min()), float(inside.max())),
                                 "scene_exponent": beta_fit}


def _edge_profile_stage(data, sigma0, noise, spectral_interval, fits=None):
    """The local edge-profile stage (see :func:`estimate_sigma`, Notes): its σ, interval and whether it decides.

    ``fits``: the profiles (:func:`profiles_on_thinned_halves` of ``data`` at ``sigma0``) when the caller has
    them already."""
    if fits is None:
        fits = profiles_on_thinned_halves(data, sigma0, noise)
    combined = combine_profile_sigmas(fits, chi2_max=_PROFILE_CHI2_MAX, min_profiles=_PROFILE_MIN)
    out = {"decides": False, "n_fitted": len(fits), "fits": fits}
    if combined is None:
        return out
    sigma, se = combined["sigma"], combined["log_se"]
    lo, hi = spectral_interval
    out.update(combined)
    out["interval"] = (sigma * math.exp(-2.0 * se) / _PROFILE_ALLOWANCE,
                       sigma * math.exp(2.0 * se) * _PROFILE_ALLOWANCE)
    out["consistent"] = bool(combined["log_spread"] <= _PROFILE_SPREAD_MAX)
    out["inside_spectral"] = bool(lo <= sigma <= hi)
    out["decides"] = out["consistent"] and out["inside_spectral"]
    # less consistent profiles inside the spectral interval share the answer with the spectrum (see
    # _PROFILE_BLEND_WEIGHT)
    out["blends"] = bool(not out["consistent"] and combined["log_spread"] <= _PROFILE_BLEND_SPREAD_MAX
                         and out["inside_spectral"])
    return out


def _elongation_stage(data, spectral_sigma, profile_fits):
    """Is the spot elongated? (see :func:`estimate_sigma`, Notes, "Elongated spots"): a dict with ``verdict``
    ("edges", "spectrum": elongated, measured by that reading; "maybe": not decided, warned; "round"),
    ``sigma_u``, ``sigma_v``, ``rho`` (px) of the reading that decided or suggested it, and both readings."""
    edge = directional_edge_fit(profile_fits, chi2_max=_PROFILE_CHI2_MAX, min_profiles=_ELONGATION_MIN_PROFILES)
    spectral = spectral_ellipse(data, spectral_sigma, submap_fraction=_SUBMAP_FRACTION, min_side=MIN_SIDE_PX)
    vectors = np.array(spectral["log_ratio_vectors"])
    length = float(np.hypot(*vectors[0]))
    along = vectors @ (vectors[0] / length) if length > 0 else np.zeros(len(vectors))
    out = {"spectral": {k: spectral[k] for k in ("sigma_u", "sigma_v", "rho", "sigma", "ratio", "angle")},
           "spectral_ratio_low": math.exp(float(along.min())),
           "spectral_ratio_second": math.exp(float(np.sort(along)[min(1, along.size - 1)])),
           "spectral_submaps": len(spectral["submaps"]), "verdict": "round"}
    # the edge reading is clean when the profiles agree with one σ(θ) (log spread as the round stage asks of
    # them) and their normals are spread over directions (all three terms of the form identified)
    clean = (edge is not None and edge["log_spread"] <= _PROFILE_SPREAD_MAX
             and edge["normal_spread"] >= _ELONGATION_NORMAL_SPREAD)
    if edge is not None:
        out["edges"] = {k: edge[k] for k in ("sigma_u", "sigma_v", "rho", "sigma", "ratio", "angle", "ratio_interval",
                                             "log_spread", "round_log_spread", "n", "normal_spread")}
        out["edges"]["clean"] = bool(clean)
    if clean and edge["ratio_interval"][0] >= _ELONGATION_RATIO:
        out.update(verdict="edges", sigma_u=edge["sigma_u"], sigma_v=edge["sigma_v"], rho=edge["rho"])
    elif clean and edge["ratio_interval"][0] < _ELONGATION_ROUND_VETO:
        pass  # clean edges at many angles that include a round spot outweigh the spectrum
    elif len(vectors) == 5 and out["spectral_ratio_low"] >= _ELONGATION_SPECTRAL_LOW:
        out.update(verdict="spectrum", sigma_u=spectral["sigma_u"], sigma_v=spectral["sigma_v"], rho=spectral["rho"])
    elif out["spectral_ratio_second"] >= _ELONGATION_SPECTRAL_MAYBE or (
            clean and edge["ratio_interval"][0] >= _ELONGATION_ROUND_VETO):
        source = edge if clean and edge["ratio_interval"][0] >= _ELONGATION_ROUND_VETO else spectral
        out.update(verdict="maybe", sigma_u=source["sigma_u"], sigma_v=source["sigma_v"], rho=source["rho"],
                   maybe_from="edge profiles" if source is edge else "directional spectrum")
    return out


def _ellipse_words(sigma_u, sigma_v, rho):
    """The ellipse in words: σu and σv (px, along the columns and the rows), ρ, and the long and short axes
    with the long one's angle from the columns."""
    (_, _, _), (major, minor, angle) = covariance_to_axes(sigma_u**2, sigma_v**2, rho * sigma_u * sigma_v)
    return (f"σu {sigma_u:.3g} px (along the columns), σv {sigma_v:.3g} px (along the rows), ρ {rho:+.2f}; long "
            f"axis {major:.3g} px at {angle:.0f}° from the columns towards the rows, short axis {minor:.3g} px")


def _hough_lines(data, sigma0, max_candidates):
    """Long straight edges: gradient-weighted Hough votes (θ from the gradient direction).

    Returns (lines, gx, gy, |∇|, noise, strong): the candidate lines (θ, ρ), the gradient the votes were
    read from and its magnitude, the noise of one gradient component, and the mask of the voting pixels
    (|∇| > 4 noise)."""
    from scipy import ndimage

    rows, cols = data.shape
    gx, gy, mag, gain = smoothed_gradient(data, sigma0)
    # Poisson counts: the pixel variance is the mean count
    noise = math.sqrt(max(float(np.median(data)), 1e-12)) * gain
    strong = mag > 4.0 * noise
    flat = np.flatnonzero(strong)
    yy, xx = np.divmod(flat, cols)
    votes = mag.ravel()[flat]
    n_theta = 180
    theta_bin = (np.round(np.mod(np.arctan2(gy.ravel()[flat], gx.ravel()[flat]), np.pi) / np.pi * n_theta).astype(int)
                 % n_theta)
    diag = math.ceil(math.hypot(rows, cols))
    width = 2 * diag + 1
    # cos and sin of each bin's angle b π/180, looked up per pixel (the same numbers as computed per pixel)
    angles = np.arange(n_theta) * (np.pi / n_theta)
    cos_bin, sin_bin = np.cos(angles), np.sin(angles)
    # the three passes' votes (the bin either side at half weight) added into the flat accumulator pass by
    # pass, as np.add.at of (θ bin, ρ) pairs into the 2-D one did (the same sums in the same order; the 1-D
    # form takes NumPy's fast path)
    xf, yf = xx.astype(np.float64), yy.astype(np.float64)
    acc = np.zeros(n_theta * width)
    for shift, w in ((-1, 0.5), (0, 1.0), (1, 0.5)):
        b = (theta_bin + shift) % n_theta
        rho = np.round(xf * cos_bin[b] + yf * sin_bin[b]).astype(int) + diag
        np.add.at(acc, b * width + rho, w * votes)
    acc = acc.reshape(n_theta, width)
    peak = ndimage.maximum_filter(acc, size=(5, max(3, int(2 * sigma0) | 1)), mode=("wrap", "constant"))
    idx = np.argwhere((acc == peak) & (acc > 0))
    order = np.argsort(acc[idx[:, 0], idx[:, 1]])[::-1][:max_candidates]
    lines = [(idx[i, 0] * np.pi / n_theta, float(idx[i, 1] - diag)) for i in order]
    return lines, gx, gy, mag, noise, strong


def _longest_run(values, gap):
    """The longest run (first, last) of the rounded ``values`` whose consecutive distinct values are at most
    ``gap`` apart (the first of the longest where several tie); None for no values."""
    s = np.unique(np.round(values).astype(int))
    if s.size == 0:
        return None
    breaks = np.flatnonzero(np.diff(s) > gap)
    starts = np.concatenate(([0], breaks + 1))
    ends = np.concatenate((breaks, [s.size - 1]))
    best = int(np.argmax(s[ends] - s[starts]))
    return s[starts[best]], s[ends[best]]


def _rectangle_pixels(c, s, rho, half_width, along, box, *, margin=1.5):
    """Candidate pixels of the rotated rectangle |x c + y s − ρ| ≤ ``half_width``, ``along[0]`` ≤ y c − x s ≤
    ``along[1]`` (x = column, y = row; (c, s) the unit normal of the line x c + y s = ρ) inside
    ``box`` = (r0, r1, c0, c1) (rows r0 ≤ y < r1, columns c0 ≤ x < c1).

    Returns (rows, cols), int arrays in row-major order: every pixel of ``box`` inside the rectangle, and
    others up to ``margin`` px beside it along the rows (the caller applies the exact test). ``along`` None
    sets no limit along the line. Per row the rectangle is an interval of columns, so this costs the
    rectangle's area, not the box's.
    """
    r0, r1, c0, c1 = box
    y = np.arange(r0, r1, dtype=np.float64)
    lo = np.full(y.shape, float(c0))
    hi = np.full(y.shape, float(c1 - 1))
    tiny = 1e-9
    # |x c + y s − ρ| ≤ h: x c between ρ − y s − h and ρ − y s + h
    if abs(c) > tiny:
        e1, e2 = (rho - y * s - half_width) / c, (rho - y * s + half_width) / c
        lo = np.maximum(lo, np.minimum(e1, e2) - margin)
        hi = np.minimum(hi, np.maximum(e1, e2) + margin)
    else:  # the line runs along the rows: rows near it hold the whole box's columns
        hi[np.abs(y * s - rho) > half_width + margin] = -np.inf
    if along is not None:
        # along[0] ≤ y c − x s ≤ along[1]: x s between y c − along[1] and y c − along[0]
        if abs(s) > tiny:
            e1, e2 = (y * c - along[1]) / s, (y * c - along[0]) / s
            lo = np.maximum(lo, np.minimum(e1, e2) - margin)
            hi = np.minimum(hi, np.maximum(e1, e2) + margin)
        else:
            hi[(y * c < along[0] - margin) | (y * c > along[1] + margin)] = -np.inf
    first = np.ceil(np.clip(lo, c0, c1))
    count = np.maximum(np.floor(np.clip(hi, c0 - 1, c1 - 1)) - first + 1.0, 0.0).astype(np.int64)
    first = first.astype(np.int64)
    rows_out = np.repeat(np.arange(r0, r1), count)
    cols_out = np.arange(int(count.sum())) + np.repeat(first - (np.cumsum(count) - count), count)
    return rows_out, cols_out


def _steps_model(t, p, n_steps):
    from scipy import special

    out = np.full_like(t, p[0])
    sig = abs(p[1])
    for j in range(n_steps):
        out += p[2 + 2 * j] * special.ndtr((t - p[3 + 2 * j]) / sig)
    return out


class _StepsResiduals:
    """Weighted residuals (model − y)·w of :func:`_steps_model` and their Jacobian, for MINPACK's ``lmder``.

    Element for element the same floating-point operations as ``(_steps_model(t, p, k) - y) * w``
    and the per-step Jacobian it replaced, times ``w[:, None]`` (the terms of all steps as one
    (k, t.size) array, their sum and σ's derivative still accumulated step by step, in order), so
    the numbers are bit for bit theirs (``tests/test_sigma_fast_paths.py`` keeps that per-step
    Jacobian as its reference), with a few NumPy calls per evaluation instead of a few per step. The
    Jacobian reuses the standardised distances z_j and Φ(z_j) of the last residual evaluation when
    it is asked at the same point (``lmder`` asks for the Jacobian where it has just evaluated the
    residuals). :meth:`jacobian_rows` gives it parameter by parameter (the transpose, C-contiguous),
    the layout ``lmder`` copies without transposing when called with ``col_deriv``.

    The parameters are read as Python floats (one ``tolist``) and a single step (k = 1, most fits) works
    on 1-D rows: each array operation is then the one of the general form on fewer, cheaper NumPy calls
    (a float64 scalar and a Python float are the same IEEE number, and a·Φ = Φ·a), about half the time
    per evaluation on the 40–80 bins of an edge profile.
    """

    def __init__(self, t, y, w, n_steps):
        from scipy import special

        self.t, self.y, self.w, self.n_steps = t, y, w, n_steps
        self._t_row = t[None, :]
        self._ndtr = special.ndtr
        self._at = None  # bytes of the point whose z_j, Φ(z_j) are kept
        self._z = self._phi = None

    def _standardised(self, p):
        """z_j = (t − t_j)/|σ| and Φ(z_j): shape (t.size,) for one step, (k, t.size) for more."""
        if self.n_steps == 1:
            z = self.t - float(p[3])
        else:
            z = self._t_row - p[3::2, None]
        z /= abs(float(p[1]))
        self._at, self._z, self._phi = p.tobytes(), z, self._ndtr(z)
        return z, self._phi

    def residuals(self, p):
        """(model(p) − y)·w, shape (t.size,)."""
        _, phi = self._standardised(p)
        if self.n_steps == 1:
            out = phi * float(p[2])  # β + a_1 Φ_1
            out += float(p[0])
        else:
            terms = p[2::2, None] * phi
            out = terms[0] + p[0]  # β + a_1 Φ_1, then the other steps in order
            for j in range(1, self.n_steps):
                out += terms[j]
        out -= self.y
        out *= self.w
        return out

    def jacobian_rows(self, p):
        """∂ residuals / ∂ p_i as row i, shape (2 + 2 n_steps, t.size), C-contiguous.

        With ``z_j = (t − t_j)/|σ|``: ∂/∂β = 1, ∂/∂a_j = Φ(z_j), ∂/∂t_j = −a_j φ(z_j)/|σ|,
        ∂/∂σ = −sign(σ) Σ_j a_j φ(z_j) z_j/|σ|, each times ``w``.
        """
        z, phi = (self._z, self._phi) if self._at == p.tobytes() else self._standardised(p)
        # the derivatives of the model row by row, then all rows times w in one product (x·w for each
        # entry x, the product the per-entry form makes)
        rows = np.empty((2 + 2 * self.n_steps, self.t.size))
        rows[0] = 1.0
        sig = abs(float(p[1]))
        density = -0.5 * z
        density *= z
        np.exp(density, density)
        density /= math.sqrt(2.0 * math.pi)
        if self.n_steps == 1:
            scaled = density
            scaled *= float(p[2])  # a_1 φ(z_1)
            rows[2] = phi
            np.divide(scaled, -sig, rows[3])
            scaled *= z
            scaled /= sig
            dsig = np.subtract(0.0, scaled, rows[1])
        else:
            scaled = p[2::2, None] * density  # a_j φ(z_j)
            rows[2::2] = phi
            # −a_j φ/|σ|: a quotient by −|σ| is the negated quotient by |σ|, bit for bit (IEEE rounding is
            # symmetric)
            np.divide(scaled, -sig, rows[3::2])
            scaled *= z
            scaled /= sig  # a_j φ(z_j) z_j/|σ|, subtracted from 0 step by step
            dsig = np.subtract(0.0, scaled[0], rows[1])
            for j in range(1, self.n_steps):
                dsig -= scaled[j]
        if not p[1] >= 0:
            np.negative(dsig, dsig)
        rows *= self.w
        return rows

    def jacobian(self, p):
        """∂ residuals / ∂ p, shape (t.size, 2 + 2 n_steps), C-contiguous (:meth:`jacobian_rows` transposed)."""
        return np.ascontiguousarray(self.jacobian_rows(p).T)


@functools.cache
def _minpack_lmder():
    """SciPy's MINPACK ``lmder`` driver where it can be called as ``least_squares(method="lm")`` calls it, else
    ``None``.

    Needs SciPy ≥ 1.16 (``least_squares`` passes no ``diag`` scaling since then) and the private
    ``scipy.optimize._minpack._lmder`` with its present signature, and is checked once: a small blurred-step
    fit by both routes must give the same parameters (relative 1e-12). Decided at the first fit, so that
    ``import xrfgpu`` does not import SciPy.
    """
    import scipy
    from scipy import optimize

    try:
        major, minor = (int(v) for v in scipy.__version__.split(".")[:2])
        from scipy.optimize._minpack import _lmder
    except (ImportError, ValueError):
        return None
    if (major, minor) < (1, 16):
        return None
    t = np.arange(-10.0, 10.5, 0.5)
    p_true = np.array([100.0, 2.0, 60.0, 0.7])
    y = _steps_model(t, p_true, 1) + 3.0 * np.cos(7.0 * t)  # a fixed, noise-like misfit
    residuals = _StepsResiduals(t, y, np.full(t.size, 0.3), 1)
    p0 = np.array([90.0, 3.0, 50.0, 0.0])
    try:
        direct = _lmder(residuals.residuals, residuals.jacobian_rows, p0.copy(), (), True, True, 1e-8, 1e-8, 1e-8,
                        800, 100.0, None)[0]
    except Exception:  # noqa: BLE001  (any failure of the private call: use the public route)
        return None
    reference = optimize.least_squares(residuals.residuals, p0, method="lm", jac=residuals.jacobian, max_nfev=800,
                                       xtol=1e-8, ftol=1e-8).x
    return _lmder if np.allclose(direct, reference, rtol=1e-12, atol=0.0) else None


def _least_squares_lm(residuals, p0, *, max_nfev, tol, with_jacobian=True):
    """Levenberg–Marquardt fit of ``residuals`` (a :class:`_StepsResiduals`) from ``p0``: (x, fun, jac).

    The same MINPACK call (``lmder``: ftol = xtol = ``tol``, gtol 1e-8, factor 100, no ``diag``)
    that ``scipy.optimize.least_squares(method="lm", jac=...)`` makes, with the same checks of the
    starting point, so the same iterates and the same answer, without ``least_squares``'s per-call
    and per-evaluation wrappers (the 334 fits of the 1024² and 512² phantom maps of
    ``benchmarks/sigma_speed.py``: 0.36 s instead of 0.55 s through ``least_squares``, same residual
    functions). Where that driver is not available (see :func:`_minpack_lmder`), ``least_squares``
    itself runs. With ``with_jacobian=False`` the direct route returns ``None`` for ``jac`` (the caller that
    needs it for some fits only computes ``residuals.jacobian(x)``, what ``least_squares`` returns, itself).
    """
    from scipy import optimize

    x0 = np.asarray(p0, dtype=np.float64)
    lmder = _minpack_lmder()
    if lmder is None:
        r = optimize.least_squares(residuals.residuals, x0, method="lm", jac=residuals.jacobian,
                                   max_nfev=max_nfev, xtol=tol, ftol=tol)
        return r.x, r.fun, r.jac
    f0 = residuals.residuals(x0)
    if not np.all(np.isfinite(f0)):  # as least_squares raises
        raise ValueError("Residuals are not finite in the initial point.")
    if f0.size < x0.size:
        raise ValueError("Method 'lm' doesn't work when the number of residuals is less than the number of "
                         "variables.")
    # col_deriv: the Jacobian parameter by parameter, which lmder copies as it is instead of transposing
    x, info, _status = lmder(residuals.residuals, residuals.jacobian_rows, x0.copy(), (), True, True, tol, tol, 1e-8,
                             max_nfev, 100.0, None)
    return x, info["fvec"], residuals.jacobian(x) if with_jacobian else None


def _fit_steps(t, y, var, sigma0, max_steps=4, tol=1e-8):
    """Profile = β + Σ_j a_j Φ((t − t_j)/σ): a blurred piecewise-constant 1-D scene; K by BIC."""
    from scipy import ndimage

    w = 1.0 / np.sqrt(var)
    dt = float(t[1] - t[0])
    dy = np.gradient(ndimage.gaussian_filter1d(y, 2.0))
    cand = np.flatnonzero(np.abs(dy) == ndimage.maximum_filter1d(np.abs(dy), 9))
    cand = cand[np.argsort(np.abs(dy[cand]))[::-1]]
    best = None
    for k in range(1, min(max_steps, cand.size) + 1):
        p0 = [float(y[0]), sigma0]
        for c in sorted(cand[:k]):
            p0 += [float(dy[c]) * sigma0 * math.sqrt(2.0 * math.pi) / dt, float(t[c])]
        # analytic Jacobian: with finite differences these fits took 2.5 s of a 512² map's 2.7 s
        residuals = _StepsResiduals(t, y, w, k)
        x, fun, jac = _least_squares_lm(residuals, p0, max_nfev=200 * len(p0), tol=tol, with_jacobian=False)
        chi2 = float(np.sum(fun**2))
        bic = chi2 + len(p0) * math.log(t.size)
        sig = abs(float(x[1]))
        if not (0.3 < sig < 4.0 * sigma0 + 10.0):
            continue
        if best is None or bic < best[0]:
            best = (bic, sig, k, x, residuals, jac, chi2, len(p0))
    if best is None:
        return None
    # the standard error of σ of the chosen fit only: the Jacobian and its pseudo-inverse of a fit that BIC
    # passes over are not needed
    bic, sig, k, x, residuals, jac, chi2, n_params = best
    jac = residuals.jacobian(x) if jac is None else jac
    jtj = jac.T @ jac
    try:
        cov = np.linalg.pinv(jtj) * max(chi2 / max(t.size - n_params, 1), 1.0)
        se = math.sqrt(abs(float(cov[1, 1])))
    except np.linalg.LinAlgError:
        se = float("inf")
    return bic, sig, se, k, x


def _edge_fits(data, sigma0, *, max_lines=10, max_candidates=40):
    """σ from each long straight edge of the map (see :func:`estimate_sigma`, Notes)."""
    rows, cols = data.shape
    lines, gx, gy, mag, noise, strong = _hough_lines(data, sigma0, max_candidates)
    half_width = 3.0 * sigma0 + 3.0
    fits, used, pixel_sets = [], [], []
    for theta, rho in lines:
        if len(fits) >= max_lines:
            break
        if any(abs((theta - u + np.pi / 2) % np.pi - np.pi / 2) < 0.05 and abs(rho - r) < 1.5 * sigma0
               for u, r in used):
            continue
        used.append((theta, rho))
        c, s = math.cos(theta), math.sin(theta)
        # the strong pixels within 1 px of the line (|x c + y s − ρ| ≤ 1), read from a band around it
        band_r, band_c = _rectangle_pixels(c, s, rho, 1.0, None, (0, rows, 0, cols))
        keep = strong[band_r, band_c]
        edge_r, edge_c = band_r[keep], band_c[keep]
        ex, ey = edge_c.astype(np.float64), edge_r.astype(np.float64)
        on = np.abs(ex * c + ey * s - rho) <= 1.0
        ex, ey, edge_r, edge_c = ex[on], ey[on], edge_r[on], edge_c[on]
        normal_grad = gx[edge_r, edge_c] * c + gy[edge_r, edge_c] * s
        on = np.abs(normal_grad) > 4.0 * noise
        if on.sum() < 10:
            continue
        on &= np.sign(normal_grad) == np.sign(np.median(normal_grad[on]))
        run = _longest_run((ey * c - ex * s)[on], gap=2)
        if run is None:
            continue
        # leave out the ends of the edge, where the corners' blur reaches in
        s0, s1 = run[0] + 2.0 * sigma0, run[1] - 2.0 * sigma0
        # the edge pixels of that run (flat indices): two lines that share many of them read one scene edge
        run_along = (ey * c - ex * s)[on]
        inside = (run_along >= s0) & (run_along <= s1)
        edge_pixels = np.sort(edge_r[on][inside] * cols + edge_c[on][inside])
        length = s1 - s0
        if length < 8.0 * sigma0 or length < 10.0:
            continue
        # bounding box of the strip |t| <= half_width, s0 <= along <= s1
        corners_x = [rho * c - a * s + d * c for a in (s0, s1) for d in (-half_width, half_width)]
        corners_y = [rho * s + a * c + d * s for a in (s0, s1) for d in (-half_width, half_width)]
        r0, r1 = max(int(min(corners_y)) - 1, 0), min(int(max(corners_y)) + 2, rows)
        c0, c1 = max(int(min(corners_x)) - 1, 0), min(int(max(corners_x)) + 2, cols)
        if r1 <= r0 or c1 <= c0:
            continue
        # the box's pixels near the strip, in the box's row-major order (that of the bins' sums below)
        pix_r, pix_c = _rectangle_pixels(c, s, rho, half_width, (s0, s1), (r0, r1, c0, c1))
        yy, xx = pix_r.astype(np.float64), pix_c.astype(np.float64)
        t = xx * c + yy * s - rho
        along = yy * c - xx * s
        strip = (np.abs(t) <= half_width) & (along >= s0) & (along <= s1)
        ts, vs = t[strip], data[pix_r[strip], pix_c[strip]]
        step = 0.5
        bins = np.round(ts / step).astype(int)
        bins -= bins.min()
        count = np.bincount(bins)
        total = np.bincount(bins, vs)
        good = count >= 3
        if good.sum() < 16:
            continue
        tb = (np.flatnonzero(good) + np.round(ts.min() / step)) * step
        yb = total[good] / count[good]
        fit = _fit_steps(tb, yb, np.maximum(yb, 1.0) / count[good], sigma0)
        if fit is None:
            continue
        pred = _steps_model(ts, fit[4], fit[3])
        reduced_chi2 = float(np.mean((vs - pred) ** 2 / np.maximum(pred, 1.0)))
        fits.append({"sigma": fit[1], "stderr": fit[2], "length": length, "angle": math.degrees(theta),
                     "rho": rho, "steps": fit[3], "reduced_chi2": reduced_chi2})
        pixel_sets.append(edge_pixels)
    _mark_shared_edges(fits, pixel_sets)
    return fits


def _mark_shared_edges(fits, pixel_sets):
    """Sets ``fits[i]["index"]`` = i and ``fits[i]["same_edge_as"]``: the indices of the other fits whose
    edge pixels overlap this one's by at least _SAME_EDGE_OVERLAP of the smaller set (the same scene
    edge, read along two Hough lines)."""
    for i, f in enumerate(fits):
        f["index"] = i
        f["same_edge_as"] = []
    for i in range(len(fits)):
        for j in range(i + 1, len(fits)):
            smaller = min(pixel_sets[i].size, pixel_sets[j].size)
            if smaller and (np.intersect1d(pixel_sets[i], pixel_sets[j], assume_unique=True).size
                            >= _SAME_EDGE_OVERLAP * smaller):
                fits[i]["same_edge_as"].append(j)
                fits[j]["same_edge_as"].append(i)


def _distinct_edges(fits):
    """How many different scene edges ``fits`` read: groups of fits linked by ``same_edge_as`` (transitively,
    within ``fits``); fits without that key count one each."""
    ids = {f.get("index", -1 - k): k for k, f in enumerate(fits)}
    parent = list(range(len(fits)))

    def root(k):
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for k, f in enumerate(fits):
        for j in f.get("same_edge_as", ()):
            if j in ids:
                parent[root(ids[j])] = root(k)
    return len({root(k) for k in range(len(fits))})


# two straight-edge fits read the same scene edge when at least this share of the smaller one's edge pixels
# (those of its run within 1 px of its line) are also the other's, and the edges that agree on σ must read at
# least _EDGE_MIN_DISTINCT different scene edges. A curved or soft edge of the scene is crossed by several Hough
# lines a few degrees apart, and their fits agree with each other because they read the same pixels: on the
# ARC_TUNING maps (benchmarks/sigma_tuning_arcs.py) a solder dome's rim read by three lines at 137-147° decided
# σ 69.5 % high and a soft grain edge read by four lines at 144-147° 18.8 % high (their pixels overlapped by
# 0.24-0.69). Chosen there (overlap 0.2; at 0.3 the dome's three lines are two edges) and confirmed on
# FRESH_TUNING_MORE and TUNING_EXTENDED, where no σ moves (at least three distinct edges moved 5 and 1 maps
# there, 1 and 0 of them closer: docs/psf_measurement.md, seventh round)
_SAME_EDGE_OVERLAP = 0.2
_EDGE_MIN_DISTINCT = 2


def _weighted_median(values, weights):
    order = np.argsort(values)
    cw = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cw, 0.5 * cw[-1])])


def _edge_consensus(fits, *, chi2_max=1.15, agree=0.10, min_lines=3, min_weight=0.5, min_distinct=_EDGE_MIN_DISTINCT):
    """Weighted median σ of the clean edges, if at least ``min_lines`` agree within ``agree``, those hold at
    least ``min_weight`` of the clean edges' total inverse-variance weight, and they read at least
    ``min_distinct`` different scene edges (:func:`_distinct_edges`)."""
    ok = [f for f in fits if f["reduced_chi2"] <= chi2_max and math.isfinite(f["stderr"])]
    if len(ok) < min_lines:
        return None, ok
    sig = np.array([f["sigma"] for f in ok])
    w = 1.0 / np.maximum([f["stderr"] for f in ok], 1e-3) ** 2
    med = _weighted_median(sig, w)
    near = np.abs(sig / med - 1.0) <= agree
    if near.sum() < min_lines or w[near].sum() < min_weight * w.sum():
        return None, ok
    agreeing = [f for f, n in zip(ok, near) if n]
    if _distinct_edges(agreeing) < min_distinct:
        return None, ok
    return _weighted_median(sig[near], w[near]), agreeing


# half-width (in ln σ) of the straight-edge interval: this many times the median relative standard error
# of the agreeing edges' σ, and at least _EDGE_HALF_WIDTH_MIN (the ±10 % of before). With ±10 % alone the
# interval missed the truth on 9 of the 54 maps that straight edges decided on the three tuning sets
# (fresh-tuning-more, tuning-extended, tuning-more: strata, zoned grains, a text page, bar charts, an HXN map,
# filaments; 10–32 % off with single-edge standard errors of 5–17 %); |ln error| over that median standard
# error was at most 1.9 on 90 % of those 54 maps (fifth round, docs/psf_measurement.md)
_EDGE_HALF_WIDTH_SE = 2.0
_EDGE_HALF_WIDTH_MIN = 0.1


def _edge_interval(edge_sigma, agreeing):
    """Interval (px) of the straight-edge σ: the agreeing edges' range and edge_sigma × exp(±h), h the larger
    of _EDGE_HALF_WIDTH_MIN and _EDGE_HALF_WIDTH_SE × the median relative standard error of one edge's σ."""
    used = np.array([f["sigma"] for f in agreeing])
    relative_se = float(np.median([f["stderr"] / f["sigma"] for f in agreeing]))
    half = max(_EDGE_HALF_WIDTH_MIN, _EDGE_HALF_WIDTH_SE * relative_se)
    return (min(float(used.min()), edge_sigma * math.exp(-half)), max(float(used.max()), edge_sigma * math.exp(half)))


def estimate_sigma(image, background=None, *, elliptical=False, pixel_size_um=None, thorough=False,
                   strict=False, elongation=False):
    """Blind estimate of the Gaussian PSF σ (pixels) from the blurred map alone.

    No dot, no edge chosen by hand. By default (the fast path) three
    stages: where the map holds long straight edges (a test
    chart, straight mineral boundaries), σ is fitted to the profiles across
    those edges; otherwise, where short profiles across its sharp edges of
    any shape agree with each other and with the spectrum, σ is their
    median; otherwise σ is the profile-likelihood blur of a stochastic
    scene model fitted to the map's windowed power spectrum. Either way the
    result carries an interval and the evidence it rests on, and a map that
    does not pin σ down is reported (a warning, or an error with
    ``strict=True``) instead of answered with a confident number. With
    ``thorough=True`` maps without straight edges are also fitted as a
    blurred mosaic of uniform grains (minutes on large maps; see stage 3).

    Parameters
    ----------
    image : array, shape (rows, cols)
        Blurred map (counts), any array-API namespace; at least 32×32 pixels.
    background : float or array, optional
        Background counts per pixel. The spectral criterion is invariant to
        an additive constant, so the background is only validated here; it
        is accepted so that callers can pass what they have.
    elliptical : bool
        Fit σu, σv and ρ as well (the result's ``sigma`` is then √(σu σv)).
    elongation : bool
        Also check whether the spot is elongated (:mod:`xrfgpu.psf.elongation`; Notes, "Elongated
        spots"): when it is, σu, σv and ρ are returned (``sigma`` = √(σu σv)); when it may be, a
        warning names both axes. Off by default: on the elongated held-out maps of
        ``benchmarks/sigma_elongated.py`` it found a third of the spots with axis ratios 1.2–2, misread
        one (axis ratio 3.3 for 1.42, restored at 8.7 × the raw map's MSE), read one round held-out
        map (a text page) as elongated, and warned on small round phantom maps.
    pixel_size_um : float, optional
        Scan step for the ``*_um`` twins.
    thorough : bool
        Also run the mosaic scene fit (stage 3) on maps without straight-edge
        consensus. Off by default: on the frozen test scenes of
        ``benchmarks/sigma_scenes.py`` it was the source of the errors of 2.6–7.9×
        (issue 14) and of run times of minutes.
    strict : bool
        Raise :class:`ValueError` instead of warning when the estimate is
        not reliable.

    Returns
    -------
    SigmaEstimate
        ``.sigma`` is σ in pixels (a float); ``float(result)`` gives the
        same. ``.interval`` (lo, hi) in pixels, ``.reliable``, ``.evidence``.

    Raises
    ------
    ValueError
        Map smaller than 32×32, containing NaN/inf, or flat; an unreliable
        estimate with ``strict=True``; a ``pixel_size_um`` that is not
        positive and finite.
    TypeError
        A ``pixel_size_um`` that is not a number.

    Warns
    -----
    SigmaUncertainWarning
        The interval is wider than a factor 2.3 (hi/lo), or the likelihood is
        flat to an end of the σ range or wider than a factor 4.6 ("the map
        carries no σ information": smooth fields, noise, flat substrates);
        with the spectral answer, also when the corner sub-maps disagree
        enough to widen the interval past 2.3. Also (never an error, even
        with ``strict=True``) when the spot may be elongated but the evidence
        is not strong enough to restore with an ellipse: the message names
        the two axis σ's and says that the round σ is a compromise.

    Notes
    -----
    Stage 1, spectral (always run; the result for maps without long
    straight edges). Criterion: maximum Whittle likelihood. The map is
    modelled as a Gaussian stationary field y = h_σ ⊛ x + n, with white
    noise n of power N (Poisson counts: N ≈ mean count) and a scene x whose
    power spectrum is a power law with a corner, S(k) = A (k² + k0²)^(−β/2).
    The exponent β is fitted per map under a Gaussian prior centred on the
    random mosaic of constant patches (exponential covariance e^(−r/ℓ),
    β = 3) with standard deviation 0.2 (``_BETA_PRIOR``; the prior's −log
    density is added to the likelihood): thin lines, textures and
    photographs have shallower spectra than a mosaic, and with β fixed at 3
    their excess high-frequency power was read as a smaller blur (σ 15–25 %
    low on such tuning scenes); a wide prior (sd 1) trades the scene law
    against σ (worst error 137 % against 87 % on the 192 extended tuning
    maps). The expected periodogram is P(k) = S(k) exp(−4π² σ² |k|²) + N.
    The periodogram I(k) is taken of the map times a Hann window (leakage of
    the strong low-frequency power through the map's borders otherwise
    falls slower than the blurred spectrum and pulls σ low; Moisan's
    periodic component, used before, left 15–55 % low estimates on the
    tuning scenes) and averaged over rings 1/n wide; a ring mean of m
    values is Gamma distributed, so the Whittle negative log-likelihood is
    Σ_rings m [log P + Ī/P]. Its profile over σ (A, k0, N, β refitted at each
    of 31 σ from 0.4 px to min(40, n/4) px; BFGS with the analytic gradient)
    gives σ (parabolic refinement at the minimum) and a 95 %
    profile-likelihood interval (Δ = 1.92). The scene law is the model's
    weak point, so σ is also fitted with β fixed at 2.5, 3 and 3.5, and the interval
    is the union of these, widened by the model-error allowance
    ``_SPECTRAL_ALLOWANCE`` (× 0.8 below, × 1.4 above, set on the tuning
    scenes: it covers the truth on 95 % of the extended tuning maps that
    the spectrum decides). When the spectrum decides σ, the interval is
    further widened to contain the spectral σ (same profile) of the four
    corner sub-maps, each ``_SUBMAP_FRACTION`` = 0.625 of the map's side
    (``details["submap_sigmas"]``; skipped when a sub-map would be under
    32 px): a scene whose spectrum changes across the map, or a PSF that
    does, gives sub-maps that disagree, and so a wide interval. On 384
    tuning maps of ``benchmarks/sigma_scenes.py`` this flagged 29 % of the
    maps instead of 18–19 %, and the worst error among the maps not flagged
    fell from 86 % to 27 % and from 40 % to 34 % (σ itself is unchanged).
    The checks of the other stages against the spectrum use the whole
    map's interval (``details["spectral_interval"]``; the widened one is
    ``details["spectral_interval_with_submaps"]``). The estimate is
    *reliable* when hi/lo ≤ 2.3; it carries *no σ information* when the
    profile is within Δ of its minimum at an end of the σ range, hi/lo > 4.6,
    or the fitted scene exponent is below 0 (a scene spectrum that rises
    with frequency: no power law describes the map, e.g. a periodic
    checkerboard; the interval is then the whole σ range of the profile).
    With ``elliptical=True`` (or ``thorough=True``) the full 2-D Whittle fit
    of the unwindowed periodic component also runs (Nelder–Mead, four
    starting σ) and gives σu, σv, ρ.

    Stage 2, straight edges (isotropic model only). Long straight edges are
    found by a Hough transform of the gradient (smoothed at σ₀/2, σ₀ the
    spectral estimate; pixels above 4 Poisson standard deviations vote at
    their gradient direction, weighted by the gradient magnitude). For each
    of up to 10 distinct lines, the longest run of edge pixels of one
    polarity along the line is kept, 2σ₀ is cut from each end (where the
    corners' blur reaches in), and the run must be at least 8σ₀ long. The
    pixels of the strip |t| ≤ 3σ₀ + 3 around it are binned by their distance
    t to the line (half-pixel bins, a slanted-edge ESF) and the binned
    profile is fitted (Poisson-weighted least squares,
    :func:`scipy.optimize.least_squares`) by a blurred 1-D piecewise-constant
    scene, β + Σ_j a_j Φ((t − t_j)/σ), with 1–4 steps chosen by BIC, so that
    neighbouring parallel bars are part of the model instead of a bias. A
    strip whose 2-D residual (data minus the 1-D model) has a reduced χ²
    above 1.15 is rejected, as the scene is then not constant along the
    line. If at least three accepted edges agree within 10 % of their
    inverse-variance-weighted median, those hold at least half of the
    accepted edges' total inverse-variance weight (a minority of short
    edges agreeing among themselves is no consensus), and they are at least
    two different scene edges (two fits whose runs share a fifth of the
    smaller run's edge pixels read one edge: a curved or soft edge of the
    scene is crossed by several Hough lines a few degrees apart, whose
    fits agree because they read the same pixels), σ is the weighted
    median of those that agree (``method="straight-edges"``; interval: the
    agreeing edges' range and σ × exp(±h), h the larger of 0.1 and twice the
    median relative standard error of one edge's σ; reliable). Whether the
    independent spectral interval contains it is recorded
    (``details["stages_agree"]``, and in ``evidence``); where it does not,
    the two stages disagree: the interval is widened to hold the spectral
    interval too and the estimate is not reliable (a warning). Otherwise,
    with ``thorough=True``, the map goes to
    stage 3. ``details`` holds every edge fit (``edges``, ``edges_used``;
    each fit's ``same_edge_as`` lists the fits that read the same scene
    edge), the spectral σ (``whittle_sigma``) and the fitted scene exponent
    (``scene_exponent``).

    Stage 2b, local edge profiles (maps without straight-edge consensus;
    :mod:`xrfgpu.psf.edge_profiles`). The blur leaves the scene's phases
    alone: edges stay where they are and only widen. Edge pixels (gradient
    maxima along the gradient, above 6 noise standard deviations) are found
    on one binomial half of the counts and short profiles across them
    (|t| ≤ 3.5σ₀ + 3 across, |u| ≤ max(1.5, σ₀) along) are fitted on the
    other half as blurred 1–2-step scenes (BIC), then the other way round:
    choosing and fitting the same noisy pixels made edges look sharper (σ
    0.88–0.95 × truth on ellipses at 150/140 counts, 0.98–1.02 with the
    halves). Two steps closer than 2σ (a line thinner than the blur) give the
    width of the blurred box, √(σ² + d²/12), which the data pin down. The
    stage decides (``method="edge-profiles"``) when at least 8 profiles have
    a reduced χ² ≤ 1.2, their σ's agree (robust spread of ln σ ≤ 0.1) and
    their median lies in the whole map's spectral interval; its interval is
    the median × exp(±2 standard errors of ln σ), widened by 1.1 each way,
    and widened further to hold the spectral σ (× 1.1 each way) where that
    lies outside; it is reliable (two independent stages agree). Where the
    profiles agree among themselves but their median lies outside the
    spectral interval, the spectral σ is returned, not reliable, with an
    interval that holds the profiles' interval too. Where at least 8 pass
    but spread by more than 0.1 and at most 0.3 in ln σ, with their median
    inside the spectral interval, neither reading decides alone: σ is the
    geometric mean of the spectral σ and the profiles' median with weights
    2/3 and 1/3 (``method="whittle+edge-profiles"``; the interval, and
    whether the estimate is reliable, stay the spectrum's; not where the
    fitted scene spectrum rises with frequency). On the three tuning sets
    of docs/psf_measurement.md (sixth round) that moved the 90th percentile
    of the maps not flagged from 20.1 / 18.5 / 15.5 % to 16.9 / 17.8 /
    15.5 % and changed σ on 102 of 576 maps, no interval or flag. Deciding
    alone, on the 192 extended
    tuning maps the profiles decided 21 maps at 0.6 % / 1.6 % / 2.5 % median / 90th /
    worst |error| (28 of 192 further tuning maps at 1.1 % / 6.5 % / 14.7 %),
    nearly all at 2000/100 counts and on sharp shapes; on maps whose
    profiles disagree (smooth fields, photographs, thin filaments at large
    σ, low counts) the spectrum still decides. ``details["edge_profiles"]``
    holds the combined profiles (``n``, ``sigma``, ``log_spread``,
    ``decides``, ``blends``) and every profile fit (``fits``).

    Stage 3, blurred mosaic (``thorough=True`` only; isotropic model, maps
    without straight-edge consensus; :mod:`xrfgpu.psf.mosaic_scene_fit`). The scene is modelled as
    x = B + Σ_g A_g s_g, s_g the indicator of a uniform ellipse or rectangle
    (centre, semi-axes, angle; edge softened by the 1/√12 px spread of a
    pixel's area), and μ = h_σ ⊛ x on a canvas ≈ 5σ₀ wider than the scan
    on each side. σ, B and every shape's geometry and level are fitted
    jointly by least squares (L-BFGS-B, analytic gradients through the FFT
    blur), with the noise variance N of stage 1. A blurred uniform shape
    larger than σ keeps the shoulder of its sharp boundary, which its size
    cannot mimic, so σ is identified; shapes smaller than σ carry little
    information but are modelled so that their blur is not credited to the
    neighbours: shapes whose larger semi-axis is below σ become Gaussian
    blobs of free width drawn after the blur, so that the noisy widths of
    many small grains no longer pull σ low. Initial shapes are the regions above the matrix level of a
    Wiener restoration with the stage-1 spectral model (each the ellipse or
    rectangle of its second moments, whichever overlaps it best); after
    each fit, residual blobs above a matched-filter SNR of 5 become new
    shapes (up to four rounds). If that fit leaves χ² per pixel above 1.05, it is
    repeated with shapes read from a Richardson–Lucy restoration at σ₀ split
    at its Otsu level, which keeps long bars whole and separates
    neighbouring bars (the Wiener seeds break bars into fragments); those
    regions are further cut at intensity dips deeper than three noise
    spreads of the restoration (h-extended maxima as markers of a
    watershed, :mod:`xrfgpu.psf.region_split`), so that touching grains of
    different levels, or bars merged into an L, are seeded as separate
    shapes rather than as one larger ellipse (which pulls σ low). The fit of
    lower BIC, χ² + p ln n (p free parameters, n blocks), is kept: a
    seeding that lowers χ² only by using more shapes does not win for that
    alone (χ² alone kept Wiener-seeded fits at 0.83 × truth on grains at
    σ = 10 and 1.16 on the bar chart at σ = 10). The map is first summed in f × f blocks,
    f = ⌊σ₀/1.75⌋ (block sums of counts are still Poisson and the model is
    exact in block units up to aliasing below 10⁻⁶). The result is used
    (``method="mosaic-scene"``) when the fit's χ² per pixel is at most 1.35
    (on the bar chart at σ = 10 the RL-seeded fits leave χ² 1.01–1.26 from a
    few merged or missed bars and still give σ within 8 %, better than the
    spectral fallback); otherwise the spectral σ is returned
    (``method="whittle"``). ``details["mosaic"]`` holds the fit
    (``sigma``, ``reduced_chi2``, ``n_shapes``, ``block``, …).

    Elongated spots (the default path, after the stages above;
    :mod:`xrfgpu.psf.elongation`). A spot longer along one axis (a focus at
    45° incidence, unequal x and y scan steps) blurs an edge of normal
    n = (cos θ, sin θ) by σ(θ)² = σu² cos²θ + σv² sin²θ + 2ρ σu σv sinθ cosθ,
    and its power spectrum falls faster along the long axis. Two readings:
    the local edge profiles of stage 2b (read on the spectral σ₀ also when
    straight edges decided), fitted by that form (robust weighted least
    squares in σ², with a bootstrap interval of the axis ratio), and the
    directional Whittle fit of the windowed periodogram in rings × 8 wedges
    (one scene amplitude per wedge, one Σ; on the whole map and on the four
    corner sub-maps). The spot is called elongated when the profiles agree
    with one σ(θ) (spread of ln σ about it ≤ 0.1, normals spread over
    directions) and the 5th percentile of the ratio is at least 1.1
    (``method="elliptical-edge-profiles"``; reliable), or, without such
    edges, when the whole map and all four sub-maps show an axis ratio of at
    least 1.2 along the whole map's long axis (``"elliptical-spectrum"``;
    σu, σv, ρ of the whole map's fit, and the interval of the round
    spectral stage widened to hold √(σu σv)). Clean edges whose ratio
    interval reaches below 1.05 keep the spot round whatever the spectrum
    says. When all but one of the five spectral readings show a ratio of
    1.25, or clean edges a lower ratio of 1.05–1.1, a
    :class:`SigmaUncertainWarning` says the spot may be elongated, naming
    both axes, and σ stays the round one. Otherwise nothing changes: maps
    not called elongated keep the σ of the stages above. The constants were
    chosen on the tuning maps of ``benchmarks/sigma_elongated.py`` (TUNING
    and TUNING_MORE, 144 maps) and the 192 round maps of
    ``sigma_scenes.TUNING_EXTENDED``: 4 of 228 round maps called elongated
    (a page of text, a bar chart, two photographs of a clock), elongated
    spots called so on 27 of 36 maps at axis ratio 2, 17 of 36 at 1.5 and
    4 of 36 at 1.2 (median σu, σv error of the detected maps 2–9 %). Held
    out (measured once): 1 of the 72 round maps of ``sigma_scenes.HELD_OUT``
    called elongated (a page of text: σ 4.02 → 4.62 px for 4), the σ of the
    other 71 unchanged; of the 36 elongated maps of
    ``sigma_elongated.HELD_OUT``, 1, 5 and 7 of 12 called so at axis ratios
    1.2, 1.5 and 2 (larger axis error median 10 %, worst 31 %), one of them
    badly: a real HXN Cr map at ratio 1.42 read by its edges at 3.3, whose
    restoration had 8.7 × the raw map's MSE
    (``benchmarks/sigma_elongated_summary.md``). The
    result's ``sigma`` is then √(σu σv), and ``details["elongation"]`` holds
    both readings (``verdict``, ``edges``, ``spectral``,
    ``spectral_ratio_low``), ``details["round_sigma"]`` the round answer.

    Accuracy of the default (fast) path on scenes nobody tuned it for: the
    README table (``python benchmarks/bench_sigma_generalisation.py``). The
    table below is of ``thorough=True`` on the project's own scenes.

    Accuracy (measured; σ_est/σ_true, min–max over seeds 0–4; Poisson
    counts, 150 counts of signal over 140 of background,
    ``tests/psf_scenes.py`` 200×200 scans; the USAF chart of the demo,
    ``usaf.chart(5.0, groups=range(3, 5))`` or groups 2–7 through
    ``simulate.scan`` with σ = 6.5 px, three seeds):

    ====================  =========  =========  =========  ================
    scene                 σ = 4      σ = 6.5    σ = 10     stage used
    ====================  =========  =========  =========  ================
    grains + veins        0.98–1.04  0.99–1.06  0.95–1.06  mosaic
      (seeds 5–9)         0.98–1.05  0.96–1.05  0.90–1.02
    bar chart             0.97–1.00  0.98–1.00  0.96–1.08  edges at σ = 4,
      (seeds 5–9)         0.99–1.01  0.92–1.03  0.92–1.01  mosaic (RL
                                                           seeds) at ≥ 6.5
    USAF groups 3–4                  0.99–1.02             edges
    USAF groups 2–7                  0.94–1.03             edges
    ====================  =========  =========  =========  ================

    (Spectral alone: 0.87–1.08 on grains at σ = 4 and 6.5 and 0.79–0.94 at
    σ = 10; 1.11–1.15 on the bar chart at σ = 4; 0.71–0.72 on USAF groups
    3–4.) So on charts and maps with long straight boundaries σ is good to a
    few per cent, as a knife edge; on grain maps to ±7 % at σ = 4 and 6.5,
    and at σ = 10 to ±10 % on nine seeds of ten (seed 6: 0.897, a
    Richardson–Lucy-seeded fit of χ² 1.03; when σ is comparable to the
    grains few shapes are larger than σ). The bar chart at σ ≥ 6.5 is
    fitted by the mosaic model on Richardson–Lucy seeds, within 8 %.
    Prefer a measured
    PSF (:func:`fit_dot`, :func:`fit_knife_edge`) when one can be had.

    Run time of ``thorough=True`` (measured on a shared 2-core machine, 200×200 maps): 2–4 s
    for grain maps (the mosaic fit: a few hundred evaluations of the model
    and its gradient, each four real FFTs of the block canvas; most grain
    maps also try the Richardson–Lucy seeds; up to 8 s under load),
    0.4–1.5 s when straight edges decide, 3.5–6 s on the bar chart at
    σ ≥ 6.5.
    The old 2-D spectral fit (``elliptical``/``thorough``) takes about 0.3 s
    for a 200×200 map, 3 s for the 647×375 USAF scan and 7 s for a 1078×885
    one; the default ring profile (with the fitted scene exponent) 0.04–0.2 s
    of CPU at 512², the whole default path (with the sub-maps) at most 1.07 s of CPU per 512²
    held-out map (``benchmarks/bench_sigma_generalisation.py``).

    References
    ----------
    F. J. Harris, "On the use of windows for harmonic analysis with the
    discrete Fourier transform", Proc. IEEE 66, 51 (1978),
    doi:10.1109/PROC.1978.10837.
    P. Whittle, "Estimation and information in stationary time series",
    Ark. Mat. 2, 423 (1953), doi:10.1007/BF02590998.
    L. Moisan, "Periodic plus smooth image decomposition", J. Math. Imaging
    Vis. 39, 161 (2011), doi:10.1007/s10851-010-0227-1.
    G. Schwarz, "Estimating the dimension of a model", Ann. Stat. 6, 461
    (1978), doi:10.1214/aos/1176344136.
    J. Yang, Z. Zhang, Q. Cheng, J. Anal. At. Spectrom. 37, 750 (2022),
    doi:10.1039/d1ja00425e (conclusion: a correct PSF model in the blind step).

    Examples
    --------
    >>> from xrfgpu import phantom, psf
    >>> counts, truth, h = phantom.observe((200, 200), 6.5, seed=1)
    >>> est = psf.estimate_sigma(counts)
    >>> 5.0 < est.sigma < 8.0
    True

    Backends: any array-API input; the fits run with NumPy/SciPy on the host. A map of another
    namespace (CuPy) has the windowed periodograms of the spectral stage (whole map and corner
    sub-maps) and their ring sums computed in its namespace, on its device; only the ring sums come
    to the host. They agree with the host's to rounding (σ to about 1e-9), not bit for bit.
    """
    if pixel_size_um is not None:  # before the fit: a string failed at the end as a bare float() error
        pixel_size_um = _check_pixel_size(pixel_size_um)
    xp = array_namespace(image)
    img = as_image(image, xp=xp)
    if background is not None:
        as_background(background, img, xp=xp)
    data = to_numpy(img).astype(np.float64)
    if min(data.shape) < MIN_SIDE_PX:
        raise ValueError(f"image must be at least {MIN_SIDE_PX}×{MIN_SIDE_PX} pixels to estimate σ, got shape "
                         f"{data.shape}")
    if not float(data.max() - data.min()) > 0:
        raise ValueError("image is flat: there is no structure from which to estimate the blur")
    # the whole map's ring spectrum, once: the spectral stage fits it, the noise level is read from it
    stripes = {}
    device_map = None if is_numpy_namespace(xp) else img  # its periodograms are taken where it is (_ring_spectrum)
    spectrum = _ring_spectrum(data if device_map is None else device_map, report=stripes, xp=xp)
    spectral_sigma, lo, hi, flat, fit = _spectral_interval(data, spectrum)
    fit.update(stripes)
    # the spectral answer's interval also holds the σ of the four corner sub-maps (see the Notes); the
    # checks of the other stages against the spectrum use the whole map's interval (lo, hi)
    submaps = _submap_sigmas(data, device_map, xp)
    fit["submap_sigmas"] = submaps
    wide = (min(lo, *submaps), max(hi, *submaps)) if submaps else (lo, hi)
    k2, power, _ = spectrum
    fit["noise"] = float(np.mean(power[k2 > 0.16])) if np.any(k2 > 0.16) else float(power[-1])
    fit["whittle_sigma"] = spectral_sigma
    fit["spectral_interval"] = (lo, hi)
    fit["spectral_interval_with_submaps"] = wide
    sigma = su = sv = spectral_sigma
    rho = 0.0
    method = "whittle"
    disagree = False  # set where two independent stages give σ's that the intervals do not reconcile
    profile_fits = None
    interval = wide
    sub_words = (f", sub-maps {min(submaps):.3g}–{max(submaps):.3g} px" if submaps else "")
    evidence = (f"spectrum (profile Whittle likelihood, scene law k^-{fit['scene_exponent']:.2g} fitted, "
                f"k^-2.5..k^-3.5 for the interval): σ {spectral_sigma:.3g} px{sub_words}, "
                f"interval {wide[0]:.3g}–{wide[1]:.3g} px")
    if elliptical or thorough:
        full = _whittle_fit(data, elliptical=elliptical)
        fit.update({k: v for k, v in full.items() if k not in fit or k == "noise"})
        su, sv, rho = full["sigma_u"], full["sigma_v"], full["rho"]
        sigma = math.sqrt(su * sv)
        fit["whittle_sigma"] = sigma
        evidence = f"2-D Whittle fit σ {sigma:.3g} px; spectral interval {lo:.3g}–{hi:.3g} px"
    if not elliptical:
        edges = _edge_fits(data, sigma)
        edge_sigma, agreeing = _edge_consensus(edges)
        fit["edges"] = edges
        if edge_sigma is not None:
            sigma = su = sv = edge_sigma
            method = "straight-edges"
            fit["edges_used"] = agreeing
            interval = _edge_interval(edge_sigma, agreeing)
            agree = lo <= edge_sigma <= hi
            evidence = (f"{len(agreeing)} straight edges agree on σ {edge_sigma:.3g} px (within 10 %); the "
                        f"independent spectral interval {lo:.3g}–{hi:.3g} px "
                        + ("contains it" if agree else "does not contain it: the two stages disagree"))
            fit["stages_agree"] = agree
            if not agree:
                # two independent readings that disagree are not a confident number: the interval holds both
                interval = (min(interval[0], lo), max(interval[1], hi))
                disagree = True
        else:
            profile_fits = profiles_on_thinned_halves(data, spectral_sigma, fit["noise"])
            profiles = _edge_profile_stage(data, spectral_sigma, fit["noise"], (lo, hi), fits=profile_fits)
            fit["edge_profiles"] = profiles
            if profiles["decides"]:
                sigma = su = sv = profiles["sigma"]
                method = "edge-profiles"
                # the interval also holds the spectral σ (±_PROFILE_ALLOWANCE) where the two stages' numbers differ
                interval = (min(profiles["interval"][0], spectral_sigma / _PROFILE_ALLOWANCE),
                            max(profiles["interval"][1], spectral_sigma * _PROFILE_ALLOWANCE))
                fit["stages_agree"] = True
                evidence = (f"{profiles['n']} local edge profiles (edges found on one Poisson half, fitted on the "
                            f"other) agree on σ {sigma:.3g} px (spread {100 * profiles['log_spread']:.0f} % in "
                            f"ln σ); the independent spectral interval {lo:.3g}–{hi:.3g} px contains it")
            elif profiles.get("blends") and fit["scene_exponent"] >= _SCENE_EXPONENT_MIN:
                # profiles that spread more, inside the spectral interval: the two readings share the answer
                # (a spectrum that rises with frequency rests on no law, and is left to say so below)
                w = _PROFILE_BLEND_WEIGHT
                sigma = su = sv = math.exp(w * math.log(profiles["sigma"]) + (1.0 - w) * math.log(spectral_sigma))
                method = "whittle+edge-profiles"
                fit["stages_agree"] = True
                evidence = (f"spectrum and local edge profiles together: the geometric mean, weights "
                            f"{1.0 - w:.2g} and {w:.2g}, of the spectral σ {spectral_sigma:.3g} px (scene law "
                            f"k^-{fit['scene_exponent']:.2g} fitted{sub_words}) and the median {profiles['sigma']:.3g} "
                            f"px of {profiles['n']} edge profiles, which lies inside the spectral interval "
                            f"{lo:.3g}–{hi:.3g} px but spreads by {100 * profiles['log_spread']:.0f} % in ln σ, too "
                            f"much to decide alone: σ {sigma:.3g} px, the spectral interval {wide[0]:.3g}–"
                            f"{wide[1]:.3g} px")
            elif (profiles.get("log_spread", math.inf) <= _PROFILE_DISAGREE_SPREAD_MAX
                  and not profiles["inside_spectral"]):
                # edge profiles (spread at most the blend's limit) outside the spectral interval: the two stages
                # disagree
                interval = (min(interval[0], profiles["interval"][0]), max(interval[1], profiles["interval"][1]))
                disagree = True
                evidence += (f"; {profiles['n']} local edge profiles read σ {profiles['sigma']:.3g} px (spread "
                             f"{100 * profiles['log_spread']:.0f} % in ln σ), outside the spectral interval "
                             f"{lo:.3g}–{hi:.3g} px: the two stages disagree")
        if method in ("whittle", "whittle+edge-profiles") and edge_sigma is None and thorough:
            mosaic = fit_mosaic_scene(data, fit, blob_below=_BLOB_BELOW)
            if mosaic["reduced_chi2"] > _RL_TRIGGER:
                # bars that the Wiener seeds break up: seed on a Richardson–Lucy restoration instead
                second = fit_mosaic_scene(data, fit, init="richardson-lucy", blob_below=_BLOB_BELOW,
                                          split=_SPLIT_DIP)
                # the fit of lower BIC wins (see the Notes)
                if second["bic"] < mosaic["bic"]:
                    fit["mosaic_rejected"], mosaic = mosaic, second
                else:
                    fit["mosaic_rejected"] = second
            fit["mosaic"] = mosaic
            if mosaic["reduced_chi2"] <= _MOSAIC_CHI2_MAX:
                sigma = su = sv = mosaic["sigma"]
                method = "mosaic-scene"
                agree = lo <= sigma <= hi
                fit["stages_agree"] = agree
                evidence = (f"mosaic scene fit σ {sigma:.3g} px (χ²/n {mosaic['reduced_chi2']:.3g}); the spectral "
                            f"interval {lo:.3g}–{hi:.3g} px " + ("contains it" if agree else "does not contain it"))
                # the whole map's spectral interval, as before the sub-maps (the mosaic fit models the
                # whole map)
                interval = (lo, hi) if agree else (min(lo, sigma), max(hi, sigma))
    if stripes.get("stripes"):
        ratios = [f"{name} {stripes['stripe_ratio_' + name]:.3g}×" for name in stripes["stripes"]]
        evidence += ("; scan stripes found (axis power over its neighbours at high frequency: "
                     + ", ".join(ratios) + "), that axis left out of the spectrum")
    maybe_elongated = None
    # a scene spectrum rising with frequency (a periodic pattern) fits no blurred power law, in any direction:
    # no elongation is read from it either
    rising = fit["scene_exponent"] < _SCENE_EXPONENT_MIN
    if elongation and not elliptical and not (rising and method == "whittle"):
        if profile_fits is None:  # straight edges decided: the profiles are read for the elongation check only
            profile_fits = profiles_on_thinned_halves(data, spectral_sigma, fit["noise"])
        shape = _elongation_stage(data, spectral_sigma, profile_fits)
        fit["elongation"] = shape
        if shape["verdict"] in ("edges", "spectrum"):
            round_sigma, round_method = sigma, method
            su, sv, rho = shape["sigma_u"], shape["sigma_v"], shape["rho"]
            sigma = math.sqrt(su * sv)  # as the 2-D Whittle fit reports it (SigmaEstimate.sigma)
            fit["round_sigma"], fit["round_method"] = round_sigma, round_method
            if shape["verdict"] == "edges":
                method = "elliptical-edge-profiles"
                e = shape["edges"]
                interval = (sigma / 1.1, sigma * 1.1)
                evidence = (f"elongated spot: {e['n']} local edge profiles at many angles fit one elliptical "
                            f"Gaussian σ(θ) (spread {100 * e['log_spread']:.0f} % in ln σ, against "
                            f"{100 * e['round_log_spread']:.0f} % about one round σ), axis ratio {e['ratio']:.2f} "
                            f"(90 % bootstrap interval {e['ratio_interval'][0]:.2f}–{e['ratio_interval'][1]:.2f}): "
                            f"{_ellipse_words(su, sv, rho)}; √(σu σv) {sigma:.3g} px")
            else:
                method = "elliptical-spectrum"
                interval = (min(lo, sigma), max(hi, sigma))
                evidence = (f"elongated spot: the directional power spectrum of the whole map and of its four corner "
                            f"sub-maps all show an axis ratio of at least {shape['spectral_ratio_low']:.2f} along one "
                            f"axis (whole map {shape['spectral']['ratio']:.2f}): {_ellipse_words(su, sv, rho)}; "
                            f"√(σu σv) {sigma:.3g} px (round σ {round_sigma:.3g} px, {round_method})")
        elif shape["verdict"] == "maybe":
            maybe_elongated = (f"estimate_sigma: the spot may be elongated ({shape['maybe_from']}: "
                               f"{_ellipse_words(shape['sigma_u'], shape['sigma_v'], shape['rho'])}), but the "
                               f"evidence is not strong enough to restore with that ellipse; the round σ "
                               f"{sigma:.3g} px ({method}) is a compromise between the axes. Measure the spot on a "
                               "dot (xrfgpu.psf.fit_dot) or edges at two angles, or pass psf= "
                               "(xrfgpu.psf.gaussian(None, sigma_u, sigma_v, rho))")
    spectral_answer = method in ("whittle", "whittle+edge-profiles")  # the interval is the spectrum's
    no_information = spectral_answer and (flat or rising or wide[1] / wide[0] > _NO_INFORMATION_RATIO)
    reliable = not disagree and (method in ("straight-edges", "edge-profiles", "elliptical-edge-profiles") or (
        not no_information and interval[1] / interval[0] <= _RELIABLE_RATIO))
    if rising and method == "whittle":
        # the spectrum's σ's rest on a law that does not hold: the interval is the whole σ range
        grid = fit["spectral_grid"]
        interval = (min(interval[0], grid[0]), max(interval[1], grid[1]))
    if no_information:
        evidence = "the map carries no σ information: " + evidence + (
            " (the likelihood is flat to the end of the σ range)" if flat else "") + (
            f" (the fitted scene spectrum rises with frequency, k^{-fit['scene_exponent']:+.2g}: no power law "
            "fits it, e.g. a periodic pattern)" if rising else "")
    if not reliable:
        message = (f"estimate_sigma: σ is uncertain ({evidence}). Measure the PSF on a dot or an edge "
                   "(xrfgpu.psf.fit_dot, fit_knife_edge) or pass sigma= yourself")
        if maybe_elongated is not None:  # one warning that says both
            message += "; also, " + maybe_elongated.removeprefix("estimate_sigma: ")
        if strict:
            raise ValueError(message)
        warnings.warn(message, SigmaUncertainWarning, stacklevel=2)
    elif maybe_elongated is not None:
        warnings.warn(maybe_elongated, SigmaUncertainWarning, stacklevel=2)
    return SigmaEstimate(
        sigma=sigma,
        sigma_u=su,
        sigma_v=sv,
        rho=rho,
        method=method,
        noise_level=fit["noise"],
        details=fit,
        pixel_size_um=None if pixel_size_um is None else float(pixel_size_um),
        interval=(float(interval[0]), float(interval[1])),
        reliable=bool(reliable),
        evidence=evidence,
    )
