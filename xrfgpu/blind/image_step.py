"""Image (latent) step of the L0 method: half-quadratic splitting with FFT solves.

Pan et al. (2014), spec §6 (``L0Deblur_whole.m``) and §7 (``L0Restoration.m``).
Everything is circular on the padded canvas; the FFTs are real FFTs
(:func:`xrfgpu._backend.rfft2`), which give the same numbers as the
reference's ``real(ifft2(...))`` because every spectrum in the quotient is
Hermitian. The hard thresholds are
:func:`xrfgpu._elementwise.l0_intensity_threshold` and
:func:`xrfgpu._elementwise.l0_gradient_term` (fused CUDA kernels on CuPy).

Backends: any array-API namespace; this is the hot loop (240–464 FFT solves
per call) and runs on the device of its input.
"""

from __future__ import annotations

from .._backend import array_device, irfft2, rfft2
from .._elementwise import l0_gradient_term, l0_intensity_threshold
from .matlab import psf2otf

__all__ = ["l0_intensity_gradient", "l0_gradient", "gradient_power", "kernel_spectra"]


def gradient_power(shape, *, xp, dtype, device=None):
    """``|F Dx|² + |F Dy|²`` on the half spectrum of ``shape`` (circular forward differences)."""
    dx = xp.asarray([[1.0, -1.0]], dtype=dtype, device=device)
    dy = xp.asarray([[1.0], [-1.0]], dtype=dtype, device=device)
    fx = psf2otf(dx, shape, xp=xp, half=True)
    fy = psf2otf(dy, shape, xp=xp, half=True)
    return xp.real(fx * xp.conj(fx)) + xp.real(fy * xp.conj(fy))


def kernel_spectra(kernel, shape, *, xp):
    """``(K, |K|²)`` of a kernel on the half spectrum of ``shape`` (MATLAB psf2otf)."""
    otf = psf2otf(kernel, shape, xp=xp, half=True)
    return otf, xp.real(otf * xp.conj(otf))


def _spectra(padded, kernel, *, xp):
    """What both image steps precompute: canvas shape, |K|², |D|² and conj(K)·F(B)."""
    shape = tuple(padded.shape)
    otf, otf_power = kernel_spectra(kernel, shape, xp=xp)
    grad_power = gradient_power(shape, xp=xp, dtype=padded.dtype, device=array_device(padded))
    return shape, otf_power, grad_power, xp.conj(otf) * rfft2(padded, xp=xp)


def _closed_form(fixed, g, beta, beta_pixel, otf_power, grad_power, shape, device, *, xp):
    """One inner pass: ``S = F⁻¹[(fixed + β F(g)) / (|K|² + β|D|² + β_p)]`` (β_p = 0 without the
    intensity prior: adding 0 changes no value); on ``device``'s fixed buffers when it is given."""
    if device is not None:
        return device.solve(fixed, g, beta, beta_pixel)
    numerator = fixed + beta * rfft2(g, xp=xp)
    return irfft2(numerator / (otf_power + beta * grad_power + beta_pixel), shape, xp=xp)


