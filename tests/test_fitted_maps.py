"""Fitted / normalised maps (PyXRF, MAPS): effective Poisson gain, a background below the map, kept flux.

The real maps are the NSLS-II HXN nanoparticle maps in ``tests/data/hxn_nanoparticles_xrf``
(MIT licence, see the README there).
"""

import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

import xrfgpu
from xrfgpu.background import estimate_background, estimate_gain, is_count_map

DATA = Path(__file__).parent / "data" / "hxn_nanoparticles_xrf"


def _hxn(element):
    import tifffile

    return tifffile.imread(DATA / f"SUM_maps_XRF_{element}_K.tiff").astype(np.float64)


def _structured_counts(seed, shape=(128, 128), sigma=2.0):
    rng = np.random.default_rng(seed)
    scene = np.zeros(shape)
    scene[30:90, 20:60] = 1.0
    scene[15:45, 75:115] = 3.0
    scene[70:110, 80:100] = 0.5
    mean = 20.0 + 100.0 * ndimage.gaussian_filter(scene, sigma)
    return rng.poisson(mean).astype(np.float64), scene, mean


@pytest.mark.parametrize("gain", [1.0, 0.003, 250.0])
def test_gain_of_a_scaled_count_map(gain, xp):
    # truth: the map is gain × Poisson counts, so its variance is gain × its mean
    counts, _, _ = _structured_counts(seed=1)
    est = estimate_gain(xp.asarray(counts * gain))
    assert float(est) == pytest.approx(gain, rel=0.06)
    assert est.blocks > 50 and est.spread < 0.5


def test_gain_where_most_of_the_map_is_textured(xp):
    # truth: gain × Poisson counts; a third of the map is flat ground (mean 100), two thirds carry a pixel-scale
    # texture (mean 100 (1 + u), u uniform on [0, 1] per pixel: unresolved particles) whose variance (≈ 833) is
    # several times the counts' own. The flatter half of the blocks then still holds textured ones; their
    # variance is not noise, and the gain must not take it for noise.
    rng = np.random.default_rng(4)
    mean = np.full((96, 96), 100.0)
    mean[:, 32:] *= 1.0 + rng.uniform(size=(96, 64))
    gain = 0.02
    est = estimate_gain(xp.asarray(gain * rng.poisson(mean).astype(np.float64)))
    assert float(est) == pytest.approx(gain, rel=0.1)


def test_gain_of_a_crop_of_a_real_map_is_the_whole_maps():
    # the gain belongs to the instrument and the fit, not to the window: a 96² crop of the HXN Fe map, half
    # of it inside the particle aggregate, gives the whole map's gain (it gave 13× before the blocks whose
    # variance is structure were dropped)
    y = _hxn("Fe")
    assert float(estimate_gain(y[:96, :96])) == pytest.approx(float(estimate_gain(y)), rel=0.25)


def test_count_map_test():
    counts, _, _ = _structured_counts(seed=2)
    assert is_count_map(counts)
    assert not is_count_map(counts * 0.01)
    assert not is_count_map(counts - 30.0)


@pytest.mark.parametrize("element", ["Fe", "Cr", "Si"])
def test_background_of_real_fitted_maps_is_below_a_low_quantile(element):
    y = _hxn(element)
    for image in (y, y / float(estimate_gain(y))):
        b = estimate_background(image)
        # the 25 % quantile of the 15 × 15 box means that lie inside the map (scipy as the reference)
        cap = np.quantile(ndimage.uniform_filter(image, 15)[7:-7, 7:-7], 0.25)
        assert 0.0 <= b <= cap * (1 + 1e-9)
        assert b < image.max()


# the 99th percentile of |∇| must grow by more than this: the fidelity goal by 7-9 % on Fe and Cr, the default
# resolution goal (0.9 σ of a σ of about 0.45 px deconvolves less) by 4-5 % (docs/front_door.md, "Goals")
_SHARPER = {"fidelity": 1.05, "resolution": 1.02}


