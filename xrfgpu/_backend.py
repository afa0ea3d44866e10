"""Backend adapter: array namespaces, devices, dtypes and the FFT.

Every algorithm in xrfgpu is written once against the Python array API.
This module is the only place that knows which library stands behind a
namespace:

* NumPy arrays get their real FFTs and DCTs from ``ducc0.fft`` (the
  successor of the pocketfft inside :mod:`scipy.fft`, by the same author),
  multi-threaded and writing into caller-owned buffers; where ducc0 is not
  installed, or ``XRFGPU_FFT_LIBRARY=scipy`` is set, from :mod:`scipy.fft`
  (multi-threaded through ``workers``). Both keep float32 as complex64 and
  give the same numbers to rounding; ducc0 was measured faster (1120², 2
  cores: an rfft2 + irfft2 pair 3.4 ms against 5.4 ms; see
  ``benchmarks/bench_fft_libraries.py``); ducc0 also provides the 1-D
  line convolutions of the separable engine (:func:`convolve_axis`);
* CuPy arrays use ``cupy.fft`` (cuFFT) through the namespace itself;
* any other namespace (``array_api_strict`` in the tests) uses ``xp.fft``.

The algorithms never branch on the library; they call :func:`rfft2` and
:func:`irfft2` and the fused elementwise helpers of
:mod:`xrfgpu._elementwise`.
"""

from __future__ import annotations

import os

import numpy as np
from array_api_compat import (
    array_namespace as _compat_array_namespace,
    device as array_device,
    is_cupy_namespace,
    is_numpy_namespace,
)

__all__ = [
    "array_namespace",
    "array_device",
    "is_numpy_namespace",
    "is_cupy_namespace",
    "working_dtype",
    "clip_below",
    "rfft2",
    "irfft2",
    "fft_workers",
    "fft_library",
    "to_numpy",
    "fft_size",
    "is_slow_fft_length",
    "has_dct",
    "dct2",
    "idct2",
    "has_axis_convolution",
    "convolve_axis",
]

_WORKERS = int(os.environ.get("XRFGPU_FFT_WORKERS", "-1"))


def _how_to_make_an_array(value) -> str:
    """What to do with a value that is not an array, in the words of the library that made it."""
    kind = type(value)
    module = kind.__module__.split(".")[0]
    if module == "h5py":
        return (f"an h5py {kind.__name__} is a view of a file, not an array: read it into memory first, "
                "dataset[()] for all of it or dataset[i] for one map")
    if module == "zarr":
        return f"a zarr {kind.__name__} is stored, not in memory: read it first (array[...]), or use xrfgpu.dask"
    if module == "PIL":
        return f"a PIL image ({kind.__name__}) is not an array: pass numpy.asarray(image)"
    if callable(getattr(value, "to_numpy", None)):  # pandas DataFrame (a map read with pandas.read_csv), xarray
        return f"a {module} {kind.__name__} is not an array: pass its values, value.to_numpy()"
    if isinstance(value, (list, tuple)):
        return (f"a {kind.__name__} is not an array: pass numpy.asarray(values) for one map, "
                "or numpy.stack(maps) for maps of one shape")
    return f"{kind.__module__}.{kind.__name__} is not an array xrfgpu computes on (NumPy, CuPy or any array-API array)"


def array_namespace(*arrays, **kwargs):
    """:func:`array_api_compat.array_namespace`, refusing a non-array in the user's terms.

    array-api-compat says "Dataset is not a supported array type"; an h5py dataset, a zarr array,
    a PIL image or a list handed to a public function gets a :class:`TypeError` that says what to
    pass instead (``dataset[()]``, ``numpy.asarray(...)``).
    """
    try:
        return _compat_array_namespace(*arrays, **kwargs)
    except TypeError as exc:
        for value in arrays:
            if value is None or isinstance(value, (int, float, complex, bool)):
                continue
            try:
                _compat_array_namespace(value)
            except TypeError:
                raise TypeError(_how_to_make_an_array(value)) from exc
        raise


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def _choose_fft_library() -> str:
    wanted = os.environ.get("XRFGPU_FFT_LIBRARY", "").strip().lower()
    if wanted not in ("", "ducc0", "scipy"):
        raise ValueError(f"XRFGPU_FFT_LIBRARY must be 'ducc0' or 'scipy', got {wanted!r}")
    if wanted == "scipy":
        return "scipy"
    try:
        import ducc0  # noqa: F401
    except ImportError:
        if wanted == "ducc0":
            raise ImportError("XRFGPU_FFT_LIBRARY=ducc0 but ducc0 is not installed (pip install ducc0)") from None
        return "scipy"
    return "ducc0"


