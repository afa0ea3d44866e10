"""The joint restoration's dTV dual iteration as two fused CUDA kernels (``kernels/dtv.cu``), proved on the host.

``xrfgpu_dtv_primal`` (``x = z + λw div(r P p)``) and ``xrfgpu_dtv_dual_ascent``
(``g = r P ∇x − δ p``, ``p ← (p + s g) / max(1, |p + s g|)``) replace, on CuPy, the ~20
array-API operations of each dual step of :func:`xrfgpu.joint._weighted_dtv_denoise`. As in
``tests/test_kernels_host.py``, the same ``.cu`` file is built with the host C++ compiler
(no FMA contraction) and called through ctypes on NumPy buffers. The references:

* the array-API expression of the dual step (``joint._project``, ``joint._divergence``,
  ``joint._gradient``, ``_elementwise.dtv_dual_step``), run on NumPy and on
  ``array_api_strict``: equal bit for bit, since every kernel operation is one of the
  expression's, in its order, rounded once;
* the NumPy engine :func:`xrfgpu._elementwise.dtv_denoise_numpy` (equal in value; it skips the
  projection at γ = 0, which can only change a zero's sign);
* independently of xrfgpu's own operators: the kernels' ∇ against ``np.diff`` with a zero last
  difference, and the dot test ⟨∇x, q⟩ = −⟨x, div q⟩ (div the negative adjoint of ∇).

The launcher :meth:`xrfgpu.cuda.CudaKernels.dtv_denoise` and the switch in
``_weighted_dtv_denoise`` run through a stand-in for CuPy whose kernels are the host build
(``test_kernels_host._host_cupy``), so the GPU code path's buffers and launch arguments are
exercised without a GPU. ``gpu``-marked tests at the end run it on a device (skipped here).
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess

import numpy as np
import pytest

from conftest import require_cupy
from test_kernels_host import _host_cupy, call

from xrfgpu import _elementwise as ew
from xrfgpu import joint as J
from xrfgpu._host_kernels import HOST_CXX_FLAGS
from xrfgpu.cuda import HEADER, CudaKernels, kernel_dir

CXX = shutil.which("g++") or shutil.which("c++")
DTYPES = [np.float32, np.float64]
GAMMA = 0.9
host_build = pytest.mark.skipif(CXX is None, reason="no host C++ compiler (g++) found")


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    """``kernels/dtv.cu`` built by the host compiler (:data:`xrfgpu._host_kernels.HOST_CXX_FLAGS`)."""
    out = tmp_path_factory.mktemp("dtv_host") / "libxrfgpu_dtv_host.so"
    src = kernel_dir()
    assert (src / HEADER).is_file()
    cmd = [CXX, *HOST_CXX_FLAGS, "-Wall", "-Wextra", "-Werror", "-I", str(src), "-o", str(out),
           str(src / "dtv.cu")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"host build failed:\n{' '.join(cmd)}\n{proc.stderr}"
    return ctypes.CDLL(str(out))


def test_kernel_sources_are_the_imported_checkouts():
    """The kernels loaded (and built by these tests) are those next to the imported ``xrfgpu`` package, not
    another checkout's that an editable install maps ``xrfgpu._kernels`` to."""
    from pathlib import Path

    import xrfgpu
    from xrfgpu.cuda import kernel_source

    beside = Path(xrfgpu.__file__).resolve().parent.parent / "kernels"
    if not (beside / HEADER).is_file():
        pytest.skip("an installed xrfgpu: its kernels are the package's")
    assert kernel_dir() == beside
    assert (beside / "dtv.cu").read_text(encoding="utf-8") in kernel_source("dtv.cu")


def _namespaces():
    import array_api_compat.numpy as xnp
    import array_api_strict

    array_api_strict.set_array_api_strict_flags(api_version="2024.12")
    return [pytest.param(xnp, id="numpy"), pytest.param(array_api_strict, id="array_api_strict")]


# -- inputs ------------------------------------------------------------------------------


