"""CUDA kernels for the hot elementwise steps, compiled at run time with CuPy.

The kernel sources live in the top-level ``kernels/`` directory of the
repository, which the wheel ships as the package ``xrfgpu._kernels``:

``xrfgpu_ops.cuh``
    The arithmetic, as inline functions marked ``__host__ __device__`` under
    nvcc/NVRTC and plain ``inline`` under a host compiler.
``rl.cu``, ``fista.cu``, ``l0.cu``, ``spectrum.cu``
    ``extern "C"`` kernels (grid-stride loops calling the header), one per
    step and dtype (suffix ``_f32`` / ``_f64``).

:func:`kernels` returns the kernel set that :mod:`xrfgpu._elementwise` calls
when the array namespace is CuPy. Nothing is compiled at import: each source
file is compiled by NVRTC (``cupy.RawModule``) the first time one of its
kernels runs on a device, once per device, and CuPy caches the binary on disk
(:func:`kernel_cache_dir`). The header text is prepended to every source with
``#line`` directives, so compiler messages name the original files and lines.

Every kernel computes exactly the numbers of the NumPy engine of
:mod:`xrfgpu._elementwise` (same roundings, no FMA contraction, denormals
kept); ``tests/test_kernels_host.py`` proves this by building the same ``.cu``
files with the host C++ compiler and comparing, and
``tests/test_kernels_nvcc.py`` compiles them with nvcc for sm_80 and sm_90.

Backends
--------
CuPy only; ``import xrfgpu.cuda`` works without CuPy or a GPU, and
:func:`kernels` raises :class:`xrfgpu.device.GPUUnavailableError` there.
"""

from __future__ import annotations

import functools
import importlib.resources
import os
import shutil
from pathlib import Path

__all__ = [
    "KERNEL_FILES",
    "HEADER",
    "kernels",
    "kernel_source",
    "kernel_dir",
    "kernel_cache_dir",
    "info",
    "CudaKernels",
    "real_fft_plans",
    "plan_on_work_area",
]

HEADER = "xrfgpu_ops.cuh"
# source file -> the kernel names it defines (without the dtype suffix)
KERNEL_FILES = {
    "rl.cu": ("xrfgpu_rl_ratio_scalar", "xrfgpu_rl_ratio_bcast", "xrfgpu_rl_update", "xrfgpu_rl_update_inplace",
              "xrfgpu_rl_update_rows"),
    "fista.cu": ("xrfgpu_fista_step_scalar", "xrfgpu_fista_step_bcast"),
    "l0.cu": ("xrfgpu_l0_intensity", "xrfgpu_l0_gradient_term", "xrfgpu_l0_solve"),
    "spectrum.cu": ("xrfgpu_multiply_spectrum",),
    "dct_spectrum.cu": ("xrfgpu_reflect_dct_filter", "xrfgpu_rl_ratio_makhoul", "xrfgpu_makhoul_unorder"),
    "rl_accel.cu": ("xrfgpu_rl_extrapolate_dev", "xrfgpu_rl_update_accel"),
    "reflect_canvas.cu": ("xrfgpu_reflect_embed", "xrfgpu_crop_ratio", "xrfgpu_reflect_fold"),
    "dtv.cu": ("xrfgpu_dtv_dual", "xrfgpu_dtv_primal", "xrfgpu_dtv_dual_ascent"),
    "separable_blur.cu": ("xrfgpu_blur_rows", "xrfgpu_blur_rows_warp", "xrfgpu_blur_cols", "xrfgpu_blur_cols_tile"),
}
# NVRTC options: IEEE division and square root, denormals kept, no FMA contraction
# (the header's intrinsics already forbid it; --fmad=false makes it hold for any
# expression a future kernel writes plainly).
COMPILE_OPTIONS = ("--std=c++17", "--fmad=false", "--ftz=false", "--prec-div=true")
_BLOCK = 256
# columns per thread of the kernels written with XRFGPU_COLUMN_LOOP (XRFGPU_GROUP in xrfgpu_ops.cuh)
_GROUP = 4
# output rows per thread of the real-space column pass (XRFGPU_STRIP in kernels/separable_blur.cu)
_STRIP = 16
# the warp row pass of kernels/separable_blur.cu: outputs per lane and the widest PSF half-width it takes
_ROW_STRIP = 17
_ROW_MAX_HALF = 64
# the tiled column pass of kernels/separable_blur.cu: warps per block (XRFGPU_COL_WARPS), columns per tile
# (XRFGPU_COL_WIDTH), output rows per warp by dtype (XRFGPU_COL_STRIP_F32/_F64), and the dynamic shared
# memory a launch may ask for without an opt-in attribute
_COL_WARPS = 8
_COL_WIDTH = 32
_COL_STRIP = {"float32": 8, "float64": 8}
_COL_TILE_MAX_BYTES = 48 * 1024


