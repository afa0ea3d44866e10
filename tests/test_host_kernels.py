"""The host dTV engine (``kernels/host_dtv.cpp`` built by the host C++ compiler, :mod:`xrfgpu._host_kernels`).

:func:`xrfgpu._elementwise.dtv_denoise_numpy` runs the engine when the library is available and the
engine on (the default; ``XRFGPU_HOST_KERNELS=0`` turns it off). The references,
independent of that build:

* the array-API loop of the dual iterations (``joint._project``, ``joint._divergence``,
  ``joint._gradient``, ``_elementwise.dtv_dual_step``) run on ``array_api_strict``: equal bit for
  bit, a zero's sign included, at γ ≠ 0 (at γ = 0 equal in value: that loop projects with γ = 0,
  which may turn a −0 into +0);
* the NumPy code of the engine (the same call with the engine off): equal bit for bit, a zero's
  sign included, at every γ, with NaN, ∞ and −0 in the inputs;
* the fallbacks: the engine off, no compiler, a compiler that fails, a corrupt cache file;
* the build: no FMA instruction in the library (``-ffp-contract=off`` in every clone), and (slow) the
  baseline x86-64 code, which CPUs without AVX2 run, equal to the NumPy code too.

The library is built once (about 12 s) into the cache folder the engine uses (``XRFGPU_CACHE_DIR``,
else the user cache folder, never the repository), so later runs load it; the tests of the cache
logic build with a stand-in compiler (a script that copies that library) into folders under
``tmp_path``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_dtv_fused_kernels import GAMMA, _array_api_dual_iterations, _inputs

from xrfgpu import _elementwise as ew
from xrfgpu import _host_kernels as hk
from xrfgpu import joint as J

pytestmark = pytest.mark.skipif(hk.compiler() is None, reason="no host C++ compiler (g++) found")
DTYPES = [np.float32, np.float64]


@pytest.fixture(scope="module")
def built_cache():
    """The cache folder holding the host library (built there if it is not yet)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("XRFGPU_HOST_KERNELS", "1")
    mp.delenv("XRFGPU_HOST_CXX", raising=False)
    try:
        assert hk.library() is not None, hk.status()["reason"]
        return hk.cache_dir().parent
    finally:
        mp.undo()


@pytest.fixture(scope="module")
def built_library(built_cache):
    """The path of the host library in :func:`built_cache`."""
    mp = pytest.MonkeyPatch()
    mp.setenv("XRFGPU_CACHE_DIR", str(built_cache))
    mp.setenv("XRFGPU_HOST_KERNELS", "1")
    mp.delenv("XRFGPU_HOST_CXX", raising=False)
    try:
        hk.library()
        return Path(hk.status()["path"])
    finally:
        mp.undo()


@pytest.fixture
def copying_compiler(built_library, tmp_path):
    """A stand-in compiler: a script that answers ``--version`` and "builds" by copying the host library to
    its ``-o`` argument after ``XRFGPU_TEST_CXX_DELAY`` seconds, logging each build to ``calls``."""
    calls = tmp_path / "calls"
    script = tmp_path / "copying-cxx"
    script.write_text(f'''#!/bin/sh
if [ "$1" = "--version" ]; then echo "copying-cxx 1.0"; exit 0; fi
echo build >> "{calls}"
out=""
while [ $# -gt 0 ]; do if [ "$1" = "-o" ]; then out="$2"; fi; shift; done
sleep "${{XRFGPU_TEST_CXX_DELAY:-0}}"
cp "{built_library}" "$out"
''')
    script.chmod(0o755)
    return script, calls


@pytest.fixture
def host(built_cache, monkeypatch):
    """The host engine on (the module's cache); returns a list that gets, per call of the dTV engine with the
    host engine on, whether the host engine ran."""
    monkeypatch.setenv("XRFGPU_CACHE_DIR", str(built_cache))
    monkeypatch.setenv("XRFGPU_HOST_KERNELS", "1")
    monkeypatch.delenv("XRFGPU_HOST_CXX", raising=False)
    ran = []
    inner = ew._dtv_denoise_host

    def counted(*args):
        out = inner(*args)
        if os.environ.get("XRFGPU_HOST_KERNELS") != "0":  # not the reference runs with the engine off
            ran.append(out is not None)
        return out

    monkeypatch.setattr(ew, "_dtv_denoise_host", counted)
    return ran


