"""CPU speed of RL, Wiener and FISTA against scikit-image and against the transform floor.

Maps: seeded grains-and-veins phantoms (512², 1024², 2048², float32, σ = 7.5 px,
61 × 61 PSF, 100 background counts; :func:`conftest.observed`). Equal iteration
counts for xrfgpu and scikit-image. The *floor* of one RL/FISTA iteration is
the cost of the transforms it needs: two forward and two inverse transforms
of the operator's canvas (real FFTs of the padded canvas, or DCT-II of the
map for the reflect-boundary DCT engine of symmetric PSFs); the padded
real-FFT floor (2 rfft2 + 2 irfft2 of the 2-PSF-padded canvas) is reported too.
The Gaussian spot (ρ = 0) is separable, so RL and FISTA run the separable
engine (1-D passes), which is held to the 2-D real-FFT floor of the extended
engine's canvas; a tilted spot (ρ = 0.3, group ``rl-tilted-1024``) measures
the 2-D extended engine against the same floor.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import BACKGROUND, four_transforms, mse, observed

import xrfgpu
from xrfgpu._backend import fft_size, irfft2, rfft2
from xrfgpu.fft import Convolution, default_pad

SIZES = [512, 1024, 2048]
ITERS = 10


def rounds(size):
    return {512: 5, 1024: 3, 2048: 2}[size]


def run(benchmark, fn, size, **info):
    benchmark.extra_info.update(info)
    benchmark.extra_info.setdefault("iterations", 1)
    return benchmark.pedantic(fn, rounds=rounds(size), iterations=1, warmup_rounds=1)


def psf32(psf):
    return (psf / psf.sum()).astype(np.float32)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"size={s}-dtype=float32")
def test_rl_xrfgpu(benchmark, size):
    benchmark.group = f"rl-{size}"
    counts, truth, psf = observed(size)
    out = run(benchmark, lambda: xrfgpu.richardson_lucy(counts, psf, num_iter=ITERS, background=BACKGROUND), size,
              role="xrfgpu", iterations=ITERS, compare_to="skimage", per_iteration_floor=True)
    benchmark.extra_info["mse"] = mse(out, truth)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"size={s}-dtype=float32")
def test_rl_skimage(benchmark, size):
    from skimage.restoration import richardson_lucy

    benchmark.group = f"rl-{size}"
    counts, truth, psf = observed(size)
    h = psf32(psf)
    # scikit-image has no background term: it restores the raw counts; compare MSE after subtracting it
    out = run(benchmark, lambda: richardson_lucy(counts, h, num_iter=ITERS, clip=False), size,
              role="skimage", iterations=ITERS)
    benchmark.extra_info["mse"] = mse(out - BACKGROUND, truth)


def _transform_floor(benchmark, size, method, *, pad_factor):
    """Time 2 forward + 2 inverse transforms of the operator ``method`` builds (its iteration's floor).

    The extended engine's transforms are real FFTs of its transform canvas
    (the map plus the PSF's reach, rounded to a fast length), written into
    reused buffers as the engine does.
    """
    benchmark.group = f"{method}-{size}"
    counts, _, psf = observed(size)
    op = Convolution(psf32(psf), counts.shape, pad_factor=pad_factor, iterative=True)
    shape = op.transform_shape
    four = four_transforms(op, counts)
    run(benchmark, four, size, role="floor", engine=op.engine, canvas=f"{shape[0]}x{shape[1]}")


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"size={s}-dtype=float32")
def test_rl_transform_floor(benchmark, size):
    """2 forward + 2 inverse transforms of the operator RL builds (the iteration's floor)."""
    _transform_floor(benchmark, size, "rl", pad_factor=2)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"size={s}-dtype=float32")
def test_rl_padded_rfft_floor(benchmark, size):
    """2 rfft2 + 2 irfft2 of the canvas padded by 2 PSF extents (the classic FFT floor)."""
    benchmark.group = f"rl-{size}"
    counts, _, psf = observed(size)
    n = fft_size(size + 2 * default_pad(psf.shape, 2))
    x = np.random.default_rng(0).random((n, n), dtype=np.float32)

    def four():
        a = irfft2(rfft2(x, xp=np), (n, n), xp=np)
        return irfft2(rfft2(a, xp=np), (n, n), xp=np)

    run(benchmark, four, size, role="rfft-floor", canvas=f"{n}x{n}")


TILTED_SIZE = 1024


def _tilted_psf():
    """A tilted elliptical spot (σu = 7.5, σv = 5.5 px, ρ = 0.3): not separable, so RL uses the 2-D extended engine."""
    return psf32(xrfgpu.psf.gaussian((61, 61), 7.5, 5.5, rho=0.3))


def test_rl_tilted_psf_xrfgpu(benchmark):
    benchmark.group = f"rl-tilted-{TILTED_SIZE}"
    counts, _, _ = observed(TILTED_SIZE)
    h = _tilted_psf()
    op = Convolution(h, counts.shape, iterative=True)
    run(benchmark, lambda: xrfgpu.richardson_lucy(counts, h, num_iter=ITERS, background=BACKGROUND), TILTED_SIZE,
        role="xrfgpu", iterations=ITERS, per_iteration_floor=True, engine=op.engine)


def test_rl_tilted_psf_transform_floor(benchmark):
    benchmark.group = f"rl-tilted-{TILTED_SIZE}"
    counts, _, _ = observed(TILTED_SIZE)
    op = Convolution(_tilted_psf(), counts.shape, iterative=True)
    shape = op.transform_shape
    run(benchmark, four_transforms(op, counts), TILTED_SIZE, role="floor", engine=op.engine,
        canvas=f"{shape[0]}x{shape[1]}")


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"size={s}-dtype=float32")
def test_fista_xrfgpu(benchmark, size):
    benchmark.group = f"fista-{size}"
    counts, truth, psf = observed(size)
    out = run(benchmark, lambda: xrfgpu.fista(counts, psf, num_iter=ITERS, background=BACKGROUND), size,
              role="xrfgpu", iterations=ITERS, per_iteration_floor=True)
    benchmark.extra_info["mse"] = mse(out, truth)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"size={s}-dtype=float32")