def _inputs(shape, dtype, *, field, params, rw, huber, seed=0):
    """Random inputs of one dual iteration: ``dict`` of z, lam_w, xix, xiy, px, py, step, rw, huber.

    Salted with the cases the boundaries and the ball meet: a map with λw = 0, a dual variable
    exactly on the unit ball and exactly 0, a pixel where ξ has unit length (P removes the
    component along it), zeros in z.
    """
    rng = np.random.default_rng(seed)
    m, rows, cols = shape
    z = rng.gamma(2.0, 20.0, shape).astype(dtype)
    z[0, 0, :2] = 0.0
    lam_w = (rng.gamma(2.0, 1.0, shape) * rng.uniform(0.0, 0.2, (m, 1, 1))).astype(dtype)
    if m > 1:
        lam_w[-1] = 0.0  # a map with λ = 0: x = z whatever p is
    fshape = shape if field == "per-map" else shape[1:]
    xi = rng.normal(size=(2,) + fshape)
    xi = xi / (1.0 + np.sqrt((xi ** 2).sum(axis=0)))  # |ξ| < 1
    xi[(slice(None),) + (0,) * len(fshape)] = [0.6, 0.8]  # |ξ| = 1 at one pixel
    xix, xiy = (np.ascontiguousarray(a, dtype=dtype) for a in xi)
    px, py = (rng.uniform(-0.7, 0.7, shape).astype(dtype) for _ in range(2))
    px[0, 0, 0], py[0, 0, 0] = 1.0, 0.0  # on the ball
    px[0, -1, -1] = py[0, -1, -1] = 0.0
    if params == "per-map":
        step = rng.uniform(0.02, 0.3, (m, 1, 1)).astype(dtype)
        delta = rng.uniform(0.0, 2.0, (m, 1, 1)).astype(dtype)
    else:
        step, delta = dtype(0.125), dtype(0.75)
    return dict(z=z, lam_w=lam_w, xix=xix, xiy=xiy, px=px, py=py, step=step,
                rw=rng.uniform(0.2, 1.0, shape).astype(dtype) if rw else None, huber=delta if huber else None)


def _array_api_dual_iterations(xp, a, n_inner, gamma=GAMMA):
    """The array-API expression of ``n_inner`` dual steps and the final primal (``(x, px, py)`` as NumPy).

    The statement of :func:`xrfgpu.joint._weighted_dtv_denoise`'s loop, step by step, in namespace ``xp``.
    """
    def arr(v):
        return None if v is None else (xp.asarray(v) if isinstance(v, np.ndarray) else v)

    z, lam_w, xix, xiy, px, py, step, rw, huber = (arr(a[k]) for k in
                                                   ("z", "lam_w", "xix", "xiy", "px", "py", "step", "rw", "huber"))
    if not isinstance(a["step"], np.ndarray):  # a scalar step: a Python float, as joint passes one
        step = float(a["step"])
    if a["huber"] is not None and not isinstance(a["huber"], np.ndarray):
        huber = float(a["huber"])

    def primal(px, py):
        qx, qy = J._project(px, py, xix, xiy, gamma)
        if rw is not None:
            qx, qy = rw * qx, rw * qy
        return z + lam_w * J._divergence(qx, qy, xp=xp)

    for _ in range(n_inner):
        x = primal(px, py)
        gx, gy = J._gradient(x, xp=xp)
        gx, gy = J._project(gx, gy, xix, xiy, gamma)
        if rw is not None:
            gx, gy = rw * gx, rw * gy
        if huber is not None:
            gx, gy = gx - huber * px, gy - huber * py
        px, py = ew.dtv_dual_step(px, py, gx, gy, step, xp=xp)
    x = primal(px, py)
    return tuple(np.asarray(v) for v in (x, px, py))


def _per_map_operand(value, dtype):
    """``(array, stride)`` of a step or δ as the kernels take it."""
    if value is None:
        return np.zeros(1, dtype), 0
    v = np.ascontiguousarray(np.asarray(value, dtype=dtype).reshape(-1))
    return v, (1 if v.size > 1 else 0)


