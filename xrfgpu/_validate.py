"""Input checks shared by every public function.

Each check raises :class:`ValueError` or :class:`TypeError` with a message
that names the argument and the problem, and says what to do about it.
The same parameter is checked by the same function everywhere
(``num_iter`` by :func:`check_num_iter` in every solver and front door), so
a value refused by one is refused by all, with the same words.

Size limits (refused *before* anything is allocated):

* iterations: at most :data:`MAX_NUM_ITER`;
* a PSF array: at most :data:`MAX_PSF_SIDE` pixels along a side and no more
  bytes than the machine's memory (:func:`check_allocation`);
* reflect padding: at most the larger of the map's longer side and
  :data:`MAX_PAD_EXTENTS` PSF extents (:func:`check_pad`).
"""

from __future__ import annotations

import math
import numbers
import operator
import os

from ._backend import array_device, working_dtype

__all__ = [
    "as_image",
    "as_image_with_weights",
    "as_psf",
    "as_background",
    "require_nonnegative",
    "check_num_iter",
    "check_positive_int",
    "check_filter_epsilon",
    "check_positive_finite",
    "check_pad",
    "check_allocation",
    "check_float_dtype",
    "is_count_map",
    "fit_input",
    "plain_array",
    "psf_data",
    "mask_data",
    "background_data",
    "MAX_NUM_ITER",
    "MAX_PSF_SIDE",
    "MAX_PAD_EXTENTS",
    "MAX_COUNT",
]

#: Largest iteration count accepted by every iterative solver and front door.
#: Richardson–Lucy reaches its cross-validated optimum in tens to hundreds of
#: iterations and FISTA in tens; 10 000 is far past any useful stopping point
#: and bounds a run that a typo (``num_iter=10**9``) would make endless.
MAX_NUM_ITER = 10_000

#: Largest side of a PSF array, pixels (a Gaussian of σ = 8191 px at ±4 σ).
MAX_PSF_SIDE = 65_537

#: ``pad`` may reach this many PSF extents (or the map's longer side, if larger).
#: The measured effect of padding is below 1e-5 of the map's range beyond
#: 8 extents (:func:`xrfgpu.fft.default_pad`); 16 leaves a factor-2 margin.
MAX_PAD_EXTENTS = 16

#: Largest value of a map that is taken as Poisson counts (2**40 ≈ 1.1e12).
#: Above it the Poisson split of cross-validation (int64 binomial draws)
#: and the count statistics are meaningless, and :mod:`xrfgpu._problem`
#: rescales the map for safe arithmetic.
MAX_COUNT = 2.0**40


def _is_array(x) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype")


def _whole_number(value, name):
    """``value`` as a Python int if it is a whole number (int, NumPy integer, integral float)."""
    if isinstance(value, bool) or isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        v = float(value)
        if not math.isfinite(v):
            raise ValueError(f"{name} must be a finite whole number, got {value!r}")
        if not v.is_integer():
            raise ValueError(f"{name} must be a whole number, got {value!r}")
        return int(v)
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})") from None


def check_positive_int(value, name="value"):
    """Return ``value`` as an int ≥ 1 (a tile size, a batch size) or raise.

    Raises
    ------
    TypeError
        A string, a bool or a non-number.
    ValueError
        Not a whole number (1.5, inf, nan), or below 1.
    """
    n = _whole_number(value, name)
    if n < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return n


def check_num_iter(value, name="num_iter", *, cap=MAX_NUM_ITER):
    """Return an iteration count as an int in ``[1, cap]`` or raise.

    Used, unchanged, by every iterative solver and front door, so that a
    count refused by :func:`xrfgpu.richardson_lucy` is refused by
    :func:`xrfgpu.restore` and the CLI too.

    Parameters
    ----------
    value : int
        Requested count. Integral floats (``30.0``) are accepted; ``1.5``,
        ``inf``, ``nan``, strings and bools are not.
    name : str
        Parameter name for the message.
    cap : int
        Largest accepted count, default :data:`MAX_NUM_ITER`.

    Raises
    ------
    TypeError, ValueError
    """
    n = check_positive_int(value, name)
    if n > cap:
        raise ValueError(
            f"{name}={n} is above the cap of {cap} iterations; restorations stop improving after "
            "tens to hundreds (use tol=, discrepancy= or the automatic stopping of xrfgpu.restore)"
        )
    return n


