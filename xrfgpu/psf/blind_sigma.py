"""Blind estimate of a Gaussian PSF σ from the blurred map alone."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._backend import array_namespace, to_numpy
from .._validate import as_background, as_image
from ._gaussian import FWHM_PER_SIGMA

__all__ = ["estimate_sigma", "SigmaEstimate"]


@dataclass(frozen=True)
class SigmaEstimate:
    """Result of :func:`estimate_sigma`.

    Attributes
    ----------
    sigma : float
        Estimated isotropic σ in pixels (√(σu σv) when elliptical).
    sigma_u, sigma_v, rho : float
        Elliptical parameters (equal to ``sigma``, ``sigma``, 0 for the
        isotropic model). u = columns, v = rows.
    method : str
        Which estimator produced the number.
    noise_level : float
        Fitted white-noise power per pixel (counts² for a count map).
    details : dict
        Estimator-specific diagnostics.
    pixel_size_um : float or None
        Scan step for the ``*_um`` twins.
    """

    sigma: float
    sigma_u: float
    sigma_v: float
    rho: float
    method: str
    noise_level: float = float("nan")
    details: dict | None = None
    pixel_size_um: float | None = None

    def __float__(self) -> float:
        return float(self.sigma)

    @property
    def fwhm(self) -> float:
        """FWHM of the isotropic estimate, pixels."""
        return FWHM_PER_SIGMA * self.sigma

    def _um(self, v):
        if self.pixel_size_um is None:
            raise AttributeError("no pixel_size_um was given; σ is in pixels only")
        return v * self.pixel_size_um

    sigma_um = property(lambda self: self._um(self.sigma), doc="σ in µm.")
    sigma_u_um = property(lambda self: self._um(self.sigma_u), doc="σu in µm.")
    sigma_v_um = property(lambda self: self._um(self.sigma_v), doc="σv in µm.")
    fwhm_um = property(lambda self: self._um(self.fwhm), doc="FWHM in µm.")

    def psf(self, shape=None, *, xp=None, device=None, dtype=None):
        """The estimated Gaussian PSF (see :func:`xrfgpu.psf.gaussian`)."""
        from ._gaussian import gaussian

        return gaussian(shape, self.sigma_u, self.sigma_v, self.rho, xp=xp, device=device, dtype=dtype)


def _periodic_component(u):
    """Periodic part of Moisan's periodic + smooth decomposition (removes the FFT border cross)."""
    from scipy import fft as sfft

    rows, cols = u.shape
    v = np.zeros_like(u)
    v[0, :] += u[-1, :] - u[0, :]
    v[-1, :] += u[0, :] - u[-1, :]
    v[:, 0] += u[:, -1] - u[:, 0]
    v[:, -1] += u[:, 0] - u[:, -1]
    q = np.arange(rows)[:, None]
    p = np.arange(cols)[None, :]
    den = 2.0 * np.cos(2.0 * np.pi * q / rows) + 2.0 * np.cos(2.0 * np.pi * p / cols) - 4.0
    den[0, 0] = 1.0
    s_hat = sfft.fft2(v) / den
    s_hat[0, 0] = 0.0
    return u - np.real(sfft.ifft2(s_hat))


def _whittle_fit(data, *, elliptical):
    """Maximum Whittle likelihood of the blurred random-mosaic spectrum; returns params dict."""
    from scipy import fft as sfft
    from scipy import optimize

    rows, cols = data.shape
    per = _periodic_component(data - data.mean())
    power = np.abs(sfft.rfft2(per)) ** 2 / (rows * cols)
    ky = sfft.fftfreq(rows)[:, None] * np.ones((1, power.shape[1]))
    kx = sfft.rfftfreq(cols)[None, :] * np.ones((rows, 1))
    # each rfft column except the first (and Nyquist for even widths) stands for two frequencies
    weight = np.full(power.shape, 2.0)
    weight[:, 0] = 1.0
    if cols % 2 == 0:
        weight[:, -1] = 1.0
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
    log_a, su, sv, rho, log_n, log_k0 = unpack(best.x)
    return {"sigma_u": su, "sigma_v": sv, "rho": rho, "noise": math.exp(log_n),
            "corner_frequency": math.exp(log_k0), "nll": best.fun}


