"""The xrfgpu command line: restore/psf/compare/info on files the tests create with tifffile and h5py.

The scenes are the paper's skarn set-up: Fe/Ca/Si maps blurred by Gaussian
spots of σ = 40/50/80 µm at 10 µm pixels (σ = 4/5/8 px), cut from scenes
larger than the scan (real borders), with Poisson counts. "Sharper" is
measured against the known truth with an independent, affine-invariant
score (Pearson correlation, computed here with NumPy).
"""

import hashlib
import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
import tifffile

from xrfgpu import phantom
from xrfgpu.cli import load_psf_table, main
from xrfgpu.psf import PSFModel, gaussian

SHAPE = (80, 96)
PIXEL_UM = 10.0
SIGMA_UM = {"Fe_K": 40.0, "Ca_K": 50.0, "Si_K": 80.0}


def _digest(path):
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


@pytest.fixture(scope="module")
def skarn():
    """(observed counts, truth) per element: blurred windows of larger scenes + Poisson noise."""
    rng = np.random.default_rng(7)
    observed, truth = {}, {}
    for i, (name, s_um) in enumerate(SIGMA_UM.items()):
        h = gaussian(None, s_um / PIXEL_UM)
        k = h.shape[0]
        scene = phantom.grains_and_veins((SHAPE[0] + k + 10, SHAPE[1] + k + 10), seed=20 + i)
        blurred, t = phantom.blurred_window(scene, h, SHAPE)
        observed[name] = rng.poisson(600.0 * blurred + 40.0).astype(np.float32)
        truth[name] = 600.0 * t
    return observed, truth


@pytest.fixture
def tiff_stack(tmp_path, skarn):
    observed, _ = skarn
    path = tmp_path / "skarn.tif"
    tifffile.imwrite(path, np.stack(list(observed.values())), imagej=True,
                     metadata={"axes": "ZYX", "Labels": list(observed)})
    return path


@pytest.fixture
def pyxrf_file(tmp_path, skarn):
    observed, _ = skarn
    path = tmp_path / "scan2D_skarn.h5"
    with h5py.File(path, "w") as f:
        f["xrfmap/detsum/xrf_fit"] = np.stack(list(observed.values()))
        f["xrfmap/detsum/xrf_fit_name"] = np.array([n.encode() for n in observed])
        f["xrfmap/scalers/val"] = np.ones(SHAPE + (1,))
        f["xrfmap/scalers/name"] = np.array([b"i0"])
    return path


@pytest.fixture
def psf_toml(tmp_path):
    path = tmp_path / "psf.toml"
    path.write_text('[lines]\n"Fe-Ka" = 40.0\n"Ca-Ka" = "50um"\n"Si-Ka" = { sigma_um = 80.0, method = "dot" }\n')
    return path


def _pearson(a, b):
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def _assert_sharper(observed, restored, truth):
    for name in truth:
        before, after = _pearson(observed[name], truth[name]), _pearson(restored[name], truth[name])
        assert after > before + 0.02, f"{name}: r {before:.3f} -> {after:.3f}"


