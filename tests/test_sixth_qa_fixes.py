"""What the sixth QA pass (28 November) found outside the readers: a stale sidecar that let
``--overwrite`` replace a user's own file, and the missing-pixel paths (an infinite value the user
had already marked missing, a σ called unreliable but recorded reliable, the CLI record without
missing pixels, ``cv_stop`` reading the values of missing pixels)."""

from __future__ import annotations

import hashlib

import h5py
import numpy as np
import pytest
import tifffile

from xrfgpu.io import ElementMaps, write_maps
from xrfgpu.output_safety import UnsafeOutputError, check_outputs, is_xrfgpu_output


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _users_own(path):
    """What a user saves under a name xrfgpu used before: a file of the same format with their data."""
    suffix = path.suffix
    if suffix == ".tif":
        tifffile.imwrite(path, np.ones((20, 20), np.float32))
    elif suffix == ".h5":
        with h5py.File(path, "w") as f:
            f["my_analysis"] = np.arange(10)
    elif suffix == ".npz":
        np.savez(path, mine=np.ones(3))
    elif suffix == ".npy":
        np.save(path, np.ones((20, 21)))
    else:
        np.savetxt(path, np.ones((5, 7)), delimiter=",")


@pytest.mark.parametrize("suffix", [".tif", ".h5", ".npz", ".npy", ".csv"])
def test_a_stale_sidecar_does_not_let_overwrite_replace_the_users_file(tmp_path, suffix):
    out = tmp_path / f"out{suffix}"
    maps = ElementMaps({"Fe": np.arange(12, dtype=np.float32).reshape(3, 4)})
    write_maps(out, maps)
    assert is_xrfgpu_output(out)[0]
    check_outputs([out], overwrite=True)  # xrfgpu's own earlier output may be replaced
    _users_own(out)  # the sidecar out.*.json of the earlier run stays beside it
    assert (tmp_path / f"out{suffix}.json").exists()
    before = _digest(out)
    ok, why = is_xrfgpu_output(out)
    assert not ok and "replaced after xrfgpu wrote it" in why
    with pytest.raises(UnsafeOutputError, match="replaced after xrfgpu wrote it"):
        write_maps(out, maps, overwrite=True)
    assert _digest(out) == before


# -- missing pixels ------------------------------------------------------------------------------------------


def _lost_lines_everywhere():
    """The real HXN Fe map (fitted, 160²) with five bands of 4 lost lines (NaN): no rectangle of 32 px a side
    is left, and σ read on the whole filled map comes out narrow and sure of itself."""
    from pathlib import Path

    y = tifffile.imread(Path(__file__).parent / "data" / "hxn_nanoparticles_xrf" / "SUM_maps_XRF_Fe_K.tiff")
    y = y.astype(np.float64)
    for row in (20, 50, 80, 110, 140):
        y[row : row + 4] = np.nan
    return y


