"""Point spread functions: the Gaussian model, unit helpers, and PSF estimation.

Estimation from data (dot scan, knife edge, blind kernel, σ from the map
alone) and the per-element-line PSF table live in submodules and are
re-exported here.
"""

from ._gauss2d import GaussianSpotFit
from ._gaussian import (
    FWHM_PER_SIGMA,
    fwhm_to_sigma,
    gaussian,
    gaussian_for_map,
    gaussian_shape,
    pixels_to_um,
    sigma_to_fwhm,
    um_to_pixels,
)
from .blind_sigma import SigmaEstimate, estimate_sigma
from .dot import DotFit, fit_dot
from .dot_size import DiskSpotFit, dot_is_resolved, fit_disk_spot
from .kernel_fit import KernelFit, sigma_from_kernel
from .knife_edge import EdgeAngleWarning, KnifeEdgeFit, fit_knife_edge
from .model import PSFModel, line_energy_kev, normalise_line

__all__ = [
    "DiskSpotFit",
    "DotFit",
    "GaussianSpotFit",
    "KnifeEdgeFit",
    "PSFModel",
    "line_energy_kev",
    "normalise_line",
    "fit_dot",
    "fit_disk_spot",
    "dot_is_resolved",
    "fit_knife_edge",
    "EdgeAngleWarning",
    "KernelFit",
    "SigmaEstimate",
    "estimate_sigma",
    "sigma_from_kernel",
    "FWHM_PER_SIGMA",
    "fwhm_to_sigma",
    "gaussian",
    "gaussian_for_map",
    "gaussian_shape",
    "pixels_to_um",
    "sigma_to_fwhm",
    "um_to_pixels",
]