def test_restore_tiff_stack_per_element_psf(tmp_path, tiff_stack, psf_toml, skarn, capsys):
    observed, truth = skarn
    before = _digest(tiff_stack)
    out = tmp_path / "restored.tif"
    rc = main(["restore", str(tiff_stack), "-o", str(out), "--psf-file", str(psf_toml), "--pixel-size", "10um",
               "--json"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["elements"] == list(SIGMA_UM)
    assert {k: v["sigma_um"] for k, v in summary["psf"].items()} == SIGMA_UM
    pages = list(tifffile.imread(out))  # what users do
    with tifffile.TiffFile(out) as tif:
        header = json.loads(tif.imagej_metadata["Info"])["xrfgpu"]
        assert tif.imagej_metadata["Labels"] == list(SIGMA_UM)
    assert [p.shape for p in pages] == [SHAPE] * 3
    assert header["elements"] == list(SIGMA_UM) and header["pixel_size_um"] == PIXEL_UM
    prov = header["provenance"]
    assert prov["method"] == "rl" and prov["xrfgpu_version"]
    assert prov["input"]["sha256"] == before
    assert prov["psf"]["Si_K"]["sigma_px"] == pytest.approx(8.0)
    assert prov["psf"]["Si_K"]["source"]["line"] == "Si-Ka" and prov["psf"]["Si_K"]["source"]["method"] == "dot"
    fe = prov["parameters"]["per_element"]["Fe_K"]
    assert fe["stop"] == "cv" and fe["iterations"] >= 1  # count maps: cross-validated stopping
    assert prov["backend"]["device"] == "cpu"
    sidecar = json.loads((tmp_path / "restored.tif.json").read_text())
    assert sidecar["xrfgpu"]["provenance"]["input"]["sha256"] == before
    _assert_sharper(observed, dict(zip(SIGMA_UM, pages)), truth)
    assert _digest(tiff_stack) == before


def test_restore_pyxrf_hdf5_keeps_layout(tmp_path, pyxrf_file, skarn):
    observed, truth = skarn
    before = _digest(pyxrf_file)
    out = tmp_path / "restored.h5"
    rc = main(["restore", str(pyxrf_file), "-o", str(out), "--psf-sigma", "Fe=40um,Ca=50um,Si=0.08mm",
               "--pixel-size", "10 µm", "--quiet"])
    assert rc == 0
    with h5py.File(out, "r") as f:
        names = [n.decode() for n in f["xrfmap/detsum/xrf_fit_name"][()]]
        maps = f["xrfmap/detsum/xrf_fit"][()]
        prov = json.loads(f["xrfgpu"].attrs["provenance"])
        assert f["xrfgpu"].attrs["pixel_size_um"] == PIXEL_UM
        assert "i0" in f["xrfgpu/scalers"]
    assert names == list(SIGMA_UM) and maps.shape == (3,) + SHAPE
    assert prov["psf"]["Si_K"]["sigma_um"] == pytest.approx(80.0)
    assert prov["input"]["sha256"] == before
    _assert_sharper(observed, dict(zip(names, maps)), truth)
    assert _digest(pyxrf_file) == before


def test_selected_elements_other_methods_and_folder_output(tmp_path, tiff_stack, skarn):
    observed, truth = skarn
    out = tmp_path / "wiener_out"
    assert main(["restore", str(tiff_stack), "-o", str(out), "--method", "wiener", "--psf-sigma", "40um",
                 "--pixel-size", "10um", "--elements", "Fe-Ka", "--background", "40", "-q"]) == 0
    files = sorted(p.name for p in out.iterdir())
    assert files == ["Fe_K.csv", "xrfgpu.json"]
    restored = np.loadtxt(out / "Fe_K.csv", delimiter=",")
    assert restored.shape == SHAPE
    _assert_sharper({"Fe_K": observed["Fe_K"]}, {"Fe_K": restored}, {"Fe_K": truth["Fe_K"]})
    prov = json.loads((out / "xrfgpu.json").read_text())["xrfgpu"]["provenance"]
    assert prov["parameters"]["per_element"]["Fe_K"]["background"] == 40.0


def test_psf_model_file_interpolates_missing_lines(tmp_path, tiff_stack, capsys):
    model_file = tmp_path / "model.toml"
    PSFModel({"Fe-Ka": 40.0, "Si-Ka": 80.0}).save(model_file)
    rc = main(["restore", str(tiff_stack), "-o", str(tmp_path / "o.npz"), "--psf-file", str(model_file),
               "--pixel-size", "10um", "--iterations", "3", "--json"])
    assert rc == 0
    psf = json.loads(capsys.readouterr().out)["psf"]
    assert psf["Fe_K"]["sigma_um"] == 40.0 and psf["Si_K"]["sigma_um"] == 80.0
    # Ca-Kα (3.69 keV) lies between Si-Kα (1.74 keV) and Fe-Kα (6.40 keV): linear in energy
    expected = 80.0 + (40.0 - 80.0) * (3.6917 - 1.7398) / (6.4039 - 1.7398)
    assert psf["Ca_K"]["sigma_um"] == pytest.approx(expected, abs=0.05)
    assert "interpolated" in psf["Ca_K"]["source"]


def test_existing_output_needs_overwrite(tmp_path, tiff_stack, capsys):
    out = tmp_path / "o.npz"
    args = ["restore", str(tiff_stack), "-o", str(out), "--psf-sigma", "40um", "--pixel-size", "10um",
            "--iterations", "2", "-q"]
    assert main(args) == 0
    stamp = _digest(out)
    assert main(args) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert _digest(out) == stamp
    assert main(args + ["--overwrite"]) == 0


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--pixel-size", "10 furlongs", "--psf-sigma", "40um"], "unknown unit 'furlongs'"),
        (["--pixel-size", "10", "--psf-sigma", "40um"], "has no unit"),
        (["--psf-sigma", "40um"], "pixel size is unknown"),
        (["--pixel-size", "10um", "--psf-sigma", "40um", "--elements", "Zn-Ka"], "'Zn-Ka' not found"),
        (["--pixel-size", "10um"], "give the PSF"),
        (["--pixel-size", "10um", "--psf-sigma", "40um", "--psf-auto"], "only one of"),
        (["--pixel-size", "10um", "--psf-sigma", "40um", "--background", "lots"], "neither 'auto' nor a number"),
        (["--pixel-size", "10um", "--psf-sigma", "40um", "--method", "magic"], "magic"),
        (["--pixel-size", "10um", "--psf-sigma", "0.01um"], "too small"),
        (["--pixel-size", "10um", "--psf-file", "nope.toml"], "nope.toml"),
    ],
)
def test_bad_input_exits_nonzero_naming_the_problem(tmp_path, tiff_stack, capsys, extra, message):
    before = _digest(tiff_stack)
    out = tmp_path / "o.tif"
    rc = main(["restore", str(tiff_stack), "-o", str(out), *extra])
    assert rc != 0
    assert message in capsys.readouterr().err
    assert not out.exists()
    assert _digest(tiff_stack) == before