_LIBRARY = _choose_fft_library()


def fft_workers() -> int:
    """Number of threads the NumPy path's FFTs use (``-1``: all cores).

    Set the environment variable ``XRFGPU_FFT_WORKERS`` to change it.
    """
    return _WORKERS


def fft_library() -> str:
    """The library behind the NumPy path's FFTs: ``"ducc0"`` or ``"scipy"``.

    ducc0 when it is installed, unless the environment variable
    ``XRFGPU_FFT_LIBRARY=scipy`` asks for :mod:`scipy.fft`.
    """
    return _LIBRARY


def _threads() -> int:
    return _usable_cores() if _WORKERS < 0 else max(_WORKERS, 1)


def _ducc_ready(x) -> bool:
    return _LIBRARY == "ducc0" and x.dtype in (np.float32, np.float64, np.complex64, np.complex128)


def is_float64(dtype) -> bool:
    """Whether ``dtype`` is a 64-bit float in any byte order.

    ``numpy.dtype(">f8") == numpy.float64`` is False: a big-endian float64 map (an HDF5 dataset or
    a TIFF written big-endian, read by h5py or tifffile) was restored in float32.
    """
    return getattr(dtype, "kind", None) == "f" and getattr(dtype, "itemsize", None) == 8


def clip_below(x, low, *, xp):
    """``max(x, low)`` elementwise, in ``x``'s dtype: ``xp.clip(x, min=low)``.

    On CuPy by CuPy's own ``maximum`` (the same values, NaN included): array-api-compat's ``clip``
    checks shapes and dtypes and copies on every call, about 0.4 ms at 1024² on an H200 (cProfile of
    ``xrfgpu.restore`` on CuPy, 2026-11-27: 230 calls, 88 ms, in the cross-validated stop's iterations).

    Parameters
    ----------
    x : array
        Real floating-point array.
    low : float
        Lower bound, in ``x``'s units.
    xp : namespace
        The array namespace of ``x``.
    """
    if is_cupy_namespace(xp):
        return xp.maximum(x, low)
    return xp.clip(x, min=low)


def working_dtype(xp, dtype):
    """Floating dtype in which a map of ``dtype`` is restored.

    float64 stays float64 (in either byte order); float32, float16 and
    every integer or boolean count map become float32 (the working precision).

    Raises
    ------
    TypeError
        For complex input, which is not a count map.
    """
    if xp.isdtype(dtype, "complex floating"):
        raise TypeError(f"complex arrays are not count maps (got dtype {dtype}); pass a real map")
    if dtype == xp.float64 or is_float64(dtype):
        return xp.float64
    if xp.isdtype(dtype, ("real floating", "integral", "bool")):
        return xp.float32
    raise TypeError(f"unsupported dtype {dtype}: expected a real (float or integer) map")


def rfft2(x, *, xp, s=None, out=None):
    """Real FFT over the last two axes (``s``: canvas shape, zero-padded).

    ``out`` (NumPy with ducc0 only; ignored elsewhere) is a complex buffer
    of the result's shape to write into.
    """
    if is_numpy_namespace(xp):
        if _ducc_ready(x):
            import ducc0

            if s is not None and tuple(s) != tuple(x.shape[-2:]):
                padded = np.zeros(x.shape[:-2] + tuple(s), dtype=x.dtype)
                padded[..., : x.shape[-2], : x.shape[-1]] = x
                x = padded
            return ducc0.fft.r2c(x, axes=(-2, -1), out=out, nthreads=_threads())
        import scipy.fft

        return scipy.fft.rfftn(x, s=s, axes=(-2, -1), workers=_WORKERS)
    if s is None:
        s = tuple(x.shape[-2:])
    return xp.fft.rfftn(x, s=tuple(s), axes=(-2, -1))


