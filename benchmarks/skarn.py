"""A simulated iron skarn (Yang et al. 2022, §3.4) for the joint-restoration benchmark.

Minerals (concentrations of Si, Ca, Fe relative to each line's reference, in
[0, 1]): matrix (0.35, 0.30, 0.25), garnet (0.55, 0.70, 0.55), calcite
(0.05, 1.0, 0.05), magnetite (0.05, 0.0, 1.0), quartz (1.0, 0.02, 0.02).
Every grain therefore differs from the matrix in all three maps, at different
levels: the grain boundaries are shared. Three garnet disks of radius 26 px
stand apart for the edge-width measurement; one straight quartz vein segment
8 px (40 µm) wide and 175 px long (Si only: Ca and Fe keep the matrix levels) and one magnetite-like
inclusion of radius 4 px (Fe only) sit in the matrix away from the grains.

The maps are scanned with :func:`xrfgpu.simulate.scan` (5 µm steps, 3 µm
stage jitter, 1 % drift, 0.5 s dwell): Fe σ 8 px, Ca σ 10 px, Si σ 16 px,
Si with the fewest counts.
"""

from __future__ import annotations

import numpy as np

from xrfgpu import psf as psf_mod
from xrfgpu import simulate

ELEMENTS = ("Si", "Ca", "Fe")
SIGMA_PX = {"Si": 16.0, "Ca": 10.0, "Fe": 8.0}
# (signal cps on the reference, background cps); dwell 0.5 s
RATES = {"Si": (70.0, 30.0), "Ca": (700.0, 100.0), "Fe": (1000.0, 100.0)}
DWELL_S = 0.5
MINERALS = {
    "matrix": (0.35, 0.30, 0.25),
    "garnet": (0.55, 0.70, 0.55),
    "calcite": (0.05, 1.00, 0.05),
    "magnetite": (0.05, 0.00, 1.00),
    "quartz": (1.00, 0.02, 0.02),
}
SIZE = 288
DISKS = ((70.0, 70.0), (70.0, 218.0), (218.0, 218.0))  # garnet test disks (row, col)
DISK_RADIUS = 26.0
INCLUSION = (150.0, 150.0)
INCLUSION_RADIUS = 4.0
VEIN = ((60.0, 205.0), (230.0, 240.0))  # (row, col) of the vein segment's ends
VEIN_WIDTH = 8.0


def _vein_geometry(yy, xx):
    """Distance (px) to the vein's centre line segment and the position along it (0..1)."""
    (r0, c0), (r1, c1) = VEIN
    dr, dc = r1 - r0, c1 - c0
    length2 = dr * dr + dc * dc
    t = ((yy - r0) * dr + (xx - c0) * dc) / length2
    tc = np.clip(t, 0.0, 1.0)
    return np.hypot(yy - (r0 + tc * dr), xx - (c0 + tc * dc)), t


PAD = 64  # scene margin beyond the scan (4 σ of Si): the maps have real borders


def scene(seed=0, *, pad=0):
    """Concentration maps (3, SIZE, SIZE) of Si, Ca, Fe and the masks of the test features.

    Returns
    -------
    conc : ndarray, shape (3, SIZE, SIZE)
    masks : dict
        ``vein`` (the vein's pixels, middle 70 % of its length), ``vein_side``
        (strips 16–24 px beside it, same stretch), ``inclusion``, ``inclusion_ring``
        (8–16 px around it), ``flat`` (matrix pixels ≥ 22 px from any other
        material in every map: places for the noise of the imprint statistic).
    """
    rng = np.random.default_rng(seed)
    full = SIZE + 2 * pad
    yy, xx = np.mgrid[:full, :full].astype(np.float64) - pad
    label = np.zeros((full, full), dtype=np.int64)  # 0 matrix
    names = list(MINERALS)
    keep_out = [(r, c, DISK_RADIUS + 12) for r, c in DISKS] + [(INCLUSION[0], INCLUSION[1], 26.0)]
    vein_d, vein_t = _vein_geometry(yy, xx)
    placed = 0
    tries = 0
    while placed < 16 and tries < 4000:
        tries += 1
        r0, c0 = rng.uniform(-pad, SIZE + pad), rng.uniform(-pad, SIZE + pad)
        a, b = rng.uniform(12.0, 24.0, size=2)
        t = rng.uniform(0, np.pi)
        reach = max(a, b)
        if any(np.hypot(r0 - r, c0 - c) < reach + k for r, c, k in keep_out):
            continue
        u = ((xx - c0) * np.cos(t) + (yy - r0) * np.sin(t)) / a
        v = (-(xx - c0) * np.sin(t) + (yy - r0) * np.cos(t)) / b
        inside = u * u + v * v <= 1.0
        if np.any(inside & (vein_d < 30)) or np.any(inside & (label != 0)):
            continue
        label[inside] = 1 + (placed % 4)  # garnet, calcite, magnetite, quartz in turn
        keep_out.append((r0, c0, reach + 6))
        placed += 1
    for r, c in DISKS:
        label[np.hypot(yy - r, xx - c) <= DISK_RADIUS] = 1  # garnet
    table = np.array([MINERALS[nm] for nm in names])  # (5, 3)
    conc = np.moveaxis(table[label], -1, 0).copy()  # (3, rows, cols)
    vein = vein_d <= VEIN_WIDTH / 2
    conc[0][vein & (label == 0)] = MINERALS["quartz"][0]
    incl = np.hypot(yy - INCLUSION[0], xx - INCLUSION[1]) <= INCLUSION_RADIUS
    conc[2][incl] = 1.0
    rows_ok = (vein_t >= 0.15) & (vein_t <= 0.85)  # the vein's middle, away from its ends
    ring_d = np.hypot(yy - INCLUSION[0], xx - INCLUSION[1])
    other = (label != 0) | vein | incl
    from scipy import ndimage

    far = ndimage.distance_transform_edt(~other) >= 22
    border = (yy >= 40) & (yy < SIZE - 40) & (xx >= 40) & (xx < SIZE - 40)
    masks = {
        "vein": vein & (label == 0) & rows_ok,
        "vein_side": (vein_d >= 16) & (vein_d <= 24) & (label == 0) & rows_ok,
        "inclusion": incl,
        "inclusion_ring": (ring_d >= 8) & (ring_d <= 16),
        "flat": far & border,
        "label": label,
    }
    return conc, masks


