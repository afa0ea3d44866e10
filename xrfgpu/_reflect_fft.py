"""The exact reflect-boundary blur of a symmetric PSF through real FFTs of the map's own size.

For a PSF that is mirror-symmetric along both axes, the half-sample
symmetric (reflect) blur is ``A = C⁻¹ diag(λ) C`` with ``C`` the 2-D DCT-II
(:func:`xrfgpu.fft.psf_to_dct_eigenvalues`). A DCT-II of length ``N`` is a
real FFT of the same length after Makhoul's reordering of the samples
(even samples ascending, then odd samples descending), followed by a
twiddle. Holding the whole iteration in the *reordered* domain, the blur
becomes

``v ↦ irfft2( K(rfft2(v)) )``

where ``K`` is a pointwise operation on pairs of half-spectrum bins
``(k₁, k₂)`` and ``(−k₁, k₂)``: it forms the four DCT coefficients of the
frequency orbit ``(±k₁, ±k₂)`` from the pair, scales them by ``λ`` and
forms the pair back. The blur is symmetric (``Aᵀ = A``), so the adjoint is
the same operation, and every elementwise step of RL or FISTA is indifferent
to the reordering. One iteration therefore costs four real FFTs of the map
itself, the transforms of the naive periodic RL, with exact borders — the
GPU engine ``"dctfft"`` of :class:`xrfgpu.fft.Convolution`.

With ``V = FFT₂(v)``, ``W_N(k) = exp(−iπk / 2N)`` and the unnormalised DCT
``X`` (``2 Σ cos`` per axis, as :func:`xrfgpu._backend.dct2`):

``X(k₁, k₂) = 2 Re{ W₂(k₂) [W₁(k₁) V(k₁, k₂) + W₁*(k₁) V(−k₁, k₂)] }``

``V(k₁, k₂) = W₁*(k₁) W₂*(k₂) [(X(k₁, k₂) − X(N₁−k₁, N₂−k₂)) − i (X(N₁−k₁, k₂) + X(k₁, N₂−k₂))] / 4``

with ``X(N, ·) = X(·, N) = 0`` (J. Makhoul, IEEE Trans. ASSP 28, 27 (1980),
doi:10.1109/TASSP.1980.1163351). ``kernels/dct_spectrum.cu`` computes ``K``
on the GPU; :func:`spectrum_filter` is the array-API statement of the same
formulas, which the tests check against SciPy's DCT and ``scipy.ndimage``.

References
----------
J. Makhoul, IEEE Trans. Acoust. Speech Signal Process. 28, 27 (1980).
M. K. Ng, R. H. Chan, W.-C. Tang, SIAM J. Sci. Comput. 21, 851 (1999), doi:10.1137/S1064827598341384.
"""

from __future__ import annotations

import numpy as np

__all__ = ["makhoul_order", "inverse_order", "dct_twiddles", "spectrum_filter", "apply_reference"]


def dct_twiddles(n: int) -> np.ndarray:
    """``(cos πk/2N, sin πk/2N)`` interleaved for k = 0 … N (float64, 2N + 2 values): the GPU kernel's table."""
    angle = np.pi * np.arange(int(n) + 1) / (2.0 * int(n))
    return np.stack([np.cos(angle), np.sin(angle)], axis=1).ravel()


def makhoul_order(n: int) -> np.ndarray:
    """Sample order of Makhoul's DCT-by-FFT: ``v[m] = x[order[m]]`` (even indices up, odd indices down)."""
    idx = np.arange(int(n))
    return np.concatenate([idx[0::2], idx[1::2][::-1]])


def inverse_order(n: int) -> np.ndarray:
    """Inverse of :func:`makhoul_order`: ``x[i] = v[inverse[i]]``."""
    order = makhoul_order(n)
    inv = np.empty_like(order)
    inv[order] = np.arange(order.size)
    return inv