@pytest.mark.slow
@pytest.mark.parametrize("goal", ["resolution", "fidelity"])
@pytest.mark.parametrize("element", ["Fe", "Cr"])
def test_real_fitted_maps_are_restored_not_erased(element, goal):
    from xrfgpu.psf.blind_sigma import SigmaUncertainWarning

    y = _hxn(element)
    # σ of these maps (about 1.2 px by straight-edge fits) is near the limit of the spectrum: the Fe map's
    # spectral interval is wider than the reliability limit and flagged; this test judges the fitted-map path
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SigmaUncertainWarning)
        out, info = xrfgpu.restore(y, goal=goal, return_info=True)
    assert info["map_kind"].startswith("fitted") and info["gain"] > 0
    assert info["background"] < np.quantile(y, 0.5)
    # not mostly zeros: as few (near-)zero pixels as the input has, within a few per cent of the map
    assert np.mean(out <= 1e-6 * out.max()) < 0.05
    # flux above background kept within 3 %
    assert out.sum() == pytest.approx((y - info["background"]).sum(), rel=0.03)
    # sharper: the strongest gradients (99th percentile of |∇|) grow
    def edge(a):
        return np.quantile(np.hypot(*np.gradient(a)), 0.99)

    assert edge(out) > _SHARPER[goal] * edge(y - info["background"])
    assert set(info["seconds"]) >= {"gain", "background", "sigma", "restore"}


@pytest.mark.slow
def test_real_substrate_map_warns_that_sigma_is_unknown():
    # Si is a weak, almost uniform substrate signal: no blur can be read from it
    from xrfgpu.psf.blind_sigma import SigmaUncertainWarning

    y = _hxn("Si")
    with pytest.warns(SigmaUncertainWarning):
        out, info = xrfgpu.restore(y, return_info=True)
    assert not info["sigma_reliable"]
    with pytest.raises(ValueError, match="uncertain"):
        xrfgpu.restore(y, strict=True)


def test_synthetic_fitted_map_restores_like_its_counts():
    # a fitted map = counts × 0.004: restored in effective counts it must beat the raw map on the truth
    counts, scene, mean = _structured_counts(seed=3)
    fitted = counts * 0.004
    out, info = xrfgpu.restore(fitted, sigma=2.0, return_info=True)
    truth = 0.004 * 100.0 * scene
    raw_err = np.mean((fitted - info["background"] - truth) ** 2)
    assert np.mean((out - truth) ** 2) < 0.8 * raw_err
    assert info["gain"] == pytest.approx(0.004, rel=0.06)
    assert info["background"] == pytest.approx(0.004 * 20.0, rel=0.05)


def test_tiny_fitted_map_uses_the_whole_map_variance():
    # an 11 x 11 MAPS-like map: too small for 8 x 8 blocks; the gain falls back to variance / mean,
    # an upper bound of the true gain (the reference: 0.02 x Poisson(400) on a flat field)
    rng = np.random.default_rng(7)
    fitted = 0.02 * rng.poisson(400.0, (11, 11)).astype(np.float64)
    out, info = xrfgpu.restore(fitted, sigma=1.0, background=0.0, num_iter=5, return_info=True)
    assert "gain_note" in info and info["gain"] == pytest.approx(0.02, rel=0.35)
    assert out.sum() == pytest.approx(fitted.sum(), rel=0.03)


@pytest.mark.slow
@pytest.mark.parametrize("element", ["Fe", "Si"])
def test_cli_restores_a_real_fitted_map_as_the_library_does(tmp_path, capsys, element):
    """``xrfgpu restore --psf-auto`` (background auto) on an HXN TIFF: the library's background, count and map.

    Before, the command line estimated a fitted map's background without the Poisson correction in the
    map's own units (Fe: 0.0207 against the library's 0.0103, Si: 0.0054 against 0.0042), so RL ran 14
    iterations where ``xrfgpu.restore(map)`` ran 6 (Si: 20 against 8).
    """
    import json

    import h5py

    from xrfgpu.cli import main
    from xrfgpu.psf.blind_sigma import SigmaUncertainWarning

    src = DATA / f"SUM_maps_XRF_{element}_K.tiff"
    out = tmp_path / "out.h5"
    capsys.readouterr()
    assert main(["restore", str(src), "-o", str(out), "--psf-auto"]) == 0  # no Python warning escapes
    stderr = capsys.readouterr().err
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SigmaUncertainWarning)
        ref, info = xrfgpu.restore(_hxn(element).astype(np.float32), return_info=True)
    with h5py.File(out, "r") as f:
        restored = f["xrfgpu/maps"][0]
        prov = json.loads(f["xrfgpu"].attrs["provenance"])
    element_record = next(iter(prov["parameters"]["per_element"].values()))
    psf_source = next(iter(prov["psf"].values()))["source"]
    if element == "Si":  # a flat substrate: σ is uncertain, said once on stderr and kept in the record
        assert "Warning: Si_K: estimate_sigma: σ is uncertain" in stderr and "--psf-sigma" in stderr
        assert "σ is uncertain" in psf_source["warnings"][0]
    assert element_record["background"] == pytest.approx(info["background"], rel=1e-6)
    assert element_record["iterations"] == info["iterations"]
    np.testing.assert_allclose(restored, ref, rtol=1e-5, atol=1e-4 * float(np.max(ref)))


