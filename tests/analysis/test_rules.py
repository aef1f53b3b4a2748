"""Tests for `bnscope.analysis.rules`: every rule fires when it should and only then."""

from __future__ import annotations

import numpy as np
import pytest

from bnscope.analysis import jsonv1
from bnscope.analysis.reader import read_run
from bnscope.analysis.rules import RULES, RULES_BY_ID, SEVERITIES, Finding, evaluate
from bnscope.analysis.rules.base import persistent
from tests.support.contract import JSON_V1_FINDING_KEYS, PUBLIC_RULE_IDS
from tests.support.synthetic_runs import SICK_RUNS, frozen_bn_drift, mlp_bn


def read(synthetic, tmp_path, name="run"):
    run_dir = tmp_path / name
    synthetic.write(run_dir)
    return read_run(str(run_dir))


@pytest.fixture(scope="module")
def healthy_findings(tmp_path_factory):
    return evaluate(read(mlp_bn(), tmp_path_factory.mktemp("healthy")))


def test_registry_covers_design_and_sick_runs():
    ids = [rule.id for rule in RULES]
    assert len(ids) == len(set(ids))
    assert set(ids) >= PUBLIC_RULE_IDS
    assert set(SICK_RUNS) == set(ids)
    for rule in RULES:
        assert rule.severities and set(rule.severities) <= set(SEVERITIES)
        assert rule.source and rule.summary


def test_healthy_run_is_quiet(healthy_findings):
    assert healthy_findings == ()


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.id)
def test_rule_fires_on_its_sick_run(rule, tmp_path, healthy_findings):
    run = read(SICK_RUNS[rule.id](), tmp_path)
    findings = rule(run)
    assert findings, f"{rule.id} did not fire on its sick run"
    for finding in findings:
        assert finding.rule == rule.id
        assert finding.severity in rule.severities
        assert finding.message and finding.hint
        assert finding.step is not None and finding.last_step >= finding.step
        assert set(jsonv1.finding(finding)) >= JSON_V1_FINDING_KEYS
    assert not [f for f in healthy_findings if f.rule == rule.id]


def test_vanishing_names_first_layer_with_autotrainer_thresholds(tmp_path):
    (finding,) = RULES_BY_ID["vanishing_gradient"](
        read(SICK_RUNS["vanishing_gradient"](), tmp_path)
    )
    assert finding.layer == "dense"
    assert finding.threshold == 1e-3
    assert finding.value < 1e-3
    assert (finding.step, finding.last_step) == (0, 1000)


def test_bias_before_bn_is_not_a_vanishing_gradient(tmp_path):
    run = read(SICK_RUNS["bias_before_bn"](), tmp_path)
    assert run.series("grad_var_norm", "dense:bias").values.max() == 0.0
    rules = {finding.rule for finding in evaluate(run)}
    assert rules == {"bias_before_bn"}


def test_zero_bias_gradient_without_bn_is_vanishing(tmp_path):
    synthetic = mlp_bn(bias_before_bn=True)
    dense = synthetic.layer("dense_2")  # the classifier: not before BN
    assert dense.use_bias
    synthetic.set("grad_var_norm", "dense_2:bias", 0.0)
    findings = RULES_BY_ID["vanishing_gradient"](read(synthetic, tmp_path))
    assert [f.layer for f in findings] == ["dense_2"]
    assert "dense_2:bias" in findings[0].message


def test_unnormalized_input_explains_large_first_layer_gradient(tmp_path):
    run = read(SICK_RUNS["unnormalized_input"](), tmp_path)
    rules = {finding.rule for finding in evaluate(run)}
    assert "unnormalized_input" in rules
    assert "exploding_gradient" not in rules


def _with_input_dtype(synthetic, dtype):
    synthetic.input_dtype = dtype
    return synthetic


def test_raw_integer_images_are_unnormalized(tmp_path):
    synthetic = _with_input_dtype(SICK_RUNS["unnormalized_input"](), "uint8")
    (finding,) = RULES_BY_ID["unnormalized_input"](read(synthetic, tmp_path))
    assert "raw uint8 data" in finding.message and "0–255" in finding.message
    assert "Rescaling(1/255)" in finding.hint


def test_integer_ids_into_an_embedding_are_not_unnormalized(tmp_path):
    synthetic = _with_input_dtype(SICK_RUNS["unnormalized_input"](), "int32")
    synthetic.layers[0].class_name = "Embedding"
    assert RULES_BY_ID["unnormalized_input"](read(synthetic, tmp_path)) == []


