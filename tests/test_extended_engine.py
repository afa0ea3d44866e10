"""The extended reflect engine (iterative algorithms): exact, any PSF, canvas-size free.

The operator is ``A = C H E``: extend the map by half-sample reflection as
far as the PSF reaches, convolve circularly on a canvas large enough that
nothing wraps, crop. It is compared with explicit sums (the forward), with
the transpose of the dense matrix those sums build (the adjoint), with the
DCT engine for symmetric PSFs, and with itself on a larger canvas.
"""

import numpy as np
import pytest
from conftest import assert_array, to_numpy
from test_fft import direct_convolution

import xrfgpu
import xrfgpu._backend
import xrfgpu.fft
from xrfgpu.fft import Convolution


def dense_reflect_matrix(shape, psf):
    """Matrix of the reflect-boundary blur, column k = blur of the k-th unit impulse (explicit sums, all the
    impulses in one stack)."""
    rows, cols = shape
    impulses = np.eye(rows * cols).reshape(rows * cols, rows, cols)
    return direct_convolution(impulses, psf, "reflect").reshape(rows * cols, rows * cols).T


def random_psf(shape, seed):
    psf = np.random.default_rng(seed).random(shape)
    return psf / psf.sum()


@pytest.mark.parametrize("map_shape,psf_shape", [((23, 18), (5, 5)), ((23, 18), (4, 6)), ((23, 18), (7, 4)),
                                                 ((23, 18), (1, 3)), ((12, 9), (11, 9)), ((12, 9), (12, 8))])
def test_forward_and_adjoint_match_dense_reflect_matrix(xp, map_shape, psf_shape):
    """(12, 9) maps with (11, 9)/(12, 8) PSFs: the PSF reaches to the mirror image's far side."""
    rng = np.random.default_rng(1)
    psf = random_psf(psf_shape, 2)
    op = Convolution(xp.asarray(psf), map_shape, iterative=True, engine="extended")
    assert op.canvas_shape == map_shape
    A = dense_reflect_matrix(map_shape, psf)
    x = rng.random(map_shape)
    r = rng.standard_normal(map_shape)
    assert_array(op.forward(xp.asarray(x)), (A @ x.ravel()).reshape(map_shape), xp, rtol=1e-10, atol=1e-12)
    assert_array(op.adjoint(xp.asarray(r)), (A.T @ r.ravel()).reshape(map_shape), xp, rtol=1e-10, atol=1e-12)


