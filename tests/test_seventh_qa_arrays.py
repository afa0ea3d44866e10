"""Arrays of odd kinds as masks, PSFs, backgrounds and maps (seventh QA pass, arrays).

Each odd array is compared with an independent reference: the same call with the plain NumPy array it
stands for (a ``numpy.matrix`` mask against its ``numpy.asarray``; a masked-array mask against the plain
weights 0 at its masked entries; a masked map against the map with NaN there), or it is refused with a
message that names the argument. Before the fixes:

* a ``numpy.matrix`` mask made ``wiener`` 86 times too bright (``*`` is a matrix product) and crashed
  RL, FISTA and ``restore_stack``;
* a masked-array PSF or background was used with the values under its mask; a complex background lost
  its imaginary part (a ComplexWarning only);
* FISTA and ISTA read a masked-array ``mask=`` by its data (the values under the mask);
* ``xrfgpu.dask.restore`` dropped a masked map's mask when ``mask=`` was given and refused it without;
  it crashed unclearly on a matrix or object map or background and accepted a bad PSF until
  ``.compute()``;
* ``fit_disk_spot`` and ``sigma_from_kernel`` fitted the real part of complex input, and all four PSF
  fits parsed text arrays as numbers;
* a 4-D stack was told to be "2-D or 3-D", and a 1-D map was sent to ``restore_stack``.

Masked arrays and ``numpy.matrix`` exist in NumPy only: those tests run on NumPy (with the map in the
``xp`` namespace where the function takes any namespace).
"""

import re
import warnings

import numpy as np
import pytest
from conftest import assert_array, to_numpy

import xrfgpu
import xrfgpu.dask
from xrfgpu import psf as P
from xrfgpu.phantom import observe

SHAPE = (40, 40)

# numpy.matrix warns that it is not recommended (PendingDeprecationWarning): a user may still hand one over
pytestmark = pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")


@pytest.fixture(scope="module")
def counts():
    c, _, _ = observe(SHAPE, 1.5, seed=1, signal_counts=50, background_counts=20)
    return c.astype(np.float64)


@pytest.fixture(scope="module")
def h():
    return P.gaussian((9, 9), 1.5, dtype=np.float64)


@pytest.fixture(scope="module")
def missing():
    miss = np.zeros(SHAPE, bool)
    miss[12:15, 20:30] = True
    miss[3, 4] = True
    return miss


SOLVERS = {
    "richardson_lucy": lambda y, h, **kw: xrfgpu.richardson_lucy(y, h, num_iter=6, **kw),
    "fista": lambda y, h, **kw: xrfgpu.fista(y, h, num_iter=6, **kw),
    "ista": lambda y, h, **kw: xrfgpu.ista(y, h, num_iter=6, **kw),
    "wiener": lambda y, h, **kw: xrfgpu.wiener(y, h, **kw),
    "tikhonov": lambda y, h, **kw: xrfgpu.tikhonov(y, h, **kw),
    "restore-rl": lambda y, h, **kw: xrfgpu.restore(y, h, num_iter=6, background=20.0, **kw),
    "restore-fista": lambda y, h, **kw: xrfgpu.restore(y, h, method="fista", num_iter=6, background=20.0, **kw),
}


def _host(x):
    return np.asarray(to_numpy(x))


# -- finding 1: a numpy.matrix mask is its plain array -------------------------------------------------------

@pytest.mark.parametrize("name", list(SOLVERS))
def test_matrix_mask_equals_the_plain_mask(counts, h, missing, name):
    weights = (~missing).astype(np.float64)
    expected = SOLVERS[name](counts, h, mask=weights)
    got = SOLVERS[name](counts, h, mask=np.matrix(weights))
    assert type(got) is np.ndarray
    np.testing.assert_array_equal(got, expected)


def test_matrix_mask_in_a_stack_and_in_the_cv_stop(counts, h, missing):
    from xrfgpu.stopping import cv_stop

    weights = ~missing
    stack = np.stack([counts, counts[::-1]])
    expected = xrfgpu.restore_stack(stack, h, "wiener", mask=weights)
    np.testing.assert_array_equal(xrfgpu.restore_stack(stack, h, "wiener", mask=np.matrix(weights)), expected)
    plain = cv_stop(counts, h, background=20.0, max_iter=8, mask=weights)
    matrix = cv_stop(counts, h, background=20.0, max_iter=8, mask=np.matrix(weights))
    assert matrix.iterations == plain.iterations


