"""A micro-XRF acquisition simulator: Poisson counts, background, stage jitter, tube drift.

The defaults reproduce the paper's scan of a USAF-1951 chart (Yang et al.
2022, §2.4): Cr-Kα at 429 counts/s on chrome and 275 counts/s off it, 0.5 s
dwell, 5 µm step, 3 µm stage positioning accuracy.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage, signal

__all__ = ["scan"]


def _positive(value, name, *, allow_zero=False):
    v = float(value)
    ok = (v >= 0) if allow_zero else (v > 0)
    if not (ok and math.isfinite(v)):
        raise ValueError(f"{name} must be a finite number {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return v


def _drift_gain(shape, drift, rng):
    """Multiplicative tube-current gain per scan point, ``1 + drift · z(t)``.

    ``z`` is a random walk over the scan lines (one Gaussian step per line),
    centred and scaled to unit standard deviation, linearly interpolated
    along each line between the value at its start and at the next line's
    start: a slow drift in acquisition time (raster order), continuous within
    a line and visible as line-to-line banding.
    """
    rows, cols = shape
    if drift == 0.0:
        return np.ones(shape)
    walk = np.cumsum(rng.standard_normal(rows + 1))
    walk -= walk.mean()
    sd = walk.std()
    walk = walk / sd if sd > 0 else np.zeros_like(walk)
    t = np.arange(cols) / cols
    z = walk[:-1, None] * (1.0 - t[None, :]) + walk[1:, None] * t[None, :]
    return np.clip(1.0 + drift * z, 0.0, None)


def scan(
    truth,
    psf,
    *,
    signal_cps=429.0,
    background_cps=275.0,
    dwell_s=0.5,
    pixel_size_um=5.0,
    jitter_um=3.0,
    drift=0.01,
    oversample=1,
    seed=None,
):
    """Simulate a step-scan micro-XRF map of a concentration map ``truth``.

    Parameters
    ----------
    truth : array_like, shape (rows·oversample, cols·oversample)
        Element coverage or concentration in [0, 1] (1 = the reference
        material, e.g. the chart's chrome), on a grid of
        ``pixel_size_um / oversample`` µm.
    psf : array_like, shape (kr, kc)
        Excitation/detection spot on the same grid as ``truth`` (normalised
        to unit sum here).
    signal_cps : float
        Count rate on the reference material (coverage 1), counts/s,
        background included (the paper: 429 cps on chrome).
    background_cps : float
        Count rate where the element is absent, counts/s (the paper: 275 cps
        on glass: scatter and the continuum under the line).
    dwell_s : float
        Dwell time per scan point, s.
    pixel_size_um : float
        Scan step, µm.
    jitter_um : float
        Standard deviation of the stage positioning error, µm, independent
        in x and y at each point (the paper's stage: 3 µm accuracy).
    drift : float
        Relative rms of the tube-current drift over the scan (0.01 = 1 %;
        the paper does not state it). Scales signal and background alike.
    oversample : int
        ``truth`` pixels per scan step along each axis.
    seed : int or numpy.random.Generator, optional
        Random source of counts, jitter and drift.

    Returns
    -------
    counts : ndarray of float32, shape (rows, cols)
        Poisson counts per scan point.

    Raises
    ------
    ValueError
        Rates not positive, ``signal_cps < background_cps``, truth not 2-D
        or not finite, a shape not divisible by ``oversample``.

    Notes
    -----
    The expected count at scan point ``p`` is
    ``dwell · g(t_p) · [b + (s − b) · (h ⊛ c)(p + ε_p)]`` with ``c`` the
    truth, ``h`` the spot, ``ε_p ~ N(0, jitter²)`` per axis and ``g`` the
    drift gain (random walk along the acquisition, see ``_drift_gain``). The
    truth is padded with zeros (glass: the chart continues beyond the scan)
    by the spot radius plus five jitter deviations and convolved linearly,
    so the map has real borders, never a circular wrap. Off-grid positions
    are read by bilinear interpolation of the blurred map, accurate because
    the blurred map is smooth on the scale of a pixel. Runs on the host
    (NumPy/SciPy); restoration of the result runs anywhere.

    References
    ----------
    J. Yang, Z. Zhang, Q. Cheng, J. Anal. At. Spectrom. 37, 750 (2022),
    doi:10.1039/d1ja00425e.

    Examples
    --------
    >>> import numpy as np
    >>> from xrfgpu import psf, simulate, usaf
    >>> c = usaf.chart(5.0, groups=range(4, 6))
    >>> counts = simulate.scan(c.image, psf.gaussian(None, 6.5), seed=0)
    >>> counts.shape == c.shape, counts.dtype
    (True, dtype('float32'))

    Backends
    --------
    NumPy (host simulation).
    """
    truth = np.asarray(truth, dtype=np.float64)
    if truth.ndim != 2:
        raise ValueError(f"truth must be a 2-D map, got shape {truth.shape}")
    if not np.all(np.isfinite(truth)):
        raise ValueError("truth contains NaN or inf")
    psf = np.asarray(psf, dtype=np.float64)
    if psf.ndim != 2 or not np.all(np.isfinite(psf)) or np.any(psf < 0) or not psf.sum() > 0:
        raise ValueError("psf must be a finite, non-negative 2-D array with a positive sum")
    psf = psf / psf.sum()
    s = _positive(signal_cps, "signal_cps")
    b = _positive(background_cps, "background_cps", allow_zero=True)
    if s < b:
        raise ValueError(f"signal_cps ({s}) must be >= background_cps ({b})")
    dwell = _positive(dwell_s, "dwell_s")
    pixel = _positive(pixel_size_um, "pixel_size_um")
    jitter = _positive(jitter_um, "jitter_um", allow_zero=True)
    drift = _positive(drift, "drift", allow_zero=True)
    if int(oversample) != oversample or oversample < 1:
        raise ValueError(f"oversample must be a positive integer, got {oversample!r}")
    os_ = int(oversample)
    if truth.shape[0] % os_ or truth.shape[1] % os_:
        raise ValueError(f"truth shape {truth.shape} is not divisible by oversample={os_}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

    fine = pixel / os_
    jitter_px = jitter / fine
    kr, kc = psf.shape
    margin = int(math.ceil(5 * jitter_px)) + 2
    pr, pc = kr // 2 + margin, kc // 2 + margin
    padded = np.pad(truth, ((pr, pr), (pc, pc)))
    full = signal.fftconvolve(padded, psf, mode="full")
    # full[i] = Σ_j padded[j] psf[i − j]: padded index j sits at full index j + k//2
    blurred = full[kr // 2 : kr // 2 + padded.shape[0], kc // 2 : kc // 2 + padded.shape[1]]

    rows, cols = truth.shape[0] // os_, truth.shape[1] // os_
    centre = (os_ - 1) / 2.0
    rr = np.arange(rows)[:, None] * os_ + centre + pr + jitter_px * rng.standard_normal((rows, cols))
    cc = np.arange(cols)[None, :] * os_ + centre + pc + jitter_px * rng.standard_normal((rows, cols))
    coverage = ndimage.map_coordinates(blurred, [rr, cc], order=1, mode="nearest")
    coverage = np.clip(coverage, 0.0, None)
    rate = b + (s - b) * coverage
    expected = dwell * rate * _drift_gain((rows, cols), drift, rng)
    return rng.poisson(expected).astype(np.float32)
