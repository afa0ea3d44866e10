"""Image-quality figures of the paper: MSE and SSIM on maps normalised to 0–1.

Yang et al. (2022, §2.3) compare a restored map with the truth after both
are transformed to 0–1 (chrome 1, glass 0), with the mean squared error and
the structural similarity index (window 7, K1 = 0.01, K2 = 0.03, data range
D = 1 for 0–1 maps). :func:`ssim` reproduces
:func:`skimage.metrics.structural_similarity` with those settings (uniform
7 × 7 window, sample covariance, mean over the windows that lie inside the
image) so numbers can be compared with other tools.
"""

from __future__ import annotations

import math

import numpy as np

from ._backend import array_namespace

__all__ = ["affine_nrmse", "mse", "normalize", "normalize_to_reference", "ssim"]


def _pair(a, b, name="images"):
    xp = array_namespace(a, b)
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"{name} must be 2-D maps, got shapes {a.shape} and {b.shape}")
    if a.shape != b.shape:
        raise ValueError(f"{name} differ in shape: {a.shape} vs {b.shape}")
    dtype = xp.float64 if hasattr(xp, "float64") else xp.float32
    return xp, xp.astype(a, dtype), xp.astype(b, dtype)


def normalize(image, *, low=None, high=None):
    """Affine map of ``image`` to the 0–1 range: ``(x − low) / (high − low)``.

    Parameters
    ----------
    image : array, shape (rows, cols)
    low, high : float, optional
        Levels mapped to 0 and 1. Pass the measured glass (background) and
        chrome levels to reproduce the paper's "chrome 1, glass 0"; default
        the image's minimum and maximum.

    Returns
    -------
    array of float64 (float32 where the namespace has no float64)

    Raises
    ------
    ValueError
        ``high <= low`` (a flat map).

    Backends
    --------
    Any array-API namespace.
    """
    xp = array_namespace(image)
    x = xp.astype(image, xp.float64 if hasattr(xp, "float64") else xp.float32)
    lo = float(xp.min(x)) if low is None else float(low)
    hi = float(xp.max(x)) if high is None else float(high)
    if not (hi > lo and math.isfinite(hi - lo)):
        raise ValueError(f"normalize needs high > low, got low={lo}, high={hi}")
    return (x - lo) / (hi - lo)


def normalize_to_reference(image, reference):
    """Affine map of ``image`` so its mean is 0 on the reference's 0-pixels and 1 on its 1-pixels.

    The paper's transform: "the area covered by chrome had an average value
    of 1; elsewhere, the average value was 0" (Yang et al. 2022, §2.4). The
    areas are the pixels where the 0–1 ``reference`` (the truth, e.g. the
    chart image) is exactly 0 and exactly 1; partly covered edge pixels are
    left out of the two means.

    Parameters
    ----------
    image : array, shape (rows, cols)
    reference : array, shape (rows, cols)
        Truth in 0–1 with both exact 0 and exact 1 pixels.

    Returns
    -------
    array of float64

    Raises
    ------
    ValueError
        Shapes differ, the reference lacks 0- or 1-pixels, or the image has
        the same mean on both.

    Backends
    --------
    Any array-API namespace.
    """
    xp, a, r = _pair(image, reference)
    low_mask, high_mask = r == 0, r == 1
    n_low, n_high = float(xp.sum(xp.astype(low_mask, a.dtype))), float(xp.sum(xp.astype(high_mask, a.dtype)))
    if n_low == 0 or n_high == 0:
        raise ValueError("reference must contain pixels equal to 0 and pixels equal to 1")
    zero = xp.zeros_like(a)
    low = float(xp.sum(xp.where(low_mask, a, zero))) / n_low
    high = float(xp.sum(xp.where(high_mask, a, zero))) / n_high
    if not (high != low and math.isfinite(high - low)):
        raise ValueError("image has the same mean on the reference's 0 and 1 areas")
    return (a - low) / (high - low)


def mse(image, reference):
    """Mean squared error ``(1/mn) Σ (p − q)²`` (Yang et al. 2022, eq. 9).

    Parameters
    ----------
    image, reference : array, shape (rows, cols)
        Same shape; normalise them first (:func:`normalize`) to compare with
        the paper.

    Returns
    -------
    float

    Backends
    --------
    Any array-API namespace.
    """
    xp, a, b = _pair(image, reference)
    d = a - b
    return float(xp.mean(d * d))


