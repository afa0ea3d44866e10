"""What the seventh QA pass found missing from the record of a run, and the options recorded as if they ran.

Each record entry is checked against an independent reference: the cross-validated count is repeated with
:func:`xrfgpu.stopping.cv_iterations` and the recorded split, the restored map with
:func:`xrfgpu.richardson_lucy` and the recorded ``accelerate``, the mask file hashed here with hashlib, the
commit asked of git here, the FFT library asked of :mod:`xrfgpu._backend` (and of a process run with
``XRFGPU_FFT_LIBRARY=scipy``), the precision read off :func:`xrfgpu.restore`'s own output.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import tifffile

import xrfgpu
from xrfgpu import phantom, provenance, stopping
from xrfgpu.cli import main
from xrfgpu.psf import gaussian_for_map

HXN_FE = Path(__file__).parent / "data" / "hxn_nanoparticles_xrf" / "SUM_maps_XRF_Fe_K.tiff"
SIGMA_PX = 2.0


@pytest.fixture(scope="module")
def counts():
    """A 56² Poisson count map of the grains-and-veins phantom blurred by σ 2 px (float32, as a TIFF holds it)."""
    observed, _, _ = phantom.observe((56, 56), SIGMA_PX, seed=5)
    return np.asarray(observed, dtype=np.float32)


def _record(output):
    sidecar = json.loads(Path(f"{output}.json").read_text())
    return sidecar["xrfgpu"]["provenance"]


def _restore_cli(tmp_path, image, *options, name="scan_Fe.npy", out="out.tif"):
    source = tmp_path / name
    if not source.exists():
        np.save(source, image)
    output = tmp_path / out
    assert main(["restore", str(source), "-o", str(output), "-q", *options]) == 0
    return tifffile.imread(output), _record(output)


# -- finding 1: the cross-validated stop's split ---------------------------------------------------------------


def test_restore_info_records_the_split_that_repeats_the_cv_count(counts):
    _, info = xrfgpu.restore(counts, sigma=SIGMA_PX, return_info=True)
    assert info["stop"] == "cv"
    h = gaussian_for_map(SIGMA_PX, counts.shape, dtype=np.float32)
    again = stopping.cv_iterations(counts, h, background=info["background"], seed=info["cv_split_seed"],
                                   holdout=info["cv_holdout_fraction"], max_iter=info["cv_max_iterations"],
                                   accelerate=info["accelerate"])
    assert again == info["cv_iterations"] == info["iterations"]
    # the count is the split's: another seed gives another count on this map (why the seed is recorded)
    others = {stopping.cv_iterations(counts, h, background=info["background"], seed=seed, accelerate=True)
              for seed in (1, 2, 3)}
    assert others - {info["cv_iterations"]}
    # a fixed count draws no split, and records none
    _, fixed = xrfgpu.restore(counts, sigma=SIGMA_PX, num_iter=5, return_info=True)
    assert fixed["stop"] == "fixed" and fixed["accelerate"] is True
    assert not {"cv_split_seed", "cv_holdout_fraction", "cv_max_iterations"} & set(fixed)


@pytest.mark.parametrize("tile", [[], ["--tile", "32"]], ids=["whole map", "tiles"])
def test_cli_record_holds_the_split_and_accelerate_that_repeat_the_output(tmp_path, counts, tile):
    out, record = _restore_cli(tmp_path, counts, "--psf-sigma", f"{SIGMA_PX}px", *tile)
    entry = record["parameters"]["per_element"]["Fe"]
    assert entry["stop"] == "cv" and entry["accelerate"] is True
    h = gaussian_for_map(SIGMA_PX, counts.shape, dtype=np.float32)
    n = stopping.cv_iterations(counts, h, background=entry["background"], seed=entry["cv_split_seed"],
                               holdout=entry["cv_holdout_fraction"], max_iter=entry["cv_max_iterations"],
                               accelerate=entry["accelerate"])
    assert n == entry["cv_iterations"] == entry["iterations"]
    # the library rerun with the recorded values: the whole map to the bit, tiles to rounding (1e-4, the docs)
    again = xrfgpu.richardson_lucy(counts, h, num_iter=n, background=entry["background"],
                                   accelerate=entry["accelerate"])
    if tile:
        assert np.max(np.abs(out - again)) <= 1e-4 * np.max(np.abs(again))
    else:
        assert np.array_equal(out, again)
    other = xrfgpu.richardson_lucy(counts, h, num_iter=n, background=entry["background"],
                                   accelerate=not entry["accelerate"])
    assert np.max(np.abs(out - other)) > 1e-3 * np.max(np.abs(out))  # guessing accelerate wrong shows


# -- finding 2: accelerate of every RL run ----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::xrfgpu.psf.blind_sigma.SigmaUncertainWarning")  # the small map's blind σ
def test_blind_rl_records_that_it_runs_unaccelerated(counts):
    _, info = xrfgpu.restore(counts, method="blind-rl", num_iter=2, return_info=True)
    assert info["accelerate"] is False  # xrfgpu.richardson_lucy's default, which blind_rl runs
    _, info = xrfgpu.restore(counts, method="blind-rl", num_iter=2, accelerate=True, return_info=True)
    assert info["accelerate"] is True


@pytest.mark.slow
def test_joint_records_accelerate_split_dtype_and_honest_timings(tmp_path):
    scene = phantom.grains_and_veins((90, 90), seed=1)
    folder = tmp_path / "scans"
    folder.mkdir()
    for k, name in enumerate(("Fe", "Ca")):
        observed, _, _ = phantom.observe((44, 44), SIGMA_PX, seed=k, scene=scene)
        np.save(folder / f"scan_{name}.npy", np.asarray(observed, dtype=np.float32))
    output = tmp_path / "joint.npz"
    assert main(["restore", str(folder), "-o", str(output), "-q", "--psf-sigma", f"{SIGMA_PX}px", "--joint"]) == 0
    record = _record(output)
    joint = record["parameters"]["joint"]
    per = record["parameters"]["per_element"]
    for name, entry in per.items():
        # the guide (and a map restored alone) runs accelerated RL; a guided map the joint prior's plain EM
        assert entry["accelerate"] is (entry["role"] != "guided"), name
    assert per[joint["guide"]]["accelerate"] is True
    assert joint["cv_split_seed"] == 0 and joint["cv_folds"] == 2 and joint["cv_holdout_fraction"] == 0.5
    assert joint["restoration_dtype"] == "float32"
    timings = record["timings_s"]
    assert set(timings) == {"preparation", "joint_restoration", "total"}  # no per-map time of the restoration
    assert set(timings["preparation"]) == set(per)
    assert timings["preparation"][joint["guide"]] < timings["joint_restoration"] <= timings["total"]


# -- finding 3: the mask file -----------------------------------------------------------------------------------


def test_mask_file_is_recorded_with_its_absolute_path_and_sha256(tmp_path, counts, monkeypatch):
    weights = np.ones(counts.shape, np.float32)
    weights[10, 12] = 0.0
    np.save(tmp_path / "mask.npy", weights)
    monkeypatch.chdir(tmp_path)  # the mask typed as a relative path
    _, record = _restore_cli(tmp_path, counts, "--psf-sigma", f"{SIGMA_PX}px", "--iterations", "3",
                             "--mask", "mask.npy")
    expected = hashlib.sha256((tmp_path / "mask.npy").read_bytes()).hexdigest()
    assert record["parameters"]["mask"] == "mask.npy"
    assert record["parameters"]["mask_file"] == {"path": str((tmp_path / "mask.npy").resolve()), "sha256": expected}


# -- finding 4: the FFT library ---------------------------------------------------------------------------------


def test_record_names_the_fft_library_and_its_version(tmp_path, counts):
    from xrfgpu._backend import fft_library

    _, record = _restore_cli(tmp_path, counts, "--psf-sigma", f"{SIGMA_PX}px", "--iterations", "2")
    versions = record["versions"]
    assert versions["fft_library"] == fft_library()
    if fft_library() == "ducc0":
        assert versions["ducc0"] == metadata.version("ducc0")
    else:
        assert "ducc0" not in versions


@pytest.mark.slow
def test_record_follows_the_fft_library_chosen_by_the_environment(tmp_path, counts):
    source = tmp_path / "scan_Fe.npy"
    np.save(source, counts)
    output = tmp_path / "scipy.tif"
    env = {**os.environ, "XRFGPU_FFT_LIBRARY": "scipy"}
    subprocess.run([sys.executable, "-m", "xrfgpu", "restore", str(source), "-o", str(output), "-q",
                    "--psf-sigma", f"{SIGMA_PX}px", "--iterations", "2"], check=True, env=env, timeout=300)
    versions = _record(output)["versions"]
    assert versions["fft_library"] == "scipy" and "ducc0" not in versions


# -- finding 5: options the method does not use -----------------------------------------------------------------


REFUSED = [("wiener", "--lam", "5"), ("wiener", "--iterations", "7"), ("wiener", "--kernel-size", "9"),
           ("tikhonov", "--iterations", "7"), ("tikhonov", "--balance", "0.1"), ("rl", "--balance", "0.1"),
           ("rl", "--lam", "5"), ("rl", "--kernel-size", "9"), ("fista", "--balance", "0.1"),
           ("blind", "--iterations", "3"), ("blind-rl", "--lam", "5")]
TAKEN = [("wiener", ["--balance", "0.1"]), ("tikhonov", ["--lam", "0.5"]),
         ("fista", ["--lam", "0.5", "--iterations", "3"])]


def test_method_options_are_refused_where_unused_and_taken_where_used(tmp_path, counts, capsys):
    source = tmp_path / "scan_Fe.npy"
    np.save(source, counts)
    for method, option, value in REFUSED:
        psf = [] if method.startswith("blind") else ["--psf-sigma", f"{SIGMA_PX}px"]
        status = main(["restore", str(source), "-o", str(tmp_path / "out.tif"), "-q", "--method", method, *psf,
                       option, value])
        error = [line for line in capsys.readouterr().err.splitlines() if line.startswith("Error:")]
        assert status == 2 and len(error) == 1, (method, option)
        assert option in error[0] and f"--method {method}" in error[0]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["scan_Fe.npy"]  # nothing written
    status = main(["restore", str(source), "-o", str(tmp_path / "out.tif"), "-q", "--psf-sigma", "2px",
                   "--elongated-spot"])  # it measures the spot of --psf-auto only
    assert status == 2 and "--elongated-spot" in capsys.readouterr().err
    for method, options in TAKEN:  # options that do change the output are still taken
        with_them, _ = _restore_cli(tmp_path, counts, "--psf-sigma", f"{SIGMA_PX}px", "--method", method,
                                    *options, out=f"{method}_with.tif")
        without, _ = _restore_cli(tmp_path, counts, "--psf-sigma", f"{SIGMA_PX}px", "--method", method,
                                  out=f"{method}_without.tif")
        assert not np.array_equal(with_them, without), method


# -- finding 6: the commit xrfgpu runs from ---------------------------------------------------------------------


def _git(folder, *args):
    return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=30)


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_record_holds_the_commit_of_the_checkout_xrfgpu_runs_from(tmp_path, counts):
    package = Path(xrfgpu.__file__).resolve().parent
    _, record = _restore_cli(tmp_path, counts, "--psf-sigma", f"{SIGMA_PX}px", "--iterations", "2")
    tracked = _git(package, "ls-files", "--", "__init__.py")
    if tracked.returncode != 0 or not tracked.stdout.strip():
        assert record["xrfgpu_git_commit"] is None and record["xrfgpu_files_differ_from_commit"] is None
        return
    assert record["xrfgpu_git_commit"] == _git(package, "rev-parse", "HEAD").stdout.strip()
    changes = _git(package.parent, "status", "--porcelain", "--", "xrfgpu", "kernels").stdout.strip()
    assert record["xrfgpu_files_differ_from_commit"] is bool(changes)


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_state_of_a_checkout_a_copy_and_an_ignored_install(tmp_path):
    repo = tmp_path / "repo"
    (repo / "xrfgpu").mkdir(parents=True)
    (repo / "kernels").mkdir()
    (repo / "xrfgpu" / "__init__.py").write_text("")
    (repo / "kernels" / "k.cu").write_text("")
    (repo / ".gitignore").write_text("venv/\n")
    (repo / "venv" / "xrfgpu").mkdir(parents=True)
    (repo / "venv" / "xrfgpu" / "__init__.py").write_text("")
    assert _git(repo, "init", "-q").returncode == 0
    _git(repo, "add", ".")
    assert _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "c").returncode == 0
    head = _git(repo, "rev-parse", "HEAD").stdout.strip()
    assert provenance.xrfgpu_git_state(repo / "xrfgpu") == {"commit": head, "files_differ": False}
    (repo / "kernels" / "k.cu").write_text("changed")
    provenance._git_state.cache_clear()  # asked once per process; ask again after the change
    assert provenance.xrfgpu_git_state(repo / "xrfgpu") == {"commit": head, "files_differ": True}
    # a package installed in an ignored folder of someone's checkout, and a copy outside any: no commit
    assert provenance.xrfgpu_git_state(repo / "venv" / "xrfgpu") is None
    copy = tmp_path / "copy" / "xrfgpu"
    copy.mkdir(parents=True)
    assert provenance.xrfgpu_git_state(copy) is None


def test_git_state_is_none_without_git(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no git on the path
    provenance._git_state.cache_clear()
    try:
        assert provenance.xrfgpu_git_state(Path(xrfgpu.__file__).resolve().parent) is None
    finally:
        provenance._git_state.cache_clear()


# -- finding 8: the working precision ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_record_holds_the_precision_the_library_restores_in(tmp_path, counts, dtype):
    image = counts.astype(dtype)
    library, info = xrfgpu.restore(image, sigma=SIGMA_PX, num_iter=2, return_info=True)
    assert info["restoration_dtype"] == str(library.dtype) == np.dtype(dtype).name
    for tile in ([], ["--tile", "32"]):
        _, record = _restore_cli(tmp_path, image, "--psf-sigma", f"{SIGMA_PX}px", "--iterations", "2", *tile,
                                 name=f"scan_{np.dtype(dtype).name}_Fe.npy", out=f"out{len(tile)}.tif")
        (entry,) = record["parameters"]["per_element"].values()
        assert entry["restoration_dtype"] == str(library.dtype)


# -- finding 9: a hot pixel far above the rest ------------------------------------------------------------------


@pytest.fixture(scope="module")
def hot_fe():
    fe = tifffile.imread(HXN_FE)
    fe[80, 80] = 1e8
    return fe


def test_a_hot_pixel_beyond_the_split_is_named_with_the_ways_on(hot_fe):
    with pytest.raises(ValueError) as caught:
        xrfgpu.restore(hot_fe, sigma=1.0)
    message = str(caught.value)
    assert "(row 80, column 80)" in message and "1e+08" in message
    assert "mask=" in message and "num_iter=" in message


def test_the_cli_names_the_hot_pixel_and_its_own_options(tmp_path, hot_fe, capsys):
    source = tmp_path / "hot_Fe.tif"
    tifffile.imwrite(source, hot_fe)
    status = main(["restore", str(source), "-o", str(tmp_path / "out.tif"), "-q", "--psf-sigma", "1px"])
    error = capsys.readouterr().err.strip()
    assert status == 2 and len(error.splitlines()) == 1
    assert "(row 80, column 80)" in error and "--mask" in error and "--iterations" in error
    assert "mask=" not in error and "num_iter=" not in error


def test_cv_iterations_itself_names_a_count_beyond_the_split():
    # called directly (and by the joint restoration) it answered "needs a map of non-negative integer counts"
    counts = np.random.default_rng(0).poisson(50.0, (32, 32)).astype(np.float64)
    counts[3, 4] = 2.0**41
    with pytest.raises(ValueError, match=r"cannot split this map: pixel \(row 3, column 4\) holds 2\.2e\+12 counts"):
        stopping.cv_iterations(counts, gaussian_for_map(1.0, counts.shape))
    counts[3, 4] = 2.0**40  # the largest count a split takes: no refusal from this check
    stopping.refuse_counts_beyond_split(counts)


@pytest.fixture(scope="module")
def hot_fe_and_cr():
    """The HXN Cr and Fe maps' 64² crops, Fe with one pixel of 10⁸ at (40, 40)."""
    cr = tifffile.imread(HXN_FE.with_name("SUM_maps_XRF_Cr_K.tiff"))[40:104, 40:104]
    fe = tifffile.imread(HXN_FE)[40:104, 40:104].copy()
    fe[40, 40] = 1e8
    return np.stack([cr, fe])


