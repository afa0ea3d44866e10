"""The third round of faster host paths for the blind σ (sigspeed3) gives the numbers of the plain forms.

* ``split_counts`` keeps its last draw for an integer seed: a repeated request equals a fresh binomial draw
  of ``numpy.random.default_rng(seed)`` in the map's canonical orientation bit for bit, a caller that changes its halves does not change what
  the next caller gets, and other counts, seeds, fractions or a generator seed are drawn afresh (NumPy and
  ``array_api_strict``, the function being array-API);
* ``smoothed_gradient`` with its two components in two threads equals ``ndimage.gaussian_filter``;
* ``profiles_on_thinned_halves`` with the second half's edges found in another thread equals the two plain
  ``local_edge_profiles`` calls on the halves of the same split;
* ``_fit_steps``, which now asks for the Jacobian only of the fits it may keep, equals a plain loop of
  ``scipy.optimize.least_squares(method="lm")`` over the number of steps with the per-step Jacobian.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import random_ellipses, to_numpy

from xrfgpu import stopping
from xrfgpu.psf import blind_sigma as bs
from xrfgpu.psf import edge_profiles as ep


def _counts(shape, seed, mean=40.0):
    return np.random.default_rng(seed).poisson(mean, shape).astype(np.float64)


def _canonical_draw(counts, fraction, rng):
    """Binomial thinning drawn in the map's canonical orientation, found by brute force, and mapped back.

    The canonical orientation (``split_counts``' documented rule): of the map's flips and transpositions
    (transposed only where square, or to put the shorter side first), the one whose values read row by row
    are largest in lexicographic order, compared here as Python tuples.
    """
    counts = np.asarray(counts, dtype=np.float64)
    rows, cols = counts.shape
    forms = []
    for transpose in ((False, True) if rows == cols else (rows > cols,)):
        for flip_rows in (False, True):
            for flip_cols in (False, True):
                view = counts.T if transpose else counts
                view = view[::-1] if flip_rows else view
                view = view[:, ::-1] if flip_cols else view
                forms.append((tuple(view.ravel()), transpose, flip_rows, flip_cols))
    _, transpose, flip_rows, flip_cols = max(forms, key=lambda form: form[0])
    view = counts.T if transpose else counts
    view = view[::-1] if flip_rows else view
    view = view[:, ::-1] if flip_cols else view
    first = rng.binomial(view.astype(np.int64), fraction).astype(np.float64)
    first = first[:, ::-1] if flip_cols else first
    first = first[::-1] if flip_rows else first
    return np.ascontiguousarray(first.T if transpose else first)


def _fresh_draw(counts, fraction, seed):
    """The binomial thinning drawn from scratch: (first, second) as float64 NumPy arrays."""
    first = _canonical_draw(counts, fraction, np.random.default_rng(seed))
    return first, np.asarray(counts, dtype=np.float64) - first


def test_repeated_split_is_the_fresh_draw_and_the_kept_draw_cannot_be_changed_by_a_caller(xp):
    stopping._LAST_SPLIT.clear()
    host = _counts((48, 40), 1)
    counts = xp.asarray(host)
    want_first, want_second = _fresh_draw(host, 0.5, 0)
    for _ in range(3):  # the draw, then twice from the memo
        first, second = stopping.split_counts(counts, seed=0)
        assert type(first) is type(counts) and first.dtype == counts.dtype
        assert to_numpy(first).tobytes() == want_first.tobytes()
        assert to_numpy(second).tobytes() == want_second.tobytes()
        if isinstance(first, np.ndarray):  # NumPy's halves (array_api_strict's cannot be written in place)
            first[:] = -7.0  # a caller that overwrites its halves
            second[:] = -7.0
    assert np.array_equal(host, to_numpy(counts))  # the caller's counts are not touched either


def test_a_changed_map_fraction_or_seed_is_drawn_afresh():
    stopping._LAST_SPLIT.clear()
    host = _counts((32, 36), 2)
    stopping.split_counts(host, seed=3)
    changed = host.copy()
    changed[5, 7] += 1.0
    for counts, fraction, seed in ((changed, 0.5, 3), (host, 0.3, 3), (host, 0.5, 4), (host[:, :35], 0.5, 3),
                                   (host, 0.5, np.int64(3))):
        stopping.split_counts(host, seed=3)  # the memo holds (host, 0.5, 3) before each request
        first, second = stopping.split_counts(counts, fraction=fraction, seed=seed)
        want_first, want_second = _fresh_draw(counts, fraction, seed)
        assert first.tobytes() == want_first.tobytes() and second.tobytes() == want_second.tobytes()
    # after the last request (the same as the first), the map changed in place is not answered from the memo
    host[0, 0] += 2.0
    first, _ = stopping.split_counts(host, seed=3)
    assert first.tobytes() == _fresh_draw(host, 0.5, 3)[0].tobytes()


def test_a_generator_seed_draws_successive_splits():
    stopping._LAST_SPLIT.clear()
    host = _counts((30, 30), 5)
    stream, reference = np.random.default_rng(9), np.random.default_rng(9)
    for _ in range(2):  # the same counts twice: two different draws of one stream
        first, _ = stopping.split_counts(host, seed=stream)
        want = _canonical_draw(host, 0.5, reference)
        assert first.tobytes() == want.tobytes()


def test_float32_counts_share_the_draw_of_their_float64_values():
    stopping._LAST_SPLIT.clear()
    host = _counts((40, 44), 6)
    stopping.split_counts(host, seed=0)
    first, second = stopping.split_counts(host.astype(np.float32), seed=0)
    want_first, want_second = _fresh_draw(host, 0.5, 0)
    assert first.dtype == np.float32
    assert np.array_equal(first, want_first.astype(np.float32)) and np.array_equal(second, want_second.astype(np.float32))


def test_threaded_gradient_is_gaussian_filter_bit_for_bit(monkeypatch):
    from scipy import ndimage

    monkeypatch.setattr(ep, "_THREADED_PIXELS", 0)  # the two-thread path on a small map
    data = _counts((53, 67), 8, mean=100.0)
    for sigma0 in (1.0, 5.3):
        gx, gy, mag, _ = ep.smoothed_gradient(data, sigma0)
        smooth = max(1.0, 0.5 * sigma0)
        assert gy.tobytes() == ndimage.gaussian_filter(data, smooth, order=(1, 0), mode="nearest").tobytes()
        assert gx.tobytes() == ndimage.gaussian_filter(data, smooth, order=(0, 1), mode="nearest").tobytes()
        assert mag.tobytes() == np.hypot(gx, gy).tobytes()


def test_thread_errors_reach_the_caller():
    def fails():
        raise ZeroDivisionError("in the thread")

    with pytest.raises(ZeroDivisionError, match="in the thread"):
        ep._in_thread(fails)()


def test_threaded_halves_equal_the_two_plain_calls(monkeypatch):
    from scipy import ndimage

    rng = np.random.default_rng(11)
    pad, n, sigma = 20, 120, 2.5
    scene = random_ellipses(n + 2 * pad, 14, (8, 25), rng)
    counts = rng.poisson(100.0 + 900.0 * ndimage.gaussian_filter(scene, sigma)[pad:-pad, pad:-pad]).astype(np.float64)
    noise = 1000.0
    first, second = stopping.split_counts(counts, seed=0)
    plain = (ep.local_edge_profiles(second, sigma, noise / 2, detect=first, detect_noise_power=noise / 2, max_profiles=30)
             + ep.local_edge_profiles(first, sigma, noise / 2, detect=second, detect_noise_power=noise / 2,
                                      max_profiles=30))
    monkeypatch.setattr(ep, "_THREADED_PIXELS", 0)
    threaded = ep.profiles_on_thinned_halves(counts, sigma, noise, max_profiles=30)
    assert len(plain) > 20 and threaded == plain  # every number of every profile, in the same order
    with pytest.raises(TypeError, match="unexpected"):
        ep.profiles_on_thinned_halves(counts, sigma, noise, max_profile=30)


def _steps_jacobian(t, p, n_steps):
    """∂ model / ∂ p of ``_steps_model`` (shape (t.size, 2 + 2 n_steps)), one step at a time."""
    from scipy import special

    jac = np.empty((t.size, 2 + 2 * n_steps))
    jac[:, 0] = 1.0
    sig = abs(p[1])
    dsig = np.zeros_like(t)
    for j in range(n_steps):
        z = (t - p[3 + 2 * j]) / sig
        density = np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
        jac[:, 2 + 2 * j] = special.ndtr(z)
        jac[:, 3 + 2 * j] = -p[2 + 2 * j] * density / sig
        dsig -= p[2 + 2 * j] * density * z / sig
    jac[:, 1] = dsig * (1.0 if p[1] >= 0 else -1.0)
    return jac


def _reference_fit_steps(t, y, var, sigma0, max_steps):
    """``_fit_steps`` written plainly: the same starts, ``least_squares`` fits and BIC choice."""
    from scipy import ndimage, optimize

    w = 1.0 / np.sqrt(var)
    dt = float(t[1] - t[0])
    dy = np.gradient(ndimage.gaussian_filter1d(y, 2.0))
    cand = np.flatnonzero(np.abs(dy) == ndimage.maximum_filter1d(np.abs(dy), 9))
    cand = cand[np.argsort(np.abs(dy[cand]))[::-1]]
    best = None
    for k in range(1, min(max_steps, cand.size) + 1):
        p0 = [float(y[0]), sigma0]
        for c in sorted(cand[:k]):
            p0 += [float(dy[c]) * sigma0 * math.sqrt(2.0 * math.pi) / dt, float(t[c])]
        r = optimize.least_squares(lambda p, k=k: (bs._steps_model(t, p, k) - y) * w, p0, method="lm",
                                   jac=lambda p, k=k: _steps_jacobian(t, p, k) * w[:, None], max_nfev=200 * len(p0),
                                   xtol=1e-5, ftol=1e-5)
        chi2 = float(np.sum(r.fun**2))
        bic = chi2 + len(p0) * math.log(t.size)
        sig = abs(float(r.x[1]))
        if 0.3 < sig < 4.0 * sigma0 + 10.0 and (best is None or bic < best[0]):
            cov = np.linalg.pinv(r.jac.T @ r.jac) * max(chi2 / max(t.size - len(p0), 1), 1.0)
            best = (bic, sig, math.sqrt(abs(float(cov[1, 1]))), k, r.x)
    return best


def test_step_fits_equal_a_plain_least_squares_loop():
    rng = np.random.default_rng(13)
    t = np.arange(-14.0, 14.5, 0.5)
    for trial in range(6):
        k_true = 1 + trial % 2
        p_true = np.array([150.0, rng.uniform(1.5, 4.0), rng.uniform(60, 200), rng.uniform(-3, 3),
                           rng.uniform(-120, -40), rng.uniform(4, 8)])[: 2 + 2 * k_true]
        y = rng.poisson(bs._steps_model(t, p_true, k_true)).astype(np.float64)
        var = np.maximum(y, 1.0)
        got = bs._fit_steps(t, y, var, 2.5, max_steps=2, tol=1e-5)
        want = _reference_fit_steps(t, y, var, 2.5, 2)
        assert got[3] == want[3]  # the same number of steps chosen
        # MINPACK may differ in the last digits between two calls (benchmarks/sigma_speed.py), so to rounding
        np.testing.assert_allclose(got[:3], want[:3], rtol=1e-9)
        np.testing.assert_allclose(got[4], want[4], rtol=1e-9, atol=1e-9)
