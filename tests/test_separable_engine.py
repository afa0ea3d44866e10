"""The separable reflect engine: a PSF that is an outer product, blurred one axis at a time.

Compared with the dense reflect-boundary matrix built from explicit sums (the
forward) and its transpose (the adjoint), with the extended engine inside
Richardson–Lucy and FISTA, and with itself on longer lines.
"""

import pickle

import numpy as np
import pytest
from test_extended_engine import dense_reflect_matrix

import xrfgpu
import xrfgpu._backend
import xrfgpu._separable
from xrfgpu._separable import SeparableReflectBlur, separable_factors
from xrfgpu.fft import Convolution


def outer_psf(rows, cols, seed):
    """A random separable PSF (rows × cols, unit sum)."""
    rng = np.random.default_rng(seed)
    psf = np.outer(rng.random(rows) + 0.1, rng.random(cols) + 0.1)
    return psf / psf.sum()


def test_factors_of_gaussians_and_refusals():
    for sigma_u, sigma_v in [(2.0, 2.0), (1.3, 3.7)]:
        psf = xrfgpu.psf.gaussian(None, sigma_u, sigma_v)
        u, v = separable_factors(psf)
        assert u.shape == (psf.shape[0],) and v.shape == (psf.shape[1],)
        np.testing.assert_allclose(np.outer(u, v), psf / psf.sum(), rtol=0, atol=1e-15)
        assert separable_factors(psf.astype(np.float32)) is not None
    # a tilted ellipse and a core + halo mixture are not outer products
    assert separable_factors(xrfgpu.psf.gaussian(None, 2.0, 3.0, rho=0.3)) is None
    mixture = 0.5 * xrfgpu.psf.gaussian(25, 2.0) + 0.5 * xrfgpu.psf.gaussian(25, 5.0)
    assert separable_factors(mixture) is None
    # a tiny departure is refused in float64, where it is far above rounding
    bumped = xrfgpu.psf.gaussian(None, 2.0).copy()
    bumped[0, 0] += 1e-9
    assert separable_factors(bumped) is None
    assert separable_factors(np.stack([xrfgpu.psf.gaussian(13, 2.0), mixture[6:19, 6:19]])) is None


@pytest.mark.parametrize("map_shape,psf_shape", [((23, 18), (5, 5)), ((23, 18), (4, 6)), ((23, 18), (7, 4)),
                                                 ((23, 18), (1, 3)), ((12, 9), (11, 9)), ((12, 9), (12, 8))])
