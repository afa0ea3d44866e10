"""Fourth QA pass: the Python library as a scientist drives it in a notebook, on the real maps.

The maps are read with the readers people use (tifffile, h5py on the MAPS file) from the copies in
``tests/data`` (HXN nanoprobe TIFFs and the APS MAPS v9 file, MIT; see their READMEs) and handed
straight to the public functions. Each test failed before its fix; the log of what was tried is in
``docs/qa_real_maps.md`` ("Fourth pass").
"""

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile

import xrfgpu
from xrfgpu import psf
from xrfgpu.io import ElementMaps, read_maps, write_maps

DATA = Path(__file__).parent / "data"
HXN = DATA / "hxn_nanoparticles_xrf"
FE = HXN / "SUM_maps_XRF_Fe_K.tiff"
CR = HXN / "SUM_maps_XRF_Cr_K.tiff"
AXO = DATA / "aps_2ide_maps_axo_std" / "axo_std.h5"


@pytest.fixture(scope="module")
def fe():
    return tifffile.imread(FE)


@pytest.fixture(scope="module")
def cr_particle():
    """25 × 25 px around the brightest Cr particle of the HXN map (its maximum at row 115, column 110)."""
    return tifffile.imread(CR)[103:128, 98:123].copy()


# -- masked arrays: a mask is honoured or refused, never dropped -----------------------------------


def _hot_pixels_masked(image, where):
    """``image`` with a block of hot pixels (1000) at ``where``, masked out in a numpy masked array."""
    hot = image.copy()
    hot[where] = 1000.0
    mask = np.zeros(image.shape, bool)
    mask[where] = True
    return np.ma.MaskedArray(hot, mask=mask)


@pytest.mark.parametrize("fit", [psf.fit_dot, psf.fit_disk_spot])
def test_spot_fits_refuse_a_masked_array_instead_of_fitting_its_masked_pixels(cr_particle, fit):
    # the mask was dropped: four masked hot pixels in the Cr particle's window moved fit_dot's sigma_u
    # from 4.33 px to 1.43 px (fit_disk_spot: 3.26 px to 0.055 px), without a word
    masked = _hot_pixels_masked(cr_particle, (slice(10, 12), slice(10, 12)))
    with pytest.raises(ValueError, match=r"image is a masked array with 4 masked pixels.*filled"):
        fit(masked, 0.15)


def test_a_masked_array_with_nothing_masked_is_fitted_as_its_data(cr_particle):
    plain = psf.fit_dot(cr_particle, 0.15)
    masked = psf.fit_dot(np.ma.MaskedArray(cr_particle, mask=False), 0.15)
    assert masked.sigma_u == pytest.approx(plain.sigma_u, rel=1e-12)


def test_knife_edge_and_kernel_fits_refuse_a_masked_array(fe):
    masked = _hot_pixels_masked(fe[40:104, 40:104], (slice(5, 9), slice(5, 9)))
    with pytest.raises(ValueError, match=r"image_or_profile is a masked array with 16 masked pixels"):
        psf.fit_knife_edge(masked, 0.15)  # was: sigma 1.30 px -> 2.11 px without a word
    kernel = np.ma.MaskedArray(psf.gaussian(15, 2.0), mask=np.eye(15, dtype=bool))
    with pytest.raises(ValueError, match=r"kernel is a masked array with 15 masked pixels"):
        psf.sigma_from_kernel(kernel)


def test_written_maps_keep_masked_pixels_missing(tmp_path, fe):
    # ElementMaps took np.asarray of a masked array: the masked pixels were written as their data
    masked = np.ma.masked_greater(fe, 18.0)
    out = tmp_path / "fe.tif"
    write_maps(out, ElementMaps({"Fe_K": masked}))
    back = tifffile.imread(out)
    assert np.isnan(back).sum() == int(masked.mask.sum()) > 0
    np.testing.assert_array_equal(np.isnan(back), masked.mask)
    np.testing.assert_array_equal(back[~masked.mask], fe[~masked.mask])


# -- what the readers hand over: h5py datasets, bytes names, lists ----------------------------------


