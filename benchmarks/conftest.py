"""Shared data and the report table for the xrfgpu benchmarks.

Run (CPU part, JSON saved, report table printed at the end)::

    pytest benchmarks -m "not gpu" --benchmark-json=bench.json

``python benchmarks/report.py bench.json`` prints the same table from a saved run.
"""

from __future__ import annotations

import numpy as np
import pytest

from xrfgpu import phantom

def pytest_configure(config):
    """Timed benchmarks run in one process: the project's default ``-n 2`` (pytest-xdist, pyproject.toml)
    would have pytest-benchmark skip every timing and write no ``--benchmark-json``. An untimed run
    (``--benchmark-disable``, CI's smoke run) keeps the two workers."""
    if getattr(config.option, "numprocesses", None) and not config.getoption("benchmark_disable", False):
        config.option.numprocesses = 0
        config.option.dist = "no"


SIGMA = 7.5  # px; a ±4σ Gaussian PSF of 61 × 61
BACKGROUND = 100.0
_CACHE: dict = {}


def observed(size: int, seed: int = 0):
    """Seeded Poisson map (size²) of grains and veins through the σ = 7.5 px PSF, with real borders.

    Large scenes are tiled from a 1024-px phantom scene (drawing grains on a
    4096² scene one by one would take minutes); the blur is linear
    convolution of the larger scene, cut to the window (xrfgpu.phantom).
    Returns (counts float32, truth float64, psf float64).
    """
    key = (size, seed)
    if key not in _CACHE:
        margin = 61 + 8
        n = size + margin
        base = _CACHE.setdefault(("scene", seed), phantom.grains_and_veins((1024 + margin,) * 2, seed=seed))
        reps = -(-n // base.shape[0])
        scene = np.tile(base, (reps, reps))[:n, :n]
        _CACHE[key] = phantom.observe((size, size), SIGMA, seed=seed, background_counts=BACKGROUND, scene=scene)
    return _CACHE[key]


def four_transforms(op, image):
    """A callable doing the 2 forward + 2 inverse transforms one RL iteration of ``op`` needs (the floor).

    The extended engine's are real FFTs of its transform canvas (written into
    reused buffers on NumPy, as the engine does); the separable engine, which
    does 1-D passes instead, is held to the same 2-D real FFTs of the canvas
    the extended engine would use (its ``transform_shape``); the diagonal
    engines' are the operator's own transforms of its canvas.
    """
    from xrfgpu._backend import array_namespace, irfft2, is_numpy_namespace, rfft2

    xp = array_namespace(image)
    if op.engine not in ("extended", "separable"):
        x = op.embed(image)

        def four():
            a = op.inverse_transform(op.transform(x))
            return op.inverse_transform(op.transform(a))

        return four
    shape = op.transform_shape
    x = xp.zeros(shape, dtype=image.dtype)
    x[: image.shape[0], : image.shape[1]] = image
    spectrum = rfft2(x, xp=xp)
    reuse = is_numpy_namespace(xp)

    def four():
        for _ in range(2):
            s = rfft2(x, xp=xp, out=spectrum if reuse else None)
            a = irfft2(s, shape, xp=xp, overwrite=True)
        return a

    return four


def mse(a, b):
    return float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))


def gpu_usable() -> bool:
    try:
        import cupy

        return bool(cupy.is_available())
    except Exception:
        return False


def pytest_collection_modifyitems(config, items):
    if gpu_usable():
        return
    skip = pytest.mark.skip(reason="needs CuPy and a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    session = getattr(config, "_benchmarksession", None)
    if session is None or not getattr(session, "benchmarks", None):
        return
    from report import format_report

    rows = []
    for bench in session.benchmarks:
        try:
            rows.append(bench.as_dict(include_data=False))
        except Exception:  # pragma: no cover - disabled runs have no stats
            continue
    terminalreporter.write_sep("=", "xrfgpu benchmark report")
    terminalreporter.write_line(format_report(rows))