def check_positive_finite(value, name, unit):
    """Return ``value`` as a finite float > 0; a string, bool or non-number is a TypeError, the rest a ValueError.

    ``unit`` names the value's unit in the message (e.g. "counts"). ``True`` is refused, not read as 1
    (``gain=True`` used to run as gain 1 and fail later on a message naming neither).
    """
    if isinstance(value, (str, bytes, bool)) or getattr(getattr(value, "dtype", None), "kind", None) == "b":
        raise TypeError(f"{name} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    if not (number > 0 and math.isfinite(number)):
        raise ValueError(f"{name} must be a finite number > 0 ({unit}), got {value!r}")
    return number


def check_filter_epsilon(value, name="filter_epsilon"):
    """Return the division guard ε as a finite float > 0, or None (the default)."""
    if value is None:
        return None
    return check_positive_finite(value, name, "counts")


def check_pad(pad, image_shape, psf_shape, name="pad"):
    """Return ``pad`` (reflect padding per side, pixels) as an int, or None.

    Refused above ``max(longer map side, MAX_PAD_EXTENTS × larger PSF side)``:
    the canvas would only repeat mirror images and its size grows as the
    square of ``pad`` (``pad=10**6`` asks for terabytes).
    """
    if pad is None:
        return None
    p = _whole_number(pad, name)
    if p < 0:
        raise ValueError(f"{name} must be >= 0 pixels, got {pad!r}")
    limit = max(max(image_shape[-2:]), MAX_PAD_EXTENTS * max(psf_shape[-2:]))
    if p > limit:
        raise ValueError(
            f"{name}={p} pixels is more than the sane limit of {limit} for a map of shape "
            f"{tuple(image_shape[-2:])} and a PSF of shape {tuple(psf_shape[-2:])} (the larger of the map's "
            f"side and {MAX_PAD_EXTENTS} PSF extents); a wider mirror border changes nothing measurable"
        )
    return p


def _physical_memory_bytes():
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):  # pragma: no cover - non-POSIX
        return None


def check_allocation(shape, itemsize, *, what, hint="", copies=1, max_side=None):
    """Refuse an array of ``shape`` before allocating it, if it cannot fit.

    Parameters
    ----------
    shape : tuple of int
        Shape of the array about to be created.
    itemsize : int
        Bytes per element.
    what : str
        What the array is and which parameter sets its size (for the message).
    hint : str
        What to do instead.
    copies : int
        Arrays of this size alive at once (temporaries).
    max_side : int, optional
        Largest accepted side, pixels.

    Raises
    ------
    ValueError
        A side above ``max_side`` or more bytes than the machine's physical memory.
    """
    shape = tuple(int(n) for n in shape)
    nbytes = math.prod(shape) * int(itemsize) * int(copies)
    suffix = f"; {hint}" if hint else ""
    if max_side is not None and max(shape) > max_side:
        raise ValueError(f"{what} would be {' x '.join(f'{n:.6g}' for n in map(float, shape))} pixels, above the "
                         f"limit of {max_side} per side ({_gib(nbytes)}){suffix}")
    memory = _physical_memory_bytes()
    if memory is not None and nbytes > memory:
        raise ValueError(f"{what} would need {_gib(nbytes)}, more than this machine's "
                         f"{_gib(memory)} of memory{suffix}")


def _gib(nbytes: int) -> str:
    if nbytes < 2**1000:
        return f"{nbytes / 2**30:.3g} GiB"
    return f"about 2**{nbytes.bit_length() - 1} bytes"


def check_float_dtype(dtype, *, xp, name="dtype"):
    """Refuse a non-floating ``dtype`` (a PSF in int32 would round to zeros)."""
    if dtype is None:
        return None
    try:
        ok = xp.isdtype(dtype, "real floating")
    except (TypeError, ValueError, AttributeError):
        ok = False
    if not ok:
        shown = getattr(dtype, "__name__", dtype)
        raise TypeError(f"{name} must be a real floating dtype (float32 or float64), got {shown}")
    return dtype


