"""The hot elementwise steps of the algorithms, one function each.

Each function has one meaning and up to three engines that compute the same
numbers:

* the array-API expression (the reference; runs on any namespace),
* NumPy in place, with ``out=`` to save passes and temporaries,
* a fused CUDA kernel from ``kernels/`` when the namespace is CuPy and the
  engine is not forced to ``"xp"`` (see :mod:`xrfgpu.cuda`).

Arguments documented as *scratch* may be overwritten by the NumPy and CUDA
engines; callers pass temporaries there and never reuse them.
"""

from __future__ import annotations

from ._backend import is_cupy_namespace, is_numpy_namespace

__all__ = [
    "multiply_spectrum",
    "reflect_dct_filter",
    "rl_ratio",
    "rl_update",
    "rl_extrapolate",
    "difference",
    "fista_step",
    "l0_intensity_threshold",
    "l0_gradient_term",
    "dtv_dual_step",
    "set_engine",
    "get_engine",
]

_ENGINE = "auto"


def set_engine(engine: str) -> None:
    """Choose the elementwise engine: ``"auto"`` (CUDA kernels on CuPy) or ``"xp"``.

    ``"xp"`` forces the plain array-API expressions everywhere; tests and
    benchmarks use it to compare the kernels with plain CuPy.
    """
    global _ENGINE
    if engine not in ("auto", "xp"):
        raise ValueError(f"engine must be 'auto' or 'xp', got {engine!r}")
    _ENGINE = engine


def get_engine() -> str:
    """The elementwise engine in use (see :func:`set_engine`)."""
    return _ENGINE


def _cuda_kernels(xp):
    """The CUDA kernel set for CuPy namespaces, or None."""
    if _ENGINE == "xp" or not is_cupy_namespace(xp):
        return None
    try:
        from . import cuda
    except ImportError:  # pragma: no cover - the module ships with the package
        return None
    return cuda.kernels()


def multiply_spectrum(spectrum, transfer, *, xp):
    """``spectrum · transfer`` (complex FFT spectra, or real DCT spectra). ``spectrum`` is scratch."""
    k = _cuda_kernels(xp) if xp.isdtype(spectrum.dtype, "complex floating") else None
    if k is not None:
        return k.multiply_spectrum(spectrum, transfer)
    if is_numpy_namespace(xp):
        import numpy as np

        if spectrum.shape == np.broadcast_shapes(spectrum.shape, transfer.shape):
            np.multiply(spectrum, transfer, out=spectrum)
            return spectrum
    return spectrum * transfer


def reflect_dct_filter(spectrum, eigenvalues, *, xp):
    """The reflect blur of a symmetric PSF on an rfft2 half spectrum of Makhoul-reordered maps.

    ``spectrum`` (complex, (..., n1, n2 // 2 + 1)) is scratch; ``eigenvalues``
    are the blur's DCT eigenvalues (real, (n1, n2) or (n, n1, n2)). The CUDA
    kernel ``kernels/dct_spectrum.cu`` computes it in one pass, elsewhere
    :func:`xrfgpu._reflect_fft.spectrum_filter` (the array-API statement).
    """
    k = _cuda_kernels(xp)
    if k is not None:
        out = k.reflect_dct_filter(spectrum, eigenvalues)
        if out is not None:
            return out
    from ._reflect_fft import spectrum_filter

    return spectrum_filter(spectrum, eigenvalues, xp=xp)


def rl_ratio(data, blurred, background, eps, *, xp):
    """Richardson–Lucy ratio ``y / max(h⊛x + b, eps)``. ``blurred`` is scratch.

    Parameters
    ----------
    data : array
        Observed counts ``y`` (canvas).
    blurred : array
        ``h ⊛ x`` (canvas); overwritten on NumPy/CUDA.
    background : float or array
        Known background ``b`` (counts), scalar or canvas map.
    eps : float
        Guard: denominators below ``eps`` are raised to ``eps``.
    """
    k = _cuda_kernels(xp)
    if k is not None:
        return k.rl_ratio(data, blurred, background, eps)
    if is_numpy_namespace(xp):
        import numpy as np

        if not (isinstance(background, float) and background == 0.0):
            np.add(blurred, background, out=blurred)
        np.maximum(blurred, eps, out=blurred)
        np.divide(data, blurred, out=blurred)
        return blurred
    return data / xp.clip(blurred + background, min=eps)


def rl_update(estimate, correction, *, xp):
    """Multiplicative RL update ``x · c``. ``correction`` is scratch."""
    k = _cuda_kernels(xp)
    if k is not None:
        return k.rl_update(estimate, correction)
    if is_numpy_namespace(xp):
        import numpy as np

        np.multiply(estimate, correction, out=correction)
        return correction
    return estimate * correction


