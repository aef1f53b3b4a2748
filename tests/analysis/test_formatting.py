"""One number formatter for findings, reports and dashboards."""

import math

import pytest

from bnscope.analysis.formatting import format_number, one_line, percent


@pytest.mark.parametrize(
    "value, text",
    [
        (None, "–"),
        (0.0, "0"),
        (6.2e-9, "6.2e-09"),  # a vanishing gradient never reads as 0
        (0.00864, "0.00864"),
        (0.0009, "9.0e-04"),
        (0.421, "0.421"),
        (12.5, "12.5"),
        (120.4, "120"),
        (9999.0, "9999"),
        (32000.0, "3.2e+04"),
        (-0.5, "-0.5"),
        (math.nan, "nan"),
        (math.inf, "inf"),
        (-math.inf, "-inf"),
    ],
)
def test_format_number(value, text):
    assert format_number(value) == text


def test_percent():
    assert percent(0.764) == "76%"
    assert percent(math.nan) == "nan"


def test_one_line_escapes_control_characters():
    assert one_line("a\nb\x1b[31mc\x7f") == "a\\x0ab\\x1b[31mc\\x7f"
    assert one_line("dense_é / 批量") == "dense_é / 批量"
