"""Reduce a non-parametric blur kernel to the paper's Gaussian σu, σv, ρ."""

from __future__ import annotations

from .._backend import array_namespace, to_numpy
from .._validate import fit_input
from ._gauss2d import GaussianSpotFit, fit_gaussian_spot
from ._gaussian import _check_pixel_size

__all__ = ["sigma_from_kernel", "KernelFit"]

#: Result type of :func:`sigma_from_kernel` (the shared Gaussian-spot fit result).
KernelFit = GaussianSpotFit


def sigma_from_kernel(kernel, *, pixel_size_um=None, poisson=False):
    """Fit the paper's g = α·h + β bivariate Gaussian to a non-parametric kernel.

    Blind deconvolution (e.g. :func:`xrfgpu.blind.blind_l0`) returns a coarse
    kernel: a non-negative array with a noisy floor, often clipped at zero and
    renormalised. Its second moments are biased by that floor, so — as Yang
    et al. (2022) do to obtain σ = 32.5 µm from the L0 kernel — the kernel is
    reduced to a Gaussian by a least-squares fit of g = α·h + β, where the
    constant β absorbs the floor. The fit runs on the host with
    :func:`scipy.optimize.least_squares` (the kernel is copied to NumPy).

    Parameters
    ----------
    kernel : array, shape (rows, cols)
        Non-parametric kernel of any array-API namespace, at least 3×3, with a
        single peak. It need not sum to 1 (α is then its integrated signal).
    pixel_size_um : float, optional
        Scan step in µm, to get the ``*_um`` attributes of the result.
    poisson : bool
        Weight residuals as Poisson counts (only for kernels that are counts).

    Returns
    -------
    fit : KernelFit
        ``sigma_u``, ``sigma_v`` (pixels, columns/rows), ``rho``, ``mu_u``,
        ``mu_v`` (pixels from the kernel's first row/column), ``alpha``,
        ``beta``, their ``stderr``, the ``residual`` map, and ``sigma`` =
        √(σu σv), the σ of the isotropic Gaussian with the same area, to pass
        to :func:`xrfgpu.psf.gaussian` or :func:`xrfgpu.restore`.

    Raises
    ------
    TypeError
        If ``kernel`` is not an array, is complex, or holds no numbers (str, object).
    ValueError
        If it is not 2-D, smaller than 3×3, contains NaN/inf, or is flat;
        ``pixel_size_um`` not a positive number; a
        NumPy masked array with masked pixels (every pixel is fitted).

    Notes
    -----
    The model is h(u, v) = exp(−q/(2(1−ρ²))) / (2π σu σv √(1−ρ²)) with
    q = ((u−μu)/σu)² + ((v−μv)/σv)² − 2ρ(u−μu)(v−μv)/(σu σv), sampled at
    pixel centres — the same sampling as :func:`xrfgpu.psf.gaussian`, so a
    kernel made by that function is recovered exactly. Standard errors are
    Gauss–Newton ones, √diag(s²(JᵀJ)⁻¹).

    References
    ----------
    J. Yang, Z. Zhang, Q. Cheng, J. Anal. At. Spectrom. 37, 750 (2022),
    doi:10.1039/d1ja00425e (section "Blind restoration", Fig. 6).

    Examples
    --------
    >>> from xrfgpu import psf
    >>> fit = psf.sigma_from_kernel(psf.gaussian(41, 5.0, 7.0, rho=0.2))
    >>> round(fit.sigma_u, 3), round(fit.sigma_v, 3), round(fit.rho, 3)
    (5.0, 7.0, 0.2)

    Backends: any array-API input; the fit itself runs with NumPy/SciPy.
    """
    if not (hasattr(kernel, "shape") and hasattr(kernel, "dtype")):
        raise TypeError(f"kernel must be an array, got {type(kernel).__name__}")
    kernel = fit_input(kernel, name="kernel", what="sigma_from_kernel")
    array_namespace(kernel)
    if kernel.ndim != 2:
        raise ValueError(f"kernel must be 2-D (rows, cols), got shape {tuple(kernel.shape)}")
    k = to_numpy(kernel).astype("float64")
    if k.shape[0] < 3 or k.shape[1] < 3:
        raise ValueError(f"kernel must be at least 3×3 pixels to fit a Gaussian, got shape {k.shape}")
    if pixel_size_um is not None:  # a negative step gave negative *_um widths without a word
        pixel_size_um = _check_pixel_size(pixel_size_um)
    return fit_gaussian_spot(k, poisson=poisson, pixel_size_um=pixel_size_um)
