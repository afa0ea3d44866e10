"""The CuPy path: kernels against the plain CuPy engine, GPU stacks against NumPy.

Tests marked ``gpu`` need CuPy and a usable CUDA device and skip cleanly
otherwise; nothing here pretends to have run on a GPU. The unmarked tests
check what must hold on every machine: ``import xrfgpu`` neither imports
CuPy nor compiles anything, and asking for the GPU without one says why.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from conftest import require_cupy

from xrfgpu import cuda
from xrfgpu.device import GPUUnavailableError, gpu_available, resolve_device


def test_import_does_not_touch_cuda():
    code = "import sys, xrfgpu, xrfgpu.cuda, xrfgpu.stack, xrfgpu.device; print('cupy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_kernel_source_has_line_markers_and_every_kernel():
    for name, kernels in cuda.KERNEL_FILES.items():
        text = cuda.kernel_source(name)
        assert text.startswith(f'#line 1 "{cuda.HEADER}"')
        assert f'#line 1 "{name}"' in text
        for k in kernels:
            assert f"{k}_f32(" in text and f"{k}_f64(" in text
    with pytest.raises(ValueError, match="unknown kernel file"):
        cuda.kernel_source("nope.cu")


def test_info_reports_without_compiling():
    info = cuda.info()
    assert set(info) >= {"cupy", "gpu", "kernel_dir", "kernel_files", "kernel_cache_dir", "nvcc"}
    assert info["kernel_files"] == sorted(cuda.KERNEL_FILES)


@pytest.mark.skipif(gpu_available(), reason="a CUDA device is usable here")
def test_no_gpu_errors_are_clear():
    with pytest.raises(GPUUnavailableError, match="CuPy|CUDA"):
        cuda.kernels()
    with pytest.raises(GPUUnavailableError):
        resolve_device("gpu", np.ones((2, 2)))
    assert resolve_device("auto", np.ones((2, 2))) == "cpu"
    with pytest.raises(ValueError, match="device must be one of"):
        resolve_device("cuda", np.ones((2, 2)))


# ---------------------------------------------------------------- real GPU only
def _cupy():
    return require_cupy()


@pytest.fixture
def plain_engine():
    from xrfgpu import _elementwise as ew

    yield ew
    ew.set_engine("auto")


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_kernels_equal_plain_cupy(dtype, plain_engine):
    cp = _cupy()
    import array_api_compat.cupy as xcp

    ew = plain_engine
    rng = np.random.default_rng(0)
    shape = (3, 64, 48)
    a, b, c = (cp.asarray(rng.lognormal(0, 2, shape).astype(dtype)) for _ in range(3))
    per_map = cp.asarray(np.array([0.5, 1.0, 2.0], dtype).reshape(3, 1, 1))

    def both(fn, *args, copy_idx=()):
        out = []
        for engine in ("xp", "auto"):
            ew.set_engine(engine)
            call_args = [x.copy() if i in copy_idx else x for i, x in enumerate(args)]
            out.append(fn(*call_args, xp=xcp))
        return out

    for bg, eps in ((0.0, 1e-6), (3.0, 1e-3), (per_map, per_map), (b, 1e-6)):
        plain, fused = both(ew.rl_ratio, a, b - 2.0, bg, eps, copy_idx=(1,))
        cp.testing.assert_array_equal(fused, plain)
    plain, fused = both(ew.rl_update, a, b, copy_idx=(1,))
    cp.testing.assert_array_equal(fused, plain)
    for nonneg in (True, False):
        for step, thr in ((0.5, 0.01), (per_map, per_map * 0.1)):
            plain, fused = both(ew.fista_step, a, b - 1.0, c, step, thr, 0.7, nonneg, copy_idx=(1,))
            cp.testing.assert_allclose(fused[0], plain[0], rtol=1e-6)
            cp.testing.assert_allclose(fused[1], plain[1], rtol=1e-6)
    plain, fused = both(ew.l0_intensity_threshold, a - 1.0, 0.5)
    cp.testing.assert_array_equal(fused, plain)
    plain, fused = both(ew.l0_gradient_term, a, 0.3)
    cp.testing.assert_allclose(fused, plain, rtol=1e-6, atol=1e-6)
    spec = cp.fft.rfftn(a, axes=(-2, -1))
    otf = cp.fft.rfftn(b[0], axes=(-2, -1))
    plain, fused = both(ew.multiply_spectrum, spec, otf, copy_idx=(0,))
    cp.testing.assert_allclose(fused, plain, rtol=1e-6)


@pytest.mark.gpu
@pytest.mark.parametrize("method", ["rl", "wiener", "fista"])
def test_gpu_stack_equals_numpy(method):
    _cupy()
    from xrfgpu import phantom
    from xrfgpu.stack import restore_stack

    maps, psfs = [], []
    for k, sigma in enumerate((1.5, 2.5)):
        counts, _, h = phantom.observe((64, 72), sigma, seed=k)
        maps.append(counts)
        psfs.append(h)
    stack = np.stack(maps)
    kwargs = {"background": 100.0}
    if method != "wiener":
        kwargs["num_iter"] = 10
    cpu = restore_stack(stack, psfs, method, device="cpu", **kwargs)
    gpu = restore_stack(stack, psfs, method, device="gpu", **kwargs)
    assert isinstance(gpu, np.ndarray)  # NumPy in, NumPy out
    np.testing.assert_allclose(gpu, cpu, rtol=1e-3, atol=1e-2)


@pytest.mark.gpu
@pytest.mark.parametrize("accelerate", [False, True])
@pytest.mark.parametrize("graphs", [True, False])
@pytest.mark.parametrize("background", ["scalar", "map"])
def test_fixed_buffer_gpu_rl_equals_numpy(monkeypatch, accelerate, graphs, background):
    """The CUDA-graph RL ("dctfft" engine by its transforms, device-side step length) against NumPy's RL on
    the same map (the real-space blur, the default for these narrow PSFs, is switched off here and tested
    by test_direct_blur_gpu_rl_equals_numpy).

    Independent reference: NumPy's separable/DCT engines and the host-side
    Biggs–Andrews loop. Odd and even sizes, scalar and map backgrounds.
    """
    cp = _cupy()
    import xrfgpu
    from xrfgpu import _gpu_rl, phantom
    from xrfgpu.fft import Convolution

    monkeypatch.setattr(_gpu_rl, "DIRECT_BLUR", False)

    for shape in ((96, 80), (75, 63)):  # even and odd sides the cost model gives to "dctfft"
        counts, _, h = phantom.observe(shape, 2.5, seed=3, background_counts=60.0)
        b = 60.0 if background == "scalar" else np.linspace(50.0, 70.0, shape[1])[None, :] * np.ones(shape)
        assert Convolution(cp.asarray(h), shape, iterative=True).engine == "dctfft"
        cpu = xrfgpu.richardson_lucy(counts, h, num_iter=25, background=b, accelerate=accelerate)
        _gpu_rl.USE_GRAPHS = graphs
        try:
            gpu = xrfgpu.richardson_lucy(cp.asarray(counts), cp.asarray(h), num_iter=25,
                                         background=b if background == "scalar" else cp.asarray(b),
                                         accelerate=accelerate)
        finally:
            _gpu_rl.USE_GRAPHS = True
        assert isinstance(gpu, cp.ndarray)
        np.testing.assert_allclose(cp.asnumpy(gpu), cpu, rtol=0, atol=1e-4 * float(np.abs(cpu).max()))


@pytest.mark.gpu
@pytest.mark.parametrize("accelerate", [False, True])
def test_fixed_buffer_gpu_rl_extended_engine_equals_numpy(accelerate):
    """A tilted spot (not symmetric along the axes): the GPU iteration on the extended engine's canvas."""
    cp = _cupy()
    import xrfgpu
    from xrfgpu import phantom
    from xrfgpu.fft import Convolution
    from xrfgpu.psf import gaussian

    h = gaussian(None, 2.5, 1.8, rho=0.4)
    for shape in ((96, 80), (75, 63)):
        _, truth, _ = phantom.observe(shape, 2.5, seed=5)
        assert Convolution(cp.asarray(h), shape, iterative=True).engine == "extended"
        from scipy import ndimage

        rng = np.random.default_rng(5)
        counts = rng.poisson(ndimage.convolve(truth, h / h.sum(), mode="reflect") + 40.0).astype(np.float32)
        cpu = xrfgpu.richardson_lucy(counts, h, num_iter=20, background=40.0, accelerate=accelerate)
        gpu = xrfgpu.richardson_lucy(cp.asarray(counts), cp.asarray(h), num_iter=20, background=40.0,
                                     accelerate=accelerate)
        np.testing.assert_allclose(cp.asnumpy(gpu), cpu, rtol=0, atol=1e-4 * float(np.abs(cpu).max()))


