"""Fuzzing the public API: every bad or extreme argument ends in one of three outcome classes.

1. **refused**: a ``ValueError`` or ``TypeError`` whose message names the
   parameter, raised before any large allocation (never ``MemoryError``,
   ``OverflowError``, ``ZeroDivisionError`` or a hang);
2. **finite result**: an array of the input's shape with no NaN or inf and
   not all zeros, which for rescaled inputs equals the rescaled result of the
   ordinary input (the solvers are scale-equivariant);
3. and in both cases the **input unchanged**.

Hypothesis draws the values from each class (issue 15: 608 API calls over 11
functions found silent NaN/zero outputs, MemoryErrors, an OverflowError and
parameters checked differently by different functions). Examples are
derandomised so the suite is reproducible; the default run takes about 20 s.
"""

import math
import warnings

import numpy as np
import pytest
from conftest import to_numpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xrfgpu
from xrfgpu import psf as psf_module
from xrfgpu._validate import MAX_NUM_ITER
from xrfgpu.psf.blind_sigma import SigmaUncertainWarning
from xrfgpu.phantom import observe

@pytest.fixture(params=["numpy", "array_api_strict"])
def xp(request):
    """NumPy and array_api_strict only: the outcome classes fuzzed here do not depend on the backend, and
    hundreds of generated cases would each compile and launch GPU kernels (the CuPy paths have their own
    ``gpu`` tests)."""
    if request.param == "numpy":
        import array_api_compat.numpy as xnp

        return xnp
    import array_api_strict

    return array_api_strict