def estimate_sigma(image, background=None, *, elliptical=False, pixel_size_um=None):
    """Blind estimate of the Gaussian PSF σ (pixels) from the blurred map alone.

    No dot, no edge chosen by hand: σ is the maximum-likelihood blur of a
    stochastic scene model, fitted to the map's power spectrum.

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
    pixel_size_um : float, optional
        Scan step for the ``*_um`` twins.

    Returns
    -------
    SigmaEstimate
        ``.sigma`` is σ in pixels (a float); ``float(result)`` gives the same.

    Raises
    ------
    ValueError
        Map smaller than 32×32, containing NaN/inf, or flat.

    Notes
    -----
    Criterion: maximum Whittle likelihood. The map is modelled as a Gaussian
    stationary field y = h_σ ⊛ x + n, with white noise n of power N (Poisson
    counts: N ≈ mean count) and a scene x whose power spectrum is that of a
    random mosaic of constant patches (exponential covariance e^(−r/ℓ)),
    S(k) = A (k² + k0²)^(−3/2). The expected periodogram is
    P(k) = S(k) exp(−4π² σ² |k|²) + N, and (A, k0, σ, N) maximise the
    Whittle log-likelihood −Σ_k [log P(k) + I(k)/P(k)] of the periodogram
    I(k) of the map's periodic component (Moisan's periodic + smooth
    decomposition, so the map borders add no spurious spectrum). This is the
    marginal likelihood of σ under a Gaussian scene prior; it is invariant
    to the background and needs no edge. Its known weakness is bias when the
    scene spectrum departs from the mosaic law. Fitted on the host with
    :func:`scipy.optimize.minimize` (Nelder–Mead, four starting σ).

    Accuracy (measured, ``tests/psf_scenes.py`` scans of 200×200 pixels at
    the paper's counts, 150 counts of signal over 140 of background, six
    seeds each; σ_est/σ_true): grains + veins at σ = 4, 6.5, 10 px:
    0.90–1.08, 0.87–0.99, 0.79–0.96; the bar chart: 1.11–1.15, 0.87–0.96,
    0.90–1.11. So the estimate is good to about ±20 %, not the ±10 % that a
    measured dot or knife edge gives (:func:`fit_dot`,
    :func:`fit_knife_edge`, both within 5 %): on grain maps σ is biased low
    when σ approaches the grain size, on bar charts biased high at small σ,
    because those scene spectra depart from the mosaic law. Use it as a
    starting value or when nothing better is available, and prefer a
    measured PSF when one can be had.

    Run time: about 0.3–0.6 s for a 200×200 or 256×256 map on one core
    (four Nelder–Mead starts, each a few hundred evaluations of a
    closed-form spectrum on the rfft grid).

    References
    ----------
    P. Whittle, "Estimation and information in stationary time series",
    Ark. Mat. 2, 423 (1953), doi:10.1007/BF02590998.
    L. Moisan, "Periodic plus smooth image decomposition", J. Math. Imaging
    Vis. 39, 161 (2011), doi:10.1007/s10851-010-0227-1.
    J. Yang, Z. Zhang, Q. Cheng, J. Anal. At. Spectrom. 37, 750 (2022),
    doi:10.1039/d1ja00425e (conclusion: a correct PSF model in the blind step).

    Examples
    --------
    >>> from xrfgpu import phantom, psf
    >>> counts, truth, h = phantom.observe((200, 200), 6.5, seed=1)
    >>> est = psf.estimate_sigma(counts)
    >>> 5.0 < est.sigma < 8.0
    True

    Backends: any array-API input; the fit runs with NumPy/SciPy on the host.
    """
    xp = array_namespace(image)
    img = as_image(image, xp=xp)
    if background is not None:
        as_background(background, img, xp=xp)
    data = to_numpy(img).astype(np.float64)
    if data.shape[0] < 32 or data.shape[1] < 32:
        raise ValueError(f"image must be at least 32×32 pixels to estimate σ, got shape {data.shape}")
    if not float(data.max() - data.min()) > 0:
        raise ValueError("image is flat: there is no structure from which to estimate the blur")
    fit = _whittle_fit(data, elliptical=elliptical)
    su, sv, rho = fit["sigma_u"], fit["sigma_v"], fit["rho"]
    sigma = math.sqrt(su * sv)
    return SigmaEstimate(
        sigma=sigma,
        sigma_u=su,
        sigma_v=sv,
        rho=rho,
        method="whittle",
        noise_level=fit["noise"],
        details=fit,
        pixel_size_um=None if pixel_size_um is None else float(pixel_size_um),
    )
