"""The scan simulator: Poisson statistics, rates, borders, jitter and drift."""

import numpy as np
import pytest
from scipy.signal import fftconvolve

from xrfgpu import simulate
from xrfgpu.psf import gaussian


def test_flat_rates_and_poisson_variance():
    truth = np.zeros((60, 80))
    truth[:, 40:] = 1.0  # left glass, right chrome (the chart continues as glass beyond the window)
    h = gaussian(None, 1.0)
    y = simulate.scan(truth, h, jitter_um=0.0, drift=0.0, seed=0)
    glass, chrome = y[:, 5:30], y[:, 50:75]
    assert y.dtype == np.float32
    assert glass.mean() == pytest.approx(275 * 0.5, rel=0.01)
    assert chrome.mean() == pytest.approx(429 * 0.5, rel=0.01)
    assert chrome.var() == pytest.approx(chrome.mean(), rel=0.1)  # Poisson: variance = mean


def test_expected_map_is_linear_convolution_with_glass_outside():
    rng = np.random.default_rng(3)
    truth = rng.random((40, 40))
    h = gaussian(None, 2.0)
    reps = np.mean([simulate.scan(truth, h, jitter_um=0.0, drift=0.0, dwell_s=50.0, seed=s) for s in range(8)], axis=0)
    expected = 50.0 * (275 + 154 * fftconvolve(truth, h, mode="same"))  # zero padding = glass beyond
    np.testing.assert_allclose(reps, expected, rtol=0.01)
    # the border is darker than a circular blur would make it
    circular = np.real(np.fft.ifft2(np.fft.fft2(truth) * np.fft.fft2(np.fft.ifftshift(np.pad(h, ((0, 40 - h.shape[0]), (0, 40 - h.shape[1]))), axes=(0, 1)))))
    assert not np.allclose(expected[0], 50.0 * (275 + 154 * circular[0]), rtol=0.01)


def test_jitter_blurs_edges_like_an_extra_gaussian():
    truth = np.zeros((400, 60))
    truth[:, 30:] = 1.0
    h = gaussian(None, 0.5)
    y = simulate.scan(truth, h, jitter_um=5.0, drift=0.0, dwell_s=200.0, seed=1)  # jitter 1 px
    prof = (y.mean(axis=0) / 200.0 - 275) / 154
    # edge spread: Gaussian of σ² = 0.5² + 1² → value at one pixel left of the edge centre
    from scipy.stats import norm
    expected = norm.cdf(-0.5, scale=np.hypot(0.5, 1.0))
    assert prof[29] == pytest.approx(expected, abs=0.03)


def test_drift_adds_line_correlated_gain():
    truth = np.zeros((300, 100))
    y = simulate.scan(truth, gaussian(None, 1.0), drift=0.05, jitter_um=0.0, dwell_s=20.0, seed=2)
    line_means = y.mean(axis=1) / (275 * 20.0)
    assert line_means.std() == pytest.approx(0.05, rel=0.3)
    flat = simulate.scan(truth, gaussian(None, 1.0), drift=0.0, jitter_um=0.0, dwell_s=20.0, seed=2)
    assert (flat.mean(axis=1) / (275 * 20.0)).std() < 0.01


def test_seed_reproducible():
    truth = np.zeros((20, 20))
    h = gaussian(None, 1.0)
    np.testing.assert_array_equal(simulate.scan(truth, h, seed=5), simulate.scan(truth, h, seed=5))


@pytest.mark.parametrize("kw", [dict(signal_cps=100.0), dict(dwell_s=0.0), dict(jitter_um=-1.0), dict(oversample=0)])
def test_bad_parameters(kw):
    with pytest.raises(ValueError):
        simulate.scan(np.zeros((10, 10)), gaussian(None, 1.0), **kw)


def test_bad_truth():
    with pytest.raises(ValueError):
        simulate.scan(np.zeros(10), gaussian(None, 1.0))
    with pytest.raises(ValueError):
        simulate.scan(np.full((10, 10), np.nan), gaussian(None, 1.0))