def _kernel_dual_iterations(lib, a, n_inner, gamma=GAMMA):
    """The two kernels launched directly: ``n_inner`` × (primal, ascent), then primal. Returns ``(x, px, py)``."""
    z = a["z"]
    dtype = z.dtype.type
    m, rows, cols = z.shape
    px, py = a["px"].copy(), a["py"].copy()
    x = np.full_like(z, np.nan)
    field_plane = rows * cols if a["xix"].ndim == 3 else 0
    rw = a["rw"] if a["rw"] is not None else z
    has_rw, has_huber = int(a["rw"] is not None), int(a["huber"] is not None)
    step, step_stride = _per_map_operand(a["step"], dtype)
    delta, delta_stride = _per_map_operand(a["huber"], dtype)
    lines = m * rows

    def primal():
        call(lib, "xrfgpu_dtv_primal", dtype, z, a["lam_w"], px, py, a["xix"], a["xiy"], field_plane, rw, has_rw,
             gamma, x, lines, rows, cols)

    for _ in range(n_inner):
        primal()
        call(lib, "xrfgpu_dtv_dual_ascent", dtype, x, px, py, a["xix"], a["xiy"], field_plane, rw, has_rw, delta,
             delta_stride, has_huber, step, step_stride, gamma, lines, rows, cols)
    primal()
    return x, px, py


def assert_same(actual, expected, dtype, what):
    assert actual.dtype == dtype, what
    np.testing.assert_array_equal(actual, expected, err_msg=what)
    # bit for bit, a zero's sign included
    np.testing.assert_array_equal(np.signbit(actual), np.signbit(expected), err_msg=f"{what}: sign")


# -- the kernels against the array-API expression --------------------------------------------

SHAPES = [(3, 8, 10), (2, 7, 9), (1, 1, 5), (2, 6, 1)]
LAYOUTS = [("shared", "scalar"), ("per-map", "per-map"), ("shared", "per-map")]
EXTRAS = [(False, False), (True, False), (False, True), (True, True)]


@host_build
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("field, params", LAYOUTS, ids=lambda v: v)
@pytest.mark.parametrize("rw, huber", EXTRAS, ids=["dtv", "reweighted", "huber", "reweighted-huber"])
@pytest.mark.parametrize("n_inner", [1, 4])
def test_fused_dual_iterations_equal_the_array_api_expression(lib, dtype, shape, field, params, rw, huber, n_inner):
    a = _inputs(shape, dtype, field=field, params=params, rw=rw, huber=huber)
    got = _kernel_dual_iterations(lib, a, n_inner)
    import array_api_strict

    expected = _array_api_dual_iterations(array_api_strict, a, n_inner)
    for name, g, e in zip(("x", "px", "py"), got, expected):
        assert_same(g, e, dtype, name)
    assert np.all(np.hypot(got[1], got[2]) <= 1 + 4 * np.finfo(dtype).eps)  # the dual stays in the ball


@host_build
@pytest.mark.parametrize("ref", _namespaces())
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_one_dual_iteration_on_both_namespaces(lib, ref, dtype):
    """One step (primal, ascent, primal) on an odd-sided stack with every term, against NumPy and array_api_strict."""
    a = _inputs((3, 11, 7), dtype, field="per-map", params="per-map", rw=True, huber=True, seed=4)
    got = _kernel_dual_iterations(lib, a, 1)
    expected = _array_api_dual_iterations(ref, a, 1)
    for name, g, e in zip(("x", "px", "py"), got, expected):
        assert_same(g, e, dtype, name)


@host_build
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("gamma", [GAMMA, 0.0])
@pytest.mark.parametrize("rw, huber", EXTRAS, ids=["dtv", "reweighted", "huber", "reweighted-huber"])
def test_fused_dual_iterations_equal_the_numpy_engine(lib, dtype, gamma, rw, huber):
    """Against :func:`xrfgpu._elementwise.dtv_denoise_numpy` (in value: at γ = 0 the engine skips the projection)."""
    a = _inputs((3, 9, 12), dtype, field="shared", params="per-map", rw=rw, huber=huber, seed=2)
    got = _kernel_dual_iterations(lib, a, 6, gamma=gamma)
    x, (px, py) = ew.dtv_denoise_numpy(a["z"], a["lam_w"], a["xix"], a["xiy"], gamma, a["px"], a["py"], a["step"],
                                       6, rw=a["rw"], huber=a["huber"])
    for name, g, e in zip(("x", "px", "py"), got, (x, px, py)):
        assert g.dtype == e.dtype == dtype
        np.testing.assert_array_equal(g, e, err_msg=name)


# -- independent of xrfgpu's operators: the differences and their adjoint -------------------------