AXO = Path(__file__).parent / "data" / "aps_2ide_maps_axo_std" / "axo_std.h5"


def _flat_film(seed, gain, shape=(64, 64), level=400.0):
    """A uniform film as a fitted map: gain × (Poisson counts of one level + the fit's own continuous noise, 0.5
    counts rms), no element-free area. A spectrum fit's output is continuous (the continuum it subtracts is an
    estimate); gain × counts alone sits on the photons' lattice, which is a count map divided by one number
    (:func:`xrfgpu.map_kind.count_lattice_step`), whose background no fit removed."""
    rng = np.random.default_rng(seed)
    return gain * (rng.poisson(level, shape) + rng.normal(0.0, 0.5, shape))


def test_element_free_depth_tells_a_flat_map_from_one_with_a_free_area():
    from xrfgpu.background import element_free_depth

    # truth by construction: a flat Poisson map's lowest box mean is within the noise allowance on every
    # seed; with a 12 x 12 element-free patch (background 50 under a film of 400) it lies far below
    for seed in range(10):
        flat = np.random.default_rng(seed).poisson(400.0, (64, 64)).astype(np.float64)
        depth, allowance = element_free_depth(flat)
        assert depth < allowance
        holed = flat.copy()
        holed[20:32, 30:42] = np.random.default_rng(100 + seed).poisson(50.0, (12, 12))
        depth, allowance = element_free_depth(holed)
        assert depth > 10 * allowance


@pytest.mark.parametrize("gain", [0.004, 2.7])
def test_a_fitted_uniform_film_is_kept_not_taken_for_background(gain):
    """A fitted map with no element-free area gets background 0 and keeps its flux (it was erased)."""
    film = _flat_film(1, gain)
    out, info = xrfgpu.restore(film, sigma=1.5, return_info=True)
    assert info["background"] == 0.0 and "no element-free area" in info["background_source"]
    assert out.sum() == pytest.approx(film.sum(), rel=0.01)
    # the same film with an element-free patch: the background is estimated as before, near 0 here
    holed = film.copy()
    holed[20:32, 30:42] = 0.0
    _, info = xrfgpu.restore(holed, sigma=1.5, return_info=True)
    assert "estimate_background" in info["background_source"]
    # a count map keeps the count estimator whatever its shape (the continuum is in the counts)
    counts = np.random.default_rng(2).poisson(400.0, (64, 64)).astype(np.float64)
    _, info = xrfgpu.restore(counts, sigma=1.5, return_info=True)
    assert "estimate_background" in info["background_source"] and info["background"] > 300


@pytest.mark.parametrize("element", ["Fe", "Ca", "K"])
def test_real_uniform_film_is_restored_not_erased(element):
    """APS MAPS AXO standard (11 × 11, uniform film): restore(map) used to return about 1e-3 of it."""
    from xrfgpu.io import read_maps

    film = np.asarray(read_maps(AXO).maps[element], dtype=np.float64)
    out, info = xrfgpu.restore(film, sigma=1.0, return_info=True)
    assert info["map_kind"].startswith("fitted") and info["background"] == 0.0
    assert out.mean() == pytest.approx(film.mean(), rel=0.02)
    assert np.all(out > 0.5 * film.min())


def test_cli_keeps_the_real_uniform_film_and_records_why(tmp_path):
    """The command line's --background auto is the front door's: the AXO film gets 0, and the record says why."""
    import json

    import h5py

    from xrfgpu.cli import main
    from xrfgpu.io import read_maps

    out = tmp_path / "axo.h5"
    assert main(["restore", str(AXO), "-o", str(out), "--elements", "Fe", "--psf-sigma", "1px", "-q"]) == 0
    prov = json.loads(Path(f"{out}.json").read_text())["xrfgpu"]["provenance"]
    element = next(iter(prov["parameters"]["per_element"].values()))
    assert element["background"] == 0.0 and "no element-free area" in element["background_how"]
    film = np.asarray(read_maps(AXO).maps["Fe"])
    with h5py.File(out, "r") as f:  # as users open it: the MAPS layout, the restored Fe in its channel
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in f["MAPS/channel_names"][()]]
        restored = np.asarray(f["MAPS/XRF_fits"][names.index("Fe")])
    assert restored.mean() == pytest.approx(film.mean(), rel=0.02)


