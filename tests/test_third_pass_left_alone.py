"""Third QA pass, "Found, left alone" (``docs/qa_real_maps.md``): each item reproduced, then fixed.

Each test failed before its fix: ``-o -`` wrote a file or folder named ``-``; ``xrfgpu demo`` into a
read-only folder printed a bare ``[Errno 30]``; the library's refusal of an existing output said
``pass --overwrite``; the joint record said ``kind`` (not ``map_kind``) and ``prior "dtv"`` for a map
restored with no prior; ``--gain`` for all maps classified each integer map twice or more.
"""

import errno
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile

from conftest import file_names as _files
from conftest import pretend_read_only as _read_only
from conftest import spot_counts as _spot
from xrfgpu.cli import main
from xrfgpu.psf.blind_sigma import SigmaUncertainWarning


def to_numpy(x):
    from xrfgpu._backend import to_numpy as _to_numpy

    return np.asarray(_to_numpy(x))


# --------------------------------------------------------------------------- 1. `-o -`

STDOUT_CASES = {
    "restore": ["restore", "scan_Fe_K.tif", "-o", "-", "--psf-sigma", "1px", "--iterations", "2"],
    "restore-json": ["restore", "scan_Fe_K.tif", "-o", "-", "--psf-sigma", "1px", "--iterations", "2", "--json"],
    "psf-dot": ["psf", "dot", "scan_Fe_K.tif", "--pixel-size", "1um", "-o", "-"],
    "psf-edge": ["psf", "edge", "scan_Fe_K.tif", "--pixel-size", "1um", "-o", "-"],
    "psf-blind-figure": ["psf", "blind", "scan_Fe_K.tif", "--pixel-size", "1um", "--figure", "-"],
    "compare": ["compare", "scan_Fe_K.tif", "scan_Fe_K.tif", "-o", "-"],
    "demo": ["demo", "-"],
}