def _checkout_kernels():
    """The repository's ``kernels/`` next to the imported ``xrfgpu`` package, or None (an installed wheel)."""
    here = Path(__file__).resolve().parent.parent / "kernels"
    return here if (here / HEADER).is_file() else None


def kernel_dir() -> Path:
    """Directory holding the kernel sources.

    The repository's ``kernels/`` next to the imported ``xrfgpu`` package when
    it is there (a source checkout: its kernels are the ones this code was
    written with, even where the environment has another checkout installed
    in editable mode, whose ``xrfgpu._kernels`` maps to that checkout's
    files), else the installed package ``xrfgpu._kernels``.
    """
    here = _checkout_kernels()
    if here is not None:
        return here
    try:
        root = importlib.resources.files("xrfgpu._kernels")
        if root.joinpath(HEADER).is_file():
            return Path(str(root))
    except ModuleNotFoundError:  # pragma: no cover - only in a broken install
        pass
    raise FileNotFoundError(  # pragma: no cover - only in a broken install
        f"CUDA kernel sources ({HEADER}) not found next to the xrfgpu package nor in xrfgpu._kernels; "
        "reinstall xrfgpu"
    )


def _read(name: str) -> str:
    here = _checkout_kernels()
    if here is not None:
        return (here / name).read_text(encoding="utf-8")
    try:
        text = importlib.resources.files("xrfgpu._kernels").joinpath(name).read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        text = (kernel_dir() / name).read_text(encoding="utf-8")
    return text


def kernel_source(name: str) -> str:
    """Full NVRTC source of one kernel file: the header, then the file, with ``#line`` markers.

    The ``.cu`` files include the header only when ``XRFGPU_OPS_CUH`` is not
    yet defined, so the prepended copy is the one compiled and NVRTC needs no
    include path.
    """
    if name not in KERNEL_FILES:
        raise ValueError(f"unknown kernel file {name!r}; expected one of {sorted(KERNEL_FILES)}")
    return f'#line 1 "{HEADER}"\n{_read(HEADER)}\n#line 1 "{name}"\n{_read(name)}'


def kernel_cache_dir() -> Path:
    """Where CuPy keeps compiled kernels (``CUPY_CACHE_DIR``, default ``~/.cupy/kernel_cache``)."""
    return Path(os.environ.get("CUPY_CACHE_DIR", Path.home() / ".cupy" / "kernel_cache"))


def info() -> dict:
    """What the CUDA path would use here, for ``xrfgpu info``; compiles and allocates nothing.

    Returns
    -------
    dict
        ``cupy`` (version or None), ``gpu`` (a short description or the
        reason none is usable), ``kernel_dir``, ``kernel_files``,
        ``kernel_cache_dir``, ``nvcc`` (path or None), ``compile_options``.
    """
    from .device import gpu_status

    try:
        import cupy

        cupy_version = cupy.__version__
    except Exception:
        cupy_version = None
    try:
        kdir = str(kernel_dir())
    except FileNotFoundError as exc:  # pragma: no cover
        kdir = f"missing: {exc}"
    return {
        "cupy": cupy_version,
        "gpu": gpu_status(),
        "kernel_dir": kdir,
        "kernel_files": sorted(KERNEL_FILES),
        "kernel_cache_dir": str(kernel_cache_dir()),
        "nvcc": shutil.which("nvcc"),
        "compile_options": list(COMPILE_OPTIONS),
    }