def _engine(a, n_inner, gamma, active=None, **over):
    args = dict(a, **over)
    return ew.dtv_denoise_numpy(args["z"], args["lam_w"], args["xix"], args["xiy"], gamma, args["px"], args["py"],
                                args["step"], n_inner, rw=args["rw"], huber=args["huber"], active=active)


def _numpy_code(monkeypatch, *args, **kwargs):
    """The same call with the host engine off (today's NumPy code)."""
    with monkeypatch.context() as mp:
        mp.setenv("XRFGPU_HOST_KERNELS", "0")
        return _engine(*args, **kwargs)


def assert_bits(actual, expected, what):
    assert actual.dtype == expected.dtype, what
    np.testing.assert_array_equal(actual, expected, err_msg=what)
    np.testing.assert_array_equal(np.signbit(actual), np.signbit(expected), err_msg=f"{what}: sign")


def _flat(x, p):
    return x, p[0], p[1]


# -- the numbers ---------------------------------------------------------------------------------------------

LAYOUTS = [("shared", "scalar"), ("per-map", "per-map"), ("shared", "per-map")]
EXTRAS = [(False, False), (True, False), (False, True), (True, True)]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("field, params", LAYOUTS, ids=lambda v: v)
@pytest.mark.parametrize("rw, huber", EXTRAS, ids=["dtv", "reweighted", "huber", "reweighted-huber"])
@pytest.mark.parametrize("gamma", [GAMMA, 0.0])
def test_host_engine_equals_the_array_api_loop_and_the_numpy_code(host, monkeypatch, dtype, field, params, rw, huber,
                                                                   gamma):
    import array_api_strict

    a = _inputs((3, 9, 12), dtype, field=field, params=params, rw=rw, huber=huber, seed=3)
    got = _flat(*_engine(a, 5, gamma))
    assert host == [True]
    numpy_code = _flat(*_numpy_code(monkeypatch, a, 5, gamma))
    reference = _array_api_dual_iterations(array_api_strict, a, 5, gamma=gamma)
    for name, g, n, r in zip(("x", "px", "py"), got, numpy_code, reference):
        assert_bits(g, n, f"{name} against the NumPy code")
        if gamma:
            assert_bits(g, r, f"{name} against the array-API loop")
        else:  # the array-API loop projects with γ = 0, which may turn a −0 into +0
            np.testing.assert_array_equal(g, r, err_msg=name)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", [(2, 2, 2), (1, 2, 5), (2, 5, 2), (1, 3, 3), (2, 13, 37)], ids=str)
@pytest.mark.parametrize("gamma", [GAMMA, 0.0])
def test_small_and_odd_shapes(host, monkeypatch, dtype, shape, gamma):
    """Maps of two rows or columns (no inner row or column: only the peeled boundaries), and widths that are
    no multiple of a vector (the loops' scalar tails): equal to the NumPy code bit for bit."""
    a = _inputs(shape, dtype, field="per-map", params="per-map", rw=True, huber=True, seed=4)
    got = _flat(*_engine(a, 3, gamma))
    expected = _flat(*_numpy_code(monkeypatch, a, 3, gamma))
    assert host == [True]
    for name, g, e in zip(("x", "px", "py"), got, expected):
        assert_bits(g, e, name)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("block_maps, workers", [(1, 1), (2, 3), (8, 2)])