class _DevicePasses:
    """The inner pass on CuPy with fixed buffers: R2C, the fused closed form, C2R (no per-pass allocation).

    The pass is the same arithmetic as the array-API expression (the fused
    kernel ``xrfgpu_l0_solve`` is tested against it on the host, to a few ulp),
    with cuFFT's unnormalised inverse scaled inside the kernel. It exists
    because the array-API pass spends its time in Python: on an NVIDIA H200,
    ``blind_l0`` of a 512² map made 21,433 CuPy FFT calls in 4.9 s, each about
    70 µs of plan lookup and allocation around a transform of a few µs.
    """

    def __init__(self, cp, shape, dtype, otf_power, grad_power):
        from cupy.cuda import cufft

        from ..cuda import kernels, real_fft_plans

        n1, n2 = shape
        single = dtype == cp.float32
        self._cufft = cufft
        self._r2c, self._c2r = real_fft_plans(n1, n2, 1, dtype)
        self._cp = cp
        self._dtype = dtype
        self._spectrum = cp.empty((n1, n2 // 2 + 1), dtype=cp.complex64 if single else cp.complex128)
        self._latent = cp.empty(shape, dtype=dtype)
        self._otf_power = cp.ascontiguousarray(otf_power.astype(dtype, copy=False))
        self._grad_power = cp.ascontiguousarray(grad_power.astype(dtype, copy=False))
        self._kernels = kernels()
        self._solve = self._kernels.function("xrfgpu_l0_solve", dtype)
        self._scale = dtype.type(1.0 / (n1 * n2))

    @classmethod
    def create(cls, padded, otf_power, grad_power, xp):
        """The device passes for ``padded``, or None where the array-API expression runs."""
        from .. import _elementwise
        from .._backend import is_cupy_namespace

        if not is_cupy_namespace(xp) or _elementwise.get_engine() != "auto":
            return None
        import cupy as cp

        if padded.ndim != 2 or padded.dtype not in (cp.float32, cp.float64):
            return None
        return cls(cp, tuple(int(n) for n in padded.shape), padded.dtype, otf_power, grad_power)

    def solve(self, fixed, gradient_term, beta, beta_pixel):
        """``irfft2((fixed + β F(g)) / (|K|² + β|D|² + β_p))`` into this object's latent buffer."""
        cp, cufft, dtype = self._cp, self._cufft, self._dtype
        fixed = cp.ascontiguousarray(fixed)
        self._r2c.fft(cp.ascontiguousarray(gradient_term), self._spectrum, cufft.CUFFT_FORWARD)
        self._kernels._launch(self._solve, self._spectrum.size,
                              (fixed, self._spectrum, self._otf_power, self._grad_power, self._spectrum.size,
                               dtype.type(beta), dtype.type(beta_pixel), self._scale))
        self._c2r.fft(self._spectrum, self._latent, cufft.CUFFT_INVERSE)
        return self._latent


def l0_intensity_gradient(padded, kernel, lambda_pixel, lambda_grad, *, xp, kappa=2.0,
                          beta_pixel_max=8.0, beta_max=1e5):
    """Latent image with L0 priors on intensity and gradient (``L0Deblur_whole``).

    Solves ``min_S ‖k ⊛ S − B‖² + λ_p ‖S‖₀ + λ_g ‖∇S‖₀`` by half-quadratic
    splitting with ``u ≈ S`` and ``g ≈ ∇S``; the outer loop raises β_p from
    2λ_p by ``kappa`` while β_p < 8, the inner loop β from 2λ_g while β < 1e5
    (restarting every outer pass). Each inner pass is the closed form

    ``S = F⁻¹[(conj(K)F(B) + β F(Dxᵀh + Dyᵀv) + β_p F(u)) / (|K|² + β|D|² + β_p)]``.

    Parameters
    ----------
    padded : array, shape (N, M)
        Blurred image, already extended by :func:`~xrfgpu.blind.matlab.wrap_boundary`.
    kernel : array, shape (ks, ks)
        Current kernel (same namespace and dtype as ``padded``).
    lambda_pixel, lambda_grad : float
        λ_p > 0 and λ_g ≥ 0 (for maps in [0, 1]).
    xp : namespace
    kappa, beta_pixel_max, beta_max : float
        Growth factor and caps of the reference (2, 8, 1e5).

    Returns
    -------
    S : array, shape (N, M)
        The caller crops the top-left H×W.

    Notes
    -----
    ``F(u)`` is computed once per outer pass (u is fixed within it), as the
    spec's remark allows; the arithmetic is otherwise the reference's.
    """
    shape, otf_power, grad_power, data_term = _spectra(padded, kernel, xp=xp)
    device = _DevicePasses.create(padded, otf_power, grad_power, xp)
    latent = padded
    beta_pixel = 2.0 * lambda_pixel
    while beta_pixel < beta_pixel_max:
        u = l0_intensity_threshold(latent, lambda_pixel / beta_pixel, xp=xp)
        fixed = data_term + beta_pixel * rfft2(u, xp=xp)
        beta = 2.0 * lambda_grad
        while beta < beta_max:
            threshold = lambda_grad / beta if beta > 0 else 0.0
            g = l0_gradient_term(latent, threshold, xp=xp)
            latent = _closed_form(fixed, g, beta, beta_pixel, otf_power, grad_power, shape, device, xp=xp)
            beta *= kappa
            if lambda_grad == 0:
                break
        beta_pixel *= kappa
    return latent


def l0_gradient(padded, kernel, lambda_grad, *, xp, kappa=2.0, beta_max=1e5):
    """Latent image with the L0 gradient prior only (``L0Restoration``), on a padded canvas.

    ``β`` rises from 2λ by ``kappa`` while β < 1e5; each pass zeroes
    ``(h, v) = ∇S`` jointly where ``h² + v² < λ/β`` and solves
    ``S = F⁻¹[(conj(K)F(B) + β F(Dxᵀh + Dyᵀv)) / (|K|² + β|D|²)]``.

    Parameters
    ----------
    padded : array, shape (N, M)
        Image already extended by ``wrap_boundary`` (the reference pads
        inside ``L0Restoration``; the callers here pad first).
    kernel : array, shape (ks, ks)
    lambda_grad : float
        λ > 0.
    xp : namespace
        Array-API namespace of ``padded`` and ``kernel``.
    kappa : float
        Factor by which β rises each pass (the reference's 2).
    beta_max : float
        β at which the passes stop (the reference's 1e5).

    Returns
    -------
    S : array, shape (N, M)
    """
    if not lambda_grad > 0:
        raise ValueError(f"lambda_grad must be > 0 for the gradient-only image step, got {lambda_grad}")
    shape, otf_power, grad_power, data_term = _spectra(padded, kernel, xp=xp)
    device = _DevicePasses.create(padded, otf_power, grad_power, xp)
    latent = padded
    beta = 2.0 * lambda_grad
    while beta < beta_max:
        g = l0_gradient_term(latent, lambda_grad / beta, xp=xp)
        latent = _closed_form(data_term, g, beta, 0.0, otf_power, grad_power, shape, device, xp=xp)
        beta *= kappa
    return latent
