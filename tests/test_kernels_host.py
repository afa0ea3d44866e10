"""The CUDA kernels' arithmetic, run on the CPU from the same source files.

``kernels/*.cu`` are written with the ``XRFGPU_KERNEL`` / ``XRFGPU_GRID_LOOP``
macros of ``kernels/xrfgpu_ops.cuh``: under a host C++ compiler each kernel
becomes an ``extern "C"`` loop over the same elements with the same
arithmetic. Here every ``.cu`` file is compiled with g++ into one shared
library, called through ctypes on NumPy buffers, and compared bit for bit
with the NumPy engine of :mod:`xrfgpu._elementwise` (the reference the CuPy
path must reproduce) on random inputs with edge cases: zeros, the guard eps
and its neighbours, negative after background, denormals, NaN, float32 and
float64. Scalar parameters are rounded to the array dtype exactly as
:mod:`xrfgpu.cuda` passes them to the GPU.
"""

from __future__ import annotations

import ctypes
import sys
import shutil
import subprocess

import numpy as np
import pytest

from xrfgpu import _elementwise as ew
from xrfgpu._host_kernels import HOST_CXX_FLAGS
from xrfgpu.cuda import HEADER, KERNEL_FILES, kernel_dir

CXX = shutil.which("g++") or shutil.which("c++")
pytestmark = pytest.mark.skipif(CXX is None, reason="no host C++ compiler (g++) found")
DTYPES = [np.float32, np.float64]


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    """All kernel files built by the host compiler into one shared library."""
    out = tmp_path_factory.mktemp("kernels_host") / "libxrfgpu_kernels_host.so"
    src = kernel_dir()
    cmd = [CXX, *HOST_CXX_FLAGS, "-Wall", "-Wextra", "-Werror", "-I", str(src), "-o", str(out)]
    cmd += [str(src / name) for name in KERNEL_FILES]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"host build failed:\n{' '.join(cmd)}\n{proc.stderr}"
    return ctypes.CDLL(str(out))


P, LL, I = ctypes.c_void_p, ctypes.c_longlong, ctypes.c_int
SIGNATURES = {  # T marks a scalar of the array dtype
    "xrfgpu_rl_ratio_scalar": [P, P, LL, "T", "T", I],
    "xrfgpu_rl_ratio_bcast": [P, P, LL, P, LL, LL, P, LL, LL],
    "xrfgpu_rl_update": [P, P, LL],
    "xrfgpu_rl_update_inplace": [P, P, LL],
    "xrfgpu_rl_update_rows": [P, P, LL, LL, LL],
    "xrfgpu_fista_step_scalar": [P, P, P, P, LL, "T", "T", "T", I],
    "xrfgpu_fista_step_bcast": [P, P, P, P, LL, P, LL, LL, P, LL, LL, "T", I],
    "xrfgpu_l0_intensity": [P, P, LL, "T"],
    "xrfgpu_l0_gradient_term": [P, P, LL, LL, LL, "T"],
    "xrfgpu_l0_solve": [P, P, P, P, LL, "T", "T", "T"],
    "xrfgpu_multiply_spectrum": [P, P, LL, LL],
    "xrfgpu_reflect_dct_filter": [P, P, P, P, I, LL, LL, LL, LL, ctypes.c_double, P, P],
    "xrfgpu_rl_extrapolate_dev": [P, P, P, LL, LL],
    "xrfgpu_reflect_embed": [P, P, LL, LL, LL, LL, LL, LL, LL, LL, LL],
    "xrfgpu_crop_ratio": [P, P, LL, LL, LL, LL, LL, LL, LL, "T", P, LL, LL, P, LL, LL],
    "xrfgpu_reflect_fold": [P, P, LL, LL, LL, LL, LL, LL, LL, LL, LL, "T"],
    "xrfgpu_rl_update_accel": [P, P, P, P, P, LL, LL, LL, LL],
    "xrfgpu_dtv_dual": [P, P, P, P, LL, P, LL, LL],
    "xrfgpu_dtv_primal": [P, P, P, P, P, P, LL, P, I, "T", P, LL, LL, LL],
    "xrfgpu_dtv_dual_ascent": [P, P, P, P, P, LL, P, I, P, LL, I, P, LL, "T", LL, LL, LL],
    "xrfgpu_rl_ratio_makhoul": [P, P, LL, LL, LL, LL, P, LL, LL, P, LL, LL],
    "xrfgpu_makhoul_unorder": [P, P, LL, LL, LL, LL],
    "xrfgpu_blur_rows": [P, P, P, LL, LL, LL],
    "xrfgpu_blur_rows_warp": [P, P, P, LL, LL, LL],
    "xrfgpu_blur_cols": [P, P, P, LL, LL, LL, LL, I, P, P, LL, LL, P, LL, LL],
    "xrfgpu_blur_cols_tile": [P, P, P, LL, LL, LL, LL, I, P, P, LL, LL, P, LL, LL],
}


def call(lib, name, dtype, *args):
    """Call kernel ``name`` for ``dtype``; arrays pass as pointers, scalars rounded to ``dtype``."""
    ctype = ctypes.c_float if dtype == np.float32 else ctypes.c_double
    fn = getattr(lib, f"{name}_{'f32' if dtype == np.float32 else 'f64'}")
    sig = SIGNATURES[name]
    fn.argtypes = [ctype if s == "T" else s for s in sig]
    fn.restype = None
    conv = []
    for kind, a in zip(sig, args):
        if isinstance(a, np.ndarray):
            assert a.flags.c_contiguous
            conv.append(a.ctypes.data)
        elif kind == "T":
            conv.append(ctype(dtype(a)))
        elif kind is ctypes.c_double:
            conv.append(float(a))
        else:
            conv.append(int(a))
    fn(*conv)


def test_every_kernel_is_built(lib):
    for names in KERNEL_FILES.values():
        for name in names:
            assert name in SIGNATURES
            for suffix in ("f32", "f64"):
                assert hasattr(lib, f"{name}_{suffix}")
    assert (kernel_dir() / HEADER).is_file()