def _kernel_gradient(lib, x, dtype):
    """∇x read back from the ascent kernel: with p = 0, γ = 0 (P = 1), no r, no δ and the step 2⁻¹²,
    ``p ← s∇x / max(1, |s∇x|) = s∇x`` exactly for |∇x| < 4096 (a power-of-two scale)."""
    m, rows, cols = x.shape
    px, py = np.zeros_like(x), np.zeros_like(x)
    zero_field = np.zeros((rows, cols), dtype)
    s = np.array([2.0 ** -12], dtype)
    call(lib, "xrfgpu_dtv_dual_ascent", dtype, x, px, py, zero_field, zero_field, 0, x, 0, s, 0, 0, s, 0, 0.0,
         m * rows, rows, cols)
    return px * dtype(4096), py * dtype(4096)


def _kernel_divergence(lib, qx, qy, dtype):
    """div q from the primal kernel: z = 0, λw = 1, γ = 0, no r."""
    m, rows, cols = qx.shape
    zero_field = np.zeros((rows, cols), dtype)
    out = np.empty_like(qx)
    call(lib, "xrfgpu_dtv_primal", dtype, np.zeros_like(qx), np.ones_like(qx), qx, qy, zero_field, zero_field, 0,
         qx, 0, 0.0, out, m * rows, rows, cols)
    return out


@host_build
@pytest.mark.parametrize("shape", [(2, 9, 12), (1, 7, 5), (1, 1, 4), (3, 5, 1)])
def test_kernel_differences_are_neumann_gradient_and_its_negative_adjoint(lib, shape):
    rng = np.random.default_rng(9)
    dtype = np.float64
    x = rng.uniform(-50, 50, shape)
    gx, gy = _kernel_gradient(lib, x, dtype)
    zc, zr = np.zeros(shape[:-1] + (1,)), np.zeros(shape[:-2] + (1, shape[-1]))
    np.testing.assert_allclose(gx, np.concatenate([np.diff(x, axis=-1), zc], axis=-1), rtol=1e-15, atol=1e-12)
    np.testing.assert_allclose(gy, np.concatenate([np.diff(x, axis=-2), zr], axis=-2), rtol=1e-15, atol=1e-12)
    qx, qy = (rng.uniform(-1, 1, shape) for _ in range(2))
    div = _kernel_divergence(lib, qx, qy, dtype)
    lhs = np.sum(gx * qx) + np.sum(gy * qy)
    rhs = -np.sum(x * div)
    assert lhs == pytest.approx(rhs, rel=1e-12, abs=1e-9)


# -- nvcc: the new kernels for both architectures, without spills ----------------------------------


