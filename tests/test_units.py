"""Lengths with units → µm (xrfgpu.units)."""

import math

import pytest

from xrfgpu.units import parse_length_um


@pytest.mark.parametrize(
    "text, expected_um",
    [
        ("37.5um", 37.5),
        ("5 µm", 5.0),  # micro sign U+00B5
        ("5μm", 5.0),  # Greek mu U+03BC
        ("0.04mm", 40.0),
        ("40 microns", 40.0),
        ("500nm", 0.5),
        ("1e-3 mm", 1.0),
        ("0.001cm", 10.0),
        (" 10 UM ", 10.0),
        (".5um", 0.5),
    ],
)
def test_parse_lengths(text, expected_um):
    assert math.isclose(parse_length_um(text), expected_um, rel_tol=1e-12)


def test_pixels_need_permission_and_a_pixel_size():
    assert parse_length_um("3px", pixel_size_um=10.0, allow_pixels=True) == 30.0
    with pytest.raises(ValueError, match="in pixels"):
        parse_length_um("3px")
    with pytest.raises(ValueError, match="pixel size is unknown"):
        parse_length_um("3px", allow_pixels=True)


@pytest.mark.parametrize(
    "text, message",
    [
        ("37.5", "has no unit"),
        ("5 furlongs", "unknown unit 'furlongs'"),
        ("5 ft", "unknown unit"),
        ("um", "not a number with a unit"),
        ("", "not a number with a unit"),
        ("-5um", "must be positive"),
        ("0um", "must be positive"),
        ("1e999um", "not finite"),
    ],
)
def test_bad_lengths_say_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        parse_length_um(text, what="pixel size")


def test_error_names_the_quantity_and_zero_when_allowed():
    with pytest.raises(ValueError, match="^pixel size '5 parsecs'"):
        parse_length_um("5 parsecs", what="pixel size")
    assert parse_length_um("0um", allow_zero=True) == 0.0
    with pytest.raises(TypeError):
        parse_length_um(None)
