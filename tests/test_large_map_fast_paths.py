"""The NumPy fast paths added for 2048²–4096² maps give the numbers of the plain formulas they replace.

Each path (box-mean quantiles by a partition, the held-out deviance in place, edge directions at
strong pixels only, one ring geometry for maps of one shape) is checked on small maps against the formula written out here, or
against the array-API path it sits beside. ``benchmarks/front_door_large.py --compare`` checks the
whole front door against another checkout on large maps.
"""

from __future__ import annotations

import numpy as np
import pytest



def _box_means_reference(y, k):
    from numpy.lib.stride_tricks import sliding_window_view

    return np.sort(sliding_window_view(np.asarray(y, dtype=np.float64), (k, k)).mean(axis=(-2, -1)).ravel())


@pytest.mark.parametrize("k", [1, 5, 15])
def test_smoothed_quantiles_match_sorted_window_means(xp, k):
    from xrfgpu.background import _smoothed_quantiles

    y = np.random.default_rng(3).poisson(40.0, (37, 53)).astype(np.float64)
    qs = (0.0, 0.02, 0.25, 0.5, 1.0)
    got = _smoothed_quantiles(xp.asarray(y), k, qs, xp=xp)
    ranked = _box_means_reference(y, k)
    want = [ranked[int(q * (ranked.size - 1))] for q in qs]
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_smoothed_quantiles_numpy_path_equals_array_api_path(dtype):
    import array_api_compat.numpy as xnp
    import array_api_strict

    from xrfgpu.background import _smoothed_quantiles

    y = (np.random.default_rng(4).poisson(90.0, (41, 30)) * 0.37).astype(dtype)
    for k in (3, 5, 15):
        fast = _smoothed_quantiles(xnp.asarray(y), k, (0.0, 0.02, 0.5), xp=xnp)
        plain = _smoothed_quantiles(array_api_strict.asarray(y), k, (0.0, 0.02, 0.5), xp=array_api_strict)
        assert fast == plain


def _separable_operator(shape, sigma, dtype):
    from xrfgpu.fft import Convolution
    from xrfgpu.psf import gaussian_for_map

    psf = gaussian_for_map(sigma, shape, dtype=dtype)
    op = Convolution(psf, shape, boundary="reflect", iterative=True)
    if op.engine != "separable":
        pytest.skip("the separable engine needs NumPy with ducc0")
    return op, psf


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_heldout_divergence_in_place_equals_the_formula(dtype):
    from xrfgpu._problem import prepare
    from xrfgpu.stopping import _heldout_divergence

    y = np.random.default_rng(8).poisson(30.0, (36, 44)).astype(dtype)
    op, psf = _separable_operator(y.shape, 1.5, dtype)
    pb = prepare(y, psf, background=3.0, iterative=True)
    inner = (..., slice(3, 33), slice(3, 41))
    held = pb.image[inner].astype(np.float64)
    estimate = np.random.default_rng(9).uniform(0.0, 40.0, y.shape).astype(dtype)
    estimate[5, 5] = 0.0
    mu = pb.op.crop(pb.op.forward(pb.op.embed(estimate))) + pb.background
    mu = np.clip(mu[inner].astype(np.float64), 1e-12, None)
    want = float(np.sum(mu - held * np.log(mu)))
    import array_api_compat.numpy as xnp

    assert _heldout_divergence(pb.op, estimate, held, pb.background, xp=xnp, inner=inner) == want
    # the held-out counts as cv_iterations now passes them for a float64 map: a view of the interior
    if dtype == np.float64:
        view = pb.image[inner]
        assert _heldout_divergence(pb.op, estimate, view, pb.background, xp=xnp, inner=inner) == want


def test_edge_pixels_directions_at_strong_pixels_only():
    from xrfgpu.psf.edge_profiles import _edge_pixels, smoothed_gradient

    rng = np.random.default_rng(10)
    yy, xx = np.mgrid[0:80, 0:90]
    scene = 50.0 + 200.0 * ((xx - 45) ** 2 + (yy - 40) ** 2 < 25**2) + 120.0 * (xx > 70)
    data = rng.poisson(scene).astype(np.float64)
    gx, gy, mag, rr, cc = _edge_pixels(data, 3.0, 7.0, threshold=6.0)  # noise sd 7 counts
    # the whole-map formula: direction everywhere, suppression at the strong pixels
    gx2, gy2, mag2, gain = smoothed_gradient(data, 3.0)
    strong = mag2 > 6.0 * 7.0 * gain
    with np.errstate(invalid="ignore", divide="ignore"):
        dy = np.rint(np.where(mag2 > 0, gy2 / mag2, 0.0)).astype(np.int64)
        dx = np.rint(np.where(mag2 > 0, gx2 / mag2, 0.0)).astype(np.int64)
    r, c = np.nonzero(strong)
    fwd = mag2[np.clip(r + dy[r, c], 0, 79), np.clip(c + dx[r, c], 0, 89)]
    bwd = mag2[np.clip(r - dy[r, c], 0, 79), np.clip(c - dx[r, c], 0, 89)]
    keep = (mag2[r, c] >= fwd) & (mag2[r, c] >= bwd)
    assert rr.size > 50
    assert np.array_equal(rr, r[keep]) and np.array_equal(cc, c[keep])


def test_ring_spectrum_with_shared_geometry():
    from xrfgpu.psf.blind_sigma import _ring_geometry, _ring_spectrum

    rng = np.random.default_rng(11)
    geometry = _ring_geometry((40, 50))
    for shape in [(40, 50), (40, 50), (50, 40)]:  # the last: another shape, its own geometry is built
        data = rng.poisson(100.0, shape).astype(np.float64)
        shared = _ring_spectrum(data, geometry)
        alone = _ring_spectrum(data)
        assert all(np.array_equal(a, b) for a, b in zip(shared, alone))
    # the weights are the number of half-plane bins per ring times their weight: they sum to the whole plane
    # less the three innermost rings
    k2, power, weight = _ring_spectrum(rng.normal(size=(40, 50)), geometry)
    assert np.all(np.diff(k2) > 0) and weight.sum() < 40 * 50
