"""The common preamble of every restoration: validate, normalise, build the operator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._backend import array_device, array_namespace
from ._validate import as_background, as_image, as_psf
from .fft import Convolution

__all__ = ["Problem", "prepare"]


@dataclass
class Problem:
    """Validated inputs of one restoration, on the FFT canvas.

    Attributes
    ----------
    xp : namespace
    image : array
        The observed map (rows, cols) in the working dtype.
    psf : array
        Unit-sum PSF in the working dtype.
    background : float or array
        Background on the map grid (counts).
    op : Convolution
        Blur operator on the canvas.
    data : array
        ``image`` embedded in the canvas.
    canvas_background : float or array
        ``background`` embedded in the canvas.
    """

    xp: Any
    image: Any
    psf: Any
    background: Any
    op: Convolution
    data: Any
    canvas_background: Any

    def finish(self, canvas_estimate):
        """Crop a canvas estimate back to the map (a fresh array, not a view)."""
        return self.xp.asarray(self.op.crop(canvas_estimate), copy=True)


def prepare(image, psf, *, background=0.0, boundary="reflect", pad=None, pad_factor=2, allow_batch=False) -> Problem:
    """Validate a restoration's inputs and set up the blur operator.

    Raises
    ------
    TypeError, ValueError
        See :func:`xrfgpu._validate.as_image`, ``as_psf`` and ``as_background``;
        also for an all-zero map.
    """
    if not (hasattr(image, "shape") and hasattr(image, "dtype")):
        raise TypeError(f"image must be an array (NumPy, CuPy, ...), got {type(image).__name__}")
    xp = array_namespace(image)
    y = as_image(image, xp=xp, allow_batch=allow_batch)
    psf = as_namespace(psf, xp, array_device(y))
    if not bool(xp.any(y != 0)):
        raise ValueError("image is all zeros: there is nothing to restore")
    h = as_psf(psf, y.shape, xp=xp, dtype=y.dtype, device=array_device(y))
    b = as_background(background, y, xp=xp)
    op = Convolution(h, y.shape, boundary=boundary, pad=pad, pad_factor=pad_factor)
    data = op.embed(y)
    canvas_b = op.embed(b) if hasattr(b, "shape") else b
    return Problem(xp=xp, image=y, psf=h, background=b, op=op, data=data, canvas_background=canvas_b)


def as_namespace(array, xp, device):
    """``array`` in namespace ``xp`` on ``device`` (a PSF from NumPy used with CuPy maps, say)."""
    if hasattr(array, "shape") and hasattr(array, "dtype"):
        try:
            if array_namespace(array) is xp:
                return array
        except TypeError:
            pass
        import numpy as np

        from ._backend import to_numpy

        try:
            host = to_numpy(array)
        except TypeError:
            host = np.asarray(array)
        return xp.asarray(host, device=device)
    return array


def check_iterations(num_iter, name="num_iter"):
    """Return ``num_iter`` as a positive int or raise ValueError."""
    try:
        n = int(num_iter)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an integer, got {num_iter!r}") from None
    if n != num_iter or n < 1:
        raise ValueError(f"{name} must be a positive integer, got {num_iter!r}")
    return n