# -- finding 4: a masked-array mask is 0 at its masked entries, its values elsewhere, for every solver --------

@pytest.mark.parametrize("name", list(SOLVERS))
def test_masked_array_mask_is_weight_zero_where_masked(xp, counts, h, missing, name):
    weights = np.where(missing, 0.0, 0.75)  # a fractional weight: the unmasked values are used as they are
    weights[0, 0] = 1.0
    as_masked = np.ma.masked_array(np.where(missing, 1.0, weights), mask=missing)  # 1 under the mask
    y, psf = xp.asarray(counts), xp.asarray(h)
    expected = SOLVERS[name](y, psf, mask=xp.asarray(weights))
    got = SOLVERS[name](y, psf, mask=as_masked)
    assert_array(got, _host(expected), xp, rtol=1e-12)
    compared = np.ma.masked_array(np.ones(SHAPE), mask=missing) > 0.5  # the QA pass's mask: True under the mask
    got = SOLVERS[name](y, psf, mask=compared)
    assert_array(got, _host(SOLVERS[name](y, psf, mask=xp.asarray(~missing))), xp, rtol=1e-12)


# -- finding 2: a PSF with masked entries is refused, one masking nothing is its data -------------------------

@pytest.mark.parametrize("name", ["richardson_lucy", "fista", "wiener", "restore-rl"])
def test_psf_with_masked_entries_is_refused_naming_them(counts, h, name):
    hot = h.copy()
    hot[0, 0] = 5.0
    masked = np.ma.masked_array(hot, mask=np.zeros(hot.shape, bool))
    masked[0, 0] = np.ma.masked
    with pytest.raises(ValueError, match=r"psf is a masked array with 1 masked entry \(at \(0, 0\)\)"):
        SOLVERS[name](counts, masked)
    # one masking nothing, and a numpy.matrix, are their data
    expected = SOLVERS[name](counts, h)
    np.testing.assert_array_equal(SOLVERS[name](counts, np.ma.masked_array(h, mask=False)), expected)
    np.testing.assert_array_equal(SOLVERS[name](counts, np.matrix(h)), expected)


def test_stack_psf_with_masked_entries_is_refused(counts, h):
    masked = np.ma.masked_array(h, mask=np.zeros(h.shape, bool))
    masked[4, 4] = np.ma.masked
    with pytest.raises(ValueError, match=r"masked entry \(at \(4, 4\)\)"):
        xrfgpu.restore_stack(np.stack([counts, counts]), masked, "wiener")


@pytest.mark.parametrize("dtype", [object, str])
def test_psf_of_objects_or_text_is_refused(counts, h, dtype):
    with pytest.raises(TypeError, match=r"psf must hold numbers .* got dtype"):
        xrfgpu.richardson_lucy(counts, h.astype(dtype), num_iter=2)


# -- finding 5: complex and masked backgrounds ------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["map", "0-d", "scalar"])
def test_complex_background_is_refused(xp, counts, h, kind):
    y = xp.asarray(counts)
    if kind == "map":
        background = xp.asarray(np.full(SHAPE, 20.0) + 5j)
    elif kind == "0-d":
        background = xp.asarray(20.0 + 5j)
    else:
        background = 20.0 + 5j
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning: a refusal
        with pytest.raises(TypeError, match=r"background must be (a )?real.*\bcomplex|background must be a real"):
            xrfgpu.richardson_lucy(y, xp.asarray(h), num_iter=2, background=background)


def test_background_with_masked_entries_is_refused_naming_them(counts, h):
    hot = np.full(SHAPE, 20.0)
    hot[3, 3] = 1e4
    masked = np.ma.masked_array(hot, mask=np.zeros(SHAPE, bool))
    masked[3, 3] = np.ma.masked
    for call in (lambda: xrfgpu.richardson_lucy(counts, h, num_iter=2, background=masked),
                 lambda: xrfgpu.wiener(counts, h, background=masked)):
        with pytest.raises(ValueError, match=r"background is a masked array with 1 masked entry \(at \(3, 3\)\)"):
            call()
    # one masking nothing, and a numpy.matrix, are their data
    background = np.full(SHAPE, 20.0)
    background[5:9, 5:9] = 25.0
    expected = xrfgpu.richardson_lucy(counts, h, num_iter=4, background=background)
    for odd in (np.ma.masked_array(background, mask=False), np.matrix(background)):
        np.testing.assert_array_equal(xrfgpu.richardson_lucy(counts, h, num_iter=4, background=odd), expected)