def irfft2(X, shape, *, xp, out=None, overwrite=False):
    """Inverse real FFT over the last two axes, to real ``shape`` (rows, cols).

    ``out`` (NumPy with ducc0 only) is a real buffer to write into;
    ``overwrite=True`` lets the transform use ``X`` as scratch (saves a copy).
    """
    if is_numpy_namespace(xp):
        if _ducc_ready(X):
            import ducc0

            return ducc0.fft.c2r(X, axes=(-2, -1), forward=False, lastsize=int(shape[-1]), inorm=2, out=out,
                                 nthreads=_threads(), allow_overwriting_input=bool(overwrite))
        import scipy.fft

        return scipy.fft.irfftn(X, s=tuple(shape), axes=(-2, -1), workers=_WORKERS, overwrite_x=bool(overwrite))
    if overwrite and is_cupy_namespace(xp):
        import cupyx.scipy.fft

        # C2R transforms destroy their input anyway; without overwrite_x CuPy copies it first
        return cupyx.scipy.fft.irfftn(X, s=tuple(shape), axes=(-2, -1), overwrite_x=True)
    return xp.fft.irfftn(X, s=tuple(shape), axes=(-2, -1))


def has_axis_convolution(xp, dtype) -> bool:
    """Whether :func:`convolve_axis` serves arrays of ``dtype`` in namespace ``xp`` (NumPy with ducc0)."""
    return is_numpy_namespace(xp) and _LIBRARY == "ducc0" and np.dtype(dtype) in (np.float32, np.float64)


def convolve_axis(x, kernel, axis):
    """Circular convolution of every line of ``x`` along ``axis`` with ``kernel``, in place.

    ``x[..., j, ...] ← Σ_m x[..., m, ...] · kernel[(j − m) mod N]`` with N =
    ``x.shape[axis] == len(kernel)``: one ducc0 call that transforms, multiplies
    by the kernel's spectrum and transforms back, line by line, without a 2-D
    spectrum in memory (:func:`ducc0.fft.convolve_axis`). ``x`` may be a strided
    view; NumPy with ducc0 only (see :func:`has_axis_convolution`).
    """
    import ducc0

    return ducc0.fft.convolve_axis(x, x, axis, kernel, nthreads=_threads())


def has_dct(xp) -> bool:
    """Whether the namespace has a fast DCT-II behind it (NumPy via scipy.fft, CuPy via cupyx)."""
    return is_numpy_namespace(xp) or is_cupy_namespace(xp)


# a row stride that is a multiple of this many bytes makes the column transforms hit the same cache sets
_ALIASING_STRIDE = 2048
_STRIDE_PAD_BYTES = 64


def _unaliased_copy(x):
    """A copy of ``x`` in a buffer whose rows are 64 bytes longer, or None when its rows do not alias.

    The transform along the strided (rows) axis reads one element per row;
    when a row is a multiple of 2 KiB (a 1024-column float32 map: 4 KiB)
    those elements fall into the same few cache sets and evict each other.
    Measured with ducc0 on 2 cores (float32, DCT-II of the whole map): 1024²
    3.0 → 1.3 ms, 2048² 15.2 → 6.5–7.0 ms including this copy; 768² gained
    nothing, so other widths are left alone. The result is a strided view.
    """
    cols = x.shape[-1]
    if x.ndim < 2 or cols < 256 or (cols * x.itemsize) % _ALIASING_STRIDE:
        return None
    pad = _STRIDE_PAD_BYTES // x.itemsize
    buf = np.empty(x.shape[:-1] + (cols + pad,), dtype=x.dtype)
    work = buf[..., :cols]
    work[...] = x
    return work