FUZZ = settings(max_examples=25, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

COUNTS, TRUTH, PSF = observe((24, 24), 1.5, seed=4, signal_counts=150, background_counts=100)
COUNTS = COUNTS.astype(np.float32)
PSF = PSF.astype(np.float32)

SOLVERS = {
    "richardson_lucy": lambda y, h, **k: xrfgpu.richardson_lucy(y, h, **{"num_iter": 3, **k}),
    "fista": lambda y, h, **k: xrfgpu.fista(y, h, **{"num_iter": 3, **k}),
    "wiener": xrfgpu.wiener,
    "tikhonov": xrfgpu.tikhonov,
}
ITERATIVE = {
    "richardson_lucy": xrfgpu.richardson_lucy,
    "fista": xrfgpu.fista,
    "ista": xrfgpu.ista,
    "restore_stack-rl": lambda y, h, **k: xrfgpu.restore_stack(np.stack([y, y]), h, "rl", **k),
    "restore_stack-fista": lambda y, h, **k: xrfgpu.restore_stack(np.stack([y, y]), h, "fista", **k),
}


def refused(call, *names):
    """Assert that ``call()`` raises ValueError/TypeError naming one of ``names``; return the message."""
    with pytest.raises((ValueError, TypeError)) as info:
        call()
    message = str(info.value)
    assert any(n in message for n in names), f"message {message!r} does not name {names}"
    return message


def finite(out, shape):
    a = to_numpy(out)
    assert a.shape == shape
    assert np.all(np.isfinite(a)), "non-finite values in the result"
    assert np.any(a != 0), "all-zero result"
    return a


# -- the iteration count: one check, one cap, everywhere --------------------------------------------------

BAD_NUM_ITER = st.one_of(
    st.sampled_from([float("inf"), float("-inf"), float("nan"), 1.5, "10", "ten", True, None, [3], 0, -1]),
    st.integers(min_value=MAX_NUM_ITER + 1, max_value=10**18),
    st.integers(max_value=0),
    st.floats(allow_nan=True, allow_infinity=True).filter(lambda v: not (math.isfinite(v) and v.is_integer()
                                                                         and 1 <= v <= MAX_NUM_ITER)),
)


@pytest.mark.parametrize("name", list(ITERATIVE))
@FUZZ
@given(value=BAD_NUM_ITER)
def test_bad_num_iter_is_refused_by_every_solver(name, value):
    before = COUNTS.copy()
    refused(lambda: ITERATIVE[name](COUNTS, PSF, num_iter=value), "num_iter")
    np.testing.assert_array_equal(COUNTS, before)


@pytest.mark.parametrize("value", [1, 2, 2.0, np.int64(3), np.float32(2.0)])
def test_whole_num_iter_runs(value):
    for name, func in ITERATIVE.items():
        finite(func(COUNTS, PSF, num_iter=value), (2, 24, 24) if "stack" in name else (24, 24))


def test_num_iter_cap_is_the_same_in_dask():
    from xrfgpu.dask import restore as dask_restore

    refused(lambda: dask_restore(COUNTS, PSF, "rl", tile=16, num_iter=10**9), "num_iter")
    refused(lambda: dask_restore(COUNTS, PSF, "rl", tile=16, num_iter=1.5), "num_iter")


# -- other parameters ------------------------------------------------------------------------------------

NOT_POSITIVE_FINITE = st.one_of(st.sampled_from([float("nan"), float("inf"), -1.0, 0.0, -0.0, "1e-3", None]),
                                st.floats(max_value=0.0), st.floats(allow_nan=True).filter(lambda v: not v < 1e308))


@FUZZ
@given(value=NOT_POSITIVE_FINITE)
def test_bad_filter_epsilon_is_refused(value):
    if value is None:  # None is the default guard
        finite(xrfgpu.richardson_lucy(COUNTS, PSF, num_iter=2, filter_epsilon=value), COUNTS.shape)
        return
    refused(lambda: xrfgpu.richardson_lucy(COUNTS, PSF, num_iter=2, filter_epsilon=value), "filter_epsilon")
    refused(lambda: xrfgpu.restore_stack(np.stack([COUNTS, COUNTS]), PSF, "rl", num_iter=2, filter_epsilon=value),
            "filter_epsilon")


NOT_WEIGHT = st.one_of(st.sampled_from([float("nan"), float("inf"), -1.0, "a"]),
                       st.floats(max_value=-1e-300), st.floats(allow_nan=True).filter(lambda v: v != v))


@FUZZ
@given(value=NOT_WEIGHT)
def test_bad_regularisation_weight_names_itself(value):
    refused(lambda: xrfgpu.wiener(COUNTS, PSF, balance=value), "balance")
    refused(lambda: xrfgpu.tikhonov(COUNTS, PSF, lam=value), "lam")
    refused(lambda: xrfgpu.fista(COUNTS, PSF, lam=value, num_iter=2), "lam")
    stack = np.stack([COUNTS, COUNTS])
    message = refused(lambda: xrfgpu.restore_stack(stack, PSF, "wiener", balance=value), "balance")
    assert "lam" not in message
    refused(lambda: xrfgpu.restore_stack(stack, PSF, "tikhonov", lam=value), "lam")


@pytest.mark.parametrize("name", list(SOLVERS))
@pytest.mark.parametrize("background", [[1.0, 2.0], "auto", {"b": 1}, float("nan"), -3.0, np.ones((3, 3))])
def test_bad_background_names_itself(name, background):
    refused(lambda: SOLVERS[name](COUNTS, PSF, background=background), "background")


# -- sizes: refused before allocating ---------------------------------------------------------------------

@FUZZ
@given(sigma=st.floats(min_value=8200.0, max_value=1e300))  # sides above MAX_PSF_SIDE on any machine
def test_huge_gaussian_is_refused_before_allocating(sigma):
    refused(lambda: psf_module.gaussian(None, sigma), "sigma")
    refused(lambda: psf_module.gaussian_for_map(sigma, (48, 48)), "sigma")


@FUZZ
@given(sigma=st.floats(min_value=1e-3, max_value=48.0))
def test_gaussian_for_map_never_exceeds_the_map(sigma):
    h = psf_module.gaussian_for_map(sigma, (48, 40))
    assert h.shape[0] == h.shape[1] and h.shape[0] % 2 == 1 and h.shape[0] <= 40
    assert abs(float(h.sum()) - 1.0) < 1e-12


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8, np.bool_, np.complex64, "float32x"])
def test_gaussian_needs_a_float_dtype(dtype):
    refused(lambda: psf_module.gaussian(None, 2.0, dtype=dtype), "dtype")


