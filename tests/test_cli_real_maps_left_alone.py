"""Small things the QA on real maps (``docs/qa_real_maps.md``) found and left alone, each fixed here.

The real maps are the NSLS-II HXN nanoprobe TIFFs (``tests/data/hxn_nanoparticles_xrf``) and the APS
MAPS v9 file of the AXO standard (``tests/data/aps_2ide_maps_axo_std``), both MIT, see the READMEs
there. Every test failed before its fix.
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile

import xrfgpu
import xrfgpu.front_door
from xrfgpu.cli import main

DATA = Path(__file__).parent / "data"
FE = DATA / "hxn_nanoparticles_xrf" / "SUM_maps_XRF_Fe_K.tiff"
AXO = DATA / "aps_2ide_maps_axo_std" / "axo_std.h5"


def _count_gain_estimates(monkeypatch):
    """Count the calls of the effective-gain measurement (:func:`xrfgpu.background.estimate_gain`)."""
    calls = []
    measure = xrfgpu.front_door.estimate_gain

    def counted(*args, **kwargs):
        calls.append(1)
        return measure(*args, **kwargs)

    monkeypatch.setattr(xrfgpu.front_door, "estimate_gain", counted)
    return calls


# --------------------------------------------------------------------------- 1. one gain measurement per map


@pytest.mark.parametrize("tile", [[], ["--tile", "64"]], ids=["whole", "tiled"])
def test_psf_auto_measures_a_fitted_maps_gain_once(tmp_path, monkeypatch, tile):
    """``--psf-auto`` with the automatic background on a fitted map: one gain measurement, the library's numbers.

    Before, the background, the σ estimate and the restoration (or the tiled run's iteration count) each
    measured the gain again: three measurements of the same map.
    """
    from xrfgpu.psf.blind_sigma import SigmaUncertainWarning

    out = tmp_path / "fe.tif"
    calls = _count_gain_estimates(monkeypatch)
    assert main(["restore", str(FE), "-o", str(out), "--psf-auto", "-q", *tile]) == 0
    assert len(calls) == 1
    monkeypatch.undo()
    # the numbers of the library's own front door on the same map (its independent path, measuring itself)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SigmaUncertainWarning)
        ref, info = xrfgpu.restore(tifffile.imread(FE), return_info=True)
    with tifffile.TiffFile(out) as tif:
        restored = tif.asarray()
        record = json.loads(tif.imagej_metadata["Info"])["xrfgpu"]["provenance"]
    element = record["parameters"]["per_element"]["Fe_K"]
    psf = record["psf"]["Fe_K"]
    assert element["background"] == info["background"]
    assert element["iterations"] == info["iterations"] and element["cv_iterations"] == info["cv_iterations"]
    assert psf["source"]["sigma_estimated_px"] == info["sigma_estimated"]
    assert psf["sigma_px"] == pytest.approx(info["sigma"], rel=1e-12)
    if not tile:  # the same calls, so the same numbers to the last bit
        np.testing.assert_array_equal(restored, ref)
    else:  # tiles equal the whole map to rounding (tests/test_cli_files.py)
        np.testing.assert_allclose(restored, ref, rtol=0, atol=1e-5 * float(np.max(ref)))


def test_a_given_gain_is_used_instead_of_measuring_it(xp, monkeypatch):
    """``restore(map, gain=g)``: the map restored in map / g counts, without a measurement; bad gains refused."""
    from conftest import to_numpy

    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:48, :48]
    mean = 30.0 + 400.0 * np.exp(-((yy - 20.0) ** 2 + (xx - 27.0) ** 2) / (2 * 4.0**2))
    counts = rng.poisson(mean).astype(np.float64)
    gain = 0.0125  # a fitted map: 0.0125 map units per count, as known from a calibration
    fitted = xp.asarray(counts * gain)
    calls = _count_gain_estimates(monkeypatch)
    out, info = xrfgpu.restore(fitted, sigma=1.5, background=30.0 * gain, num_iter=8, gain=gain, return_info=True)
    assert calls == [] and info["gain"] == gain
    # the independent reference: the counts themselves, restored as counts and scaled back
    ref = xrfgpu.restore(xp.asarray(counts), sigma=1.5, background=30.0, num_iter=8)
    np.testing.assert_allclose(to_numpy(out), to_numpy(ref) * gain, rtol=1e-9, atol=1e-12 * float(np.max(mean)))
    for bad, error in ((0.0, ValueError), (float("nan"), ValueError), (-1.0, ValueError), ("x", TypeError)):
        with pytest.raises(error, match="gain"):
            xrfgpu.restore(fitted, sigma=1.5, gain=bad)
    with pytest.raises(ValueError, match="count map"):
        xrfgpu.restore(xp.asarray(counts), sigma=1.5, gain=2.0)
