"""Stacks shared by the joint restoration's before/after benchmarks (``joint_speed.py``, ``joint_cv_skip.py``).

Each function returns ``(stack, psfs, options)``: the maps, one PSF per map and the keyword arguments
of :func:`xrfgpu.joint.joint_richardson_lucy` that the case needs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
#: the five real HXN maps (../shared/data/README.md: licence and attribution), as benchmarks/hxn_joint.py reads them
REAL = Path("../shared/data/hxn_nanoparticles_xrf")
REAL_ELEMENTS = ("Fe", "Cr", "S", "P", "Si")


def skarn_crop(seed, crop=None):
    """The simulated skarn of ``skarn.observe(seed)``, its central ``crop``² pixels (None: whole).

    PSFs larger than the crop keep their central (crop − 1)², renormalised to unit sum.
    """
    import skarn

    counts, _, psfs, bgs, _ = skarn.observe(int(seed))
    if crop is not None:
        c = int(crop)
        r0 = (counts.shape[-1] - c) // 2
        counts = counts[:, r0:r0 + c, r0:r0 + c]
        if c <= max(h.shape[0] for h in psfs):
            cut = [(h.shape[0] - (c - 1)) // 2 for h in psfs]
            psfs = [h[k:-k, k:-k] / h[k:-k, k:-k].sum() if k > 0 else h for h, k in zip(psfs, cut)]
    return counts, psfs, {"background": list(bgs)}


def real_hxn(n=len(REAL_ELEMENTS), side=None):
    """The first ``n`` real HXN maps (fitted, not counts) in float32, their central ``side``² (None: whole).

    One Gaussian PSF for all, σ from :func:`xrfgpu.psf.estimate_sigma` on Fe (the guide);
    ``background="auto"``.
    """
    import tifffile

    from xrfgpu.psf import estimate_sigma, gaussian

    maps = np.stack([tifffile.imread(REAL / f"SUM_maps_XRF_{e}_K.tiff").astype(np.float32)
                     for e in REAL_ELEMENTS[: int(n)]])
    if side is not None:
        r0 = (maps.shape[-1] - int(side)) // 2
        maps = maps[:, r0:r0 + int(side), r0:r0 + int(side)]
    h = gaussian(None, float(estimate_sigma(maps[0]).sigma))
    return maps, [h] * maps.shape[0], {"guide": 0, "background": "auto"}
