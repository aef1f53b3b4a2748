"""How numbers and names read in findings, reports and dashboards: one formatter for all."""

from __future__ import annotations

import math


def format_number(value: float | None) -> str:
    """Compact number: `3.1e-06`, `0.0042`, `0.421`, `12.5`, `120`, `3.2e+04`.

    Small values keep their magnitude (a vanishing gradient of 6.2e-09 never
    reads as 0); `None` is `–`.
    """
    if value is None:
        return "–"
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-3 or magnitude >= 1e4):
        return f"{value:.1e}"
    if magnitude >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def percent(value: float) -> str:
    """A fraction as a whole percentage: `0.76` → `76%`."""
    return f"{100 * value:.0f}%" if math.isfinite(value) else format_number(value)


# Control characters in a file, directory or layer name (a newline, an escape
# code) must not split a one-line message or drive the terminal.
_CONTROL = {code: f"\\x{code:02x}" for code in (*range(32), 127)}


def one_line(text: str) -> str:
    """`text` with control characters escaped (`\\x0a`), so it prints as one line."""
    return text.translate(_CONTROL)