def _ducc_dct(x, **kwargs):
    """ducc0 DCT over the last two axes, in place on an unaliased copy when the rows alias."""
    import ducc0

    work = _unaliased_copy(x)
    if work is not None:
        return ducc0.fft.dct(work, axes=(-2, -1), out=work, nthreads=_threads(), **kwargs)
    return ducc0.fft.dct(x, axes=(-2, -1), nthreads=_threads(), **kwargs)


def dct2(x, *, xp):
    """DCT-II over the last two axes, unnormalised (NumPy: scipy.fft; CuPy: cupyx.scipy.fft).

    :func:`idct2` is its exact inverse. The blur's DCT eigenvalues are the
    same for this pair as for the orthonormal one (the normalisations are
    diagonal and cancel), and skipping them saves a pass per transform.
    """
    if is_numpy_namespace(xp):
        if _ducc_ready(x):
            return _ducc_dct(x, type=2)
        import scipy.fft

        return scipy.fft.dctn(x, type=2, axes=(-2, -1), workers=_WORKERS)
    if is_cupy_namespace(xp):
        import cupyx.scipy.fft

        return cupyx.scipy.fft.dctn(x, type=2, axes=(-2, -1))
    raise TypeError(f"no DCT for namespace {xp.__name__}")


def idct2(X, *, xp):
    """Inverse of :func:`dct2`."""
    if is_numpy_namespace(xp):
        if _ducc_ready(X):
            # DCT-III scaled by 1/(2n) per axis is the exact inverse of the unnormalised DCT-II
            return _ducc_dct(X, type=3, inorm=2)
        import scipy.fft

        return scipy.fft.idctn(X, type=2, axes=(-2, -1), workers=_WORKERS)
    if is_cupy_namespace(xp):
        import cupyx.scipy.fft

        return cupyx.scipy.fft.idctn(X, type=2, axes=(-2, -1))
    raise TypeError(f"no DCT for namespace {xp.__name__}")


def to_numpy(x):
    """Copy any array-API array to a NumPy array on the host."""
    xp = array_namespace(x)
    if is_numpy_namespace(xp):
        return np.asarray(x)
    if is_cupy_namespace(xp):
        return x.get()
    try:
        return np.from_dlpack(x)
    except Exception:  # pragma: no cover - namespaces without DLPack to CPU
        return np.asarray(x)


def smooth_sizes(limit: int, extra_factors=(1,)) -> list[int]:
    """Sorted numbers ≤ ``limit`` of the form 2^a 3^b 5^c 7^d · f, f in ``extra_factors``."""
    sizes = set()
    p2 = 1
    while p2 <= limit:
        p3 = p2
        while p3 <= limit:
            p5 = p3
            while p5 <= limit:
                p7 = p5
                while p7 <= limit:
                    sizes.update(p7 * f for f in extra_factors if p7 * f <= limit)
                    p7 *= 7
                p5 *= 5
            p3 *= 3
        p2 *= 2
    return sorted(sizes)


def is_slow_fft_length(n: int) -> bool:
    """Whether ``n`` is a power of two of at least 512, whose transforms run slow on the CPUs we measured.

    Their strides alias in the cache: 2048² took 43 ms per real FFT pair
    against 39 ms for 2160², 1024² 8.2 ms against 7.1 ms for 1152², and a
    DCT-II pair of 1024² cost about 1.5× one of 1120² (scipy.fft, 2 cores).
    """
    n = int(n)
    return n >= 512 and (n & (n - 1)) == 0


def fft_size(n: int) -> int:
    """Smallest fast real-FFT length of at least ``n`` samples.

    The length is even and 7-smooth (2^a 3^b 5^c 7^d). Powers of two from
    512 on are skipped: they run slower than the next mixed-radix length
    (:func:`is_slow_fft_length`).
    """
    n = int(n)
    if n <= 2:
        return 2
    for m in smooth_sizes(2 * n + 64):
        if m < n or m % 2:
            continue
        if is_slow_fft_length(m):
            continue
        return m
    return n + (n % 2)  # pragma: no cover - unreachable for n >= 1
