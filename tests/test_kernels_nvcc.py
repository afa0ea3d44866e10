"""Every CUDA kernel file compiles with nvcc for sm_80 (A100) and sm_90 (H100).

No GPU is needed: nvcc compiles device code to SASS for both architectures
in one call per file (two ``-gencode`` pairs) and writes a fatbin; the test
then checks that the fatbin holds code for both architectures and every
kernel the loader (:mod:`xrfgpu.cuda`) will ask for. The options mirror the
run-time NVRTC options (no FMA contraction, no flush-to-zero), and warnings
are errors.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from xrfgpu.cuda import KERNEL_FILES, kernel_dir, kernel_source

NVCC = shutil.which("nvcc")
ARCHS = ("80", "90")

pytestmark = [pytest.mark.nvcc, pytest.mark.skipif(NVCC is None, reason="nvcc not found on PATH")]


def _nvcc_command(name, out):
    cmd = [NVCC, "-std=c++17", "--fmad=false", "--ftz=false", "--prec-div=true", "-Werror", "all-warnings",
           "-I", str(kernel_dir()), "--fatbin", "-o", str(out)]
    for arch in ARCHS:
        cmd += ["-gencode", f"arch=compute_{arch},code=sm_{arch}"]
    cmd.append(str(kernel_dir() / name))
    return cmd


@pytest.fixture(scope="module")
def compilations(tmp_path_factory):
    """Every kernel file's nvcc run, all started at once (each test then waits for its own): the
    compilations are independent processes, so the machine's cores share them instead of one file
    after another (about half the wall time on 2 cores)."""
    folder = tmp_path_factory.mktemp("fatbins")
    runs = {}
    for name in sorted(KERNEL_FILES):
        out = folder / f"{name}.fatbin"
        cmd = _nvcc_command(name, out) + (["-Xptxas", "-v"] if name in PTXAS_REPORTS else [])
        runs[name] = (cmd, out, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    yield runs
    for _, _, proc in runs.values():
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


# files whose compilation also reports each kernel's registers and spills (ptxas -v, on stderr)
PTXAS_REPORTS = ("separable_blur.cu",)
_FINISHED = {}


def _finished(compilations, name):
    """``(cmd, out, returncode, stdout, stderr)`` of the fixture's nvcc run of ``name`` (waited for once)."""
    key = (id(compilations), name)
    if key not in _FINISHED:
        cmd, out, proc = compilations[name]
        stdout, stderr = proc.communicate(timeout=300)
        _FINISHED[key] = (cmd, out, proc.returncode, stdout, stderr)
    return _FINISHED[key]


@pytest.mark.parametrize("name", sorted(KERNEL_FILES))
def test_kernel_file_compiles_for_sm80_and_sm90(name, compilations):
    cmd, out, returncode, stdout, stderr = _finished(compilations, name)
    assert returncode == 0, f"nvcc failed:\n{' '.join(cmd)}\n{stdout}\n{stderr}"
    binary = out.read_bytes()
    assert set(re.findall(rb"sm_(\d\d)", binary)) >= {a.encode() for a in ARCHS}
    for kernel in KERNEL_FILES[name]:
        for suffix in ("f32", "f64"):
            assert f".text.{kernel}_{suffix}\0".encode() in binary, f"{kernel}_{suffix} missing from {name}"


def test_runtime_source_compiles_without_include_path(tmp_path):
    """The text the loader hands NVRTC (header prepended, ``#line`` markers) needs no include path."""
    src = tmp_path / "all_kernels.cu"
    src.write_text("\n".join(kernel_source(name) for name in sorted(KERNEL_FILES)))
    cmd = [NVCC, "-std=c++17", "--fmad=false", "--ptx", "-arch=compute_80", "-o", str(tmp_path / "all.ptx"), str(src)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    ptx = (tmp_path / "all.ptx").read_text()
    for names in KERNEL_FILES.values():
        for kernel in names:
            assert f".entry {kernel}_f32" in ptx and f".entry {kernel}_f64" in ptx


def test_separable_blur_kernels_fit_their_occupancy_without_spilling(compilations):
    """ptxas -v on kernels/separable_blur.cu (sm_80 and sm_90): no blur kernel spills, and the tiled column
    pass stays within the registers of XRFGPU_COL_MIN_BLOCKS_F32/_F64 resident blocks of 32 · XRFGPU_COL_WARPS threads
    (its launch bounds), so that many blocks fit an SM alongside the tile's shared memory."""
    source = (kernel_dir() / "separable_blur.cu").read_text()
    (warps,) = (int(v) for v in re.findall(r"#define XRFGPU_COL_WARPS (\d+)", source))
    min_blocks = {suffix: int(v) for suffix, v in re.findall(r"#define XRFGPU_COL_MIN_BLOCKS_(F32|F64) (\d+)", source)}
    assert set(min_blocks) == {"F32", "F64"}
    _, _, returncode, _, stderr = _finished(compilations, "separable_blur.cu")
    assert returncode == 0, stderr
    report = re.findall(r"Compiling entry function '(\w+)' for 'sm_(\d+)'\n.*?Function properties for \w+\n"
                        r"\s*(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads\n"
                        r".*?Used (\d+) registers", stderr, flags=re.S)
    seen = {(name, arch) for name, arch, *_ in report}
    expected = {(f"{kernel}_{suffix}", arch) for kernel in KERNEL_FILES["separable_blur.cu"]
                for suffix in ("f32", "f64") for arch in ARCHS}
    assert seen == expected, stderr
    for name, arch, _stack, spill_stores, spill_loads, registers in report:
        assert (int(spill_stores), int(spill_loads)) == (0, 0), f"{name} spills on sm_{arch}"
        if name.startswith("xrfgpu_blur_cols_tile"):
            blocks = min_blocks[name[-3:].upper()]
            assert int(registers) * 32 * warps * blocks <= 65536, f"{name}: {registers} registers on sm_{arch}"