def test_blocks_threads_and_active_maps(host, monkeypatch, dtype, block_maps, workers):
    """Maps in blocks over threads, a subset of the maps iterated (two runs of consecutive maps and a negative
    index): the maps left out keep x = z and their p, the others equal the NumPy code bit for bit."""
    a = _inputs((6, 8, 7), dtype, field="per-map", params="per-map", rw=True, huber=True, seed=5)
    monkeypatch.setattr(ew, "DTV_BLOCK_PIXELS", block_maps * 8 * 7)
    monkeypatch.setattr(ew, "_dtv_workers", lambda: workers)
    active = [0, 1, 3, -2]  # maps 0, 1, 3, 4
    got = _flat(*_engine(a, 4, GAMMA, active=active))
    expected = _flat(*_numpy_code(monkeypatch, a, 4, GAMMA, active=active))
    assert host == [True]
    for name, g, e in zip(("x", "px", "py"), got, expected):
        assert_bits(g, e, name)
    left_out = [2, 5]
    assert_bits(got[0][left_out], a["z"][left_out], "x = z")
    assert_bits(got[1][left_out], a["px"][left_out], "p kept")


def test_views_strides_and_dtype_mixes(host, monkeypatch):
    """A crop of a canvas, a transposed field, float32 inputs with a float64 dual (working dtype float64),
    NumPy scalars that cast exactly, Python floats: the host engine runs and equals the NumPy code."""
    a = _inputs((2, 10, 9), np.float32, field="shared", params="per-map", rw=True, huber=True, seed=6)
    canvas = np.zeros((2, 14, 12), np.float32)
    canvas[:, 2:12, 1:10] = a["z"]
    xi_t = np.ascontiguousarray(a["xix"].T).T
    cases = {
        "views": dict(z=canvas[:, 2:12, 1:10], xix=xi_t),
        "float64 dual": dict(px=a["px"].astype(np.float64), py=a["py"].astype(np.float64)),
        "python floats": dict(step=0.0625, huber=0.5),
        "numpy float32 scalars": dict(step=np.float32(0.0625)),
    }
    for what, over in cases.items():
        got = _flat(*_engine(a, 3, np.float32(GAMMA) if "numpy" in what else GAMMA, **over))
        expected = _flat(*_numpy_code(monkeypatch, a, 3, np.float32(GAMMA) if "numpy" in what else GAMMA, **over))
        for name, g, e in zip(("x", "px", "py"), got, expected):
            assert_bits(g, e, f"{what}: {name}")
    assert host == [True] * len(cases)


def test_what_the_kernels_do_not_take_runs_the_numpy_code(host, monkeypatch):
    """A float64 operand with float32 maps (the ufuncs compute it in float64 and round twice), a float64 NumPy
    γ, a step per pixel, a map of one column: the NumPy code runs (same result as with the engine off)."""
    a = _inputs((2, 6, 5), np.float32, field="shared", params="per-map", rw=True, huber=False, seed=7)
    cases = {
        "float64 λw": (dict(lam_w=a["lam_w"].astype(np.float64)), GAMMA),
        "float64 γ": ({}, np.float64(GAMMA)),
        "step per pixel": (dict(step=np.full((2, 6, 5), 0.1, np.float32)), GAMMA),
    }
    for what, (over, gamma) in cases.items():
        got = _flat(*_engine(a, 3, gamma, **over))
        expected = _flat(*_numpy_code(monkeypatch, a, 3, gamma, **over))
        for name, g, e in zip(("x", "px", "py"), got, expected):
            assert_bits(g, e, f"{what}: {name}")
    assert host == [False] * len(cases)
    one_column = _inputs((2, 6, 1), np.float32, field="shared", params="per-map", rw=False, huber=False)
    with pytest.raises(IndexError):  # as the NumPy code always has
        _engine(one_column, 2, GAMMA)


@pytest.mark.parametrize("case", ["nan-in-z", "inf-in-z", "negative-zero-dual", "nan-field"])
@pytest.mark.parametrize("gamma", [GAMMA, 0.0])
def test_edge_values_equal_the_numpy_code(host, monkeypatch, case, gamma):
    """NaN and ∞ in the EM image, −0 in the warm start, NaN in the field: the engine runs and its result equals
    the NumPy code's, signs of zeros included (at γ = 0 both skip the projection)."""
    a = _inputs((2, 7, 8), np.float32, field="shared", params="per-map", rw=True, huber=True, seed=8)
    if case == "nan-in-z":
        a["z"][0, 3, 4] = np.nan
    elif case == "inf-in-z":
        a["z"][1, 2, 2] = np.inf
    elif case == "negative-zero-dual":
        a["px"][0, 1:3, 1:3] = -0.0
        a["py"][0, 4, :] = -0.0
    else:
        a["xix"][2, 3] = np.nan
    with np.errstate(invalid="ignore", over="ignore"):  # the NumPy code meets NaN and ∞ on the way
        got = _flat(*_engine(a, 4, gamma))
        expected = _flat(*_numpy_code(monkeypatch, a, 4, gamma))
    for name, g, e in zip(("x", "px", "py"), got, expected):
        assert_bits(g, e, name)
    assert host == [True], host


