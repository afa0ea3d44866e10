"""σ from a map with scan stripes: a gain that changes from one scan line to the next.

Beam-current drift or a fly scan's line overhead multiplies each row by its own gain. That adds the
same offset along a whole row, whose power lies on the kx = 0 axis of the spectrum at every ky, and
the ring spectrum read it as scene and noise power: with 3 % row-to-row jitter `estimate_sigma` gave
σ 3–30× too small. The truth here is the σ the maps were blurred with (`xrfgpu.phantom.observe`).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from xrfgpu import phantom
from xrfgpu.psf import estimate_sigma
from xrfgpu.psf.blind_sigma import _STRIPE_RATIO


def _map(seed, sigma, size=192):
    counts, _, _ = phantom.observe((size, size), sigma, seed=seed, signal_counts=2000.0, background_counts=100.0)
    return np.asarray(counts, dtype=np.float64)


def _quiet(image):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimate_sigma(image)


@pytest.mark.slow
@pytest.mark.parametrize("seed, sigma", [(0, 3.0), (1, 6.0)])
def test_row_and_column_stripes_are_left_out(seed, sigma):
    counts = _map(seed, sigma)
    gain = 1.0 + 0.03 * np.random.default_rng(seed).standard_normal(counts.shape[0])
    striped = _quiet(counts * gain[:, None])
    assert striped.details["stripes"] == ["rows"]
    assert striped.details["stripe_ratio_rows"] > _STRIPE_RATIO
    assert "stripes" in striped.evidence
    assert striped.sigma == pytest.approx(sigma, rel=0.2)  # was 0.03–0.3 × σ with the axis in the rings
    columns = _quiet((counts * gain[:, None]).T)
    assert columns.details["stripes"] == ["columns"]
    assert columns.sigma == pytest.approx(sigma, rel=0.2)


@pytest.mark.slow
def test_maps_without_stripes_keep_their_axes():
    est = _quiet(_map(1, 6.0))
    assert est.details["stripes"] == []
    assert max(est.details["stripe_ratio_rows"], est.details["stripe_ratio_columns"]) < _STRIPE_RATIO
    assert "stripes" not in est.evidence


@pytest.mark.slow
def test_axis_aligned_bars_are_not_stripes():
    # bars along the scan axes put their edges' power on the axes too, but it falls with the blur;
    # sharp bars (σ 1.5 px) at high counts are the hardest case for the ratio
    rng = np.random.default_rng(4)
    scene = np.zeros((224, 224))
    for k in range(12):
        r0, c0 = rng.integers(0, 200, 2)
        if k % 2:
            scene[r0 : r0 + 24, c0 : c0 + rng.integers(3, 9)] = 1.0
        else:
            scene[r0 : r0 + rng.integers(3, 9), c0 : c0 + 24] = 1.0
    ky = np.fft.fftfreq(224)[:, None]
    kx = np.fft.rfftfreq(224)[None, :]
    blurred = np.fft.irfft2(np.fft.rfft2(scene) * np.exp(-2 * np.pi**2 * 1.5**2 * (kx**2 + ky**2)), s=scene.shape)
    counts = rng.poisson(100.0 + 2000.0 * np.clip(blurred[16:208, 16:208], 0, None)).astype(np.float64)
    est = _quiet(counts)
    assert est.details["stripes"] == []
    assert max(est.details["stripe_ratio_rows"], est.details["stripe_ratio_columns"]) < 0.8 * _STRIPE_RATIO
