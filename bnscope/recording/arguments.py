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