@pytest.mark.parametrize("name", list(SOLVERS))
@FUZZ
@given(pad=st.integers(min_value=400, max_value=10**15))
def test_huge_pad_is_refused_before_allocating(name, pad):
    refused(lambda: SOLVERS[name](COUNTS, PSF, pad=pad), "pad")


def test_huge_pad_in_a_stack_is_refused():
    refused(lambda: xrfgpu.restore_stack(np.stack([COUNTS, COUNTS]), PSF, "rl", pad=10**6), "pad")


@pytest.fixture(scope="module")
def edge():
    from scipy.special import erf

    u = np.arange(40.0)[None, :]
    blurred = 20.0 + 200.0 * 0.5 * (1 + erf((u - 19.6) / (np.sqrt(2) * 2.0))) * np.ones((32, 1))
    return np.random.default_rng(0).poisson(blurred).astype(np.float64)


@FUZZ
@given(oversample=st.one_of(st.integers(min_value=41, max_value=10**12), st.integers(max_value=0),
                            st.sampled_from([1.5, "4", float("inf"), None])))
def test_bad_oversample_is_refused(edge, oversample):
    refused(lambda: psf_module.fit_knife_edge(edge, oversample=oversample), "oversample")


@FUZZ
@given(pixel=st.one_of(st.floats(max_value=0.0), st.sampled_from([float("nan"), float("inf")])))
def test_bad_knife_edge_pixel_size_is_refused(edge, pixel):
    refused(lambda: psf_module.fit_knife_edge(edge, pixel_size_um=pixel), "pixel_size_um")


def test_knife_edge_good_pixel_size(edge):
    fit = psf_module.fit_knife_edge(edge, pixel_size_um=2.0)
    assert abs(fit.sigma - 2.0) < 0.3 and fit.sigma_um > 0


# -- values near the float32 limits: rescaled, never NaN or zeros -----------------------------------------

@pytest.mark.parametrize("name", list(SOLVERS))
@FUZZ
@given(exponent=st.integers(min_value=-45, max_value=38))
def test_map_near_the_float32_limits(xp, name, exponent):
    """A map of peak 10**k: equal to 10**k × the unit-peak map's restoration, or refused for float32 overflow."""
    peak = float(COUNTS.max())
    unit = COUNTS / peak
    scaled = (unit.astype(np.float64) * 10.0**exponent).astype(np.float32)
    if not np.any(scaled != 0):
        return  # 10**-45 of every count rounds to 0: refused as an all-zero map elsewhere
    before = scaled.copy()
    y = xp.asarray(scaled)
    try:
        out = SOLVERS[name](y, xp.asarray(PSF), background=0.0)
    except ValueError as err:
        assert "beyond the range of float32" in str(err) and exponent >= 37
        return
    got = finite(out, (24, 24))
    np.testing.assert_array_equal(to_numpy(y), before)
    # the same (for subnormals: quantised) data at unit scale
    same_data = (scaled.astype(np.float64) / 10.0**exponent).astype(np.float32)
    ref = to_numpy(SOLVERS[name](xp.asarray(same_data), xp.asarray(PSF), background=0.0)).astype(np.float64)
    span = float(ref.max() - ref.min())
    quantum = 2.0 * float(np.finfo(np.float32).smallest_subnormal) / 10.0**exponent  # subnormal outputs
    assert np.abs(got / 10.0**exponent - ref).max() <= 2e-3 * span + quantum


@pytest.mark.parametrize("name", list(SOLVERS))
@FUZZ
@given(exponent=st.integers(min_value=-44, max_value=38))
def test_psf_entries_near_the_float32_limits(xp, name, exponent):
    """The PSF is normalised safely: any positive multiple gives the unit-sum PSF's result."""
    h = (PSF.astype(np.float64) / PSF.max() * 10.0**exponent).astype(np.float32)
    # subnormal samples are quantised: the reference is the same quantised shape, normalised in float64
    ref_psf = h.astype(np.float64) / h.astype(np.float64).sum()
    got = finite(SOLVERS[name](xp.asarray(COUNTS), xp.asarray(h), background=100.0), (24, 24))
    ref = to_numpy(SOLVERS[name](xp.asarray(COUNTS), xp.asarray(ref_psf.astype(np.float32)), background=100.0))
    span = float(ref.max() - ref.min())
    assert np.abs(got - ref).max() <= 1e-3 * span


