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
on the GPU; :func:`apply_reference` is the NumPy statement of the same
formulas that the tests check against SciPy's DCT.

References
----------
J. Makhoul, IEEE Trans. Acoust. Speech Signal Process. 28, 27 (1980).
M. K. Ng, R. H. Chan, W.-C. Tang, SIAM J. Sci. Comput. 21, 851 (1999), doi:10.1137/S1064827598341384.
"""

from __future__ import annotations

import numpy as np

__all__ = ["makhoul_order", "inverse_order", "dct_twiddles", "spectrum_filter_reference", "apply_reference"]


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


def spectrum_filter_reference(spectrum, eigenvalues):
    """``K``: the reflect blur applied to an rfft2 half spectrum of a reordered map (NumPy, float64).

    Parameters
    ----------
    spectrum : complex ndarray, shape (..., n1, n2 // 2 + 1)
        ``rfft2`` of the reordered map(s).
    eigenvalues : real ndarray, shape (..., n1, n2)
        DCT eigenvalues λ of the blur (:func:`xrfgpu.fft.psf_to_dct_eigenvalues`).

    Returns
    -------
    complex ndarray, the half spectrum of the reordered blurred map.
    """
    V = np.asarray(spectrum, dtype=np.complex128)
    lam = np.asarray(eigenvalues, dtype=np.float64)
    n1, n2 = lam.shape[-2:]
    half = n2 // 2 + 1
    # full spectrum by Hermitian symmetry: V(k1, k2) = conj V(−k1, −k2)
    full = np.empty(V.shape[:-1] + (n2,), dtype=np.complex128)
    full[..., :half] = V
    if n2 > half:
        k2 = np.arange(half, n2)
        full[..., k2] = np.conj(V[..., (-np.arange(n1)) % n1, :][..., (-k2) % n2])
    k1 = np.arange(n1)[:, None]
    k2 = np.arange(n2)[None, :]
    w1 = np.exp(-1j * np.pi * k1 / (2 * n1))
    w2 = np.exp(-1j * np.pi * k2 / (2 * n2))
    mirror = full[..., (-np.arange(n1)) % n1, :]
    X = 2.0 * np.real(w2 * (w1 * full + np.conj(w1) * mirror))
    X = X * lam
    Xp = np.zeros(X.shape[:-2] + (n1 + 1, n2 + 1))
    Xp[..., :n1, :n2] = X
    a = Xp[..., k1, k2]
    b = Xp[..., n1 - k1, n2 - k2]
    c = Xp[..., n1 - k1, k2]
    d = Xp[..., k1, n2 - k2]
    out = np.conj(w1) * np.conj(w2) * ((a - b) - 1j * (c + d)) / 4.0
    return out[..., :half]


def apply_reference(image, eigenvalues):
    """The reflect blur of ``image`` by reordering, rfft2, ``K``, irfft2 and reordering back (NumPy)."""
    x = np.asarray(image, dtype=np.float64)
    n1, n2 = x.shape[-2:]
    v = x[..., makhoul_order(n1), :][..., makhoul_order(n2)]
    out = np.fft.irfft2(spectrum_filter_reference(np.fft.rfft2(v), eigenvalues), s=(n1, n2))
    return out[..., inverse_order(n1), :][..., inverse_order(n2)]
