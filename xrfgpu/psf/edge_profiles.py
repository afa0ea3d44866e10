"""σ from short profiles across the map's strongest edges, straight or curved (a phase-aware stage).

A Gaussian blur leaves the Fourier phases of the scene alone: an edge stays where it
is, only its profile widens to a blurred step of width σ. This module reads σ from
that widening at many places of the map, wherever an edge is strong, not only on
long straight edges (:func:`xrfgpu.psf.blind_sigma._edge_fits` needs runs of 8σ):

1. The map is smoothed lightly (Gaussian of max(1, σ₀/2) px, σ₀ a first guess of σ)
   and its gradient taken; edge pixels are the local maxima of the gradient magnitude
   along the gradient direction (non-maximum suppression, as in Canny's detector)
   above ``threshold`` noise standard deviations of that gradient.
2. The strongest edge pixels are taken greedily, each at least ``spacing`` from those
   already taken, so that the profiles hold mostly different pixels. With integer counts
   (:func:`profiles_on_thinned_halves`) they are found on one binomial half of the map
   and fitted on the other, so that the noise that made them strong does not also make
   them look sharp.
3. Around each one, the map's own pixels in a short strip |t| ≤ 3.5σ₀ + 3 across the
   edge and |u| ≤ max(1.5, σ₀) along it are binned by their distance t across the
   edge (half-pixel bins; no interpolation, so no extra blur) and the binned profile is
   fitted by a blurred 1-D piecewise-constant scene, β + Σ_j a_j Φ((t − t_j)/σ), 1 or 2
   steps chosen by BIC (:func:`xrfgpu.psf.blind_sigma._fit_steps`): a neighbouring edge,
   or the far side of a thin line, is part of the model rather than a bias. Two steps
   closer than 2σ give the width of the blurred box, √(σ² + d²/12) (see
   :func:`_effective_width`). One, two or three steps gave about the same low σ on
   tuning maps at σ = 12 px (0.50–0.80 × truth): there the bias is other structure
   inside the strip, which the 1-D model cannot hold (the combination rule of
   :func:`xrfgpu.psf.estimate_sigma` leaves such maps to the spectrum). The edge's
   curvature κ is ignored: over the strip's half-length U it shifts the edge by at most
   κU²/2 and widens the profile by about that much; its reduced χ² on the strip's
   pixels (data minus the 1-D model) rejects profiles where the scene is not 1-D.
4. The accepted profiles' σ's are combined in log σ: their median, and a robust spread
   (1.4826 × the median absolute deviation) from which the standard error of the median
   is 1.2533 × spread/√n.

The scene must have edges sharper than σ for this to read σ: a scene's own smooth
gradation is credited to the blur (σ too large), as for any edge-width method.

References
----------
J. Canny, "A computational approach to edge detection", IEEE Trans. Pattern Anal.
Mach. Intell. 8, 679 (1986), doi:10.1109/TPAMI.1986.4767851.
S. Zhuo, T. Sim, "Defocus map estimation from a single image", Pattern Recognit. 44,
1852 (2011), doi:10.1016/j.patcog.2011.03.009 (edge width as the local blur).
ISO 12233:2017, slanted-edge method (profiles binned by distance to the edge).
"""

from __future__ import annotations

import math

import numpy as np

from .._backend import _usable_cores

__all__ = ["local_edge_profiles", "combine_profile_sigmas"]


def _transposed(image):
    """C-contiguous copy of ``image.T`` (2-D), copied 64 rows at a time (about twice as fast as one
    strided copy of a 1024² float64 map: each block's reads and writes stay in cache)."""
    rows, cols = image.shape
    out = np.empty((cols, rows), dtype=image.dtype)
    for r0 in range(0, rows, 64):
        out[:, r0 : r0 + 64] = image[r0 : r0 + 64].T
    return out


_THREADED_PIXELS = 256 * 256
"""Maps of at least this many pixels have their two gradient components filtered in two threads
(:func:`smoothed_gradient`): the same numbers, in about half the wall time where two cores are free."""