def test_a_sigma_read_on_the_whole_filled_map_is_recorded_unreliable_and_strict_raises():
    """σ read where no clear rectangle of 32 px is left (``sigma_region``) is flagged uncertain: the warning,
    ``info["sigma_reliable"]`` and ``strict=True`` agree (before, the record said reliable and strict ran)."""
    import warnings

    import xrfgpu
    from xrfgpu.psf.blind_sigma import SigmaUncertainWarning

    y = _lost_lines_everywhere()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, info = xrfgpu.restore(y, num_iter=2, return_info=True)
    assert "no rectangle" in info["sigma_region"]
    assert any(issubclass(w.category, SigmaUncertainWarning) and "whole map" in str(w.message) for w in caught)
    assert info["sigma_reliable"] is False
    with pytest.raises(ValueError, match="σ is uncertain"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            xrfgpu.restore(y, num_iter=2, strict=True)


def test_infinite_values_the_mask_marks_missing_are_missing_pixels(xp):
    """``map / I0`` at ``I0 = 0`` gives inf; marked missing by ``mask=`` (or a masked array) they are missing
    pixels like NaN, with the same result; an unmarked inf is still refused."""
    import xrfgpu
    from xrfgpu import psf as P

    rng = np.random.default_rng(0)
    y = rng.poisson(50.0, (40, 44)).astype(np.float64)
    lost = np.zeros(y.shape, bool)
    lost[10:12] = True
    h = P.gaussian(None, 1.5)
    with_inf, with_nan = np.where(lost, np.inf, y), np.where(lost, np.nan, y)
    ref = xrfgpu.restore(xp.asarray(with_nan), xp.asarray(h), sigma=None, background=5.0, num_iter=5)
    got = xrfgpu.restore(xp.asarray(with_inf), xp.asarray(h), background=5.0, num_iter=5,
                         mask=xp.asarray((~lost).astype(np.float64)))
    assert np.array_equal(np.asarray(got), np.asarray(ref))
    stack_ref = xrfgpu.restore_stack(xp.asarray(np.stack([y, with_nan])), xp.asarray(h), "rl", background=5.0,
                                     num_iter=5)
    stack_got = xrfgpu.restore_stack(xp.asarray(np.stack([y, with_inf])), xp.asarray(h), "rl", background=5.0,
                                     num_iter=5, mask=xp.asarray(np.stack([np.ones(y.shape), ~lost]).astype(float)))
    assert np.array_equal(np.asarray(stack_got), np.asarray(stack_ref))
    if xp.__name__.endswith("numpy"):  # masked arrays are NumPy's
        masked = xrfgpu.restore(np.ma.masked_invalid(with_inf), h, background=5.0, num_iter=5)
        assert np.array_equal(np.asarray(masked), np.asarray(ref))
    with pytest.raises(ValueError, match="infinite values at pixels not marked missing"):
        xrfgpu.restore(xp.asarray(with_inf), xp.asarray(h), background=5.0, num_iter=5)
    partly = (~lost).astype(np.float64)
    partly[10, :3] = 1.0  # three of the infinite pixels left measured
    with pytest.raises(ValueError, match="infinite values at pixels not marked missing"):
        xrfgpu.restore(xp.asarray(with_inf), xp.asarray(h), background=5.0, num_iter=5, mask=xp.asarray(partly))


def test_cv_stop_does_not_read_what_a_missing_pixel_holds(xp):
    """``cv_stop(..., mask=)``: a fill of −1 or NaN at the missing pixels gives the count of a fill of 0
    (before, they were refused as a map that is not counts); NaN alone marks them as well."""
    from xrfgpu import phantom
    from xrfgpu.stopping import cv_stop

    counts, _, h = phantom.observe((64, 64), 2.0, seed=3)
    y = counts.astype(np.float64)
    m = np.ones(y.shape)
    m[30:34] = 0
    counts_of = {}
    for fill in (0.0, -1.0, np.nan):  # counts, a sentinel that is no count, NaN
        image = xp.asarray(np.where(m > 0, y, fill))
        counts_of[fill] = cv_stop(image, xp.asarray(h), background=140.0, max_iter=60, mask=xp.asarray(m)).iterations
    assert len(set(counts_of.values())) == 1, counts_of
    by_nan = cv_stop(xp.asarray(np.where(m > 0, y, np.nan)), xp.asarray(h), background=140.0, max_iter=60)
    assert by_nan.iterations == counts_of[0.0]


def test_cli_records_the_missing_pixels_of_every_map(tmp_path):
    """The record of ``restore`` without ``--joint`` counts each map's missing pixels, whole map and tiled,
    as ``--joint`` and the library's ``info["missing_pixels"]`` do."""
    import json

    from xrfgpu.cli import main

    rng = np.random.default_rng(1)
    a = rng.poisson(80.0, (64, 64)).astype(np.float32)
    a[20:23] = np.nan
    src = tmp_path / "Fe_K.tif"
    tifffile.imwrite(src, a)
    for extra, name in (([], "whole.tif"), (["--tile", "32"], "tiled.tif")):
        out = tmp_path / name
        assert main(["restore", str(src), "-o", str(out), "--psf-sigma", "1px", "--iterations", "3",
                     "--background", "0", "-q", *extra]) == 0
        record = json.loads((tmp_path / f"{name}.json").read_text())["xrfgpu"]["provenance"]["parameters"]
        assert record["per_element"]["Fe_K"]["missing_pixels"] == 3 * 64


@pytest.mark.slow
def test_a_map_only_sigma_flagged_uncertain_says_so_in_its_table_and_restore_warns(tmp_path, capsys, monkeypatch):
    """``psf blind --map-only`` writes whether σ was reliable and its interval into the PSF table, and
    ``restore --psf-file`` warns when it restores with a σ flagged there (before, the table carried σ alone)."""
    import tomllib
    from pathlib import Path

    from xrfgpu.cli import main

    monkeypatch.chdir(tmp_path)  # the fit figure's default name is in the working folder
    # the real HXN Si map: a nearly uniform substrate, its σ read at the estimator's floor and flagged
    src = tmp_path / "Si_K.tif"
    src.write_bytes((Path(__file__).parent / "data" / "hxn_nanoparticles_xrf" / "SUM_maps_XRF_Si_K.tiff").read_bytes())
    table = tmp_path / "si.toml"
    assert main(["psf", "blind", str(src), "--map-only", "--pixel-size", "0.15um", "-o", str(table), "-q"]) == 0
    entry = tomllib.loads(table.read_text())["measurements"]["Si-Ka"]
    assert entry["reliable"] is False
    assert entry["interval_lo_um"] < tomllib.loads(table.read_text())["sigma_um"]["Si-Ka"] <= entry["interval_hi_um"]
    capsys.readouterr()
    assert main(["restore", str(src), "-o", str(tmp_path / "out.tif"), "--psf-file", str(table),
                 "--iterations", "2"]) == 0
    assert "flagged uncertain" in capsys.readouterr().err


# -- pixels that are not square -----------------------------------------------------------------------------


def _rectangular_scan(path, rng_seed=2):
    """A count map in an ImageJ TIFF whose pixels are 0.15 µm wide and 0.30 µm tall."""
    rng = np.random.default_rng(rng_seed)
    a = rng.poisson(60.0, (48, 40)).astype(np.float32)
    a[20:28, 10:30] += 200.0
    tifffile.imwrite(path, a, imagej=True, resolution=(1 / 0.15, 1 / 0.30), metadata={"unit": "um"})
    return a


def test_a_sigma_in_um_on_rectangular_pixels_is_an_ellipse_in_pixels(tmp_path, capsys):
    """σ = 0.3 µm on 0.15 × 0.30 µm pixels is 2 px along x and 1 px along y: the command line restores with
    that ellipse (the library's result with that PSF), whole map and tiled, says so once in a ``Warning:``
    line, and writes both steps back (before, σ was 2 px along both axes and the output's pixels square)."""
    import json

    import xrfgpu
    from xrfgpu.cli import main
    from xrfgpu.psf import gaussian_for_map

    src = tmp_path / "scan_Fe_K.tif"
    a = _rectangular_scan(src)
    # the steps the file holds: tifffile before 2026.2 stores 1/0.15 as a rational a little off (σ 1.99999 px,
    # the restored map 1e-4 of its value away from σ 2 px)
    with tifffile.TiffFile(src) as tif:
        x_res, y_res = (tif.pages[0].tags[k].value for k in ("XResolution", "YResolution"))
    x_held, y_held = x_res[1] / x_res[0], y_res[1] / y_res[0]
    ref = np.asarray(xrfgpu.restore(a.astype(np.float32), gaussian_for_map(0.3 / x_held, a.shape, sigma_v=0.3 / y_held),
                                    background=0.0, num_iter=10))
    for extra, name in (([], "whole.tif"), (["--tile", "24"], "tiled.tif")):
        out = tmp_path / name
        assert main(["restore", str(src), "-o", str(out), "--psf-sigma", "0.3um", "--iterations", "10",
                     "--background", "0", *extra]) == 0
        err = capsys.readouterr().err
        assert "Warning: input" in err and "pixels are not square" in err and "MapReadWarning" not in err
        got = tifffile.imread(out)
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5 * float(ref.max()))
        with tifffile.TiffFile(out) as tif:
            page = tif.pages[0]
            x_step, y_step = (den / num for num, den in (page.tags["XResolution"].value, page.tags["YResolution"].value))
        assert (x_step, y_step) == pytest.approx((0.15, 0.30))
        source = json.loads((tmp_path / f"{name}.json").read_text())["xrfgpu"]["provenance"]["psf"]["Fe_K"]["source"]
        assert (source["sigma_u_px"], source["sigma_v_px"]) == pytest.approx((2.0, 1.0))