def test_bad_files_exit_nonzero(tmp_path, tiff_stack, capsys):
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"\x89HDF\r\n\x1a\nnot really")
    assert main(["restore", str(junk), "-o", str(tmp_path / "o.tif"), "--psf-sigma", "4px", "--pixel-size", "1um"]) == 2
    assert "junk.h5" in capsys.readouterr().err
    assert main(["restore", str(tmp_path / "missing.tif"), "-o", str(tmp_path / "o.tif"), "--psf-sigma", "40um",
                 "--pixel-size", "10um"]) == 2
    err = capsys.readouterr().err
    assert "missing.tif" in err and "no such file" in err
    assert main(["restore", str(tiff_stack), "-o", str(tiff_stack), "--psf-sigma", "40um", "--pixel-size", "10um",
                 "--overwrite"]) == 2
    assert "is the input file" in capsys.readouterr().err
    bad_psf = tmp_path / "bad.toml"
    bad_psf.write_text('[lines]\n"Fe-Ka" = 40.0\n')
    assert main(["restore", str(tiff_stack), "-o", str(tmp_path / "o.tif"), "--psf-file", str(bad_psf),
                 "--pixel-size", "10um"]) == 2  # refused input (left-alone-3: was 1)
    err = capsys.readouterr().err
    assert "no σ for element 'Ca_K'" in err and "bad.toml" in err


