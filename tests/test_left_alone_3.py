"""Items the QA passes on real maps found and left alone (``docs/qa_real_maps.md``), fixed on branch
``left-alone-3``: each test failed before its fix."""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_array, to_numpy

from xrfgpu import restore, restore_stack, richardson_lucy
from xrfgpu.cli import main
from xrfgpu.joint import joint_richardson_lucy
from xrfgpu.psf import gaussian


def _maps(n=3, shape=(24, 20), seed=0):
    """``n`` Poisson count maps of a shared disk, stacked (n, rows, cols)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    disk = ((yy - shape[0] / 2) ** 2 + (xx - shape[1] / 2) ** 2 < 36).astype(np.float64)
    return np.stack([rng.poisson(20.0 + 100.0 * (k + 1) * disk).astype(np.float64) for k in range(n)])


# 1. a channels-last stack (numpy.dstack) is refused, not restored as `rows` maps of cols x n


@pytest.mark.parametrize("joint", [False, True])
def test_channels_last_stack_is_refused_with_the_way_round(xp, joint):
    dstack = np.dstack(list(_maps(3)))  # (24, 20, 3): the elements on the last axis
    kwargs = {"joint": True, "weight": 0.05, "num_iter": 2} if joint else {"num_iter": 2}
    with pytest.raises(ValueError, match=r"\(24, 20, 3\).*numpy\.moveaxis\(stack, -1, 0\)"):
        restore_stack(xp.asarray(dstack), xp.asarray(gaussian(None, 1.0)), **kwargs)


def test_channels_last_stack_is_refused_by_joint_richardson_lucy(xp):
    dstack = np.dstack(list(_maps(2)))
    with pytest.raises(ValueError, match=r"20 x 2 pixels.*numpy\.moveaxis\(stack, -1, 0\)"):
        joint_richardson_lucy(xp.asarray(dstack), xp.asarray(gaussian(None, 1.0)), weight=0.05, num_iter=2)


def test_a_channels_last_stack_of_many_elements_warns_with_the_way_round(xp):
    # (60, 50, 6): six element maps on the last axis pass the 5-pixel minimum (60 strips of 50 x 6); restored as
    # given, with a warning naming the way round. The same maps the right way round, (6, 60, 50), do not warn.
    from xrfgpu.stack import ChannelsLastWarning

    dstack = np.dstack(list(_maps(6, shape=(60, 50))))
    h = xp.asarray(gaussian((5, 5), 0.8))
    with pytest.warns(ChannelsLastWarning, match=r"\(60, 50, 6\).*6 element maps of 60 x 50.*numpy\.moveaxis"):
        restore_stack(xp.asarray(dstack), h, num_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ChannelsLastWarning)
        got = restore_stack(xp.asarray(np.moveaxis(dstack, -1, 0)), h, num_iter=2)
    assert tuple(got.shape) == (6, 60, 50)


def test_the_way_round_and_small_maps_restore_as_single_maps(xp):
    # numpy.moveaxis(dstack, -1, 0), and maps of 11 x 11 (the MAPS file's), above the 5-pixel minimum:
    # each map restored as richardson_lucy restores it alone
    h = gaussian(None, 1.0)
    for stack in (np.moveaxis(np.dstack(list(_maps(3))), -1, 0), _maps(2, shape=(11, 11))):
        got = restore_stack(xp.asarray(stack), xp.asarray(h), "rl", num_iter=3)
        expected = np.stack([to_numpy(richardson_lucy(xp.asarray(m), xp.asarray(h), num_iter=3)) for m in stack])
        assert_array(got, expected, xp, rtol=1e-4, atol=1e-6 * float(expected.max()))


# 2. joint: a given gain that is no gain, and an all-zero map, are refused naming the map (fixed before this
# branch in 11db586; these pin the two cases of the brief, gain=[0, g] and a zero map, in both entry points)


@pytest.mark.parametrize(("gain", "error"), [(0, ValueError), (float("nan"), ValueError), (-1, ValueError),
                                             (True, TypeError)])
def test_joint_refuses_a_gain_that_is_no_gain_naming_map_0(gain, error):
    stack = _maps(2)
    stack[1] *= 2e-3  # a fitted map, whose gain the front door would measure
    with pytest.raises(error, match="gain of map 0"):
        joint_richardson_lucy(stack, gaussian(None, 1.0), gain=[gain, 2e-3], weight=0.05, num_iter=2)
    with pytest.raises(ValueError, match="gain must be"):
        restore(stack[0], sigma=1.0, gain=0)  # the single-map refusal the joint one matches


@pytest.mark.parametrize("joint", [False, True])
def test_an_all_zero_map_of_a_stack_is_named(xp, joint):
    stack = _maps(3)
    stack[2] = 0.0
    kwargs = {"joint": True, "weight": 0.05} if joint else {}
    with pytest.raises(ValueError, match="map 2 of the stack is all zeros"):
        restore_stack(xp.asarray(stack), xp.asarray(gaussian(None, 1.0)), num_iter=2, **kwargs)


# 3. xrfgpu.dask.restore of an all-zero map: zeros with a warning naming the map, as the command line writes it


@pytest.mark.parametrize("method", ["rl", "wiener", "tikhonov", "fista"])
def test_dask_restore_of_an_all_zero_map_warns_and_returns_zeros(method):
    da = pytest.importorskip("dask.array")
    from xrfgpu import dask as xdask

    h = gaussian(None, 1.0)
    with pytest.warns(UserWarning, match="the map is all zeros"):
        out = xdask.restore(da.from_array(np.zeros((30, 26))), h, method, tile=16, halo=6, background=2.0).compute()
    np.testing.assert_array_equal(out, np.zeros((30, 26)))  # zeros whatever the background, as the CLI writes
    # in a stack: the zero map is named and zero; the other is restored as alone (no warning for it)
    stack = _maps(2, shape=(30, 26))
    stack[0] = 0.0
    with pytest.warns(UserWarning, match="map 0 of the stack is all zeros") as record:
        out = xdask.restore(da.from_array(stack), h, method, tile=16, halo=6, num_iter=5).compute() if method in (
            "rl", "fista") else xdask.restore(da.from_array(stack), h, method, tile=16, halo=6).compute()
    assert len(record) == 1
    np.testing.assert_array_equal(out[0], 0.0)
    kw = {"num_iter": 5} if method in ("rl", "fista") else {}
    alone = xdask.restore(da.from_array(stack[1]), h, method, tile=16, halo=6, **kw).compute()
    np.testing.assert_array_equal(out[1], alone)


# 4. restore_zarr's record says what was called; sys.argv only when it is the xrfgpu command line


def _zarr_restore(tmp_path, name):
    zarr = pytest.importorskip("zarr")
    from zarr_stores import new_array
    from xrfgpu import dask as xdask

    source = tmp_path / f"{name}-in.zarr"
    z = new_array(str(source), shape=(30, 26), chunks=(16, 16), dtype="float32")
    z[...] = _maps(1, shape=(30, 26))[0]
    out = xdask.restore_zarr(source, tmp_path / f"{name}.zarr", gaussian(None, 1.0), "wiener", tile=16, halo=6,
                             balance=0.02, scheduler="synchronous")
    return source, out, zarr.open_array(store=str(out), mode="r").attrs["xrfgpu"]


@pytest.mark.parametrize("argv", [["-"], ["/opt/conda/lib/python3.11/site-packages/ipykernel_launcher.py", "-f",
                                          "kernel.json"], ["-c"]])
def test_restore_zarr_records_the_call_not_a_foreign_argv(tmp_path, monkeypatch, argv):
    monkeypatch.setattr("sys.argv", argv)
    source, out, record = _zarr_restore(tmp_path, "lib")
    assert "command" not in record  # was ["-"] from `python -`, the kernel's argv from a notebook
    assert record["call"] == "xrfgpu.dask.restore_zarr"
    args = record["arguments"]
    assert args["input"] == str(source) and args["output"] == str(tmp_path / "lib.zarr")
    assert (args["method"], args["tile"], args["halo"], args["balance"], args["scheduler"]) == (
        "wiener", 16, 6, 0.02, "synchronous")
    assert args["psf"] == "array of shape (9, 9)"


@pytest.mark.parametrize(("argv0", "expected0"), [("/usr/local/bin/xrfgpu", "xrfgpu"),
                                                  ("/src/xrfgpu/xrfgpu/__main__.py", "xrfgpu")])
def test_the_xrfgpu_command_line_is_recorded_as_the_command(tmp_path, monkeypatch, argv0, expected0):
    from xrfgpu.provenance import xrfgpu_command_line

    argv = [argv0, "restore", "in.h5", "-o", "out.tif"]
    assert xrfgpu_command_line(argv) == [expected0, "restore", "in.h5", "-o", "out.tif"]
    assert xrfgpu_command_line(["/home/me/run_xrfgpu.py", "x"]) is None  # a user's script is not the command
    monkeypatch.setattr("sys.argv", argv)
    _, _, record = _zarr_restore(tmp_path, "cmd")
    assert record["command"] == ["xrfgpu", "restore", "in.h5", "-o", "out.tif"]
    assert record["call"] == "xrfgpu.dask.restore_zarr"


# 5. a tiled Wiener / Tikhonov / FISTA run records the map's gain, as the untiled run does

HXN = Path(__file__).parent / "data" / "hxn_nanoparticles_xrf"
HXN_S = Path(__file__).parent / "data" / "hxn_nanoparticles_xrf_s" / "SUM_maps_XRF_S_K.tiff"


def _tiff_record(path):
    """The provenance as users read it: JSON in the TIFF's ImageJ ``Info`` entry (tifffile)."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        return json.loads(tif.imagej_metadata["Info"])["xrfgpu"]["provenance"]