def test_maps_channel_names_as_bytes_name_element_maps(tmp_path):
    # MAPS stores channel_names as bytes; ElementMaps refused them ("names must be non-empty strings")
    with h5py.File(AXO, "r") as f:
        names = f["MAPS/channel_names"][:3]
        maps = f["MAPS/XRF_roi"][:3]
    assert isinstance(names[0], bytes)
    em = ElementMaps(dict(zip(names, maps)), pixel_size_um=10.0)
    assert em.names == ["Al", "Si", "P"]
    out = tmp_path / "axo.tif"
    write_maps(out, em)
    with tifffile.TiffFile(out) as tif:
        assert tif.imagej_metadata["Labels"] == ["Al", "Si", "P"]


@pytest.mark.parametrize("call", [
    lambda a: xrfgpu.restore(a, sigma=0.8),
    lambda a: xrfgpu.restore_stack(a, psf.gaussian(3, 0.8)),
    lambda a: psf.estimate_sigma(a),
    lambda a: xrfgpu.richardson_lucy(a, psf.gaussian(3, 0.8), num_iter=2),
])
def test_an_h5py_dataset_is_refused_with_how_to_read_it(call):
    # was: "Dataset is not a supported array type", from array_api_compat
    with h5py.File(AXO, "r") as f:
        with pytest.raises(TypeError, match=r"h5py Dataset.*dataset\[\(\)\]"):
            call(f["MAPS/XRF_roi"])


def test_a_list_is_refused_with_how_to_make_an_array(fe):
    # estimate_sigma said "list is not a supported array type"; restore_stack the same for a list of maps
    with pytest.raises(TypeError, match=r"list.*numpy\.asarray"):
        psf.estimate_sigma(fe.tolist())
    with pytest.raises(TypeError, match=r"list.*numpy\.stack"):
        xrfgpu.restore_stack([fe, fe], psf.gaussian(3, 0.5))


def test_gaussian_with_sigma_where_the_shape_goes_says_so():
    # psf.gaussian(0.8, 5) (sigma first) failed with "'float' object is not iterable"
    with pytest.raises(TypeError, match=r"shape.*0\.8.*gaussian\(shape, sigma\)"):
        psf.gaussian(0.8, 5)
    assert psf.gaussian(5.0, 0.8).shape == (5, 5)  # a whole float is a size


# -- shapes the readers give: a length-1 axis ---------------------------------------------------


def test_a_length_one_axis_gets_the_indexing_that_removes_it(xp, fe):
    image = xp.asarray(fe[40:72, 40:72])
    with pytest.raises(ValueError, match=r"\(32, 32, 1\).*image\[\.\.\., 0\]") as info:
        xrfgpu.restore(image[:, :, None], sigma=0.5)
    assert "restore_stack" not in str(info.value)  # it would read (32, 32, 1) as 32 maps of 32 x 1
    with pytest.raises(ValueError, match=r"\(1, 32, 32\).*image\[0\]"):
        xrfgpu.wiener(image[None, ...], xp.asarray(psf.gaussian(3, 0.5)))


# -- Dask: errors in the user's terms -------------------------------------------------------------


def test_dask_restore_leaves_nan_pixels_out_as_the_whole_map(fe):
    image = fe[40:104, 40:104].copy()
    image[3, 4] = np.nan
    # was: "filter_epsilon must be a finite number > 0 (counts), got nan"; then a refusal naming NaN; since
    # mask= (tenth session) a NaN pixel is missing, as in the whole-map engine
    tiled = xrfgpu.dask.restore(image, psf.gaussian(5, 0.5), num_iter=2, tile=32).compute()
    whole = xrfgpu.richardson_lucy(image, psf.gaussian(5, 0.5), num_iter=2)
    assert np.all(np.isfinite(tiled))
    assert np.abs(tiled - whole).max() <= 1e-4 * np.abs(whole).max()


def test_dask_restore_names_the_users_shape_not_a_tiles(fe):
    # was: "image must have at least 2 pixels along each axis, got shape (54, 1)", a tile's shape
    with pytest.raises(ValueError, match=r"\(64, 64, 1\).*64 maps of 64 x 1"):
        xrfgpu.dask.restore(fe[40:104, 40:104, None], psf.gaussian(3, 0.5), num_iter=2, tile=32)
    with pytest.raises(ValueError, match=r"\(1, 64\)"):
        xrfgpu.dask.restore(fe[40:41, 40:104], psf.gaussian(3, 0.5), num_iter=2, tile=32)