@pytest.mark.nvcc
@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not found on PATH")
def test_fused_kernels_compile_for_sm80_and_sm90_without_spills(tmp_path):
    """``dtv.cu`` with the run-time options (no FMA, no flush-to-zero), warnings as errors, for sm_80 and sm_90:
    ptxas reports every kernel of the file for both, each with 0 bytes of spill stores and loads."""
    import re

    from xrfgpu.cuda import KERNEL_FILES

    cmd = [shutil.which("nvcc"), "-std=c++17", "--fmad=false", "--ftz=false", "--prec-div=true", "-Werror",
           "all-warnings", "-Xptxas", "-v", "-I", str(kernel_dir()), "--fatbin", "-o", str(tmp_path / "dtv.fatbin"),
           "-gencode", "arch=compute_80,code=sm_80", "-gencode", "arch=compute_90,code=sm_90",
           str(kernel_dir() / "dtv.cu")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    entry = (r"Compiling entry function '(\w+)' for '(sm_\d+)'(?:(?!Compiling entry).)*?"
             r"(\d+) bytes spill stores, (\d+) bytes spill loads")
    report = re.findall(entry, proc.stdout + proc.stderr, flags=re.S)
    found = {(name, arch): (int(st), int(ld)) for name, arch, st, ld in report}
    for kernel in KERNEL_FILES["dtv.cu"]:
        assert kernel in ("xrfgpu_dtv_dual", "xrfgpu_dtv_primal", "xrfgpu_dtv_dual_ascent")
        for suffix in ("f32", "f64"):
            for arch in ("sm_80", "sm_90"):
                assert found.get((f"{kernel}_{suffix}", arch)) == (0, 0), (kernel, suffix, arch, found)


# -- the launcher and the switch, through a stand-in for CuPy ------------------------------------


def _standin(lib, monkeypatch):
    """CudaKernels on the host build of ``dtv.cu``, served by ``_elementwise``'s kernel lookup."""
    fake = _host_cupy(lib)
    k = CudaKernels(fake, 0)
    calls = []
    launcher = k.dtv_denoise

    def counted(*args, **kwargs):
        out = launcher(*args, **kwargs)
        calls.append(out is not None)
        return out

    k.dtv_denoise = counted
    monkeypatch.setattr(ew, "_cuda_kernels", lambda xp: k)
    return k, calls


def _denoise(xp, a, lam, w, p, *, n_inner):
    """One outer call of :func:`xrfgpu.joint._weighted_dtv_denoise` in namespace ``xp`` (NumPy out)."""
    def arr(v):
        return None if v is None else xp.asarray(v)

    wa = arr(w)
    x, (px, py) = J._weighted_dtv_denoise(arr(a["z"]), wa, arr(lam), arr(a["xix"]), arr(a["xiy"]), GAMMA,
                                          (arr(p[0]), arr(p[1])), xp=xp, n_inner=n_inner,
                                          wmax=xp.max(wa, axis=(-2, -1), keepdims=True), rw=arr(a["rw"]),
                                          huber=arr(a["huber"]))
    return tuple(np.asarray(v) for v in (x, px, py))


@host_build
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("field", ["shared", "per-map"])
@pytest.mark.parametrize("rw, huber", EXTRAS, ids=["dtv", "reweighted", "huber", "reweighted-huber"])
def test_weighted_dtv_denoise_runs_the_fused_kernels_and_equals_the_array_api_loop(lib, monkeypatch, dtype, field,
                                                                                   rw, huber):
    """``_weighted_dtv_denoise`` with the kernels (the CuPy path: switch, launcher, buffers, launch arguments)
    over three outer calls with the dual warm-started, against the same calls' array-API loop on
    array_api_strict, bit for bit; a map with λ = 0 included."""
    import array_api_compat.numpy as xnp
    import array_api_strict

    shape = (3, 13, 10)
    a = _inputs(shape, dtype, field=field, params="per-map", rw=rw, huber=huber, seed=7)
    rng = np.random.default_rng(8)
    lam = np.array([0.05, 0.0, 0.2], dtype).reshape(3, 1, 1)
    w = rng.gamma(3.0, 10.0, shape).astype(dtype)
    p_ref = p_got = (np.zeros(shape, dtype), np.zeros(shape, dtype))
    z0 = a["z"]
    for outer in range(3):
        a["z"] = z0 * dtype(1 + 0.1 * outer)  # a new EM image per outer call
        ref = _denoise(array_api_strict, a, lam, w, p_ref, n_inner=10)
        with monkeypatch.context() as mp:
            _, calls = _standin(lib, mp)
            before = (p_got[0].copy(), p_got[1].copy())
            got = _denoise(xnp, a, lam, w, p_got, n_inner=10)
            assert calls == [True]  # the fused kernels ran
            np.testing.assert_array_equal(p_got[0], before[0])  # the warm start is left alone
        for name, g, e in zip(("x", "px", "py"), got, ref):
            assert_same(g, e, dtype, f"{name} (outer call {outer})")
        p_ref, p_got = ref[1:], got[1:]
        w = got[0] + dtype(1)  # the next weights: the current estimate, as _run_guided_rl passes
    assert np.all(got[0] >= 0)
    np.testing.assert_array_equal(got[0][1], np.clip(a["z"][1], 0, None))  # λ = 0: x = z


def _two_maps(n=40, seed=5):
    from xrfgpu import psf as psf_mod

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:n, :n]
    truth = 0.2 + 0.8 * (np.hypot(yy - 18, xx - 22) <= 8)
    truth[25:29, 5:30] += 0.6  # a bar in the weak map only
    weak = truth.copy()
    truth[25:29, 5:30] -= 0.6
    stack = np.stack([rng.poisson(300.0 * truth + 5.0), rng.poisson(30.0 * weak + 5.0)]).astype(np.float32)
    return stack, [psf_mod.gaussian(None, 1.2), psf_mod.gaussian(None, 2.0)]


