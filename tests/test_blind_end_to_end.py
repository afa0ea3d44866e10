"""End-to-end checks of the L0 blind method and the hybrid blind-σ → RL pipeline.

Synthetic maps have real borders (a larger scene blurred by linear
convolution and cropped, :mod:`xrfgpu.phantom`); the kernel σ is checked
with a least-squares Gaussian fit written here, independent of
:func:`xrfgpu.psf.sigma_from_kernel`.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import to_numpy
from scipy.optimize import curve_fit

import xrfgpu
from xrfgpu import phantom
from xrfgpu.blind import BlindLevel, blind_l0, blind_rl
from xrfgpu.psf import gaussian


def bars_scene(shape, seed):
    """Text-like 0/1 scene: horizontal and vertical strokes 2–6 px wide, 6–19 px long."""
    rng = np.random.default_rng(seed)
    scene = np.zeros(shape)
    for _ in range(shape[0] * shape[1] // 200):
        r, c = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        width, length = rng.integers(2, 7), rng.integers(6, 20)
        if rng.random() < 0.5:
            scene[r : r + width, c : c + length] = 1.0
        else:
            scene[r : r + length, c : c + width] = 1.0
    return scene


def fitted_sigma(kernel):
    """σ of an isotropic Gaussian fitted by least squares to the kernel (test-side reference)."""
    k = np.asarray(kernel, dtype=np.float64)
    yy, xx = np.mgrid[: k.shape[0], : k.shape[1]]
    c = k.shape[0] // 2

    def model(coords, amplitude, row, col, sigma):
        y, x = coords
        return amplitude * np.exp(-((y - row) ** 2 + (x - col) ** 2) / (2 * sigma**2))

    p0 = (k.max(), c, c, 2.0)
    params, _ = curve_fit(model, (yy.ravel(), xx.ravel()), k.ravel(), p0=p0)
    return abs(params[3])


@pytest.fixture(scope="module")
def text_case():
    sigma, size = 2.5, 96
    psf = gaussian((15, 15), sigma)
    blurred, truth = phantom.blurred_window(bars_scene((size + 30, size + 30), seed=1), psf, (size, size))
    noisy = blurred + 0.01 * np.random.default_rng(2).standard_normal(blurred.shape)
    levels = []
    result = blind_l0(noisy.astype(np.float32), 15, callback=levels.append)
    return sigma, noisy, truth, result, levels


@pytest.mark.slow
def test_text_blind_kernel_is_normalised_centred_gaussian(text_case):
    sigma, _, _, result, _ = text_case
    kernel = to_numpy(result.kernel)
    assert kernel.shape == (15, 15) and kernel.dtype == np.float32
    assert math.isclose(float(kernel.sum()), 1.0, rel_tol=1e-5)
    assert kernel.min() >= 0
    peak = np.unravel_index(np.argmax(kernel), kernel.shape)
    assert max(abs(peak[0] - 7), abs(peak[1] - 7)) <= 1, f"kernel peak at {peak}"
    estimate = fitted_sigma(kernel)
    assert abs(estimate - sigma) <= 0.15 * sigma, f"kernel σ {estimate:.3f} px vs true {sigma} px"


@pytest.mark.slow
def test_text_blind_restoration_beats_blurred_map(text_case):
    """Restored MSE ≤ 60 % of the blurred map's, away from the outer kernel half-width (7 px).

    The border pixels see scene outside the map that no restoration can
    know; they are left out of both MSEs.
    """
    _, noisy, truth, result, _ = text_case
    restored = to_numpy(result.image)
    assert restored.shape == truth.shape
    inner = (slice(7, -7), slice(7, -7))
    mse_blurred = np.mean((noisy - truth)[inner] ** 2)
    mse_restored = np.mean((restored - truth)[inner] ** 2)
    assert mse_restored <= 0.6 * mse_blurred, f"restored/blurred MSE = {mse_restored / mse_blurred:.3f}"
    # the latent image is the [0, 1]-clipped interim image scaled back to the input's range
    latent = to_numpy(result.latent)
    offset, span = result.scale
    assert latent.min() >= offset - 1e-5 and latent.max() <= offset + span + 1e-5


@pytest.mark.slow
def test_text_blind_reports_every_level(text_case):
    *_, result, levels = text_case
    assert result.levels == (15, 11, 9, 7)
    assert [lv.level for lv in levels] == [3, 2, 1, 0]
    assert all(isinstance(lv, BlindLevel) for lv in levels)
    assert [lv.kernel.shape[0] for lv in levels] == [7, 9, 11, 15]
    # λ decays by 1.1 per alternation, carried across levels: 20 alternations in all
    assert math.isclose(levels[-1].lambda_grad, 4e-3 / 1.1**20, rel_tol=1e-9)


def test_blind_l0_same_numbers_on_array_api_strict():
    """One code path: NumPy and array_api_strict agree (float64, one level, one alternation).

    NumPy runs its FFTs through scipy.fft and array_api_strict through
    numpy.fft; their round-off differences pass through hard thresholds, so
    the agreement is to about 1e-4 rather than to machine precision.
    """
    import array_api_compat.numpy as xnp
    import array_api_strict as xps

    psf = gaussian((7, 7), 1.2)
    blurred, _ = phantom.blurred_window(bars_scene((60, 60), seed=4), psf, (40, 40))
    ref = blind_l0(xnp.asarray(blurred), 7, xk_iter=1, final=False)
    got = blind_l0(xps.asarray(blurred), 7, xk_iter=1, final=False)
    assert type(got.kernel).__module__.startswith("array_api_strict")
    np.testing.assert_allclose(to_numpy(got.kernel), to_numpy(ref.kernel), rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(to_numpy(got.latent), to_numpy(ref.latent), rtol=1e-3, atol=1e-4)


def test_final_restoration_runs_on_array_api_strict():
    import array_api_strict as xps

    from xrfgpu.blind.restoration import ringing_artifacts_removal

    psf = gaussian((5, 5), 1.0)
    blurred, truth = phantom.blurred_window(bars_scene((40, 40), seed=5), psf, (30, 30))
    out = ringing_artifacts_removal(xps.asarray(blurred), xps.asarray(psf), xp=xps)
    ref = ringing_artifacts_removal(np.asarray(blurred), np.asarray(psf), xp=xrfgpu._backend.array_namespace(blurred))
    np.testing.assert_allclose(to_numpy(out), to_numpy(ref), rtol=1e-7, atol=1e-9)
    assert np.mean((to_numpy(out) - truth) ** 2) < np.mean((blurred - truth) ** 2)


@pytest.mark.slow
def test_hybrid_pipeline_on_a_bright_poisson_map():
    """Fast check of blind_rl: 128² grains map, σ = 3 px, 2000/100 counts, kernel 17."""
    counts, truth, _ = phantom.observe((128, 128), 3.0, seed=0, signal_counts=2000, background_counts=100)
    result = blind_rl(counts, 17, background=100.0, num_iter=20)
    assert abs(result.sigma - 3.0) <= 0.15 * 3.0, f"blind σ {result.sigma:.3f} px"
    assert result.sigma_um is None and result.background == 100.0
    restored = to_numpy(result.image)
    assert restored.shape == counts.shape and restored.dtype == np.float32
    assert math.isclose(float(to_numpy(result.psf).sum()), 1.0, rel_tol=1e-5)
    assert np.mean((restored - truth) ** 2) < np.mean((counts - 100.0 - truth) ** 2)


@pytest.mark.slow
def test_hybrid_blind_sigma_then_rl_on_poisson_map():
    """XRF-like map (σ = 6 px, 150 signal / 140 background counts): blind σ within 15 %,
    and its RL result beats RL with a σ 15 % too large (the knife-edge bias)."""
    counts, truth, _ = phantom.observe((256, 256), 6.0, seed=0, signal_counts=150, background_counts=140)
    result = blind_rl(counts, background=140.0, pixel_size_um=10.0)
    assert abs(result.sigma - 6.0) <= 0.15 * 6.0, f"blind σ {result.sigma:.3f} px"
    assert math.isclose(result.sigma_um, 10.0 * result.sigma)
    assert math.isclose(float(to_numpy(result.kernel).sum()), 1.0, rel_tol=1e-5)
    too_large = xrfgpu.richardson_lucy(counts, gaussian(None, 6.0 * 1.15), background=140.0, num_iter=30)
    mse_blind = np.mean((to_numpy(result.image) - truth) ** 2)
    mse_large = np.mean((to_numpy(too_large) - truth) ** 2)
    assert mse_blind < mse_large, f"MSE {mse_blind:.1f} (blind σ) vs {mse_large:.1f} (σ +15 %)"


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"kernel_size": 14}, ValueError, "odd"),
        ({"kernel_size": 1}, ValueError, "odd"),
        ({"kernel_size": 31}, ValueError, "too large"),
        ({"kernel_size": 7.0}, TypeError, "odd int"),
        ({"kernel_size": 7, "lambda_pixel": 0, "lambda_grad": 0}, ValueError, "both 0"),
        ({"kernel_size": 7, "lambda_grad": -1.0}, ValueError, "lambda_grad"),
        ({"kernel_size": 7, "xk_iter": 0}, ValueError, "xk_iter"),
    ],
)
def test_blind_l0_rejects_bad_arguments(kwargs, error, match):
    image = np.random.default_rng(0).random((40, 40))
    with pytest.raises(error, match=match):
        blind_l0(image, **kwargs)


def test_blind_l0_rejects_flat_and_non_array_maps():
    with pytest.raises(ValueError, match="flat"):
        blind_l0(np.ones((40, 40)), 7)
    with pytest.raises(TypeError, match="array"):
        blind_l0([[0.0, 1.0]] * 40, 7)
    with pytest.raises(ValueError, match="NaN"):
        blind_l0(np.full((40, 40), np.nan), 7)


def test_blind_rl_rejects_unknown_background_word():
    image = np.random.default_rng(0).poisson(50, (40, 40)).astype(np.float32)
    with pytest.raises(ValueError, match="background"):
        blind_rl(image, 7, background="median")