@pytest.mark.parametrize("gain, error, words", [
    (0.0, ValueError, "gain must be a finite number > 0 (map units per count), got 0.0"),
    (-1e-4, ValueError, "finite number > 0"),
    (float("nan"), ValueError, "finite number > 0"),
    (float("inf"), ValueError, "finite number > 0"),
    ("1e-4", TypeError, "gain must be a number, got '1e-4'"),
    (None, None, None),
])
def test_a_given_gain_is_checked(gain, error, words):
    # effective_counts(gain=) is how the command line passes on the gain it measured once; a value that
    # is not a positive, finite number is refused by name, and 2.0 for a count map is not its gain (1)
    from xrfgpu.front_door import effective_counts

    fitted = np.random.default_rng(0).poisson(50.0, (16, 16)) * 3.7e-4
    if error is None:
        _, measured, _ = effective_counts(fitted, xp=np, gain=gain)
        assert measured == pytest.approx(3.7e-4, rel=0.2)
        return
    with pytest.raises(error) as info:
        effective_counts(fitted, xp=np, gain=gain)
    assert words in str(info.value)
    with pytest.raises(ValueError, match="count map"):
        effective_counts(np.ones((16, 16)), xp=np, gain=2.0)


def test_counts_divided_by_one_number_keep_the_count_background_rule():
    """Counts per I0 read once (counts / 1.3) of a sparse scene: the fitted maps' rule read its ground, the
    median, as "no element-free area" and gave background 0, which the restoration then kept (1.4-2.0x the
    raw map's error to the truth, its flux twice). The photons' lattice says no fit removed the background."""
    from scipy import signal

    from xrfgpu.map_kind import classify_map, count_lattice_step
    from xrfgpu.psf import gaussian

    yy, xx = np.mgrid[:96, :96]
    truth = np.zeros((96, 96))
    for cy, cx, r in ((20, 24, 5), (60, 30, 7), (40, 70, 4), (75, 75, 6)):
        truth[np.hypot(yy - cy, xx - cx) <= r] = 100.0
    blurred = np.clip(signal.fftconvolve(np.pad(truth, 12), gaussian(None, 2.0), mode="same")[12:-12, 12:-12], 0, None)
    counts = np.random.default_rng(4).poisson(blurred + 10.0)
    per_i0 = (counts / 1.3).astype(np.float32)
    assert classify_map(per_i0).kind == "fitted"  # real-valued: measured as a fitted map's
    assert count_lattice_step(per_i0, 1 / 1.3) == pytest.approx(1 / 1.3, rel=1e-6)
    out, info = xrfgpu.restore(per_i0, sigma=2.0, return_info=True)
    assert info["background"] * 1.3 == pytest.approx(10.0, rel=0.15)
    assert "counts divided by one number" in info["map_kind"]  # restored as its counts, a count map's background
    assert info["gain"] == pytest.approx(1 / 1.3, rel=1e-6)
    raw_error = np.sqrt(np.mean((counts - 10.0 - blurred) ** 2))
    assert np.sqrt(np.mean((np.asarray(out) * 1.3 - truth) ** 2)) < raw_error * 3  # bounded, flux kept
    assert np.sum(out) * 1.3 == pytest.approx(truth.sum(), rel=0.1)
    # a fitted map's continuous values sit on no lattice, and a rounded one's steps are a fraction of a photon
    assert count_lattice_step(per_i0 + np.float32(1e-3) * np.random.default_rng(5).random(per_i0.shape,
                                                                                        dtype=np.float32), 1 / 1.3) is None
    fitted = counts + np.random.default_rng(6).normal(0.0, 0.5, counts.shape)  # a fit's continuous output
    stored = np.round(fitted * 4) / 4  # stored rounded to a quarter count: a lattice of 0.25, 4 steps a photon
    assert count_lattice_step(stored, 1.0) is None
