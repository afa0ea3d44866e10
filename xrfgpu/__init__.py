"""xrfgpu: sharper micro-XRF elemental maps by deconvolution, on NumPy or CuPy.

Every algorithm is written once against the Python array API; see
:mod:`xrfgpu.fft` for the convolution model and boundaries.
"""

from . import psf
from .fft import Convolution
from .fista import fista, ista
from .richardson_lucy import poisson_divergence, richardson_lucy
from .wiener import tikhonov, wiener

__version__ = "0.1.0"

__all__ = [
    "Convolution",
    "fista",
    "ista",
    "poisson_divergence",
    "psf",
    "richardson_lucy",
    "tikhonov",
    "wiener",
    "__version__",
]