def test_dask_restore_refuses_auto_background_in_words(fe):
    # was: "could not convert string to float: 'auto'"
    with pytest.raises(ValueError, match=r"background='auto'.*number"):
        xrfgpu.dask.restore(fe[40:104, 40:104], psf.gaussian(5, 0.5), num_iter=2, tile=32, background="auto")


def test_restore_stack_auto_background_points_to_joint(fe):
    # was: "background must be a number or a map, got 'auto'"
    with pytest.raises(ValueError, match=r"background='auto'.*joint=True.*xrfgpu\.restore"):
        xrfgpu.restore_stack(np.stack([fe, fe]), psf.gaussian(3, 0.5), background="auto")


# -- the front door's refusals and records ----------------------------------------------------------


def test_a_constant_map_is_called_constant(xp):
    # a map holding one value (an offset only): "could not measure the map's noise ...; pass a count map"
    with pytest.raises(ValueError, match=r"constant.*3\.5.*nothing to restore"):
        xrfgpu.restore(xp.full((64, 64), 3.5, dtype=xp.float32), sigma=0.5)


def test_a_map_too_small_for_the_automatic_background_says_how_to_go_on(xp, fe):
    # two rows: "map (2, 64) is smaller than the 5x5 window", from xrfgpu.background, naming no option
    image = xp.asarray(fe[40:42, 40:104])
    with pytest.raises(ValueError, match=r"\(2, 64\).*background=") as info:
        xrfgpu.restore(image, sigma=0.5)
    assert "automatic background" in str(info.value)


def test_the_record_holds_fistas_iteration_count(xp, fe):
    image = xp.asarray(fe[40:104, 40:104])
    _, info = xrfgpu.restore(image, sigma=0.5, method="fista", return_info=True)
    assert isinstance(info["iterations"], int)  # was the string "default"
    assert info["stop"] == "cv" and info["iterations"] == info["cv_iterations"]
    _, info = xrfgpu.restore(image, sigma=0.5, method="fista", num_iter=7, return_info=True)
    assert info["iterations"] == 7
    json.dumps(info)


@pytest.mark.parametrize("method, options", [
    ("rl", {"num_iter": 3}), ("wiener", {}), ("tikhonov", {"lam": [0.01, 0.02]}), ("fista", {"num_iter": 4}),
])
def test_restore_stacks_record_says_what_each_map_ran_with(xp, fe, method, options):
    # the independent record was only {"mode": "independent", "fallback": None}
    stack = xp.asarray(np.stack([fe[40:104, 40:104], fe[60:124, 60:124]]))
    background = [0.01, 0.02]
    # Wiener's "auto" reads the noise of these fitted maps where the spot blocks the frequencies: a 0.5 px spot
    # blocks none (NoiseNotReadableError), a 1.5 px one enough
    spot = psf.gaussian(5, 1.5) if method == "wiener" else psf.gaussian(5, 0.5)
    _, info = xrfgpu.restore_stack(stack, spot, method, background=background, return_info=True, **options)
    assert json.loads(json.dumps(info)) == info
    assert info["mode"] == "independent" and info["method"] == method and info["maps"] == 2
    assert info["background"] == pytest.approx(background)
    assert info["psf_shape"] == [5, 5]
    expected = {"rl": {"num_iter": 3, "tv": 0.0}, "wiener": {"regularizer": "laplacian"},
                "tikhonov": {"lam": [0.01, 0.02], "order": 0}, "fista": {"num_iter": 4, "lam": None}}[method]
    for key, value in expected.items():
        assert info["options"][key] == value
    if method == "wiener":  # "auto": each map's own weight, recorded as numbers with the rule
        assert len(info["options"]["balance"]) == 2 and all(v > 0 for v in info["options"]["balance"])
        assert "discrepancy" in info["options"]["balance_rule"] and len(info["options"]["noise_variance"]) == 2


@pytest.mark.slow
def test_restore_zarr_of_a_maps_stack_records_its_element_names_and_pixel_size(tmp_path):
    # the zarr store of MAPS/XRF_fits had "elements": null and no pixel size: 23 unnamed maps
    zarr = pytest.importorskip("zarr")
    out = tmp_path / "axo.zarr"
    xrfgpu.dask.restore_zarr(AXO, out, psf.gaussian(3, 0.5), dataset="MAPS/XRF_fits", num_iter=2, tile=8)
    store = zarr.open(str(out), mode="r")
    record = store.attrs["xrfgpu"]
    with h5py.File(AXO, "r") as f:
        names = [n.decode() for n in f["MAPS/channel_names"][()]]
        step_um = abs(float(f["MAPS/x_axis"][1] - f["MAPS/x_axis"][0])) * 1e3  # x_axis in mm
    assert record["elements"] == names and len(names) == store.shape[0] == 23
    assert record["pixel_size_um"] == pytest.approx(step_um, rel=1e-5) and step_um == pytest.approx(10.0, rel=1e-3)