def test_pixel_size_given_on_rectangular_pixels_makes_them_square_and_says_so(tmp_path, capsys):
    from xrfgpu.cli import main

    src = tmp_path / "scan_Fe_K.tif"
    _rectangular_scan(src)
    out = tmp_path / "out.tif"
    assert main(["restore", str(src), "-o", str(out), "--psf-sigma", "0.3um", "--iterations", "3",
                 "--background", "0", "--pixel-size", "0.2um"]) == 0
    assert "is taken for both axes" in capsys.readouterr().err
    with tifffile.TiffFile(out) as tif:
        page = tif.pages[0]
        x_step, y_step = (den / num for num, den in (page.tags["XResolution"].value, page.tags["YResolution"].value))
    assert (x_step, y_step) == pytest.approx((0.2, 0.2))


def _rectangular_psf_scans(tmp_path, seed=0):
    """A dot and a knife edge (normal along the rows) of a spot round in µm (σ 0.3 µm) on 0.15 × 0.30 µm
    pixels: σ 2 px along x and 1 px along y."""
    import math

    from scipy.special import erf

    rng = np.random.default_rng(seed)
    v, u = np.mgrid[:41, :45].astype(float)
    dot = rng.poisson(140 + 400 * np.exp(-0.5 * ((u - 22.3) / 2.0) ** 2 - 0.5 * ((v - 20.4) / 1.0) ** 2))
    edge = rng.poisson(140 + 150 * 0.5 * (1 + erf((v - 20.3) / (math.sqrt(2) * 1.0))))
    paths = []
    for name, a in (("dot_Fe_K.tif", dot), ("edge_Fe_K.tif", edge)):
        tifffile.imwrite(tmp_path / name, a.astype(np.float32), imagej=True, resolution=(1 / 0.15, 1 / 0.30),
                         metadata={"unit": "um"})
        paths.append(tmp_path / name)
    return paths


