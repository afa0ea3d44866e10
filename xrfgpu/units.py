"""Lengths written by people: ``"37.5um"``, ``"5 µm"``, ``"0.04mm"`` → micrometres.

The command line takes every physical length with its unit, so a PSF σ of
37.5 µm can never be mistaken for 37.5 pixels. A bare number is refused
(say which unit you mean); pixels (``"3px"``) are accepted only where the
caller allows them and knows the pixel size.
"""

from __future__ import annotations

import math
import re

__all__ = ["UM_PER_UNIT", "parse_length_um", "format_um"]

#: Micrometres per unit, keyed by the spellings accepted (lower case).
UM_PER_UNIT = {
    "nm": 1e-3,
    "um": 1.0,
    "µm": 1.0,  # U+00B5 MICRO SIGN
    "μm": 1.0,  # U+03BC GREEK SMALL LETTER MU
    "micron": 1.0,
    "microns": 1.0,
    "micrometer": 1.0,
    "micrometre": 1.0,
    "micrometers": 1.0,
    "micrometres": 1.0,
    "mm": 1e3,
    "cm": 1e4,
    "m": 1e6,
}

_PIXEL_UNITS = ("px", "pixel", "pixels", "pix")

_LENGTH = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([^\d\s].*?)?\s*$")


def parse_length_um(text, *, what="length", pixel_size_um=None, allow_pixels=False, allow_zero=False):
    """Parse a length with its unit and return it in micrometres.

    Parameters
    ----------
    text : str or float
        E.g. ``"37.5um"``, ``"5 µm"``, ``"0.04mm"``, ``"40 microns"``,
        ``"500nm"``; ``"3px"`` when ``allow_pixels`` is true. A float is taken
        as µm (for Python callers that already hold a number).
    what : str
        Name of the quantity, used in error messages (``"pixel size"``).
    pixel_size_um : float, optional
        Converts pixel lengths to µm when ``allow_pixels`` is true.
    allow_pixels : bool
        Accept ``px``/``pixels`` (needs ``pixel_size_um``).
    allow_zero : bool
        Accept 0 (default: the length must be strictly positive).

    Returns
    -------
    float
        Length in µm, finite and positive (or zero where allowed).

    Raises
    ------
    ValueError
        No number, no unit, an unknown unit (the message lists the known
        ones), a pixel length where none is allowed, or a non-positive or
        non-finite value.

    Examples
    --------
    >>> parse_length_um("37.5um"), parse_length_um("5 µm"), parse_length_um("0.04mm")
    (37.5, 5.0, 40.0)
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value_um = float(text)
    else:
        if not isinstance(text, str):
            raise TypeError(f"{what} must be a string such as '5um', got {type(text).__name__}")
        match = _LENGTH.match(text)
        if match is None:
            raise ValueError(f"{what} {text!r} is not a number with a unit (write e.g. '5um', '0.04mm')")
        number, unit = float(match.group(1)), (match.group(2) or "").strip()
        if not unit:
            raise ValueError(f"{what} {text!r} has no unit: write e.g. '{match.group(1)}um' or '{match.group(1)}mm'")
        key = unit.lower() if unit not in ("µm", "μm") else unit
        if key in UM_PER_UNIT:
            value_um = number * UM_PER_UNIT[key]
        elif key in _PIXEL_UNITS:
            if not allow_pixels:
                raise ValueError(f"{what} {text!r} is in pixels; give a physical length such as '5um'")
            if pixel_size_um is None:
                raise ValueError(f"{what} {text!r} is in pixels but the pixel size is unknown (give --pixel-size)")
            value_um = number * float(pixel_size_um)
        else:
            known = "nm, um (µm, micron), mm, cm, m" + (", px" if allow_pixels else "")
            raise ValueError(f"{what} {text!r}: unknown unit {unit!r} (known units: {known})")
    if not math.isfinite(value_um):
        raise ValueError(f"{what} {text!r} is not finite")
    if value_um < 0 or (value_um == 0 and not allow_zero):
        raise ValueError(f"{what} {text!r} must be positive")
    return value_um


def format_um(value_um, digits=4):
    """Format a length in µm for people: ``format_um(37.5) == '37.5 µm'``."""
    return f"{float(value_um):.{digits}g} µm"
