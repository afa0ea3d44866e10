"""The common preamble of every restoration: validate, normalise, build the operator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._backend import array_device, array_namespace, is_numpy_namespace
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

    # -- per-map scalars ------------------------------------------------------
    # A single map keeps its scalars as Python floats (the fused kernels take
    # them as arguments); a stack (n, rows, cols) keeps one value per map as an
    # (n, 1, 1) array that broadcasts over the maps.
    @property
    def batch(self) -> bool:
        """Whether this problem restores a stack (n, rows, cols) of maps at once."""
        return self.image.ndim == 3

    def mean(self, a):
        """Mean over the last two axes: a float, or per map for a stack."""
        if not hasattr(a, "shape"):
            return float(a)
        if self.batch:
            return self.xp.mean(a, axis=(-2, -1), keepdims=True)
        return float(self.xp.mean(a))

    def amax(self, a):
        """Maximum over the last two axes: a float, or per map for a stack."""
        if self.batch:
            return self.xp.max(a, axis=(-2, -1), keepdims=True)
        return float(self.xp.max(a))

    def inner(self, a, b):
        """⟨a, b⟩ over the last two axes, accumulated in float64 for stacks."""
        xp = self.xp
        if self.batch:
            prod = xp.astype(a, xp.float64) * xp.astype(b, xp.float64)
            return xp.astype(xp.sum(prod, axis=(-2, -1), keepdims=True), a.dtype)
        if is_numpy_namespace(xp):
            return float(np.vdot(a, b))  # one BLAS pass, no temporary
        return float(xp.sum(a * b))

    def largest(self, *values):
        """Elementwise maximum of floats and per-map arrays."""
        if not any(hasattr(v, "shape") for v in values):
            return max(float(v) for v in values)
        xp, out = self.xp, None
        for v in values:
            if not hasattr(v, "shape"):
                v = xp.asarray(v, dtype=self.image.dtype, device=array_device(self.image))
            out = v if out is None else xp.maximum(out, v)
        return out

    def clip01(self, a):
        """Clip a float or per-map array to [0, 1]."""
        if hasattr(a, "shape"):
            return self.xp.clip(a, min=0.0, max=1.0)
        return min(max(a, 0.0), 1.0)

    def per_map(self, values):
        """A scalar, or a sequence of one value per map as an (n, 1, 1) array (stacks only)."""
        if isinstance(values, (int, float)) or (hasattr(values, "shape") and values.ndim == 0):
            return float(values)
        xp = self.xp
        values = [float(v) for v in values]
        if not self.batch or len(values) != self.image.shape[0]:
            raise ValueError(f"got {len(values)} per-map values for {self._count()}")
        return xp.reshape(xp.asarray(values, dtype=self.image.dtype, device=array_device(self.image)), (-1, 1, 1))

    def _count(self):
        return f"a stack of {self.image.shape[0]} maps" if self.batch else "a single map"

    @classmethod
    def from_validated(cls, image, psf, background, *, boundary="reflect", pad=None, pad_factor=2,
                       iterative=False) -> "Problem":
        """Build the operator and canvas data from already validated arrays.

        ``image`` is (rows, cols) or (n, rows, cols) in the working dtype;
        ``psf`` is unit-sum (kr, kc) or (n, kr, kc); ``background`` a float or
        an array that broadcasts against ``image`` ((rows, cols),
        (n, rows, cols) or per map (n, 1, 1)).
        """
        xp = array_namespace(image)
        op = Convolution(psf, image.shape, boundary=boundary, pad=pad, pad_factor=pad_factor, iterative=iterative)
        data = op.embed(image)
        if hasattr(background, "shape") and background.shape[-2:] != (1, 1):
            canvas_b = op.embed(background)
        else:
            canvas_b = background
        return cls(xp=xp, image=image, psf=psf, background=background, op=op, data=data, canvas_background=canvas_b)


def prepare(image, psf, *, background=0.0, boundary="reflect", pad=None, pad_factor=2, iterative=False) -> Problem:
    """Validate a single map's restoration inputs and set up the blur operator.

    Stacks are validated by :mod:`xrfgpu.stack` and built with
    :meth:`Problem.from_validated`.

    Raises
    ------
    TypeError, ValueError
        See :func:`xrfgpu._validate.as_image`, ``as_psf`` and ``as_background``;
        also for an all-zero map.
    """
    if not (hasattr(image, "shape") and hasattr(image, "dtype")):
        raise TypeError(f"image must be an array (NumPy, CuPy, ...), got {type(image).__name__}")
    xp = array_namespace(image)
    y = as_image(image, xp=xp)
    psf = as_namespace(psf, xp, array_device(y))
    if not bool(xp.any(y != 0)):
        raise ValueError("image is all zeros: there is nothing to restore")
    h = as_psf(psf, y.shape, xp=xp, dtype=y.dtype, device=array_device(y))
    b = as_background(background, y, xp=xp)
    return Problem.from_validated(y, h, b, boundary=boundary, pad=pad, pad_factor=pad_factor, iterative=iterative)


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


def check_positive_int(value, name="num_iter"):
    """Return ``value`` as a positive int (an iteration count, a tile size) or raise."""
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an integer, got {value!r}") from None
    if n != value or n < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return n