@pytest.mark.slow
def test_the_joint_restoration_names_the_hot_pixel_and_its_map(hot_fe_and_cr):
    psf = gaussian_for_map(1.0, (9, 9))
    with pytest.raises(ValueError) as caught:
        xrfgpu.restore_stack(hot_fe_and_cr, [psf, psf], "rl", joint=True)
    message = str(caught.value)
    assert "map 1 of the stack: pixel (row 40, column 40) holds 1e+08 in the map's units" in message
    assert "mask=" in message and "weight=" in message
    # the way on it names works: the pixel marked missing, the joint restoration runs and fills it from its
    # neighbours, below the largest restored value elsewhere
    mask = np.ones(hot_fe_and_cr.shape, dtype=np.float32)
    mask[1, 40, 40] = 0.0
    restored = np.asarray(xrfgpu.restore_stack(hot_fe_and_cr, [psf, psf], "rl", joint=True, mask=mask))
    assert np.all(np.isfinite(restored))
    others = np.delete(restored[1].ravel(), 40 * 64 + 40)
    assert 0.0 <= restored[1, 40, 40] <= others.max()


def test_the_cli_joint_names_the_hot_map_by_its_element(tmp_path, hot_fe_and_cr, capsys):
    np.savez(tmp_path / "scan.npz", Cr=hot_fe_and_cr[0], Fe=hot_fe_and_cr[1])
    status = main(["restore", str(tmp_path / "scan.npz"), "--joint", "-o", str(tmp_path / "out.npz"), "-q",
                   "--psf-sigma", "1px"])
    error = capsys.readouterr().err.strip()
    assert status == 2 and len(error.splitlines()) == 1
    # the map named by its element (not the last map read, Cr, nor the library's index); the one way on the
    # command line has (--joint cross-validates every weight, whatever --iterations says)
    assert "cannot split map 'Fe': pixel (row 40, column 40)" in error and "map 'Cr'" not in error
    assert "--mask" in error and "num_iter=" not in error and "weight=" not in error
    assert not (tmp_path / "out.npz").exists()


