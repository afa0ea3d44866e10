"""What every PSF result shares: σ and FWHM in pixels, with µm twins when the pixel size is known."""

from __future__ import annotations

from ._gaussian import FWHM_PER_SIGMA

__all__ = ["PixelLengths"]


class PixelLengths:
    """Mixin for PSF results that have ``sigma`` (pixels) and ``pixel_size_um`` (µm or None).

    Gives ``fwhm`` = 2√(2 ln 2) σ and the ``sigma_um`` / ``fwhm_um`` twins;
    ``_um`` converts any other length and raises :class:`AttributeError`
    when no pixel size was given.
    """

    def _um(self, value):
        if self.pixel_size_um is None:
            raise AttributeError("no pixel_size_um was given; lengths are in pixels only")
        return value * self.pixel_size_um

    @property
    def fwhm(self) -> float:
        """FWHM = 2√(2 ln 2) σ, pixels (for an elliptical spot: of the equal-area isotropic Gaussian)."""
        return FWHM_PER_SIGMA * self.sigma

    sigma_um = property(lambda self: self._um(self.sigma), doc="σ in µm.")
    fwhm_um = property(lambda self: self._um(self.fwhm), doc="FWHM in µm.")