@pytest.mark.parametrize("method", ["rl", "wiener", "tikhonov", "fista"])
@pytest.mark.parametrize("exponent", [-42, 36])
def test_stack_near_the_float32_limits(method, exponent):
    """A stack of maps of peak 10**k restores like the unit-peak stack, scaled (one exact power-of-two rescale)."""
    unit = np.stack([COUNTS, COUNTS[::-1]]) / COUNTS.max()
    scaled = (unit.astype(np.float64) * 10.0**exponent).astype(np.float32)
    got = finite(xrfgpu.restore_stack(scaled, PSF, method), (2, 24, 24))
    same_data = (scaled.astype(np.float64) / 10.0**exponent).astype(np.float32)  # subnormals are quantised
    ref = to_numpy(xrfgpu.restore_stack(same_data, PSF, method)).astype(np.float64)
    span = float(ref.max() - ref.min())
    quantum = 2.0 * float(np.finfo(np.float32).smallest_subnormal) / 10.0**exponent  # subnormal outputs
    assert np.abs(got / 10.0**exponent - ref).max() <= 2e-3 * span + quantum


def test_huge_integer_like_counts_restore():
    """1e28 × counts (the reported ``n < 0``): finite and equal to the scaled restoration."""
    big = COUNTS.astype(np.float64) * 1e28
    got = finite(xrfgpu.richardson_lucy(big, PSF, num_iter=5, background=100.0 * 1e28), (24, 24))
    ref = xrfgpu.richardson_lucy(COUNTS.astype(np.float64), PSF, num_iter=5, background=100.0)
    np.testing.assert_allclose(got / 1e28, ref, rtol=1e-9)


# -- missing pixels: any mask gives a finite result and leaves the input alone ----------------------------

@pytest.mark.parametrize("name", list(SOLVERS))
@FUZZ
@given(seed=st.integers(0, 2**32 - 1), fraction=st.floats(0.0, 0.9), how=st.sampled_from(["nan", "mask", "masked"]))
def test_any_missing_pixels_give_a_finite_result(xp, name, seed, fraction, how):
    rng = np.random.default_rng(seed)
    bad = rng.random(COUNTS.shape) < fraction
    bad[rng.integers(0, 24), rng.integers(0, 24)] = True
    y = COUNTS.copy()
    y[bad] = np.nan
    kwargs = {"background": 100.0}
    if how == "mask":
        image, kwargs["mask"] = xp.asarray(COUNTS), xp.asarray(~bad)
    elif how == "masked":
        if xp.__name__ != "array_api_compat.numpy":
            return  # masked arrays are NumPy's
        image = np.ma.masked_array(y, mask=bad)
    else:
        image = xp.asarray(y)
    data = np.ma.getdata(image) if how == "masked" else image
    before = to_numpy(data).copy()
    got = finite(SOLVERS[name](image, xp.asarray(PSF) if how != "masked" else PSF, **kwargs), (24, 24))
    np.testing.assert_array_equal(to_numpy(data), before)
    assert float(got.max()) < 20 * float(COUNTS.max())


# -- the front door: the same checks as the solvers --------------------------------------------



def test_restore_refuses_num_iter_above_the_cap():
    refused(lambda: xrfgpu.restore(COUNTS, sigma=1.5, num_iter=10**9), "num_iter")


@pytest.mark.parametrize("value", [float("inf"), 1.5, "10"])
def test_restore_checks_num_iter_like_richardson_lucy(value):
    refused(lambda: xrfgpu.restore(COUNTS, sigma=1.5, num_iter=value), "num_iter")


def test_restore_checks_background_before_using_it():
    refused(lambda: xrfgpu.restore(COUNTS, sigma=1.5, background=[1.0, 2.0]), "background")