# -- dtypes and byte orders as the readers give them ------------------------------------------------


def test_a_big_endian_float64_map_is_restored_in_float64(fe):
    # numpy.dtype(">f8") == numpy.float64 is False: h5py/tifffile's big-endian float64 maps came back float32
    native = fe[40:104, 40:104].astype(np.float64)
    big = native.astype(">f8")
    out, info = xrfgpu.restore(big, sigma=0.5, return_info=True)
    reference, reference_info = xrfgpu.restore(native, sigma=0.5, return_info=True)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, reference)
    assert info["iterations"] == reference_info["iterations"]
    assert xrfgpu.richardson_lucy(big, psf.gaussian(5, 0.5), num_iter=3).dtype == np.float64
    assert xrfgpu.dask.restore(big, psf.gaussian(5, 0.5), num_iter=3, tile=32).dtype == np.float64


@pytest.mark.parametrize("sigma", [np.array([0.5]), (0.5, 0.6), "half"])
def test_a_sigma_that_is_not_one_number_is_refused_naming_sigma(fe, sigma):
    # was: "only 0-dimensional arrays can be converted to Python scalars" / "float() argument must be ..."
    with pytest.raises(TypeError, match=r"sigma must be one number of pixels.*psf="):
        xrfgpu.restore(fe[40:104, 40:104], sigma=sigma)


@pytest.mark.parametrize("method, option", [("wiener", "lam"), ("rl", "num_iters"), ("fista", "tv"),
                                            ("tikhonov", "balance")])
def test_an_option_the_method_does_not_take_is_refused_before_any_work(monkeypatch, fe, method, option):
    # was: "wiener() got an unexpected keyword argument 'lam'", after the gain, background and sigma steps
    import xrfgpu.front_door as front_door

    def no_gain(*args, **kwargs):
        raise AssertionError("the gain was measured before the options were checked")

    monkeypatch.setattr(front_door, "effective_counts", no_gain)
    with pytest.raises(TypeError, match=rf"method='{method}'.*\['{option}'\].*takes"):
        xrfgpu.restore(fe[40:104, 40:104], sigma=0.5, method=method, **{option: 0.1})


def test_restores_info_and_the_command_lines_record_say_the_same_numbers_under_the_same_names(tmp_path, fe):
    # the command line records sigma_px, the library only "sigma"; now both, with the same number
    from xrfgpu.cli import main

    crop = np.ascontiguousarray(fe[40:104, 40:104])
    src = tmp_path / "Fe_K.tif"
    tifffile.imwrite(src, crop)
    out = tmp_path / "r.tif"
    assert main(["restore", str(src), "-o", str(out), "--psf-sigma", "0.5px", "--pixel-size", "0.15um", "-q"]) == 0
    record = json.loads((tmp_path / "r.tif.json").read_text())["xrfgpu"]["provenance"]
    cli_psf = record["psf"]["Fe_K"]
    cli_map = record["parameters"]["per_element"]["Fe_K"]
    _, info = xrfgpu.restore(crop, sigma=0.5, pixel_size_um=0.15, return_info=True)
    assert json.loads(json.dumps(info)) == json.loads(json.dumps(info))  # serialisable as returned
    assert info["sigma_px"] == info["sigma"] == cli_psf["sigma_px"] == 0.5
    assert info["sigma_um"] == pytest.approx(cli_psf["sigma_um"]) == pytest.approx(0.075)
    for key in ("background", "iterations", "stop", "cv_iterations", "gain", "map_kind"):
        assert info[key] == pytest.approx(cli_map[key]) if isinstance(info[key], float) else info[key] == cli_map[key]


