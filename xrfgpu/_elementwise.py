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

from ._backend import clip_below, is_cupy_namespace, is_numpy_namespace

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
    "dtv_denoise_cuda",
    "dtv_denoise_numpy",
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
    return data / clip_below(blurred + background, eps, xp=xp)


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
    return clip_below(estimate + alpha * (estimate - previous), 0.0, xp=xp)


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
    # max(|u|, 1): clip(·, min=1.0)'s values, NaN included (no zero's sign at stake above 1); array_api_strict's
    # clip took 13× its maximum's time (530 against 40 µs at 200²), in the array-API loop's every dual step
    norm = xp.maximum(xp.sqrt(ux * ux + uy * uy), 1.0)
    return ux / norm, uy / norm


def dtv_denoise_cuda(z, lam_w, xix, xiy, gamma, px, py, step, n_inner, *, xp, rw=None, huber=None):
    """The dual iterations of :func:`xrfgpu.joint._weighted_dtv_denoise` as two fused CUDA kernels per step.

    ``kernels/dtv.cu``: ``xrfgpu_dtv_primal`` computes ``x = z + λw div(r P p)`` and
    ``xrfgpu_dtv_dual_ascent`` ``g = r P ∇x − δ p`` and ``p ← (p + s g) / max(1, |p + s g|)``
    (Chambolle 2004), the same operations in the same order as the array-API loop, so the same
    numbers (``tests/test_dtv_fused_kernels.py`` proves it on the host build).

    Parameters are those of :func:`dtv_denoise_numpy` (CuPy arrays; ``huber`` may also be a
    float). Returns ``(x, (px, py))`` (new arrays, ``x`` not clipped at 0; ``px, py`` are left
    alone), or None when the namespace is not CuPy, the engine is ``"xp"``, or the arguments are
    not what the kernels take (mixed dtypes, other layouts): the caller then runs the array-API loop.

    Backends
    --------
    CuPy (CUDA kernels); None everywhere else.
    """
    k = _cuda_kernels(xp)
    if k is None:
        return None
    return k.dtv_denoise(z, lam_w, xix, xiy, gamma, px, py, step, n_inner, rw=rw, huber=huber)


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


#: Pixels (maps × rows × cols) of the block of maps that :func:`dtv_denoise_numpy` iterates at a time:
#: its ~16 arrays of a block of two 128² float32 maps (2 MB) stay in a core's L2 cache.
DTV_BLOCK_PIXELS = 2 * 128 * 128