def test_fista_transform_floor(benchmark, size):
    _transform_floor(benchmark, size, "fista", pad_factor=4)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"size={s}-dtype=float32")
def test_wiener_xrfgpu(benchmark, size):
    benchmark.group = f"wiener-{size}"
    counts, truth, psf = observed(size)
    out = run(benchmark, lambda: xrfgpu.wiener(counts, psf, balance=0.01, background=BACKGROUND), size,
              role="xrfgpu", compare_to="skimage")
    benchmark.extra_info["mse"] = mse(out, truth)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"size={s}-dtype=float32")
def test_wiener_skimage(benchmark, size):
    from skimage.restoration import wiener

    benchmark.group = f"wiener-{size}"
    counts, truth, psf = observed(size)
    h = psf32(psf)
    out = run(benchmark, lambda: wiener(counts - BACKGROUND, h, balance=0.01, clip=False), size, role="skimage")
    benchmark.extra_info["mse"] = mse(out, truth)


# -- accelerated RL: time to the I-divergence of 50 plain iterations -----------------------------------

ACCEL_SIZE = 1024
_ACCEL = {}


def _idiv(counts, estimate, psf):
    """I-divergence of the model h ⊛ x + b (reflect boundary, scipy) against the counts."""
    from scipy import ndimage

    model = ndimage.convolve(np.asarray(estimate, np.float64), psf / psf.sum(), mode="reflect") + BACKGROUND
    y = counts.astype(np.float64)
    pos = y > 0
    return float(np.sum(np.where(pos, y * np.log(np.where(pos, y, 1) / model), 0) - y + model))


def _accel_iterations():
    """Fewest accelerated iterations whose I-divergence is at most that of 50 plain ones (computed once)."""
    if not _ACCEL:
        counts, _, psf = observed(ACCEL_SIZE)
        target = _idiv(counts, xrfgpu.richardson_lucy(counts, psf, num_iter=50, background=BACKGROUND), psf)
        k = None
        for k in range(2, 51):
            est = xrfgpu.richardson_lucy(counts, psf, num_iter=k, background=BACKGROUND, accelerate=True)
            if _idiv(counts, est, psf) <= target:
                break
        _ACCEL.update(target=target, k=k)
    return _ACCEL["k"], _ACCEL["target"]


def test_accelerated_rl_to_50_plain(benchmark):
    benchmark.group = f"rl-accel-{ACCEL_SIZE}"
    counts, truth, psf = observed(ACCEL_SIZE)
    k, target = _accel_iterations()
    out = run(benchmark, lambda: xrfgpu.richardson_lucy(counts, psf, num_iter=k, background=BACKGROUND,
                                                         accelerate=True), ACCEL_SIZE,
              role="xrfgpu", compare_to="skimage", iterations=k, target_idiv=target)
    benchmark.extra_info["mse"] = mse(out, truth)


def test_skimage_plain_rl_50(benchmark):
    from skimage.restoration import richardson_lucy

    benchmark.group = f"rl-accel-{ACCEL_SIZE}"
    counts, truth, psf = observed(ACCEL_SIZE)
    h = psf32(psf)
    out = benchmark.pedantic(lambda: richardson_lucy(counts, h, num_iter=50, clip=False), rounds=1, iterations=1)
    benchmark.extra_info.update(role="skimage", iterations=50, mse=mse(out - BACKGROUND, truth))
