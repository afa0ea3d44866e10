"""Fourier ring correlation (FRC): the resolution that two independent images of one scene share.

Two maps of the same scene with independent noise (for counts: the two
halves of a binomial thinning, :func:`split_counts`) agree at the spatial
frequencies where the scene's signal stands above the noise and disagree
beyond. The FRC measures that agreement ring by ring in the Fourier plane,

``FRC(r) = Σ_{|f|∈r} Re F₁(f) F₂*(f) / sqrt(Σ_{|f|∈r} |F₁(f)|² · Σ_{|f|∈r} |F₂(f)|²)``,

and the *FRC resolution* is the frequency where it falls below a threshold:
the fixed 1/7 (Rosenthal & Henderson 2003, for two half data sets) or van
Heel & Schatz's half-bit curve, which rises towards the low-frequency rings
whose few pixels make the correlation noisy. Koho et al. (2019) used the FRC
of two restorations of independent halves to follow and stop
Richardson–Lucy iterations; :mod:`xrfgpu.stopping` uses it the same way.

Conventions: frequencies in cycles per pixel (Nyquist = 0.5), rings of width
``bin_width / min(rows, cols)`` centred on multiples of that step, the real
half-plane (``rfft2``) counted with the weight of the full plane, and rings
beyond Nyquist (the corners) left out. Each image has its mean subtracted and
is multiplied by a separable Hann window before the transform (``window=
"hann"``, default): a map is not periodic, and the jump at its borders would
put a cross of *correlated* power (the same scene in both images) on the
frequency axes, up to Nyquist. The window leaves fewer independent Fourier
samples per ring (each Fourier value is correlated with those one and two
pixels away); the noise level of the FRC (its uncertainty, the half-bit
curve) uses the ring's effective count ``(Σ C_ii)² / Σ C_ij²`` over the
pairs of pixels in the ring, ``C`` the covariance the window gives white noise.

References
----------
W. O. Saxton, W. Baumeister, J. Microsc. 127, 127 (1982), doi:10.1111/j.1365-2818.1982.tb00405.x.
P. B. Rosenthal, R. Henderson, J. Mol. Biol. 333, 721 (2003), doi:10.1016/j.jmb.2003.07.013.
M. van Heel, M. Schatz, J. Struct. Biol. 151, 250 (2005), doi:10.1016/j.jsb.2005.05.009.
N. Banterle, K. H. Bui, E. A. Lemke, M. Beck, J. Struct. Biol. 183, 363 (2013), doi:10.1016/j.jsb.2013.05.004.
S. Koho et al., Nat. Commun. 10, 3103 (2019), doi:10.1038/s41467-019-11024-z.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ._backend import array_device, array_namespace, rfft2, to_numpy
from .stopping import split_counts

__all__ = ["FRCCurve", "FRCResolution", "FourierRings", "ONE_SEVENTH", "THRESHOLDS", "fourier_ring_correlation",
           "frc_resolution", "half_bit_threshold", "split_counts"]

ONE_SEVENTH = 1.0 / 7.0
THRESHOLDS = ("1/7", "half-bit")


class FRCCurve(NamedTuple):
    """The FRC of two images, ring by ring (NumPy arrays, small).

    Attributes
    ----------
    frequency : numpy.ndarray, shape (n_rings,)
        Ring centre, cycles per pixel (0 … 0.5).
    correlation : numpy.ndarray, shape (n_rings,)
        FRC of the ring, in [-1, 1] (0 where a ring holds no power).
    ring_pixels : numpy.ndarray, shape (n_rings,)
        Fourier pixels of the full plane in the ring.
    effective_pixels : numpy.ndarray, shape (n_rings,)
        ``ring_pixels`` times what the window's correlation of neighbouring
        Fourier pixels leaves independent (equal without a window): the
        ``n`` of the FRC's noise level ``1/√n``.
    """

    frequency: np.ndarray
    correlation: np.ndarray
    ring_pixels: np.ndarray
    effective_pixels: np.ndarray


class FRCResolution(NamedTuple):
    """Where an FRC curve falls below its threshold.

    Attributes
    ----------
    frequency : float
        Cycles per pixel at the first crossing (linear between rings); the
        last ring's frequency when the curve never falls below.
    resolution_px : float
        ``1 / frequency``: the finest period, pixels, that both images share.
    uncertainty : float
        One standard deviation of ``frequency``, cycles per pixel: the FRC's
        noise at the crossing, ``(1 − FRC²) / √n_eff`` over the smoothing
        window, divided by the slope of FRC − threshold there.
    threshold : str
        "1/7" or "half-bit".
    crossed : bool
        False when the FRC stays above the threshold up to Nyquist.
    """

    frequency: float
    resolution_px: float
    uncertainty: float
    threshold: str
    crossed: bool


def half_bit_threshold(effective_pixels):
    """Van Heel & Schatz's half-bit threshold for rings of ``effective_pixels`` Fourier pixels.

    ``T(n) = (0.2071 + 1.9102 / √n) / (1.2071 + 0.9102 / √n)``: 1 at ``n = 1``,
    falling towards 0.1716 for large rings.

    Parameters
    ----------
    effective_pixels : array_like
        Independent Fourier pixels per ring (> 0).

    Returns
    -------
    numpy.ndarray
        The threshold per ring.

    References
    ----------
    M. van Heel, M. Schatz, J. Struct. Biol. 151, 250 (2005), doi:10.1016/j.jsb.2005.05.009.
    """
    root = np.sqrt(np.maximum(np.asarray(effective_pixels, dtype=np.float64), 1.0))
    return (0.2071 + 1.9102 / root) / (1.2071 + 0.9102 / root)


# a Hann window w = sin² multiplies white noise; in the Fourier plane its values become correlated with
# those 1 and 2 pixels away, with the Fourier coefficients of w² = sin⁴ = 3/8 − ½ cos + ⅛ cos 2·
_HANN_SQUARED_LAGS = (3.0 / 8.0, 1.0 / 4.0, 1.0 / 16.0)


def _effective_pixels(shape, step, n_rings, *, windowed):
    """Independent Fourier pixels per ring: ``(Σ_i C_ii)² / Σ_{i,j ∈ ring} C_ij²`` for white noise.

    ``C`` is the covariance of the windowed noise's transform: the identity
    without a window; with the separable Hann window ``C_ij = c(Δy) c(Δx)``
    for pixels ``Δ`` apart (:data:`_HANN_SQUARED_LAGS`). The sum counts the
    pairs of each lag inside each ring over the full plane (NumPy, once per
    geometry).
    """
    rows, cols = shape
    fy = np.fft.fftfreq(rows)[:, None]
    fx = np.fft.fftfreq(cols)[None, :]
    ring = np.floor(np.hypot(fy, fx) / step + 0.5).astype(np.int64)
    ring = np.minimum(ring, n_rings)
    pixels = np.bincount(ring.ravel(), minlength=n_rings + 1)[:n_rings].astype(np.float64)
    if not windowed:
        return pixels
    c = _HANN_SQUARED_LAGS
    spread = np.zeros(n_rings + 1)
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            weight = (c[abs(dy)] * c[abs(dx)] / (c[0] * c[0])) ** 2
            same = ring == np.roll(ring, (dy, dx), axis=(0, 1))
            spread += weight * np.bincount(ring[same], minlength=n_rings + 1)
    return pixels**2 / np.maximum(spread[:n_rings], 1e-300)


def _hann(n, *, xp, device, dtype):
    """Periodic-free Hann window ``sin²(π (i + ½) / n)``, length ``n`` (never exactly 0)."""
    i = xp.arange(n, dtype=dtype, device=device)
    return xp.sin(math.pi * (i + 0.5) / n) ** 2


def fft_frequencies(n, *, xp, device=None, half=False):
    """The frequencies of an FFT of length ``n``, in cycles per pixel, on ``device``.

    The order of ``numpy.fft.fftfreq(n)`` (``half=False``) or ``numpy.fft.rfftfreq(n)`` (``half=True``),
    built from ``arange``: array-api-compat's CuPy ``fftfreq`` refuses a CUDA device argument (1.16).

    Parameters
    ----------
    n : int
        Transform length (pixels).
    xp : namespace
        Array namespace.
    device : optional
        Device of the result.
    half : bool
        The non-negative half of a real transform.

    Returns
    -------
    array
        float64 frequencies, cycles per pixel.
    """
    k = xp.arange(n // 2 + 1 if half else n, dtype=xp.float64, device=device)
    if not half:
        k = xp.where(k < (n + 1) // 2, k, k - n)
    return k * (1.0 / n)  # numpy multiplies by 1/(n d): the same roundings


class FourierRings:
    """The ring geometry of one map shape, reusable for many FRCs (for example one per RL iteration).

    Parameters
    ----------
    shape : tuple of int
        ``(rows, cols)`` of the maps, each at least 8.
    bin_width : float
        Ring width in units of ``1 / min(rows, cols)`` cycles per pixel (≥ 1).
    window : {"hann", None}
        Window applied to each (mean-subtracted) image before the transform.
    xp : namespace
        Array namespace of the maps.
    device : optional
        Device of the maps.

    Raises
    ------
    ValueError
        A shape that is not two sides of at least 8 pixels, ``bin_width`` < 1
        or an unknown window.

    Backends
    --------
    Any array-API namespace (2023.12: ``cumulative_sum``, ``searchsorted``).
    """

    def __init__(self, shape, *, bin_width=1.0, window="hann", xp, device=None):
        shape = tuple(int(n) for n in shape)
        if len(shape) != 2 or min(shape) < 8:
            raise ValueError(f"FRC needs 2-D maps of at least 8 × 8 pixels, got shape {shape}")
        bin_width = float(bin_width)
        if not (bin_width >= 1.0 and math.isfinite(bin_width)):
            raise ValueError(f"bin_width must be >= 1 (rings narrower than one Fourier pixel are empty), "
                             f"got {bin_width!r}")
        if window not in ("hann", None):
            raise ValueError(f'window must be "hann" or None, got {window!r}')
        rows, cols = shape
        self.shape = shape
        self.xp = xp
        self.device = device
        f64 = xp.float64
        step = bin_width / min(rows, cols)
        n_rings = int(math.floor(0.5 / step + 0.5)) + 1  # rings centred at 0, step, ..., ≤ Nyquist
        fy = fft_frequencies(rows, xp=xp, device=device)
        fx = fft_frequencies(cols, xp=xp, device=device, half=True)
        radius = xp.sqrt(xp.astype(fy[:, None] ** 2 + fx[None, :] ** 2, f64))
        ring = xp.astype(xp.floor(radius / step + 0.5), xp.int64)
        ring = xp.where(ring < n_rings, ring, xp.full_like(ring, n_rings))  # corners: one discarded ring
        # the half plane stands for the full one: every column but 0 (and an even width's Nyquist) twice
        col = xp.arange(fx.shape[0], device=device)
        twice = (col > 0) & ((col < cols // 2) if cols % 2 == 0 else (col >= 0))
        col_weight = xp.where(twice, xp.full(col.shape, 2.0, dtype=f64, device=device),
                              xp.ones(col.shape, dtype=f64, device=device))
        flat_ring = xp.reshape(ring, (-1,))
        self._order = xp.argsort(flat_ring, stable=True)
        sorted_ring = xp.take(flat_ring, self._order)
        self._bounds = xp.searchsorted(sorted_ring, xp.arange(n_rings + 1, dtype=sorted_ring.dtype, device=device))
        self._weight = xp.reshape(xp.broadcast_to(col_weight[None, :], ring.shape), (-1,))
        self.frequency = np.arange(n_rings) * step
        self.ring_pixels = np.asarray(to_numpy(self._ring_sums(self._weight)))
        if window == "hann":
            wr = _hann(rows, xp=xp, device=device, dtype=f64)
            wc = _hann(cols, xp=xp, device=device, dtype=f64)
            self._window = wr[:, None] * wc[None, :]
        else:
            self._window = None
        self.effective_pixels = _effective_pixels(shape, step, n_rings, windowed=window == "hann")

    def _ring_sums(self, values):
        """Σ of a flat half-plane array over each ring (sorted cumulative sums, float64)."""
        xp = self.xp
        c = xp.cumulative_sum(xp.take(values, self._order), include_initial=True)
        return xp.take(c, self._bounds[1:]) - xp.take(c, self._bounds[:-1])

    def _spectrum(self, image):
        xp = self.xp
        x = xp.astype(image, xp.float64)
        x = x - xp.mean(x)
        if self._window is not None:
            x = x * self._window
        return xp.reshape(rfft2(x, xp=xp), (-1,))

    def correlation(self, image1, image2):
        """The FRC of two maps of this geometry's shape.

        Parameters
        ----------
        image1, image2 : array, shape ``self.shape``
            Two images of one scene with independent noise, in the rings'
            namespace.

        Returns
        -------
        FRCCurve

        Raises
        ------
        ValueError
            A map of another shape.
        """
        xp = self.xp
        for name, a in (("image1", image1), ("image2", image2)):
            if tuple(a.shape) != self.shape:
                raise ValueError(f"{name} has shape {tuple(a.shape)}; the rings were built for {self.shape}")
        f1 = self._spectrum(image1)
        f2 = self._spectrum(image2)
        cross = self._ring_sums(self._weight * (xp.real(f1) * xp.real(f2) + xp.imag(f1) * xp.imag(f2)))
        p1 = self._ring_sums(self._weight * (xp.real(f1) ** 2 + xp.imag(f1) ** 2))
        p2 = self._ring_sums(self._weight * (xp.real(f2) ** 2 + xp.imag(f2) ** 2))
        cross, p1, p2 = (np.asarray(to_numpy(v), dtype=np.float64) for v in (cross, p1, p2))
        denominator = np.sqrt(p1 * p2)
        positive = denominator > 0
        frc = np.where(positive, cross / np.where(positive, denominator, 1.0), 0.0)
        return FRCCurve(self.frequency.copy(), frc, self.ring_pixels.copy(), self.effective_pixels.copy())


def fourier_ring_correlation(image1, image2, *, bin_width=1.0, window="hann"):
    """Fourier ring correlation of two images of one scene with independent noise.

    Parameters
    ----------
    image1, image2 : array, shape (rows, cols)
        The two images (same shape, same namespace), rows and cols ≥ 8. For
        a count map: the two halves of :func:`split_counts`, or two
        restorations of them made the same way.
    bin_width : float
        Ring width in units of ``1 / min(rows, cols)`` cycles per pixel.
    window : {"hann", None}
        Window on each mean-subtracted image (see the module's notes).

    Returns
    -------
    FRCCurve
        Frequency (cycles / px), FRC, pixels and effective pixels per ring.

    Raises
    ------
    ValueError
        Images of different shapes or not 2-D of at least 8 × 8, a bad
        ``bin_width`` or window.

    Notes
    -----
    For ``image_i = s + n_i`` with independent white noise of variance
    ``v`` and a scene whose Fourier power on a ring is ``P`` (per pixel of
    the unnormalised transform, ``N = rows · cols``), the FRC tends to
    ``P / (P + N v)``: the ring's SNR / (1 + SNR). Identical images give 1;
    independent noise gives 0 ± ``1 / √n_eff``.

    References
    ----------
    W. O. Saxton, W. Baumeister, J. Microsc. 127, 127 (1982), doi:10.1111/j.1365-2818.1982.tb00405.x.
    S. Koho et al., Nat. Commun. 10, 3103 (2019), doi:10.1038/s41467-019-11024-z.

    Examples
    --------
    >>> import numpy as np
    >>> from xrfgpu.frc import fourier_ring_correlation
    >>> a = np.random.default_rng(0).normal(size=(64, 64))
    >>> curve = fourier_ring_correlation(a, a)
    >>> bool(np.allclose(curve.correlation[1:], 1.0))
    True

    Backends
    --------
    Any array-API namespace; the per-ring sums come back to the host.
    """
    xp = array_namespace(image1, image2)
    if tuple(image1.shape) != tuple(image2.shape):
        raise ValueError(f"the two images differ in shape: {tuple(image1.shape)} and {tuple(image2.shape)}")
    rings = FourierRings(tuple(image1.shape), bin_width=bin_width, window=window, xp=xp,
                         device=array_device(image1))
    return rings.correlation(image1, image2)


def frc_resolution(curve, *, threshold="1/7", smooth=3):
    """The FRC resolution: where ``curve`` first falls below the threshold.

    Parameters
    ----------
    curve : FRCCurve
        From :func:`fourier_ring_correlation` or :meth:`FourierRings.correlation`.
    threshold : {"1/7", "half-bit"}
        The fixed 1/7 or van Heel & Schatz's half-bit curve
        (:func:`half_bit_threshold` of the effective ring pixels).
    smooth : int
        Odd number of neighbouring rings averaged (pixel-weighted) before the
        crossing is looked for; 1 for none.

    Returns
    -------
    FRCResolution
        Frequency (cycles / px), ``resolution_px = 1 / frequency``, its
        uncertainty, the threshold's name and whether the curve crossed.

    Raises
    ------
    ValueError
        Unknown threshold, or ``smooth`` not an odd positive integer.
    TypeError
        ``curve`` not an :class:`FRCCurve` (a map passed instead of the
        curve of two halves).

    Notes
    -----
    The search starts at the first ring after the centre (the centre holds
    the mean, which is subtracted). The crossing is interpolated linearly
    between the last ring above and the first below. Its uncertainty is the
    delta method: the smoothed FRC's standard deviation ``(1 − ρ²) / √n``
    (``n``: effective pixels in the smoothing window) over the slope of
    ``FRC − T`` (a straight line fitted to the rings within ``2 · (smooth // 2)``,
    at least 2, of the crossing); infinite where that slope is not negative.

    References
    ----------
    M. van Heel, M. Schatz, J. Struct. Biol. 151, 250 (2005), doi:10.1016/j.jsb.2005.05.009.
    N. Banterle et al., J. Struct. Biol. 183, 363 (2013), doi:10.1016/j.jsb.2013.05.004.
    """
    if not isinstance(curve, FRCCurve):
        raise TypeError(f"curve must be the FRCCurve of xrfgpu.frc.fourier_ring_correlation(half1, half2) (two "
                        f"independent halves of one scan, e.g. from xrfgpu.frc.split_counts), got "
                        f"{type(curve).__name__}")
    if threshold not in THRESHOLDS:
        raise ValueError(f"threshold must be one of {THRESHOLDS}, got {threshold!r}")
    if not (isinstance(smooth, (int, np.integer)) and smooth >= 1 and smooth % 2 == 1):
        raise ValueError(f"smooth must be an odd positive integer, got {smooth!r}")
    f = np.asarray(curve.frequency, dtype=np.float64)
    rho = np.asarray(curve.correlation, dtype=np.float64)
    n = np.asarray(curve.effective_pixels, dtype=np.float64)
    half = smooth // 2
    kernel = np.ones(smooth)
    weight = np.convolve(n, kernel, mode="same")
    rho_s = np.convolve(rho * n, kernel, mode="same") / np.maximum(weight, 1e-300)
    if half:
        rho_s[:half] = rho[:half]
        weight[:half] = n[:half]
    t = np.full_like(f, ONE_SEVENTH) if threshold == "1/7" else half_bit_threshold(weight)
    margin = rho_s - t
    below = np.nonzero(margin[1:] < 0)[0]
    if below.size == 0:
        return FRCResolution(float(f[-1]), 1.0 / float(f[-1]), 0.0, threshold, False)
    i = int(below[0]) + 1
    if i == 1:
        frequency = float(f[1])
    else:
        m0, m1 = margin[i - 1], margin[i]
        frequency = float(f[i - 1] + (f[i] - f[i - 1]) * m0 / (m0 - m1))
    # the slope of FRC − T: a straight line through the rings around the crossing (two rings alone are noisy)
    lo, hi = max(i - 1 - 2 * max(half, 1), 1), min(i + 2 * max(half, 1) + 1, f.size)
    slope = np.polyfit(f[lo:hi], margin[lo:hi], 1)[0] if hi - lo >= 2 else 0.0
    j = i if i == 1 else (i - 1 if abs(margin[i - 1]) < abs(margin[i]) else i)
    sd_rho = (1.0 - min(rho_s[j] ** 2, 1.0)) / math.sqrt(max(weight[j], 1.0))
    uncertainty = float(sd_rho / abs(slope)) if slope < 0 else float("inf")
    return FRCResolution(frequency, 1.0 / frequency, uncertainty, threshold, True)