def test_psf_model_takes_maps_channel_names_as_h5py_reads_them():
    # MAPS channel_names are bytes: PSFModel.sigma_um(b"Pt_L") was "a line name must be a string"
    model = psf.PSFModel({"Fe-Ka": 0.5, "Pb-La": 0.8})
    with h5py.File(AXO, "r") as f:
        names = list(f["MAPS/channel_names"][()])
    pt = names[[n.decode() for n in names].index("Pt_L")]
    assert isinstance(pt, bytes)
    assert psf.normalise_line(pt) == "Pt-La"
    # Pt Lα 9.44 keV between Fe Kα 6.40 keV (0.5 µm) and Pb Lα 10.55 keV (0.8 µm): linear in energy
    e_fe, e_pt, e_pb = (psf.line_energy_kev(n) for n in ("Fe-Ka", "Pt-La", "Pb-La"))
    expected = 0.5 + 0.3 * (e_pt - e_fe) / (e_pb - e_fe)
    assert model.sigma_um(pt) == pytest.approx(expected) == pytest.approx(model.sigma_um("Pt_L"))


def test_the_command_line_restores_a_big_endian_float64_map_as_float64(tmp_path, fe):
    # the .npy of the Fe map saved big-endian (as h5py/tifffile hand them over) ran in float32
    from xrfgpu.cli import main

    crop = fe[40:104, 40:104].astype(np.float64)
    for name, data in (("little", crop), ("big", crop.astype(">f8"))):
        (tmp_path / name).mkdir()
        np.save(tmp_path / name / "Fe_K.npy", data)
        assert main(["restore", str(tmp_path / name / "Fe_K.npy"), "-o", str(tmp_path / f"{name}.npz"),
                     "--psf-sigma", "0.5px", "--iterations", "5", "--background", "0.01", "-q"]) == 0
    little, big = (np.load(tmp_path / f"{n}.npz")["Fe_K"] for n in ("little", "big"))
    np.testing.assert_array_equal(big, little)


def test_restore_of_a_maps_map_too_small_for_sigma_says_how_to_give_it():
    # the 11 x 11 MAPS maps: "image must be at least 32x32 pixels to estimate σ", naming no way round
    with h5py.File(AXO, "r") as f:
        fe = f["MAPS/XRF_roi"][11]
    with pytest.raises(ValueError, match=r"at least 32.*sigma=.*sigma_um=.*psf="):
        xrfgpu.restore(fe)
    restored, info = xrfgpu.restore(fe, sigma_um=5.0, pixel_size_um=10.0, return_info=True)
    assert info["sigma_px"] == 0.5 and info["sigma_source"] == "given sigma (µm)"
    assert restored.dtype == np.float64 and np.isfinite(restored).all()


def test_frc_resolution_of_a_map_instead_of_a_curve_says_what_it_needs(fe):
    from xrfgpu.frc import frc_resolution

    # was: AttributeError: 'ndarray' object has no attribute 'frequency'
    with pytest.raises(TypeError, match=r"curve must be the FRCCurve.*fourier_ring_correlation.*got ndarray"):
        frc_resolution(fe)


def test_an_integer_dtype_for_written_maps_rounds_and_refuses_what_it_cannot_hold(tmp_path, fe):
    # write_maps(..., dtype=np.uint16) used astype: a Wiener map's negative values wrapped to ~65535,
    # NaN became 0 and 1.7 became 1, without a word
    crop = fe[40:104, 40:104] * 1000.0
    restored = np.asarray(xrfgpu.wiener(crop, psf.gaussian(5, 0.5), background=float(np.median(crop)), balance=0.01))
    assert restored.min() < 0  # below the background: negative, as a Wiener map may be
    with pytest.raises(ValueError, match=r"'Fe_K' spans -\d.* outside dtype uint16 \(0 to 65535\)"):
        write_maps(tmp_path / "w.npy", ElementMaps({"Fe_K": restored}), dtype=np.uint16)
    with pytest.raises(ValueError, match=r"NaN or infinite"):
        write_maps(tmp_path / "n.npy", ElementMaps({"Fe_K": np.where(crop > 1e4, np.nan, crop)}), dtype=np.int32)
    assert not list(tmp_path.iterdir())
    write_maps(tmp_path / "c.npy", ElementMaps({"Fe_K": crop}), dtype=np.uint16)
    back = np.load(tmp_path / "c.npy")
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, np.floor(crop.astype(np.float64) + 0.5).astype(np.uint16))


