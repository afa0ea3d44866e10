"""The Gaussian PSF model and unit helpers, against analytic moments."""

import math

import numpy as np
import pytest
from conftest import to_numpy
from scipy import ndimage

from xrfgpu import psf


def moments(h):
    rows, cols = np.indices(h.shape)
    m = h.sum()
    r0, c0 = (rows * h).sum() / m, (cols * h).sum() / m
    vr = ((rows - r0) ** 2 * h).sum() / m
    vc = ((cols - c0) ** 2 * h).sum() / m
    cov = ((rows - r0) * (cols - c0) * h).sum() / m
    return r0, c0, vr, vc, cov


def test_sum_centre_and_second_moments(xp):
    h = to_numpy(psf.gaussian((61, 81), 5.0, 3.0, rho=0.3, xp=xp))
    r0, c0, vr, vc, cov = moments(h)
    assert h.sum() == pytest.approx(1.0)
    assert (r0, c0) == (pytest.approx(30), pytest.approx(40))
    assert vc == pytest.approx(25.0, rel=1e-3)
    assert vr == pytest.approx(9.0, rel=1e-3)
    assert cov / math.sqrt(vr * vc) == pytest.approx(0.3, abs=1e-3)


def test_even_size_centre():
    h = psf.gaussian((8, 10), 1.0)
    assert np.unravel_index(np.argmax(h), h.shape) == (4, 5)


def test_gaussians_add_variances():
    a = psf.gaussian(61, 3.0)
    b = psf.gaussian(61, 4.0)
    c = ndimage.convolve(a, b, mode="constant")
    np.testing.assert_allclose(c, psf.gaussian(61, 5.0), atol=1e-6)


def test_unit_helpers():
    assert psf.sigma_to_fwhm(1.0) == pytest.approx(2 * math.sqrt(2 * math.log(2)))
    assert psf.fwhm_to_sigma(psf.sigma_to_fwhm(37.5)) == pytest.approx(37.5)
    assert psf.um_to_pixels(32.5, 5.0) == pytest.approx(6.5)
    assert psf.pixels_to_um(6.5, 5.0) == pytest.approx(32.5)
    with pytest.raises(ValueError, match="pixel_size_um"):
        psf.um_to_pixels(10, 0)


def test_default_shape_holds_four_sigma():
    h = psf.gaussian(None, 2.5, 1.0)
    assert h.shape == (9, 21)


@pytest.mark.parametrize("kwargs,match", [({"sigma": 0}, "sigma"), ({"sigma": 1, "rho": 1.0}, "rho"),
                                          ({"sigma": float("nan")}, "sigma"), ({"sigma": 1, "sigma_y": -1}, "sigma_y")])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        psf.gaussian(11, **kwargs)


def test_axis_variances_are_the_kernels_second_moments():
    # analytic: a box of side n has variance (n² − 1) / 12 along each axis; a Gaussian of σx (columns), σy
    # (rows) truncated at ±4σ keeps σ² to about 3e-3
    from xrfgpu.psf._gaussian import axis_variances

    box = np.zeros((9, 7))
    box[2:7, 1:4] = 1.0  # 5 rows, 3 columns, off centre
    assert axis_variances(box) == pytest.approx(((25 - 1) / 12, (9 - 1) / 12), rel=1e-12)
    var_r, var_c = axis_variances(psf.gaussian(None, 2.0, 3.0))
    assert var_c == pytest.approx(4.0, rel=3e-3) and var_r == pytest.approx(9.0, rel=3e-3)
    assert axis_variances(box[None]) == axis_variances(box)
    assert axis_variances(np.zeros((5, 5))) is None and axis_variances(np.ones(5)) is None