def dtv_denoise_numpy(z, lam_w, xix, xiy, gamma, px, py, step, n_inner, rw=None, huber=None, active=None):
    """NumPy engine of the dual iterations of :func:`xrfgpu.joint._weighted_dtv_denoise`, in place.

    The same operations in the same order as the array-API loop there (so the
    same float numbers, bit for bit), written with ``out=`` into buffers
    allocated once per call, and run on blocks of a few maps at a time
    (:data:`DTV_BLOCK_PIXELS`): every map's iterations only read that map,
    so a block's ``n_inner`` steps run in cache, where the whole batch's
    arrays (a 128² map × 6 weights × 7 weak maps: 2.7 MB each) would not.
    Each of the ``n_inner`` dual steps of Chambolle (2004) on the
    directional TV is

    ``q = r P p``, ``x = z + λw div q``, ``g = r P ∇x − δ p``,
    ``p ← (p + s g) / max(1, |p + s g|)``,

    with ``P v = v − γ ξ (ξ · v)``, forward differences with a zero last
    difference (Neumann) and ``div`` their negative adjoint. The array-API
    loop allocates ~30 temporaries of the whole batch per step; here none.

    Parameters
    ----------
    z, lam_w : numpy.ndarray, shape (m, rows, cols)
        The EM image and ``λ × w`` (map units; ``λw`` in map units too).
    xix, xiy : numpy.ndarray, shape (rows, cols) or (m, rows, cols)
        The direction field ``ξ``.
    gamma : float
        Coupling γ.
    px, py : numpy.ndarray, shape (m, rows, cols)
        Warm start of the dual variable (not modified).
    step : float or numpy.ndarray, shape (m, 1, 1)
        Dual step ``s``.
    n_inner : int
        Dual steps.
    rw : numpy.ndarray, shape (m, rows, cols), optional
        Reweighting factors ``r`` (None: 1).
    huber : numpy.ndarray, shape (m, 1, 1), optional
        Huber δ per map (None: 0).
    active : sequence of int, optional
        The maps to iterate (default all). The caller leaves out maps whose
        ``λw`` is 0: their ``x = z + 0 · div(…)`` is ``z`` whatever ``p`` is
        (``p`` stays bounded, ``|p| ≤ 1``), so they get ``x = z`` and their
        ``p`` back unchanged (the array-API loop would move that ``p``,
        which nothing reads).

    Returns
    -------
    x : numpy.ndarray, shape (m, rows, cols)
        ``z + λw div(r P p)`` at the final ``p`` (not yet clipped at 0).
    (px, py) : tuple of numpy.ndarray
        The dual variable after the steps (new arrays).

    References
    ----------
    A. Chambolle, J. Math. Imaging Vis. 20, 89 (2004), doi:10.1023/B:JMIV.0000011325.36760.1e.

    With the host engine on (:mod:`xrfgpu._host_kernels`, ``XRFGPU_HOST_KERNELS``), each block
    runs ``kernels/host_dtv.cpp`` built by the host C++ compiler instead, the same numbers bit for
    bit (:func:`_dtv_denoise_host`).

    Backends
    --------
    NumPy only (the caller's other namespaces run the array-API loop).
    """
    import numpy as np

    host = _dtv_denoise_host(z, lam_w, xix, xiy, gamma, px, py, step, n_inner, rw, huber, active)
    if host is not None:
        return host
    m, rows, cols = np.broadcast_shapes(z.shape, px.shape)
    dtype = np.result_type(z, px)
    x_out, px_out, py_out = (np.empty((m, rows, cols), dtype=dtype) for _ in range(3))
    block = max(1, min(m, DTV_BLOCK_PIXELS // (rows * cols)))

    def part(a, sel):
        # a per-map array's rows of the block; a shared one (2-D field, scalar step) as it is
        return a[sel] if getattr(a, "ndim", 0) == 3 and a.shape[0] == m and m > 1 else a

    px_out[...], py_out[...] = px, py
    if active is None:
        blocks = [slice(start, min(m, start + block)) for start in range(0, m, block)]
    else:  # maps left out: x = z, p as it was
        x_out[...] = z
        which = np.asarray(sorted(int(i) for i in active), dtype=np.intp)
        blocks = [which[start:start + block] for start in range(0, which.size, block)]

    def run_blocks(mine):
        # one worker's blocks, in order, with its own scratch buffers
        scratch = [np.empty((block, rows, cols), dtype=dtype) for _ in range(5)]
        scratch_x = np.empty((block, rows, cols), dtype=dtype) if active is not None else None
        for sel in mine:
            if isinstance(sel, slice):  # views: updated in place
                k = sel.stop - sel.start
                pxb, pyb, xb = px_out[sel], py_out[sel], x_out[sel]
            else:  # copies of the rows, written back
                k = sel.size
                pxb, pyb, xb = px_out[sel], py_out[sel], scratch_x[:k]
            _dtv_denoise_block(part(z, sel), part(lam_w, sel), part(xix, sel), part(xiy, sel), gamma,
                               pxb, pyb, part(step, sel), n_inner, part(rw, sel), part(huber, sel),
                               xb, [b[:k] for b in scratch])
            if not isinstance(sel, slice):
                px_out[sel], py_out[sel], x_out[sel] = pxb, pyb, xb

    # the blocks are independent (each reads and writes only its own maps' rows), so threads give
    # the same numbers; NumPy's ufuncs release the GIL
    workers = min(_dtv_workers(), len(blocks))
    if workers <= 1:
        run_blocks(blocks)
    else:
        pool = _dtv_pool(workers)
        for done in [pool.submit(run_blocks, blocks[w::workers]) for w in range(workers)]:
            done.result()
    return x_out, (px_out, py_out)


def _dtv_workers():
    """Threads of :func:`dtv_denoise_numpy`: :func:`xrfgpu._backend.fft_workers` (``XRFGPU_FFT_WORKERS``,
    default the usable cores), the project's one setting for CPU threads."""
    from ._backend import _threads

    return _threads()


_DTV_POOLS = {}


def _dtv_pool(workers):
    """A thread pool of ``workers`` threads, made once per count and process (never in the loop: a
    forked child, e.g. a process-based Dask worker, has none of its parent's threads, so it makes its own)."""
    import os

    key = (workers, os.getpid())
    pool = _DTV_POOLS.get(key)
    if pool is None:
        from concurrent.futures import ThreadPoolExecutor

        pool = _DTV_POOLS[key] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="xrfgpu-dtv")
    return pool


def _host_scalar(value, dtype):
    """A scalar operand as the NumPy engine's ufuncs use it, rounded to ``dtype``, or None when they would not
    compute in ``dtype`` (a NumPy scalar of a wider type is "strong" under NEP 50: the ufunc would compute in
    that type and round the result once more, which the kernels do not)."""
    import numpy as np

    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, np.ndarray) or isinstance(value, np.generic):
        a = np.asarray(value)
        if a.ndim != 0 or a.dtype.kind not in "fiu" or not np.can_cast(a.dtype, dtype, "safe"):
            return None
        return dtype.type(a)
    if isinstance(value, (int, float)):  # a Python number: "weak", cast to the arrays' dtype first
        return dtype.type(value)
    return None