def test_batch_of_psfs(xp):
    rng = np.random.default_rng(3)
    images = rng.random((3, 16, 20))
    psfs = np.stack([random_psf((5, 6), s) for s in range(3)])
    op = Convolution(xp.asarray(psfs), images.shape[-2:], iterative=True, engine="extended")
    fwd = to_numpy(op.forward(xp.asarray(images)))
    adj = to_numpy(op.adjoint(xp.asarray(images)))
    for k in range(3):
        A = dense_reflect_matrix(images.shape[-2:], psfs[k])
        np.testing.assert_allclose(fwd[k], (A @ images[k].ravel()).reshape(16, 20), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(adj[k], (A.T @ images[k].ravel()).reshape(16, 20), rtol=1e-10, atol=1e-12)


def test_equals_dct_engine_for_symmetric_psf():
    rng = np.random.default_rng(4)
    psf = xrfgpu.psf.gaussian(None, 2.5)
    x = rng.random((37, 52))
    ext = Convolution(psf, x.shape, iterative=True, engine="extended")
    dct = Convolution(psf, x.shape, iterative=True, engine="dct")
    np.testing.assert_allclose(ext.forward(x), dct.forward(x), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(ext.adjoint(x), dct.adjoint(x), rtol=1e-10, atol=1e-13)


def test_float32_close_to_float64():
    rng = np.random.default_rng(5)
    psf = random_psf((9, 7), 6)
    x = rng.random((64, 48))
    op64 = Convolution(psf, x.shape, iterative=True, engine="extended")
    op32 = Convolution(psf.astype(np.float32), x.shape, iterative=True, engine="extended")
    got = op32.forward(x.astype(np.float32))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, op64.forward(x), rtol=1e-5, atol=1e-6)


def test_lipschitz_bounds_the_operator_norm():
    psf = random_psf((5, 7), 7)
    op = Convolution(psf, (14, 11), iterative=True, engine="extended")
    A = dense_reflect_matrix((14, 11), psf)
    norm2 = np.linalg.norm(A, 2) ** 2
    assert norm2 <= op.lipschitz * (1 + 1e-12)
    assert op.lipschitz < 1.5 * norm2  # a bound, not a wild one
    sym = Convolution(xrfgpu.psf.gaussian(None, 1.5), (14, 11), iterative=True, engine="extended")
    assert sym.lipschitz == pytest.approx(1.0, rel=1e-10)


def test_larger_transform_canvas_changes_nothing(monkeypatch):
    """The canvas size is not a hidden parameter: RL and FISTA give the same numbers on a larger one."""
    from xrfgpu.phantom import observe

    counts, _, _ = observe((50, 60), 2.0, seed=3, signal_counts=150, background_counts=140)
    counts = counts.astype(np.float64)
    psf = xrfgpu.psf.gaussian(None, 2.0, 1.4, rho=0.35)
    assert Convolution(psf, counts.shape, iterative=True).engine == "extended"
    runs = {
        "rl": lambda: xrfgpu.richardson_lucy(counts, psf, num_iter=60, background=140.0),
        "fista": lambda: xrfgpu.fista(counts, psf, num_iter=60, lam=1.0, background=140.0),
    }
    base = {k: f() for k, f in runs.items()}
    original = xrfgpu.fft.fft_size
    monkeypatch.setattr(xrfgpu.fft, "fft_size", lambda n: original(n + 41))
    assert Convolution(psf, counts.shape, iterative=True).transform_shape != (
        original(50 + psf.shape[0] - 1), original(60 + psf.shape[1] - 1))
    for k, f in runs.items():
        np.testing.assert_allclose(f(), base[k], rtol=1e-9, atol=1e-9 * float(base[k].max()), err_msg=k)


def test_engine_choice_and_errors(monkeypatch):
    # symmetric along both axes but not an outer product: a core and a halo (test_separable_engine.py
    # covers the separable Gaussian)
    big = 0.5 * xrfgpu.psf.gaussian(61, 7.5) + 0.5 * xrfgpu.psf.gaussian(61, 3.0)
    assert Convolution(big, (1000, 1000), iterative=True).engine == "dct"
    assert Convolution(big, (1024, 1024), iterative=True).engine == "dct"
    assert Convolution(xrfgpu.psf.gaussian(None, 2.0, 3.0, rho=0.3), (1024, 1024), iterative=True).engine == "extended"
    # with scipy.fft a power-of-two map's DCT is slow: the extended canvas (1120²) is cheaper
    with monkeypatch.context() as m:
        m.setattr(xrfgpu._backend, "_LIBRARY", "scipy")
        assert Convolution(big, (1024, 1024), iterative=True).engine == "extended"
        assert Convolution(big, (1000, 1000), iterative=True).engine == "dct"
    # closed-form filters keep the diagonal engines
    assert Convolution(big, (1024, 1024)).engine == "dct"
    with pytest.raises(ValueError, match="iterative"):
        Convolution(big, (100, 100), engine="extended")
    with pytest.raises(ValueError, match="symmetric"):
        Convolution(random_psf((5, 6), 0), (20, 20), engine="dct")
    with pytest.raises(ValueError, match="engine"):
        Convolution(big, (100, 100), engine="fast")
    op = Convolution(random_psf((5, 6), 0), (20, 20), iterative=True)
    with pytest.raises(TypeError, match="diagonal"):
        op.transform(np.zeros((20, 20)))


def test_operator_pickles_and_works_after():
    import pickle

    psf = random_psf((5, 6), 9)
    op = Convolution(psf, (20, 24), iterative=True, engine="extended")
    x = np.random.default_rng(10).random((20, 24))
    expected = op.forward(x)
    clone = pickle.loads(pickle.dumps(op))
    np.testing.assert_array_equal(clone.forward(x), expected)