@pytest.mark.parametrize("method, extra", [("wiener", []), ("tikhonov", ["--background", "0"]),
                                           ("fista", ["--iterations", "3", "--gain", "6e-5"])])
def test_tiled_direct_methods_record_the_gain_of_the_untiled_run(tmp_path, method, extra):
    pytest.importorskip("dask.array")
    src = HXN / "SUM_maps_XRF_Fe_K.tiff"
    records = []
    for name, tile in (("whole.tif", []), ("tiled.tif", ["--tile", "64"])):
        out = tmp_path / name
        assert main(["restore", str(src), "-o", str(out), "--method", method, "--psf-sigma", "0.5px", "-q",
                     *tile, *extra]) == 0
        records.append(_tiff_record(out)["parameters"]["per_element"]["Fe_K"])
    whole, tiled = records
    assert "tiling" in tiled and "tiling" not in whole
    assert whole["gain"] > 0 and tiled.get("gain") == whole["gain"]  # tiled runs recorded no gain
    for key in ("map_kind", "gain_spread", "gain_note"):
        assert tiled.get(key) == whole.get(key), key


# 6. the convolution operator's separable reach is a public read-only property (joint read op._separable.reach)


def test_separable_reach_is_public_read_only_and_widens_a_part_of_a_batch(xp):
    from xrfgpu.fft import Convolution

    h = gaussian(None, 1.0)  # 9 x 9: reaches 4 pixels each way
    big = gaussian(None, 2.0)  # 17 x 17: 8
    op = Convolution(xp.asarray(h), (30, 26), iterative=True)
    if op.engine != "separable":  # array_api_strict (and NumPy without ducc0): no separable engine, no reach
        assert op.separable_reach is None
        return
    assert op.separable_reach == ((4, 4), (4, 4))  # the Gaussian's support about its centre, analytic
    with pytest.raises(AttributeError):
        op.separable_reach = ((1, 1), (1, 1))
    wide = Convolution(xp.asarray(big), (30, 26), iterative=True).separable_reach
    part = Convolution(xp.asarray(h), (30, 26), iterative=True, separable_reach=wide)
    assert part.separable_reach == ((8, 8), (8, 8))  # blurs on the lines of the batch that holds `big`
    assert Convolution(xp.asarray(h), (30, 26), iterative=True, engine="extended").separable_reach is None


