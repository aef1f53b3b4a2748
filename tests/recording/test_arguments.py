"""Argument checks shared by `BNScope` and `Observer`: messages echo the value."""

from __future__ import annotations

from pathlib import Path

import pytest

from bnscope.recording import arguments


@pytest.mark.parametrize(
    "check, value, message",
    [
        (arguments.log_dir, None, "`log_dir` must be a directory path"),
        (arguments.log_dir, 123, "Received: log_dir=123"),
        (arguments.log_dir, "", "non-empty"),
        (
            lambda v: arguments.positive_int_or_none(v, "every_n_steps"),
            0,
            "every_n_steps=0",
        ),
        (
            lambda v: arguments.positive_int_or_none(v, "every_n_steps"),
            True,
            "every_n_steps=True",
        ),
        (
            lambda v: arguments.positive_int_or_none(v, "every_n_steps"),
            2.0,
            "every_n_steps=2.0",
        ),
        (
            lambda v: arguments.non_negative_int(v, "histogram_every_n_probes"),
            "x",
            "='x'",
        ),
        (
            lambda v: arguments.open_fraction(v, "overhead_budget"),
            "x",
            "overhead_budget='x'",
        ),
        (
            lambda v: arguments.open_fraction(v, "overhead_budget"),
            1,
            "overhead_budget=1",
        ),
        (lambda v: arguments.boolean(v, "strict"), "yes", "strict='yes'"),
        (lambda v: arguments.callable_or_none(v, "loss_fn"), 3, "loss_fn=3"),
    ],
)
def test_bad_values_raise_a_value_error_naming_them(check, value, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        check(value)


def test_good_values_pass_through_normalized(tmp_path):
    assert arguments.log_dir(Path(tmp_path)) == str(tmp_path)
    assert arguments.positive_int_or_none(None, "n") is None
    assert arguments.positive_int_or_none(5, "n") == 5
    assert arguments.non_negative_int(0, "n") == 0
    assert arguments.open_fraction(0.01, "f") == 0.01
    assert arguments.boolean(False, "b") is False
    assert arguments.callable_or_none(len, "f") is len