@pytest.mark.parametrize("suffix", [".tif", ".npz", ".npy", ""])
def test_units_of_maps_maps_survive_a_written_file_read_back(tmp_path, suffix):
    # read back, a MAPS map written to TIFF/NPZ/NPY/a folder kept its units only inside input_metadata
    maps = read_maps(AXO, dataset="XRF_fits").select(["Fe", "Cu"])
    with h5py.File(AXO, "r") as f:
        names = [n.decode() for n in f["MAPS/channel_names"][()]]
        units = [u.decode() for u in f["MAPS/channel_units"][2]]  # row 2: the fitted maps' units
    out = tmp_path / f"axo{suffix}"
    write_maps(out, maps)
    back = read_maps(out)
    assert back.names == ["Fe", "Cu"] and back.pixel_size_um == pytest.approx(10.0)
    assert back.metadata["units"] == {n: units[names.index(n)] for n in ("Fe", "Cu")} == {"Fe": "ug/cm^2",
                                                                                          "Cu": "ug/cm^2"}


@pytest.mark.slow
def test_restore_zarrs_record_holds_the_defaults_that_ran(tmp_path):
    # without num_iter= and background= the record held neither: 30 RL iterations on background 0 ran
    zarr = pytest.importorskip("zarr")
    out = tmp_path / "fe.zarr"
    xrfgpu.dask.restore_zarr(AXO, out, psf.gaussian(3, 0.5), dataset="MAPS/XRF_roi", tile=8)
    parameters = zarr.open(str(out), mode="r").attrs["xrfgpu"]["parameters"]
    assert parameters["num_iter"] == 30 and parameters["background"] == 0.0  # richardson_lucy's documented defaults


def test_spot_fit_options_of_the_wrong_kind_are_named(cr_particle):
    # fit_dot(background="auto"): "could not convert string to float"; background=nan: "no signal above its
    # background"; sigma_from_kernel(pixel_size_um=-1) gave sigma_u_um = -1.0 x sigma_u; fit_disk_spot with
    # gaussian_fit=3: AttributeError
    with pytest.raises(TypeError, match=r"background must be a number.*'auto'"):
        psf.fit_dot(cr_particle, 0.15, background="auto")
    with pytest.raises(ValueError, match=r"background must be a finite number"):
        psf.fit_dot(cr_particle, 0.15, background=float("nan"))
    with pytest.raises(ValueError, match=r"pixel_size_um must be a positive number"):
        psf.sigma_from_kernel(psf.gaussian(9, 1.0), pixel_size_um=-1)
    with pytest.raises(TypeError, match=r"gaussian_fit must be the xrfgpu.psf.fit_dot result"):
        psf.fit_disk_spot(cr_particle, 0.15, gaussian_fit=3)


def test_names_from_h5py_as_bytes_find_maps_and_scalers():
    # em[b"Fe"] said "element b'Fe' not found; available: ..., Fe, ..."; the same for select, normalized,
    # and read_maps(dataset=b"XRF_fits", normalize=b"us_ic")
    with h5py.File(AXO, "r") as f:
        channels = list(f["MAPS/channel_names"][()])
        scalers = list(f["MAPS/scaler_names"][()])
        fe_fits = f["MAPS/XRF_fits"][channels.index(b"Fe")]
        us_ic = f["MAPS/scalers"][scalers.index(b"us_ic")]
    maps = read_maps(AXO, dataset=b"XRF_fits", normalize=b"us_ic")
    assert maps.metadata["normalization"]["scaler"] == "us_ic"
    expected = fe_fits * us_ic.mean() / us_ic  # the documented map * mean(scaler) / scaler
    np.testing.assert_allclose(maps[b"Fe"], expected, rtol=1e-12)
    assert maps.select([b"Fe", b"Cu"]).names == ["Fe", "Cu"]


def test_compare_figure_takes_one_map_and_refuses_maps_without_names(fe):
    # one 2-D map failed with "not enough values to unpack (expected 2, got 1)"; two maps with one name drew
    # one without a word; a masked array's masked (hot) pixels were drawn, and set the colour scale
    pytest.importorskip("matplotlib")
    from xrfgpu.figures import compare_figure

    crop = fe[40:104, 40:104]
    restored = xrfgpu.restore(crop, sigma=0.5)
    fig = compare_figure(crop, restored, [b"Fe_K"])
    assert fig.axes[0].get_title() == "Fe_K: input"
    with pytest.raises(ValueError, match=r"before holds 2 map\(s\) for 1 name"):
        compare_figure(np.stack([crop, crop]), np.stack([restored, restored]), ["Fe_K"])
    with pytest.raises(ValueError, match=r"row=64 is outside"):
        compare_figure(crop, restored, ["Fe_K"], row=64)
    hot = np.ma.MaskedArray(np.where(crop > 15, 1e6, crop), mask=crop > 15)
    assert hot.mask.sum() > 0
    fig = compare_figure(hot, restored, ["Fe_K"])
    low, high = fig.axes[0].get_images()[0].get_clim()
    assert high < 1e3  # the masked 1e6 pixels are missing, not the top of the colour scale


