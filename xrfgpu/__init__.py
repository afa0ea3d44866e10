"""xrfgpu: sharper micro-XRF elemental maps by deconvolution, on NumPy or CuPy.

Every algorithm is written once against the Python array API; see
:mod:`xrfgpu.fft` for the convolution model and boundaries.

Submodules and functions that pull in optional dependencies (Dask, I/O
libraries, CuPy) are imported lazily, on first attribute access.
"""

from __future__ import annotations

import importlib

from . import psf
from .fft import Convolution
from .fista import fista, ista
from .richardson_lucy import poisson_divergence, richardson_lucy
from .wiener import tikhonov, wiener

# the front door; its module is xrfgpu.front_door, so xrfgpu.restore is only ever the function
from .front_door import restore

__version__ = "0.1.0"

# name -> (module, attribute or None for the module itself)
_LAZY = {
    "restore_stack": ("xrfgpu.stack", "restore_stack"),
    "blind_l0": ("xrfgpu.blind", "blind_l0"),
    "blind": ("xrfgpu.blind", None),
    "usaf": ("xrfgpu.usaf", None),
    "simulate": ("xrfgpu.simulate", None),
    "metrics": ("xrfgpu.metrics", None),
    "phantom": ("xrfgpu.phantom", None),
    "io": ("xrfgpu.io", None),
    "dask": ("xrfgpu.dask", None),
    "cuda": ("xrfgpu.cuda", None),
}

__all__ = [
    "Convolution",
    "fista",
    "ista",
    "poisson_divergence",
    "psf",
    "restore",
    "richardson_lucy",
    "tikhonov",
    "wiener",
    "__version__",
    *_LAZY,
]


def __getattr__(name):
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'xrfgpu' has no attribute {name!r}") from None
    mod = importlib.import_module(module)
    return mod if attr is None else getattr(mod, attr)


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
