"""Shared fixtures: the ``xp`` namespace fixture and array assertions.

Every algorithm test takes ``xp`` and runs on NumPy (through
array-api-compat), on ``array_api_strict`` (which rejects anything outside
the standard) and on CuPy when a CUDA device is usable.
"""

from __future__ import annotations

import math

import numpy as np
import pytest


def _namespaces():
    import array_api_compat.numpy as xnp
    import array_api_strict

    array_api_strict.set_array_api_strict_flags(api_version="2024.12")
    params = [pytest.param(xnp, id="numpy"), pytest.param(array_api_strict, id="array_api_strict")]
    try:
        import cupy

        if cupy.is_available():
            import array_api_compat.cupy as xcp

            params.append(pytest.param(xcp, id="cupy", marks=pytest.mark.gpu))
    except Exception:
        pass
    return params


def random_ellipses(side, count, semi_axes_px, rng, *, levels=(0.2, 1.0)):
    """A side × side scene of ``count`` uniform ellipses painted over 0 in turn (a later one covers an earlier).

    Each ellipse draws, in this order, its centre (uniform over the scene), its two semi-axes (uniform in
    ``semi_axes_px``, px), its angle (uniform in [0, π)) and its level (uniform in ``levels``): the scenes of the
    σ tests with sharp curved edges at every angle.
    """
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float64)
    scene = np.zeros((side, side))
    for _ in range(count):
        cy, cx = rng.uniform(0, side, 2)
        a, b = rng.uniform(*semi_axes_px, 2)
        t = rng.uniform(0, np.pi)
        u = (xx - cx) * math.cos(t) + (yy - cy) * math.sin(t)
        v = -(xx - cx) * math.sin(t) + (yy - cy) * math.cos(t)
        scene[(u / a) ** 2 + (v / b) ** 2 <= 1] = rng.uniform(*levels)
    return scene


def require_cupy():
    """The ``cupy`` module, or a skip: CuPy not installed, or installed with no usable CUDA device."""
    cupy = pytest.importorskip("cupy")
    if not cupy.is_available():
        pytest.skip("CuPy is installed but no CUDA device is usable")
    return cupy


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """A test marked ``slow_on_strict`` runs on NumPy by default and on ``array_api_strict`` under ``-m slow``.

    Set before ``-m`` deselects. It marks the heaviest accuracy tests (1–7 s each on ``array_api_strict``, where
    every array operation costs tens of µs, against 0.1–0.9 s on NumPy), kept within the 3-minute default run:
    the default run keeps every branch of the joint code on ``array_api_strict`` through
    ``tests/test_joint_strict_equals_numpy.py`` (small maps, NumPy's numbers and choices), and each file
    marked keeps strict tests of its own.
    """
    for item in items:
        if item.get_closest_marker("slow_on_strict") is None:
            continue
        namespace = getattr(item, "callspec", None) and item.callspec.params.get("xp")
        if getattr(namespace, "__name__", "") == "array_api_strict":
            item.add_marker(pytest.mark.slow)


@pytest.fixture(params=_namespaces())
def xp(request):
    """The array namespace under test."""
    return request.param


def to_numpy(x):
    from xrfgpu._backend import to_numpy as _to_numpy

    return _to_numpy(x)


def assert_array(actual, expected, xp, *, rtol=None, atol=0.0, dtype=None, err_msg=""):
    """Assert namespace, dtype, shape and values of ``actual``.

    ``rtol`` defaults by dtype: 1e-4 for float32, 1e-10 for float64.
    """
    from array_api_compat import array_namespace

    assert array_namespace(actual) is xp or array_namespace(actual).__name__ == xp.__name__, (
        f"result is in {array_namespace(actual).__name__}, expected {xp.__name__}"
    )
    if dtype is not None:
        assert actual.dtype == dtype, f"dtype {actual.dtype} != {dtype}"
    a = to_numpy(actual)
    e = np.asarray(expected)
    assert a.shape == e.shape, f"shape {a.shape} != {e.shape}"
    if rtol is None:
        rtol = 1e-4 if a.dtype == np.float32 else 1e-10
    np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, err_msg=err_msg)


def pretend_read_only(monkeypatch, folder):
    """``folder`` reports itself not writable (``os.access``), as a read-only mount does (root may write
    anywhere else, so the tests cannot use the permission bits)."""
    import os

    real_access = os.access
    folder = os.path.realpath(folder)

    def access(path, mode, *args, **kwargs):
        if mode & os.W_OK and os.path.realpath(path) == folder:
            return False
        return real_access(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)


def spot_counts(size=21, sigma=2.0, peak=500.0, background=20.0, seed=0):
    """A Gaussian dot scan: Poisson counts of a spot of ``sigma`` px on a flat background (float32)."""
    r = np.arange(size) - size // 2
    d2 = r[:, None] ** 2 + r[None, :] ** 2
    mean = background + peak * np.exp(-d2 / (2 * sigma**2))
    return np.random.default_rng(seed).poisson(mean).astype(np.float32)


def file_names(folder):
    """Sorted names of what ``folder`` holds."""
    from pathlib import Path

    return sorted(p.name for p in Path(folder).iterdir())


_REPOSITORY_ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def _visible_entries(folder):
    return {p.name for p in folder.iterdir() if not p.name.startswith(".")}


@pytest.fixture(autouse=True, scope="session")
def _nothing_written_into_the_repository():
    """Fail the run when a test leaves a new file in the repository's root folder.

    Commands that write "in the current folder" by default (``psf edge`` writes ``INPUT_psf_edge.png``)
    wrote two figures there from a test that gave no ``--figure``; they were committed by accident.
    Tests write under ``tmp_path``.
    """
    before = _visible_entries(_REPOSITORY_ROOT)
    yield
    new = sorted(_visible_entries(_REPOSITORY_ROOT) - before)
    assert not new, f"tests left {new} in {_REPOSITORY_ROOT}: write under tmp_path (give -o/--figure)"
