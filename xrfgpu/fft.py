"""FFT convolution: padding, PSF → transfer function, the convolution operator.

Normalisation and boundary model
--------------------------------
A PSF ``h`` of shape (kr, kc) is normalised to unit sum and its centre is the
pixel ``(kr // 2, kc // 2)`` — the middle pixel for odd sizes, the pixel just
below and right of the middle for even sizes (the convention of MATLAB's
``psf2otf`` and of :func:`scipy.ndimage.convolve`). Its transfer function
(OTF) is the real FFT of the PSF zero-padded to the FFT canvas and rolled so
that the centre pixel sits at index (0, 0). Convolution is then
``irfft(rfft(x) * otf)`` — a circular convolution on the canvas — and the
adjoint (correlation, the paper's flipped PSF ĥ) is ``irfft(rfft(x) *
conj(otf))``. Forward FFTs are unnormalised, inverse FFTs carry 1/N (the
``"backward"`` norm), so a unit-sum PSF has ``otf[0, 0] == 1`` and both
operators preserve the sum of a map.

Two boundary models are offered:

``"periodic"``
    The canvas is the map itself: the map is taken to repeat beyond its
    edges. Fast and exact for periodic data, but a real scan is not
    periodic, and wrap-around ghosts appear at the borders.
``"reflect"`` (default)
    The scene beyond each edge is the mirror image of the map (half-sample
    symmetric, ``d c b a | a b c d | d c b a``, repeated). For a PSF that is
    symmetric along both axes (every centred Gaussian with ρ = 0, every
    measured kernel symmetrised) this blur is diagonalised exactly by the
    DCT-II, so no canvas and no padding are needed: the
    operator works on the map itself with real DCTs of the map's size
    (NumPy: ducc0 or :func:`scipy.fft.dctn`; CuPy: ``cupyx.scipy.fft.dctn``). On
    namespaces without a DCT (``array_api_strict``) the same operator is a
    circular convolution on the full mirror canvas (2 rows × 2 cols) — the
    same numbers, as the tests check.

    Iterative algorithms (Richardson–Lucy, FISTA) need only the operator
    and its adjoint, not a diagonalisation, and get the exact reflect
    operator for *every* PSF from the **extended engine**: ``A = C H E``,
    where E extends the map by half-sample reflection exactly as far as the
    PSF reaches (``kr − 1`` rows, ``kc − 1`` columns in all), H is a circular
    convolution on a canvas of ``fft_size(rows + kr − 1) × fft_size(cols +
    kc − 1)`` — large enough that nothing wraps onto the map — and C crops
    the map back; the adjoint is ``Eᵀ Hᵀ Cᵀ`` (zero canvas, correlation,
    the reflected strips folded back onto the pixels they mirror). The
    unknowns live on the map itself, so no canvas size or pad enters the
    result (``tests/test_extended_engine.py`` checks this against a dense
    matrix and on a larger canvas). For symmetric PSFs it equals the DCT
    engine to rounding; :class:`Convolution` picks whichever is cheaper
    (with scipy.fft a power-of-two map's DCT is slow, with ducc0 it is not;
    the extended canvas is never a power of two; see
    :func:`_dct_is_cheaper`). When the PSF is an outer product of two profiles (a Gaussian
    with ρ = 0) and the map is a NumPy array with ducc0 behind it, the same
    operator is computed one axis at a time by the **separable engine**
    (:mod:`xrfgpu._separable`): 1-D circular convolutions of length
    ``fft_size(n + k − 1)`` per line, each a single ducc0 call, about half
    the work of the 2-D transforms and no spectrum multiply pass.

    Closed-form filters (Wiener, Tikhonov) need a diagonal operator. For
    other PSFs (ρ ≠ 0, even sizes), or when ``pad`` is given, the map is
    extended by half-sample symmetric reflection (``d c b a | a b c d | d c b a``,
    :func:`scipy.ndimage.convolve`'s ``mode="reflect"``) by ``pad`` pixels (a
    multiple of the PSF size that each algorithm sets, see
    :func:`default_pad`), the algorithm runs on this canvas (the scene
    beyond the map becomes unknowns too), and the result is cropped back.
    The canvas is then rounded up to a fast FFT length
    (:func:`xrfgpu._backend.fft_size`) by reflecting further at the
    bottom/right, so the canvas size is not a hidden parameter: ``pad`` sets
    how far the scene is extended, and the default is large enough that a
    larger pad changes the restored map by less than 1e-4 of its range
    (``tests/test_pad_independence.py`` checks exactly this).

References
----------
M. K. Ng, R. H. Chan, W.-C. Tang, "A fast algorithm for deblurring models
with Neumann boundary conditions", SIAM J. Sci. Comput. 21, 851 (1999),
doi:10.1137/S1064827598341384 (the DCT diagonalisation).
S. van der Walt et al., scikit-image ``restoration/uft.py`` (transfer
function layout); MATLAB ``psf2otf``.
"""

from __future__ import annotations

import threading

import numpy as np

from ._backend import (
    array_device,
    array_namespace,
    dct2,
    fft_library,
    fft_size,
    has_axis_convolution,
    has_dct,
    idct2,
    irfft2,
    is_cupy_namespace,
    is_numpy_namespace,
    is_slow_fft_length,
    rfft2,
    to_numpy,
)
from ._separable import SeparableReflectBlur, separable_factors
from ._validate import check_pad

__all__ = ["Convolution", "psf_to_otf", "psf_to_dct_eigenvalues", "reflect_indices", "default_pad", "is_axis_symmetric", "BOUNDARIES"]