def test_psf_file_is_recorded_with_its_absolute_path_and_sha256(tmp_path, counts, monkeypatch):
    # left alone by the pass's fixes, done after: --psf-file was recorded by the path typed only
    (tmp_path / "psf.toml").write_text('[lines]\n"Fe-Ka" = 20.0\n')
    monkeypatch.chdir(tmp_path)
    _, record = _restore_cli(tmp_path, counts, "--psf-file", "psf.toml", "--pixel-size", "10um", "--iterations", "3")
    expected = hashlib.sha256((tmp_path / "psf.toml").read_bytes()).hexdigest()
    assert record["parameters"]["psf_file"] == {"path": str((tmp_path / "psf.toml").resolve()), "sha256": expected}
    _, record = _restore_cli(tmp_path, counts, "--psf-sigma", f"{SIGMA_PX}px", "--iterations", "3", out="o2.tif")
    assert record["parameters"]["psf_file"] is None


def test_a_scheduler_without_tiles_is_refused(tmp_path, counts, capsys):
    # --scheduler was accepted without --tile and the whole map ran on this machine
    np.save(tmp_path / "scan_Fe.npy", counts)
    code = main(["restore", str(tmp_path / "scan_Fe.npy"), "-o", str(tmp_path / "o.tif"), "--psf-sigma", "2px",
                 "--scheduler", "tcp://127.0.0.1:8786"])
    assert code == 2
    assert "--scheduler runs the tiles of --tile" in capsys.readouterr().err
    assert not (tmp_path / "o.tif").exists()
