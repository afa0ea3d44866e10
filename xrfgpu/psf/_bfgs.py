"""BFGS with SciPy's iterates and less of its per-call machinery, for the many small fits of the blind σ estimate.

The spectral profile of :mod:`.blind_sigma` runs about 160 BFGS minimisations of three to five parameters per
map (31 σ's for the whole map and each of its four corner sub-maps, three fixed-law fits). Each takes 10–20
iterations on a few hundred ring means, so ``scipy.optimize.minimize(method="BFGS")`` spends more time in its
wrappers (option checks, the memoising ``ScalarFunction``, the line search's closures and norms) than in
the objective. :func:`minimize_bfgs` takes the same steps:

* the same quasi-Newton iteration as SciPy's ``_minimize_bfgs`` (identity start, Hk ← (I − ρ s yᵀ) Hk
  (I − ρ y sᵀ) + ρ s sᵀ, the same order of the floating-point operations; stop when max |g| ≤ ``gtol``,
  after 200 × n iterations, on a zero step, or on a non-finite value), and
* SciPy's own line search (``scalar_search_wolfe1``, MINPACK's DCSRCH, with ``line_search_wolfe2`` where
  it fails, c1 = 1e-4, c2 = 0.9),

so the iterates and the answer are bit for bit those of ``minimize(fun, x0, jac=grad, method="BFGS",
options={"gtol": gtol})``. That is checked once, at the first call, on a small fit
(:func:`_lean_line_search`); where the private SciPy functions are missing or the check fails (another
SciPy), :func:`minimize_bfgs` calls ``minimize`` itself.

References
----------
R. Fletcher, *Practical Methods of Optimization*, 2nd ed., Wiley (1987), section 3.2 (BFGS).
J. J. Moré and D. J. Thuente, "Line search algorithms with guaranteed sufficient decrease", ACM Trans.
Math. Softw. 20, 286 (1994), doi:10.1145/192115.192132.
"""

from __future__ import annotations

import collections
import functools
import math
import warnings

import numpy as np

__all__ = ["minimize_bfgs"]

_C1, _C2 = 1e-4, 0.9  # Wolfe constants of SciPy's BFGS (sufficient decrease, curvature)


_LineSearches = collections.namedtuple("_LineSearches", "wolfe1 wolfe2 warning")
_LineSearches.__doc__ = """SciPy's ``scalar_search_wolfe1`` (DCSRCH), ``line_search_wolfe2`` and the warning
class the latter gives."""


class _LineSearchFailed(RuntimeError):
    """Neither Wolfe line search found a step (SciPy's BFGS stops there, "precision loss")."""


