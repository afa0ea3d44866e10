"""σ from a map with missing pixels: wide holes are left out by reading σ on the largest clear rectangle.

A band of lost scan lines filled with its nearest measured pixels has a seam, a step as long as the band,
that the spectrum reads as a sharp scene: σ came out at the estimator's 0.4 px floor. The references here
are a brute-force search for the largest clear rectangle and the σ of the same map with nothing missing.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

import xrfgpu
from xrfgpu import phantom
from xrfgpu.front_door import _estimate_sigma, filled_for_estimators, sigma_region, sigma_from_map


def _largest_clear_area(bad):
    """Brute force: the largest area of an axis-aligned rectangle holding no True pixel of ``bad``."""
    rows, cols = bad.shape
    csum = np.pad(np.cumsum(np.cumsum(bad, 0), 1), ((1, 0), (1, 0)))
    best = 0
    for r0, r1 in itertools.combinations(range(rows + 1), 2):
        for c0, c1 in itertools.combinations(range(cols + 1), 2):
            if csum[r1, c1] - csum[r0, c1] - csum[r1, c0] + csum[r0, c0] == 0:
                best = max(best, (r1 - r0) * (c1 - c0))
    return best


@pytest.mark.parametrize("seed", range(6))
def test_the_rectangle_is_the_largest_without_wide_holes(seed):
    rng = np.random.default_rng(seed)
    w = np.ones((14, 17))
    for _ in range(3):  # a few wide holes (3 x 3 blocks: the middle lies 2 px from any measured pixel)
        r, c = rng.integers(0, 12), rng.integers(0, 15)
        w[r:r + 3, c:c + 3] = 0
    w[rng.random(w.shape) < 0.03] = 0  # and isolated dead pixels, which may stay inside the rectangle
    rows, cols, note = sigma_region(w, min_side=1)
    from scipy import ndimage

    missing = w == 0
    labels, _ = ndimage.label(missing)
    wide = np.isin(labels, np.unique(labels[ndimage.distance_transform_edt(missing) > 1.5]))
    wide &= missing
    assert not wide[rows, cols].any()
    assert (rows.stop - rows.start) * (cols.stop - cols.start) == _largest_clear_area(wide)
    assert "largest rectangle" in note


def test_narrow_holes_leave_the_whole_map_and_a_tiny_clear_rectangle_is_said_unreliable():
    w = np.ones((80, 90))
    w[40:42, :] = 0  # two lost lines, dead pixels beside them: every missing pixel within √2 px of a measured one
    w[::7, ::11] = 0
    assert sigma_region(w) is None
    w = np.ones((80, 90))
    w[10:14, :] = w[30:34, :] = w[50:54, :] = w[70:74, :] = 0  # no 32 px strip left between the bands
    rows, cols, note = sigma_region(w)
    assert rows is None and cols is None and "unreliable" in note


@pytest.mark.slow
@pytest.mark.parametrize(("seed", "sigma"), [(0, 5.0), pytest.param(1, 3.0, marks=pytest.mark.slow)])
def test_sigma_with_lost_scan_lines_is_read_beside_them(seed, sigma):
    counts, _, _ = phantom.observe((200, 200), sigma, seed=seed)
    counts = counts.astype(np.float64)
    w = np.ones(counts.shape)
    w[120:128, :] = 0.0  # eight lost scan lines
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        complete = _estimate_sigma(counts, 140.0, strict=False).sigma
        filled = filled_for_estimators(np.where(w > 0, counts, 0.0), w, xp=np)
        whole_filled = _estimate_sigma(filled, 140.0, strict=False).sigma  # the reading before: seams and all
        est = _estimate_sigma(filled, 140.0, strict=False, weights=w)
    assert whole_filled < 0.25 * complete  # the seam wins on these two maps: 0.4 and 0.63 px
    assert est.sigma == pytest.approx(complete, rel=0.1)
    assert "rows 0-119" in est.details["region"]


def test_restore_and_sigma_from_map_record_where_sigma_was_read():
    counts, _, _ = phantom.observe((200, 200), 5.0, seed=0)
    y = counts.astype(np.float64)
    y[120:128, :] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, info = xrfgpu.restore(y, background=140.0, return_info=True, num_iter=3)
        w = np.where(np.isnan(y), 0.0, 1.0)
        est = sigma_from_map(filled_for_estimators(np.nan_to_num(y), w, xp=np), background=140.0, mask=w)
    assert "rows 0-119" in info["sigma_region"]
    assert info["sigma_estimated"] == pytest.approx(est.sigma, rel=1e-12)
    assert info["sigma_estimated"] == pytest.approx(5.0, rel=0.15)


@pytest.mark.slow
def test_psf_blind_map_only_reads_sigma_beside_lost_lines(tmp_path, capsys):
    """``xrfgpu psf blind --map-only`` on a map with eight lost rows: σ as the front door reads it (refused
    before: "a PSF fit needs every pixel"); the blind kernel still refuses them, naming --map-only."""
    import json

    from xrfgpu.cli import main

    counts, _, _ = phantom.observe((200, 200), 5.0, seed=0)
    y = counts.astype(np.float64)
    y[120:128, :] = np.nan
    src = tmp_path / "scan_Fe_K.npz"
    np.savez(src, Fe_K=y)
    assert main(["psf", "blind", str(src), "--map-only", "--pixel-size", "1um", "-o", str(tmp_path / "psf.toml"),
                 "--figure", str(tmp_path / "psf.png"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    w = np.where(np.isnan(y), 0.0, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = _estimate_sigma(filled_for_estimators(np.nan_to_num(y), w, xp=np), None, strict=False, weights=w)
    assert result["sigma_px"] == pytest.approx(ref.sigma, rel=1e-9)
    assert result["sigma_px"] == pytest.approx(5.0, rel=0.15)
    assert result["missing_pixels"] == 8 * 200 and "rows 0-119" in result["region"]
    assert main(["psf", "blind", str(src), "--pixel-size", "1um", "-o", str(tmp_path / "psf2.toml")]) == 2
    assert "--map-only" in capsys.readouterr().err
