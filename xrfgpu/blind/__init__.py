"""Blind restoration: the L0-regularised intensity and gradient prior (Pan et al. 2014).

* :func:`blind_l0` — the authors' blind deconvolution, step by step
  (coarse-to-fine pyramid, half-quadratic L0 image step, CG kernel step,
  kernel clean-up, TV + ringing-removal final restoration);
* :func:`blind_rl` — the hybrid pipeline of Yang et al. (2022): blind kernel →
  Gaussian σ → Richardson–Lucy with background.

Submodules: :mod:`~xrfgpu.blind.matlab` (MATLAB conventions),
:mod:`~xrfgpu.blind.image_step`, :mod:`~xrfgpu.blind.kernel_step`,
:mod:`~xrfgpu.blind.restoration`, :mod:`~xrfgpu.blind.pipeline`.
"""

from .pipeline import BlindLevel, BlindResult, BlindRLResult, blind_l0, blind_rl, pyramid_plan

__all__ = ["BlindLevel", "BlindResult", "BlindRLResult", "blind_l0", "blind_rl", "pyramid_plan"]
