"""Joint restoration refuses a given gain that is no gain, and names a map with nothing to restore.

Found by the second QA pass on real maps (``docs/qa_real_maps.md``): ``joint_richardson_lucy(...,
gain=[None, 0])`` (also NaN, −1, True) was taken for "gain not measurable" and the map quietly restored in
its own units with a fixed weight; a stack with an all-negative fitted map failed with "image is all
zeros", naming no map.
"""

import numpy as np
import pytest

from xrfgpu.joint import joint_richardson_lucy
from xrfgpu.psf import gaussian


def _stack():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:40, :40]
    disk = ((yy - 20) ** 2 + (xx - 18) ** 2 < 81).astype(np.float64)  # a shared disk, so the guide has edges
    guide = rng.poisson(20.0 + 300.0 * disk).astype(np.float64)
    fitted = 2e-3 * rng.poisson(30.0 + 60.0 * disk)
    return np.stack([guide, fitted]), gaussian(None, 1.0)


@pytest.mark.parametrize(("gain", "error"), [(0.0, ValueError), (float("nan"), ValueError), (-1.0, ValueError),
                                             (True, TypeError), ("2e-3", TypeError)])
def test_a_given_gain_that_is_no_gain_is_refused_naming_its_map(gain, error):
    stack, h = _stack()
    with pytest.raises(error, match="gain of map 1"):
        joint_richardson_lucy(stack, h, gain=[None, gain], weight=0.05, num_iter=3)


def test_a_gain_given_for_a_count_map_is_refused_naming_it():
    stack, h = _stack()
    with pytest.raises(ValueError, match="map 0: .*count map"):
        joint_richardson_lucy(stack, h, gain=[0.5, None], weight=0.05, num_iter=3)


def test_a_map_with_no_positive_value_is_named():
    stack, h = _stack()
    stack[1] = -stack[1] - 1e-3
    with pytest.raises(ValueError, match="map 1: image has no positive value"):
        joint_richardson_lucy(stack, h, weight=0.05, num_iter=3)


def test_a_valid_given_gain_is_used_and_recorded():
    stack, h = _stack()
    _, info = joint_richardson_lucy(stack, h, gain=[None, 2e-3], weight=0.05, num_iter=3, return_info=True)
    assert info["per_map"][1]["gain"] == pytest.approx(2e-3)
