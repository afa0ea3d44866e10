"""Packaging: every subpackage ships, the kernels ship, the core pulls no GPU stack."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")


@pytest.fixture(scope="module")
def project():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_subpackage_is_listed(project):
    listed = set(project["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "xrfgpu").rglob("__init__.py")}
    assert found <= listed, f"subpackages missing from pyproject packages: {sorted(found - listed)}"
    assert "xrfgpu._kernels" in listed
    assert project["tool"]["setuptools"]["package-dir"]["xrfgpu._kernels"] == "kernels"


def test_kernel_sources_are_package_data(project):
    patterns = project["tool"]["setuptools"]["package-data"]["xrfgpu._kernels"]
    sources = [p for p in (ROOT / "kernels").iterdir() if p.suffix in (".cu", ".cuh", ".h", ".cpp")]
    assert sources
    assert all(any(p.match(pat) for pat in patterns) for p in sources)
    from xrfgpu._host_kernels import HOST_SOURCES  # the host engine's source ships too

    assert {ROOT / "kernels" / name for name in HOST_SOURCES} <= set(sources)


def test_core_dependencies_pull_no_gpu_stack(project):
    core = " ".join(project["project"]["dependencies"]).lower()
    assert "cupy" not in core and "cuda" not in core
    extras = project["project"]["optional-dependencies"]
    assert any("cupy-cuda12x" in d for d in extras["cuda12"])
    assert any("cupy-cuda13x" in d for d in extras["cuda13"])


def test_import_does_not_import_cupy():
    import subprocess

    code = "import sys, xrfgpu; xrfgpu.richardson_lucy; print('cupy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