def test_forward_and_adjoint_match_dense_reflect_matrix(map_shape, psf_shape):
    """(12, 9) maps with (11, 9)/(12, 8) PSFs: the PSF reaches to the mirror image's far side."""
    rng = np.random.default_rng(1)
    psf = outer_psf(*psf_shape, seed=2)
    op = Convolution(psf, map_shape, iterative=True, engine="separable")
    assert op.canvas_shape == map_shape
    A = dense_reflect_matrix(map_shape, psf)
    x = rng.random(map_shape)
    r = rng.standard_normal(map_shape)
    # the scratch lines hold the previous call's numbers: results must not depend on them
    op.forward(r), op.adjoint(x)
    np.testing.assert_allclose(op.forward(x), (A @ x.ravel()).reshape(map_shape), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(op.adjoint(r), (A.T @ r.ravel()).reshape(map_shape), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(op.forward(x), (A @ x.ravel()).reshape(map_shape), rtol=1e-10, atol=1e-12)


def test_float32_gaussian_against_dense_matrix():
    psf = xrfgpu.psf.gaussian(None, 1.5, 2.5)
    shape = (21, 26)
    op = Convolution(psf.astype(np.float32), shape, iterative=True)
    assert op.engine == "separable"
    x = np.random.default_rng(3).random(shape)
    got = op.forward(x.astype(np.float32))
    assert got.dtype == np.float32
    A = dense_reflect_matrix(shape, psf)
    np.testing.assert_allclose(got, (A @ x.ravel()).reshape(shape), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(op.adjoint(x.astype(np.float32)), (A.T @ x.ravel()).reshape(shape),
                               rtol=1e-5, atol=1e-6)


def test_batch_of_psfs():
    rng = np.random.default_rng(4)
    images = rng.random((3, 16, 20))
    psfs = np.stack([outer_psf(5, 6, seed=s) for s in range(3)])
    op = Convolution(psfs, images.shape[-2:], iterative=True)
    assert op.engine == "separable"
    fwd, adj = op.forward(images), op.adjoint(images)
    for k in range(3):
        A = dense_reflect_matrix(images.shape[-2:], psfs[k])
        np.testing.assert_allclose(fwd[k], (A @ images[k].ravel()).reshape(16, 20), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(adj[k], (A.T @ images[k].ravel()).reshape(16, 20), rtol=1e-10, atol=1e-12)


def test_zero_margins_cost_nothing_and_change_nothing():
    """A PSF zero-padded about its centre (as restore_stack pads smaller PSFs) gives the same lines and numbers."""
    psf = xrfgpu.psf.gaussian(None, 1.5).astype(np.float32)  # 13 × 13
    padded = np.zeros((21, 21), np.float32)
    padded[4:17, 4:17] = psf
    x = np.random.default_rng(5).random((30, 34)).astype(np.float32)
    small = Convolution(psf, x.shape, iterative=True)
    large = Convolution(padded, x.shape, iterative=True)
    assert small._separable.line_shape == large._separable.line_shape
    np.testing.assert_array_equal(large.forward(x), small.forward(x))
    np.testing.assert_array_equal(large.adjoint(x), small.adjoint(x))


def test_restorations_equal_the_extended_engine_and_do_not_depend_on_line_length(monkeypatch):
    from xrfgpu.phantom import observe

    counts, _, _ = observe((50, 60), 2.0, seed=3, signal_counts=150, background_counts=140)
    counts = counts.astype(np.float64)
    psf = xrfgpu.psf.gaussian(None, 2.0, 1.4)
    assert Convolution(psf, counts.shape, iterative=True).engine == "separable"
    runs = {
        "rl": lambda: xrfgpu.richardson_lucy(counts, psf, num_iter=60, background=140.0),
        "rl-accelerated": lambda: xrfgpu.richardson_lucy(counts, psf, num_iter=30, background=140.0,
                                                         accelerate=True),
        "fista": lambda: xrfgpu.fista(counts, psf, num_iter=60, lam=1.0, background=140.0),
    }
    base = {k: f() for k, f in runs.items()}
    # the same restorations with the 2-D extended engine
    original_choice = Convolution._choose_engine

    def extended(self, psf, xp, boundary, pad, engine):
        return original_choice(self, psf, xp, boundary, pad, "extended" if engine == "auto" else engine)

    with monkeypatch.context() as m:
        m.setattr(Convolution, "_choose_engine", extended)
        assert Convolution(psf, counts.shape, iterative=True).engine == "extended"
        for k, f in runs.items():
            np.testing.assert_allclose(f(), base[k], rtol=1e-9, atol=1e-9 * float(base[k].max()), err_msg=k)
    # longer circular lines
    original_size = xrfgpu._separable.fft_size
    monkeypatch.setattr(xrfgpu._separable, "fft_size", lambda n: original_size(n + 37))
    assert Convolution(psf, counts.shape, iterative=True)._separable.line_shape != (
        original_size(50 + psf.shape[0] - 1), original_size(60 + psf.shape[1] - 1))
    for k, f in runs.items():
        np.testing.assert_allclose(f(), base[k], rtol=1e-9, atol=1e-9 * float(base[k].max()), err_msg=k)


def test_engine_choice_and_errors(monkeypatch):
    gauss = xrfgpu.psf.gaussian(61, 7.5)
    assert Convolution(gauss, (1024, 1024), iterative=True).engine == "separable"
    assert Convolution(gauss, (1000, 1000), iterative=True).engine == "separable"
    # closed-form filters need a diagonal operator; a given pad selects the padded model
    assert Convolution(gauss, (1024, 1024)).engine == "dct"
    assert Convolution(gauss, (200, 200), iterative=True, pad=80).engine == "padded"
    tilted = xrfgpu.psf.gaussian(None, 2.0, 3.0, rho=0.3)
    assert Convolution(tilted, (64, 64), iterative=True).engine == "extended"
    with pytest.raises(ValueError, match="outer product"):
        Convolution(tilted, (64, 64), iterative=True, engine="separable")
    with pytest.raises(ValueError, match="iterative"):
        Convolution(gauss, (100, 100), engine="separable")
    # the engine needs ducc0's axis convolution: with scipy.fft it is not offered
    monkeypatch.setattr(xrfgpu._backend, "_LIBRARY", "scipy")
    assert Convolution(gauss, (1024, 1024), iterative=True).engine == "extended"
    with pytest.raises(ValueError, match="ducc0"):
        Convolution(gauss, (100, 100), iterative=True, engine="separable")


def test_array_api_strict_gets_the_generic_engines():
    xps = pytest.importorskip("array_api_strict")
    psf = xps.asarray(xrfgpu.psf.gaussian(None, 2.0))
    assert Convolution(psf, (40, 40), iterative=True).engine in ("extended", "dct", "mirror")


def test_psf_reaching_past_the_mirror_is_refused():
    with pytest.raises(ValueError, match="mirror"):
        SeparableReflectBlur(separable_factors(outer_psf(15, 3, seed=0)), (6, 20), np.float64)


def test_lipschitz_bounds_the_operator_norm():
    psf = outer_psf(5, 7, seed=7)
    op = Convolution(psf, (14, 11), iterative=True)
    assert op.engine == "separable"
    A = dense_reflect_matrix((14, 11), psf)
    norm2 = np.linalg.norm(A, 2) ** 2
    assert norm2 <= op.lipschitz * (1 + 1e-12)
    assert op.lipschitz < 1.5 * norm2
    assert Convolution(xrfgpu.psf.gaussian(None, 1.5), (14, 11), iterative=True).lipschitz == pytest.approx(1.0)


def test_operator_pickles_and_works_after():
    op = Convolution(outer_psf(5, 6, seed=9), (20, 24), iterative=True)
    x = np.random.default_rng(10).random((20, 24))
    expected = op.forward(x)
    clone = pickle.loads(pickle.dumps(op))
    np.testing.assert_array_equal(clone.forward(x), expected)
    np.testing.assert_array_equal(clone.adjoint(x), op.adjoint(x))
