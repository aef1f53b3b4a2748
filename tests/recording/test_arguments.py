"""Argument checks shared by `BNScope` and `Observer`: messages echo the value."""

from __future__ import annotations

import re
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


SEVERITIES = ("error", "warning", "info")
RULE_IDS = ("nonfinite", "dead_relu")


@pytest.mark.parametrize(
    "check, value, message",
    [
        (lambda v: arguments.boolean_or_none(v, "verbose"), 1, "verbose=1"),
        (
            lambda v: arguments.severity_or_none(v, "alerts", SEVERITIES),
            "warn",
            "`alerts` must be one of 'error', 'warning', 'info' or None. "
            "Received: alerts='warn'",
        ),
        (
            lambda v: arguments.rule_selection(v, "halt_on", RULE_IDS, SEVERITIES),
            "nan",
            "rule ids: nonfinite, dead_relu; severities: error, warning, info",
        ),
        (
            lambda v: arguments.rule_selection(v, "halt_on", RULE_IDS, SEVERITIES),
            [],
            "Received: halt_on=[]",
        ),
        (
            lambda v: arguments.rule_selection(v, "halt_on", RULE_IDS, SEVERITIES),
            {"nonfinite": 1},
            "Received: halt_on={'nonfinite': 1}",
        ),
    ],
)
def test_bad_live_finding_values_raise_naming_them(check, value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        check(value)


def test_live_finding_values_pass_through_normalized():
    assert arguments.boolean_or_none(None, "verbose") is None
    assert arguments.severity_or_none("Info", "alerts", SEVERITIES) == "info"
    assert arguments.severity_or_none(None, "alerts", SEVERITIES) is None
    select = arguments.rule_selection
    assert select(None, "halt_on", RULE_IDS, SEVERITIES) == ()
    assert select("nonfinite", "halt_on", RULE_IDS, SEVERITIES) == ("nonfinite",)
    assert select(("ERROR", "dead_relu", "error"), "h", RULE_IDS, SEVERITIES) == (
        "error",
        "dead_relu",
    )