def test_joint_reads_no_private_attribute_of_the_operator():
    import inspect

    from xrfgpu import joint

    assert "._separable" not in inspect.getsource(joint)


# 7. every refusal of bad input exits 2 with one line and no traceback; internal errors keep 1

AXO = Path(__file__).parent / "data" / "aps_2ide_maps_axo_std" / "axo_std.h5"


def _count_map(shape, seed=0):
    return np.random.default_rng(seed).poisson(50.0, shape).astype(np.float64)


@pytest.mark.parametrize("case", ["4x4 map", "1-pixel map", "--elements Zn", "--guide Zn", "--kernel-size 4",
                                  "--psf-auto on 11x11"])
def test_refused_input_exits_2_with_one_line(tmp_path, capsys, case):
    out = str(tmp_path / "o.npz")
    small = tmp_path / "small_Fe.npy"
    np.save(small, _count_map((4, 4) if case == "4x4 map" else (1, 1)))
    np.save(tmp_path / "scan_Fe.npy", _count_map((40, 40)))
    argv, expected = {
        "4x4 map": (["restore", str(small), "-o", out, "--psf-sigma", "1px"], "(4, 4)"),
        "1-pixel map": (["restore", str(small), "-o", out, "--psf-sigma", "1px"], "at least 2 pixels"),
        "--elements Zn": (["restore", str(HXN), "-o", out, "--psf-sigma", "1px", "--elements", "Zn"], "'Zn' not found"),
        "--guide Zn": (["restore", str(HXN), "-o", out, "--psf-sigma", "1px", "--joint", "--guide", "Zn"],
                       "'Zn' not found"),
        "--kernel-size 4": (["restore", str(tmp_path / "scan_Fe.npy"), "-o", out, "--method", "blind",
                             "--kernel-size", "4"], "kernel_size must be an odd"),
        "--psf-auto on 11x11": (["restore", str(AXO), "-o", out, "--psf-auto"], "32×32"),
    }[case]
    assert main([*argv, "-q"]) == 2  # was 1, the status of failures
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("Error: ") and expected in err[0], err
    if case == "4x4 map":  # the advice in the command line's words: the option, not the library's keyword
        assert "pass --background" in err[0] and "background=" not in err[0], err
    assert "Traceback" not in err[0]
    assert not Path(out).exists()