@host_build
@pytest.mark.parametrize("run", ["joint-reweighted", "huber-batch"])
def test_joint_restoration_through_the_fused_launcher_equals_numpy(lib, monkeypatch, run):
    """Whole EM-dTV runs (RL steps on NumPy, every dTV denoising through ``CudaKernels.dtv_denoise`` on the
    host build, the EM image a crop of the canvas) against the same runs on NumPy's engine: equal
    (``assert_array_equal``; the engine skips the projection at γ = 0, which can only flip a zero's sign)."""
    stack, psfs = _two_maps()
    if run == "joint-reweighted":  # the guide's EM-TV (γ = 0), then the weak map with reweighting factors r
        def restore():
            return J.joint_richardson_lucy(stack, psfs, guide=0, background=5.0, weight=0.05, num_iter=12,
                                           reweight_every=4)
    else:  # two weights, the Huber δ on one of them, a field per map
        rng = np.random.default_rng(1)
        xi = rng.normal(size=(2, 2) + stack.shape[1:])
        field = (xi / (1.0 + np.sqrt((xi ** 2).sum(axis=0)))).astype(np.float32)

        def restore():
            return J._batch_run(stack[[1, 1]], [psfs[1]] * 2, [5.0, 5.0], [0, 1], [0.05, 0.2], field, 10, 0.9,
                                "reflect", xp=np, huber=[0.0, 0.5])

    expected = np.asarray(restore())
    fake = _host_cupy(lib)
    k = CudaKernels(fake, 0)
    calls = []

    def through_the_launcher(*args, xp, **kwargs):
        out = k.dtv_denoise(*args, **kwargs)
        calls.append(out is not None)
        return out

    monkeypatch.setattr(J, "dtv_denoise_cuda", through_the_launcher)
    got = np.asarray(restore())
    assert calls and all(calls), calls
    np.testing.assert_array_equal(got, expected)


@host_build
def test_launcher_declines_what_the_kernels_do_not_take(lib):
    """Mixed dtypes, a field of another shape, a step per pixel: None (the caller runs the loop); strided
    arrays are taken (copied)."""
    fake = _host_cupy(lib)
    k = CudaKernels(fake, 0)
    a = _inputs((2, 6, 5), np.float32, field="shared", params="per-map", rw=True, huber=True)
    args = [a[n] for n in ("z", "lam_w", "xix", "xiy")] + [GAMMA, a["px"], a["py"], a["step"], 3]
    assert k.dtv_denoise(*args, rw=a["rw"], huber=a["huber"]) is not None
    mixed = list(args)
    mixed[1] = a["lam_w"].astype(np.float64)
    assert k.dtv_denoise(*mixed, rw=a["rw"]) is None
    assert k.dtv_denoise(*args, rw=a["rw"], huber=a["huber"].astype(np.float64)) is None
    odd_field = list(args)
    odd_field[2] = odd_field[3] = np.zeros((6, 1), np.float32)
    assert k.dtv_denoise(*odd_field) is None
    # a strided EM image (a crop of the canvas) and field: copied once, the same numbers
    canvas = np.zeros((2, 10, 9), np.float32)
    canvas[:, 2:8, 1:6] = a["z"]
    strided = list(args)
    strided[0] = canvas[:, 2:8, 1:6]
    strided[2] = np.asarray(np.swapaxes(np.swapaxes(a["xix"], 0, 1).copy(), 0, 1))
    assert not (strided[0].flags.c_contiguous or strided[2].flags.c_contiguous)
    contiguous = k.dtv_denoise(*args, rw=a["rw"], huber=a["huber"])
    from_views = k.dtv_denoise(*strided, rw=a["rw"], huber=a["huber"])
    for g, e in zip((from_views[0], *from_views[1]), (contiguous[0], *contiguous[1])):
        np.testing.assert_array_equal(g, e)
    assert k.dtv_denoise(*args[:7], np.ones((2, 6, 5), np.float32), 3) is None  # a step per pixel
    assert k.dtv_denoise(*args[:7], np.ones((1, 2, 1), np.float32), 3) is None  # per row, not per map
    assert ew.dtv_denoise_cuda(*args, xp=np) is None  # not CuPy: no kernels


# -- on a GPU (skipped without one) --------------------------------------------------------------