def test_metadata_without_the_input_path_falls_back_to_first_layers(tmp_path):
    # Metadata written before `reads_inputs` existed: integer inputs are ids.
    synthetic = _with_input_dtype(SICK_RUNS["unnormalized_input"](), "int32")
    synthetic.layers[0].reads_inputs = ()
    assert RULES_BY_ID["unnormalized_input"](read(synthetic, tmp_path)) == []
    synthetic.input_dtype = "float32"
    assert RULES_BY_ID["unnormalized_input"](read(synthetic, tmp_path / "f"))


def test_single_noisy_probe_is_not_a_trend(tmp_path):
    synthetic = mlp_bn()
    spiked = synthetic.values["act_dead_frac/activation"].copy()
    spiked[-1] = 0.95
    synthetic.values["act_dead_frac/activation"] = spiked
    assert RULES_BY_ID["dead_relu"](read(synthetic, tmp_path)) == []


def test_drift_before_ema_converged_is_left_to_ema_rule(tmp_path):
    synthetic = mlp_bn(momentum=0.999)
    synthetic.set_late("bn_mean_shift", "batch_normalization", 1.5, start=0.5)
    findings = evaluate(read(synthetic, tmp_path))
    assert {f.rule for f in findings} == {"bn_ema_not_converged"}


def test_frozen_bn_drift_has_its_own_message(tmp_path):
    (finding,) = RULES_BY_ID["bn_stat_drift"](read(frozen_bn_drift(), tmp_path))
    assert finding.layer == "batch_normalization"
    assert finding.message.startswith("frozen")
    assert "unfreeze" in finding.hint
    assert finding.step == 0  # frozen statistics are wrong from the start


def test_softmax_and_output_layers_do_not_count_as_saturated(tmp_path):
    synthetic = mlp_bn()
    synthetic.set("act_saturated_frac", "dense_2", 0.99)
    assert RULES_BY_ID["saturation"](read(synthetic, tmp_path)) == []


def test_nonfinite_names_first_step_and_layer(tmp_path):
    (finding,) = RULES_BY_ID["nonfinite"](read(SICK_RUNS["nonfinite"](), tmp_path))
    assert (finding.layer, finding.step, finding.last_step) == ("dense_1", 600, 1000)
    assert finding.severity == "error"
    assert jsonv1.finding(finding)["value"] == 64.0


def test_ema_severity_escalates_below_one_window(tmp_path):
    synthetic = mlp_bn(momentum=0.999, steps=range(0, 501, 50))
    (finding,) = RULES_BY_ID["bn_ema_not_converged"](read(synthetic, tmp_path))
    assert finding.severity == "warning"
    assert finding.value == pytest.approx(0.5)


def test_rules_tolerate_missing_metadata(tmp_path):
    synthetic = SICK_RUNS["nonfinite"]()
    run_dir = tmp_path / "bare"
    synthetic.write(run_dir, metadata=False)
    findings = evaluate(read_run(str(run_dir)))
    assert "nonfinite" in {f.rule for f in findings}


def test_findings_ordered_by_severity(tmp_path):
    synthetic = mlp_bn(bias_before_bn=True, batch_size=4)
    synthetic.set_late("grad_nonfinite", "dense_1", 3.0, start=0.8)
    severities = [f.severity for f in evaluate(read(synthetic, tmp_path))]
    assert severities == sorted(severities, key=["error", "warning", "info"].index)
    assert severities[0] == "error" and severities[-1] == "info"


def test_nonfinite_values_become_json_null():
    finding = Finding("nonfinite", "error", None, 1, 2, float("nan"), 0.0, "m", "h")
    assert jsonv1.finding(finding)["value"] is None


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ([0, 0, 0, 0, 0, 0, 0, 1], None),  # one probe
        ([0, 0, 0, 0, 0, 1, 0, 1], None),  # 2 of 5: no majority
        ([0, 0, 0, 0, 1, 1, 0, 1], (40, 70)),  # 3 of 5, isolated miss bridged
        ([1, 1, 0, 0, 1, 1, 1, 1], (40, 70)),  # two misses end the episode
        ([1], None),  # a single probe is never a trend
    ],
)
def test_persistence(condition, expected):
    condition = np.array(condition, dtype=bool)
    steps = np.arange(len(condition)) * 10
    episode = persistent(steps, condition, np.arange(len(condition), dtype=float))
    if expected is None:
        assert episode is None
    else:
        assert (episode.first_step, episode.last_step) == expected