def rl_extrapolate(estimate, previous, alpha, *, xp):
    """Biggs–Andrews prediction ``max(x + α (x − x_prev), 0)``. ``previous`` is scratch.

    ``alpha`` is a float, or an (n, 1, 1) array of per-map weights.
    """
    if is_numpy_namespace(xp):
        import numpy as np

        out = previous
        np.subtract(estimate, previous, out=out)
        np.multiply(out, alpha, out=out)
        np.add(out, estimate, out=out)
        np.maximum(out, 0, out=out)
        return out
    return xp.clip(estimate + alpha * (estimate - previous), min=0.0)


def dtv_dual_step(px, py, gx, gy, step, *, xp):
    """Projected dual ascent of the directional TV: ``p ← (p + s g) / max(1, |p + s g|)``.

    Both components of ``p = (px, py)`` at once (new arrays); ``step`` is a
    float or an (n, 1, 1) array of per-map steps. The CUDA kernel
    ``kernels/dtv.cu`` computes it in one pass (:mod:`xrfgpu.joint`, Chambolle 2004).
    """
    k = _cuda_kernels(xp)
    if k is not None:
        out = k.dtv_dual(px, py, gx, gy, step)
        if out is not None:
            return out
    ux, uy = px + step * gx, py + step * gy
    norm = xp.clip(xp.sqrt(ux * ux + uy * uy), min=1.0)
    return ux / norm, uy / norm


def difference(a, b, *, xp, out=None):
    """``a − b``, into ``out`` (scratch of the same shape) on NumPy when given."""
    if out is not None and is_numpy_namespace(xp):
        import numpy as np

        return np.subtract(a, b, out=out)
    return a - b


def fista_step(point, gradient, previous, step, threshold, momentum, nonneg, *, xp):
    """One proximal-gradient step with momentum (Beck & Teboulle 2009).

    ``x_new = prox(z − step·∇f(z))`` with the soft threshold of width
    ``threshold`` (one-sided when ``nonneg``), then the next extrapolation
    point ``z_new = x_new + momentum · (x_new − x_prev)``.

    Parameters
    ----------
    point : array
        Extrapolation point ``z``.
    gradient : array
        ``∇f(z)``; scratch.
    previous : array
        Previous iterate ``x_prev``.
    step, threshold, momentum : float
        ``1/L``, ``λ/L`` and ``(t_k − 1)/t_{k+1}``.
    nonneg : bool
        Project onto x ≥ 0 as well.

    Returns
    -------
    x_new, z_new : arrays
    """
    k = _cuda_kernels(xp)
    if k is not None:
        return k.fista_step(point, gradient, previous, step, threshold, momentum, nonneg)
    if is_numpy_namespace(xp):
        import numpy as np

        v = gradient
        np.multiply(v, -step, out=v)
        np.add(v, point, out=v)
        if nonneg:
            np.subtract(v, threshold, out=v)
            np.maximum(v, 0, out=v)
        else:
            mag = np.abs(v)
            np.subtract(mag, threshold, out=mag)
            np.maximum(mag, 0, out=mag)
            np.copysign(mag, v, out=v)
        x_new = v
        z_new = np.subtract(x_new, previous)
        np.multiply(z_new, momentum, out=z_new)
        np.add(z_new, x_new, out=z_new)
        return x_new, z_new
    v = point - step * gradient
    if nonneg:
        x_new = xp.clip(v - threshold, min=0.0)
    else:
        x_new = xp.sign(v) * xp.clip(xp.abs(v) - threshold, min=0.0)
    z_new = x_new + momentum * (x_new - previous)
    return x_new, z_new


def l0_intensity_threshold(image, threshold, *, xp):
    """L0 intensity step of Pan et al. (2014): ``u = S`` where ``S² ≥ t``, else 0.

    The exact minimiser of ``β_p (S − u)² + λ_p [u ≠ 0]`` with ``t = λ_p / β_p``
    (strict ``<`` zeroes, as the reference code).
    """
    k = _cuda_kernels(xp)
    if k is not None:
        return k.l0_intensity_threshold(image, threshold)
    return xp.where(image * image < threshold, xp.zeros_like(image), image)


def l0_gradient_term(image, threshold, *, xp):
    """L0 gradient step of Pan et al. (2014), returned as ``Dxᵀh + Dyᵀv``.

    ``h = Dx S``, ``v = Dy S`` are circular forward differences over the last
    two axes (``Dx S[i, j] = S[i, j+1] − S[i, j]``); both are zeroed jointly
    where ``h² + v² < t`` (``t = λ_g / β``), the exact minimiser of
    ``β ‖∇S − g‖² + λ_g [g ≠ 0]``. The adjoints are
    ``Dxᵀh[i, j] = h[i, j−1] − h[i, j]`` and likewise for rows, so the result
    is what the image step's right-hand side needs.
    """
    k = _cuda_kernels(xp)
    if k is not None:
        return k.l0_gradient_term(image, threshold)
    h = xp.roll(image, -1, axis=-1) - image
    v = xp.roll(image, -1, axis=-2) - image
    keep = (h * h + v * v) >= threshold
    zero = xp.zeros_like(image)
    h = xp.where(keep, h, zero)
    v = xp.where(keep, v, zero)
    return (xp.roll(h, 1, axis=-1) - h) + (xp.roll(v, 1, axis=-2) - v)