def _wolfe_step(searches, value, gradient, x, direction, g, f, f_before):
    """One line search along ``direction`` from ``x``: (step, value there, value at x, gradient there or None).

    ``searches``: :class:`_LineSearches` (the second one's warning is silenced, as SciPy does). The same calls,
    points and arguments as SciPy's ``_line_search_wolfe12`` for BFGS (amin 1e-100, amax 1e100).
    """
    last_gradient = [g]

    def phi(step):
        return value(x + step * direction)

    def dphi(step):
        last_gradient[0] = gradient(x + step * direction)
        return np.dot(last_gradient[0], direction)

    step, f_new, f_old = searches.wolfe1(phi, dphi, f, f_before, np.dot(g, direction), c1=_C1, c2=_C2,
                                         amax=1e100, amin=1e-100, xtol=1e-14)
    if step is not None:
        return step, f_new, f_old, last_gradient[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", searches.warning)
        step, _, _, f_new, f_old, g_new = searches.wolfe2(value, gradient, x, direction, g, f, f_before, c1=_C1,
                                                          c2=_C2, amax=1e100)
    if step is None:
        raise _LineSearchFailed
    return step, f_new, f_old, g_new


def _bfgs_iterations(value, gradient, x0, gtol, searches):
    """The BFGS loop (module docstring) with the given line searches: (x, value at x)."""
    x = np.asarray(x0, dtype=np.float64).flatten()
    n = x.size
    f = value(x)
    g = gradient(x)
    identity = np.eye(n, dtype=int)
    h = identity
    f_before = f + np.linalg.norm(g) / 2
    gnorm = np.maximum.reduce(np.abs(g))  # np.amax's reduction, without its wrapper
    k = 0
    while gnorm > gtol and k < 200 * n:
        direction = -np.dot(h, g)
        try:
            step, f, f_before, g_new = _wolfe_step(searches, value, gradient, x, direction, g, f, f_before)
        except _LineSearchFailed:
            break
        s = step * direction
        x = x + s
        if g_new is None:
            g_new = gradient(x)
        y = g_new - g
        g = g_new
        k += 1
        gnorm = np.maximum.reduce(np.abs(g))
        if gnorm <= gtol:
            break
        if step * np.add.reduce(np.abs(direction) ** 2) ** 0.5 <= 0.0:  # no relative step left (xrtol 0)
            break
        if not math.isfinite(f):
            break
        curvature = np.dot(y, s)
        rho = 1000.0 if curvature == 0.0 else 1.0 / curvature
        left = identity - s[:, np.newaxis] * y[np.newaxis, :] * rho
        right = identity - y[:, np.newaxis] * s[np.newaxis, :] * rho
        h = np.dot(left, np.dot(h, right)) + (rho * s[:, np.newaxis] * s[np.newaxis, :])
    return x, f


def _check_problem():
    """A small smooth fit with a curved valley (3 parameters, 40 points): value and gradient functions."""
    t = np.linspace(-2.0, 2.0, 40)
    y = 1.5 * np.exp(-0.7 * t) + 0.2 * np.cos(3.0 * t)

    def residual(p):
        return p[0] * np.exp(-p[1] * t) + p[2] - y

    def value(p):
        r = residual(p)
        return float(r @ r)

    def gradient(p):
        r = residual(p)
        e = np.exp(-p[1] * t)
        return 2.0 * np.array([r @ e, r @ (-p[0] * t * e), r.sum()])

    return value, gradient, np.array([0.5, 0.1, 0.0])


@functools.cache
def _lean_line_search():
    """SciPy's line searches (:class:`_LineSearches`) where :func:`_bfgs_iterations` with them gives
    ``minimize(method="BFGS")``'s answer bit for bit on :func:`_check_problem`, else ``None``. Decided at the
    first fit, so that ``import xrfgpu`` does not import SciPy."""
    from scipy import optimize

    try:
        from scipy.optimize._linesearch import LineSearchWarning, line_search_wolfe2, scalar_search_wolfe1
    except ImportError:
        return None
    value, gradient, x0 = _check_problem()
    for gtol in (1e-4, 1e-9):
        try:
            searches = _LineSearches(scalar_search_wolfe1, line_search_wolfe2, LineSearchWarning)
            x, f = _bfgs_iterations(value, gradient, x0, gtol, searches)
        except Exception:  # noqa: BLE001  (any failure of the private functions: use the public route)
            return None
        reference = optimize.minimize(value, x0, jac=gradient, method="BFGS", options={"gtol": gtol})
        if not (np.array_equal(x, reference.x) and f == reference.fun):
            return None
    return searches


def minimize_bfgs(value, gradient, x0, *, gtol):
    """Minimise ``value`` by BFGS from ``x0``: (x, value at x), as ``scipy.optimize.minimize`` returns them.

    Parameters
    ----------
    value : callable
        ``value(x) -> float`` for a float64 vector ``x`` (which it must not change).
    gradient : callable
        ``gradient(x) -> ndarray`` of the same shape as ``x``.
    x0 : array_like, shape (n,)
        Start.
    gtol : float
        Stop when the largest absolute gradient entry is at most this.

    Returns
    -------
    x : ndarray, shape (n,)
        The last iterate (``res.x``).
    fun : float
        ``value`` there (``res.fun``).

    Notes
    -----
    Bit for bit ``minimize(value, x0, jac=gradient, method="BFGS", options={"gtol": gtol})`` (module
    docstring); that call itself where SciPy's private line searches are unavailable or the first-call
    check fails. ``value`` and ``gradient`` are called at the same points, though not always the same
    number of times (SciPy's wrapper answers a repeated point from its memory).
    """
    searches = _lean_line_search()
    if searches is None:
        from scipy import optimize

        res = optimize.minimize(value, np.asarray(x0, dtype=np.float64), jac=gradient, method="BFGS",
                                options={"gtol": gtol})
        return res.x, res.fun
    return _bfgs_iterations(value, gradient, x0, gtol, searches)