def _cupy():
    return require_cupy()


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("rw, huber", EXTRAS, ids=["dtv", "reweighted", "huber", "reweighted-huber"])
def test_fused_kernels_on_the_gpu_equal_the_array_api_loop_and_numpy(monkeypatch, dtype, rw, huber):
    """On CuPy: ``_weighted_dtv_denoise`` through the fused kernels (counted) equals the same call with the
    engine ``"xp"`` (CuPy's array-API loop) and NumPy's engine."""
    cupy = _cupy()
    import array_api_compat.cupy as xcp

    shape = (3, 33, 40)
    a = _inputs(shape, dtype, field="per-map", params="per-map", rw=rw, huber=huber, seed=11)
    lam = np.array([0.05, 0.0, 0.2], dtype).reshape(3, 1, 1)
    w = np.random.default_rng(12).gamma(3.0, 10.0, shape).astype(dtype)
    p0 = (np.zeros(shape, dtype), np.zeros(shape, dtype))
    calls = _record_fused_calls(monkeypatch)
    fused = _cupy_denoise(cupy, xcp, a, lam, w, p0)
    assert calls == [True]
    ew.set_engine("xp")
    try:
        plain = _cupy_denoise(cupy, xcp, a, lam, w, p0)
    finally:
        ew.set_engine("auto")
    assert calls == [True]
    import array_api_compat.numpy as xnp

    host = _denoise(xnp, a, lam, w, p0, n_inner=10)
    # the same operations in the same order: equal up to how CuPy's loop rounds its Python-float scalars
    tol = dict(rtol=1e-5, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-10)
    moving = lam.reshape(-1) > 0  # NumPy's engine leaves the dual of a map with λ = 0 alone (x = z there)
    for name, f, p_, h in zip(("x", "px", "py"), fused, plain, host):
        np.testing.assert_allclose(f, p_, **tol, err_msg=name)
        np.testing.assert_allclose(f if name == "x" else f[moving], h if name == "x" else h[moving], **tol,
                                   err_msg=name)


def _record_fused_calls(monkeypatch):
    """A list that gets, per call of ``CudaKernels.dtv_denoise``, whether the fused kernels ran (True) or
    declined the arguments (False, the caller then runs the array-API loop)."""
    from xrfgpu import cuda

    calls = []
    launcher = cuda.CudaKernels.dtv_denoise

    def counted(self, *args, **kwargs):
        out = launcher(self, *args, **kwargs)
        calls.append(out is not None)
        return out

    monkeypatch.setattr(cuda.CudaKernels, "dtv_denoise", counted)
    return calls


def _cupy_denoise(cupy, xcp, a, lam, w, p):
    def arr(v):
        return None if v is None else cupy.asarray(v)

    wa = arr(w)
    x, (px, py) = J._weighted_dtv_denoise(arr(a["z"]), wa, arr(lam), arr(a["xix"]), arr(a["xiy"]), GAMMA,
                                          (arr(p[0]), arr(p[1])), xp=xcp, n_inner=10,
                                          wmax=xcp.max(wa, axis=(-2, -1), keepdims=True), rw=arr(a["rw"]),
                                          huber=arr(a["huber"]))
    return tuple(cupy.asnumpy(v) for v in (x, px, py))


@pytest.mark.gpu
def test_joint_restoration_on_the_gpu_runs_the_fused_kernels_and_equals_numpy(monkeypatch):
    """``joint_richardson_lucy`` on CuPy with reweighting (the ``rw`` term), every dTV call through the fused
    kernels, against NumPy."""
    cupy = _cupy()
    from xrfgpu import psf as psf_mod

    rng = np.random.default_rng(5)
    n = 48
    yy, xx = np.mgrid[:n, :n]
    truth = 0.2 + 0.8 * (np.hypot(yy - 20, xx - 26) <= 9)
    psfs = [psf_mod.gaussian(None, 1.2), psf_mod.gaussian(None, 2.0)]
    stack = np.stack([rng.poisson(300.0 * truth + 5.0), rng.poisson(30.0 * truth + 5.0)]).astype(np.float32)
    kwargs = dict(guide=0, background=5.0, weight=0.05, num_iter=30, reweight_every=10)
    calls = _record_fused_calls(monkeypatch)
    gpu = cupy.asnumpy(J.joint_richardson_lucy(cupy.asarray(stack), [cupy.asarray(h) for h in psfs], **kwargs))
    assert calls and all(calls)
    cpu = np.asarray(J.joint_richardson_lucy(stack, psfs, **kwargs))
    np.testing.assert_allclose(gpu, cpu, rtol=1e-3, atol=2e-2)
