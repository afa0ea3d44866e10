"""MATLAB conventions the L0 blind method depends on, reproduced exactly.

The reference code of Pan et al. (2014) is MATLAB; its numbers depend on
MATLAB's ``psf2otf``/``otf2psf`` centring, ``imresize`` bicubic weights,
``conv2(..., 'valid')`` orientation, the FFT-size table of ``opt_fft_size``
and the periodic boundary extension ``wrap_boundary_liu`` (S. Cho, after
Liu & Jia 2008). Each is one function here, tested against an independent
reference in ``tests/test_blind_matlab.py``.

``psf2otf``, ``otf2psf``, ``valid_gradients`` and ``opt_fft_size`` take any
array-API array. ``imresize_bicubic``, ``wrap_boundary`` and
``pyramid_downsample`` are host-side NumPy/SciPy functions: they run once
per pyramid level on a small kernel or on the level image (a DST-I solve),
never inside the iterative loops.

References
----------
J. Pan, Z. Hu, Z. Su, M.-H. Yang, "Deblurring Text Images via L0-Regularized
Intensity and Gradient Prior", CVPR 2014, doi:10.1109/CVPR.2014.371.
R. Liu, J. Jia, "Reducing boundary artifacts in image deconvolution",
ICIP 2008, doi:10.1109/ICIP.2008.4711802.
R. Keys, "Cubic convolution interpolation for digital image processing",
IEEE Trans. ASSP 29, 1153 (1981), doi:10.1109/TASSP.1981.1163711.
"""

from __future__ import annotations

import math

import numpy as np

from .._backend import array_device, irfft2, rfft2, smooth_sizes

__all__ = [
    "psf2otf",
    "otf2psf",
    "valid_gradients",
    "opt_fft_size",
    "round_half_away",
    "keys_cubic",
    "imresize_weights",
    "imresize_bicubic",
    "wrap_boundary",
    "pyramid_filter",
    "pyramid_downsample",
]


