"""Validation of the arguments `BNScope` and `Observer` take, written once.

Each check returns the value (normalized where that helps) or raises a
`ValueError` that names the argument and echoes what was received, in Keras'
style: "`every_n_steps` must be a positive integer or None. Received:
every_n_steps=0".
"""

from __future__ import annotations

import numbers
import os
from typing import Any


def _fail(name: str, expected: str, value: Any) -> ValueError:
    return ValueError(f"`{name}` must be {expected}. Received: {name}={value!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def log_dir(value: Any, name: str = "log_dir") -> str:
    """A directory path (`str` or `os.PathLike`), returned as `str`."""
    if isinstance(value, bytes) or not isinstance(value, str | os.PathLike):
        raise _fail(name, "a directory path (str or os.PathLike)", value)
    path = os.fspath(value)
    if not path:
        raise _fail(name, "a non-empty directory path", value)
    return path


def positive_int_or_none(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if not _is_int(value) or value < 1:
        raise _fail(name, "a positive integer or None", value)
    return int(value)


def non_negative_int(value: Any, name: str) -> int:
    if not _is_int(value) or value < 0:
        raise _fail(name, "an integer >= 0", value)
    return int(value)


def open_fraction(value: Any, name: str) -> float:
    """A number strictly between 0 and 1."""
    if (
        not isinstance(value, numbers.Real)
        or isinstance(value, bool)
        or not 0 < value < 1
    ):
        raise _fail(name, "a number between 0 and 1", value)
    return float(value)


def boolean(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(name, "True or False", value)
    return value


def callable_or_none(value: Any, name: str) -> Any:
    if value is not None and not callable(value):
        raise _fail(name, "a callable or None", value)
    return value


def boolean_or_none(value: Any, name: str) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise _fail(name, "True, False or None", value)
    return value


def severity_or_none(value: Any, name: str, severities: tuple[str, ...]) -> str | None:
    """One of `severities` (case-insensitive), or `None`."""
    if value is None:
        return None
    if isinstance(value, str) and value.lower() in severities:
        return value.lower()
    raise _fail(name, f"one of {', '.join(map(repr, severities))} or None", value)


def rule_selection(
    value: Any, name: str, rule_ids: tuple[str, ...], severities: tuple[str, ...]
) -> tuple[str, ...]:
    """Rule ids and severities, as one string or a sequence of them; `()` for None.

    Returns them lowercased and without repeats, in the order given.
    """
    if value is None:
        return ()
    items = (value,) if isinstance(value, str) else value
    expected = (
        "rule ids or severities (a string or a list of them), or None; rule ids: "
        f"{', '.join(rule_ids)}; severities: {', '.join(severities)}"
    )
    if not isinstance(items, list | tuple | set | frozenset) or not items:
        raise _fail(name, expected, value)
    selected: dict[str, None] = {}
    for item in items:
        if not isinstance(item, str) or item.lower() not in (*rule_ids, *severities):
            raise _fail(name, expected, value)
        selected[item.lower()] = None
    return tuple(selected)
