"""Bad input gets a clear error naming the problem, for every algorithm."""

import numpy as np
import pytest

import xrfgpu

ALGORITHMS = {
    "richardson_lucy": lambda y, h, **k: xrfgpu.richardson_lucy(y, h, num_iter=2, **k),
    "wiener": lambda y, h, **k: xrfgpu.wiener(y, h, **k),
    "tikhonov": lambda y, h, **k: xrfgpu.tikhonov(y, h, **k),
    "fista": lambda y, h, **k: xrfgpu.fista(y, h, num_iter=2, **k),
}
PSF = np.ones((3, 3)) / 9.0


@pytest.fixture(params=list(ALGORITHMS))
def algorithm(request):
    return ALGORITHMS[request.param]


def good_map(shape=(16, 16)):
    return np.random.default_rng(0).poisson(50.0, shape).astype(np.float32)


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_infinite_map(algorithm, bad):
    y = good_map()
    y[3, 4] = bad
    with pytest.raises(ValueError, match="infinite"):
        algorithm(y, PSF)


def test_nan_pixel_is_missing_data(algorithm):
    """A NaN pixel is missing data: the result is finite everywhere (tests/test_missing_data.py checks the values)."""
    y = good_map()
    y[3, 4] = np.nan
    out = algorithm(y, PSF)
    assert np.all(np.isfinite(out))


def test_all_zero_map(algorithm):
    with pytest.raises(ValueError, match="all zeros"):
        algorithm(np.zeros((16, 16)), PSF)


@pytest.mark.parametrize("shape,match", [((0, 5), "empty"), ((1, 1), "at least 2 pixels"), ((1, 16), "at least 2 pixels"),
                                         ((16,), "2-D"), ((2, 8, 8), "restore_stack")])
def test_bad_shapes(algorithm, shape, match):
    with pytest.raises(ValueError, match=match):
        algorithm(np.ones(shape), PSF)


@pytest.mark.parametrize("psf,match", [
    (np.array([[0.0, 1.0], [-0.1, 0.5]]), "negative"),
    (np.array([[0.0, np.nan], [1.0, 0.5]]), "NaN"),
    (np.zeros((3, 3)), "sums to zero"),
    (np.ones((20, 5)), "larger than the map"),
    (np.ones(5), "2-D"),
])
def test_bad_psf(algorithm, psf, match):
    with pytest.raises(ValueError, match=match):
        algorithm(good_map(), psf)


def test_wrong_types(algorithm):
    with pytest.raises(TypeError, match="complex"):
        algorithm(good_map().astype(np.complex64), PSF)
    with pytest.raises(TypeError, match="must be an array"):
        algorithm([[1.0, 2.0], [3.0, 4.0]], PSF)
    with pytest.raises(TypeError, match="must be an array"):
        algorithm(good_map(), "gaussian")


def test_bad_background(algorithm):
    with pytest.raises(ValueError, match="background"):
        algorithm(good_map(), PSF, background=-5.0)
    with pytest.raises(ValueError, match="background map has shape"):
        algorithm(good_map(), PSF, background=np.ones((4, 4)))
    with pytest.raises(TypeError, match="background"):
        algorithm(good_map(), PSF, background="auto")


def test_bad_boundary(algorithm):
    with pytest.raises(ValueError, match="boundary"):
        algorithm(good_map(), PSF, boundary="zero")


def test_rl_negative_counts_says_what_to_do():
    y = good_map() - 60.0
    with pytest.raises(ValueError, match="background="):
        xrfgpu.richardson_lucy(y, PSF)


def test_rl_bad_options():
    with pytest.raises(ValueError, match="num_iter"):
        xrfgpu.richardson_lucy(good_map(), PSF, num_iter=0)
    with pytest.raises(TypeError, match="num_iter"):
        xrfgpu.richardson_lucy(good_map(), PSF, num_iter="ten")
    with pytest.raises(ValueError, match="tv"):
        xrfgpu.richardson_lucy(good_map(), PSF, tv=-0.1)
    with pytest.raises(ValueError, match="tol"):
        xrfgpu.richardson_lucy(good_map(), PSF, tol=0)


def test_inputs_are_not_modified(algorithm):
    y = good_map()
    h = PSF.copy() * 3.0
    y0, h0 = y.copy(), h.copy()
    algorithm(y, h)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(h, h0)


def test_psf_from_numpy_with_other_namespace():
    import array_api_strict as xs

    out = xrfgpu.richardson_lucy(xs.asarray(good_map()), PSF, num_iter=2)
    assert type(out).__module__.startswith("array_api_strict")