BOUNDARIES = ("reflect", "periodic")
ENGINES = ("dct", "mirror", "extended", "separable", "padded", "periodic", "dctfft")
# engines that apply the operator without diagonalising it: iterative algorithms only
MATRIX_FREE_ENGINES = ("extended", "separable")
# engines that serve iterative algorithms only (no transform a closed-form filter could use)
ITERATIVE_ONLY_ENGINES = MATRIX_FREE_ENGINES + ("dctfft",)


def gpu_fft_cost_factor(n: int) -> float:
    """Relative cuFFT cost per element of a real-FFT length ``n`` (1 for a typical 7-smooth length).

    From the lengths measured on an NVIDIA H100 (``benchmarks/gpu_speed.py``,
    rfft2 + irfft2 pairs of square canvases, CuPy 14.2): powers of two ran at
    0.65–0.70 of the time per element of the 7-smooth lengths around them
    (4096²: 0.0265 ns per element against 0.036–0.039 for 4320²–4608²),
    lengths with a factor 7 about 1.13 (4200²: 0.0444), and lengths with a
    prime factor above 7 go through Bluestein's algorithm, several times slower.
    """
    n = int(n)
    if n & (n - 1) == 0:
        return 0.68
    m = n
    for p in (2, 3, 5, 7):
        while m % p == 0:
            m //= p
    if m != 1:
        return 4.0
    return 1.13 if n % 7 == 0 else 1.0


def gpu_fft_cost(shape) -> float:
    """Relative cuFFT cost of a 2-D real transform pair of ``shape`` (:func:`gpu_fft_cost_factor`)."""
    rows, cols = (int(n) for n in shape)
    return rows * cols * 0.5 * (gpu_fft_cost_factor(rows) + gpu_fft_cost_factor(cols))


def gpu_fft_size(n: int) -> int:
    """The length ≥ ``n`` of least cuFFT cost (length × :func:`gpu_fft_cost_factor`): often a power of two."""
    from ._backend import smooth_sizes

    n = int(n)
    best, cost = None, None
    for m in smooth_sizes(2 * n + 64):
        if m < n or (m % 2 and m > 2):
            continue
        c = m * gpu_fft_cost_factor(m)
        if cost is None or c < cost:
            best, cost = m, c
    return best if best is not None else n


def _dct_is_cheaper(shape, psf_shape) -> bool:
    """Whether the DCT engine beats the extended engine for an iterative algorithm.

    Cost model from measurements (``benchmarks/bench_restoration.py``, ducc0
    and scipy.fft, 2 cores): a DCT-II pair costs about 1.15 real-FFT pairs of
    the same size. With scipy.fft both slow down by about 1.5× on power-of-two
    lengths ≥ 512 (:func:`xrfgpu._backend.is_slow_fft_length`); the extended
    engine transforms ``fft_size(n + k − 1)`` per axis, which is never such a
    length. With ducc0 the DCT of such a map runs on rows copied to a wider
    buffer (:func:`xrfgpu._backend.dct2`) and is not slow.
    """
    def penalty(n):
        return 1.5 if is_slow_fft_length(n) and fft_library() != "ducc0" else 1.0

    rows, cols = shape
    kr, kc = psf_shape
    dct = 1.15 * rows * cols * max(penalty(rows), penalty(cols))
    extended = fft_size(rows + kr - 1) * fft_size(cols + kc - 1)
    return dct < extended


def reflect_indices(n: int, before: int, after: int) -> np.ndarray:
    """Indices that extend ``range(n)`` by half-sample symmetric reflection.

    ``before`` and ``after`` may exceed ``n``: the reflection repeats with
    period ``2 n``. Returns a NumPy int64 vector of length
    ``before + n + after``.
    """
    idx = np.arange(-before, n + after)
    period = 2 * n
    idx = np.mod(idx, period)
    return np.where(idx >= n, period - 1 - idx, idx).astype(np.int64)


def default_pad(psf_shape, factor: int = 2) -> int:
    """Default reflect padding (pixels per side) for a PSF of ``psf_shape``.

    ``factor`` times the PSF's larger extent. The reflected border must hold
    all the scene the observed pixels' PSFs reach, plus a buffer against the
    wrap-around seam at the canvas edge, where restorations ring. How wide
    the buffer must be depends on how far the restoration's effective
    inverse filter reaches: measured on 150×170 maps (σ = 2 and 4 px,
    ±4σ PSF, 100 iterations), the map changed by less than 1e-5 of its
    range when the pad grew from these defaults to 8 PSF extents with
    factor 2 for Richardson–Lucy, 3 for Wiener/Tikhonov and 4 for FISTA
    (whose weak l1 penalty leaves the most long-range ringing); with factor
    1 the changes were 1e-3 (RL) to 6e-2 (FISTA).
    """
    return int(factor) * int(max(psf_shape[-2:]))


def is_axis_symmetric(psf, rtol: float = 1e-6) -> bool:
    """Whether a PSF (..., kr, kc) is odd-sized and mirror-symmetric along both axes."""
    kr, kc = psf.shape[-2:]
    if kr % 2 == 0 or kc % 2 == 0:
        return False
    h = to_numpy(psf)
    scale = float(np.abs(h).max()) or 1.0
    return bool(
        np.abs(h - h[..., ::-1, :]).max() <= rtol * scale and np.abs(h - h[..., :, ::-1]).max() <= rtol * scale
    )


