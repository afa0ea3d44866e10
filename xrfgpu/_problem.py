"""The common preamble of every restoration: validate, normalise, build the operator."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._backend import _how_to_make_an_array, array_device, array_namespace, is_numpy_namespace
from ._validate import (
    as_background,
    as_image,
    as_image_with_weights,
    as_psf,
    check_pad,
    check_positive_int,
    psf_data,
    times_power_of_two,
)
from .fft import Convolution

__all__ = ["Problem", "prepare", "check_positive_int", "SAFE_PEAK"]

#: A map whose largest magnitude (or background) lies outside this range is
#: rescaled by a power of two (exact) before restoring and scaled back after:
#: within it, sums of squares over 2**24 pixels stay inside float32's range.
SAFE_PEAK = (2.0**-40, 2.0**40)


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
        ``image`` embedded in the canvas (reflected, or reordered for the
        ``"dctfft"`` engine); made on first use and kept (the GPU iteration
        of that engine reads ``image`` itself and never makes it).
    canvas_background : float or array
        ``background`` embedded in the canvas.
    scale : float
        Power of two by which ``image`` and ``background`` were divided
        (1.0 unless the map's magnitude lies outside :data:`SAFE_PEAK`);
        every restoration here is equivariant under this scaling, and
        :meth:`finish` multiplies it back.
    weights : array or None
        Weights of the map's pixels (rows, cols), or of a stack's
        (n, rows, cols): 0 at missing pixels, 1 at measured ones; None when
        every pixel was measured.
    fill_level : float or None
        The value :meth:`filled_data` gives a missing pixel that the PSF does
        not reach from any measured one, in this problem's units (divided by
        ``scale``); None: the mean of this map's measured pixels. A tile of a
        larger map (:mod:`xrfgpu.dask`) passes the whole map's.
    """

    xp: Any
    image: Any
    psf: Any
    background: Any
    op: Convolution
    _data: Any
    canvas_background: Any
    scale: float = 1.0
    weights: Any = None
    fill_level: Any = None

    @property
    def data(self):
        """``image`` on the canvas (see the class docstring); made on first use, then kept."""
        if self._data is None:
            self._data = self.op.embed(self.image)
        return self._data

    def finish(self, canvas_estimate):
        """Crop a canvas estimate back to the map (a fresh array, not a view), in the caller's units."""
        if self.scale == 1.0:
            return self.op.crop_copy(canvas_estimate)
        return self.to_user_units(self.op.crop(canvas_estimate))

    def to_user_units(self, x):
        """Undo the rescaling (a new array); raise if the result leaves the dtype's range."""
        xp = self.xp
        biggest = float(xp.max(xp.abs(x))) * self.scale
        top = float(xp.finfo(x.dtype).max)
        if not biggest <= top:
            raise ValueError(
                f"the restored map reaches {biggest:.3g}, beyond the range of {x.dtype} ({top:.3g}); "
                "pass the map as float64"
            )
        return times_power_of_two(x, int(round(math.log2(self.scale))))

    @property
    def canvas_weights(self):
        """``weights`` extended to the canvas (None when every pixel was measured)."""
        return None if self.weights is None else self.op.embed(self.weights)

    def filled_data(self):
        """Canvas data with each missing pixel replaced by its PSF-weighted neighbour mean.

        Normalised convolution (Knutsson & Westin 1993):
        ``(h ⊛ (w y)) / (h ⊛ w)`` where the PSF reaches measured pixels,
        the mean of the measured pixels elsewhere. Returns ``data`` itself
        when no pixel is missing. The mean is :attr:`fill_level` when set.
        """
        if self.weights is None:
            return self.data
        xp, op = self.xp, self.op
        w = self.canvas_weights
        num = op.forward(w * self.data)
        den = op.forward(w)
        seen = den > 1e-3
        if self.fill_level is not None:
            mean = self.fill_level
        elif self.batch:  # each map's own measured mean, (n, 1, 1)
            mean = (self.xp.sum(self.weights * self.image, axis=(-2, -1), keepdims=True)
                    / self.xp.sum(self.weights, axis=(-2, -1), keepdims=True))
        else:
            mean = self.xp.sum(self.weights * self.image) / self.xp.sum(self.weights)
        fill = xp.where(seen, num / xp.where(seen, den, xp.ones_like(den)), xp.zeros_like(den) + mean)
        return xp.where(w > 0, self.data, fill)

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

    def measured_mean(self):
        """Mean of ``image`` over its measured pixels (``weights`` > 0, weighted): a float, or per map for a
        stack, (n, 1, 1). The RL start level of a problem with missing pixels."""
        xp, w = self.xp, self.weights
        if self.batch:
            return (xp.sum(w * self.image, axis=(-2, -1), keepdims=True)
                    / xp.sum(w, axis=(-2, -1), keepdims=True))
        return float(xp.sum(w * self.image)) / float(xp.sum(w))

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
                       iterative=False, weights=None, rescale=False) -> "Problem":
        """Build the operator and canvas data from already validated arrays.

        ``image`` is (rows, cols) or (n, rows, cols) in the working dtype;
        ``psf`` is unit-sum (kr, kc) or (n, kr, kc); ``background`` a float or
        an array that broadcasts against ``image`` ((rows, cols),
        (n, rows, cols) or per map (n, 1, 1)).
        """
        xp = array_namespace(image)
        pad = check_pad(pad, image.shape, psf.shape)
        scale = 1.0
        if rescale:
            image, background, scale = _rescaled(image, background, xp=xp)
        op = Convolution(psf, image.shape, boundary=boundary, pad=pad, pad_factor=pad_factor, iterative=iterative)
        if hasattr(background, "shape") and background.shape[-2:] != (1, 1):
            canvas_b = op.embed(background)
        else:
            canvas_b = background
        return cls(xp=xp, image=image, psf=psf, background=background, op=op, _data=None, canvas_background=canvas_b,
                   scale=scale, weights=weights)