@pytest.mark.gpu
@pytest.mark.parametrize("accelerate", [False, True])
@pytest.mark.parametrize("background", ["scalar", "map"])
def test_direct_blur_gpu_rl_equals_numpy(monkeypatch, accelerate, background):
    """The real-space separable blur (DIRECT_BLUR, kernels/separable_blur.cu) against NumPy's RL.

    An elongated Gaussian (the two passes use different taps), odd and even sides, one map and a stack of
    three maps sharing the PSF; the direct iteration must actually run (counted).
    """
    cp = _cupy()
    import xrfgpu
    from xrfgpu import _gpu_rl, phantom
    from xrfgpu.psf import gaussian

    h = gaussian(None, 2.5, sigma_y=1.6)
    calls = []
    real = _gpu_rl._run_direct
    monkeypatch.setattr(_gpu_rl, "DIRECT_BLUR", True)
    monkeypatch.setattr(_gpu_rl, "_run_direct", lambda *a, **k: calls.append(1) or real(*a, **k))
    for shape in ((96, 80), (75, 63)):
        _, truth, _ = phantom.observe(shape, 2.5, seed=4)
        from scipy import ndimage

        rng = np.random.default_rng(4)
        counts = rng.poisson(ndimage.convolve(truth, h, mode="reflect") + 60.0).astype(np.float32)
        b = 60.0 if background == "scalar" else np.linspace(50.0, 70.0, shape[1])[None, :] * np.ones(shape)
        cpu = xrfgpu.richardson_lucy(counts, h, num_iter=25, background=b, accelerate=accelerate)
        gpu = xrfgpu.richardson_lucy(cp.asarray(counts), cp.asarray(h), num_iter=25,
                                     background=b if background == "scalar" else cp.asarray(b),
                                     accelerate=accelerate)
        np.testing.assert_allclose(cp.asnumpy(gpu), cpu, rtol=0, atol=1e-4 * float(np.abs(cpu).max()))
    stack = np.stack([counts, counts[::-1], counts[:, ::-1]])
    together = xrfgpu.restore_stack(cp.asarray(stack), h, "rl", num_iter=15, background=60.0,
                                    accelerate=accelerate)
    for k in range(3):
        alone = xrfgpu.richardson_lucy(stack[k], h, num_iter=15, background=60.0, accelerate=accelerate)
        np.testing.assert_allclose(cp.asnumpy(together[k]), alone, rtol=0, atol=1e-4 * float(alone.max()))
    assert len(calls) >= 2


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_tiled_column_pass_equals_the_strip_pass_on_the_device(dtype):
    """xrfgpu_blur_cols_tile against xrfgpu_blur_cols on the device, bit for bit, with each epilogue (the
    blur, the ratio, the update), launched as _gpu_rl._run_direct launches them; and the blur against
    scipy.ndimage.correlate1d(mode='reflect') on the host (several bands and tiles, ragged ends, a stack,
    taps up to the map's side)."""
    cp = _cupy()
    from scipy import ndimage

    from xrfgpu import _gpu_rl

    k = cuda.kernels()
    rng = np.random.default_rng(12)
    for (planes, rows, cols), taps in (((2, 300, 70), 61), ((1, 37, 45), 75), ((3, 64, 129), 9)):
        half = rng.random(taps // 2 + 1) + 0.05
        u = cp.asarray(np.concatenate([half[:0:-1], half]), dtype=dtype)
        src = cp.asarray(rng.random((planes, rows, cols)) * 100, dtype=dtype)
        y = cp.asarray(rng.poisson(30.0, (planes, rows, cols)), dtype=dtype)
        b, e = k.operand(2.5, y), k.operand(1e-6, y)
        start = cp.asarray(rng.random((planes, rows, cols)) + 0.5, dtype=dtype)
        strip_grid = k.grid_rows(cols, planes * -(-rows // k.STRIP))
        tile_grid = k.col_tile_grid(planes, rows, cols, dtype)
        assert _gpu_rl.tiled_column_pass_fits(k, taps, dtype)
        for mode in (_gpu_rl.BLUR, _gpu_rl.RATIO, _gpu_rl.UPDATE):
            by_strip, by_tile = start.copy(), start.copy()
            args = (src, by_strip, u, u.size, planes, rows, cols, mode, y, *b, *e)
            k.function("xrfgpu_blur_cols", dtype)(strip_grid, (k.BLOCK,), args)
            args = (src, by_tile, u, u.size, planes, rows, cols, mode, y, *b, *e)
            k.function("xrfgpu_blur_cols_tile", dtype)(tile_grid, (32 * k.COL_WARPS,), args,
                                                        shared_mem=k.col_tile_bytes(taps, dtype))
            assert bool(cp.array_equal(by_strip, by_tile)), f"mode {mode}, {(planes, rows, cols)}, {taps} taps"
            if mode == _gpu_rl.BLUR:
                expected = ndimage.correlate1d(cp.asnumpy(src).astype(np.float64), cp.asnumpy(u).astype(np.float64),
                                               axis=-2, mode="reflect")
                rtol = 2e-6 if dtype == "float32" else 1e-12
                np.testing.assert_allclose(cp.asnumpy(by_tile), expected, rtol=rtol, atol=0)


@pytest.mark.gpu
def test_fixed_buffer_gpu_rl_on_a_stack_equals_single_maps():
    cp = _cupy()
    import xrfgpu
    from xrfgpu import phantom

    maps, psfs = [], []
    for k, sigma in enumerate((1.5, 2.5, 3.0)):
        counts, _, h = phantom.observe((64, 72), sigma, seed=k)
        maps.append(counts)
        psfs.append(h)
    stack = cp.asarray(np.stack(maps))
    together = xrfgpu.restore_stack(stack, psfs, "rl", num_iter=15, background=[90.0, 100.0, 110.0],
                                    accelerate=True)
    for k in range(3):
        alone = xrfgpu.richardson_lucy(maps[k], psfs[k], num_iter=15, background=90.0 + 10 * k, accelerate=True)
        np.testing.assert_allclose(cp.asnumpy(together[k]), alone, rtol=0, atol=1e-4 * float(alone.max()))


@pytest.mark.gpu
def test_blind_device_pass_equals_the_array_api_expression():
    """One inner pass of the L0 image step (fused closed form on fixed cuFFT plans) against plain CuPy."""
    cp = _cupy()
    import array_api_compat.cupy as xcp

    from xrfgpu.blind.image_step import _DevicePasses

    rng = np.random.default_rng(9)
    shape = (96, 80)
    spec = lambda: cp.fft.rfft2(cp.asarray(rng.standard_normal(shape).astype(np.float32)))  # noqa: E731
    fixed = spec()
    otf_power = cp.asarray(rng.random((96, 41)).astype(np.float32))
    grad_power = cp.asarray((rng.random((96, 41)) * 8).astype(np.float32))
    g = cp.asarray(rng.standard_normal(shape).astype(np.float32))
    for beta, beta_pixel in ((0.008, 0.016), (512.0, 0.0), (3.2e4, 7.9)):
        expected = cp.fft.irfft2((fixed + beta * cp.fft.rfft2(g)) / (otf_power + beta * grad_power + beta_pixel),
                                 s=shape)
        passes = _DevicePasses.create(cp.zeros(shape, cp.float32), otf_power, grad_power, xcp)
        got = passes.solve(fixed, g, beta, beta_pixel)
        scale = float(cp.abs(expected).max())
        np.testing.assert_allclose(cp.asnumpy(got), cp.asnumpy(expected), rtol=0, atol=1e-5 * scale)


@pytest.mark.gpu
def test_blind_gradient_step_device_passes_equal_the_array_api_passes(plain_engine):
    """The whole gradient-only L0 image step with the device passes against plain CuPy.

    (The intensity + gradient step is compared one pass at a time above: its
    hard threshold on intensities makes a random test map flip pixels on
    last-digit differences, which then grow.)
    """
    cp = _cupy()
    import array_api_compat.cupy as xcp

    from xrfgpu.blind.image_step import l0_gradient

    rng = np.random.default_rng(8)
    padded = cp.asarray(rng.random((96, 80)).astype(np.float32))
    kernel = cp.asarray(np.outer(np.hanning(9)[1:-1], np.hanning(9)[1:-1]).astype(np.float32))
    kernel = kernel / kernel.sum()
    fused = cp.array(l0_gradient(padded, kernel, 4e-3, xp=xcp), copy=True)
    plain_engine.set_engine("xp")
    plain = l0_gradient(padded, kernel, 4e-3, xp=xcp)
    np.testing.assert_allclose(cp.asnumpy(fused), cp.asnumpy(plain), rtol=0, atol=1e-4)


@pytest.mark.gpu
def test_fft_plan_pair_shares_one_work_area_and_still_transforms():
    """real_fft_plans: the R2C/C2R pair runs on one cuFFT work area; results equal cupy.fft (an independent path)."""
    cp = _cupy()
    cuda._FFT_PLANS.clear()
    n, h, w = 2, 96, 130
    a = cp.asarray(np.random.default_rng(0).random((n, h, w)), dtype=cp.float32)
    r2c, c2r = cuda.real_fft_plans(h, w, n, cp.float32)
    assert r2c.work_area.ptr == c2r.work_area.ptr
    spectrum = cp.empty((n, h, w // 2 + 1), cp.complex64)
    r2c.fft(a, spectrum, cp.cuda.cufft.CUFFT_FORWARD)
    reference = cp.fft.rfftn(a, axes=(-2, -1))
    assert float(cp.abs(spectrum - reference).max() / cp.abs(reference).max()) < 1e-6
    back = cp.empty_like(a)
    c2r.fft(spectrum, back, cp.cuda.cufft.CUFFT_INVERSE)
    np.testing.assert_allclose(cp.asnumpy(back) / (h * w), cp.asnumpy(a), atol=2e-6)
