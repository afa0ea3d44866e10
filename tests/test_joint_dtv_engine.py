"""The NumPy engine of the joint restoration's dTV dual iterations (:func:`xrfgpu._elementwise.dtv_denoise_numpy`).

It must give the numbers of the array-API loop of :func:`xrfgpu.joint._weighted_dtv_denoise`
bit for bit (same operations, same order, blocks of maps that never mix): the
reference here is that loop run on ``array_api_strict``, an independent
namespace that the engine never serves. Cases: a shared and a per-map field,
a map with λ = 0 in the batch (its x is z; the engine does not iterate
its dual variable, which nothing reads), the Huber form, reweighting factors, float64,
blocks smaller than the batch (a partial last block), one thread or
several over the blocks, and γ = 0 (the plain TV of the guide's
restoration, where the engine skips the projection).
"""

import numpy as np
import pytest
from conftest import to_numpy

from xrfgpu import _elementwise
from xrfgpu import joint as J
from xrfgpu import psf as psf_mod


def _inputs(m, rows, cols, dtype, *, per_map_field, seed=0):
    rng = np.random.default_rng(seed)
    z = (rng.gamma(2.0, 20.0, (m, rows, cols))).astype(dtype)
    w = (rng.gamma(2.0, 20.0, (m, rows, cols))).astype(dtype)
    shape = (2, m, rows, cols) if per_map_field else (2, rows, cols)
    field = rng.normal(size=shape)
    field = (field / (1.0 + np.sqrt((field ** 2).sum(axis=0)))).astype(dtype)  # |ξ| < 1
    lam = np.linspace(0.0, 0.1, m).astype(dtype).reshape(-1, 1, 1)  # map 0 has λ = 0
    p = tuple(rng.uniform(-0.5, 0.5, (m, rows, cols)).astype(dtype) for _ in range(2))
    rw = rng.uniform(0.2, 1.0, (m, rows, cols)).astype(dtype)
    huber = rng.uniform(0.0, 2.0, (m, 1, 1)).astype(dtype)
    return z, w, lam, field, p, rw, huber


def _denoise(xp, z, w, lam, field, p, rw, huber, *, n_inner=7, gamma=0.9):
    def a(v):
        return None if v is None else xp.asarray(v)

    wa = a(w)
    x, (px, py) = J._weighted_dtv_denoise(a(z), wa, a(lam), a(field[0]), a(field[1]), gamma, (a(p[0]), a(p[1])),
                                          xp=xp, n_inner=n_inner, wmax=xp.max(wa, axis=(-2, -1), keepdims=True),
                                          rw=a(rw), huber=a(huber))
    return to_numpy(x), to_numpy(px), to_numpy(py)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("per_map_field", [False, True], ids=["shared-field", "per-map-field"])
@pytest.mark.parametrize("extras", ["dtv", "huber", "reweighted-huber", "plain-tv-huber"])
@pytest.mark.parametrize("block_maps", [1, 2, 8], ids=lambda b: f"block={b}")
@pytest.mark.parametrize("workers", [1, 3], ids=lambda w: f"threads={w}")
def test_engine_equals_array_api_loop(xp, monkeypatch, dtype, per_map_field, extras, block_maps, workers):
    import array_api_strict

    m, rows, cols = 5, 17, 23
    z, w, lam, field, p, rw, huber = _inputs(m, rows, cols, dtype, per_map_field=per_map_field)
    rw = rw if extras == "reweighted-huber" else None
    huber = huber if extras != "dtv" else None
    gamma = 0.0 if extras.startswith("plain-tv") else 0.9  # γ = 0: the guide's plain TV
    monkeypatch.setattr(_elementwise, "DTV_BLOCK_PIXELS", block_maps * rows * cols)
    monkeypatch.setattr(_elementwise, "_dtv_workers", lambda: workers)
    expected = _denoise(array_api_strict, z, w, lam, field, p, rw, huber, gamma=gamma)
    got = _denoise(xp, z, w, lam, field, p, rw, huber, gamma=gamma)
    # x of every map; p of the maps with λ > 0 (at λ = 0 the engine leaves p alone: x = z whatever p is)
    moving = lam.reshape(-1) > 0
    for name, g, e in zip(("x", "px", "py"), got, expected):
        assert g.dtype == dtype, name
        np.testing.assert_array_equal(g if name == "x" else g[moving], e if name == "x" else e[moving], err_msg=name)
    np.testing.assert_array_equal(got[0][~moving], np.clip(z[~moving], 0, None))
    assert np.all(got[0] >= 0)
    assert np.all(np.hypot(got[1], got[2]) <= 1.0 + 1e-6)  # the dual stays in the unit ball


def test_engine_leaves_its_inputs_alone():
    z, w, lam, field, p, rw, huber = _inputs(3, 12, 12, np.float32, per_map_field=True)
    before = [a.copy() for a in (z, w, lam, field, p[0], p[1], rw, huber)]
    _denoise(np, z, w, lam, field, p, rw, huber)
    for a, b in zip((z, w, lam, field, p[0], p[1], rw, huber), before):
        np.testing.assert_array_equal(a, b)


def test_joint_restoration_equals_the_array_api_loop(monkeypatch):
    """The whole joint restoration (cross-validation, guide TV, final run) on NumPy with the engine and
    with the array-API loop forced: the same restored stack and record."""
    rng = np.random.default_rng(5)
    n = 40
    yy, xx = np.mgrid[:n, :n]
    truth = 0.2 + 0.8 * (np.hypot(yy - 18, xx - 22) <= 8)
    maps, psfs = [], []
    for sigma, level in ((1.2, 300.0), (2.0, 30.0)):
        h = psf_mod.gaussian(None, sigma)
        maps.append(rng.poisson(level * truth + 5.0).astype(np.float32))
        psfs.append(h)
    stack = np.stack(maps)

    def run():
        return J.joint_richardson_lucy(stack, psfs, background=5.0, max_iter=12, return_info=True)

    out, info = run()
    monkeypatch.setattr(J, "is_numpy_namespace", lambda xp: False)  # the array-API loop on NumPy
    ref, ref_info = run()
    np.testing.assert_array_equal(out, ref)
    assert info["per_map"] == ref_info["per_map"]


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
# Python ≥ 3.12 warns at a fork in a process with threads (this test makes one on purpose)
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_threads_after_a_fork(monkeypatch):
    """A forked child (a process-based Dask worker) has none of its parent's pool threads: it makes its own
    pool and gets the parent's numbers instead of waiting on threads that do not exist."""
    import os

    monkeypatch.setattr(_elementwise, "_dtv_workers", lambda: 2)
    monkeypatch.setattr(_elementwise, "DTV_BLOCK_PIXELS", 8 * 8)
    z, w, lam, field, p, rw, huber = _inputs(4, 8, 8, np.float32, per_map_field=False)
    parent = _denoise(np, z, w, lam, field, p, None, None)[0]
    pid = os.fork()
    if pid == 0:  # the child: exit status 0 when its numbers equal the parent's
        try:
            child = _denoise(np, z, w, lam, field, p, None, None)[0]
            os._exit(0 if np.array_equal(child, parent) else 1)
        finally:
            os._exit(2)
    import signal
    import time

    deadline = time.monotonic() + 20.0
    while True:  # a child waiting on its parent's threads would never finish: give up after 20 s
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child's dTV iterations did not finish in 20 s")
        time.sleep(0.05)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