def _box_mean(x, win, *, xp):
    """Means of every ``win × win`` window lying inside ``x`` (valid mode), by summed-area table."""
    rows, cols = x.shape
    c = xp.cumulative_sum(xp.cumulative_sum(x, axis=0), axis=1)
    z_row = xp.zeros((1, cols), dtype=x.dtype, device=_device(x))
    c = xp.concat([z_row, c], axis=0)
    z_col = xp.zeros((rows + 1, 1), dtype=x.dtype, device=_device(x))
    c = xp.concat([z_col, c], axis=1)
    s = c[win:, win:] - c[:-win, win:] - c[win:, :-win] + c[:-win, :-win]
    return s / float(win * win)


def _device(x):
    from ._backend import array_device

    return array_device(x)


def ssim(image, reference, *, win_size=7, k1=0.01, k2=0.03, data_range=1.0):
    """Structural similarity index, mean over all 7 × 7 windows (Wang et al. 2004).

    ``SSIM(p, q) = (2 μp μq + C1)(2 σpq + C2) / ((μp² + μq² + C1)(σp² + σq² + C2))``
    with ``C1 = (K1 D)²``, ``C2 = (K2 D)²`` (Yang et al. 2022, eq. 10).

    Parameters
    ----------
    image, reference : array, shape (rows, cols)
        Same shape, at least ``win_size`` along each axis.
    win_size : int
        Odd side of the uniform window (the paper: 7).
    k1, k2 : float
        The paper's K1 = 0.01, K2 = 0.03.
    data_range : float
        ``D``: 1 for maps normalised to 0–1 (the paper).

    Returns
    -------
    float
        Mean SSIM over the windows that lie entirely inside the image.

    Raises
    ------
    ValueError
        Shapes differ, a side shorter than the window, even window,
        non-positive data range.

    Notes
    -----
    Local means, variances and the covariance use a uniform window and the
    unbiased (``n − 1``) normalisation, and the mean is taken over window
    centres at least ``(win_size − 1)/2`` from the border — exactly
    :func:`skimage.metrics.structural_similarity` with
    ``win_size=7, K1=0.01, K2=0.03, data_range=1, gaussian_weights=False``.

    References
    ----------
    Z. Wang et al., IEEE Trans. Image Process. 13, 600 (2004), doi:10.1109/TIP.2003.819861.
    J. Yang et al., J. Anal. At. Spectrom. 37, 750 (2022), doi:10.1039/d1ja00425e.

    Examples
    --------
    >>> import numpy as np
    >>> from xrfgpu.metrics import ssim
    >>> a = np.linspace(0, 1, 400).reshape(20, 20)
    >>> round(ssim(a, a), 6)
    1.0

    Backends
    --------
    Any array-API namespace.
    """
    xp, a, b = _pair(image, reference)
    win = int(win_size)
    if win != win_size or win < 3 or win % 2 == 0:
        raise ValueError(f"win_size must be an odd integer >= 3, got {win_size!r}")
    if a.shape[0] < win or a.shape[1] < win:
        raise ValueError(f"images of shape {a.shape} are smaller than the {win}x{win} window")
    d = float(data_range)
    if not (d > 0 and math.isfinite(d)):
        raise ValueError(f"data_range must be > 0, got {data_range!r}")
    n = win * win
    cov_norm = n / (n - 1.0)
    ux, uy = _box_mean(a, win, xp=xp), _box_mean(b, win, xp=xp)
    uxx, uyy, uxy = _box_mean(a * a, win, xp=xp), _box_mean(b * b, win, xp=xp), _box_mean(a * b, win, xp=xp)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    c1, c2 = (float(k1) * d) ** 2, (float(k2) * d) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return float(xp.mean(s))


def affine_nrmse(image, truth):
    """RMS error to ``truth`` after the best affine map ``a·image + c`` (least squares), over the truth's range.

    The error ``xrfgpu compare --truth`` prints (NRMSE): scale- and offset-free, so a restoration in
    other units than the truth (counts against concentrations) is judged on its shape. Pixels missing
    (NaN) in either map are left out. NumPy (host) arrays; a number, or NaN with fewer than 2 pixels.
    """
    a = np.asarray(image, dtype=np.float64).ravel()
    t = np.asarray(truth, dtype=np.float64).ravel()
    measured = np.isfinite(a) & np.isfinite(t)
    a, t = a[measured], t[measured]
    if a.size < 2:
        return float("nan")
    design = np.stack([a, np.ones_like(a)], axis=1)
    coef, *_ = np.linalg.lstsq(design, t, rcond=None)
    rmse = float(np.sqrt(np.mean((design @ coef - t) ** 2)))
    span = float(t.max() - t.min()) or 1.0
    return rmse / span