@pytest.mark.slow
def test_psf_dot_and_edge_measure_the_true_sigma(tmp_path, capsys):
    rng = np.random.default_rng(3)
    sigma_px, pixel = 3.0, 5.0
    yy, xx = np.mgrid[:41, :45]
    dot = 4000.0 * np.exp(-((xx - 22.3) ** 2 + (yy - 19.6) ** 2) / (2 * sigma_px**2)) / (2 * np.pi * sigma_px**2) + 20
    tifffile.imwrite(tmp_path / "dot.tif", rng.poisson(dot).astype(np.float32))
    out = tmp_path / "cr.toml"
    rc = main(["psf", "dot", str(tmp_path / "dot.tif"), "--pixel-size", "5um", "--line", "Cr-Ka", "-o", str(out),
               "--figure", str(tmp_path / "dot.png"), "--json"])
    assert rc == 0
    result = json.loads(capsys.readouterr().out)
    assert result["sigma_um"] == pytest.approx(sigma_px * pixel, rel=0.05)
    assert result["sigma_stderr_um"] > 0
    lines, table_pixel, model = load_psf_table(out)
    assert lines["Cr-Ka"]["sigma_um"] == pytest.approx(result["sigma_um"]) and table_pixel == pixel
    assert lines["Cr-Ka"]["method"] == "dot" and lines["Cr-Ka"]["stderr_um"] == pytest.approx(result["sigma_stderr_um"])
    assert PSFModel.load(out).sigma_um("Cr-Ka") == pytest.approx(result["sigma_um"])  # the library reads it too
    assert (tmp_path / "dot.png").stat().st_size > 1000

    from scipy.special import erf

    edge = 20 + 300 * 0.5 * (1 + erf((xx - 21.7) / (np.sqrt(2) * sigma_px)))
    np.save(tmp_path / "edge.npy", rng.poisson(edge).astype(np.float64))
    args = ["psf", "edge", str(tmp_path / "edge.npy"), "--pixel-size", "5um", "-o", str(tmp_path / "e.toml"),
            "--figure", str(tmp_path / "edge.png")]
    assert main(args) == 2
    assert "--line" in capsys.readouterr().err  # 'edge' is not an X-ray line
    rc = main(args + ["--line", "Fe_K"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "σ =" in text and "FWHM" in text
    lines, _, _ = load_psf_table(tmp_path / "e.toml")
    assert lines["Fe-Ka"]["sigma_um"] == pytest.approx(sigma_px * pixel, rel=0.05)


@pytest.mark.slow
def test_compare_reports_truth_metrics_and_writes_figure(tmp_path, tiff_stack, skarn, capsys):
    observed, truth = skarn
    np.savez(tmp_path / "truth.npz", **truth)
    out = tmp_path / "r.tif"
    assert main(["restore", str(tiff_stack), "-o", str(out), "--psf-sigma", "Fe=40um,Ca=50um,Si=80um",
                 "--pixel-size", "10um", "-q"]) == 0
    rc = main(["compare", str(tiff_stack), str(out), "--truth", str(tmp_path / "truth.npz"), "--json",
               "-o", str(tmp_path / "cmp.png")])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    for name in SIGMA_UM:
        m = report["metrics"][name]
        assert m["pearson_r_restored"] > m["pearson_r_input"]
        assert m["pearson_r_input"] == pytest.approx(_pearson(observed[name], truth[name]), abs=1e-6)
    assert (tmp_path / "cmp.png").stat().st_size > 1000


def test_info_and_version(capsys):
    assert main(["info", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["versions"]["numpy"] == np.__version__
    assert "dask" in data["backends"] and "cupy" in data["backends"]
    assert main(["--version"]) == 0
    assert "xrfgpu" in capsys.readouterr().out
    assert main(["restore", "--help"]) == 0
    assert "--psf-sigma" in capsys.readouterr().out


@pytest.mark.slow
def test_console_script_in_subprocess(tmp_path, pyxrf_file, psf_toml, skarn):
    """Smoke test of the installed entry point (python -m xrfgpu runs xrfgpu.cli:main)."""
    observed, truth = skarn
    before = _digest(pyxrf_file)
    out = tmp_path / "sub.h5"
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    proc = subprocess.run([sys.executable, "-m", "xrfgpu", "restore", str(pyxrf_file), "-o", str(out),
                           "--psf-file", str(psf_toml), "--pixel-size", "10um", "--json"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["elements"] == list(SIGMA_UM) and summary["shape"] == list(SHAPE)
    with h5py.File(out, "r") as f:
        restored = dict(zip(summary["elements"], f["xrfgpu/maps"][()]))
    _assert_sharper(observed, restored, truth)
    assert _digest(pyxrf_file) == before
    bad = subprocess.run([sys.executable, "-m", "xrfgpu", "restore", str(pyxrf_file), "-o", str(tmp_path / "x.h5"),
                          "--psf-sigma", "40", "--pixel-size", "10um"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "has no unit" in bad.stderr