def test_an_error_raised_inside_another_library_is_an_internal_error_with_status_1(tmp_path, capsys, monkeypatch):
    np.save(tmp_path / "scan_Fe.npy", _count_map((40, 40)))

    def singular(*args, **kwargs):  # a ValueError from NumPy's own code, not one of xrfgpu's checks
        np.linalg.inv(np.zeros((2, 2)))

    monkeypatch.setattr("xrfgpu.front_door.restore", singular)
    assert main(["restore", str(tmp_path / "scan_Fe.npy"), "-o", str(tmp_path / "o.npz"), "--psf-sigma", "1px",
                 "--method", "wiener", "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "internal error in numpy" in err[0] and "LinAlgError" in err[0]


# 8. `psf dot` warns when the dot's σ lies far above the σ the map itself gives (a grain, not the spot)


@pytest.mark.slow
def test_psf_dot_on_a_rounded_grain_of_the_hxn_s_map_warns(tmp_path, capsys):
    import tifffile

    # a 32² window on the S map's rounded grain at (84, 122): one Gaussian fits it (σ 4.8 px) and the disk
    # check does not fire (F ≈ 5, below its 30), where the map's edges give σ 0.42-0.90 px
    tifffile.imwrite(tmp_path / "S_K.tif", tifffile.imread(HXN_S)[68:100, 106:138])
    assert main(["psf", "dot", str(tmp_path / "S_K.tif"), "--pixel-size", "0.15um", "--line", "S-Ka", "--json",
                 "-o", str(tmp_path / "s.toml"), "--figure", str(tmp_path / "s.png")]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    lo, hi = result["map_sigma_interval_um"]
    assert result["sigma_um"] > 2 * hi  # the case the warning is for (was: no word)
    assert "grain larger than the spot" in captured.err and "--dot-diameter" in captured.err
    assert "grain larger than the spot" in result["warning"]
    assert len(captured.err.strip().splitlines()) == 1


@pytest.mark.slow
@pytest.mark.parametrize("sigma_px", [1.0, 3.0])
def test_psf_dot_on_a_dot_smaller_than_the_spot_does_not_warn(tmp_path, capsys, sigma_px):
    import tifffile

    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:41, :45]
    dot = 4000.0 * np.exp(-((xx - 22.3) ** 2 + (yy - 19.6) ** 2) / (2 * sigma_px**2)) / (2 * np.pi * sigma_px**2)
    tifffile.imwrite(tmp_path / "dot.tif", rng.poisson(dot + 20.0).astype(np.float32))
    assert main(["psf", "dot", str(tmp_path / "dot.tif"), "--pixel-size", "1um", "--line", "Cr-Ka", "--json",
                 "-o", str(tmp_path / "d.toml"), "--figure", str(tmp_path / "d.png")]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["sigma_um"] == pytest.approx(sigma_px, rel=0.05)  # the true spot
    lo, hi = result["map_sigma_interval_um"]
    assert lo <= result["sigma_um"] <= hi and "warning" not in result and captured.err == ""


# 9. --method blind (L0) leaves pixels below 0: recorded, and warned about above 1 %

FE = HXN / "SUM_maps_XRF_Fe_K.tiff"


@pytest.mark.slow_on_strict
def test_blind_info_records_the_negative_share_of_its_restoration(xp):
    import tifffile

    crop = tifffile.imread(FE)[40:88, 40:88]
    out, info = restore(xp.asarray(crop), method="blind", return_info=True)
    restored = to_numpy(out).astype(np.float64)
    assert info["negative_fraction_restored"] == pytest.approx(np.mean(restored < 0), abs=1e-12)
    assert info["restored_min"] == pytest.approx(restored.min(), rel=1e-6)
    assert info["negative_fraction_restored"] > 0.01  # the case the record is for (HXN Fe)


@pytest.mark.slow
@pytest.mark.parametrize("threshold, warned", [(None, True), (0.5, False)])
def test_blind_on_the_command_line_warns_above_one_percent_negative(tmp_path, capsys, monkeypatch, threshold, warned):
    import tifffile

    if threshold is not None:
        monkeypatch.setattr("xrfgpu.cli.BLIND_NEGATIVE_WARN_FRACTION", threshold)
    src = tmp_path / "scan_Fe_K.tif"
    crop = tifffile.imread(FE)[40:104, 40:104]
    tifffile.imwrite(src, crop)
    out = tmp_path / "blind.tif"
    assert main(["restore", str(src), "-o", str(out), "--method", "blind"]) == 0
    err = capsys.readouterr().err
    restored = tifffile.imread(out).astype(np.float64)
    record = _tiff_record(out)["parameters"]["per_element"]["Fe_K"]
    share = float(np.mean(restored < 0))  # from the written map, read as users read it
    assert record["negative_fraction_restored"] == pytest.approx(share, abs=1e-12) and share > 0.01
    assert record["restored_min"] == pytest.approx(restored.min(), rel=1e-6)
    line = f"Fe_K: {share:.1%} of the restored pixels are below 0"
    assert (line in err) is warned
    if warned:
        assert f"{-restored.min() / crop.max():.0%} of the map's maximum" in err and "blind-rl" in err


def test_a_foreign_folder_is_refused_naming_both_records_xrfgpu_would_have(tmp_path):
    # an xrfgpu Zarr store carries its record in its attributes, not in an xrfgpu.json (fifth QA pass)
    from xrfgpu.output_safety import is_xrfgpu_output

    foreign = tmp_path / "store.zarr"
    foreign.mkdir()
    (foreign / "zarr.json").write_text('{"zarr_format": 3, "node_type": "array", "attributes": {}}')
    ok, why = is_xrfgpu_output(foreign)
    assert not ok and "xrfgpu.json" in why and "Zarr store" in why, why