@pytest.mark.parametrize("dtype", [object, str])
def test_background_of_objects_or_text_is_refused(counts, h, dtype):
    with pytest.raises(TypeError, match=r"background must hold numbers .* got dtype"):
        xrfgpu.wiener(counts, h, background=np.full(SHAPE, 20.0).astype(dtype))


# -- finding 6: the PSF fits refuse complex and non-numeric input alike ----------------------------------------

def _dot():
    return np.round(P.gaussian((15, 15), 2.0) * 1000 + 50)


def _edge():
    from scipy.special import erf

    u = np.arange(40.0)[None, :]
    return np.round(20.0 + 200.0 * 0.5 * (1 + erf((u - 19.6) / (np.sqrt(2) * 2.0))) * np.ones((32, 1)))


FITS = {
    "fit_dot": (lambda a: P.fit_dot(a), _dot, "image"),
    "fit_disk_spot": (lambda a: P.fit_disk_spot(a), _dot, "image"),
    "sigma_from_kernel": (lambda a: P.sigma_from_kernel(a), _dot, "kernel"),
    "fit_knife_edge": (lambda a: P.fit_knife_edge(a), _edge, "image_or_profile"),
}


@pytest.mark.parametrize("name", list(FITS))
def test_fits_refuse_complex_input_naming_the_argument(xp, name):
    fit, data, argument = FITS[name]
    with pytest.raises(TypeError, match=rf"^{argument} must be real .*complex"):
        fit(xp.asarray(data() + 7j))


@pytest.mark.parametrize("dtype", [str, object])
@pytest.mark.parametrize("name", list(FITS))
def test_fits_refuse_text_and_objects_naming_the_argument(name, dtype):
    fit, data, argument = FITS[name]
    with pytest.raises(TypeError, match=rf"^{argument} must hold numbers"):
        fit(data().astype(dtype))
    # the numbers themselves, and as a numpy.matrix, are fitted
    plain, matrix = fit(data()), fit(np.matrix(data()))
    assert (matrix.sigma_u == plain.sigma_u) if hasattr(plain, "sigma_u") else (matrix.sigma == plain.sigma)


# -- findings 3, 7, 10: xrfgpu.dask.restore ---------------------------------------------------------------------

def _dask(y, h, method="rl", **kw):
    if method == "rl":
        kw.setdefault("num_iter", 5)
    return np.asarray(xrfgpu.dask.restore(y, h, method, tile=16, **kw).compute())