def spectrum_filter(spectrum, eigenvalues, *, xp):
    """``K``: the reflect blur applied to an rfft2 half spectrum of Makhoul-reordered map(s).

    Parameters
    ----------
    spectrum : complex array, shape (..., n1, n2 // 2 + 1)
        ``rfft2`` of the reordered map(s).
    eigenvalues : real array, shape (n1, n2) or (..., n1, n2)
        DCT eigenvalues λ of the blur (:func:`xrfgpu.fft.psf_to_dct_eigenvalues`).
    xp : namespace

    Returns
    -------
    complex array, the half spectrum of the reordered blurred map(s), in the
    spectrum's precision. The formulas are the module docstring's: each bin
    pair (k₁, k₂), (−k₁, k₂) gives the four DCT coefficients of its orbit,
    scaled by λ and turned back into the pair.
    """
    import math

    from ._backend import array_device

    n1, n2 = eigenvalues.shape[-2:]
    half = n2 // 2 + 1
    dev = array_device(spectrum)
    real = xp.real(spectrum).dtype
    lam = xp.astype(eigenvalues, real)
    k1 = xp.reshape(xp.arange(n1, dtype=real, device=dev), (n1, 1))
    k2 = xp.reshape(xp.arange(half, dtype=real, device=dev), (1, half))

    def twiddle(k, n):  # exp(−iπk / 2N) as (cos, −sin)
        angle = (math.pi / (2 * n)) * k
        return xp.cos(angle), -xp.sin(angle)

    mirror_rows = xp.asarray([(-i) % n1 for i in range(n1)], device=dev)
    j1 = xp.reshape(xp.asarray([(n1 - i) % n1 for i in range(n1)], dtype=real, device=dev), (n1, 1))
    b = n2 - k2
    p_re, p_im = xp.real(spectrum), xp.imag(spectrum)
    q = xp.take(spectrum, mirror_rows, axis=spectrum.ndim - 2)  # V(−k1, k2)
    q_re, q_im = xp.real(q), xp.imag(q)
    a1, b1, a2, b2 = twiddle(k1, n1), twiddle(j1, n1), twiddle(k2, n2), twiddle(b, n2)

    def coefficient(w1, w2, ar, ai, br, bi):  # 2 Re{w2 (w1 a + conj(w1) b)}
        sr = (w1[0] * ar - w1[1] * ai) + (w1[0] * br + w1[1] * bi)
        si = (w1[0] * ai + w1[1] * ar) + (w1[0] * bi - w1[1] * br)
        return 2.0 * (w2[0] * sr - w2[1] * si)

    cols = xp.asarray([int(n2 - k) % n2 for k in range(half)], device=dev)
    lam_k = lam[..., :, :half]
    lam_j = xp.take(lam_k, mirror_rows, axis=lam.ndim - 2)
    lam_kb = xp.take(lam, cols, axis=lam.ndim - 1)
    lam_jb = xp.take(lam_kb, mirror_rows, axis=lam.ndim - 2)
    has_b = xp.reshape(xp.asarray([1.0 if k > 0 else 0.0 for k in range(half)], dtype=real, device=dev), (1, half))
    row0 = xp.reshape(xp.asarray([0.0] + [1.0] * (n1 - 1), dtype=real, device=dev), (n1, 1))
    xkk = coefficient(a1, a2, p_re, p_im, q_re, q_im) * lam_k
    xjk = coefficient(b1, a2, q_re, q_im, p_re, p_im) * lam_j
    xkb = coefficient(a1, b2, q_re, -q_im, p_re, -p_im) * lam_kb * has_b
    xjb = coefficient(b1, b2, p_re, -p_im, q_re, -q_im) * lam_jb * has_b
    re = 0.25 * (xkk - row0 * xjb)
    im = -0.25 * (row0 * xjk + xkb)
    wr = a1[0] * a2[0] - a1[1] * a2[1]
    wi = -(a1[0] * a2[1] + a1[1] * a2[0])
    out_re = re * wr - im * wi
    out_im = re * wi + im * wr
    return _complex(xp, out_re, out_im, spectrum.dtype)


def _complex(xp, re, im, dtype):
    """``re + i·im`` in ``dtype`` without Python complex scalars (array_api_strict refuses mixed kinds)."""
    from ._backend import array_device

    j = xp.asarray(1j, dtype=dtype, device=array_device(re))
    return xp.astype(re, dtype) + xp.astype(im, dtype) * j


def apply_reference(image, eigenvalues):
    """The reflect blur of ``image`` by reordering, rfft2, ``K``, irfft2 and reordering back (NumPy)."""
    x = np.asarray(image, dtype=np.float64)
    n1, n2 = x.shape[-2:]
    v = x[..., makhoul_order(n1), :][..., makhoul_order(n2)]
    import array_api_compat.numpy as xnp

    out = np.fft.irfft2(spectrum_filter(np.fft.rfft2(v), np.asarray(eigenvalues, dtype=np.float64), xp=xnp),
                        s=(n1, n2))
    return out[..., inverse_order(n1), :][..., inverse_order(n2)]