def rescale_exponent(peak: float) -> int:
    """The power of two ``k`` that brings a map of largest magnitude ``peak`` into :data:`SAFE_PEAK`
    (``peak · 2**k`` in [0.5, 1)); 0 where it is inside already, or 0."""
    low, high = SAFE_PEAK
    if peak == 0 or low <= peak <= high:
        return 0
    return -math.frexp(peak)[1]


def _rescaled(image, background, *, xp):
    """``(image, background, scale)`` with the magnitude brought into :data:`SAFE_PEAK` by a power of two.

    Maps near the float32 maximum (3e38) overflow the transforms' sums;
    maps of subnormals (1e-40) lose the ratios of Richardson–Lucy to
    underflow. Dividing by a power of two is exact, and every restoration
    is equivariant under it (RL in the map and background; the linear
    filters; FISTA with λ scaled alike).
    """
    def largest_magnitude(a):  # max |a| by two reductions, without a map-sized |a| temporary
        return max(abs(float(xp.min(a))), abs(float(xp.max(a))))

    peak = largest_magnitude(image)
    if hasattr(background, "shape"):
        peak = max(peak, largest_magnitude(background))
    else:
        peak = max(peak, abs(float(background)))
    k = rescale_exponent(peak)
    if not k:
        return image, background, 1.0
    image = times_power_of_two(image, k)
    # a float too in steps (2.0**k overflows a Python float beyond k = 1023: a subnormal float64 map)
    background = times_power_of_two(background if hasattr(background, "shape") else float(background), k)
    return image, background, 2.0 ** (-k)


def prepare(image, psf, *, background=0.0, boundary="reflect", pad=None, pad_factor=2, iterative=False,
            missing=False, mask=None, fill_level=None) -> Problem:
    """Validate a single map's restoration inputs and set up the blur operator.

    Stacks are validated by :mod:`xrfgpu.stack` and built with
    :meth:`Problem.from_validated`. A map whose magnitude lies outside
    :data:`SAFE_PEAK` is rescaled (see :attr:`Problem.scale`).

    Parameters
    ----------
    missing : bool
        Accept missing pixels (NumPy masked arrays, NaN, ``mask`` weights 0)
        and record them in :attr:`Problem.weights`; otherwise they are refused.
    mask : array, optional
        Weights (1 = measured, 0 = missing), with ``missing=True`` only.
    fill_level : float, optional
        :attr:`Problem.fill_level` in the caller's units (a tile's whole-map
        mean of the measured pixels).

    Raises
    ------
    TypeError, ValueError
        See :func:`xrfgpu._validate.as_image`, ``as_psf`` and ``as_background``;
        also for an all-zero map.
    """
    if not (hasattr(image, "shape") and hasattr(image, "dtype")):
        raise TypeError(f"image must be an array (NumPy, CuPy, ...): {_how_to_make_an_array(image)}")
    xp = array_namespace(image)
    weights = None
    if missing:
        y, weights = as_image_with_weights(image, mask, xp=xp)
    else:
        y = as_image(image, xp=xp)
    # a NumPy masked PSF is refused (or taken as its data) before any namespace sees it (_validate.psf_data)
    psf = as_namespace(psf_data(psf), xp, array_device(y))
    low, high = float(xp.min(y)), float(xp.max(y))
    all_zero = (low == 0 and high == 0) if low == low and high == high else not bool(xp.any(y != 0))  # NaN: look
    if all_zero:
        raise ValueError("image is all zeros: there is nothing to restore")
    h = as_psf(psf, y.shape, xp=xp, dtype=y.dtype, device=array_device(y))
    b = as_background(background, y, xp=xp)
    pb = Problem.from_validated(y, h, b, boundary=boundary, pad=pad, pad_factor=pad_factor, iterative=iterative,
                                weights=weights, rescale=True)
    if fill_level is not None:
        pb.fill_level = float(fill_level) / pb.scale
    return pb


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
