"""Input checks shared by every public function.

Each check raises :class:`ValueError` or :class:`TypeError` with a message
that names the argument and the problem, and says what to do about it.
"""

from __future__ import annotations

from ._backend import array_device, working_dtype

__all__ = ["as_image", "as_psf", "as_background", "require_nonnegative"]


def _is_array(x) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype")


def as_image(image, *, xp, name: str = "image", allow_batch: bool = False):
    """Return ``image`` as a finite floating map in the working precision.

    Parameters
    ----------
    image : array
        2-D map (rows, columns), or (n, rows, columns) when ``allow_batch``.
    xp : namespace
        Array namespace of the call.
    name : str
        Name used in error messages.
    allow_batch : bool
        Accept a leading batch axis.

    Raises
    ------
    TypeError
        Not an array, or a complex / non-numeric dtype.
    ValueError
        Wrong number of axes, fewer than 2 pixels along an axis, NaN or inf.
    """
    if not _is_array(image):
        raise TypeError(f"{name} must be an array, got {type(image).__name__}")
    ndims = (2, 3) if allow_batch else (2,)
    if image.ndim not in ndims:
        want = "2-D (rows, columns) or 3-D (maps, rows, columns)" if allow_batch else "2-D (rows, columns)"
        hint = "" if allow_batch else "; restore a stack of element maps with xrfgpu.restore_stack"
        raise ValueError(f"{name} must be {want}, got shape {tuple(image.shape)}{hint}")
    if any(n == 0 for n in image.shape):
        raise ValueError(f"{name} is empty (shape {tuple(image.shape)})")
    if image.shape[-1] < 2 or image.shape[-2] < 2:
        raise ValueError(f"{name} must have at least 2 pixels along each axis, got shape {tuple(image.shape)}")
    dtype = working_dtype(xp, image.dtype)
    out = xp.astype(image, dtype, copy=False)
    if not bool(xp.all(xp.isfinite(out))):
        raise ValueError(f"{name} contains NaN or infinite values; mask or fill them before restoring")
    return out


def as_psf(psf, image_shape, *, xp, dtype, device=None, name: str = "psf"):
    """Return the PSF normalised to unit sum, in ``dtype``.

    Raises
    ------
    ValueError
        If the PSF is not 2-D, is larger than the map, has negative or
        non-finite entries, or sums to zero.
    """
    if not _is_array(psf):
        raise TypeError(f"{name} must be an array, got {type(psf).__name__}")
    if psf.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {tuple(psf.shape)}")
    if any(n == 0 for n in psf.shape):
        raise ValueError(f"{name} is empty (shape {tuple(psf.shape)})")
    rows, cols = image_shape[-2:]
    if psf.shape[0] > rows or psf.shape[1] > cols:
        raise ValueError(
            f"{name} of shape {tuple(psf.shape)} is larger than the map ({rows}, {cols}); "
            "crop the PSF (a Gaussian needs about 8 sigma) or restore a larger map"
        )
    if xp.isdtype(psf.dtype, "complex floating"):
        raise TypeError(f"{name} must be real, got dtype {psf.dtype}")
    h = xp.astype(psf, dtype, copy=True)
    if device is not None:
        h = xp.asarray(h, device=device)
    if not bool(xp.all(xp.isfinite(h))):
        raise ValueError(f"{name} contains NaN or infinite values")
    if bool(xp.any(h < 0)):
        raise ValueError(f"{name} has negative entries; a PSF is a non-negative intensity distribution")
    total = float(xp.sum(h))
    if not total > 0:
        raise ValueError(f"{name} sums to zero; it must carry some intensity")
    return h / total


def as_background(background, image, *, xp, name: str = "background"):
    """Return the background as a Python float or a map like ``image``.

    Raises
    ------
    ValueError
        Non-finite or negative background, or a map of another shape.
    """
    if _is_array(background):
        b = xp.astype(background, image.dtype, copy=False)
        if tuple(b.shape) != tuple(image.shape):
            if b.ndim == 0:
                return as_background(float(b), image, xp=xp, name=name)
            raise ValueError(
                f"{name} map has shape {tuple(b.shape)} but the image has shape {tuple(image.shape)}"
            )
        b = xp.asarray(b, device=array_device(image))
        if not bool(xp.all(xp.isfinite(b))):
            raise ValueError(f"{name} contains NaN or infinite values")
        if bool(xp.any(b < 0)):
            raise ValueError(f"{name} has negative values; a background count rate is >= 0")
        return b
    try:
        value = float(background)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number or a map, got {background!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{name} must be finite, got {value}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0 counts, got {value}")
    return value


def require_nonnegative(image, *, xp, what: str):
    """Raise if ``image`` has negative values (Poisson data are counts)."""
    if bool(xp.any(image < 0)):
        raise ValueError(
            f"image has negative values, but {what} models Poisson counts (>= 0). "
            "Pass the raw counts and give the offset as `background=`, or clip the map at 0 first"
        )
