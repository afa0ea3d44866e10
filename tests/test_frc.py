"""Fourier ring correlation (xrfgpu.frc) against analytic truths.

* identical images correlate with 1 in every ring;
* independent white noise gives 0 with the spread ``1 / √n_eff`` the
  module claims (with and without the Hann window);
* two noisy copies of a band-limited scene of known spectrum follow the
  analytic ``SNR / (1 + SNR)`` ring by ring, and the 1/7 and half-bit
  crossings land where the analytic curve crosses;
* the half-bit curve's closed-form values; binomial thinning keeps the
  counts and gives halves of half the mean, uncorrelated.
"""

import math

import numpy as np
import pytest

from conftest import to_numpy
from xrfgpu._backend import array_device
from xrfgpu.frc import (
    FourierRings,
    fft_frequencies,
    fourier_ring_correlation,
    frc_resolution,
    half_bit_threshold,
    split_counts,
)


def _scene_and_noise(shape, *, amplitude, f0, noise_sd, seed):
    """A periodic scene with ring power ``N · amplitude² exp(−(f/f0)²)`` and two white-noise copies (NumPy)."""
    rng = np.random.default_rng(seed)
    rows, cols = shape
    f = np.hypot(np.fft.fftfreq(rows)[:, None], np.fft.rfftfreq(cols)[None, :])
    z = np.fft.rfft2(rng.normal(size=shape))
    scene = np.fft.irfft2(z * amplitude * np.exp(-0.5 * (f / f0) ** 2), s=shape)
    return scene, scene + noise_sd * rng.normal(size=shape), scene + noise_sd * rng.normal(size=shape)


def test_identical_images_correlate_with_one(xp):
    a = np.random.default_rng(1).normal(size=(40, 56))
    curve = fourier_ring_correlation(xp.asarray(a), xp.asarray(a))
    np.testing.assert_allclose(curve.correlation[1:], 1.0, rtol=1e-12)
    # the rings count the full plane's pixels up to Nyquist (the half plane counted twice)
    f = np.hypot(np.fft.fftfreq(40)[:, None], np.fft.fftfreq(56)[None, :])
    ring = np.floor(f * 40 + 0.5)
    assert curve.ring_pixels.sum() == np.sum(ring <= 20)
    np.testing.assert_allclose(curve.frequency, np.arange(21) / 40)


@pytest.mark.parametrize("window", ["hann", None])
def test_independent_noise_gives_zero_with_the_claimed_spread(xp, window):
    rng = np.random.default_rng(2)
    z = []
    for _ in range(6):
        a, b = rng.normal(size=(96, 120)), rng.normal(size=(96, 120))
        curve = fourier_ring_correlation(xp.asarray(a), xp.asarray(b), window=window)
        z.append(curve.correlation[2:] * np.sqrt(curve.effective_pixels[2:]))
    z = np.concatenate(z)
    assert abs(np.mean(z)) < 4 / math.sqrt(z.size)
    assert 0.85 < np.std(z) < 1.15  # the noise level 1/√n_eff the uncertainty and half-bit curve use


def test_noisy_copies_follow_the_analytic_snr_curve(xp):
    shape, amplitude, f0, sd = (192, 160), 3.0, 0.08, 1.0
    _, a, b = _scene_and_noise(shape, amplitude=amplitude, f0=f0, noise_sd=sd, seed=3)
    curve = fourier_ring_correlation(xp.asarray(a), xp.asarray(b), window=None)
    snr = amplitude**2 * np.exp(-((curve.frequency / f0) ** 2)) / sd**2
    expected = snr / (1 + snr)
    sd_ring = (1 - expected**2) / np.sqrt(curve.effective_pixels)
    inside = slice(3, None)
    assert np.all(np.abs(curve.correlation[inside] - expected[inside]) < 5 * sd_ring[inside] + 0.02)
    # 1/7 is crossed where SNR = 1/6: f = f0 √ln(6 A² / v)
    truth = f0 * math.sqrt(math.log(6 * amplitude**2 / sd**2))
    res = frc_resolution(curve, threshold="1/7")
    assert res.crossed and res.threshold == "1/7"
    assert abs(res.frequency - truth) < max(4 * res.uncertainty, 0.01 * truth)
    assert res.resolution_px == pytest.approx(1 / res.frequency)
    # the half-bit curve: where the analytic FRC meets T(n_eff) of the smoothed rings
    hb = frc_resolution(curve, threshold="half-bit")
    f = np.linspace(0.01, 0.5, 5000)
    n = np.interp(f, curve.frequency, np.convolve(curve.effective_pixels, np.ones(3), mode="same"))
    s = amplitude**2 * np.exp(-((f / f0) ** 2)) / sd**2
    truth_hb = f[np.nonzero(s / (1 + s) < half_bit_threshold(n))[0][0]]
    assert abs(hb.frequency - truth_hb) < max(4 * hb.uncertainty, 0.01 * truth_hb)
    # rings of a few hundred effective pixels: the half-bit curve (≈ 0.23) lies above 1/7
    assert hb.frequency < res.frequency