@pytest.mark.parametrize("case", list(STDOUT_CASES))
def test_a_dash_for_an_output_is_refused_as_standard_output(tmp_path, monkeypatch, capsys, case):
    # `-o -` wrote a folder named "-" (one CSV per map), a PSF table named "-", a figure named "-"; a
    # user typing "-" expects standard output. Refused in one line (status 2) before any work, naming the
    # option, saying standard output is not supported and what to give instead
    monkeypatch.chdir(tmp_path)
    tifffile.imwrite("scan_Fe_K.tif", _spot())
    for name in ("fit_dot", "fit_knife_edge", "estimate_sigma"):
        monkeypatch.setattr(f"xrfgpu.psf.{name}", lambda *a, **k: pytest.fail("the fit ran"))
    monkeypatch.setattr("xrfgpu.cli._run_method", lambda *a, **k: pytest.fail("the restoration ran"))
    monkeypatch.setattr("xrfgpu.demo._run_demo_into", lambda *a, **k: pytest.fail("the demo ran"))
    assert main(STDOUT_CASES[case]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("Error: ")
    assert "standard output is not supported" in err and "e.g. " in err and "./-" in err
    option = {"demo": "OUTPUT_DIR -:", "psf-blind-figure": "--figure -:"}.get(case, "-o/--output -:")
    assert option in err
    assert _files(tmp_path) == ["scan_Fe_K.tif"]


def test_a_file_named_dash_is_still_written_as_dot_slash_dash(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tifffile.imwrite("scan_Fe_K.tif", _spot())
    assert main(["restore", "scan_Fe_K.tif", "-o", "./-", "--psf-sigma", "1px", "--iterations", "2", "-q"]) == 0
    assert (tmp_path / "-").is_dir() and "Fe_K.csv" in _files(tmp_path / "-")


# --------------------------------------------------------------------------- 2. `xrfgpu demo` on a read-only folder


@pytest.mark.parametrize("target", ["ro", "ro/report", "ro/a/b"])
def test_a_demo_into_a_read_only_folder_is_refused_naming_it_before_the_work(tmp_path, monkeypatch, capsys, target):
    # a read-only mount: `demo ro/report` printed "Error: [Errno 30] Read-only file system: 'ro/report'" (its
    # mkdir), and `demo ro` ran the whole demo before failing to write. Now refused first, in one line naming
    # the folder that cannot be written, with status 2 as the other commands' read-only output folders
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ro").mkdir()
    _read_only(monkeypatch, tmp_path / "ro")
    monkeypatch.setattr("xrfgpu.demo._run_demo_into", lambda *a, **k: pytest.fail("the demo ran"))
    monkeypatch.setattr(Path, "mkdir", lambda *a, **k: pytest.fail("mkdir ran in a read-only folder"))
    assert main(["demo", target, "-q"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Errno" not in err
    assert f"output folder {target!r}" in err and "folder 'ro' is not writable" in err
    assert "read-only file system" in err and "choose another folder" in err
    assert _files(tmp_path) == ["ro"] and _files(tmp_path / "ro") == []


def test_a_demo_folder_that_cannot_be_made_is_said_in_words(tmp_path, monkeypatch, capsys):
    # where the check cannot see it coming (an ACL, a mount that turns read-only meanwhile) the folder's mkdir
    # fails: its line names the folder and the problem, without "[Errno 30]"
    monkeypatch.chdir(tmp_path)

    def read_only_mkdir(self, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))

    monkeypatch.setattr(Path, "mkdir", read_only_mkdir)
    monkeypatch.setattr("xrfgpu.demo._run_demo_into", lambda *a, **k: pytest.fail("the demo ran"))
    assert main(["demo", "report", "-q"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "Error: cannot make output folder 'report': Read-only file system"
    assert _files(tmp_path) == []


def test_a_demo_into_a_file_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("notes.txt").write_text("mine")
    monkeypatch.setattr("xrfgpu.demo._run_demo_into", lambda *a, **k: pytest.fail("the demo ran"))
    assert main(["demo", "notes.txt", "-q"]) == 2
    err = capsys.readouterr().err
    assert "output folder 'notes.txt' is a file, not a folder" in err and len(err.strip().splitlines()) == 1
    assert Path("notes.txt").read_text() == "mine"


# --------------------------------------------------------------------------- 3. the library says overwrite=True


def _gaussian_psf(sigma=1.0, size=7):
    r = np.arange(size) - size // 2
    h = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma**2))
    return h / h.sum()


def test_restore_zarr_names_the_keyword_it_takes_for_an_existing_output(tmp_path):
    # `xrfgpu.dask.restore_zarr(..., overwrite=False)` on an existing store said "pass --overwrite", an option
    # a library user has no way to give
    zarr = pytest.importorskip("zarr")
    pytest.importorskip("dask.array")
    from xrfgpu.dask import restore_zarr

    source = tmp_path / "scan.zarr"
    zarr.open_array(store=str(source), mode="w", shape=(32, 32), chunks=(16, 16), dtype="f4")[...] = _spot(32)
    out = restore_zarr(source, tmp_path / "out.zarr", _gaussian_psf(), "wiener", tile=16, balance=0.01,
                       background=0.0)
    with pytest.raises(FileExistsError, match=r"exists; pass overwrite=True to replace it") as refused:
        restore_zarr(source, out, _gaussian_psf(), "wiener", tile=16, balance=0.01, background=0.0)
    assert "--overwrite" not in str(refused.value)
    restore_zarr(source, out, _gaussian_psf(), "wiener", tile=16, balance=0.01, background=0.0, overwrite=True)


def test_write_maps_names_the_keyword_and_the_command_line_its_option(tmp_path, monkeypatch, capsys):
    from xrfgpu.io import ElementMaps, write_maps
    from xrfgpu.output_safety import UnsafeOutputError

    maps = ElementMaps({"Fe_K": _spot()}, pixel_size_um=1.0)
    write_maps(tmp_path / "a.npz", maps)
    with pytest.raises(FileExistsError, match="pass overwrite=True to replace it"):
        write_maps(tmp_path / "a.npz", maps)
    (tmp_path / "mine.npz").write_bytes(b"not xrfgpu's")
    with pytest.raises(UnsafeOutputError, match="exists and overwrite=True replaces only earlier xrfgpu outputs"):
        write_maps(tmp_path / "mine.npz", maps, overwrite=True)
    # the command line keeps its own spelling, in both refusals, and the library's after a run of it
    monkeypatch.chdir(tmp_path)
    tifffile.imwrite("scan_Fe_K.tif", _spot())
    restore = ["restore", "scan_Fe_K.tif", "--psf-sigma", "1px", "--iterations", "2", "-q"]
    assert main([*restore, "-o", "a.npz"]) == 2
    assert "exists; pass --overwrite to replace it" in capsys.readouterr().err
    assert main([*restore, "-o", "mine.npz", "--overwrite"]) == 2
    assert "exists and --overwrite replaces only earlier xrfgpu outputs" in capsys.readouterr().err
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        write_maps(tmp_path / "a.npz", maps)


def test_a_lost_race_names_the_keyword_too(tmp_path):
    # the no-replace publish (another run wrote the name after the early check) says it the same way
    from xrfgpu.output_safety import Output, overwrite_named, write_outputs

    target = tmp_path / "x.txt"

    def late_rival(path):
        target.write_text("the other run")  # appears between the check and the publish
        Path(path).write_text("this run")

    with pytest.raises(FileExistsError, match=r"exists.*; pass overwrite=True to replace it"):
        write_outputs([Output(target, late_rival)])
    target.unlink()
    with overwrite_named("--overwrite"), pytest.raises(FileExistsError, match="pass --overwrite to replace"):
        write_outputs([Output(target, late_rival)])
    assert target.read_text() == "the other run"


# --------------------------------------------------------------------------- 4. the joint record


def _two_maps(seed=3, n=32):
    """A guide (σ 1 px, 400 counts) and a weak map (σ 2 px, 40 counts) sharing a disk: Poisson counts."""
    from scipy import signal

    from xrfgpu import psf as psf_mod

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:n, :n]
    disk = np.hypot(yy - 14, xx - 17) <= 6
    maps, psfs = [], []
    for level, inside, sigma, background in ((400.0, 1.0, 1.0, 20.0), (40.0, 0.9, 2.0, 5.0)):
        h = psf_mod.gaussian(None, sigma)
        k = h.shape[0] // 2
        truth = np.pad(np.where(disk, inside, 0.3), k, mode="edge")
        blurred = signal.fftconvolve(truth, h, mode="same")[k:-k, k:-k]
        maps.append(rng.poisson(level * blurred + background).astype(np.float32))
        psfs.append(h)
    return np.stack(maps), psfs, [20.0, 5.0]


@pytest.mark.slow_on_strict
@pytest.mark.parametrize("how", ["cross-validation", "given"])
def test_a_weak_map_at_weight_zero_is_recorded_with_no_prior_and_restored_as_plain_rl(xp, how):
    # λ = 0 is plain RL with no prior; the record said prior "dtv" there. Only the record changes: the map is
    # bit for bit plain RL, accelerated as the front door restores a map alone (at the CV count when the CV chose
    # λ = 0, at the given count when weight=0 was given: since the fourteenth session, when it had been the
    # unaccelerated EM step recorded as "guided")
    from xrfgpu import richardson_lucy
    from xrfgpu.joint import joint_richardson_lucy

    counts, psfs, backgrounds = _two_maps()
    options = ({"weights": (0.0,), "max_iter": 20} if how == "cross-validation" else {"weight": 0.0, "num_iter": 7})
    out, info = joint_richardson_lucy(xp.asarray(counts), [xp.asarray(h) for h in psfs], guide=0,
                                      background=backgrounds, return_info=True, **options)
    weak = info["per_map"][1]
    assert info["mode"] == "joint" and weak["weight"] == 0.0 and weak["weight_how"] == how
    assert weak["prior"] == "none" and weak["huber_delta"] is None
    plain = richardson_lucy(xp.asarray(counts[1]), xp.asarray(psfs[1]), num_iter=weak["iterations"],
                            background=backgrounds[1], accelerate=True)
    if "cupy" in xp.__name__:
        # the H200 run (2026-11-27): the fused CUDA RL kernels round differently from the joint path's
        # array-API steps, 4e-7 of the value after 20 iterations; on the CPU the two are the same bits
        np.testing.assert_allclose(to_numpy(out)[1], to_numpy(plain), rtol=1e-5, atol=1e-6)
    else:
        assert np.array_equal(to_numpy(out)[1], to_numpy(plain))
    # a weight above 0 keeps its prior's name
    _, info = joint_richardson_lucy(xp.asarray(counts), [xp.asarray(h) for h in psfs], guide=0,
                                    background=backgrounds, weight=0.05, num_iter=3, return_info=True)
    assert info["per_map"][1]["prior"] == "dtv"


def test_the_joint_record_names_the_kind_map_kind_as_the_front_door_does(tmp_path, monkeypatch):
    # the joint record said `kind` per map, where restore(map) and the command line's other records say
    # `map_kind`; both keys now, with one value (`kind` kept for readers of records written before)
    import json

    from xrfgpu import restore
    from xrfgpu.stack import restore_stack

    counts, psfs, backgrounds = _two_maps()
    fitted = counts * np.float32(1e-3)  # the weak map as a fitted one: restored in effective counts
    stack = np.stack([counts[0], fitted[1]])
    _, info = restore_stack(stack, psfs, joint=True, guide=0, background=[backgrounds[0], backgrounds[1] * 1e-3],
                            weight=0.05, num_iter=3, return_info=True)
    for i, image in enumerate(stack):
        entry = info["per_map"][i]
        assert entry["map_kind"] == entry["kind"]
        alone = restore(image, sigma=1.0, num_iter=1, return_info=True)[1]["map_kind"]
        assert entry["map_kind"].split()[0].strip(":") == alone.split()[0]  # counts / fitted, as restore says
    # counts × 1e-3 keep the photons' lattice: restored as counts divided by one number, in effective counts
    assert info["per_map"][0]["map_kind"] == "counts"
    assert info["per_map"][1]["map_kind"].startswith("counts divided by one number")
    # the command line's --joint record, per element
    monkeypatch.chdir(tmp_path)
    Path("maps").mkdir()
    tifffile.imwrite("maps/Fe_K.tif", counts[0])
    tifffile.imwrite("maps/Cr_K.tif", fitted[1])
    assert main(["restore", "maps", "-o", "joint.npz", "--psf-sigma", "Fe=1px,Cr=2px", "--joint", "--guide", "Fe",
                 "--iterations", "3", "-q"]) == 0
    per_element = json.loads(Path("joint.npz.json").read_text())["xrfgpu"]["provenance"]["parameters"]["per_element"]
    assert per_element["Fe_K"]["map_kind"] == per_element["Fe_K"]["kind"] == "counts"
    assert per_element["Cr_K"]["map_kind"] == per_element["Cr_K"]["kind"]
    assert per_element["Cr_K"]["map_kind"].startswith("counts divided by one number")


# --------------------------------------------------------------------------- 5. each map classified once


def _count_classifications(monkeypatch):
    """Count :func:`xrfgpu.map_kind.classify_map` calls, wherever they come from (the command line imports it
    at the call, the front door at its import)."""
    import xrfgpu.front_door
    import xrfgpu.map_kind

    calls = []
    real = xrfgpu.map_kind.classify_map

    def counting(image):
        calls.append(np.asarray(to_numpy(image)).shape)
        return real(image)

    monkeypatch.setattr(xrfgpu.map_kind, "classify_map", counting)
    monkeypatch.setattr(xrfgpu.front_door, "classify_map", counting)
    return calls


GAIN_CASES = {  # options after the map: --gain for all, or per element, or none; the estimated steps or not
    "all-auto": ["--gain", "2e-3", "--psf-sigma", "1px"],
    "all-psf-auto": ["--gain", "2e-3", "--psf-auto"],
    "all-given-background": ["--gain", "2e-3", "--psf-sigma", "1px", "--background", "5"],
    "all-tiled": ["--gain", "2e-3", "--psf-sigma", "1px", "--tile", "32"],
    "all-wiener-tiled": ["--gain", "2e-3", "--psf-sigma", "1px", "--tile", "32", "--method", "wiener"],
    "entry": ["--gain", "Fe={entry}", "--psf-sigma", "1px"],
    "measured": ["--psf-sigma", "1px"],
}


@pytest.mark.parametrize("kind", ["counts", "scaled integers"])
@pytest.mark.parametrize("case", list(GAIN_CASES))
def test_each_integer_map_is_classified_once_and_restored_as_the_library_restores_it(tmp_path, monkeypatch, kind,
                                                                                   case):
    # `--gain 2e-3` (one for all): the command line classified each map (_given_gain) and every step classified
    # it again (effective_counts in the background, σ and restoration steps): 2 to 4 classifications of one map,
    # ~40-90 ms each at 1024². Now at most once, passed on; the outputs and records are those of the library's
    # front door given the same σ, background and gain (xrfgpu.restore, which classifies the map itself)
    import json

    from xrfgpu import restore
    from xrfgpu.front_door import sigma_from_map
    from xrfgpu.map_kind import classify_map

    counts = np.random.default_rng(0).poisson(200.0, (64, 64))
    image = (counts if kind == "counts" else 3 * counts).astype(np.uint16)
    assert classify_map(image).kind == kind
    entry_gain = 1.0 if kind == "counts" else 2e-3  # an entry other than 1 for a count map is refused
    options = [o.format(entry=entry_gain) for o in GAIN_CASES[case]]
    monkeypatch.chdir(tmp_path)
    tifffile.imwrite("scan_Fe_K.tif", image)
    calls = _count_classifications(monkeypatch)
    # --iterations for the methods that iterate (a filter refuses it since the seventh QA pass)
    iterations = [] if "wiener" in options or "tikhonov" in options else ["--iterations", "3"]
    assert main(["restore", "scan_Fe_K.tif", "-o", "out.npz", *iterations, "-q", *options]) == 0
    # gain 1 given for a count map: no step classifies it; otherwise one classification, passed on
    assert len(calls) == (0 if case == "entry" and kind == "counts" else 1), calls
    monkeypatch.undo()

    record = json.loads((tmp_path / "out.npz.json").read_text())["xrfgpu"]["provenance"]
    element = record["parameters"]["per_element"]["Fe_K"]
    with np.load(tmp_path / "out.npz") as f:
        restored = f["Fe_K"]
    # what a library user passes: the gain for all applies to scaled integers only (a count map's is 1)
    library_gain = {"all": 2e-3 if kind == "scaled integers" else None, "entry": entry_gain,
                    "measured": None}[case.split("-")[0]]
    if "wiener" not in options:  # the tiled Wiener run records no gain (it runs in the map's units)
        assert element["gain"] == (library_gain or (1.0 if kind == "counts" else 3.0))
    if "--tile" in options:
        return  # tiles equal the whole map to rounding (tests/test_dask_rl.py, test_dask.py), not bit for bit
    work = image.astype(np.float32)
    sigma = 1.0
    if "--psf-auto" in options:  # a map of noise alone: σ is uncertain (the command line says so in a line)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SigmaUncertainWarning)
            sigma = sigma_from_map(work, background=element["background"], gain=library_gain)
    out, info = restore(work, sigma=sigma, background=element["background"], num_iter=3, gain=library_gain,
                        return_info=True)
    assert np.array_equal(restored, out)
    assert element["map_kind"] == info["map_kind"] and element["gain"] == info["gain"]
    if library_gain is None:
        assert element.get("gain_note") == info.get("gain_note")
    else:
        assert element["gain_note"] == "given with --gain"


@pytest.mark.parametrize("kind", ["counts", "scaled integers", "fitted"])
def test_restore_takes_the_kind_had_before_and_does_not_classify_again(xp, monkeypatch, kind):
    from xrfgpu import restore
    from xrfgpu.front_door import background_from_map, effective_counts, sigma_from_map
    from xrfgpu.map_kind import classify_map

    counts = np.random.default_rng(1).poisson(200.0, (48, 48)).astype(np.float32)
    image = xp.asarray({"counts": counts, "scaled integers": 3 * counts, "fitted": counts * 1e-3}[kind])
    known = classify_map(image)
    assert known.kind == kind
    expected, expected_info = restore(image, sigma=1.0, num_iter=3, return_info=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SigmaUncertainWarning)  # a map of noise alone
        background, sigma = background_from_map(image), float(sigma_from_map(image).sigma)
        calls = _count_classifications(monkeypatch)
        out, info = restore(image, sigma=1.0, num_iter=3, return_info=True, map_kind=known)
        assert background_from_map(image, map_kind=known) == background
        assert float(sigma_from_map(image, map_kind=known).sigma) == sigma
    assert calls == []
    assert np.array_equal(to_numpy(out), to_numpy(expected))
    assert {k: info.get(k) for k in ("map_kind", "gain", "gain_note")} == {
        k: expected_info.get(k) for k in ("map_kind", "gain", "gain_note")}
    monkeypatch.undo()
    other = classify_map(xp.asarray(counts * 1e-3) if kind != "fitted" else xp.asarray(counts))
    with pytest.raises(ValueError, match="is not this map's"):
        effective_counts(image, xp=xp, map_kind=other)
    with pytest.raises(TypeError, match="MapKind"):
        effective_counts(image, xp=xp, map_kind=kind)


@pytest.mark.parametrize("kind", ["counts", "scaled integers"])
@pytest.mark.parametrize("gain_option", [["--gain", "2e-3"], []])
def test_joint_maps_are_classified_once_each_and_restored_as_the_library_restores_them(tmp_path, monkeypatch,
                                                                                     kind, gain_option):
    # `--joint`: the command line classified each map (for --gain, the background or σ) and the joint run's
    # effective counts classified it again; now once per map, passed on (joint_richardson_lucy's map_kind=)
    import json

    from xrfgpu.joint import joint_richardson_lucy
    from xrfgpu.psf import gaussian_for_map

    rng = np.random.default_rng(4)
    scale = 1 if kind == "counts" else 3
    maps = {"Fe_K": (scale * rng.poisson(200.0, (48, 48))).astype(np.uint16),
            "Cr_K": (scale * rng.poisson(60.0, (48, 48))).astype(np.uint16)}
    monkeypatch.chdir(tmp_path)
    Path("maps").mkdir()
    for name, image in maps.items():
        tifffile.imwrite(f"maps/{name}.tif", image)
    calls = _count_classifications(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a guide of noise alone: the fallback warning (printed, not raised)
        assert main(["restore", "maps", "-o", "joint.npz", "--joint", "--guide", "Fe", "--psf-sigma", "1px",
                     "--iterations", "2", "-q", *gain_option]) == 0
    assert len(calls) == 2, calls
    monkeypatch.undo()
    per_element = json.loads((tmp_path / "joint.npz.json").read_text())["xrfgpu"]["provenance"]["parameters"][
        "per_element"]
    names = list(per_element)
    stack = np.stack([maps[n].astype(np.float32) for n in names])
    gains = [None if kind == "counts" or not gain_option else 2e-3] * 2
    h = gaussian_for_map(1.0, stack.shape[1:], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out, info = joint_richardson_lucy(stack, [h, h], guide=names.index("Fe_K"), num_iter=2, guide_iter=2,
                                          background=[per_element[n]["background"] for n in names], gain=gains,
                                          return_info=True)
    with np.load(tmp_path / "joint.npz") as f:
        for i, name in enumerate(names):
            assert np.array_equal(f[name], out[i]), name
            assert per_element[name]["map_kind"] == info["per_map"][i]["map_kind"]
            assert per_element[name]["gain"] == info["per_map"][i]["gain"]


def test_joint_refuses_map_kinds_that_do_not_match_the_stack(xp):
    from xrfgpu.joint import joint_richardson_lucy
    from xrfgpu.map_kind import classify_map

    counts, psfs, backgrounds = _two_maps()
    stack = xp.asarray(counts)
    with pytest.raises(ValueError, match="map_kind: 1 values for a stack of 2 maps"):
        joint_richardson_lucy(stack, [xp.asarray(h) for h in psfs], background=backgrounds, weight=0.05,
                              num_iter=2, map_kind=[classify_map(stack[0, ...])])
    fitted = classify_map(xp.asarray(counts[0] * 1e-3))
    with pytest.raises(ValueError, match="map 1: map_kind 'fitted' is not this map's"):
        joint_richardson_lucy(stack, [xp.asarray(h) for h in psfs], background=backgrounds, weight=0.05,
                              num_iter=2, map_kind=[None, fitted])
