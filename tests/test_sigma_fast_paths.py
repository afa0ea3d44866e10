"""The faster host paths of the blind σ estimate give the numbers of the plain forms they replace.

``_rectangle_pixels`` against a brute-force mask of the whole box, ``_longest_run`` against a scan of
every run, ``_StepsResiduals`` and ``_ProfileLikelihood`` bit for bit against ``_steps_model`` /
``_steps_jacobian`` and ``_spectral_nll``, ``smoothed_gradient`` against ``ndimage.gaussian_filter``,
``minimize_bfgs`` and the σ profile bit for bit against ``scipy.optimize.minimize``. These are host-only
(NumPy) helpers of :func:`xrfgpu.psf.estimate_sigma`, which copies any array-API input to the host
before them, so they have no array-API variant to test; the exception is the ring spectrum, whose
periodogram and ring sums a non-NumPy map gets in its own namespace (compared with the NumPy path
and with ``numpy.bincount`` on ``array_api_strict``).
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest

from conftest import to_numpy
from xrfgpu.psf import _bfgs, _spectra
from xrfgpu.psf import blind_sigma as bs
from xrfgpu.psf import edge_profiles as ep


def _steps_jacobian(t, p, n_steps):
    """∂ model / ∂ p of ``_steps_model``, shape (t.size, 2 + 2 n_steps), step by step: the package's form
    before ``_StepsResiduals``, the reference that class must equal bit for bit (tests/test_psf_estimate_sigma.py
    checks the class's derivatives against finite differences).

    With ``z_j = (t − t_j)/|σ|``: ∂/∂β = 1, ∂/∂a_j = Φ(z_j),
    ∂/∂t_j = −a_j φ(z_j)/|σ|, ∂/∂σ = −sign(σ) Σ_j a_j φ(z_j) z_j/|σ|.
    """
    from scipy import special

    jac = np.empty((t.size, 2 + 2 * n_steps))
    jac[:, 0] = 1.0
    sig = abs(p[1])
    dsig = np.zeros_like(t)
    for j in range(n_steps):
        a = p[2 + 2 * j]
        z = (t - p[3 + 2 * j]) / sig
        density = np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
        jac[:, 2 + 2 * j] = special.ndtr(z)
        jac[:, 3 + 2 * j] = -a * density / sig
        dsig -= a * density * z / sig
    jac[:, 1] = dsig * (1.0 if p[1] >= 0 else -1.0)
    return jac


@pytest.mark.parametrize("theta_deg", [0.0, 1.0, 30.0, 45.0, 89.0, 90.0, 91.0, 135.0, 179.0])
def test_rectangle_pixels_hold_every_pixel_of_the_rectangle_in_row_major_order(theta_deg):
    rng = np.random.default_rng(int(theta_deg * 10))
    theta = math.radians(theta_deg)
    c, s = math.cos(theta), math.sin(theta)
    box = (3, 57, 5, 71)
    for _ in range(20):
        rho = rng.uniform(-20, 90)
        half = rng.uniform(0.5, 12.0)
        along = None if rng.random() < 0.3 else tuple(sorted(rng.uniform(-80, 80, 2)))
        rows, cols = bs._rectangle_pixels(c, s, rho, half, along, box)
        # reference: every pixel of the box, tested exactly
        yy, xx = np.mgrid[box[0]:box[1], box[2]:box[3]].astype(np.float64)
        inside = np.abs(xx * c + yy * s - rho) <= half
        if along is not None:
            a = yy * c - xx * s
            inside &= (a >= along[0]) & (a <= along[1])
        want = set(zip(*(v.astype(int).ravel() for v in (yy[inside], xx[inside]))))
        got = list(zip(rows.tolist(), cols.tolist()))
        assert want <= set(got)  # a superset: the caller applies the exact test
        assert all(box[0] <= r < box[1] and box[2] <= q < box[3] for r, q in got)
        assert got == sorted(got) and len(set(got)) == len(got)  # row-major, each pixel once
        # candidates lie within the margin (1.5 px) of the band (not the whole box)
        if got:
            r, q = np.array(got, dtype=np.float64).T
            assert np.all(np.abs(q * c + r * s - rho) <= half + 1.5 + 1e-9)


def test_longest_run_is_the_first_longest_of_all_runs():
    rng = np.random.default_rng(3)
    for _ in range(300):
        values = rng.choice(rng.uniform(-50, 50, 40), size=int(rng.integers(1, 60)))
        gap = int(rng.integers(1, 4))
        s = sorted(set(np.round(values).astype(int).tolist()))
        runs, start = [], s[0]
        for prev, cur in zip(s, s[1:]):
            if cur - prev > gap:
                runs.append((start, prev))
                start = cur
        runs.append((start, s[-1]))
        want = max(runs, key=lambda run: (run[1] - run[0], -runs.index(run)))
        assert tuple(int(v) for v in bs._longest_run(values, gap)) == want
    assert bs._longest_run(np.array([]), 2) is None


def test_steps_residuals_are_bit_for_bit_the_model_and_its_jacobian():
    rng = np.random.default_rng(5)
    for _ in range(200):
        k = int(rng.integers(1, 5))
        t = np.arange(int(rng.integers(20, 70))) * 0.5 - rng.uniform(5.0, 20.0)
        y = rng.uniform(20.0, 600.0, t.size)
        w = 1.0 / np.sqrt(rng.uniform(1.0, 90.0, t.size))
        p = rng.normal(0.0, 20.0, 2 + 2 * k)
        p[1] = rng.choice([-1.0, 1.0]) * rng.uniform(0.3, 12.0)
        fast = bs._StepsResiduals(t, y, w, k)
        assert fast.residuals(p).tobytes() == ((bs._steps_model(t, p, k) - y) * w).tobytes()
        want = (_steps_jacobian(t, p, k) * w[:, None]).tobytes()
        assert fast.jacobian(p).tobytes() == want  # from the kept terms
        assert bs._StepsResiduals(t, y, w, k).jacobian(p).tobytes() == want  # computed afresh


@pytest.mark.parametrize("prior", [None, (3.0, 0.2)])
def test_profile_likelihood_is_bit_for_bit_the_ring_likelihood_without_its_sigma_entry(prior):
    rng = np.random.default_rng(7)
    k2 = np.sort(rng.uniform(1e-4, 0.5, 300))
    power = rng.gamma(2.0, 1.0, k2.size) * (1e3 * (k2 + 1e-3) ** -1.5 * np.exp(-40.0 * k2) + 1.0)
    weight = rng.integers(1, 30, k2.size).astype(np.float64)
    likelihood = bs._ProfileLikelihood(k2, power, weight, 3.0, prior)
    for _ in range(100):
        log_s = rng.uniform(-1.0, 3.0)
        theta = np.array([rng.uniform(-5, 10), rng.uniform(-4, 4), rng.uniform(-2, 2)]
                         + ([rng.uniform(1.5, 4.5)] if prior else []))
        full = (*theta[:3], log_s, *theta[3:])
        value, grad = bs._spectral_nll(full, k2, power, weight, 3.0, prior)
        likelihood.at_sigma(log_s)
        assert likelihood.value(theta) == value
        assert likelihood.gradient(theta).tobytes() == np.delete(grad, 3).tobytes()


def test_smoothed_gradient_is_gaussian_filter_bit_for_bit():
    from scipy import ndimage

    data = np.random.default_rng(9).poisson(100.0, (45, 61)).astype(np.float64)
    for sigma0 in (1.0, 3.0, 7.4):
        gx, gy, mag, _ = ep.smoothed_gradient(data, sigma0)
        smooth = max(1.0, 0.5 * sigma0)
        assert gy.tobytes() == ndimage.gaussian_filter(data, smooth, order=(1, 0), mode="nearest").tobytes()
        assert gx.tobytes() == ndimage.gaussian_filter(data, smooth, order=(0, 1), mode="nearest").tobytes()
        assert mag.tobytes() == np.hypot(gx, gy).tobytes()


def test_direct_minpack_route_matches_least_squares(monkeypatch):
    """The direct ``lmder`` call (where SciPy allows it) and ``least_squares(method="lm")`` fit alike."""
    rng = np.random.default_rng(11)
    t = np.arange(-12.0, 12.5, 0.5)
    for k in (1, 2):
        p_true = np.array([120.0, 2.5, 80.0, -1.0, -40.0, 3.0][: 2 + 2 * k])
        y = rng.poisson(bs._steps_model(t, p_true, k)).astype(np.float64)
        w = 1.0 / np.sqrt(np.maximum(y, 1.0))
        p0 = p_true * 1.1
        direct = bs._least_squares_lm(bs._StepsResiduals(t, y, w, k), p0, max_nfev=400, tol=1e-8)
        with monkeypatch.context() as patch:
            patch.setattr(bs, "_minpack_lmder", lambda: None)  # the public route
            public = bs._least_squares_lm(bs._StepsResiduals(t, y, w, k), p0, max_nfev=400, tol=1e-8)
        for a, b in zip(direct, public):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape", [(1, 1), (5, 200), (130, 7), (64, 64), (129, 65)])
def test_transposed_is_the_transpose(shape):
    image = np.random.default_rng(13).random(shape)
    out = ep._transposed(image)
    assert out.flags.c_contiguous and out.shape == shape[::-1]
    assert np.array_equal(out, image.T)


def _ring_problem(seed, n=300):
    """A ring spectrum (k², power, weight) drawn from the blurred power law plus noise."""
    rng = np.random.default_rng(seed)
    k2 = np.sort(rng.uniform(1e-4, 0.5, n))
    power = rng.gamma(2.0, 1.0, n) * (1e3 * (k2 + 1e-3) ** -1.5 * np.exp(-40.0 * k2) + 1.0)
    power /= np.median(power)
    return k2, power, rng.integers(1, 30, n).astype(np.float64)


def _curved_valley():
    """Rosenbrock's function in 4 dimensions (its gradient by hand): BFGS's line searches take short steps."""
    def value(x):
        return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))

    def gradient(x):
        g = np.zeros_like(x)
        g[:-1] = -400.0 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2.0 * (1.0 - x[:-1])
        g[1:] += 200.0 * (x[1:] - x[:-1] ** 2)
        return g

    return value, gradient


def _bfgs_problems():
    value, gradient = _curved_valley()
    k2, power, weight = _ring_problem(3)
    likelihood = bs._ProfileLikelihood(k2, power, weight, 3.0, (3.0, 0.2)).at_sigma(math.log(2.5))
    return [(value, gradient, np.array([-1.2, 1.0, 0.5, 2.0])), (value, gradient, np.array([3.0, -2.0, 0.0, 1.0])),
            (likelihood.value, likelihood.gradient, np.array([2.0, 0.0, 0.0, 3.0])),
            (likelihood.value, likelihood.gradient, np.array([8.0, -3.0, -2.0, 2.0])),
            (lambda x: float(x[0] ** 2), lambda x: np.array([2.0 * x[0], 0.0]), np.array([1.0, 5.0]))]


def _scipy_bfgs(fun, grad, x0, gtol):
    from scipy import optimize

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SciPy's precision-loss and line-search warnings
        return optimize.minimize(fun, x0, jac=grad, method="BFGS", options={"gtol": gtol})


def test_minimize_bfgs_is_scipy_bfgs_bit_for_bit():
    assert _bfgs._lean_line_search() is not None  # this environment's SciPy: the lean route is the one measured
    for (fun, grad, x0), gtol in itertools.product(_bfgs_problems(), (1e-4, 1e-10)):
        x, f = _bfgs.minimize_bfgs(fun, grad, x0, gtol=gtol)
        reference = _scipy_bfgs(fun, grad, x0, gtol)
        assert x.tobytes() == reference.x.tobytes()
        assert f == reference.fun


def test_minimize_bfgs_takes_scipys_fallbacks_bit_for_bit(monkeypatch):
    """Both ends of SciPy's line search, reached on purpose in both codes: DCSRCH failing with the fallback
    finding a step, and both failing (BFGS then stops, "precision loss"). Whether the problems above reach them
    by themselves depends on the NumPy and SciPy builds, so DCSRCH's answer is set aside at the same calls of
    both codes (every third), and the fallback's at its fourth call."""
    from scipy.optimize import _linesearch, _optimize

    searches = _bfgs._lean_line_search()
    assert searches is not None
    calls = {"wolfe1": 0, "wolfe2": 0}
    found = []  # whether each call of the fallback found a step

    def failing_wolfe1(*args, **kwargs):
        stp, phi1, phi0 = searches.wolfe1(*args, **kwargs)
        calls["wolfe1"] += 1
        return (None, phi1, phi0) if calls["wolfe1"] % 3 == 0 else (stp, phi1, phi0)

    def failing_wolfe2(value, gradient, x, direction, g, f, f_before, **kwargs):
        out = searches.wolfe2(value, gradient, x, direction, g, f, f_before, **kwargs)
        calls["wolfe2"] += 1
        if calls["wolfe2"] == 4:
            out = (None, out[1], out[2], None, f, None)
        found.append(out[0] is not None)
        return out

    monkeypatch.setattr(_linesearch, "scalar_search_wolfe1", failing_wolfe1)
    monkeypatch.setattr(_optimize, "line_search_wolfe2", failing_wolfe2)
    monkeypatch.setattr(_bfgs, "_lean_line_search",
                        lambda: searches._replace(wolfe1=failing_wolfe1, wolfe2=failing_wolfe2))
    for fun, grad, x0 in _bfgs_problems()[:2]:
        calls.update(wolfe1=0, wolfe2=0)
        x, f = _bfgs.minimize_bfgs(fun, grad, x0, gtol=1e-10)
        ours = list(found)
        found.clear()
        calls.update(wolfe1=0, wolfe2=0)
        reference = _scipy_bfgs(fun, grad, x0, 1e-10)
        assert found == ours  # the same fallbacks at the same calls
        assert x.tobytes() == reference.x.tobytes()
        assert f == reference.fun
        assert any(ours) and not all(ours)
        found.clear()


def test_minimize_bfgs_without_the_private_line_searches_calls_minimize(monkeypatch):
    value, gradient = _curved_valley()
    x0 = np.array([-1.2, 1.0, 0.5, 2.0])
    lean = _bfgs.minimize_bfgs(value, gradient, x0, gtol=1e-6)
    monkeypatch.setattr(_bfgs, "_lean_line_search", lambda: None)
    public = _bfgs.minimize_bfgs(value, gradient, x0, gtol=1e-6)
    assert lean[0].tobytes() == public[0].tobytes() and lean[1] == public[1]


def test_sigma_profile_is_a_loop_of_scipy_bfgs_over_sigma():
    """The profile (warm-started BFGS at each σ, without SciPy's wrappers) equals, bit for bit, a plain loop of
    ``scipy.optimize.minimize`` over σ of the full ring likelihood ``_spectral_nll`` with σ held fixed."""
    from scipy import optimize

    k2, power, weight = _ring_problem(4)
    grid = np.geomspace(0.4, 12.0, 9)
    prior = bs._BETA_PRIOR
    sigma, profile, nuisance = bs._spectral_profile(k2, power, weight, prior[0], grid, prior)
    # the reference: the start of _spectral_profile, then minimize at each σ from the previous σ's answer
    lo, hi = bs._LOG_K0_RANGE
    tail = power[-max(5, power.size // 5):]
    theta = np.array([math.log(float(power[:3].mean())) + 0.5 * prior[0] * math.log(float(k2[0])),
                      math.log((math.log(0.005) - lo) / (hi - math.log(0.005))), math.log(float(np.median(tail))),
                      prior[0]])
    want = []
    for s in grid:
        def fun(th, log_s=math.log(float(s))):
            value, grad = bs._spectral_nll((*th[:3], log_s, th[3]), k2, power, weight, prior[0], prior)
            return value, np.delete(grad, 3)

        res = optimize.minimize(fun, theta, jac=True, method="BFGS", options={"gtol": 1e-4})
        theta = res.x
        want.append(res.fun)
    assert profile.tobytes() == np.array(want).tobytes()


def test_step_fit_jacobian_rows_are_the_transposed_jacobian():
    rng = np.random.default_rng(15)
    for k in (1, 2, 4):
        t = np.arange(41) * 0.5 - 10.0
        w = 1.0 / np.sqrt(rng.uniform(1.0, 90.0, t.size))
        p = rng.normal(0.0, 20.0, 2 + 2 * k)
        p[1] = -2.5 if k == 2 else 2.5
        rows = bs._StepsResiduals(t, rng.uniform(20.0, 600.0, t.size), w, k).jacobian_rows(p)
        assert rows.flags.c_contiguous and rows.shape == (2 + 2 * k, t.size)
        assert rows.tobytes() == np.ascontiguousarray((_steps_jacobian(t, p, k) * w[:, None]).T).tobytes()


def test_ring_table_holds_every_bin_of_each_ring_once():
    ring = np.random.default_rng(17).integers(0, 9, 200)
    table = _spectra.ring_table(ring)
    for r in range(9):
        row = table[r]
        assert row[row < ring.size].tolist() == np.flatnonzero(ring == r).tolist()
        assert np.all(row[np.count_nonzero(ring == r):] == ring.size)


def test_ring_sums_are_bincount(xp):
    rng = np.random.default_rng(19)
    power = rng.gamma(2.0, 1.0, (12, 7))
    weights = rng.uniform(0.0, 2.0, power.size)
    ring = rng.integers(0, 15, power.size)
    got = _spectra.ring_sums(xp.asarray(power), xp.asarray(weights), xp.asarray(_spectra.ring_table(ring)), xp=xp)
    assert isinstance(got, np.ndarray)
    np.testing.assert_allclose(got, np.bincount(ring, weights * power.ravel()), rtol=1e-14, atol=0.0)


@pytest.mark.parametrize("stripes", [False, True])
def test_ring_spectrum_in_the_maps_namespace_equals_the_host_path(xp, stripes):
    from scipy import ndimage

    rng = np.random.default_rng(21)
    scene = 150.0 + 2000.0 * ndimage.gaussian_filter(rng.normal(size=(72, 90)), 3.0)  # isotropic: no stripes
    data = rng.poisson(np.clip(scene, 1.0, None)).astype(np.float64)
    if stripes:  # a gain that changes from one scan line to the next: the kx = 0 column is left out
        data *= 1.0 + 0.05 * rng.normal(size=(data.shape[0], 1))
    report_host, report_xp = {}, {}
    host = bs._ring_spectrum(data, report=report_host)
    other = bs._ring_spectrum(xp.asarray(data), report=report_xp, xp=xp)
    assert report_host["stripes"] == report_xp["stripes"] == (["rows"] if stripes else [])
    for key in ("stripe_ratio_rows", "stripe_ratio_columns"):
        assert report_xp[key] == pytest.approx(report_host[key], rel=1e-12)
    for a, b in zip(host, other):
        assert isinstance(b, np.ndarray) and a.shape == b.shape
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=0.0)
    # the periodogram itself against NumPy's FFT of the windowed map
    geometry = bs._ring_geometry(data.shape)
    taper = geometry["taper"]
    want = np.abs(np.fft.rfft2((data - (data * taper).sum() / taper.sum()) * taper)) ** 2 / (taper**2).sum()
    got = _spectra.windowed_periodogram(xp.asarray(data), xp.asarray(taper), float(taper.sum()),
                                        float((taper**2).sum()), xp=xp)
    np.testing.assert_allclose(to_numpy(got), want, rtol=1e-10, atol=1e-12 * want.max())


def test_submap_sigmas_read_in_the_maps_namespace_agree_with_the_host():
    import array_api_strict as xs

    rng = np.random.default_rng(23)
    data = rng.poisson(np.kron(rng.uniform(50.0, 300.0, (10, 10)), np.ones((7, 7)))).astype(np.float64)  # 70²
    host = bs._submap_sigmas(data)
    other = bs._submap_sigmas(data, xs.asarray(data), xs)
    assert len(host) == len(other) == 4
    np.testing.assert_allclose(other, host, rtol=1e-6)