def test_restore_huge_sigma_is_refused():
    refused(lambda: xrfgpu.restore(COUNTS, sigma=1e4), "sigma")
    refused(lambda: xrfgpu.restore(COUNTS, sigma_um=1e6, pixel_size_um=10.0), "sigma")


def test_restore_sigma_wider_than_the_map_is_refused():
    refused(lambda: xrfgpu.restore(COUNTS, sigma=100.0), "sigma")


def test_restore_of_huge_counts_is_finite():
    finite(xrfgpu.restore(COUNTS.astype(np.float64) * 1e28, sigma=1.5), (24, 24))


def test_restore_takes_masked_arrays():
    y = np.ma.masked_array(COUNTS.copy(), mask=np.zeros(COUNTS.shape, bool))
    y.data[5, 5] = np.nan
    y.mask[5, 5] = True
    finite(xrfgpu.restore(y, sigma=1.5), (24, 24))


# -- the same parameters on the command line -----------------------------------------------------------------

@pytest.mark.parametrize("args,names", [
    (["--psf-sigma", "1e6um"], ["sigma"]),
    (["--psf-sigma", "20um", "--iterations", str(10**9)], ["--iterations"]),
    (["--psf-sigma", "20um", "--iterations", "0"], ["--iterations"]),
])
def test_cli_parameters_refused_in_one_line(tmp_path, capsys, args, names):
    from xrfgpu.cli import main

    np.save(tmp_path / "map.npy", COUNTS)
    before = (tmp_path / "map.npy").read_bytes()
    rc = main(["restore", str(tmp_path / "map.npy"), "-o", str(tmp_path / "out.npy"), "--pixel-size", "10um", *args])
    err = capsys.readouterr().err
    assert rc != 0
    assert "Traceback" not in err and any(n in err for n in names), err
    assert not (tmp_path / "out.npy").exists()
    assert (tmp_path / "map.npy").read_bytes() == before


@pytest.mark.parametrize("scale", [3e37, 1e-40])
def test_restore_near_the_float32_limits(scale):
    """Needs is_count_map (a 3e37 float32 map is integer-valued but no count map) and
    estimate_background(poisson=is_count_map(y)) (√b/k of a 1e-40 map is 1e20 times the map)."""
    y = (COUNTS.astype(np.float64) / COUNTS.max() * scale).astype(np.float32)
    finite(xrfgpu.restore(y, sigma=1.5), (24, 24))


def test_huge_pad_refused_by_the_operator_itself():
    from xrfgpu.fft import Convolution

    refused(lambda: Convolution(PSF, COUNTS.shape, pad=10**6), "pad")


@pytest.mark.parametrize("param", ["tv", "tol", "discrepancy"])
@FUZZ
@given(value=st.one_of(st.sampled_from([float("nan"), -1.0, float("-inf")]), st.floats(max_value=-1e-300)))
def test_bad_rl_options_name_themselves(param, value):
    refused(lambda: xrfgpu.richardson_lucy(COUNTS, PSF, num_iter=2, **{param: value}), param)


@pytest.mark.slow
def test_functions_without_missing_data_refuse_masked_arrays_clearly():
    # (restore_stack takes masked arrays since the tenth session: tests/test_stack_missing_pixels.py)
    one_masked = np.zeros(COUNTS.shape, bool)
    one_masked[3, 4] = True
    refused(lambda: xrfgpu.psf.estimate_sigma(np.ma.masked_array(COUNTS, mask=one_masked)), "1 masked pixels")
    # a masked array that masks nothing is its data (seventh QA pass: it was refused as masked)
    counts, _, _ = xrfgpu.phantom.observe((64, 64), 2.0, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SigmaUncertainWarning)  # a small map: σ is uncertain, the same for both
        given = xrfgpu.psf.estimate_sigma(np.ma.masked_array(counts, mask=False)).sigma
        plain = xrfgpu.psf.estimate_sigma(counts).sigma
    assert given == pytest.approx(plain, rel=1e-12)