def test_the_joint_record_of_restore_stack_names_its_method_as_the_others_do():
    # restore(...)'s info and the independent record say "method"; the joint record did not
    from xrfgpu.joint import JointFallbackWarning

    with h5py.File(AXO, "r") as f:
        stack = f["MAPS/XRF_roi"][8:12]
    with pytest.warns(JointFallbackWarning):  # the uniform film gives no guide edges
        _, info = xrfgpu.restore_stack(stack, psf.gaussian(3, 0.5), joint=True, num_iter=3, return_info=True)
    assert info["method"] == "rl" and info["mode"] == "independent"
    assert json.loads(json.dumps(info))["method"] == "rl"


def test_a_table_with_to_numpy_is_told_to_pass_its_values(fe):
    # a map read with pandas.read_csv (a DataFrame: shape but no dtype) or an xarray DataArray
    class DataFrame:  # the part of pandas.DataFrame the message relies on
        __module__ = "pandas.core.frame"
        shape = (64, 64)

        def to_numpy(self):
            return fe[40:104, 40:104]

    with pytest.raises(TypeError, match=r"pandas DataFrame is not an array: pass its values, value\.to_numpy\(\)"):
        xrfgpu.restore(DataFrame(), sigma=0.5)
    with pytest.raises(TypeError, match=r"value\.to_numpy\(\)"):
        xrfgpu.richardson_lucy(DataFrame(), psf.gaussian(5, 0.5))


def test_a_psf_given_as_nested_lists_is_not_counted_as_one_psf_per_row(fe):
    # restore_stack(stack, psf.tolist()) said "got 5 PSFs for a stack of 2 maps"
    stack = np.stack([fe[40:104, 40:104], fe[60:124, 60:124]])
    with pytest.raises(TypeError, match=r"psfs must be an array or a sequence of 2-D arrays.*numpy\.asarray\(psf\)"):
        xrfgpu.restore_stack(stack, psf.gaussian(5, 0.5).tolist())


@pytest.mark.parametrize("bad, error", [("x", TypeError), (-1.0, ValueError), (float("nan"), ValueError)])
def test_estimate_sigma_refuses_a_bad_pixel_size_before_the_fit(bad, error):
    # "x" failed after the whole fit with a bare "could not convert string to float"; -1 gave negative µm
    from xrfgpu.psf import estimate_sigma

    counts = np.random.default_rng(0).poisson(100.0, (64, 64)).astype(np.float32)
    with pytest.raises(error, match="pixel_size_um"):
        estimate_sigma(counts, pixel_size_um=bad)


@pytest.mark.parametrize("method, key", [("wiener", "balance"), ("tikhonov", "lam"), ("fista", "lam")])
def test_restore_stack_takes_per_map_weights_as_an_array_as_it_takes_a_list(method, key):
    # a 1-D array of one weight per map was refused ("balance must be a number >= 0, got array([...])")
    from xrfgpu.psf import gaussian
    from xrfgpu.stack import restore_stack

    stack = np.random.default_rng(0).poisson(100.0, (2, 32, 32)).astype(np.float32)
    psfs = np.stack([gaussian(None, 1.5)] * 2)
    extra = {"num_iter": 5} if method == "fista" else {}
    weights = [0.05, 0.2]
    from_list = restore_stack(stack, psfs, method, **{key: weights}, **extra)
    from_array = restore_stack(stack, psfs, method, **{key: np.asarray(weights)}, **extra)
    np.testing.assert_array_equal(from_array, from_list)
    # and each map is its own weight's restoration, as a scalar weight gives it
    alone = restore_stack(stack[1:], psfs[1:], method, **{key: weights[1]}, **extra)
    np.testing.assert_allclose(from_array[1], alone[0], rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match="values of"):
        restore_stack(stack, psfs, method, **{key: np.asarray([0.1, 0.2, 0.3])}, **extra)