_SUFFIX = {"float32": "f32", "float64": "f64"}


class CudaKernels:
    """The fused kernels on the current CUDA device, called like :mod:`xrfgpu._elementwise`.

    Obtain it from :func:`kernels`. Every method takes CuPy arrays of float32
    or float64 (complex64/complex128 for spectra), overwrites the argument
    the NumPy engine documents as scratch, and returns the result. Arguments
    the kernels cannot take directly (other dtypes, shapes that do not
    broadcast the supported ways) fall back to the plain CuPy expression, so
    the methods accept everything the NumPy engine accepts.
    """

    def __init__(self, cupy, device_id: int):
        self._cp = cupy
        self.device_id = int(device_id)
        self._modules: dict[str, object] = {}
        self._functions: dict[tuple[str, str], object] = {}
        self._grid_limit = None

    # -- compilation -------------------------------------------------------
    def function(self, name: str, dtype):
        """The compiled kernel ``name`` for ``dtype`` (compiled on first use)."""
        suffix = _SUFFIX[str(self._cp.dtype(dtype))]
        key = (name, suffix)
        fn = self._functions.get(key)
        if fn is None:
            file = next(f for f, names in KERNEL_FILES.items() if name in names)
            module = self._modules.get(file)
            if module is None:
                module = self._cp.RawModule(code=kernel_source(file), options=COMPILE_OPTIONS)
                self._modules[file] = module
            fn = module.get_function(f"{name}_{suffix}")
            self._functions[key] = fn
        return fn

    BLOCK = _BLOCK
    GROUP = _GROUP
    STRIP = _STRIP
    ROW_STRIP = _ROW_STRIP
    ROW_MAX_HALF = _ROW_MAX_HALF

    def grid(self, n: int, share: int = 1) -> int:
        """Blocks for a grid-stride loop over ``n`` items: enough to cover them, at most 32 per SM
        (divided by ``share`` when a second grid dimension runs that many copies)."""
        if self._grid_limit is None:
            props = self._cp.cuda.runtime.getDeviceProperties(self.device_id)
            self._grid_limit = 32 * int(props["multiProcessorCount"])
        return max(1, min((int(n) + _BLOCK - 1) // _BLOCK, self._grid_limit // max(int(share), 1)))

    def grid_rows(self, row_items: int, rows: int, group: int = 1) -> tuple[int, int]:
        """Blocks (x, y) for a kernel that walks ``rows`` rows along the grid's second dimension
        (``XRFGPU_GRID_LOOP_Y``) and each row's ``row_items`` items along the first, ``group`` items
        per thread (``group=GROUP`` for ``XRFGPU_COLUMN_LOOP``): enough blocks to cover a row, and
        every row at once (up to CUDA's 65535), which measured faster than fewer rows at a time."""
        across = self.grid(-(-int(row_items) // max(int(group), 1)))
        return across, max(1, min(int(rows), 65535))

    COL_WARPS = _COL_WARPS
    COL_WIDTH = _COL_WIDTH
    COL_TILE_MAX_BYTES = _COL_TILE_MAX_BYTES

    def col_tile_rows(self, dtype) -> int:
        """Output rows per tile of the tiled column pass (``xrfgpu_blur_cols_tile``) for ``dtype``."""
        return _COL_WARPS * _COL_STRIP[str(self._cp.dtype(dtype))]

    def col_tile_bytes(self, taps: int, dtype) -> int:
        """Dynamic shared memory of one block of the tiled column pass for a ``taps``-tap PSF, in bytes:
        the tile's (rows + taps − 1) input rows of COL_WIDTH values, then the taps."""
        itemsize = self._cp.dtype(dtype).itemsize
        return ((self.col_tile_rows(dtype) + int(taps) - 1) * _COL_WIDTH + int(taps)) * itemsize

    def col_tile_grid(self, planes: int, rows: int, cols: int, dtype) -> tuple[int, int]:
        """Blocks (x, y) of the tiled column pass: a block per tile of COL_WIDTH columns along x, the row
        bands of every map along y (up to CUDA's 65535; the kernel's loops take the rest)."""
        bands = int(planes) * -(-int(rows) // self.col_tile_rows(dtype))
        return max(1, min(-(-int(cols) // _COL_WIDTH), 2**31 - 1)), max(1, min(bands, 65535))

    def _launch(self, fn, n: int, args):
        fn((self.grid(n),), (_BLOCK,), args)

    # -- helpers -------------------------------------------------------------
    def _real(self, *arrays):
        """True when all arrays are C-contiguous CuPy arrays of one real dtype the kernels take."""
        cp = self._cp
        dtype = arrays[0].dtype
        return all(
            isinstance(a, cp.ndarray) and a.dtype == dtype and a.flags.c_contiguous for a in arrays
        ) and str(dtype) in _SUFFIX

    def operand(self, value, like):
        """A broadcast operand (array, size, plane) for a scalar or an array, or None if unsupported.

        Supported: a scalar; an array whose shape is a suffix of ``like``'s
        (size = its size, plane = 1); an array of shape (n, 1, ..., 1) with
        ``n == like.shape[0]`` (size = n, plane = the size of one map).
        """
        cp = self._cp
        if not hasattr(value, "shape") or value.ndim == 0:
            return cp.full((1,), float(value), dtype=like.dtype), 1, 1
        if not isinstance(value, cp.ndarray):
            return None
        value = cp.ascontiguousarray(value.astype(like.dtype, copy=False))
        shape, target = tuple(value.shape), tuple(like.shape)
        trimmed = shape
        while trimmed and trimmed[0] == 1:
            trimmed = trimmed[1:]
        if trimmed == target[len(target) - len(trimmed):]:
            return value, max(value.size, 1), 1
        if len(shape) == len(target) and shape[0] == target[0] and all(s == 1 for s in shape[1:]):
            return value, shape[0], like.size // shape[0]
        return None

    # -- the steps -------------------------------------------------------------
    def multiply_spectrum(self, spectrum, transfer):
        """``spectrum · transfer`` in place over ``spectrum`` (transfer broadcast over leading axes)."""
        cp = self._cp
        ok = (
            isinstance(spectrum, cp.ndarray)
            and isinstance(transfer, cp.ndarray)
            and spectrum.dtype == transfer.dtype
            and spectrum.dtype in (cp.complex64, cp.complex128)
            and spectrum.flags.c_contiguous
            and transfer.flags.c_contiguous
            and transfer.ndim <= spectrum.ndim
            and tuple(transfer.shape) == tuple(spectrum.shape[spectrum.ndim - transfer.ndim:])
        )
        if not ok:
            return spectrum * transfer
        real = cp.float32 if spectrum.dtype == cp.complex64 else cp.float64
        fn = self.function("xrfgpu_multiply_spectrum", real)
        self._launch(fn, spectrum.size, (spectrum, transfer, spectrum.size, transfer.size))
        return spectrum

    def dct_twiddles(self, n):
        """Device table of :func:`xrfgpu._reflect_fft.dct_twiddles` for length ``n`` (kept per length)."""
        tables = self.__dict__.setdefault("_twiddles", {})
        table = tables.get(int(n))
        if table is None:
            from ._reflect_fft import dct_twiddles

            if len(tables) > 16:
                tables.clear()
            table = tables[int(n)] = self._cp.asarray(dct_twiddles(n))
        return table

    def reflect_dct_filter(self, spectrum, eigenvalues):
        """The reflect blur ``K`` on an rfft2 half spectrum of reordered maps, in place (:mod:`xrfgpu._reflect_fft`).

        ``spectrum`` is complex (..., n1, n2 // 2 + 1); ``eigenvalues`` real (n1, n2)
        or one plane per map (n, n1, n2). Returns None (the caller falls back to
        the array-API expression) for layouts the kernel does not take.
        """
        cp = self._cp
        n1, n2 = eigenvalues.shape[-2:]
        real = {cp.complex64: cp.float32, cp.complex128: cp.float64}.get(spectrum.dtype.type)
        planes = spectrum.size // max(n1 * (n2 // 2 + 1), 1)
        lam_planes = eigenvalues.size // max(n1 * n2, 1)
        ok = (
            real is not None
            and isinstance(spectrum, cp.ndarray)
            and isinstance(eigenvalues, cp.ndarray)
            and eigenvalues.dtype == real
            and spectrum.flags.c_contiguous
            and eigenvalues.flags.c_contiguous
            and tuple(spectrum.shape[-2:]) == (n1, n2 // 2 + 1)
            and lam_planes in (1, planes)
        )
        if not ok:
            return None
        fn = self.function("xrfgpu_reflect_dct_filter", real)
        tw1, tw2 = self.dct_twiddles(n1), self.dct_twiddles(n2)
        fn(self.grid_rows(n2 // 2 + 1, planes * (n1 // 2 + 1), group=_GROUP), (_BLOCK,),
           (spectrum, eigenvalues, eigenvalues, eigenvalues, 0, planes, n1, n2, lam_planes, 1.0, tw1, tw2))
        return spectrum

    def rl_ratio(self, data, blurred, background, eps):
        """``y / max(h⊛x + b, eps)`` over ``blurred``; b and eps scalars, maps or per-map values."""
        cp = self._cp
        if not (self._real(data, blurred) and data.shape == blurred.shape):
            return data / cp.maximum(blurred + background, eps)
        dtype = blurred.dtype.type
        scalar_b = not hasattr(background, "shape") or background.ndim == 0
        scalar_e = not hasattr(eps, "shape") or eps.ndim == 0
        if scalar_b and scalar_e:
            b = float(background)
            has_b = not (isinstance(background, float) and background == 0.0)
            fn = self.function("xrfgpu_rl_ratio_scalar", blurred.dtype)
            self._launch(fn, blurred.size, (data, blurred, blurred.size, dtype(b), dtype(eps), int(has_b)))
            return blurred
        b_op = self.operand(background, blurred)
        e_op = self.operand(eps, blurred)
        if b_op is None or e_op is None:
            return data / cp.maximum(blurred + background, eps)
        fn = self.function("xrfgpu_rl_ratio_bcast", blurred.dtype)
        self._launch(fn, blurred.size, (data, blurred, blurred.size, *b_op, *e_op))
        return blurred

    def rl_update(self, estimate, correction):
        """``x · c`` over ``correction``."""
        if not (self._real(estimate, correction) and estimate.shape == correction.shape):
            return estimate * correction
        fn = self.function("xrfgpu_rl_update", correction.dtype)
        self._launch(fn, correction.size, (estimate, correction, correction.size))
        return correction

    def fista_step(self, point, gradient, previous, step, threshold, momentum, nonneg):
        """One FISTA step; x_new over ``gradient``, returns ``(x_new, z_new)``."""
        cp = self._cp
        if not (self._real(point, gradient, previous) and point.shape == gradient.shape == previous.shape):
            return self._fista_plain(point, gradient, previous, step, threshold, momentum, nonneg)
        dtype = gradient.dtype.type
        z_new = cp.empty_like(gradient)
        scalar = all(not hasattr(v, "shape") or v.ndim == 0 for v in (step, threshold))
        if scalar:
            fn = self.function("xrfgpu_fista_step_scalar", gradient.dtype)
            args = (point, gradient, previous, z_new, gradient.size, dtype(step), dtype(threshold),
                    dtype(momentum), int(bool(nonneg)))
        else:
            s_op = self.operand(step, gradient)
            t_op = self.operand(threshold, gradient)
            if s_op is None or t_op is None:
                return self._fista_plain(point, gradient, previous, step, threshold, momentum, nonneg)
            fn = self.function("xrfgpu_fista_step_bcast", gradient.dtype)
            args = (point, gradient, previous, z_new, gradient.size, *s_op, *t_op, dtype(momentum),
                    int(bool(nonneg)))
        self._launch(fn, gradient.size, args)
        return gradient, z_new

    def _fista_plain(self, point, gradient, previous, step, threshold, momentum, nonneg):
        cp = self._cp
        v = point - step * gradient
        if nonneg:
            x_new = cp.maximum(v - threshold, 0)
        else:
            x_new = cp.copysign(cp.maximum(cp.abs(v) - threshold, 0), v)
        return x_new, x_new + momentum * (x_new - previous)

    def l0_intensity_threshold(self, image, t):
        """``S`` where ``S² ≥ t``, else 0 (a new array)."""
        cp = self._cp
        if not self._real(image):
            return cp.where(image * image < t, 0, image)
        out = cp.empty_like(image)
        fn = self.function("xrfgpu_l0_intensity", image.dtype)
        self._launch(fn, image.size, (image, out, image.size, image.dtype.type(t)))
        return out

    def l0_gradient_term(self, image, t):
        """``Dxᵀh + Dyᵀv`` with the joint L0 gradient threshold (a new array, last two axes are the map)."""
        cp = self._cp
        if not self._real(image) or image.ndim < 2:
            h = cp.roll(image, -1, axis=-1) - image
            v = cp.roll(image, -1, axis=-2) - image
            keep = (h * h + v * v) >= t
            h = cp.where(keep, h, 0)
            v = cp.where(keep, v, 0)
            return (cp.roll(h, 1, axis=-1) - h) + (cp.roll(v, 1, axis=-2) - v)
        rows, cols = image.shape[-2:]
        planes = image.size // max(rows * cols, 1)
        out = cp.empty_like(image)
        fn = self.function("xrfgpu_l0_gradient_term", image.dtype)
        self._launch(fn, image.size, (image, out, planes, rows, cols, image.dtype.type(t)))
        return out

    def dtv_dual(self, px, py, gx, gy, step):
        """The dTV projected dual step ``p ← (p + s g) / max(|p + s g|, 1)`` in one pass.

        Returns new arrays ``(px, py)`` (the inputs are left alone), or None when
        the arguments are not what the kernel takes (the caller then runs the
        array-API expression).
        """
        if not (self._real(px, py, gx, gy) and px.shape == py.shape == gx.shape == gy.shape):
            return None
        s_op = self.operand(step, px)
        if s_op is None:
            return None
        out_x, out_y = px.copy(), py.copy()
        fn = self.function("xrfgpu_dtv_dual", px.dtype)
        self._launch(fn, px.size, (out_x, out_y, gx, gy, px.size, *s_op))
        return out_x, out_y

    def _map_values(self, value, like, planes):
        """``(array, stride)`` of a per-map parameter (a scalar, or one value per map of shape
        ``(planes, 1, 1)``) for ``kernels/dtv.cu``, or None for anything else (or another dtype)."""
        cp = self._cp
        if not hasattr(value, "shape"):
            return cp.full((1,), float(value), dtype=like.dtype), 0
        if not isinstance(value, cp.ndarray) or value.dtype != like.dtype:
            return None
        if value.size == 1:
            return cp.ascontiguousarray(value.reshape(1)), 0
        if like.ndim == 3 and tuple(value.shape) == (planes, 1, 1):
            return cp.ascontiguousarray(value.reshape(planes)), 1
        return None

    def dtv_denoise(self, z, lam_w, xix, xiy, gamma, px, py, step, n_inner, rw=None, huber=None):
        """The dual iterations of :func:`xrfgpu.joint._weighted_dtv_denoise`, two kernels per step.

        Each of the ``n_inner`` steps launches ``xrfgpu_dtv_primal`` (``x = z + λw div(r P p)``)
        and ``xrfgpu_dtv_dual_ascent`` (``g = r P ∇x − δ p``, ``p ← (p + s g) / max(1, |p + s g|)``,
        ``p`` in place) of ``kernels/dtv.cu``; a last primal launch gives ``x`` at the final ``p``.

        Parameters
        ----------
        z, lam_w : cupy.ndarray, shape (m, rows, cols) or (rows, cols)
            The EM image and ``λ × w`` (map units).
        xix, xiy : cupy.ndarray, shape (rows, cols) or z's shape
            The direction field ξ (dimensionless, ``|ξ| ≤ 1``).
        gamma : float
            Coupling γ (rounded to the arrays' dtype, as NumPy does with a Python float).
        px, py : cupy.ndarray, z's shape
            Warm start of the dual variable (left alone).
        step : float or cupy.ndarray, shape (m, 1, 1)
            Dual step ``s``.
        n_inner : int
            Dual steps.
        rw : cupy.ndarray, z's shape, optional
            Reweighting factors ``r`` (None: 1).
        huber : float or cupy.ndarray, shape (m, 1, 1), optional
            Huber δ (None: no δ term).

        Returns
        -------
        tuple or None
            ``(x, (px, py))``, new arrays, ``x`` not clipped; None when the arguments are not
            what the kernels take (mixed or other dtypes, other layouts): the caller then runs
            the array-API loop. Strided arrays (the EM image, a crop of the canvas) are copied
            once per call.
        """
        cp = self._cp
        if getattr(z, "ndim", 0) < 2 or z.size == 0:
            return None
        shape = tuple(z.shape)
        rows, cols = shape[-2:]
        planes = z.size // (rows * cols)
        per_pixel = [z, lam_w, px, py] + ([rw] if rw is not None else [])
        arrays = per_pixel + [xix, xiy]
        if not (all(isinstance(a, cp.ndarray) and a.dtype == z.dtype for a in arrays) and str(z.dtype) in _SUFFIX
                and all(tuple(a.shape) == shape for a in per_pixel) and tuple(xix.shape) == tuple(xiy.shape)):
            return None
        if tuple(xix.shape) == (rows, cols):
            field_plane = 0
        elif tuple(xix.shape) == shape:
            field_plane = rows * cols
        else:
            return None
        step_op = self._map_values(step, z, planes)
        huber_op = self._map_values(huber, z, planes) if huber is not None else (z, 0)
        if step_op is None or huber_op is None:
            return None
        # the EM image is a crop of the canvas (a strided view on most engines): one copy per call, not per step
        z, lam_w, xix, xiy = (cp.ascontiguousarray(a) for a in (z, lam_w, xix, xiy))
        rw = None if rw is None else cp.ascontiguousarray(rw)
        dtype = z.dtype
        g = dtype.type(gamma)
        x = cp.empty_like(z)
        out_x, out_y = cp.ascontiguousarray(px).copy(), cp.ascontiguousarray(py).copy()
        lines = planes * rows
        rw_arg = rw if rw is not None else z  # not read when has_rw is 0
        primal = self.function("xrfgpu_dtv_primal", dtype)
        ascent = self.function("xrfgpu_dtv_dual_ascent", dtype)
        grid, block = self.grid_rows(cols, lines), (_BLOCK,)
        primal_args = (z, lam_w, out_x, out_y, xix, xiy, field_plane, rw_arg, int(rw is not None), g, x, lines,
                       rows, cols)
        ascent_args = (x, out_x, out_y, xix, xiy, field_plane, rw_arg, int(rw is not None), *huber_op,
                       int(huber is not None), *step_op, g, lines, rows, cols)
        for _ in range(int(n_inner)):
            primal(grid, block, primal_args)
            ascent(grid, block, ascent_args)
        primal(grid, block, primal_args)
        return x, (out_x, out_y)


_FFT_PLANS: dict = {}


def real_fft_plans(height: int, width: int, planes: int, dtype, *, padded: bool = False):
    """Batched R2C and C2R cuFFT plans for ``planes`` canvases of height × width.

    Made once and cached (a few shapes at a time: their work areas stay on the
    device while cached), so a loop can run its transforms on fixed buffers,
    and inside a CUDA graph. ``plan.fft(a, out, direction)`` runs on the
    current stream; the C2R transform is unnormalised and overwrites its input.

    With ``padded`` the real side has rows of ``2 (width // 2 + 1)`` values
    (FFTW's padded layout): the same bytes as the half spectrum, so both
    transforms can also run in place, on the spectrum's own buffer, and a loop
    needs no separate real work map. The padding columns are neither read (R2C)
    nor meaningful after C2R.
    """
    from .device import require_cupy

    cp = require_cupy()
    from cupy.cuda import cufft

    height, width, planes = int(height), int(width), int(planes)
    half = width // 2 + 1
    real_row = 2 * half if padded else width  # values between the starts of two real rows
    embed_real, embed_half = ((height, real_row), (height, half)) if padded else (None, None)
    key = (cp.cuda.Device().id, height, width, planes, str(cp.dtype(dtype)), bool(padded))
    plans = _FFT_PLANS.get(key)
    if plans is None:
        if len(_FFT_PLANS) >= 4:
            _FFT_PLANS.clear()
        single = cp.dtype(dtype) == cp.float32

        def make_r2c():
            return cufft.PlanNd((height, width), embed_real, 1, height * real_row, embed_half, 1, height * half,
                                cufft.CUFFT_R2C if single else cufft.CUFFT_D2Z, planes, "C", -1, half)

        def make_c2r():
            return cufft.PlanNd((height, width), embed_half, 1, height * half, embed_real, 1, height * real_row,
                                cufft.CUFFT_C2R if single else cufft.CUFFT_Z2D, planes, "C", -1, width)

        r2c = make_r2c()
        try:
            c2r = plan_on_work_area(make_c2r, r2c.work_area)
            if c2r.work_area.ptr and c2r.work_area.ptr != r2c.work_area.ptr:  # C2R needs more: R2C takes its area
                r2c = plan_on_work_area(make_r2c, c2r.work_area)
        except Exception:  # noqa: BLE001 - a CuPy whose plans or memory objects differ: separate areas
            c2r = make_c2r()
        plans = _FFT_PLANS[key] = (r2c, c2r)
    return plans


def plan_on_work_area(make_plan, area):
    """A cuFFT plan built by ``make_plan()`` whose work area is ``area`` when that is large enough.

    CuPy's plans allocate their scratch through the current allocator; while
    the plan is made, requests up to the bytes left in ``area`` get ``area``
    itself (a larger request is allocated as usual). Plans that never run at
    the same time (the R2C and C2R plan of a loop on one stream) can so share
    one work area, which saves the smaller one's bytes (about one map's bytes
    at 4096², measured by ``benchmarks/gpu_probe.py``). The plan's own
    reference keeps ``area`` alive.
    """
    import cupy as cp

    default = cp.cuda.memory.get_allocator()
    if area is None or not area.ptr:
        return make_plan()
    offset = area.ptr - area.mem.ptr
    capacity = area.mem.size - offset

    def allocator(size):
        if 0 < size <= capacity:
            return cp.cuda.memory.MemoryPointer(area.mem, offset)
        return default(size)

    with cp.cuda.using_allocator(allocator):
        return make_plan()


@functools.lru_cache(maxsize=None)
def _kernels_for_device(device_id: int) -> CudaKernels:
    from .device import require_cupy

    return CudaKernels(require_cupy(), device_id)


def kernels() -> CudaKernels:
    """The kernel set of the current CUDA device (memoised per device; compiles lazily).

    Raises
    ------
    xrfgpu.device.GPUUnavailableError
        When CuPy is not installed or no CUDA device is usable.
    """
    from .device import require_cupy

    cp = require_cupy()
    return _kernels_for_device(int(cp.cuda.Device().id))
