"""One finding per cause: the same rule and cause in many layers become one."""

from __future__ import annotations

from bnscope.analysis.grouping import group, layer_list
from bnscope.analysis.reader import read_run
from bnscope.analysis.rules import RULES_BY_ID, Finding
from bnscope.analysis.runs import Run
from bnscope.schema import LayerMeta
from tests.support.synthetic_runs import SICK_RUNS

OVERRIDE = RULES_BY_ID["bn_mode_override"]


def run_of(count: int) -> Run:
    layers = tuple(
        LayerMeta(name=f"bn_{i}", depth=2 * i + 1, class_name="BatchNormalization")
        for i in range(count)
    )
    return Run(name="r", path="r", scalars={}, layers=layers)


def override(name: str, step: int, value: float, hint: str = "h") -> Finding:
    return OVERRIDE.finding(
        layer=name,
        steps=(step, step + 10),
        value=value,
        threshold=0.0,
        message=f"{name} was called with training=False but ran in training mode",
        what="called with training=False but ran in training mode",
        hint=hint,
    )


def test_one_cause_in_many_layers_becomes_one_finding():
    run = run_of(52)
    findings = [override(f"bn_{i}", 100 + i, float(i)) for i in reversed(range(52))]
    (grouped,) = group(findings, run)
    assert grouped.message == (
        "52 BatchNormalization layers (bn_0, bn_1, bn_2 and 49 more; depth 1–103): "
        "called with training=False but ran in training mode"
    )
    assert grouped.layer == "bn_0"  # the shallowest
    assert [d.layer for d in grouped.layers] == [f"bn_{i}" for i in range(52)]
    assert grouped.layers[5].message.startswith("bn_5 was called")
    assert (grouped.step, grouped.last_step) == (100, 161)
    assert grouped.value == 25.5  # median over the layers
    assert grouped.hint == "h"


def test_different_causes_stay_apart():
    run = run_of(3)
    findings = [override("bn_0", 1, 1.0), override("bn_1", 1, 1.0, hint="other")]
    assert group(findings, run) == tuple(findings)
    lone = override("bn_2", 1, 1.0)
    assert group([lone], run) == (lone,)


def test_findings_without_a_cause_phrase_are_never_merged(tmp_path):
    SICK_RUNS["nonfinite"]().write(tmp_path)
    run = read_run(str(tmp_path))
    found = RULES_BY_ID["nonfinite"](run)
    assert group(found + found, run) == tuple(found + found)


def test_layer_list():
    assert layer_list(["a", "b"]) == "a, b"
    assert layer_list(["a", "b", "c", "d"]) == "a, b, c, d"
    assert layer_list(list("abcdef")) == "a, b, c and 3 more"