def test_joint_restoration_identical_with_and_without_the_host_engine(host, monkeypatch):
    """``joint_richardson_lucy`` (guide's EM-TV at γ = 0, cross-validation, reweighting): the same restored
    stack and record with the host engine as with the NumPy code."""
    from test_dtv_fused_kernels import _two_maps

    stack, psfs = _two_maps(n=32)

    def run():
        return J.joint_richardson_lucy(stack, psfs, background=5.0, max_iter=8, reweight_every=4,
                                       return_info=True)

    out, info = run()
    assert host and all(host), host
    monkeypatch.setenv("XRFGPU_HOST_KERNELS", "0")
    ref, ref_info = run()
    np.testing.assert_array_equal(out, ref)
    assert info["per_map"] == ref_info["per_map"]


# -- the build, the cache and the fallbacks ------------------------------------------------------------------


def test_engine_off_and_missing_compilers(monkeypatch, tmp_path, built_cache):
    monkeypatch.setenv("XRFGPU_CACHE_DIR", str(built_cache))
    monkeypatch.delenv("XRFGPU_HOST_KERNELS", raising=False)
    monkeypatch.delenv("XRFGPU_HOST_CXX", raising=False)
    assert hk.DEFAULT_ON  # on by default (measured faster: docs/performance.md, "Host kernels")
    assert hk.library() is not None and hk.status()["state"] == "loaded"
    monkeypatch.setenv("XRFGPU_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("XRFGPU_HOST_KERNELS", "0")
    assert hk.library() is None
    assert hk.status()["state"] == "off"
    monkeypatch.setenv("XRFGPU_HOST_KERNELS", "1")
    monkeypatch.setenv("XRFGPU_HOST_CXX", str(tmp_path / "no-such-compiler"))
    assert hk.library() is None
    assert "not found" in hk.status()["reason"]
    monkeypatch.delenv("XRFGPU_HOST_CXX")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert hk.library() is None
    assert hk.status()["state"] == "unavailable" and "no host C++ compiler" in hk.status()["reason"]
    assert not any(tmp_path.iterdir())  # nothing was written
    a = _inputs((2, 5, 6), np.float64, field="shared", params="per-map", rw=False, huber=False)
    x, _ = _engine(a, 2, GAMMA)  # the NumPy code ran
    monkeypatch.setenv("XRFGPU_HOST_KERNELS", "0")
    np.testing.assert_array_equal(x, _engine(a, 2, GAMMA)[0])


@pytest.mark.skipif(sys.platform == "win32", reason="a shell script as the compiler")
def test_a_failing_compiler_is_tried_once_and_reported(monkeypatch, tmp_path):
    calls = tmp_path / "calls"
    broken = tmp_path / "broken-cxx"
    broken.write_text(f'#!/bin/sh\necho "$@" >> "{calls}"\ncase "$1" in --version) echo broken 1.0;; '
                      '*) echo "error: broken" >&2; exit 1;; esac\n')
    broken.chmod(0o755)
    monkeypatch.setenv("XRFGPU_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XRFGPU_HOST_KERNELS", "1")
    monkeypatch.setenv("XRFGPU_HOST_CXX", str(broken))
    assert hk.library() is None  # no warning (the suite turns warnings into errors)
    status = hk.status()
    assert status["state"] == "unavailable" and "host build failed" in status["reason"] and "broken" in status["reason"]
    builds = [line for line in calls.read_text().splitlines() if "--version" not in line]
    assert len(builds) == 1
    assert hk.library() is None and hk.library() is None  # remembered: not tried again
    assert len([line for line in calls.read_text().splitlines() if "--version" not in line]) == 1
    assert not [p for p in (tmp_path / "cache" / "host_kernels").iterdir()]  # no temporary left behind


@pytest.mark.skipif(sys.platform == "win32", reason="a shell script as the compiler")
def test_cache_loads_without_compiling_and_rebuilds_a_corrupt_file(monkeypatch, tmp_path, copying_compiler):
    cxx, calls = copying_compiler
    monkeypatch.setenv("XRFGPU_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("XRFGPU_HOST_KERNELS", "1")
    monkeypatch.setenv("XRFGPU_HOST_CXX", str(cxx))
    assert hk.library() is not None
    assert hk.status()["reason"].startswith("built with")
    (built,) = (tmp_path / "host_kernels").glob("xrfgpu_host_*")
    hk._forget()

    def no_compiling(*args):
        raise AssertionError("compiled although the cache holds the library")

    with monkeypatch.context() as mp:
        mp.setattr(hk, "_compile", no_compiling)
        assert hk.library() is not None
        assert hk.status()["reason"].startswith("loaded from the cache")
    hk._forget()
    data = built.read_bytes()
    partial = tmp_path / "partial"
    partial.write_bytes(data[: len(data) // 2])
    os.replace(partial, built)  # a partial copy (a new file: this process has the library mapped): rebuilt
    assert hk.library() is not None
    assert hk.status()["reason"].startswith("built with")
    (rebuilt,) = (tmp_path / "host_kernels").glob("xrfgpu_host_*")
    assert rebuilt.read_bytes() == data
    assert calls.read_text().split() == ["build", "build"]
    hk._forget()


def test_default_cache_folder_is_outside_the_repository_and_the_package(monkeypatch):
    import xrfgpu

    monkeypatch.delenv("XRFGPU_CACHE_DIR", raising=False)
    folder = hk.cache_dir().resolve()
    package = Path(xrfgpu.__file__).resolve().parent
    for forbidden in (package, package.parent):
        assert forbidden not in folder.parents and folder != forbidden
    monkeypatch.setenv("XDG_CACHE_HOME", "/some/cache")
    if sys.platform.startswith("linux"):
        assert hk.cache_dir() == Path("/some/cache/xrfgpu/host_kernels")


@pytest.mark.skipif(sys.platform == "win32", reason="a shell script as the compiler")
def test_two_processes_building_at_once_both_load(tmp_path, copying_compiler):
    """Two processes start on an empty cache together: each compiles (a build of 1 s, so they overlap) into its
    own temporary file and renames it into place; both end with a library that loads."""
    cxx, calls = copying_compiler
    cache = tmp_path / "cache"
    env = dict(os.environ, XRFGPU_CACHE_DIR=str(cache), XRFGPU_HOST_KERNELS="1", XRFGPU_HOST_CXX=str(cxx),
               XRFGPU_TEST_CXX_DELAY="1")
    code = ("from xrfgpu import _host_kernels as h; lib = h.library(); "
            "assert lib is not None, h.status(); print(h.status()['reason'])")
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert calls.read_text().split() == ["build", "build"]
    names = [p.name for p in (cache / "host_kernels").iterdir()]
    assert names and all(n.startswith("xrfgpu_host_") and not n.endswith(".tmp") for n in names), names


def test_info_reports_the_host_kernels(monkeypatch, tmp_path, capsys):
    from xrfgpu.cli import main

    monkeypatch.setenv("XRFGPU_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("XRFGPU_HOST_KERNELS", "0")
    assert main(["info"]) == 0
    assert "host kernels: off" in capsys.readouterr().out
    monkeypatch.setenv("XRFGPU_HOST_KERNELS", "1")
    assert main(["info"]) == 0
    line = next(s for s in capsys.readouterr().out.splitlines() if s.startswith("host kernels:"))
    assert "not built" in line and str(tmp_path) in line
    assert not any(tmp_path.iterdir())  # info compiles nothing


def test_the_flags_are_the_tested_ones():
    """The engine's flags: those proved bit-identical by tests/test_kernels_host.py and
    tests/test_dtv_fused_kernels.py (which import :data:`HOST_CXX_FLAGS`: no FMA contraction, no fast-math),
    then only the flags that change no IEEE result, after ``-fno-fast-math``; no ``-march``."""
    flags = hk.HOST_ENGINE_CXX_FLAGS
    assert flags[: len(hk.HOST_CXX_FLAGS)] == hk.HOST_CXX_FLAGS
    assert "-ffp-contract=off" in flags and "-fno-fast-math" in flags
    assert set(flags[len(hk.HOST_CXX_FLAGS):]) == {"-fvect-cost-model=dynamic", "-fno-math-errno", "-fno-trapping-math"}
    assert not any(f in flags for f in ("-ffast-math", "-Ofast", "-funsafe-math-optimizations"))
    assert not any(f.startswith(("-march", "-mtune", "-mfma", "-mavx")) for f in flags)
    assert shutil.which(hk.compiler())


FMA = ("vfmadd", "vfmsub", "vfnmadd", "vfnmsub", "fmadd", "fmsub")


@pytest.mark.skipif(shutil.which("objdump") is None, reason="no objdump")
def test_the_library_has_no_fma_instruction_and_its_clones(built_library):
    """No fused multiply-add in any clone (each ``a * b + c`` of the engine is rounded twice, as NumPy's ufuncs
    do); with GCC on x86-64 Linux, the AVX2 clone, the baseline one and the resolver that picks one at load."""
    text = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(built_library)], capture_output=True,
                          text=True, check=True).stdout
    mnemonics = {line.split("\t")[1].split()[0] for line in text.splitlines() if line.count("\t") >= 1
                 and line.split("\t")[1].strip()}
    assert not [m for m in mnemonics if m.startswith(FMA)]
    version = subprocess.run([hk.compiler(), "--version"], capture_output=True, text=True).stdout.lower()
    if sys.platform.startswith("linux") and os.uname().machine == "x86_64" and "clang" not in version:
        for clone in ("run_f32", "run_f64"):
            for suffix in ("avx2", "default", "resolver"):
                assert f"{clone}" in text and any(f"{clone}" in line and f".{suffix}>:" in line
                                                  for line in text.splitlines()), (clone, suffix)
        assert any(m.startswith("vsqrtp") for m in mnemonics)  # the AVX2 clone is vectorised


@pytest.mark.slow
@pytest.mark.skipif(not (sys.platform.startswith("linux") and os.uname().machine == "x86_64"),
                    reason="the clones are built on x86-64 Linux")
def test_the_baseline_code_equals_the_numpy_code(monkeypatch, tmp_path):
    """The engine built without clones (the baseline x86-64 code that CPUs without AVX2 run): equal to the
    NumPy code bit for bit, as the AVX2 clone this machine runs (the tests above)."""
    out = tmp_path / "baseline.so"
    from xrfgpu.cuda import kernel_dir

    source = kernel_dir() / "host_dtv.cpp"
    subprocess.run([hk.compiler(), *hk.HOST_ENGINE_CXX_FLAGS, "-DXRFGPU_HOST_NO_CLONES", "-o", str(out),
                    str(source)], check=True, capture_output=True, timeout=300)
    lib = hk._load(out)
    monkeypatch.setattr(hk, "library", lambda: lib if hk._enabled() else None)
    monkeypatch.setenv("XRFGPU_HOST_KERNELS", "1")
    for dtype in DTYPES:
        for gamma in (GAMMA, 0.0):
            a = _inputs((3, 9, 12), dtype, field="per-map", params="per-map", rw=True, huber=True, seed=9)
            assert ew._dtv_denoise_host(a["z"], a["lam_w"], a["xix"], a["xiy"], gamma, a["px"], a["py"], a["step"],
                                        4, a["rw"], a["huber"], None) is not None
            got = _flat(*_engine(a, 4, gamma))
            expected = _flat(*_numpy_code(monkeypatch, a, 4, gamma))
            for name, g, e in zip(("x", "px", "py"), got, expected):
                assert_bits(g, e, f"{np.dtype(dtype).name} γ={gamma}: {name}")