def edge_values(rng, dtype, n, *, eps=None, signed=False):
    """Random positive values salted with zeros, denormals, eps neighbours and huge/tiny numbers."""
    fi = np.finfo(dtype)
    x = rng.lognormal(0.0, 3.0, n).astype(dtype)
    k = max(n // 12, 1)
    specials = [np.zeros(k, dtype), fi.smallest_subnormal * rng.integers(1, 50, k).astype(dtype),
                np.full(k, fi.smallest_normal, dtype), np.full(k, fi.tiny * 3, dtype)]
    if eps is not None:
        e = dtype(eps)
        specials += [np.full(k, e, dtype), np.full(k, np.nextafter(e, dtype(0)), dtype),
                     np.full(k, np.nextafter(e, dtype(np.inf)), dtype)]
    pos = 0
    for s in specials:
        x[pos:pos + k] = s
        pos += k
    if signed:
        x *= np.where(rng.random(n) < 0.5, -1, 1).astype(dtype)
    rng.shuffle(x)
    return x


def assert_same(actual, expected, dtype):
    assert actual.dtype == expected.dtype == dtype
    np.testing.assert_array_equal(actual, expected)  # exact; NaN == NaN


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("background", [0.0, 3.25, 0.1, 1e-30])
def test_rl_ratio_scalar(lib, dtype, background):
    rng = np.random.default_rng(1)
    n = 3000
    eps = 1e-6 if dtype == np.float32 else 1e-12
    data = edge_values(rng, dtype, n, eps=eps)
    blurred = edge_values(rng, dtype, n, eps=eps, signed=True)
    # negative after adding the background: h⊛x + b < 0 must hit the eps guard
    blurred[:50] = dtype(-background) - np.abs(blurred[:50])
    blurred[50:60] = np.nan
    expected = ew.rl_ratio(data, blurred.copy(), background, eps, xp=np)
    out = blurred.copy()
    has_b = not (isinstance(background, float) and background == 0.0)
    call(lib, "xrfgpu_rl_ratio_scalar", dtype, data, out, n, background, eps, int(has_b))
    assert_same(out, expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("layout", ["canvas_map", "shared_map", "per_map", "per_map_eps"])
def test_rl_ratio_broadcast(lib, dtype, layout):
    rng = np.random.default_rng(2)
    planes, rows, cols = 3, 17, 12
    eps = 1e-5
    shape = (planes, rows, cols)
    data = edge_values(rng, dtype, planes * rows * cols, eps=eps).reshape(shape)
    blurred = edge_values(rng, dtype, data.size, eps=eps, signed=True).reshape(shape)
    if layout == "canvas_map":
        background, eps_arg = edge_values(rng, dtype, data.size).reshape(shape), eps
    elif layout == "shared_map":
        background, eps_arg = edge_values(rng, dtype, rows * cols).reshape(rows, cols), eps
    elif layout == "per_map":
        background, eps_arg = np.asarray([0.5, 2.0, 1e-3], dtype).reshape(planes, 1, 1), eps
    else:
        background = np.asarray([0.5, 2.0, 1e-3], dtype).reshape(planes, 1, 1)
        eps_arg = np.asarray([1e-6, 1e-2, 3.0], dtype).reshape(planes, 1, 1)
    expected = ew.rl_ratio(data, blurred.copy(), background, eps_arg, xp=np)

    def operand(value):
        if np.ndim(value) == 0:
            return np.full(1, value, dtype), 1, 1
        v = np.ascontiguousarray(value, dtype=dtype)
        if v.shape == shape and v.shape[1:] == (1, 1):  # pragma: no cover - not a layout here
            raise AssertionError
        if v.ndim == 3 and v.shape[1:] == (1, 1):
            return v, planes, rows * cols
        return v, v.size, 1

    out = blurred.copy()
    call(lib, "xrfgpu_rl_ratio_bcast", dtype, data, out, out.size, *operand(background), *operand(eps_arg))
    assert_same(out, expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_rl_update(lib, dtype):
    rng = np.random.default_rng(3)
    n = 2500
    estimate = edge_values(rng, dtype, n)
    correction = edge_values(rng, dtype, n, eps=1.0)
    correction[:5] = np.finfo(dtype).max  # overflow to inf, as NumPy does
    with np.errstate(over="ignore"):
        expected = ew.rl_update(estimate, correction.copy(), xp=np)
        out = correction.copy()
        call(lib, "xrfgpu_rl_update", dtype, estimate, out, n)
        inplace = estimate.copy()
        call(lib, "xrfgpu_rl_update_inplace", dtype, inplace, correction.copy(), n)
    assert_same(out, expected, dtype)
    assert_same(inplace, expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("cols, ld", [(8, 10), (7, 8), (9, 9)])
def test_rl_update_rows_skips_the_padding(lib, dtype, cols, ld):
    """The update over padded rows (the in-place FFT layout) equals NumPy's on the columns and never touches,
    nor reads, the padding (NaN there stays in the estimate and never reaches it from the correction)."""
    rng = np.random.default_rng(31)
    lines = 13
    estimate = np.full((lines, ld), np.nan, dtype)
    correction = np.full((lines, ld), np.nan, dtype)
    estimate[:, :cols] = edge_values(rng, dtype, lines * cols).reshape(lines, cols)
    correction[:, :cols] = edge_values(rng, dtype, lines * cols, eps=1.0).reshape(lines, cols)
    with np.errstate(over="ignore"):
        expected = ew.rl_update(estimate[:, :cols].copy(), correction[:, :cols].copy(), xp=np)
        out = estimate.copy()
        call(lib, "xrfgpu_rl_update_rows", dtype, out, correction, lines, cols, ld)
    assert_same(out[:, :cols], expected, dtype)
    assert np.isnan(out[:, cols:]).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("nonneg", [True, False])
@pytest.mark.parametrize("params", [(0.5, 0.01, 0.7), (1 / 3, 0.1, 0.123456789), (1.0, 0.0, 0.0), (0.49, 7.3, 1.0)])
def test_fista_step_scalar(lib, dtype, nonneg, params):
    step, threshold, momentum = params
    rng = np.random.default_rng(4)
    n = 3000
    point = edge_values(rng, dtype, n, eps=threshold, signed=True)
    gradient = edge_values(rng, dtype, n, eps=threshold, signed=True)
    previous = edge_values(rng, dtype, n, signed=True)
    # v = z − step·g lands exactly on ±threshold for some pixels
    point[:20] = dtype(threshold)
    gradient[:20] = 0
    point[20:40] = -dtype(threshold)
    gradient[20:40] = 0
    x_exp, z_exp = ew.fista_step(point, gradient.copy(), previous, step, threshold, momentum, nonneg, xp=np)
    g = gradient.copy()
    z_new = np.empty_like(g)
    call(lib, "xrfgpu_fista_step_scalar", dtype, point, g, previous, z_new, n, step, threshold, momentum, int(nonneg))
    assert_same(g, x_exp, dtype)
    assert_same(z_new, z_exp, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("nonneg", [True, False])
def test_fista_step_per_map(lib, dtype, nonneg):
    rng = np.random.default_rng(5)
    shape = (4, 9, 10)
    n = int(np.prod(shape))
    point = edge_values(rng, dtype, n, signed=True).reshape(shape)
    gradient = edge_values(rng, dtype, n, signed=True).reshape(shape)
    previous = edge_values(rng, dtype, n, signed=True).reshape(shape)
    step = np.asarray([0.5, 0.25, 1 / 3, 0.499], dtype).reshape(4, 1, 1)
    threshold = np.asarray([1e-3, 0.1, 2.0, 0.0], dtype).reshape(4, 1, 1)
    momentum = 0.61
    x_exp, z_exp = ew.fista_step(point, gradient.copy(), previous, step, threshold, momentum, nonneg, xp=np)
    g = gradient.copy()
    z_new = np.empty_like(g)
    call(lib, "xrfgpu_fista_step_bcast", dtype, point, g, previous, z_new, n, step, 4, 90, threshold, 4, 90,
         momentum, int(nonneg))
    assert_same(g, x_exp, dtype)
    assert_same(z_new, z_exp, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("t", [0.1, 2e-3, 0.0, 1e-40])
def test_l0_intensity(lib, dtype, t):
    rng = np.random.default_rng(6)
    n = 3000
    image = edge_values(rng, dtype, n, signed=True)
    # values whose square sits on the threshold (after rounding t to dtype)
    root = np.sqrt(dtype(t), dtype=dtype)
    image[:3] = [root, np.nextafter(root, dtype(0)), np.nextafter(root, dtype(np.inf))]
    image[3:6] = -image[:3]
    image[6:9] = np.nan
    expected = ew.l0_intensity_threshold(image, t, xp=np)
    out = np.empty_like(image)
    call(lib, "xrfgpu_l0_intensity", dtype, image, out, n, t)
    assert_same(out, expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", [(13, 11), (2, 2), (1, 7), (6, 1), (3, 8, 5)])
@pytest.mark.parametrize("quantile", [0.0, 0.5, 0.9])
def test_l0_gradient_term(lib, dtype, shape, quantile):
    rng = np.random.default_rng(7)
    n = int(np.prod(shape))
    image = edge_values(rng, dtype, n, signed=True).reshape(shape) * dtype(1e-2)
    h = np.roll(image, -1, axis=-1) - image
    v = np.roll(image, -1, axis=-2) - image
    t = float(np.quantile(h * h + v * v, quantile))  # some pixels kept, some zeroed
    expected = ew.l0_gradient_term(image, t, xp=np)
    out = np.empty_like(image)
    rows, cols = shape[-2:]
    call(lib, "xrfgpu_l0_gradient_term", dtype, image, out, n // (rows * cols), rows, cols, t)
    assert_same(out, expected, dtype)


def test_l0_gradient_term_is_the_adjoint_pair():
    """Independent check of the reference: with t = 0 nothing is zeroed and the term is DᵀD S = −ΔS.

    (Δ the periodic 5-point Laplacian), so the kernel compared above against
    the NumPy engine computes the right operator, not just the same numbers.
    """
    rng = np.random.default_rng(8)
    image = rng.standard_normal((9, 12))
    term = ew.l0_gradient_term(image, 0.0, xp=np)
    laplacian = (np.roll(image, 1, 0) + np.roll(image, -1, 0) + np.roll(image, 1, 1) + np.roll(image, -1, 1)
                 - 4 * image)
    np.testing.assert_allclose(term, -laplacian, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("layout", ["same", "shared", "per_map"])
def test_multiply_spectrum(lib, dtype, layout):
    rng = np.random.default_rng(9)
    ctype = np.complex64 if dtype == np.float32 else np.complex128
    shape = (3, 10, 6)

    def complex_values(shape):
        n = int(np.prod(shape))
        re = edge_values(rng, dtype, n, signed=True)
        im = edge_values(rng, dtype, n, signed=True)
        return (re + 1j * im).astype(ctype).reshape(shape)

    spectrum = complex_values(shape)
    transfer = complex_values(shape[1:] if layout == "shared" else shape)
    with np.errstate(over="ignore", invalid="ignore"):
        expected = ew.multiply_spectrum(spectrum.copy(), transfer, xp=np)
        out = spectrum.copy()
        call(lib, "xrfgpu_multiply_spectrum", dtype, out.view(dtype), transfer.view(dtype), out.size, transfer.size)
    # the kernel rounds like NumPy's FMA-based SIMD loop; elsewhere NumPy is within 1 ulp
    if numpy_complex_multiply_uses_fma():
        assert_same(out.real.copy(), expected.real.copy(), dtype)
        assert_same(out.imag.copy(), expected.imag.copy(), dtype)
    finite = np.isfinite(expected)
    for part in (np.real, np.imag):
        a, e = part(out)[finite], part(expected)[finite]
        ulp = np.spacing(np.maximum(np.abs(a), np.abs(e)))
        assert np.all(np.abs(a - e) <= ulp)


def numpy_complex_multiply_uses_fma():
    """Whether this NumPy rounds ``Re(a·b)`` as ``fma(ar, br, −ai·bi)`` (probe on float32, exact in float64)."""
    rng = np.random.default_rng(0)
    a = (rng.standard_normal(4096) + 1j * rng.standard_normal(4096)).astype(np.complex64)
    b = (rng.standard_normal(4096) + 1j * rng.standard_normal(4096)).astype(np.complex64)
    ar, ai, br, bi = (np.asarray(v, np.float64) for v in (a.real, a.imag, b.real, b.imag))
    # ar·br is exact in float64; adding the float32 product rounds once more in float64, far below float32 ulp
    fused = (ar * br + (-(a.imag * b.imag)).astype(np.float64)).astype(np.float32)
    return bool(np.array_equal((a * b).real, fused))


def test_complex_multiply_reference_is_the_product():
    """The NumPy engine's complex multiply is the complex product to float32 rounding (independent check)."""
    rng = np.random.default_rng(10)
    a = (rng.standard_normal(500) + 1j * rng.standard_normal(500)).astype(np.complex64)
    b = (rng.standard_normal(500) + 1j * rng.standard_normal(500)).astype(np.complex64)
    exact = a.astype(np.complex128) * b.astype(np.complex128)
    got = ew.multiply_spectrum(a.copy(), b, xp=np)
    np.testing.assert_allclose(got, exact, rtol=2e-7 * 4, atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(8, 6), (7, 9), (6, 5), (16, 17), (1, 4)])
@pytest.mark.parametrize("per_map", [False, True])
@pytest.mark.parametrize("separable", [False, True])
def test_reflect_dct_filter_equals_makhoul_reference(lib, dtype, shape, per_map, separable):
    """The GPU spectrum kernel of the "dctfft" engine equals the NumPy statement of Makhoul's formulas.

    The reference (``xrfgpu._reflect_fft.spectrum_filter``) is itself
    checked against SciPy's DCT and ``scipy.ndimage.convolve`` in
    ``tests/test_reflect_fft.py``; the kernel computes in double and stores
    in the array dtype, so float32 agrees to float32 rounding.
    """
    import array_api_compat.numpy as xnp

    from xrfgpu._reflect_fft import dct_twiddles, spectrum_filter

    rng = np.random.default_rng(sum(shape))
    n1, n2 = shape
    planes = 3
    spectrum = np.fft.rfft2(rng.standard_normal((planes, n1, n2)))
    lplanes = planes if per_map else 1
    lam_rows, lam_cols = rng.random((lplanes, n1)), rng.random((lplanes, n2))
    if separable:
        lam_rows, lam_cols = lam_rows.astype(dtype), lam_cols.astype(dtype)
        lam = lam_rows[:, :, None].astype(np.float64) * lam_cols[:, None, :]
    else:
        lam = rng.random((lplanes, n1, n2))
    if not per_map:
        lam = lam[0]
    expected = spectrum_filter(spectrum, lam, xp=xnp)
    ctype = np.complex64 if dtype == np.float32 else np.complex128
    work = np.ascontiguousarray(spectrum.astype(ctype))
    full = np.ascontiguousarray(lam.astype(dtype))
    call(lib, "xrfgpu_reflect_dct_filter", dtype, work.view(dtype), full, np.ascontiguousarray(lam_rows, dtype),
         np.ascontiguousarray(lam_cols, dtype), int(separable), planes, n1, n2, lplanes, 0.5, dct_twiddles(n1),
         dct_twiddles(n2))
    expected = expected * 0.5  # the kernel's λ scale (cuFFT's unnormalised inverse folded in on the GPU)
    tol = 2e-6 if dtype == np.float32 else 1e-12
    scale = np.abs(expected).max()
    np.testing.assert_allclose(work, expected, rtol=0, atol=tol * scale)


@pytest.mark.parametrize("dtype", DTYPES)
def test_accelerated_rl_kernels_follow_the_reference_loop(lib, dtype):
    """Device-side Biggs–Andrews step: extrapolation, update, change, shifts and inner products.

    Reference: the NumPy engine's ``rl_extrapolate``/``rl_update``/``difference``
    and the step length α = clip(⟨g1, g2⟩ / (⟨g2, g2⟩ + 1e-300), 0, 1) of
    ``xrfgpu.richardson_lucy`` (inner products in float64 here).
    """
    rng = np.random.default_rng(11)
    planes, rows, cols, ld = 3, 5, 51, 53  # padded rows (the in-place FFT layout of the GPU iteration)
    plane = rows * cols
    x = (rng.random((planes, plane)) * 10).astype(dtype)
    x_prev = (rng.random((planes, plane)) * 10).astype(dtype)
    g1 = rng.standard_normal((planes, plane)).astype(dtype)
    g2 = rng.standard_normal((planes, plane)).astype(dtype)
    work = (rng.random((planes, plane)) * 2).astype(dtype)
    acc = np.stack([np.einsum("ij,ij->i", g1.astype(np.float64), g2.astype(np.float64)),
                    np.einsum("ij,ij->i", g2.astype(np.float64), g2.astype(np.float64))], axis=1)
    acc[1] = (-1.0, 1.0)  # a negative step length is clipped to 0
    alpha = np.clip(acc[:, 0] / (acc[:, 1] + 1e-300), 0.0, 1.0)
    point = np.stack([ew.rl_extrapolate(x[p], x_prev[p].copy(), float(alpha[p]), xp=np) for p in range(planes)])
    fresh = ew.rl_update(point, work.copy(), xp=np)
    change = fresh - point

    def padded(a, fill):
        out = np.full((planes, rows, ld), fill, dtype)
        out[:, :, :cols] = a.reshape(planes, rows, cols)
        return out

    def columns(a):
        return a[:, :, :cols].reshape(planes, plane)

    # the extrapolation runs over whole padded maps: zero padding stays zero
    got_point = padded(x_prev, 0)
    x_pad = padded(x, 0)
    call(lib, "xrfgpu_rl_extrapolate_dev", dtype, x_pad, got_point, np.ascontiguousarray(acc), got_point.size,
         rows * ld)
    assert_same(columns(got_point), point, dtype)
    assert not got_point[:, :, cols:].any()
    # the update reads only the columns: NaN in the correction's and g1's padding never reaches a sum
    xs, xps, g1s = x_pad.copy(), got_point.copy(), padded(g1, np.nan)
    out_acc = np.zeros(2 * planes)
    call(lib, "xrfgpu_rl_update_accel", dtype, xs, xps, padded(work, np.nan), g1s, out_acc, planes, rows, cols, ld)
    assert_same(columns(xs), fresh, dtype)
    assert_same(columns(xps), x, dtype)
    assert_same(columns(g1s), change, dtype)
    expected_acc = np.stack([np.einsum("ij,ij->i", change.astype(np.float64), g1.astype(np.float64)),
                             np.einsum("ij,ij->i", g1.astype(np.float64), g1.astype(np.float64))], axis=1).ravel()
    np.testing.assert_allclose(out_acc, expected_acc, rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("beta, beta_pixel", [(0.008, 0.016), (3.2e4, 0.0), (1.0, 7.9)])
def test_l0_solve_equals_the_numpy_expression(lib, dtype, beta, beta_pixel):
    """The image step's closed form ``(fixed + β G) / (|K|² + β |D|² + β_p)`` (blind/image_step.py).

    NumPy divides the complex numerator by the real denominator promoted to
    complex (its complex-division algorithm); the kernel divides real and
    imaginary parts by the real denominator. They agree to a few ulp.
    """
    rng = np.random.default_rng(5)
    n = 999
    ctype = np.complex64 if dtype == np.float32 else np.complex128
    fixed = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(ctype)
    g = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(ctype)
    otf_power = rng.random(n).astype(dtype)
    grad_power = (rng.random(n) * 8).astype(dtype)
    b, bp = dtype(beta), dtype(beta_pixel)
    expected = (fixed + b * g) / (otf_power + b * grad_power + bp)  # the NumPy expression itself
    expected_re = np.ascontiguousarray(expected.real)
    expected_im = np.ascontiguousarray(expected.imag)
    out = g.copy()
    call(lib, "xrfgpu_l0_solve", dtype, fixed.view(dtype), out.view(dtype), otf_power, grad_power, n, beta,
         beta_pixel, 1.0)
    ulp = 4 * np.finfo(dtype).eps
    np.testing.assert_allclose(out.real, expected_re, rtol=ulp, atol=0)
    np.testing.assert_allclose(out.imag, expected_im, rtol=ulp, atol=0)


REACHES = [((3, 2), (4, 4)), ((0, 5), (2, 0)), ((6, 6), (5, 6))]  # ((b0, a0), (b1, a1)); the last overlaps


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reach", REACHES)
def test_reflect_embed_is_numpy_symmetric_pad(lib, dtype, reach):
    (b0, a0), (b1, a1) = reach
    rng = np.random.default_rng(12)
    planes, rows, cols, height, width = 2, 9, 8, 24, 22
    x = rng.random((planes, rows, cols)).astype(dtype)
    expected = np.zeros((planes, height, width), dtype)
    expected[:, : b0 + rows + a0, : b1 + cols + a1] = np.pad(x, ((0, 0), (b0, a0), (b1, a1)), mode="symmetric")
    canvas = np.full((planes, height, width), np.nan, dtype)  # every element must be written
    call(lib, "xrfgpu_reflect_embed", dtype, canvas, x, planes, rows, cols, height, width, b0, a0, b1, a1)
    assert_same(canvas, expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_crop_ratio_places_the_rl_ratio(lib, dtype):
    rng = np.random.default_rng(13)
    planes, rows, cols, height, width, b0, b1 = 2, 9, 8, 20, 18, 3, 4
    canvas = (rng.random((planes, height, width)) * 50).astype(dtype)
    y = rng.poisson(20.0, (planes, rows, cols)).astype(dtype)
    background = np.array([0.5, 2.0], dtype).reshape(2, 1, 1)
    scale = dtype(1.0 / (height * width))
    region = canvas[:, b0 : b0 + rows, b1 : b1 + cols] * scale
    expected = np.zeros_like(canvas)
    expected[:, b0 : b0 + rows, b1 : b1 + cols] = ew.rl_ratio(y, region.copy(), background, dtype(1e-3), xp=np)
    eps = np.array([1e-3], dtype)
    call(lib, "xrfgpu_crop_ratio", dtype, canvas, y, planes, rows, cols, height, width, b0, b1, scale,
         np.ascontiguousarray(background.ravel()), 2, rows * cols, eps, 1, 1)
    assert_same(canvas, expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reach", REACHES)
def test_reflect_fold_is_the_adjoint_of_the_embedding(lib, dtype, reach):
    """Eᵀ: each map pixel receives the sum of the canvas positions that reflect onto it (np.add.at reference)."""
    (b0, a0), (b1, a1) = reach
    rng = np.random.default_rng(14)
    planes, rows, cols, height, width = 2, 9, 8, 24, 22
    canvas = rng.standard_normal((planes, height, width)).astype(dtype)
    rr = np.pad(np.arange(rows), (b0, a0), mode="symmetric")
    cc = np.pad(np.arange(cols), (b1, a1), mode="symmetric")
    expected = np.zeros((planes, rows, cols))
    for r, i in enumerate(rr):
        for c, j in enumerate(cc):
            expected[:, i, j] += canvas[:, r, c].astype(np.float64)
    out = np.full((planes, rows, cols), np.nan, dtype)
    call(lib, "xrfgpu_reflect_fold", dtype, canvas, out, planes, rows, cols, height, width, b0, a0, b1, a1, 0.5)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, 0.5 * expected, rtol=0, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("per_map", [False, True], ids=["one-step", "step-per-map"])
def test_dtv_dual_step_equals_the_array_api_expression(lib, dtype, per_map):
    """``kernels/dtv.cu`` against the NumPy expression of _elementwise.dtv_dual_step, bit for bit (and on the ball)."""
    from xrfgpu._elementwise import dtv_dual_step

    rng = np.random.default_rng(15)
    shape = (3, 7, 9)
    px, py, gx, gy = (rng.standard_normal(shape).astype(dtype) for _ in range(4))
    px[0] *= 0.01  # a map whose dual stays inside the unit ball (the max picks 1)
    gx[0, 0, :3] = 0.0
    py[0, 0, :3] = 0.0
    px[0, 0, :3] = [0.0, 1.0, -1.0]  # exactly on the ball
    step = (np.array([0.7, 0.2, 1.5], dtype).reshape(3, 1, 1) if per_map else np.array([0.3], dtype))
    expected = dtv_dual_step(px, py, gx, gy, step if per_map else dtype(0.3), xp=np)
    out_x, out_y = px.copy(), py.copy()
    call(lib, "xrfgpu_dtv_dual", dtype, out_x, out_y, gx, gy, px.size, np.ascontiguousarray(step.ravel()),
         step.size, px[0].size if per_map else 1)
    assert_same(out_x, expected[0], dtype)
    assert_same(out_y, expected[1], dtype)
    assert np.all(np.hypot(out_x, out_y) <= 1 + 4 * np.finfo(dtype).eps)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(2, 9, 8), (1, 6, 11)])
@pytest.mark.parametrize("per_map", [False, True], ids=["scalar-background", "background-per-map"])
def test_rl_ratio_makhoul_reads_the_map_in_its_own_order(lib, dtype, shape, per_map):
    """The dctfft iteration's ratio against the NumPy engine on the reordered map (makhoul_order), bit for bit."""
    from xrfgpu._reflect_fft import makhoul_order

    rng = np.random.default_rng(16)
    planes, rows, cols = shape
    y = rng.poisson(20.0, shape).astype(dtype)
    blurred = edge_values(rng, dtype, y.size, eps=1e-3).reshape(shape)
    background = (np.arange(1, planes + 1, dtype=dtype).reshape(planes, 1, 1) * dtype(0.5) if per_map
                  else np.array([dtype(1.5)]))
    reordered = y[:, makhoul_order(rows), :][:, :, makhoul_order(cols)]
    expected = ew.rl_ratio(reordered, blurred.copy(), background if per_map else 1.5, dtype(1e-3), xp=np)
    for ld in (cols, cols + 3):  # dense rows, and the padded rows of the in-place FFT layout (NaN padding)
        out = np.full((planes, rows, ld), np.nan, dtype)
        out[:, :, :cols] = blurred
        call(lib, "xrfgpu_rl_ratio_makhoul", dtype, y, out, planes, rows, cols, ld,
             np.ascontiguousarray(background.ravel()), background.size, rows * cols if per_map else 1,
             np.array([1e-3], dtype), 1, 1)
        assert_same(out[:, :, :cols], expected, dtype)
        assert np.isnan(out[:, :, cols:]).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, ld", [((2, 9, 8), 10), ((1, 6, 11), 12), ((3, 5, 7), 7)])
def test_makhoul_unorder_returns_the_map_from_its_padded_reordering(lib, dtype, shape, ld):
    """The GPU iteration's last step: the map reordered by makhoul_order (rows ld apart, NaN padding) comes
    back exactly, in its own order, and the padding is never read."""
    from xrfgpu._reflect_fft import makhoul_order

    rng = np.random.default_rng(17)
    planes, rows, cols = shape
    y = rng.standard_normal(shape).astype(dtype)
    canvas = np.full((planes, rows, ld), np.nan, dtype)
    canvas[:, :, :cols] = y[:, makhoul_order(rows), :][:, :, makhoul_order(cols)]
    out = np.full(shape, np.inf, dtype)
    call(lib, "xrfgpu_makhoul_unorder", dtype, canvas, out, planes, rows, cols, ld)
    np.testing.assert_array_equal(out, y)


def test_launch_group_matches_the_kernel_header():
    """The host's launch shapes assume the device's column group (XRFGPU_GROUP): one number, stated twice."""
    import re

    from xrfgpu import cuda

    header = (cuda.kernel_dir() / cuda.HEADER).read_text()
    device_groups = re.findall(r"#define XRFGPU_GROUP (\d+)", header)
    assert device_groups[0] == str(cuda.CudaKernels.GROUP)  # the device branch comes first
    assert device_groups[1] == "1"  # the host build walks one column at a time


# ---- the real-space separable blur (kernels/separable_blur.cu) ---------------------------------------------
def symmetric_taps(rng, k):
    """Random positive symmetric taps of odd length ``k`` (float64)."""
    half = rng.random(k // 2 + 1) + 0.05
    return np.concatenate([half[:0:-1], half])


def blur_passes(lib, dtype, background=0.0, eps=1e-9, col_pass="strip"):
    """Host launchers of the two passes, bound like xrfgpu._gpu_rl._run_direct binds the device ones
    (``col_pass``: "strip" runs xrfgpu_blur_cols, "tile" xrfgpu_blur_cols_tile)."""
    cols_kernel = {"strip": "xrfgpu_blur_cols", "tile": "xrfgpu_blur_cols_tile"}[col_pass]

    def bind(u, v, y):
        planes = y.size // (y.shape[-2] * y.shape[-1])
        rows, cols = y.shape[-2:]
        b = np.ascontiguousarray(np.broadcast_to(np.asarray(background, dtype), (1,) if np.ndim(background) == 0
                                                 else np.shape(background)), dtype=dtype)
        b_plane = 1 if b.size == 1 or b.ndim == 2 else rows * cols
        e = np.full(1, eps, dtype)
        u, v = u.astype(dtype), v.astype(dtype)

        def rows_pass(src, dst):
            call(lib, "xrfgpu_blur_rows", dtype, src, dst, v, v.size, planes * rows, cols)

        def cols_pass(src, dst, mode):
            call(lib, cols_kernel, dtype, src, dst, u, u.size, planes, rows, cols, mode, y, b, b.size, b_plane, e,
                 1, 1)

        return rows_pass, cols_pass

    return bind


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape, ku, kv", [((2, 37, 50), 7, 31), ((1, 5, 9), 11, 3), ((3, 64, 33), 61, 1),
                                           ((1, 16, 17), 33, 35), ((2, 23, 40), 1, 13),
                                           ((1, 9, 1200), 5, 129)])  # rows of 3 segments, the widest warp PSF
def test_blur_passes_equal_scipy_reflect_correlation(lib, dtype, shape, ku, kv):
    """Each pass is scipy.ndimage.correlate1d(mode='reflect') along its axis, up to rounding (taps up to k//2 = n)."""
    from scipy import ndimage

    rng = np.random.default_rng(ku * 100 + kv)
    x = rng.random(shape) * 100
    u, v = symmetric_taps(rng, ku), symmetric_taps(rng, kv)
    rows_pass, cols_pass = blur_passes(lib, dtype)(u, v, x.astype(dtype))
    tol = dict(rtol=1e-12, atol=0) if dtype == np.float64 else dict(rtol=2e-6, atol=0)
    along_rows = np.empty_like(x, dtype=dtype)
    rows_pass(x.astype(dtype), along_rows)
    np.testing.assert_allclose(along_rows, ndimage.correlate1d(x, v, axis=-1, mode="reflect"), **tol)
    # the warp row pass (shared-memory segments of 32 · 17 outputs) computes the same sums, bit for bit
    along_rows_warp = np.empty_like(along_rows)
    call(lib, "xrfgpu_blur_rows_warp", dtype, x.astype(dtype), along_rows_warp, v.astype(dtype), kv,
         x.size // x.shape[-1], x.shape[-1])
    assert_same(along_rows_warp, along_rows, dtype)
    along_cols = np.empty_like(x, dtype=dtype)
    cols_pass(x.astype(dtype), along_cols, 0)
    np.testing.assert_allclose(along_cols, ndimage.correlate1d(x, u, axis=-2, mode="reflect"), **tol)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("per_map", [False, True])
def test_blur_column_epilogues_are_the_rl_ratio_and_update(lib, dtype, per_map):
    """Mode 1 stores rl_ratio(y, blur, b, eps) and mode 2 rl_update(x, blur) over x, bit for bit."""
    from xrfgpu import _gpu_rl

    rng = np.random.default_rng(5)
    shape = (2, 29, 41)
    src = (rng.random(shape) * 50).astype(dtype)
    y = rng.poisson(40, shape).astype(dtype)
    y[0, :3] = 0
    src[1, 4:6] = 0  # blur 0 + b = b; with b = 0 the guard acts
    background = np.array([[[0.0]], [[2.5]]], dtype) if per_map else 1.5
    eps = 1e-6
    u, v = symmetric_taps(rng, 9), symmetric_taps(rng, 5)
    rows_pass, cols_pass = blur_passes(lib, dtype, background, eps)(u, v, y)
    blurred = np.empty_like(src)
    cols_pass(src, blurred, _gpu_rl.BLUR)
    ratio = np.empty_like(src)
    cols_pass(src, ratio, _gpu_rl.RATIO)
    assert_same(ratio, ew.rl_ratio(y, blurred.copy(), background, eps, xp=np), dtype)
    x = (rng.random(shape) + 0.5).astype(dtype)
    expected = ew.rl_update(x, blurred.copy(), xp=np)
    cols_pass(src, x, _gpu_rl.UPDATE)
    assert_same(x, expected, dtype)


def _column_tile_constants():
    """The tiled column pass's constants as kernels/separable_blur.cu defines them (warps, width, strips)."""
    import re

    from xrfgpu import cuda

    source = (cuda.kernel_dir() / "separable_blur.cu").read_text()

    def define(name):
        (value,) = re.findall(rf"#define {name} (\d+)", source)
        return int(value)

    return (define("XRFGPU_COL_WARPS"), define("XRFGPU_COL_WIDTH"),
            {np.float32: define("XRFGPU_COL_STRIP_F32"), np.float64: define("XRFGPU_COL_STRIP_F64")})


# shapes (maps, rows, cols) and taps k for the tiled column pass: several row bands and column tiles with
# ragged ends, taps up to the map's side (k // 2 == rows), rows fewer than a warp's strip, a single row,
# a single column, a single tap, even and odd sides, stacks, and the widest PSF the tile takes (float32:
# 311 taps, float64: 125; "widest")
TILE_CASES = [((1, 300, 70), 61), ((2, 37, 33), 75), ((1, 1, 5), 3), ((3, 16, 32), 33), ((1, 129, 1), 1),
              ((1, 7, 40), 15), ((2, 64, 48), 61), ((1, 160, 9), "widest"), ((2, 45, 97), 9)]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape, k", TILE_CASES,
                         ids=lambda v: "x".join(map(str, v)) if isinstance(v, tuple) else str(v))
def test_tiled_column_pass_equals_scipy_and_the_strip_pass_bit_for_bit(lib, dtype, shape, k):
    """xrfgpu_blur_cols_tile (a tile of 32 columns × a row band with its halo, reflected at load, a ring of
    registers per lane) is scipy.ndimage.correlate1d(mode='reflect') along the columns up to rounding, and
    the strip pass (xrfgpu_blur_cols) bit for bit, with each epilogue: the blur, the ratio, the update."""
    from scipy import ndimage

    from xrfgpu import _gpu_rl

    if k == "widest":
        warps, width, strips = _column_tile_constants()
        k = 311 if dtype == np.float32 else 125
        itemsize = np.dtype(dtype).itemsize
        # the widest PSF whose tile fits 48 KiB, stated from the kernel's constants
        assert ((warps * strips[dtype] + k - 1) * width + k) * itemsize <= 48 * 1024
        assert ((warps * strips[dtype] + k) * width + k + 1) * itemsize > 48 * 1024
        assert k // 2 <= shape[-2]
    rng = np.random.default_rng(int(np.prod(shape)) + k)
    x = rng.random(shape) * 100
    x[..., : shape[-2] // 3, :] *= 1e-3  # a dim band: the sums are not all of one size
    u = symmetric_taps(rng, k)
    y = rng.poisson(30.0, shape).astype(dtype)
    background = (np.arange(1, shape[0] + 1, dtype=dtype).reshape(-1, 1, 1) * dtype(0.75) if shape[0] > 1
                  else 2.0)
    v = np.ones(1)  # the row pass is not under test
    _, strip_pass = blur_passes(lib, dtype, background, 1e-6, col_pass="strip")(u, v, y)
    _, tile_pass = blur_passes(lib, dtype, background, 1e-6, col_pass="tile")(u, v, y)
    src = x.astype(dtype)
    by_tile, by_strip = np.full_like(src, np.nan), np.full_like(src, np.nan)
    tile_pass(src, by_tile, _gpu_rl.BLUR)
    strip_pass(src, by_strip, _gpu_rl.BLUR)
    assert_same(by_tile, by_strip, dtype)
    tol = dict(rtol=1e-12, atol=0) if dtype == np.float64 else dict(rtol=2e-6, atol=0)
    np.testing.assert_allclose(by_tile, ndimage.correlate1d(x, u, axis=-2, mode="reflect"), **tol)
    for mode in (_gpu_rl.RATIO, _gpu_rl.UPDATE):
        start = (rng.random(shape) + 0.5).astype(dtype)  # the estimate the update multiplies
        by_tile, by_strip = start.copy(), start.copy()
        tile_pass(src, by_tile, mode)
        strip_pass(src, by_strip, mode)
        assert_same(by_tile, by_strip, dtype)
    # and the ratio is the NumPy engine's (so the tiled pass's epilogue is checked independently too)
    ratio = np.empty_like(src)
    tile_pass(src, ratio, _gpu_rl.RATIO)
    blurred = np.empty_like(src)
    tile_pass(src, blurred, _gpu_rl.BLUR)
    assert_same(ratio, ew.rl_ratio(y, blurred, background, 1e-6, xp=np), dtype)


def test_tiled_column_pass_takes_psfs_whose_tile_fits():
    """CudaKernels' launch sizes state the kernel's tile (its constants read from the .cu file), and
    _gpu_rl.tiled_column_pass_fits draws the line at 48 KiB of shared memory per block."""
    from xrfgpu import _gpu_rl, cuda
    from xrfgpu.cuda import CudaKernels

    warps, width, strips = _column_tile_constants()
    k = CudaKernels(np, 0)
    assert k.COL_WARPS == warps and k.COL_WIDTH == width and warps * 32 == k.BLOCK
    for dtype, widest in ((np.float32, 311), (np.float64, 125)):
        itemsize = np.dtype(dtype).itemsize
        assert k.col_tile_rows(dtype) == warps * strips[dtype]
        assert k.col_tile_bytes(61, dtype) == ((warps * strips[dtype] + 60) * width + 61) * itemsize
        assert _gpu_rl.tiled_column_pass_fits(k, widest, dtype)
        assert not _gpu_rl.tiled_column_pass_fits(k, widest + 2, dtype)
        # a block per 32-column tile along x, every map's row bands along y (at most 65535)
        assert k.col_tile_grid(3, 2 * k.col_tile_rows(dtype) + 1, 65, dtype) == (3, 9)
        assert k.col_tile_grid(1000, 10_000, 10_000, dtype)[1] == 65535
    assert cuda.CudaKernels.COL_TILE_MAX_BYTES == 48 * 1024


@pytest.mark.parametrize("batch", [False, True])
def test_direct_rl_iteration_equals_numpy_richardson_lucy(lib, batch):
    """xrfgpu._gpu_rl's real-space iteration, run on the host kernels, is RL of the reflect engines (float64)."""
    from xrfgpu import _gpu_rl, richardson_lucy
    from xrfgpu.fft import Convolution
    from xrfgpu.psf import gaussian

    rng = np.random.default_rng(11)
    shape = (2, 40, 52) if batch else (40, 52)
    truth = np.zeros(shape)
    truth[..., 10:25, 8:30] = 60.0
    truth[..., 30:33, 35:50] = 120.0
    psf = gaussian(None, 2.2, sigma_y=1.4)  # elongated: a swap of the axes' taps would show
    assert psf.shape[0] != psf.shape[1]
    background = 3.0
    blurred = Convolution(psf, shape[-2:], iterative=True).forward(truth) + background
    y = rng.poisson(blurred).astype(np.float64)
    op = Convolution(psf, shape[-2:], iterative=True, engine="dctfft")
    taps = _gpu_rl.direct_taps(op)
    assert taps is not None
    u, v = taps
    np.testing.assert_allclose(np.outer(u, v), psf, rtol=1e-12, atol=1e-15)  # the taps are the PSF's factors
    eps, num_iter = 1e-9, 25
    level = y.mean(axis=(-2, -1), keepdims=True)  # richardson_lucy's start, map by map
    x = np.ascontiguousarray(np.broadcast_to(np.maximum(level - background, 1e-3 * level), shape))
    tmp, work = np.empty_like(y), np.empty_like(y)
    rows_pass, cols_pass = blur_passes(lib, np.float64, background, eps)(u, v, y)
    for _ in range(num_iter):
        _gpu_rl.direct_plain_iteration(rows_pass, cols_pass, x, tmp, work)
    maps = y if batch else y[None]
    expected = np.stack([richardson_lucy(m, psf, num_iter=num_iter, background=background, filter_epsilon=eps)
                         for m in maps]).reshape(shape)
    np.testing.assert_allclose(x, expected, rtol=1e-9, atol=1e-9 * float(expected.max()))
    # the accelerated path's blurs give Aᵀ(y / (A x + b)) of the same operator
    point = x.copy()
    rows_pass, cols_pass = blur_passes(lib, np.float64, background, eps)(u, v, y)
    _gpu_rl.direct_accelerated_blurs(rows_pass, cols_pass, point, tmp, work)
    blur = Convolution(psf, shape[-2:], iterative=True, engine="extended")  # on the map's own grid
    reference = blur.adjoint(y / np.maximum(blur.forward(point) + background, eps))
    np.testing.assert_allclose(work, reference, rtol=1e-10, atol=1e-12)


def test_direct_taps_only_for_separable_symmetric_psfs_within_one_reflection():
    from xrfgpu import _gpu_rl
    from xrfgpu.fft import Convolution
    from xrfgpu.psf import gaussian

    round_psf = gaussian(None, 1.5)
    assert _gpu_rl.direct_taps(Convolution(round_psf, (30, 30), iterative=True, engine="dctfft")) is not None
    # too wide for one reflection of a 4-row map
    assert _gpu_rl.direct_taps(Convolution(round_psf, (4, 30), iterative=True, engine="dctfft")) is None
    # an elongated, axis-aligned Gaussian is separable; a symmetric but non-separable PSF is not
    box_cross = np.zeros((5, 5))
    box_cross[2, :] = box_cross[:, 2] = 1.0
    box_cross /= box_cross.sum()
    assert _gpu_rl.direct_taps(Convolution(box_cross, (30, 30), iterative=True, engine="dctfft")) is None
    # a stack: one PSF shared by every map takes it, different PSFs do not
    same = np.stack([round_psf] * 3)
    assert _gpu_rl.direct_taps(Convolution(same, (30, 30), iterative=True, engine="dctfft"))[0].shape == (round_psf.shape[0],)
    different = np.stack([round_psf, gaussian(round_psf.shape, 1.1)])
    assert _gpu_rl.direct_taps(Convolution(different, (30, 30), iterative=True, engine="dctfft")) is None
    # other engines never take it
    assert _gpu_rl.direct_taps(Convolution(round_psf, (30, 30), iterative=True, engine="extended")) is None


def test_run_blurs_in_real_space_only_for_psfs_up_to_the_measured_width(monkeypatch):
    """_gpu_rl.direct_blur_taps: the real-space blur for separable PSFs of at most DIRECT_MAX_TAPS taps per
    axis (61, the width measured faster than the transforms), the transforms for a wider one, for PSFs it
    does not take, and everywhere when DIRECT_BLUR is off."""
    from xrfgpu import _gpu_rl
    from xrfgpu.fft import Convolution
    from xrfgpu.psf import gaussian

    assert _gpu_rl.DIRECT_BLUR and _gpu_rl.DIRECT_MAX_TAPS == 61
    at_limit = gaussian(None, 7.5)  # 2·⌈4σ⌉ + 1 = 61 taps
    wider = gaussian(None, 7.6)  # 63 taps
    assert at_limit.shape == (61, 61) and wider.shape == (63, 63)
    shape = (200, 180)
    taps = _gpu_rl.direct_blur_taps(Convolution(at_limit, shape, iterative=True, engine="dctfft"))
    assert taps is not None and [t.size for t in taps] == [61, 61]
    assert _gpu_rl.direct_blur_taps(Convolution(wider, shape, iterative=True, engine="dctfft")) is None
    elongated = gaussian(None, 7.5, sigma_y=3.0)  # 61 × 25: the wider axis decides
    assert _gpu_rl.direct_blur_taps(Convolution(elongated, shape, iterative=True, engine="dctfft")) is not None
    assert _gpu_rl.direct_blur_taps(Convolution(at_limit, shape, iterative=True, engine="extended")) is None
    monkeypatch.setattr(_gpu_rl, "DIRECT_BLUR", False)
    assert _gpu_rl.direct_blur_taps(Convolution(at_limit, shape, iterative=True, engine="dctfft")) is None


def test_column_strip_matches_the_kernel_header():
    """The launch shape's strip (CudaKernels.STRIP) is the kernel's XRFGPU_STRIP: one number, stated twice."""
    import re

    from xrfgpu import cuda

    source = (cuda.kernel_dir() / "separable_blur.cu").read_text()
    assert re.findall(r"#define XRFGPU_STRIP (\d+)", source) == [str(cuda.CudaKernels.STRIP)]
    assert re.findall(r"#define XRFGPU_ROW_STRIP (\d+)", source) == [str(cuda.CudaKernels.ROW_STRIP)]
    assert re.findall(r"#define XRFGPU_ROW_MAX_HALF (\d+)", source) == [str(cuda.CudaKernels.ROW_MAX_HALF)]


class _HostArray(np.ndarray):
    """A NumPy array with CuPy's ``.data.ptr`` (the device pointer the GPU iteration hands to memset)."""

    @property
    def data(self):
        import types

        return types.SimpleNamespace(ptr=self.ctypes.data)


def _host_cupy(lib):
    """A stand-in for the parts of CuPy that xrfgpu._gpu_rl._run_direct and CudaKernels use.

    Arrays are NumPy arrays; ``RawModule`` hands back the host build of the same kernel file, so a
    launch ``fn(grid, block, args, shared_mem=0)`` runs the kernel's loop over every element with ``args``
    passed exactly as the GPU iteration passes them; each launch is listed in ``launches`` as
    ``(name, grid, block, shared_mem)``. Graph capture is refused (the launches then run eagerly, as they
    do on a device that refuses it).
    """
    import types

    launches = []

    def wrap(a):
        return np.asarray(a).view(_HostArray)

    class Module:
        def __init__(self, code, options):
            pass

        def get_function(self, full_name):
            name, suffix = full_name.rsplit("_", 1)
            dtype = np.float32 if suffix == "f32" else np.float64

            def launch(grid, block, args, shared_mem=0):
                launches.append((name, tuple(grid), tuple(block), int(shared_mem)))
                call(lib, name, dtype, *args)

            return launch

    class Stream:
        ptr = 0

        def __init__(self, non_blocking=False):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def record(self):
            return None

        def wait_event(self, event):
            pass

        def begin_capture(self):
            raise RuntimeError("no graphs on the host")

        def synchronize(self):
            pass

    runtime = types.SimpleNamespace(
        memsetAsync=lambda ptr, value, nbytes, stream: ctypes.memset(ptr, value, nbytes),
        getDeviceProperties=lambda device: {"multiProcessorCount": 4})
    cufft = types.SimpleNamespace(CUFFT_FORWARD=-1, CUFFT_INVERSE=1)
    cuda = types.SimpleNamespace(Stream=Stream, get_current_stream=Stream, runtime=runtime, cufft=cufft)
    return types.SimpleNamespace(
        ndarray=np.ndarray, dtype=np.dtype, float32=np.float32, float64=np.float64, complex64=np.complex64,
        complex128=np.complex128, RawModule=Module, cuda=cuda, launches=launches,
        empty=lambda shape, dtype=float: wrap(np.empty(shape, dtype)),
        ascontiguousarray=lambda a: wrap(np.ascontiguousarray(a)),
        asarray=lambda a, dtype=None: wrap(np.asarray(a, dtype=dtype)),
        empty_like=lambda a: wrap(np.empty_like(a)), zeros_like=lambda a: wrap(np.zeros_like(a)),
        zeros=lambda shape, dtype=float: wrap(np.zeros(shape, dtype)),
        full=lambda shape, value, dtype=float: wrap(np.full(shape, value, dtype)))


@pytest.mark.parametrize("accelerate, background, row_pass, col_pass", [
    (False, "scalar", "warp", "tile"), (True, "map", "warp", "tile"), (False, "map", "group", "tile"),
    (True, "scalar", "group", "strip"), (False, "scalar", "warp", "strip")])
def test_gpu_direct_iteration_wiring_runs_richardson_lucy_on_the_host_kernels(lib, monkeypatch, accelerate,
                                                                              background, row_pass, col_pass):
    """xrfgpu._gpu_rl._run_direct itself (buffers, launch arguments and shapes, epilogue modes, accelerated
    update), with every launch run by the host build of the kernels, equals NumPy's richardson_lucy
    (float64), with either column pass (the tiled one launched as its kernel needs: blocks of 32 ·
    XRFGPU_COL_WARPS threads, the tile's shared memory)."""
    from xrfgpu import _gpu_rl, richardson_lucy
    from xrfgpu._problem import Problem
    from xrfgpu.cuda import CudaKernels
    from xrfgpu.psf import gaussian

    rng = np.random.default_rng(21)
    shape = (2, 36, 45)
    truth = np.zeros(shape)
    truth[:, 8:20, 10:30] = 50.0
    truth[1, 25:29, 5:40] = 90.0
    psf = gaussian(None, 1.9, sigma_y=1.3)
    psf = psf / psf.sum()
    b = 4.0 if background == "scalar" else np.linspace(3.0, 5.0, shape[-1])[None, :] * np.ones(shape[-2:])
    from scipy import ndimage

    y = rng.poisson(np.stack([ndimage.convolve(t, psf, mode="reflect") for t in truth]) + b).astype(np.float64)
    fake = _host_cupy(lib)
    k = CudaKernels(fake, 0)
    pb = Problem.from_validated(y, np.stack([psf, psf]), b, iterative=True)
    pb.op = type(pb.op)(np.stack([psf, psf]), shape[-2:], iterative=True, engine="dctfft")
    taps = _gpu_rl.direct_taps(pb.op)
    assert taps is not None
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setattr(_gpu_rl, "ROW_PASS", row_pass)
    monkeypatch.setattr(_gpu_rl, "COL_PASS", col_pass)
    eps, num_iter = 1e-9, 20
    level = y.mean(axis=(-2, -1), keepdims=True)
    init = np.maximum(level - np.mean(b), 1e-3 * level)
    got = _gpu_rl._run_direct(pb, k, taps, num_iter=num_iter, eps=eps, init=init, accelerate=accelerate)
    monkeypatch.delitem(sys.modules, "cupy")
    column_launches = {launch for launch in fake.launches if launch[0].startswith("xrfgpu_blur_cols")}
    if col_pass == "tile":
        warps, width, strips = _column_tile_constants()
        taps_u = taps[0].size
        band = warps * strips[np.float64]
        assert column_launches == {("xrfgpu_blur_cols_tile", (-(-shape[2] // width), shape[0] * -(-shape[1] // band)),
                                    (32 * warps,), ((band + taps_u - 1) * width + taps_u) * 8)}
    else:
        assert {launch[0] for launch in column_launches} == {"xrfgpu_blur_cols"}
    for m in range(shape[0]):
        expected = richardson_lucy(y[m], psf, num_iter=num_iter, background=b, filter_epsilon=eps,
                                   accelerate=accelerate)
        np.testing.assert_allclose(np.asarray(got[m]), expected, rtol=0, atol=1e-8 * float(expected.max()))


def _host_fft_plans(height, width, planes, dtype, *, padded=False):
    """Stand-ins for :func:`xrfgpu.cuda.real_fft_plans`: NumPy's real FFTs with cuFFT's conventions.

    R2C reads ``width`` values of each real row (rows ``2 (width // 2 + 1)`` apart when ``padded``) and
    writes the half spectrum; C2R is unnormalised and writes the real rows (in place when the buffers
    are one, as on the device: the whole input is read before anything is written).
    """
    half = width // 2 + 1

    class Plan:
        def __init__(self, kind):
            self.kind = kind

        def fft(self, a, out, direction):
            a, out = np.asarray(a), np.asarray(out)
            if self.kind == "r2c":
                real = a.reshape(planes, height, -1)[..., :width]
                spectrum = np.fft.rfft2(real)
                out.reshape(planes, height, half)[...] = spectrum
            else:
                spectrum = a.reshape(planes, height, half).copy()
                real = np.fft.irfft2(spectrum, s=(height, width)) * (height * width)
                out.reshape(planes, height, -1)[..., :width] = real

    return Plan("r2c"), Plan("c2r")


@pytest.mark.parametrize("engine, psf_kind", [("dctfft", "separable"), ("dctfft", "symmetric"),
                                              ("extended", "tilted")])
@pytest.mark.parametrize("accelerate, background", [(False, "scalar"), (True, "map")])
def test_gpu_fft_iteration_wiring_runs_richardson_lucy_on_the_host_kernels(lib, monkeypatch, engine, psf_kind,
                                                                           accelerate, background):
    """xrfgpu._gpu_rl.run itself (the FFT engines: reordered DCT with padded in-place transforms, and the
    reflect canvas), every launch run by the host build of the kernels and the transforms by NumPy with
    cuFFT's conventions, equals NumPy's richardson_lucy (float64): the GPU driver's buffers, layouts and
    launch arguments, proved without a GPU."""
    from scipy import ndimage

    from xrfgpu import _gpu_rl, cuda, richardson_lucy
    from xrfgpu._problem import Problem
    from xrfgpu.cuda import CudaKernels
    from xrfgpu.fft import Convolution
    from xrfgpu.psf import gaussian

    rng = np.random.default_rng(31)
    shape = (2, 34, 47)
    truth = np.zeros(shape)
    truth[:, 6:20, 9:31] = 40.0
    truth[0, 24:28, 4:42] = 110.0
    if psf_kind == "separable":
        psf = gaussian(None, 1.8, sigma_y=1.2)
    elif psf_kind == "symmetric":  # symmetric along both axes, not an outer product
        psf = gaussian((13, 13), 1.2) + 0.5 * gaussian((13, 13), 3.0)
    else:
        psf = gaussian(None, 2.0, 1.4, rho=0.4)
    psf = psf / psf.sum()
    b = 5.0 if background == "scalar" else np.linspace(4.0, 6.0, shape[-1])[None, :] * np.ones(shape[-2:])
    y = rng.poisson(np.stack([ndimage.convolve(t, psf, mode="reflect") for t in truth]) + b).astype(np.float64)
    op = Convolution(np.stack([psf, psf]), shape[-2:], iterative=True, engine=engine)
    assert (op.dct_factors is not None) == (psf_kind == "separable")
    canvas_b = op.embed(b) if np.ndim(b) else b
    pb = Problem(xp=np, image=y, psf=np.stack([psf, psf]), background=b, op=op, _data=None,
                 canvas_background=canvas_b)
    fake = _host_cupy(lib)
    k = CudaKernels(fake, 0)
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setitem(sys.modules, "cupy.cuda", fake.cuda)
    monkeypatch.setattr(cuda, "kernels", lambda: k)
    monkeypatch.setattr(cuda, "real_fft_plans", _host_fft_plans)
    monkeypatch.setattr(_gpu_rl, "DIRECT_BLUR", False)
    eps, num_iter = 1e-9, 15
    level = y.mean(axis=(-2, -1), keepdims=True)
    init = np.maximum(level - np.mean(b), 1e-3 * level)
    got = np.asarray(_gpu_rl.run(pb, num_iter=num_iter, eps=eps, init=init, accelerate=accelerate))
    monkeypatch.undo()
    assert got.shape == shape
    for m in range(shape[0]):
        expected = richardson_lucy(y[m], psf, num_iter=num_iter, background=b, filter_epsilon=eps,
                                   accelerate=accelerate)
        np.testing.assert_allclose(got[m], expected, rtol=0, atol=1e-8 * float(expected.max()))


def test_gpu_direct_iteration_falls_back_to_the_strip_pass_for_a_psf_wider_than_the_tile(lib, monkeypatch):
    """A float64 PSF of 127 rows (the tile takes 125 at most) runs _run_direct with the strip column pass,
    and still equals NumPy's richardson_lucy."""
    from xrfgpu import _gpu_rl, richardson_lucy
    from xrfgpu._problem import Problem
    from xrfgpu.cuda import CudaKernels
    from xrfgpu.psf import gaussian

    rng = np.random.default_rng(22)
    shape = (1, 130, 30)
    psf = gaussian((127, 5), 0.9, sigma_y=14.0)  # a tall spot: 127 column taps, 5 row taps
    psf = psf / psf.sum()
    truth = np.zeros(shape)
    truth[:, 40:90, 8:20] = 80.0
    from scipy import ndimage

    y = rng.poisson(ndimage.convolve(truth[0], psf, mode="reflect") + 2.0)[None].astype(np.float64)
    fake = _host_cupy(lib)
    k = CudaKernels(fake, 0)
    pb = Problem.from_validated(y, psf[None], 2.0, iterative=True)
    pb.op = type(pb.op)(psf[None], shape[-2:], iterative=True, engine="dctfft")
    taps = _gpu_rl.direct_taps(pb.op)
    assert taps is not None and taps[0].size == 127
    assert not _gpu_rl.tiled_column_pass_fits(k, 127, np.float64)
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setattr(_gpu_rl, "COL_PASS", "tile")
    level = y.mean()
    got = _gpu_rl._run_direct(pb, k, taps, num_iter=4, eps=1e-9, init=level - 2.0, accelerate=False)
    monkeypatch.delitem(sys.modules, "cupy")
    assert {name for name, *_ in fake.launches if name.startswith("xrfgpu_blur_cols")} == {"xrfgpu_blur_cols"}
    expected = richardson_lucy(y[0], psf, num_iter=4, background=2.0, filter_epsilon=1e-9)
    np.testing.assert_allclose(np.asarray(got[0]), expected, rtol=0, atol=1e-8 * float(expected.max()))