def is_count_map(y, *, xp) -> bool:
    """Whether a map holds non-negative integer counts up to :data:`MAX_COUNT`.

    Maps beyond ``MAX_COUNT`` (1.1e12) are not Poisson counts in any
    micro-XRF measurement; their integer-valued floats would overflow the
    int64 binomial split of cross-validation.
    """
    return (bool(xp.all(y >= 0)) and bool(xp.all(xp.round(y) == y))
            and float(xp.max(y)) <= MAX_COUNT)


def _host_masked(image):
    """(data, missing) of a NumPy masked array, or None for any other array."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        return None
    if isinstance(image, np.ma.MaskedArray):
        return np.ma.getdata(image), np.ma.getmaskarray(image)
    return None


def plain_array(value):
    """``value`` as a plain :class:`numpy.ndarray` if it is a NumPy ndarray subclass; anything else unchanged.

    ``numpy.matrix`` reads ``*`` as a matrix product and keeps two axes through every reduction (a matrix
    mask gave :func:`xrfgpu.wiener` a map 86 times too bright, and an IndexError in the separable engine),
    ``numpy.memmap`` and record arrays carry behaviour the solvers do not expect either. The view shares
    the data (no copy). A :class:`numpy.ma.MaskedArray` is left as it is: its mask means something, and
    the callers decide what (:func:`fit_input`, :func:`psf_data`, :func:`_as_weights`).

    Parameters
    ----------
    value : object
        An array of any namespace, or anything else.

    Returns
    -------
    object
        ``numpy.asarray(value)`` for an ndarray subclass other than a masked array, else ``value``.
    """
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        return value
    if isinstance(value, np.ndarray) and type(value) is not np.ndarray and not isinstance(value, np.ma.MaskedArray):
        return np.asarray(value)
    return value


def _masked_positions(missing, limit=4):
    """``"(0, 0), (3, 4)"``: the first ``limit`` masked positions of a boolean mask, for a message."""
    import numpy as np

    where = np.argwhere(missing)
    shown = ", ".join(str(tuple(int(i) for i in row)) for row in where[:limit])
    return shown + (f" and {len(where) - limit} more" if len(where) > limit else "")


def _data_refusing_masked_entries(value, *, name: str, why: str, fix: str, noun: str = "entry"):
    """``value``'s plain data: a masked array masking nothing as its data; one with masked entries refused.

    The message: "``name`` is a masked array with 2 masked entries (at (0, 0), (3, 4)); ``why``: ``fix``"."""
    masked = _host_masked(value)
    if masked is None:
        return plain_array(value)
    data, missing = masked
    count = int(missing.sum())
    if count:
        at = "" if missing.ndim == 0 else f" (at {_masked_positions(missing)})"
        nouns = noun if count == 1 else (noun[:-1] + "ies" if noun.endswith("y") else noun + "s")
        raise ValueError(f"{name} is a masked array with {count} masked {nouns}{at}; {why}: {fix}")
    return plain_array(data)


def _dtype_kind(array) -> str:
    """``"complex"``, ``"number"`` (bool, integer, real floating) or ``"other"`` (str, bytes, object, ...)."""
    dtype = array.dtype
    try:
        import numpy as np

        if isinstance(dtype, np.dtype):
            return {"c": "complex", "b": "number", "i": "number", "u": "number", "f": "number"}.get(dtype.kind, "other")
    except ImportError:  # pragma: no cover
        pass
    from ._backend import array_namespace

    try:
        xp = array_namespace(array)
        if xp.isdtype(dtype, "complex floating"):
            return "complex"
        return "number" if xp.isdtype(dtype, ("bool", "integral", "real floating")) else "other"
    except (TypeError, ValueError, AttributeError):
        return "other"


def _refuse_non_real(array, *, name: str, what: str):
    """Refuse a complex or non-numeric (str, bytes, object) ``array``, naming ``name`` and ``what`` it holds."""
    kind = _dtype_kind(array)
    if kind == "complex":
        raise TypeError(f"{name} must be real ({what}), got complex dtype {array.dtype}: pass the real values "
                        f"({name}.real, or abs({name}) for magnitudes)")
    if kind == "other":
        raise TypeError(f"{name} must hold numbers ({what}), got dtype {array.dtype}: pass "
                        f"{name}.astype(float) if it holds numbers as text or Python objects")


def mask_data(mask):
    """``mask=`` as plain weights: a masked array's masked entries 0 (missing), its other entries their values.

    The one rule for a masked-array ``mask=`` (:func:`_as_weights`, :func:`xrfgpu.dask.restore`): a masked
    entry is a pixel whose weight is unknown, so it is left out like a missing one. An ndarray subclass
    (``numpy.matrix``) becomes a plain ndarray (:func:`plain_array`); anything else comes back unchanged.
    The values are checked by the caller (shape, dtype, [0, 1]).
    """
    masked = _host_masked(mask)
    if masked is None:
        return plain_array(mask)
    import numpy as np

    data, hidden = masked
    data = plain_array(data)
    if _dtype_kind(data) != "number":
        return data  # refused by the caller, in the same words as any other array of that dtype
    return np.where(hidden, np.zeros((), dtype=data.dtype), data)


def background_data(background, *, name: str = "background"):
    """A background array's plain data, before any conversion: refuse what has no real value at every pixel.

    A masked array with masked entries is refused, naming them (their values used to be subtracted as if
    measured); one masking nothing is its data. A complex dtype is refused (its imaginary part used to be
    dropped with only a ComplexWarning), and so is one that holds no numbers (str, object). An ndarray
    subclass (``numpy.matrix``) becomes a plain ndarray. The values (finite, >= 0) are checked by
    :func:`as_background`.

    Parameters
    ----------
    background : array or numpy.ma.MaskedArray
        A background map or a 0-d value, of any namespace (a Dask array's dtype is read, not its values).
    name : str
        Argument name for the message.

    Returns
    -------
    array

    Raises
    ------
    TypeError
        A complex dtype, or one that is not a number.
    ValueError
        A masked array with masked entries.
    """
    data = _data_refusing_masked_entries(
        background, name=name,
        why="a background is subtracted at every pixel, and a masked pixel has no value",
        fix=f"pass {name}.filled(value) with the background there (e.g. its neighbours' level), or a number")
    _refuse_non_real(data, name=name, what="counts per pixel")
    return data


def psf_data(psf, *, name: str = "psf"):
    """``psf``'s plain data, before any conversion: refuse one with masked entries.

    A PSF is used at every entry (it is normalised over all of them and convolved whole); a masked entry
    has no value to use. ``as_psf`` used to take the data under the mask (a masked hot entry blurred the
    map as if it were there). A masked array masking nothing is its data; an ndarray subclass
    (``numpy.matrix``) becomes a plain ndarray (:func:`plain_array`).

    Parameters
    ----------
    psf : array or numpy.ma.MaskedArray
    name : str
        Argument name for the message.

    Returns
    -------
    array
        ``psf``, its plain ndarray view, or the data of a masked array with nothing masked.

    Raises
    ------
    ValueError
        A masked array with at least one masked entry, naming the first few.
    """
    return _data_refusing_masked_entries(
        psf, name=name, why="a PSF is normalised and convolved over every entry, and a masked one has no value",
        fix=f"pass {name}.filled(0) where no intensity reaches, or the complete kernel")


def fit_input(image, *, name: str, what: str):
    """``image`` as the PSF fits take it: no masked pixels, real numbers, a plain array.

    :func:`xrfgpu.psf.fit_dot`, :func:`~xrfgpu.psf.fit_disk_spot`, :func:`~xrfgpu.psf.fit_knife_edge` and
    :func:`~xrfgpu.psf.sigma_from_kernel` fit every pixel as a real intensity. Complex input used to be fitted
    by its real part by two of them and refused by the other two; text (``a.astype(str)``) was parsed as
    numbers by all four.

    Parameters
    ----------
    image : array or numpy.ma.MaskedArray
    name : str
        Argument name for the message.
    what : str
        What refuses it (``"fit_dot"``), for the message.

    Returns
    -------
    array
        ``image``, or the data of a masked array that masks nothing, as a plain ndarray if it was a NumPy
        subclass.

    Raises
    ------
    ValueError
        A masked array with masked entries.
    TypeError
        A complex dtype, or one that is not a number (str, bytes, object).
    """
    # the fits used to take numpy.asarray of a masked array, which drops the mask: the masked pixels were fitted
    # as data (four masked hot pixels in a real Cr particle's window moved fit_dot's σ from 4.3 to 1.4 px)
    data = _data_refusing_masked_entries(
        image, name=name, noun="pixel", why=f"{what} fits every pixel it is given and cannot leave masked ones out",
        fix=f"crop the map away from them, or pass {name}.filled(value) with a value that belongs there")
    _refuse_non_real(data, name=name, what=f"the intensities that {what} fits")
    return data


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
    masked = _host_masked(image)
    if masked is not None:
        data, hidden = masked
        if bool(hidden.any()):
            raise TypeError(
                f"{name} is a masked array with {int(hidden.sum())} masked pixels, which this function does not "
                f"take: fill the masked pixels first ({name}.filled(value)); xrfgpu.restore, richardson_lucy, "
                "fista, wiener and tikhonov take one map as a masked array and leave its masked pixels out"
            )
        image = data  # a masked array that masks nothing is its data (it used to be refused all the same)
    image = plain_array(image)  # numpy.matrix, memmap: a plain ndarray view
    _check_shape(image, name=name, allow_batch=allow_batch)
    _refuse_non_real(image, name=name, what="counts or concentrations")
    dtype = working_dtype(xp, image.dtype)
    out = xp.astype(image, dtype, copy=False)
    if not bool(xp.all(xp.isfinite(out))):
        where = ""
        if out.ndim == 3:  # a stack: say which maps, as the other stack errors do
            bad = [str(k) for k in range(out.shape[0]) if not bool(xp.all(xp.isfinite(out[k, ...])))]
            where = f" (map{'s' if len(bad) > 1 else ''} {', '.join(bad)})"
        raise ValueError(
            f"{name}{where} contains NaN or infinite values, which this function does not take: fill them first; "
            "xrfgpu.restore, richardson_lucy, fista, wiener and tikhonov (one map), restore_stack (joint=True "
            "too) and xrfgpu.dask.restore take NaN pixels and leave them out as missing"
        )
    return out


def _check_shape(image, *, name, allow_batch=False):
    """Refuse a shape that is no map (no stack of maps where ``allow_batch``), with what to pass instead.

    ``allow_batch`` (a stack: :func:`xrfgpu.restore_stack`, the joint restoration) lets 2-D arrays through
    to the caller, which refuses them in its own words (one map goes to the single-map functions); its
    message asks for what it takes, a 3-D stack.
    """
    ndims = (2, 3) if allow_batch else (2,)
    if image.ndim not in ndims:
        want = "3-D (maps, rows, columns)" if allow_batch else "2-D (rows, columns)"
        shape = tuple(image.shape)
        if image.ndim < 2:
            hint = ("; a map has rows and columns: pass a 2-D array (a flattened map reshaped, "
                    f"{name}.reshape(rows, columns))" if image.ndim == 1 else "; a single number is no map")
        elif allow_batch:
            hint = ("; it has length-1 axes: pass numpy.squeeze of it, or reshape it to (maps, rows, columns)"
                    if 1 in shape[:-2] else "")
        elif image.ndim == 3 and 1 in (shape[0], shape[-1]):
            # one map as a reader may hand it over: a one-page stack (1, rows, cols) or one channel (rows, cols, 1)
            index = f"{name}[0]" if shape[0] == 1 else f"{name}[..., 0]"
            hint = f"; it holds one map: pass {index}"
        elif image.ndim == 3:
            hint = "; restore a stack of element maps with xrfgpu.restore_stack"
        else:
            hint = ""
        raise ValueError(f"{name} must be {want}, got shape {shape}{hint}")
    if any(n == 0 for n in image.shape):
        raise ValueError(f"{name} is empty (shape {tuple(image.shape)})")
    if image.shape[-1] < 2 or image.shape[-2] < 2:
        raise ValueError(f"{name} must have at least 2 pixels along each axis, got shape {tuple(image.shape)}")


def as_image_with_weights(image, mask=None, *, xp, name: str = "image"):
    """Return ``(map, weights)``: missing pixels marked by weight 0 and filled with 0.

    Missing pixels are the masked entries of a NumPy masked array, NaN
    pixels, and pixels where ``mask`` is 0 (False). Without any of them
    ``weights`` is None and the map is exactly what :func:`as_image`
    returns, so the solvers run their unweighted code.

    Parameters
    ----------
    image : array or numpy.ma.MaskedArray, shape (rows, cols)
        Observed map; NaN marks a missing pixel.
    mask : array, shape (rows, cols), optional
        Weights in [0, 1]: 1 (True) where the pixel was measured and is to be
        used, 0 (False) where it is missing (a dead pixel, a detector
        drop-out, a beam dump). Note the sense: a *weight*, the opposite of
        ``numpy.ma``'s mask, where True marks the missing pixels. A masked
        array as ``mask`` is read by :func:`mask_data`: its masked entries are
        weight 0, its other entries their values.
    xp : namespace
    name : str

    Returns
    -------
    image : array
        Working dtype, missing pixels set to 0.
    weights : array or None
        Same shape and dtype, 0 at missing pixels.

    Raises
    ------
    TypeError
        Not an array, complex map, non-numeric mask.
    ValueError
        Infinite values, a mask of another shape or outside [0, 1], or no
        measured pixel at all.
    """
    if not _is_array(image):
        raise TypeError(f"{name} must be an array, got {type(image).__name__}")
    missing = None
    masked = _host_masked(image)
    if masked is not None:
        data, missing = masked
        image = xp.asarray(plain_array(data))
        missing = xp.asarray(missing)
        if not bool(xp.any(missing)):
            missing = None
    image = plain_array(image)  # numpy.matrix, memmap: a plain ndarray view
    _check_shape(image, name=name)
    _refuse_non_real(image, name=name, what="counts or concentrations")
    dtype = working_dtype(xp, image.dtype)
    y = xp.astype(image, dtype, copy=False)
    # two reductions decide the common case (no NaN, no inf) without map-sized boolean temporaries
    low, high = (float(xp.min(y)), float(xp.max(y))) if y.size else (0.0, 0.0)
    weights = None
    if mask is not None:
        weights = _as_weights(mask, y, xp=xp)
    if not (math.isfinite(low) and math.isfinite(high)):
        inf = xp.isinf(y)
        # an infinite value is refused where it would be read, not at a pixel already marked missing (a masked
        # entry, mask weight 0: map / I0 at I0 = 0, masked by the user)
        if missing is not None:
            inf = inf & ~missing
        if weights is not None:
            inf = inf & (weights > 0)
        if bool(xp.any(inf)):
            raise ValueError(f"{name} contains infinite values at pixels not marked missing; mark them as NaN or "
                             "with mask= (weight 0)")
        nan = xp.isnan(y)
        if bool(xp.any(nan)):
            missing = nan if missing is None else (missing | nan)
    if missing is not None:
        keep = xp.astype(~missing, dtype)
        weights = keep if weights is None else weights * keep
    if weights is None:
        return y, None
    if not bool(xp.any(weights > 0)):
        raise ValueError(f"every pixel of {name} is missing (masked, NaN or weight 0): there is nothing to restore")
    y = xp.where(weights > 0, y, xp.zeros_like(y))
    return y, weights


def _as_weights(mask, image, *, xp, name="mask"):
    """``mask=`` as plain weights in ``image``'s namespace, dtype and device, checked to lie in [0, 1].

    One rule for every solver: a NumPy ndarray subclass (``numpy.matrix``, whose ``*`` is a matrix
    product) is read as a plain ndarray, and a masked array's masked entries are weight 0 (missing), its
    other entries their values. Before, both were kept as they were, and each solver read them its own way
    (a matrix mask made :func:`xrfgpu.wiener` 86 times too bright; a masked-array mask restored FISTA's
    missing pixels from the values under the mask).

    Raises
    ------
    TypeError
        Not an array, complex or non-numeric weights.
    ValueError
        Another shape than the image's, NaN or inf, weights outside [0, 1].
    """
    if not _is_array(mask):
        raise TypeError(f"{name} must be an array of weights (1 = measured, 0 = missing), got {type(mask).__name__}")
    from ._problem import as_namespace

    m = as_namespace(mask_data(mask), xp, array_device(image))
    if tuple(m.shape) != tuple(image.shape):
        raise ValueError(f"{name} has shape {tuple(m.shape)} but the image has shape {tuple(image.shape)}")
    if xp.isdtype(m.dtype, "complex floating"):
        raise TypeError(f"{name} must be real weights, got dtype {m.dtype}")
    if not xp.isdtype(m.dtype, ("bool", "integral", "real floating")):
        raise TypeError(f"{name} must hold numbers or booleans, got dtype {m.dtype}")
    w = xp.astype(m, image.dtype)
    if not bool(xp.all(xp.isfinite(w))):
        raise ValueError(f"{name} contains NaN or infinite values; it holds weights in [0, 1]")
    if bool(xp.any(w < 0)) or bool(xp.any(w > 1)):
        raise ValueError(f"{name} must hold weights in [0, 1] (1 = measured pixel, 0 = missing), "
                         f"got values in [{float(xp.min(w))}, {float(xp.max(w))}]")
    return w


def as_psf(psf, image_shape, *, xp, dtype, device=None, name: str = "psf"):
    """Return the PSF normalised to unit sum, in ``dtype``.

    A NumPy masked array masking nothing is taken as its data, and an ndarray subclass
    (``numpy.matrix``) as a plain ndarray (:func:`psf_data`).

    Raises
    ------
    TypeError
        Not an array; a complex dtype, or one that holds no numbers (str, object).
    ValueError
        If the PSF is not 2-D, is larger than the map, has negative or
        non-finite entries, sums to zero, or is a masked array with masked entries.
    """
    if not _is_array(psf):
        raise TypeError(f"{name} must be an array, got {type(psf).__name__}")
    psf = psf_data(psf, name=name)  # masked entries refused; numpy.matrix as a plain ndarray
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
    if _dtype_kind(psf) == "complex":
        raise TypeError(f"{name} must be real, got dtype {psf.dtype}")
    _refuse_non_real(psf, name=name, what="the blur spot's intensities")
    h = xp.astype(psf, dtype, copy=True)
    if device is not None:
        h = xp.asarray(h, device=device)
    if not bool(xp.all(xp.isfinite(h))):
        raise ValueError(f"{name} contains NaN or infinite values")
    if bool(xp.any(h < 0)):
        raise ValueError(f"{name} has negative entries; a PSF is a non-negative intensity distribution")
    peak = float(xp.max(h))
    if not peak > 0:
        raise ValueError(f"{name} sums to zero; it must carry some intensity")
    if not (2.0**-60 <= peak <= 2.0**60):
        # entries near the float limits (1e38, subnormals): bring the peak to 1 first, by an exact
        # power of two, so that the sum neither overflows nor underflows
        h = times_power_of_two(h, -math.frexp(peak)[1])
    total = float(xp.sum(h))
    return h / total


def as_background(background, image, *, xp, name: str = "background"):
    """Return the background as a Python float or a map like ``image``.

    A NumPy masked array masking nothing is taken as its data, and an ndarray subclass
    (``numpy.matrix``) as a plain ndarray.

    Raises
    ------
    TypeError
        Not a number or an array; a complex value or dtype (its imaginary part used to be dropped with
        only a ComplexWarning), or an array that holds no numbers (str, object).
    ValueError
        Non-finite or negative background, a map of another shape, or a masked array with masked
        entries (their values used to be subtracted as if measured).
    """
    if isinstance(background, complex) and not isinstance(background, numbers.Real):
        raise TypeError(f"{name} must be a real number of counts, got {background!r}: pass its real part "
                        f"({background.real!r}) if the imaginary part is a by-product")
    if _is_array(background):
        background = background_data(background, name=name)
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
    low = float(xp.min(image)) if image.size else 0.0
    if low < 0 or (low != low and bool(xp.any(image < 0))):  # NaN (missing pixels): look at each value
        raise ValueError(
            f"image has negative values, but {what} models Poisson counts (>= 0). "
            "Pass the raw counts and give the offset as `background=`, or clip the map at 0 first"
        )


def times_power_of_two(a, k: int):
    """``a · 2**k``, exact (no rounding) while the result stays in range.

    Steps of at most 2**100 keep every factor representable in float32.
    """
    while k:
        step = max(-100, min(100, k))
        a = a * (2.0**step)
        k -= step
    return a