def _host_array(a, shape, dtype):
    """``a`` broadcast to ``shape`` as a C-contiguous array of ``dtype`` (no copy when it is one), or None
    when the NumPy engine's ufuncs would not compute with it in ``dtype`` (another kind, a wider type)."""
    import numpy as np

    if not isinstance(a, np.ndarray) or a.dtype.kind != "f" or not np.can_cast(a.dtype, dtype, "safe"):
        return None
    try:
        b = np.broadcast_to(a, shape)
    except ValueError:
        return None
    return np.ascontiguousarray(b, dtype=dtype)


def _host_per_map(value, m, dtype):
    """A step or Huber δ (scalar, or one per map broadcasting to (m, 1, 1)) as ``(array, stride)`` for the
    kernels (stride 0: one value for every map), or None (a value per pixel or row: the NumPy code)."""
    import numpy as np

    if not isinstance(value, np.ndarray) or value.ndim == 0:
        v = _host_scalar(value, dtype)
        return None if v is None else (np.full(1, v, dtype=dtype), 0)
    if value.ndim > 3 or value.dtype.kind != "f" or not np.can_cast(value.dtype, dtype, "safe"):
        return None
    try:
        if np.broadcast_shapes(value.shape, (m, 1, 1)) != (m, 1, 1):
            return None
    except ValueError:
        return None
    return np.ascontiguousarray(np.broadcast_to(value, (m, 1, 1)).reshape(m), dtype=dtype), 1