@pytest.mark.slow
def test_psf_dot_and_edge_measure_sigma_in_um_on_rectangular_pixels(tmp_path, capsys):
    """``psf dot`` and ``psf edge`` convert each axis with its own step: a spot of σ 0.3 µm on 0.15 × 0.30 µm
    pixels reads 0.3 µm within its errors (before, the x step for both axes: dot −28 %, edge across the rows
    −52 %, without a word)."""
    import json

    from xrfgpu.cli import main

    dot, edge = _rectangular_psf_scans(tmp_path)
    for kind, src in (("dot", dot), ("edge", edge)):
        assert main(["psf", kind, str(src), "-o", str(tmp_path / f"{kind}.toml"), "--figure",
                     str(tmp_path / f"{kind}.png"), "--json"]) == 0
        result = json.loads(capsys.readouterr().out)
        assert abs(result["sigma_um"] - 0.3) < max(3 * result["sigma_stderr_um"], 0.02), (kind, result)
        assert "pixels_not_square" in result.get("details", result) or "pixels_not_square" in json.dumps(result)
    assert main(["psf", "dot", str(dot), "-o", str(tmp_path / "d2.toml"), "--figure", str(tmp_path / "d2.png"),
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["sigma_u_um"] == pytest.approx(0.3, rel=0.1) and result["sigma_v_um"] == pytest.approx(0.3, rel=0.1)


@pytest.mark.slow
def test_map_only_json_says_whether_sigma_is_reliable_and_its_interval(tmp_path, capsys, monkeypatch):
    import json
    from pathlib import Path

    from xrfgpu.cli import main

    monkeypatch.chdir(tmp_path)
    src = tmp_path / "Si_K.tif"
    src.write_bytes((Path(__file__).parent / "data" / "hxn_nanoparticles_xrf" / "SUM_maps_XRF_Si_K.tiff").read_bytes())
    assert main(["psf", "blind", str(src), "--map-only", "--pixel-size", "0.15um", "-o", str(tmp_path / "s.toml"),
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    text = json.dumps(result)
    assert '"reliable": false' in text and "interval_px" in text


@pytest.mark.slow
def test_psf_edge_with_an_angle_the_map_disagrees_with_says_so_in_one_line(tmp_path, capsys):
    """``psf edge --angle 80`` on a horizontal edge (normal at 90°) warns in a ``Warning:`` line naming the map's
    own angle, and records it with the σ it gives; the right angle gives no such line."""
    import json
    import math

    from scipy.special import erf

    from xrfgpu.cli import main

    rng = np.random.default_rng(3)
    v = np.mgrid[:48, :56][0].astype(float)
    edge = rng.poisson(140 + 150 * 0.5 * (1 + erf((v - 23.6) / (math.sqrt(2) * 2.0)))).astype(np.float32)
    src = tmp_path / "edge_Fe_K.tif"
    tifffile.imwrite(src, edge, imagej=True, resolution=(1.0, 1.0), metadata={"unit": "um"})
    for given, warned in ((90, False), (80, True)):
        assert main(["psf", "edge", str(src), "--angle", str(given), "-o", str(tmp_path / f"e{given}.toml"),
                     "--figure", str(tmp_path / f"e{given}.png"), "--json"]) == 0
        captured = capsys.readouterr()
        result = json.loads(captured.out)
        assert ("Warning: Fe_K: the given edge-normal angle" in captured.err) is warned
        assert "EdgeAngleWarning" not in captured.err
        assert result["angle_from_map_deg"] % 180 == pytest.approx(90.0, abs=1.0)
        assert result["sigma_at_map_angle_px"] == pytest.approx(2.0, rel=0.1)


def test_a_map_with_one_measured_pixel_is_refused_naming_the_missing_ones(xp):
    """Before, the filled map was refused as "constant (every pixel 4.6)", which hid that 99.99 % was missing."""
    import xrfgpu

    y = np.full((40, 40), np.nan)
    y[7, 9] = 4.6
    with pytest.raises(ValueError, match=r"every measured pixel of the image \(1 of 1600; the others are missing\)"):
        xrfgpu.restore(xp.asarray(y), sigma=1.0, num_iter=2)


# -- joint restoration from the command line and the library (QA, sixth pass) ------------------------------


def test_joint_record_says_how_the_command_line_measured_each_gain(tmp_path, capsys):
    """``restore --joint`` measures each fitted map's gain once and hands it to the library, which called it
    "given (gain=)"; the record now says what the run without --joint says (gain_spread, no such note)."""
    import json
    from pathlib import Path

    from xrfgpu.cli import main

    data = Path(__file__).parent / "data" / "hxn_nanoparticles_xrf"
    src = tmp_path / "maps.npz"
    np.savez(src, Fe_K=tifffile.imread(data / "SUM_maps_XRF_Fe_K.tiff")[40:104, 40:104],
             Cr_K=tifffile.imread(data / "SUM_maps_XRF_Cr_K.tiff")[40:104, 40:104])
    records = {}
    for extra, name in (([], "alone.npz"), (["--joint"], "joint.npz")):
        assert main(["restore", str(src), "-o", str(tmp_path / name), "--psf-sigma", "0.5px", "--iterations", "3",
                     "-q", *extra]) == 0
        records[name] = json.loads((tmp_path / f"{name}.json").read_text())["xrfgpu"]["provenance"]["parameters"]
    for element in ("Fe_K", "Cr_K"):
        alone, joint = records["alone.npz"]["per_element"][element], records["joint.npz"]["per_element"][element]
        assert "given" not in str(joint.get("gain_note", ""))
        assert joint["gain"] == pytest.approx(alone["gain"], rel=1e-12)
        assert joint["gain_spread"] == pytest.approx(alone["gain_spread"], rel=1e-12)


def test_joint_takes_a_weight_array_and_refuses_unknown_options_by_name():
    import xrfgpu
    from xrfgpu import phantom
    from xrfgpu.joint import joint_richardson_lucy

    maps, psfs = [], []
    for k, (sigma, level) in enumerate(((1.0, 400.0), (2.0, 100.0))):
        counts, _, h = phantom.observe((40, 40), sigma, seed=k, signal_counts=level)
        maps.append(counts)
        psfs.append(h)
    stack = np.stack(maps)
    as_list = joint_richardson_lucy(stack, psfs, background=100.0, weight=[0.0, 0.05], num_iter=4, guide_iter=4)
    as_array = joint_richardson_lucy(stack, psfs, background=100.0, weight=np.array([0.0, 0.05]), num_iter=4,
                                     guide_iter=4)
    assert np.array_equal(np.asarray(as_list), np.asarray(as_array))
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['tol'\] for joint restoration"):
        xrfgpu.restore_stack(stack, psfs, "rl", background=100.0, joint=True, num_iter=4, tol=1e-3)


def test_an_element_typed_in_capitals_is_found():
    from xrfgpu.io import match_name

    names = ["Fe_K", "Cr_K", "S_K", "Si_K", "Co_K"]
    assert [match_name(q, names) for q in ("FE", "SI", "CO", "S", "CR_K")] == ["Fe_K", "Si_K", "Co_K", "S_K", "Cr_K"]


def test_a_zarr_dataset_that_is_not_there_is_named_with_those_that_are(tmp_path):
    """As the HDF5 case says it; zarr's own GroupNotFoundError named neither."""
    zarr = pytest.importorskip("zarr")
    from zarr_stores import new_member
    from xrfgpu.chunked_io import open_chunked

    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    for name in ("maps/fe", "maps/ca"):
        new_member(group, name, shape=(20, 24), chunks=(10, 12), dtype="float32")[:] = 1.0
    with pytest.raises(ValueError, match=r"has no dataset 'maps/zn'; datasets: \['maps/ca', 'maps/fe'\]"):
        open_chunked(tmp_path / "g.zarr", "maps/zn")


def test_a_negative_integer_map_in_a_stack_is_named():
    import xrfgpu
    from xrfgpu import phantom

    maps, psfs = [], []
    for k in range(2):
        counts, _, h = phantom.observe((32, 32), 1.5, seed=k)
        maps.append(counts.astype(np.int64))
        psfs.append(h)
    maps[1][3, 4] = -2
    stack = np.stack(maps)
    for joint in (False, True):
        with pytest.raises(ValueError, match=r"map 1 of the stack: image has negative values"):
            xrfgpu.restore_stack(stack, psfs, "rl", background=140.0, joint=joint, num_iter=2)