def psf2otf(psf, shape, *, xp, half=False):
    """MATLAB ``psf2otf``: zero-pad to ``shape``, centre pixel to (0, 0), FFT.

    Parameters
    ----------
    psf : array, shape (kr, kc)
        Kernel; its centre pixel is ``(kr // 2, kc // 2)``.
    shape : tuple of int
        (rows, cols) of the transfer function, each ≥ the kernel's.
    xp : namespace
    half : bool
        Return the half spectrum of a real FFT (``rows × (cols//2 + 1)``)
        instead of the full complex spectrum.

    Returns
    -------
    otf : complex array
    """
    kr, kc = psf.shape
    rows, cols = (int(n) for n in shape)
    if kr > rows or kc > cols:
        raise ValueError(f"psf of shape {(kr, kc)} does not fit the OTF size {(rows, cols)}")
    canvas = xp.zeros((rows, cols), dtype=psf.dtype, device=array_device(psf))
    canvas[:kr, :kc] = psf
    canvas = xp.roll(canvas, (-(kr // 2), -(kc // 2)), axis=(0, 1))
    if half:
        return rfft2(canvas, xp=xp)
    complex_dtype = xp.complex64 if canvas.dtype == xp.float32 else xp.complex128
    return xp.fft.fftn(xp.astype(canvas, complex_dtype), axes=(0, 1))


def otf2psf(otf, psf_shape, *, xp, canvas_shape=None):
    """MATLAB ``otf2psf``: inverse FFT, real part, roll by +size//2, top-left block.

    Parameters
    ----------
    otf : complex array
        Full spectrum (``canvas_shape`` None) or the half spectrum of a real
        FFT on ``canvas_shape``.
    psf_shape : tuple of int
        (kr, kc) of the kernel to return.
    xp : namespace
    canvas_shape : tuple of int, optional
        Real-space shape when ``otf`` is a half spectrum.

    Notes
    -----
    Octave's image-package ``otf2psf`` rolls by half the OTF size and keeps
    the centre block; that differs by one pixel for even OTF sizes and
    breaks the symmetry of the kernel step's operator. This is MATLAB's.
    """
    kr, kc = (int(n) for n in psf_shape)
    if canvas_shape is None:
        full = xp.real(xp.fft.ifftn(otf, axes=(0, 1)))
    else:
        full = irfft2(otf, tuple(canvas_shape), xp=xp)
    rows, cols = full.shape
    if kr > rows or kc > cols:
        raise ValueError(f"psf shape {(kr, kc)} exceeds the OTF size {(rows, cols)}")
    full = xp.roll(full, (kr // 2, kc // 2), axis=(0, 1))
    return full[:kr, :kc]


def valid_gradients(image, *, xp=None):
    """MATLAB ``conv2(X, [-1 1; 0 0], 'valid')`` and ``conv2(X, [-1 0; 1 0], 'valid')``.

    Returns
    -------
    gx, gy : arrays, shape (rows − 1, cols − 1)
        ``gx = X[1:, :-1] − X[1:, 1:]`` and ``gy = X[:-1, 1:] − X[1:, 1:]``
        (true convolution, 'valid' part).
    """
    x = image
    gx = x[1:, :-1] - x[1:, 1:]
    gy = x[:-1, 1:] - x[1:, 1:]
    return gx, gy


def _fft_size_table(limit=4096):
    return np.array(smooth_sizes(limit, extra_factors=(1, 11, 13)))


_FFT_TABLE = None


def opt_fft_size(n):
    """Smallest m ≥ n of the form 2^a 3^b 5^c 7^d · {1, 11, 13} (Cho's ``opt_fft_size``).

    Parameters
    ----------
    n : int or tuple of int

    Raises
    ------
    ValueError
        For sizes above 4096 (the reference table stops there).
    """
    global _FFT_TABLE
    if _FFT_TABLE is None:
        _FFT_TABLE = _fft_size_table()
    if isinstance(n, (tuple, list)):
        return tuple(opt_fft_size(v) for v in n)
    n = int(n)
    if n > 4096:
        raise ValueError(f"opt_fft_size: {n} exceeds the reference table (4096); the map is too large")
    if n < 1:
        return 1
    return int(_FFT_TABLE[np.searchsorted(_FFT_TABLE, n)])


def round_half_away(x):
    """MATLAB ``round``: halves go away from zero (Python's ``round`` goes to even)."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def keys_cubic(t):
    """Keys (1981) cubic kernel with a = −0.5, MATLAB ``imresize``'s ``cubic``."""
    t = np.abs(np.asarray(t, dtype=np.float64))
    t2, t3 = t * t, t * t * t
    inner = 1.5 * t3 - 2.5 * t2 + 1.0
    outer = -0.5 * t3 + 2.5 * t2 - 4.0 * t + 2.0
    return np.where(t <= 1, inner, np.where(t <= 2, outer, 0.0))


def imresize_weights(n_in, scale):
    """Dense (n_out × n_in) bicubic interpolation matrix of MATLAB ``imresize``.

    For ``scale ≥ 1`` (no antialiasing): ``n_out = ceil(n_in · scale)``; output
    pixel x (1-based) samples input position ``u = x/scale + ½(1 − 1/scale)``
    with Keys weights over ``floor(u − 2) + (0..5)``, normalised to sum 1;
    out-of-range indices are mirrored (``symmetric``).
    """
    scale = float(scale)
    if scale < 1:
        raise ValueError("imresize_weights implements enlargement only (scale >= 1), as the kernel pyramid needs")
    n_out = int(math.ceil(n_in * scale))
    x = np.arange(1, n_out + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - 2.0)
    idx = left[:, None] + np.arange(6)[None, :]  # 1-based input indices
    w = keys_cubic(u[:, None] - idx)
    w = w / w.sum(axis=1, keepdims=True)
    # mirror to 1..n_in: symmetric padding (0 -> 1, -1 -> 2, n+1 -> n)
    aux = np.concatenate([np.arange(1, n_in + 1), np.arange(n_in, 0, -1)])
    j = aux[np.mod(idx.astype(np.int64) - 1, 2 * n_in)] - 1
    matrix = np.zeros((n_out, n_in))
    for col in range(6):
        np.add.at(matrix, (np.arange(n_out), j[:, col]), w[:, col])
    return matrix


def imresize_bicubic(image, scale):
    """MATLAB ``imresize(image, scale, 'bicubic')`` for enlargement (host NumPy)."""
    a = np.asarray(image, dtype=np.float64)
    rows = imresize_weights(a.shape[0], scale)
    cols = imresize_weights(a.shape[1], scale)
    # MATLAB resizes along the dimension with the smaller scale first; the
    # scales are equal here and both orders give the same linear map.
    return rows @ a @ cols.T


def _harmonic(frame):
    """Fill the interior of ``frame`` with the discrete harmonic function of its border.

    ``solve_min_laplacian`` of the reference: 5-point Laplace equation with
    Dirichlet data = the outer frame, solved by a 2-D DST-I.
    """
    import scipy.fft

    b = np.array(frame, dtype=np.float64)
    rows, cols = b.shape
    if rows < 3 or cols < 3:
        return b
    b[1:-1, 1:-1] = 0.0
    lap = -4.0 * b[1:-1, 1:-1] + b[1:-1, 2:] + b[1:-1, :-2] + b[:-2, 1:-1] + b[2:, 1:-1]
    rhs = -lap
    x = np.arange(1, cols - 1)[None, :]
    y = np.arange(1, rows - 1)[:, None]
    denom = (2 * np.cos(np.pi * x / (cols - 1)) - 2) + (2 * np.cos(np.pi * y / (rows - 1)) - 2)
    spectrum = scipy.fft.dstn(rhs, type=1) / denom
    b[1:-1, 1:-1] = scipy.fft.idstn(spectrum, type=1)
    return b


def wrap_boundary(image, shape):
    """Pad ``image`` on the bottom and right to ``shape`` so it is smooth when periodic.

    S. Cho's ``wrap_boundary_liu`` (after Liu & Jia 2008), including its
    quirk of keeping working rows 0…Hw−1 of the bottom block (see the spec
    §11). Host NumPy; the DST-I Laplace solves run on the level image once per
    pyramid level.

    Parameters
    ----------
    image : ndarray, shape (H, W)
    shape : tuple of int
        (H', W') with H' − H ≥ 2 and W' − W ≥ 2.

    Returns
    -------
    padded : ndarray of float64, shape ``shape``
    """
    img = np.asarray(image, dtype=np.float64)
    H, W = img.shape
    Hw, Ww = int(shape[0]) - H, int(shape[1]) - W
    if Hw < 2 or Ww < 2:
        raise ValueError(f"wrap_boundary needs at least 2 rows and columns of padding, got {(Hw, Ww)}")
    A = np.zeros((Hw + 2, W))
    A[0, :] = img[-1, :]
    A[-1, :] = img[0, :]
    a = np.arange(Hw) / (Hw - 1)
    A[1:-1, 0] = (1 - a) * A[0, 0] + a * A[-1, 0]
    A[1:-1, -1] = (1 - a) * A[0, -1] + a * A[-1, -1]
    A = _harmonic(A)

    B = np.zeros((H, Ww + 2))
    B[:, 0] = img[:, -1]
    B[:, -1] = img[:, 0]
    a = np.arange(Ww) / (Ww - 1)
    B[0, 1:-1] = (1 - a) * B[0, 0] + a * B[0, -1]
    B[-1, 1:-1] = (1 - a) * B[-1, 0] + a * B[-1, -1]
    B = _harmonic(B)

    C = np.zeros((Hw + 2, Ww + 2))
    C[0, :] = B[-1, :]
    C[-1, :] = B[0, :]
    C[:, 0] = A[:, -1]
    C[:, -1] = A[:, 0]
    C = _harmonic(C)

    top = np.concatenate([img, B[:, 1 : Ww + 1]], axis=1)
    bottom = np.concatenate([A[0:Hw, :], C[1 : Hw + 1, 1 : Ww + 1]], axis=1)
    return np.concatenate([top, bottom], axis=0)


def pyramid_filter(scale):
    """Truncated Gaussian anti-alias filter of the pyramid (spec §4.3), not renormalised."""
    n = np.arange(-50, 51, dtype=np.float64)
    f = np.exp(-2.0 * scale * scale * n * n)
    f = f / f.sum()
    keep = np.minimum(np.cumsum(f), np.cumsum(f[::-1])[::-1]) > 0.05
    return f[keep]


def pyramid_downsample(image, scale):
    """Level image of the pyramid: separable 'valid' filter, then bilinear sampling.

    Samples sit at 0-based positions ``0, 1/scale, 2/scale, …`` up to the last
    valid pixel, giving ``floor((n_valid − 1)·scale) + 1`` samples per axis.
    Scale 1 returns the image. Host NumPy.
    """
    img = np.asarray(image, dtype=np.float64)
    if scale == 1:
        return img.copy()
    f = pyramid_filter(scale)
    from scipy.signal import convolve2d

    img = convolve2d(img, f[:, None], mode="valid")
    img = convolve2d(img, f[None, :], mode="valid")

    def interp_matrix(n):
        m = int(math.floor((n - 1) * scale)) + 1
        pos = np.arange(m) / scale
        pos = np.minimum(pos, n - 1)
        i0 = np.minimum(np.floor(pos).astype(np.int64), n - 1)
        frac = pos - i0
        i1 = np.minimum(i0 + 1, n - 1)
        mat = np.zeros((m, n))
        np.add.at(mat, (np.arange(m), i0), 1.0 - frac)
        np.add.at(mat, (np.arange(m), i1), frac)
        return mat

    return interp_matrix(img.shape[0]) @ img @ interp_matrix(img.shape[1]).T