def _in_thread(function, *args, **kwargs):
    """Start ``function(*args, **kwargs)`` in a new thread; returns a callable that waits and gives its result (or
    raises its exception)."""
    import threading

    out = {}

    def run():
        try:
            out["value"] = function(*args, **kwargs)
        except BaseException as error:  # noqa: BLE001  (handed to the caller)
            out["error"] = error

    thread = threading.Thread(target=run, name="xrfgpu-gradient", daemon=True)
    thread.start()

    def result():
        thread.join()
        if "error" in out:
            raise out["error"]
        return out["value"]

    return result


def smoothed_gradient(data, sigma0, *, threads=True):
    """Gaussian-derivative gradient of a map at half the blur σ₀ (at least 1 px), and its noise gain.

    Parameters
    ----------
    data : ndarray
        2-D map (NumPy).
    sigma0 : float
        A first guess of the blur σ (px); the derivative filter's σ is max(1, σ₀/2).
    threads : bool
        Filter the two components in two threads on maps of at least :data:`_THREADED_PIXELS` pixels
        (the same numbers either way; False where the caller already runs another gradient beside this one).

    Returns
    -------
    gx, gy, magnitude : ndarray
        Derivatives along columns and rows (per px) and |∇|.
    gain : float
        Standard deviation of one derivative component on white noise of unit variance.
    """
    from scipy import ndimage

    smooth = max(1.0, 0.5 * sigma0)
    # gy = ∂/∂rows then smoothing along the columns, gx = smoothing along the rows then ∂/∂columns, as
    # ndimage.gaussian_filter(data, smooth, order=(1, 0) / (0, 1), mode="nearest") computes them, axis 0
    # first; the passes along axis 0 run on the transposed map, whose columns are then contiguous rows
    # (each line is filtered by the same arithmetic, so the numbers are the same, in less time)
    def along_rows(image, order):
        return ndimage.gaussian_filter1d(image, smooth, axis=1, order=order, mode="nearest")

    def derivative(transposed, along_axis0, along_axis1):
        return along_rows(_transposed(along_rows(transposed, along_axis0)), along_axis1)

    transposed = _transposed(data)
    if threads and data.size >= _THREADED_PIXELS:
        # gy in a second thread while this one makes gx: SciPy's filters and the copies release the GIL
        gy = _in_thread(derivative, transposed, 1, 0)
        gx = derivative(transposed, 0, 1)
        gy = gy()
    else:
        gy = derivative(transposed, 1, 0)
        gx = derivative(transposed, 0, 1)
    delta = np.zeros((2 * int(4 * smooth) + 3,) * 2)
    delta[delta.shape[0] // 2, delta.shape[1] // 2] = 1.0
    gain = math.sqrt(float((ndimage.gaussian_filter(delta, smooth, order=(0, 1)) ** 2).sum()))
    return gx, gy, np.hypot(gx, gy), gain


def _edge_pixels(data, sigma0, noise_sd, *, threshold, threads=True):
    """Gradient (gx, gy), its magnitude and the mask of non-maximum-suppressed edge pixels above threshold
    (``threads``: as :func:`smoothed_gradient`)."""
    gx, gy, mag, gain = smoothed_gradient(data, sigma0, threads=threads)
    strong = mag > threshold * noise_sd * gain
    # non-maximum suppression along the gradient direction, rounded to the nearest of 8 neighbours; the
    # direction is needed at the strong pixels only (whose magnitude is above a threshold ≥ 0, so > 0)
    rows, cols = data.shape
    flat = np.flatnonzero(strong)  # row-major, as np.nonzero; read through flat indices (faster than pairs)
    rr, cc = np.divmod(flat, cols)
    mag_flat = mag.ravel()
    m = mag_flat[flat]
    with np.errstate(invalid="ignore", divide="ignore"):
        dy = np.rint(np.where(m > 0, gy.ravel()[flat] / m, 0.0)).astype(np.int64)
        dx = np.rint(np.where(m > 0, gx.ravel()[flat] / m, 0.0)).astype(np.int64)
    fwd = mag_flat[np.clip(rr + dy, 0, rows - 1) * cols + np.clip(cc + dx, 0, cols - 1)]
    bwd = mag_flat[np.clip(rr - dy, 0, rows - 1) * cols + np.clip(cc - dx, 0, cols - 1)]
    keep = (m >= fwd) & (m >= bwd)
    return gx, gy, mag, rr[keep], cc[keep]


def _effective_width(sigma, p, n_steps, *, close=2.0):
    """σ of a 2-step fit whose steps are closer than ``close`` σ, as the width the data pin down.

    Two opposite steps d apart (a line or bar of width d) blurred by σ are a box ⊛ Gaussian of
    variance σ² + d²/12; two steps of one sign are an edge whose derivative has variance
    σ² + a₁a₂d²/(a₁ + a₂)². For d below about 2σ noise moves the fit along that ridge (a smaller σ
    with a larger d), so the ridge's value is returned: an upper bound of σ that is close to it
    for lines thinner than σ (σ² + d²/12 ≤ 1.09 σ² … for d ≤ σ).
    """
    sigma = abs(float(sigma))
    if n_steps != 2:
        return sigma
    a1, t1, a2, t2 = (float(v) for v in p[2:6])
    d = abs(t2 - t1)
    if d >= close * sigma:
        return sigma
    if a1 * a2 < 0:
        return math.sqrt(sigma * sigma + d * d / 12.0)
    return math.sqrt(sigma * sigma + a1 * a2 * d * d / (a1 + a2) ** 2)


_THRESHOLD = 6.0  # local_edge_profiles' default edge threshold (noise standard deviations of the gradient)


def local_edge_profiles(data, sigma0, noise_power, *, max_profiles=80, threshold=_THRESHOLD, spacing=None,
                        max_steps=2, detect=None, detect_noise_power=None, tol=1e-5, edges=None):
    """σ (px) from blurred-step fits of short profiles across the strongest edges of ``data``.

    Parameters
    ----------
    data : numpy.ndarray, shape (rows, cols)
        Counts map (float64); the pixel variance is taken as max(value, 1) (Poisson).
    sigma0 : float
        First guess of σ (px), e.g. the spectral estimate; sets the smoothing, the strip's
        size and the fits' starting point.
    noise_power : float
        White-noise variance per pixel (counts²), for the edge threshold.
    max_profiles : int
        At most this many profiles are fitted.
    threshold : float
        Edge pixels must have a gradient magnitude above this many noise standard deviations.
    spacing : float, optional
        Least distance (px, Chebyshev) between the centres of two profiles; default max(2σ₀, 5).
    max_steps : int
        Most steps of the 1-D scene model (BIC chooses 1 … ``max_steps``).
    detect, detect_noise_power : numpy.ndarray and float, optional
        A map of the same shape on which the edges are found instead (and its noise power).
    tol : float
        Relative tolerance of each profile's least-squares fit (MINPACK's ftol and xtol).
    edges : tuple, optional
        The edges already found (``_edge_points`` of ``data`` or ``detect``, with the same
        ``threshold``); then nothing is detected here.

    Returns
    -------
    list of dict
        One per fitted profile: ``sigma`` and ``stderr`` (px), ``reduced_chi2`` (on the strip's
        pixels), ``steps``, ``row``, ``col``, ``gradient`` (in noise standard deviations), ``normal``
        (the unit normal of the edge, (n_u, n_v): along the columns and the rows).

    Notes
    -----
    See the module docstring. The binned profile is fitted by Poisson-weighted least squares;
    ``stderr`` is the fit's standard error of σ, scaled up by √(χ²/dof) when that exceeds 1.

    Backends: NumPy input (called by :func:`xrfgpu.psf.estimate_sigma` on the host copy).
    """
    if edges is None and detect is None:
        edges = _edge_points(data, sigma0, noise_power, threshold=threshold)
    elif edges is None:
        edges = _edge_points(detect, sigma0, detect_noise_power, threshold=threshold)
    return _profiles_at_edges(data, sigma0, edges, max_profiles=max_profiles, spacing=spacing, max_steps=max_steps,
                              tol=tol)


def _edge_points(detect, sigma0, noise_power, *, threshold, threads=True):
    """The edge pixels of ``detect`` (:func:`_edge_pixels`) and what :func:`_profiles_at_edges` reads of its
    gradient there: (rows, cols, |∇|, ∂/∂cols, ∂/∂rows at those pixels, the noise standard deviation)."""
    noise_sd = math.sqrt(max(float(noise_power), 1e-300))
    gx, gy, mag, rr, cc = _edge_pixels(detect, sigma0, noise_sd, threshold=threshold, threads=threads)
    return rr, cc, mag[rr, cc], gx[rr, cc], gy[rr, cc], noise_sd


def _profiles_at_edges(data, sigma0, edges, *, max_profiles, spacing, max_steps, tol):
    """The profile fits of :func:`local_edge_profiles` on ``data`` around the edge pixels ``edges``
    (:func:`_edge_points`, found on ``data`` or on another map of the same shape)."""
    from .blind_sigma import _fit_steps, _steps_model

    rows, cols = data.shape
    rr, cc, mag_at, gx_at, gy_at, noise_sd = edges
    half_t = 3.5 * sigma0 + 3.0
    half_u = max(1.5, sigma0)
    reach = int(math.ceil(math.hypot(half_t, half_u))) + 1
    inside = (rr >= reach) & (rr < rows - reach) & (cc >= reach) & (cc < cols - reach)
    rr, cc, mag_at, gx_at, gy_at = rr[inside], cc[inside], mag_at[inside], gx_at[inside], gy_at[inside]
    order = np.argsort(mag_at)[::-1]
    gap = int(math.ceil(spacing if spacing is not None else max(2.0 * sigma0, 5.0)))
    taken = np.zeros(data.shape, bool)
    offsets = np.arange(-reach, reach + 1, dtype=np.float64)
    oy, ox = np.meshgrid(offsets, offsets, indexing="ij")
    fits = []
    for i in order:
        if len(fits) >= max_profiles:
            break
        r, c = int(rr[i]), int(cc[i])
        if taken[r, c]:
            continue
        taken[max(r - gap, 0) : r + gap + 1, max(c - gap, 0) : c + gap + 1] = True
        m = float(mag_at[i])
        ny, nx = float(gy_at[i]) / m, float(gx_at[i]) / m
        t = ox * nx + oy * ny
        u = -ox * ny + oy * nx
        strip = (np.abs(t) <= half_t) & (np.abs(u) <= half_u)
        ts = t[strip]
        vs = data[r - reach : r + reach + 1, c - reach : c + reach + 1][strip]
        step = 0.5
        bins = np.round(ts / step).astype(np.int64)
        b0 = int(bins.min())
        bins -= b0
        count = np.bincount(bins)
        total = np.bincount(bins, vs)
        good = count >= 2
        if good.sum() < 12:
            continue
        tb = (np.flatnonzero(good) + b0) * step
        yb = total[good] / count[good]
        fit = _fit_steps(tb, yb, np.maximum(yb, 1.0) / count[good], sigma0, max_steps=max_steps, tol=tol)
        if fit is None or not math.isfinite(fit[2]):
            continue
        pred = _steps_model(ts, fit[4], fit[3])
        reduced_chi2 = float(np.mean((vs - pred) ** 2 / np.maximum(pred, 1.0)))
        sigma = _effective_width(fit[1], fit[4], fit[3])
        fits.append({"sigma": sigma, "stderr": float(fit[2]), "reduced_chi2": reduced_chi2,
                     "steps": int(fit[3]), "row": r, "col": c, "gradient": m / noise_sd, "normal": (nx, ny)})
    return fits


def combine_profile_sigmas(fits, *, chi2_max=1.2, min_profiles=8):
    """Median σ (px) of the accepted profiles in log σ, with its robust standard error.

    Parameters
    ----------
    fits : list of dict
        Output of :func:`local_edge_profiles`.
    chi2_max : float
        Profiles whose reduced χ² exceeds this are left out.
    min_profiles : int
        Fewer accepted profiles give ``None``.

    Returns
    -------
    dict or None
        ``sigma`` (px), ``log_se`` (standard error of ln σ: 1.2533 × 1.4826 MAD / √n),
        ``log_spread`` (1.4826 MAD of ln σ), ``n`` (profiles used).
    """
    ok = np.array([f["sigma"] for f in fits if f["reduced_chi2"] <= chi2_max], dtype=np.float64)
    if ok.size < min_profiles:
        return None
    logs = np.log(ok)
    centre = float(np.median(logs))
    spread = 1.4826 * float(np.median(np.abs(logs - centre)))
    return {"sigma": math.exp(centre), "log_se": 1.2533 * spread / math.sqrt(ok.size), "log_spread": spread,
            "n": int(ok.size)}


#: the least noise variance per pixel (map units²) at which a non-integer map is rounded for the thinned
#: halves of :func:`profiles_on_thinned_halves`: rounding adds 1/12, at most 8 % of it
ROUND_FOR_SPLIT_NOISE_MIN = 1.0


def profiles_on_thinned_halves(data, sigma0, noise_power, *, seed=0, **options):
    """:func:`local_edge_profiles` with the edges found on one Poisson half of the counts and fitted on the other.

    Choosing the strongest gradient pixels of a noisy map and fitting the same pixels favours
    the noise draws that make an edge look sharper, so σ comes out low (on a 160² bar chart at
    σ = 2 px and 150/140 counts the median profile σ was 0.92 × truth). A binomial split of
    integer counts, A ~ Binomial(n, ½), B = n − A, gives two independent Poisson maps of half
    the mean: edges are found on A and fitted on B, then the other way round, and both sets of
    fits are returned. A non-negative map that is not integers but whose noise variance
    ``noise_power`` is at least :data:`ROUND_FOR_SPLIT_NOISE_MIN` (a fitted map's effective counts,
    map / gain) is rounded for the split, as the cross-validated stop rounds it
    (:func:`xrfgpu.front_door.rl_iteration_count`; rounding adds a variance of 1/12, at most 8 % of
    the noise's): fitted on the pixels its edges were found on, σ depended on whether the counts
    were exact integers (a count map + 0.25 read 2.6-5.8 % lower, and once decided by another
    stage). Other maps (negative values; a fitted map in its own units, µg/cm², where rounding
    would erase it) are used as they are (the selection bias then stays).
    """
    from .._backend import array_namespace
    from ..background import is_count_map
    from ..stopping import split_counts

    if not is_count_map(data):
        xp = array_namespace(data)
        if not (float(noise_power) >= ROUND_FOR_SPLIT_NOISE_MIN and bool(xp.all(data >= 0))):
            return local_edge_profiles(data, sigma0, noise_power, **options)
        data = xp.round(data)
    first, second = split_counts(data, seed=seed)
    half = 0.5 * float(noise_power)
    if first.size < _THREADED_PIXELS:
        return (local_edge_profiles(second, sigma0, half, detect=first, detect_noise_power=half, **options)
                + local_edge_profiles(first, sigma0, half, detect=second, detect_noise_power=half, **options))
    # the same two calls, with the edges of the second half found in another thread while this one finds those
    # of the first and fits their profiles (the gradients and the selection release the GIL, the fits do not).
    # Each gradient splits its two components over two more threads only where four cores can take them: on
    # two cores the four passes at once gained nothing and held two more sets of map-sized arrays (the σ
    # stage's traced peak 416 -> 352 MB on a 2048² map, the same time and numbers)
    threshold = options.get("threshold", _THRESHOLD)
    inner = _usable_cores() >= 4
    edges_of_second = _in_thread(_edge_points, second, sigma0, half, threshold=threshold, threads=inner)
    edges_of_first = _edge_points(first, sigma0, half, threshold=threshold, threads=inner)
    on_second = local_edge_profiles(second, sigma0, half, edges=edges_of_first, **options)
    return on_second + local_edge_profiles(first, sigma0, half, edges=edges_of_second(), **options)