def test_the_window_keeps_a_non_periodic_scene_honest(xp):
    # a ramp is far from periodic: unwindowed, its border jump correlates the two copies out to Nyquist
    rows, cols = 128, 128
    ramp = np.add.outer(np.arange(rows), np.arange(cols)) * 0.5
    rng = np.random.default_rng(4)
    a = ramp + rng.normal(size=(rows, cols))
    b = ramp + rng.normal(size=(rows, cols))
    plain = frc_resolution(fourier_ring_correlation(xp.asarray(a), xp.asarray(b), window=None))
    windowed = frc_resolution(fourier_ring_correlation(xp.asarray(a), xp.asarray(b)))
    assert plain.frequency > 0.3  # fooled by the borders
    assert windowed.frequency < 0.1  # a ramp has nothing beyond its lowest rings


def test_a_curve_that_never_falls_reports_nyquist():
    a = np.random.default_rng(5).normal(size=(32, 32))
    res = frc_resolution(fourier_ring_correlation(a, a))
    assert not res.crossed and res.frequency == pytest.approx(0.5) and res.resolution_px == pytest.approx(2.0)


def test_half_bit_threshold_values():
    # van Heel & Schatz (2005): 1 for a single pixel, (0.2071 / 1.2071) for infinite rings
    np.testing.assert_allclose(half_bit_threshold([1.0, 1e16]), [1.0, 0.2071 / 1.2071], rtol=1e-6)
    n = 100.0
    assert half_bit_threshold(n) == pytest.approx((0.2071 + 0.19102) / (1.2071 + 0.09102))


def test_split_counts_is_binomial_thinning(xp):
    rng = np.random.default_rng(6)
    counts = rng.poisson(40.0, size=(80, 80)).astype(np.float32)
    first, second = split_counts(xp.asarray(counts), fraction=0.5, seed=1)
    assert first.dtype == xp.float32
    f, s = to_numpy(first), to_numpy(second)  # as a CuPy array would be read back
    np.testing.assert_array_equal(f + s, counts)
    assert abs(f.mean() - 20.0) < 0.5 and abs(s.mean() - 20.0) < 0.5
    assert abs(np.var(f) / f.mean() - 1.0) < 0.1  # Poisson: variance = mean
    assert abs(np.corrcoef(f.ravel(), s.ravel())[0, 1]) < 0.05  # independent halves


@pytest.mark.parametrize("call, message", [
    (lambda: fourier_ring_correlation(np.zeros((16, 16)), np.zeros((16, 17))), "differ in shape"),
    (lambda: fourier_ring_correlation(np.zeros((4, 16)), np.zeros((4, 16))), "at least 8"),
    (lambda: fourier_ring_correlation(np.zeros((16, 16)), np.zeros((16, 16)), bin_width=0.5), "bin_width"),
    (lambda: fourier_ring_correlation(np.zeros((16, 16)), np.zeros((16, 16)), window="tukey"), "window"),
    (lambda: frc_resolution(fourier_ring_correlation(np.ones((16, 16)), np.ones((16, 16))), threshold="0.5"),
     "threshold"),
    (lambda: frc_resolution(fourier_ring_correlation(np.ones((16, 16)), np.ones((16, 16))), smooth=2), "smooth"),
    (lambda: FourierRings((16, 16), xp=np).correlation(np.zeros((8, 8)), np.zeros((8, 8))), "rings were built"),
    (lambda: split_counts(np.full((8, 8), 1.5)), "integer counts"),
    (lambda: split_counts(np.ones((8, 8)), fraction=1.0), "fraction"),
])
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("n", [1, 2, 7, 8, 64, 75])
def test_fft_frequencies_are_numpys_on_any_device(xp, n):
    # built from arange because array-api-compat's CuPy fftfreq refuses a CUDA device (H200 run, 2026-11-27)
    device = array_device(xp.zeros(1))
    np.testing.assert_array_equal(to_numpy(fft_frequencies(n, xp=xp, device=device)), np.fft.fftfreq(n))
    np.testing.assert_array_equal(to_numpy(fft_frequencies(n, xp=xp, device=device, half=True)), np.fft.rfftfreq(n))