def _dtv_denoise_host(z, lam_w, xix, xiy, gamma, px, py, step, n_inner, rw, huber, active):
    """:func:`dtv_denoise_numpy` on the host engine (``kernels/host_dtv.cpp``, :mod:`xrfgpu._host_kernels`), or None.

    Per block of maps (the blocks and threads of the NumPy code), one call of ``xrfgpu_host_dtv_<dtype>``
    runs the ``n_inner`` dual steps and the last primal step on C-contiguous buffers of the working dtype
    (``np.result_type(z, px)``). The engine does the NumPy code's operations in its order, each rounded
    once in that dtype, and skips the projection at γ = 0 as that code does, so the numbers are the same
    bit for bit. None, and the NumPy code runs, when the library is unavailable or the arguments are not
    what the engine computes identically: a dtype other than float32/float64, an operand the ufuncs would
    compute in a wider type (a float64 array or NumPy scalar with float32 maps), a step or δ per pixel,
    shapes that do not broadcast, maps of one row or one column (the NumPy code's views need two of each),
    an ``active`` list with an index out of range or listed twice.
    """
    import numpy as np

    try:
        m, rows, cols = np.broadcast_shapes(z.shape, px.shape)
        dtype = np.result_type(z, px)
    except (AttributeError, ValueError, TypeError):
        return None
    if dtype not in (np.float32, np.float64) or rows < 2 or cols < 2 or not isinstance(py, np.ndarray):
        return None
    if not isinstance(n_inner, (int, np.integer)) or n_inner >= 2 ** 31:  # the engine's count is a C int
        return None
    from . import _host_kernels

    lib = _host_kernels.library()
    if lib is None:
        return None
    shape = (m, rows, cols)
    g = _host_scalar(gamma, dtype)
    zc, lwc = _host_array(z, shape, dtype), _host_array(lam_w, shape, dtype)
    rwc = None if rw is None else _host_array(rw, shape, dtype)
    steps = _host_per_map(step, m, dtype)
    deltas = (np.zeros(1, dtype), 0) if huber is None else _host_per_map(huber, m, dtype)
    if any(v is None for v in (g, zc, lwc, steps, deltas)) or (rw is not None and rwc is None):
        return None
    if getattr(xix, "shape", None) != getattr(xiy, "shape", None):
        return None
    if xix.shape in ((rows, cols), (1, rows, cols)):  # one field for every map
        fx, fy = (_host_array(a.reshape(rows, cols), (rows, cols), dtype) for a in (xix, xiy))
        field_plane = 0
    else:
        fx, fy = (_host_array(a, shape, dtype) for a in (xix, xiy))
        field_plane = rows * cols
    if fx is None or fy is None:
        return None
    px_out, py_out = np.empty(shape, dtype=dtype), np.empty(shape, dtype=dtype)
    try:
        px_out[...], py_out[...] = px, py
    except (ValueError, TypeError):
        return None
    project = int(not gamma == 0.0)  # the NumPy code's test: at γ = 0 it skips the projection
    x_out = np.empty(shape, dtype=dtype)
    block = max(1, min(m, DTV_BLOCK_PIXELS // (rows * cols)))
    if active is None:
        runs = [(0, m)]
    else:  # the maps left out get x = z and p as it was; the others run in slices of consecutive maps
        ids = [int(i) for i in active]
        if any(not -m <= i < m for i in ids):
            return None  # the NumPy code raises IndexError
        which = sorted(i % m for i in ids)
        if len(set(which)) != len(which):
            return None  # a map listed twice: the NumPy code iterates it twice
        x_out[...] = z
        runs = []
        for i in which:
            if runs and runs[-1][1] == i:
                runs[-1] = (runs[-1][0], i + 1)
            else:
                runs.append((i, i + 1))
    blocks = [(start, min(stop, start + block)) for first, stop in runs for start in range(first, stop, block)]
    engine = getattr(lib, "xrfgpu_host_dtv_f32" if dtype == np.float32 else "xrfgpu_host_dtv_f64")
    has_rw, has_huber = int(rwc is not None), int(huber is not None)
    (sw, s_stride), (dw, d_stride) = steps, deltas
    n_inner = int(n_inner)

    def run_blocks(mine):
        for a, b in mine:
            zb, rwb = zc[a:b], (rwc[a:b] if has_rw else zc[a:b])
            fxb, fyb = (fx[a:b], fy[a:b]) if field_plane else (fx, fy)
            sb, db = (sw[a:b] if s_stride else sw), (dw[a:b] if d_stride else dw)
            code = engine(zb.ctypes.data, lwc[a:b].ctypes.data, px_out[a:b].ctypes.data, py_out[a:b].ctypes.data,
                          fxb.ctypes.data, fyb.ctypes.data, field_plane, rwb.ctypes.data, has_rw, db.ctypes.data,
                          d_stride, has_huber, sb.ctypes.data, s_stride, g, project, x_out[a:b].ctypes.data, b - a,
                          rows, cols, n_inner)
            if code != 0:
                raise MemoryError(f"xrfgpu host dTV engine: error {code}")

    # the blocks are independent; ctypes releases the GIL during each call
    workers = min(_dtv_workers(), len(blocks))
    try:
        if workers <= 1:
            run_blocks(blocks)
        else:
            pool = _dtv_pool(workers)
            futures = [pool.submit(run_blocks, blocks[w::workers]) for w in range(workers)]
            for failed in [f.exception() for f in futures]:  # every thread done before anything is raised
                if failed is not None:
                    raise failed
    except MemoryError:  # the engine could not allocate its row scratch: the NumPy code, from the start
        return None
    return x_out, (px_out, py_out)


def _dtv_denoise_block(z, lam_w, xix, xiy, gamma, px, py, step, n_inner, rw, huber, x, scratch):
    """:func:`dtv_denoise_numpy` on one block of maps: ``px, py`` updated and ``x`` written in place.

    Every slice is taken once before the loop (a step is ~50 ufunc calls on small blocks, where
    Python's overhead counts); ``np.maximum(s, 1)`` is what ``clip(s, min=1)`` computes. With
    γ = 0 (plain TV) the projection is the identity: ``v − 0 · ξ`` has ``v``'s value (a zero's sign
    aside), so it is skipped.
    """
    import numpy as np

    mul, add, sub, div_, maximum, sqrt = np.multiply, np.add, np.subtract, np.divide, np.maximum, np.sqrt
    s, qx, qy, t, dv = scratch
    # views of the differences: interior, first and last columns / rows
    qx_in, qx_lo, qx_first = qx[:, :, 1:-1], qx[:, :, :-2], qx[:, :, 0]
    qx_prev_last, qx_last = qx[:, :, -2], qx[:, :, -1]
    qy_in, qy_lo, qy_first = qy[:, 1:-1, :], qy[:, :-2, :], qy[:, 0, :]
    qy_prev_last, qy_last = qy[:, -2, :], qy[:, -1, :]
    dv_in, dv_first, dv_last = dv[:, :, 1:-1], dv[:, :, 0], dv[:, :, -1]
    t_in, t_first, t_last = t[:, 1:-1, :], t[:, 0, :], t[:, -1, :]
    x_right, x_left, x_down, x_up = x[:, :, 1:], x[:, :, :-1], x[:, 1:, :], x[:, :-1, :]
    qx_head, qy_head = qx[:, :, :-1], qy[:, :-1, :]

    def project(vx, vy, ox, oy):
        # P v = v − γ ξ (ξ · v): s = γ (ξx vx + ξy vy); o = v − s ξ (the order of joint._project)
        if gamma == 0.0:  # plain TV (the guide's EM-TV): v − 0 · ξ = v (|ξ| ≤ 1)
            if ox is not vx:
                np.copyto(ox, vx)
                np.copyto(oy, vy)
            return
        mul(xix, vx, out=s)
        mul(xiy, vy, out=t)
        add(s, t, out=s)
        mul(s, gamma, out=s)
        mul(s, xix, out=t)
        sub(vx, t, out=ox)
        mul(s, xiy, out=t)
        sub(vy, t, out=oy)

    def primal():
        # x = z + λw div(r P p); div as joint._divergence: (q[j] − q[j−1]) with q[−1] = q[last] = 0
        project(px, py, qx, qy)
        if rw is not None:
            mul(rw, qx, out=qx)
            mul(rw, qy, out=qy)
        sub(qx_in, qx_lo, out=dv_in)
        dv_first[...] = qx_first
        sub(0.0, qx_prev_last, out=dv_last)
        sub(qy_in, qy_lo, out=t_in)
        t_first[...] = qy_first
        sub(0.0, qy_prev_last, out=t_last)
        add(dv, t, out=dv)
        mul(lam_w, dv, out=dv)
        add(z, dv, out=x)

    for _ in range(n_inner):
        primal()
        # g = r P ∇x (− δ p): forward differences, zero last difference (joint._gradient)
        sub(x_right, x_left, out=qx_head)
        qx_last[...] = 0.0
        sub(x_down, x_up, out=qy_head)
        qy_last[...] = 0.0
        project(qx, qy, qx, qy)
        if rw is not None:
            mul(rw, qx, out=qx)
            mul(rw, qy, out=qy)
        if huber is not None:
            mul(huber, px, out=t)
            sub(qx, t, out=qx)
            mul(huber, py, out=t)
            sub(qy, t, out=qy)
        # p ← u / max(1, |u|), u = p + s g (dtv_dual_step)
        mul(step, qx, out=qx)
        add(px, qx, out=qx)
        mul(step, qy, out=qy)
        add(py, qy, out=qy)
        mul(qx, qx, out=s)
        mul(qy, qy, out=t)
        add(s, t, out=s)
        sqrt(s, out=s)
        maximum(s, 1.0, out=s)
        div_(qx, s, out=px)
        div_(qy, s, out=py)
    primal()