def observe(seed=0, noise_seed=None):
    """Scanned counts (3, SIZE, SIZE), truths (signal counts above background), PSFs and backgrounds.

    ``noise_seed`` draws another noise realisation (counts, jitter, drift) of scene ``seed``
    (default: the benchmark's own, ``seed``).
    """
    conc, masks = scene(seed, pad=PAD)
    noise_seed = seed if noise_seed is None else noise_seed
    inner = (slice(PAD, PAD + SIZE), slice(PAD, PAD + SIZE))
    masks = {k: v[inner] for k, v in masks.items()}
    counts, truths, psfs, backgrounds = [], [], [], []
    for k, el in enumerate(ELEMENTS):
        h = psf_mod.gaussian(None, SIGMA_PX[el])
        s, b = RATES[el]
        # scan the larger scene and keep the middle: every kept point saw real scene, no glass border
        full = simulate.scan(conc[k], h, signal_cps=s, background_cps=b, dwell_s=DWELL_S,
                             pixel_size_um=5.0, seed=noise_seed * 10 + k)
        counts.append(full[inner])
        truths.append(DWELL_S * (s - b) * conc[k][inner])
        psfs.append(h.astype(np.float32))
        backgrounds.append(DWELL_S * b)
    return np.stack(counts), np.stack(truths), psfs, backgrounds, masks


# -- measurements ----------------------------------------------------------------------


def edge_width(image, centre, radius):
    """10–90 % width (px) of a disk's edge: an erf step fitted to the azimuthally averaged profile.

    The profile (1-px radial bins out to ``radius + 30``) is fitted with
    ``outer + (inner − outer) · ½ erfc((r − r₀) / (√2 s))``; the 10–90 % width
    of that step is ``2 · 1.2816 · s``. The fit uses the whole profile, so it
    needs no plateau on either side (a σ = 16 px blur of a 26 px disk has none).
    """
    from scipy.optimize import curve_fit
    from scipy.special import erfc

    yy, xx = np.mgrid[: image.shape[0], : image.shape[1]]
    r = np.hypot(yy - centre[0], xx - centre[1])
    bins = np.arange(0.0, radius + 31.0, 1.0)
    idx = np.digitize(r.ravel(), bins)
    flat = image.ravel()
    keep = [i for i in range(1, len(bins)) if np.any(idx == i)]
    prof = np.array([flat[idx == i].mean() for i in keep])
    rc = np.array([0.5 * (bins[i - 1] + bins[i]) for i in keep])

    def step(rr, inner, outer, r0, s):
        return outer + (inner - outer) * 0.5 * erfc((rr - r0) / (np.sqrt(2.0) * s))

    p0 = (prof[rc < radius * 0.5].mean(), prof[rc > radius + 20].mean(), radius, 3.0)
    try:
        popt, _ = curve_fit(step, rc, prof, p0=p0, bounds=([-np.inf, -np.inf, 0.5 * radius, 0.2],
                                                           [np.inf, np.inf, 1.5 * radius, 40.0]))
    except RuntimeError:
        return float("nan")
    return float(2.0 * 1.2815515655446004 * popt[3])


def widths(image):
    return float(np.nanmean([edge_width(image, c, DISK_RADIUS) for c in DISKS]))


def interior_mse(image, truth, margin=32):
    sl = (slice(margin, -margin), slice(margin, -margin))
    return float(np.mean((image[sl] - truth[sl]) ** 2))


def imprint(image, masks, centre=INCLUSION, rng_seed=0, n=200):
    """Inclusion imprint (disk mean − ring mean) and its noise (spread of the statistic on flat matrix)."""
    yy, xx = np.mgrid[: image.shape[0], : image.shape[1]]

    def stat(c):
        d = np.hypot(yy - c[0], xx - c[1])
        return image[d <= INCLUSION_RADIUS].mean() - image[(d >= 8) & (d <= 16)].mean()

    value = stat(centre)
    cand = np.argwhere(masks["flat"])
    rng = np.random.default_rng(rng_seed)
    pick = cand[rng.choice(len(cand), size=min(n, len(cand)), replace=False)]
    noise = float(np.std([stat(p) for p in pick]))
    return float(value), noise


def vein_contrast(image, masks):
    return float(image[masks["vein"]].mean() - image[masks["vein_side"]].mean())