@pytest.mark.parametrize("method", ["rl", "wiener", "fista"])
def test_dask_masked_map_is_the_nan_marked_map(counts, h, missing, method):
    """The masked entries are missing pixels, with mask= and without; the reference marks them NaN."""
    hot = np.ma.masked_array(np.where(missing, 1e4, counts), mask=missing)
    nan_marked = np.where(missing, np.nan, counts)
    ones = np.ones(SHAPE, bool)
    np.testing.assert_allclose(_dask(hot, h, method), _dask(nan_marked, h, method), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(_dask(hot, h, method, mask=ones), _dask(nan_marked, h, method, mask=ones),
                               rtol=1e-12, atol=1e-12)


def test_dask_masked_map_with_mask_equals_the_whole_map(counts, h, missing):
    hot = np.ma.masked_array(np.where(missing, 1e4, counts), mask=missing)
    more = np.ones(SHAPE)
    more[30:33, 5:8] = 0.0  # the two combine: a pixel is used where both keep it
    whole = xrfgpu.richardson_lucy(hot, h, num_iter=5, mask=more)
    tiled = _dask(hot, h, mask=more)
    assert np.max(np.abs(tiled - whole)) <= 1e-4 * np.max(whole)
    assert np.max(tiled) < 2 * np.max(whole)


def test_dask_infinite_values_under_the_mask_are_missing(counts, h):
    bad = counts.copy()
    bad[7, 7], bad[20, 21] = np.inf, np.nan
    as_read = np.ma.masked_invalid(bad)
    whole = xrfgpu.richardson_lucy(as_read, h, num_iter=5)
    tiled = _dask(as_read, h)
    assert np.max(np.abs(tiled - whole)) <= 1e-4 * np.max(whole)


@pytest.mark.slow
def test_dask_odd_maps_and_backgrounds_are_their_plain_arrays(counts, h):
    import dask.array as da

    background = np.full(SHAPE, 20.0)
    expected = _dask(counts, h, background=background)
    assert np.array_equal(_dask(np.matrix(counts), h, background=background), expected)
    assert np.array_equal(_dask(np.ma.masked_array(counts, mask=False), h, background=background), expected)
    assert np.array_equal(_dask(counts, h, background=np.matrix(background)), expected)
    assert np.array_equal(_dask(counts, h, background=np.ma.masked_array(background, mask=False)), expected)
    masked_chunks = da.ma.masked_array(da.from_array(counts, chunks=16), mask=np.zeros(SHAPE, bool))
    assert np.array_equal(_dask(masked_chunks, h, background=background), expected)


@pytest.mark.parametrize("dtype", [object, str])
def test_dask_map_or_background_of_objects_is_refused_up_front(counts, h, dtype):
    with pytest.raises(TypeError, match=r"^array must hold numbers"):
        xrfgpu.dask.restore(counts.astype(dtype), h, "rl", tile=16, num_iter=2)
    with pytest.raises(TypeError, match=r"^background must hold numbers"):
        xrfgpu.dask.restore(counts, h, "rl", tile=16, num_iter=2, background=np.full(SHAPE, 20.0).astype(dtype))


def test_dask_complex_or_masked_background_is_refused(counts, h):
    with pytest.raises(TypeError, match=r"^background must be (a )?real"):
        xrfgpu.dask.restore(counts, h, "rl", tile=16, num_iter=2, background=np.full(SHAPE, 20.0) + 5j)
    with pytest.raises(TypeError, match=r"^background must be a real number"):
        xrfgpu.dask.restore(counts, h, "rl", tile=16, num_iter=2, background=20.0 + 5j)
    masked = np.ma.masked_array(np.full(SHAPE, 20.0), mask=np.zeros(SHAPE, bool))
    masked[2, 3] = np.ma.masked
    with pytest.raises(ValueError, match=r"background is a masked array with 1 masked entry \(at \(2, 3\)\)"):
        xrfgpu.dask.restore(counts, h, "rl", tile=16, num_iter=2, background=masked)


def _in_core_message(call):
    with pytest.raises((TypeError, ValueError)) as info:
        call()
    return type(info.value), str(info.value)


@pytest.mark.parametrize("bad", ["negative", "nan", "complex", "zeros", "masked"])
def test_dask_bad_psf_is_refused_before_the_graph_as_in_core(counts, h, bad):
    psf = {"negative": lambda: -h, "nan": lambda: np.where(h == h.max(), np.nan, h), "complex": lambda: h + 1j,
           "zeros": lambda: np.zeros_like(h),
           "masked": lambda: np.ma.masked_array(h, mask=h == h.max())}[bad]()
    kind, message = _in_core_message(lambda: xrfgpu.richardson_lucy(counts, psf, num_iter=2))
    with pytest.raises(kind, match=re.escape(message)):
        xrfgpu.dask.restore(counts, psf, "rl", tile=16, num_iter=2)  # raises here, not at .compute()


def test_dask_masked_mask_is_weight_zero_where_masked(counts, h, missing):
    as_masked = np.ma.masked_array(np.ones(SHAPE), mask=missing) > 0.5
    np.testing.assert_array_equal(_dask(counts, h, "fista", mask=as_masked), _dask(counts, h, "fista", mask=~missing))
    np.testing.assert_array_equal(_dask(counts, h, mask=np.matrix(~missing)), _dask(counts, h, mask=~missing))


# -- finding 8: the shape messages say what is taken ------------------------------------------------------------

def test_stack_of_four_axes_is_told_three(counts, h):
    with pytest.raises(ValueError) as info:
        xrfgpu.restore_stack(counts[None, None], h)
    message = str(info.value)
    assert "must be 3-D (maps, rows, columns)" in message and "2-D" not in message
    assert "squeeze" in message


@pytest.mark.parametrize("shape", [(40,), ()])
def test_map_of_fewer_axes_gets_no_stack_hint(h, shape):
    with pytest.raises(ValueError) as info:
        xrfgpu.richardson_lucy(np.ones(shape), h)
    message = str(info.value)
    assert "must be 2-D (rows, columns)" in message and "restore_stack" not in message
    # a stack of maps still gets the hint
    with pytest.raises(ValueError, match="restore a stack of element maps with xrfgpu.restore_stack"):
        xrfgpu.richardson_lucy(np.ones((2, 40, 40)), h)


def test_tiled_rl_with_tv_equals_the_whole_map_at_the_outer_border():
    """RL-TV in independent tiles (``xrfgpu.dask.restore``) against the whole map: the border tiles get no
    mirrored halo (the TV's forward differences do not mirror), so the map's first pixels come out as the
    whole map's (before: 2.5e-2 of the maximum at ``tv=0.01`` for any halo; now 6e-8, float64)."""
    import dask.array as da

    import xrfgpu.dask as xd

    counts, _, _ = xrfgpu.phantom.observe((160, 160), 3.0, seed=3)
    counts = counts.astype(np.float64)
    h = xrfgpu.psf.gaussian(None, 3.0)
    whole = xrfgpu.richardson_lucy(counts, h, num_iter=30, background=100, tv=0.01)
    tiled = np.asarray(xd.restore(da.from_array(counts, chunks=64), h, "rl", tile=64, tv=0.01, num_iter=30,
                                  background=100).compute())
    assert np.abs(tiled - whole).max() <= 1e-6 * np.abs(whole).max()


def test_masked_psfs_backgrounds_and_masks_reach_every_path_as_for_one_numpy_map():
    """The paths that took a PSF, background or mask through another door (an ``array_api_strict`` map's
    namespace conversion, ``restore_stack``, the tiled RL): a masked PSF or background is refused naming its
    masked entries, a complex one is refused, and a masked-array mask is weights 0 at its masked entries (each
    was used by the values under its mask, or by its real part, before)."""
    import array_api_strict

    from xrfgpu import dask_rl

    counts, _, _ = xrfgpu.phantom.observe((64, 64), 1.5, seed=1, signal_counts=50, background_counts=20)
    counts = counts.astype(np.float32)
    h = xrfgpu.psf.gaussian((9, 9), 1.5)
    hot = h.copy()
    hot[0, 0] = 5.0
    masked_psf = np.ma.masked_array(hot, mask=np.zeros(hot.shape, bool))
    masked_psf[0, 0] = np.ma.masked
    stack = np.stack([counts, counts])
    for call in (lambda: xrfgpu.richardson_lucy(array_api_strict.asarray(counts), masked_psf, num_iter=3),
                 lambda: xrfgpu.restore_stack(stack, [masked_psf, h], "rl", num_iter=3),
                 lambda: dask_rl.richardson_lucy(counts, masked_psf, tile=32, num_iter=3)):
        with pytest.raises(ValueError, match=r"masked entry \(at \(0, 0\)\)"):
            call()
    with pytest.raises(ValueError, match=r"background is a masked array with 1 masked entry"):
        xrfgpu.restore_stack(stack, h, "rl", num_iter=3, background=np.ma.masked_array([20.0, 20.0], mask=[0, 1]))
    with pytest.raises(TypeError, match="background must be real"):
        xrfgpu.restore_stack(stack, h, "rl", num_iter=3, background=np.array([20 + 1j, 20]))
    missing = np.zeros(counts.shape, bool)
    missing[20:25, 20:30] = True
    as_masked = xrfgpu.restore_stack(stack, h, "rl", num_iter=5, background=20.0,
                                     mask=np.ma.masked_array(np.ones(counts.shape), mask=missing))
    as_weights = xrfgpu.restore_stack(stack, h, "rl", num_iter=5, background=20.0,
                                      mask=(~missing).astype(np.float64))
    np.testing.assert_array_equal(as_masked, as_weights)


@pytest.mark.parametrize("exponent", [-1065, 600])
def test_a_float64_map_far_beyond_float32_range_restores_as_the_scaled_map(exponent):
    """A float64 map × 2**k with a background: restored as the map's restoration × 2**k (the rescaling took the
    float background to ``background * 2.0**k``, an OverflowError for k > 1023, a subnormal map's case)."""
    counts, _, _ = observe((64, 64), 1.5, seed=1, signal_counts=50, background_counts=20)
    counts = counts.astype(np.float64)
    h = P.gaussian(None, 1.5)
    reference = xrfgpu.richardson_lucy(counts, h, num_iter=5, background=20.0)
    scaled = xrfgpu.richardson_lucy(counts * 2.0**exponent, h, num_iter=5, background=20.0 * 2.0**exponent)
    # a subnormal result keeps 16 bits or so (its spacing is 2**-1074): 1e-4 of the maximum
    np.testing.assert_allclose(scaled / 2.0**exponent, reference, rtol=0, atol=1e-4 * reference.max())