def psf_to_dct_eigenvalues(psf, shape, *, xp):
    """Eigenvalues of the reflect-boundary blur of an axis-symmetric PSF in the DCT-II basis.

    With half-sample symmetric boundaries and ``h`` symmetric along both
    axes, the blur matrix A satisfies ``A = Cᵀ diag(λ) C`` with C the
    orthonormal 2-D DCT-II, and ``λ = C(A e₀) / C(e₀)`` for the unit impulse
    ``e₀`` at pixel (0, 0) (Ng, Chan & Tang 1999). ``A e₀`` — the blur of a
    corner impulse and its mirror images — is computed on the host with
    NumPy; it is nonzero only within the PSF's reach of the corner.

    Returns
    -------
    eigenvalues : real array, shape (..., rows, cols), in ``xp`` on the PSF's device
    """
    h = to_numpy(psf).astype(np.float64)
    rows, cols = shape
    kr, kc = h.shape[-2:]
    cr, cc = kr // 2, kc // 2
    def images(n, reach):
        # positions m whose mirror image (period 2n, half-sample) is pixel 0: m ≡ 0 or −1 (mod 2n)
        m = np.arange(-reach, n + reach)
        return m[(np.mod(m, 2 * n) == 0) | (np.mod(m, 2 * n) == 2 * n - 1)].tolist()

    placements = []
    for r_img in images(rows, cr):
        for c_img in images(cols, cc):
            # place h centred at (r_img, c_img), clipped to the map
            r0, c0 = r_img - cr, c_img - cc
            rs, re = max(r0, 0), min(r0 + kr, rows)
            cs, ce = max(c0, 0), min(c0 + kc, cols)
            if rs < re and cs < ce:
                placements.append((r0, c0, rs, re, cs, ce))
    # the blurred corner impulse is nonzero only near (0, 0) (and anywhere on maps narrower than the PSF)
    box = (max(p[3] for p in placements), max(p[5] for p in placements))
    out = np.zeros(h.shape[:-2] + box)
    for r0, c0, rs, re, cs, ce in placements:
        out[..., rs:re, cs:ce] += h[..., rs - r0 : re - r0, cs - c0 : ce - c0]
    if is_cupy_namespace(xp):
        return _dct_eigenvalues_on_device(out, shape, xp=xp, dtype=psf.dtype, device=array_device(psf))
    full = np.zeros(h.shape[:-2] + (rows, cols))
    full[..., : box[0], : box[1]] = out
    out = full
    spectrum = dct2(out, xp=np)

    # DCT-II of the corner impulse, separable: 2 cos(πk/2N)
    def impulse_dct(n):
        return 2.0 * np.cos(np.pi * np.arange(n) / (2 * n))

    eig = spectrum / (impulse_dct(rows)[:, None] * impulse_dct(cols)[None, :])
    return xp.asarray(eig, dtype=psf.dtype, device=array_device(psf))


def _dct_eigenvalues_on_device(corner, shape, *, xp, dtype, device):
    """DCT eigenvalues from the blurred corner impulse by two small matrix products on the device.

    ``corner`` (host, float64, (..., rows, cols)) is nonzero only in a
    block near pixel (0, 0) as large as the PSF's reach, so its unnormalised
    DCT-II is ``C₁ B C₂ᵀ`` with ``B`` that block and ``Cₙ[k, m] = 2 cos(πk(2m+1)/2N)``
    for the block's ``m`` only: O(rows·cols·reach) work on the GPU instead of a
    full-size DCT on the host and a full-size float64 copy to the device.
    """
    rows, cols = shape
    block = corner
    ru, cu = block.shape[-2:]

    def basis(n, used):
        k = np.arange(n)[:, None]
        m = np.arange(used)[None, :]
        # divided by the corner impulse's DCT, 2 cos(πk/2N), once here instead of over the full map
        return 2.0 * np.cos(np.pi * k * (2 * m + 1) / (2 * n)) / (2.0 * np.cos(np.pi * k / (2 * n)))

    c1 = xp.asarray(basis(rows, ru), dtype=dtype, device=device)
    c2t = xp.asarray(basis(cols, cu).T, dtype=dtype, device=device)
    b = xp.asarray(block, dtype=dtype, device=device)
    return xp.matmul(xp.matmul(c1, b), c2t)


def psf_to_otf(psf, canvas_shape, *, xp):
    """Transfer function of a (unit-sum) PSF on ``canvas_shape``.

    Parameters
    ----------
    psf : array, shape (..., kr, kc)
        Point spread function(s); a leading batch axis gives one OTF per map.
    canvas_shape : tuple of int
        (rows, columns) of the FFT canvas, each at least the PSF's size.
    xp : namespace
        Array-API namespace of ``psf`` (its ``fft`` extension is used).

    Returns
    -------
    otf : complex array, shape (..., rows, columns // 2 + 1)
        ``rfft2`` of the PSF zero-padded to the canvas and rolled so that its
        centre pixel ``(kr // 2, kc // 2)`` is at (0, 0).
    """
    kr, kc = psf.shape[-2:]
    rows, cols = canvas_shape
    if kr > rows or kc > cols:
        raise ValueError(f"PSF of shape {(kr, kc)} does not fit the FFT canvas {tuple(canvas_shape)}")
    canvas = xp.zeros(tuple(psf.shape[:-2]) + (rows, cols), dtype=psf.dtype, device=array_device(psf))
    canvas[..., :kr, :kc] = psf
    canvas = xp.roll(canvas, (-(kr // 2), -(kc // 2)), axis=(-2, -1))
    return rfft2(canvas, xp=xp)


class Convolution:
    """The blur operator ``x ↦ h ⊛ x`` on a transform canvas, with its adjoint.

    The transfer function (or DCT eigenvalues) is computed once; every
    algorithm of xrfgpu builds one of these and calls :meth:`embed`,
    :meth:`forward`, :meth:`adjoint`, :meth:`crop` and, for closed-form
    filters, :meth:`transform` / :meth:`inverse_transform`.

    Parameters
    ----------
    psf : array, shape (kr, kc) or (n, kr, kc)
        Non-negative PSF with unit sum (see :func:`xrfgpu._validate.as_psf`).
        A batch of PSFs restores a batch of maps (n, rows, cols) at once.
    shape : tuple of int
        (rows, columns) of the observed map.
    boundary : {"reflect", "periodic"}
        Boundary model (module docstring).
    pad : int, optional
        Reflect padding per side in pixels. Given, it forces the padded FFT
        canvas; by default iterative callers get the exact separable, DCT or
        extended engine, other callers the exact DCT/mirror operator for symmetric
        PSFs and a pad of :func:`default_pad` with ``pad_factor`` for others.
    pad_factor : int
        Multiple of the PSF extent used as the default pad (padded engine).
    iterative : bool
        The caller needs only :meth:`forward` and :meth:`adjoint` (RL,
        FISTA): the exact separable engine (separable PSF, NumPy with ducc0)
        or else the exact extended engine is chosen, unless the DCT engine
        is cheaper than the extended one.
    engine : {"auto", "dct", "mirror", "extended", "separable", "padded", "periodic"}
        Force an engine (tests, benchmarks); ``"auto"`` chooses as above.
    separable_reach : tuple of (int, int), optional
        The separable engine's least reach (before, after) per axis, pixels
        (``reach`` of :class:`xrfgpu._separable.SeparableReflectBlur`): a part
        of a batch blurs on the lines of the whole batch, so that its numbers
        do not depend on the batch (:func:`xrfgpu.joint._stack_problem`).

    Attributes
    ----------
    engine : {"dct", "mirror", "extended", "separable", "padded", "periodic"}
        How the operator is computed (module docstring).
    canvas_shape : tuple of int
        Shape of the arrays :meth:`forward` and :meth:`adjoint` act on (the
        map's shape for the DCT and extended engines).
    transform_shape : tuple of int
        Shape of the FFT canvas (the extended engine's is larger than its
        ``canvas_shape``; the separable engine's is its pair of 1-D line
        lengths).
    otf : array or None
        Transfer function on the transform canvas: complex real-FFT half
        plane, or the real DCT eigenvalues for ``engine == "dct"``. For the
        extended engine it does not diagonalise the operator; the separable
        engine has none (it keeps 1-D kernels).
    lipschitz : float
        Upper bound of ‖A‖² (the step-size bound of gradient methods), see
        :meth:`norm_squared_bound`.
    separable_reach : tuple of (int, int) or None
        Read-only: the separable engine's reach (before, after) along (rows,
        cols), pixels, as it blurs (the PSFs' support, widened to the
        ``separable_reach`` given); None for the other engines. Passing it
        to another operator makes that one blur on the same lines.

    Backends
    --------
    Any array-API namespace; transforms through :mod:`xrfgpu._backend`.
    """

    def __init__(self, psf, shape, *, boundary: str = "reflect", pad: int | None = None, pad_factor: int = 2,
                 iterative: bool = False, engine: str = "auto", separable_reach=None):
        xp = array_namespace(psf)
        if boundary not in BOUNDARIES:
            raise ValueError(f"boundary must be one of {BOUNDARIES}, got {boundary!r}")
        if engine not in ENGINES + ("auto",):
            raise ValueError(f"engine must be 'auto' or one of {ENGINES}, got {engine!r}")
        pad = check_pad(pad, shape, psf.shape)  # before the canvas is sized: pad=10**6 would ask for terabytes
        self.xp = xp
        self.shape = (int(shape[-2]), int(shape[-1]))
        self.boundary = boundary
        self.psf_shape = tuple(psf.shape[-2:])
        self.iterative = bool(iterative)
        dev = array_device(psf)
        # (batch shape, dtype) of the maps the operator acts on
        self._maps_like = (tuple(psf.shape[:-2]), psf.dtype)
        self._index = None
        self._lipschitz = None
        self.pad = 0
        engine = self._choose_engine(psf, xp, boundary, pad, engine)
        self.engine = engine
        self.transform_shape = None
        if engine in ("periodic", "dct"):
            self.canvas_shape = self.shape
        elif engine == "mirror":
            self.canvas_shape = tuple(2 * n for n in self.shape)
            self._index = tuple(xp.asarray(reflect_indices(n, 0, n), device=dev) for n in self.shape)
        elif engine == "separable":
            self.canvas_shape = self.shape
            self._separable = SeparableReflectBlur(self._factors, self.shape, to_numpy(psf).dtype,
                                                   reach=separable_reach)
            self.transform_shape = self._separable.line_shape
        elif engine == "dctfft":
            self.canvas_shape = self.shape
            from ._reflect_fft import inverse_order, makhoul_order

            self._order = tuple(xp.asarray(makhoul_order(n), device=dev) for n in self.shape)
            self._unorder = tuple(xp.asarray(inverse_order(n), device=dev) for n in self.shape)
        elif engine == "extended":
            self.canvas_shape = self.shape
            kr, kc = self.psf_shape
            # rows/cols of scene each output pixel reads above/left (before) and below/right (after)
            self._reach = ((kr - 1 - kr // 2, kr // 2), (kc - 1 - kc // 2, kc // 2))
            for (before, after), n in zip(self._reach, self.shape):
                if max(before, after) > n:
                    raise ValueError(f"PSF of shape {self.psf_shape} reaches past the mirror image of a map of shape {self.shape}")
            size = gpu_fft_size if is_cupy_namespace(xp) else fft_size
            self.transform_shape = (size(self.shape[0] + kr - 1), size(self.shape[1] + kc - 1))
            self._scratch = threading.local()
        else:  # padded
            pad = default_pad(self.psf_shape, pad_factor) if pad is None else int(pad)
            if pad < max(self.psf_shape) // 2:
                raise ValueError(f"pad={pad} is smaller than the PSF half-width {max(self.psf_shape) // 2}")
            self.pad = pad
            self.canvas_shape = tuple(fft_size(n + 2 * pad) for n in self.shape)
            self._index = tuple(
                xp.asarray(reflect_indices(n, pad, c - n - pad), device=dev)
                for n, c in zip(self.shape, self.canvas_shape)
            )
        if self.transform_shape is None:
            self.transform_shape = self.canvas_shape
        self.dct_factors = None
        # "dctfft" with a separable PSF: its 1-D tap vectors (u along the rows axis, v·Σh along the columns;
        # float64 on the host), which the GPU iteration's real-space blur reads (xrfgpu._gpu_rl)
        self.separable_taps = None
        factors = None
        if engine == "dctfft":  # the engine choice has factored the PSF already where NumPy lines could use it
            factors = self._factors if self._factors is not None else separable_factors(psf)
        if factors is not None:
            # λ = λ_rows ⊗ λ_cols: two vectors on the device; the full table only if asked for (otf)
            u, v = factors
            total = np.sum(to_numpy(psf).astype(np.float64), axis=(-2, -1))[..., None, None]
            dev = array_device(psf)
            rows_l = psf_to_dct_eigenvalues(xp.asarray(u[..., :, None], dtype=psf.dtype, device=dev),
                                            (self.shape[0], 1), xp=xp)
            cols_l = psf_to_dct_eigenvalues(xp.asarray((v * total[..., 0])[..., None, :], dtype=psf.dtype,
                                                       device=dev), (1, self.shape[1]), xp=xp)
            self.dct_factors = (rows_l, cols_l)
            self.separable_taps = (np.asarray(u, dtype=np.float64), np.asarray(v * total[..., 0], dtype=np.float64))
            self._otf = self._otf_conj = None
        elif engine in ("dct", "dctfft"):
            self.otf = psf_to_dct_eigenvalues(psf, self.shape, xp=xp)
            self.otf_conj = self.otf
        elif engine == "separable":
            # the operator keeps its own 1-D kernels; no 2-D transfer function is ever formed
            self.otf = self.otf_conj = None
        else:
            self.otf = psf_to_otf(psf, self.transform_shape, xp=xp)
            self.otf_conj = xp.conj(self.otf)

    # The transfer function; for a separable PSF on the "dctfft" engine it is formed from the
    # per-axis eigenvalues (dct_factors) only when something asks for the full table.
    @property
    def otf(self):
        if self.__dict__.get("_otf") is None and self.__dict__.get("dct_factors") is not None:
            rows_l, cols_l = self.dct_factors
            self._otf = rows_l * cols_l
        return self.__dict__.get("_otf")

    @otf.setter
    def otf(self, value):
        self._otf = value

    @property
    def otf_conj(self):
        if self.__dict__.get("_otf_conj") is None and self.__dict__.get("dct_factors") is not None:
            return self.otf  # the DCT eigenvalues are real
        return self.__dict__.get("_otf_conj")

    @otf_conj.setter
    def otf_conj(self, value):
        self._otf_conj = value

    def _choose_engine(self, psf, xp, boundary, pad, engine):
        """The engine for ``engine="auto"``, or a check that the requested one applies."""
        if boundary == "periodic":
            if engine not in ("auto", "periodic"):
                raise ValueError(f"engine {engine!r} is a reflect-boundary engine; boundary='periodic' needs 'periodic'")
            return "periodic"
        symmetric = is_axis_symmetric(psf)
        self._factors = None
        if self.iterative and engine in ("auto", "separable") and pad is None and has_axis_convolution(xp, psf.dtype):
            self._factors = separable_factors(psf)
        if engine == "auto":
            if pad is not None:
                return "padded"
            if self._factors is not None:
                return "separable"
            if self.iterative and is_cupy_namespace(xp):
                # GPU cost model: the reordered-DCT engine transforms the map itself, the
                # extended engine a canvas of the cheapest cuFFT lengths ≥ map + PSF − 1
                kr, kc = self.psf_shape
                extended = gpu_fft_cost((gpu_fft_size(self.shape[0] + kr - 1), gpu_fft_size(self.shape[1] + kc - 1)))
                if symmetric and gpu_fft_cost(self.shape) <= extended:
                    return "dctfft"
                return "extended"
            if self.iterative:
                if symmetric and has_dct(xp) and _dct_is_cheaper(self.shape, self.psf_shape):
                    return "dct"
                return "extended"
            if symmetric:
                return "dct" if has_dct(xp) else "mirror"
            return "padded"
        if engine == "periodic":
            raise ValueError("engine 'periodic' needs boundary='periodic'")
        if engine in ("dct", "mirror", "dctfft") and not symmetric:
            raise ValueError(f"engine {engine!r} needs an odd-sized PSF symmetric along both axes")
        if engine == "dct" and not has_dct(xp):
            raise ValueError(f"engine 'dct' needs a namespace with a DCT (NumPy or CuPy), not {xp.__name__}")
        if engine in ITERATIVE_ONLY_ENGINES and not self.iterative:
            raise ValueError(f"engine {engine!r} has no diagonal transform: it serves iterative algorithms only")
        if engine == "separable" and self._factors is None:
            raise ValueError("engine 'separable' needs NumPy with ducc0 and a PSF that is an outer product of two "
                             "profiles (e.g. a Gaussian with rho = 0)")
        return engine

    @property
    def separable_reach(self):
        """The separable engine's reach ``((before, after), (before, after))`` in pixels, or None (other engines).

        What :class:`xrfgpu._separable.SeparableReflectBlur` blurs with; given back as ``separable_reach=`` of a
        new operator, it makes that one blur on lines of the same lengths (the same FFTs).
        """
        if self.engine != "separable":
            return None
        return tuple(tuple(int(v) for v in pair) for pair in self._separable.reach)

    @property
    def lipschitz(self) -> float:
        """An upper bound of ‖A‖², the largest eigenvalue of AᵀA (over all maps of a batch).

        See :meth:`norm_squared_bound`. Computed once, on first use.
        """
        if self._lipschitz is None:
            self._lipschitz = float(self.norm_squared_bound(lambda a: self.xp.max(a)))
        return self._lipschitz

    def norm_squared_bound(self, amax):
        """Upper bound of ‖A‖² per map, with ``amax`` reducing a (batch of) map(s) to its maximum.

        Diagonal engines: ``amax(|otf|²)`` (1 for a non-negative unit-sum
        PSF). Extended engine: ``amax(A 1) · amax(Aᵀ 1)``, since ‖A‖₂² ≤
        ‖A‖∞ ‖A‖₁ and A is non-negative; 1 for symmetric PSFs, slightly
        above 1 for others (the mirror images near the borders).
        """
        xp = self.xp
        if self.engine not in MATRIX_FREE_ENGINES:
            return amax(xp.real(self.otf * self.otf_conj))
        batch, dtype = self._maps_like
        device = None if self.otf is None else array_device(self.otf)  # the separable engine is NumPy only
        ones = xp.ones(batch + self.shape, dtype=dtype, device=device)
        return amax(self.forward(ones)) * amax(self.adjoint(ones))

    # -- canvas <-> map ---------------------------------------------------
    def embed(self, image):
        """Extend a map (..., rows, cols) to the canvas by the boundary rule (reorder it for ``"dctfft"``)."""
        if self.engine == "dctfft":
            return self._gather(image, self._order)
        if self._index is None:
            return image
        return self._gather(image, self._index)

    def crop(self, canvas):
        """Cut the map's region out of a canvas array (undo the reordering for ``"dctfft"``: a copy)."""
        if self.engine == "dctfft":
            return self._gather(canvas, self._unorder)
        if self._index is None:
            return canvas
        p = self.pad
        r, c = self.shape
        return canvas[..., p : p + r, p : p + c]

    def crop_copy(self, canvas):
        """:meth:`crop` as a new array, never a view of ``canvas`` (the dctfft crop is one already)."""
        out = self.crop(canvas)
        return out if self.engine == "dctfft" else self.xp.asarray(out, copy=True)

    def _gather(self, a, index):
        """``a`` indexed by a (rows, cols) pair of index arrays along its last two axes."""
        rows, cols = index
        return self.xp.take(self.xp.take(a, rows, axis=a.ndim - 2), cols, axis=a.ndim - 1)

    # -- transforms -------------------------------------------------------
    def transform(self, x):
        """Forward transform of a canvas array (real FFT, or DCT-II)."""
        self._require_diagonal("transform")
        if self.engine == "dct":
            return dct2(x, xp=self.xp)
        return rfft2(x, xp=self.xp)

    def inverse_transform(self, spectrum):
        """Inverse of :meth:`transform`, back to a real canvas array."""
        self._require_diagonal("inverse_transform")
        if self.engine == "dct":
            return idct2(spectrum, xp=self.xp)
        return irfft2(spectrum, self.canvas_shape, xp=self.xp)

    # -- operators ----------------------------------------------------------
    def forward(self, x):
        """``h ⊛ x`` on the canvas."""
        if self.engine == "extended":
            return self._extended_forward(x)
        if self.engine == "separable":
            return self._separable.forward(x)
        if self.engine == "dctfft":
            return self._dctfft_apply(x)
        return self.apply_transfer(x, self.otf)

    def forget_scratch(self):
        """Drop the calling thread's scratch canvases: its next blur starts on zeroed ones, as a new operator's does.

        The extended and separable engines keep scratch canvases per thread
        (NumPy). The separable engine writes only the part of each line that a
        blur reads exactly; between the line's two reflections its canvas
        holds the last call's values, which its FFTs mix in at the rounding
        level. An operator kept for many calls in whichever thread runs them
        (:mod:`xrfgpu.dask_rl`'s tiles) calls this first, so its numbers do
        not depend on what that thread ran before, and after, so no canvas
        outlives the call. Other threads' canvases are untouched; the other
        engines keep none.
        """
        if self.engine == "extended":
            self._scratch.__dict__.clear()
        elif self.engine == "separable":
            self._separable.forget_scratch()

    def adjoint(self, x):
        """``ĥ ⊛ x``: correlation with the PSF, the adjoint of :meth:`forward`."""
        if self.engine == "extended":
            return self._extended_adjoint(x)
        if self.engine == "separable":
            return self._separable.adjoint(x)
        if self.engine == "dctfft":
            return self._dctfft_apply(x)  # the blur of a symmetric PSF is symmetric: Aᵀ = A
        return self.apply_transfer(x, self.otf_conj)

    def _dctfft_apply(self, x):
        """The reflect blur on the reordered canvas: irfft2(K(rfft2(x))) (:mod:`xrfgpu._reflect_fft`)."""
        from ._elementwise import reflect_dct_filter

        spectrum = reflect_dct_filter(rfft2(x, xp=self.xp), self.otf, xp=self.xp)
        return irfft2(spectrum, self.canvas_shape, xp=self.xp, overwrite=True)

    def apply_transfer(self, x, transfer):
        """``inverse(transform(x) · transfer)`` for any transfer function on the canvas."""
        from ._elementwise import multiply_spectrum

        spectrum = self.transform(x)
        spectrum = multiply_spectrum(spectrum, transfer, xp=self.xp)
        return self.inverse_transform(spectrum)

    def __getstate__(self):
        # scratch buffers are per thread and per process: not pickled (Dask ships operators to workers)
        # and the namespace is a module: found again from the transfer function
        state = self.__dict__.copy()
        state.pop("_scratch", None)
        state.pop("xp", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        ref = self.otf if self.__dict__.get("dct_factors") is None else self.dct_factors[0]
        self.xp = array_namespace(np.empty(0) if self.engine == "separable" else ref)
        if self.engine == "extended":
            self._scratch = threading.local()

    def _require_diagonal(self, what):
        if self.engine in ITERATIVE_ONLY_ENGINES:
            raise TypeError(f"{what}: the {self.engine!r} engine is not diagonalised by a transform; "
                            "build the operator with iterative=False for closed-form filters")

    # -- the extended (non-circulant) reflect engine ------------------------------------
    def _work(self, name, shape, dtype):
        """A zero-initialised scratch canvas kept per thread (NumPy only), reused across calls."""
        store = self._scratch.__dict__
        key = (name, shape, str(dtype))
        buf = store.get(key)
        if buf is None:
            buf = store[key] = np.zeros(shape, dtype=dtype)
        return buf

    def _extended_forward(self, x):
        """``C H E x``: extend the map by reflection as far as the PSF reaches, convolve, crop."""
        from ._elementwise import multiply_spectrum

        xp = self.xp
        (b0, a0), (b1, a1) = self._reach
        rows, cols = self.shape
        lead = tuple(x.shape[:-2])
        if not is_numpy_namespace(xp) and not is_cupy_namespace(xp):
            # the same extension gathered by the reflected row and column indices (two ``take``), and
            # zero-padded to the canvas by the transform itself (``rfft2(s=)``): the values of the
            # assignments below, bit for bit, in 9 arrays made instead of 19 on array_api_strict, whose
            # every operation, and every slice most, costs tens of µs. CuPy keeps the assignments (kernel
            # launches, not operations, are its cost there, and that path was measured on a GPU).
            rows_index, cols_index = self._reflection_index(x)
            extended = xp.take(xp.take(x, rows_index, axis=x.ndim - 2), cols_index, axis=x.ndim - 1)
            spectrum = rfft2(extended, xp=xp, s=self.transform_shape)
            full = self._inverse(multiply_spectrum(spectrum, self.otf, xp=xp))
            return xp.asarray(full[..., b0 : b0 + rows, b1 : b1 + cols], copy=True)
        canvas = self._work("canvas", lead + self.transform_shape, x.dtype)
        canvas[..., b0 : b0 + rows, b1 : b1 + cols] = x
        if b0:
            canvas[..., :b0, b1 : b1 + cols] = xp.flip(x[..., :b0, :], axis=-2)
        if a0:
            canvas[..., b0 + rows : b0 + rows + a0, b1 : b1 + cols] = xp.flip(x[..., rows - a0 :, :], axis=-2)
        extent = b0 + rows + a0
        if b1:
            canvas[..., :extent, :b1] = xp.flip(canvas[..., :extent, b1 : 2 * b1], axis=-1)
        if a1:
            canvas[..., :extent, b1 + cols : b1 + cols + a1] = xp.flip(
                canvas[..., :extent, b1 + cols - a1 : b1 + cols], axis=-1)
        full = self._inverse(multiply_spectrum(self._spectrum(canvas), self.otf, xp=xp))
        return xp.asarray(full[..., b0 : b0 + rows, b1 : b1 + cols], copy=True)

    def _extended_adjoint(self, r):
        """``Eᵀ Hᵀ Cᵀ r``: place the map on a zero canvas, correlate, fold the reflected border back."""
        from ._elementwise import multiply_spectrum

        xp = self.xp
        (b0, a0), (b1, a1) = self._reach
        rows, cols = self.shape
        lead = tuple(r.shape[:-2])
        if is_numpy_namespace(xp):
            # the forward's canvas: clear the reflected strips it wrote (beyond them it stays zero)
            canvas = self._work("canvas", lead + self.transform_shape, r.dtype)
            height, width = b0 + rows + a0, b1 + cols + a1
            canvas[..., :b0, :width] = 0
            canvas[..., b0 + rows : height, :width] = 0
            canvas[..., b0 : b0 + rows, :b1] = 0
            canvas[..., b0 : b0 + rows, b1 + cols : width] = 0
        else:
            canvas = xp.zeros(lead + self.transform_shape, dtype=r.dtype, device=array_device(r))
        canvas[..., b0 : b0 + rows, b1 : b1 + cols] = r
        full = self._inverse(multiply_spectrum(self._spectrum(canvas), self.otf_conj, xp=xp))
        if not is_numpy_namespace(xp) and not is_cupy_namespace(xp) and rows >= b0 + a0 and cols >= b1 + a1:
            return self._fold_by_concatenation(full)
        # Eᵀ: each reflected strip adds onto the map rows (then columns) it mirrors; the strips
        # themselves are never written, so the folds may overlap on maps narrower than two reaches
        width = b1 + cols + a1
        if b0:
            full[..., b0 : 2 * b0, :width] = full[..., b0 : 2 * b0, :width] + xp.flip(full[..., :b0, :width], axis=-2)
        if a0:
            lo, hi = b0 + rows - a0, b0 + rows
            full[..., lo:hi, :width] = full[..., lo:hi, :width] + xp.flip(full[..., hi : hi + a0, :width], axis=-2)
        if b1:
            full[..., b0 : b0 + rows, b1 : 2 * b1] = (full[..., b0 : b0 + rows, b1 : 2 * b1]
                                                       + xp.flip(full[..., b0 : b0 + rows, :b1], axis=-1))
        if a1:
            lo, hi = b1 + cols - a1, b1 + cols
            full[..., b0 : b0 + rows, lo:hi] = (full[..., b0 : b0 + rows, lo:hi]
                                                + xp.flip(full[..., b0 : b0 + rows, hi : hi + a1], axis=-1))
        return xp.asarray(full[..., b0 : b0 + rows, b1 : b1 + cols], copy=True)

    def _reflection_index(self, x):
        """Row and column indices (integer arrays on ``x``'s device) that gather the reflected extension
        of a map: ``b`` mirrored rows (the edge row included), the map's rows, ``a`` mirrored rows, the same
        for columns; made once per thread and device."""
        store = self._scratch.__dict__
        device = array_device(x)
        key = ("reflection_index", str(device))
        if key not in store:
            index = []
            for (before, after), n in zip(self._reach, self.shape):
                host = np.concatenate([np.arange(before - 1, -1, -1), np.arange(n), np.arange(n - 1, n - 1 - after, -1)])
                index.append(self.xp.asarray(host.astype(np.int64), device=device))
            store[key] = tuple(index)
        return store[key]

    def _fold_by_concatenation(self, full):
        """The folds of :meth:`_extended_adjoint` (``Eᵀ`` on the correlated canvas ``full``) as two sums.

        The reflected strips of rows, flipped, with zeros between them, are added to the map's rows in
        one operation, then the same for the columns of that result: the values of the assignments
        (``x + 0`` is ``x``), bit for bit, in 16 arrays made instead of 22 on array_api_strict, where
        every index costs tens of µs. Only where the folds do not overlap (a map at least two reaches
        wide); not on NumPy or CuPy, which keep the assignments.
        """
        xp = self.xp
        (b0, a0), (b1, a1) = self._reach
        rows, cols = self.shape
        width = b1 + cols + a1
        device = array_device(full)

        def add_strips(target, before, after, between, axis):
            parts = [xp.flip(before, axis=axis)] if before is not None else []
            if between:
                gap = list(target.shape)
                gap[axis] = between
                parts.append(xp.zeros(tuple(gap), dtype=full.dtype, device=device))
            if after is not None:
                parts.append(xp.flip(after, axis=axis))
            return target + (xp.concat(parts, axis=axis) if len(parts) > 1 else parts[0])

        band = full[..., b0 : b0 + rows, :width]
        if b0 or a0:
            band = add_strips(band, full[..., :b0, :width] if b0 else None,
                              full[..., b0 + rows : b0 + rows + a0, :width] if a0 else None, rows - b0 - a0, -2)
        out = band[..., :, b1 : b1 + cols]
        if b1 or a1:
            return add_strips(out, band[..., :, :b1] if b1 else None,
                              band[..., :, b1 + cols : width] if a1 else None, cols - b1 - a1, -1)
        return xp.asarray(out, copy=True)

    def _inverse(self, spectrum):
        """Inverse real FFT of a transform-canvas spectrum (scratch), into a per-thread buffer on NumPy."""
        xp = self.xp
        out = None
        if is_numpy_namespace(xp) and fft_library() == "ducc0":
            real = np.float32 if spectrum.dtype == np.complex64 else np.float64
            out = self._work("inverse", tuple(spectrum.shape[:-2]) + self.transform_shape, real)
        return irfft2(spectrum, self.transform_shape, xp=xp, out=out, overwrite=True)

    def _spectrum(self, canvas):
        """Real FFT of a transform canvas, into a per-thread buffer on NumPy."""
        xp = self.xp
        if is_numpy_namespace(xp):
            half = tuple(canvas.shape[:-1]) + (canvas.shape[-1] // 2 + 1,)
            ctype = np.complex64 if canvas.dtype == np.float32 else np.complex128
            return rfft2(canvas, xp=xp, out=self._work("spectrum", half, ctype) if fft_library() == "ducc0" else None)
        return rfft2(canvas, xp=xp)

    def frequency_grid(self):
        """Angular frequencies (ωr, ωc) of the transform's basis, radians/pixel.

        Real-FFT half plane (2πk/N) for FFT engines; πk/N for the DCT, whose
        basis functions cos(πk(n + ½)/N) make the reflect-boundary
        difference operators diagonal with the same formulas in ω.
        """
        xp = self.xp
        rows, cols = self.canvas_shape
        dev = array_device(self.otf)
        dtype = xp.real(self.otf).dtype
        if self.engine == "dct":
            wr = np.pi * np.arange(rows) / rows
            wc = np.pi * np.arange(cols) / cols
        else:
            wr = 2 * np.pi * np.fft.fftfreq(rows)
            wc = 2 * np.pi * np.fft.rfftfreq(cols)
        return (
            xp.asarray(wr[:, None], dtype=dtype, device=dev),
            xp.asarray(wc[None, :], dtype=dtype, device=dev),
        )
