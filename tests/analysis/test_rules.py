"""Tests for `bnscope.analysis.rules`: every rule fires when it should and only then."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bnscope.analysis import jsonv1
from bnscope.analysis.reader import read_run
from bnscope.analysis.rules import RULES, RULES_BY_ID, SEVERITIES, Finding, evaluate
from bnscope.analysis.rules.base import persistent
from bnscope.analysis.rules.model_graph import ModelGraph
from bnscope.analysis.summary import summarize
from tests.support.contract import JSON_V1_FINDING_KEYS, PUBLIC_RULE_IDS
from tests.support.synthetic_runs import (
    SICK_RUNS,
    SyntheticLayer,
    SyntheticRun,
    _fill_healthy,
    activation_layer,
    batch_norm,
    dense,
    frozen_bn_drift,
    mlp_bn,
    plain_mlp,
    set_targets,
)


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


# -- The input path ---------------------------------------------------------------


def test_an_input_rescaled_by_raw_ops_is_not_checked(tmp_path):
    synthetic = SICK_RUNS["unnormalized_input"]()
    first = synthetic.layers[0]
    first.reads_inputs = ()
    first.reads_ops, first.reads_ops_from = ("Cast", "RealDiv"), ("input_layer",)
    assert RULES_BY_ID["unnormalized_input"](read(synthetic, tmp_path)) == []


@pytest.mark.parametrize(
    ("after_reshape", "flagged"), [("Dense", True), ("Rescaling", False)]
)
def test_pass_through_layers_are_looked_through(after_reshape, flagged, tmp_path):
    synthetic = SICK_RUNS["unnormalized_input"]()
    reshape = SyntheticLayer("reshape", "Reshape", reads_inputs=("input_layer",))
    first = synthetic.layers[0]
    first.class_name, first.inputs_from, first.reads_inputs = (
        after_reshape,
        ("reshape",),
        (),
    )
    synthetic.layers.insert(0, reshape)
    found = RULES_BY_ID["unnormalized_input"](read(synthetic, tmp_path))
    assert bool(found) is flagged


def test_an_input_normalized_right_after_the_first_layer_is_not_checked(tmp_path):
    # Dense (linear) → BN: BN divides the input's scale out again.
    synthetic = SICK_RUNS["unnormalized_input"]()
    synthetic.layers[0].activation = "linear"
    assert RULES_BY_ID["unnormalized_input"](read(synthetic, tmp_path)) == []


# -- Gradients zero by construction -----------------------------------------------


def _beta_before_bn(middle: SyntheticLayer | None = None, frozen: bool = False):
    """Dense → BN → [middle] → BN → ReLU → softmax; the first BN's β is cancelled."""
    layers = [dense("dense"), batch_norm("project_bn", "dense")]
    source = "project_bn"
    if middle is not None:
        middle.inputs_from = (source,)
        layers.append(middle)
        source = middle.name
    expand = batch_norm("expand_bn", source, trainable=not frozen)
    layers += [
        expand,
        activation_layer("relu", "expand_bn"),
        dense("probs", ("relu",), "softmax", 64, 10, bias=True),
    ]
    synthetic = SyntheticRun(layers=layers)
    _fill_healthy(synthetic)
    synthetic.set("grad_var_norm", "project_bn:beta", 3e-9, noise=0.3)
    return synthetic


def _conv(kernel, padding):
    layer = dense("expand")
    layer.class_name, layer.kernel_size, layer.padding = "Conv2D", kernel, padding
    return layer


@pytest.mark.parametrize(
    ("middle", "cancelled"),
    [
        (lambda: dense("expand"), True),
        (lambda: _conv((1, 1), "same"), True),
        (lambda: _conv((3, 3), "valid"), True),
        (lambda: _conv((3, 3), "same"), False),  # zero padding varies it in space
        (lambda: dense("expand", activation="relu"), False),
    ],
    ids=["dense", "conv1x1", "conv3x3-valid", "conv3x3-same", "relu"],
)
def test_beta_through_linear_layers_is_zero_by_construction(
    middle, cancelled, tmp_path
):
    run = read(_beta_before_bn(middle()), tmp_path)
    assert (("project_bn", "beta") in ModelGraph(run).cancelled) is cancelled
    vanishing = RULES_BY_ID["vanishing_gradient"](run)
    infos = RULES_BY_ID["bias_before_bn"](run)
    if cancelled:
        assert vanishing == []
        (info,) = infos
        assert info.layer == "project_bn" and "through linear layers" in info.message
        assert "`center=False`" in info.hint
    else:
        assert [f.layer for f in vanishing] == ["project_bn"]
        assert infos == []


def test_a_frozen_bn_cancels_nothing(tmp_path):
    run = read(_beta_before_bn(dense("expand"), frozen=True), tmp_path)
    assert ModelGraph(run).cancelled == {}


def test_attention_key_bias_is_not_a_vanishing_gradient(tmp_path):
    synthetic = mlp_bn()
    synthetic.layers[7].role = "attention_key"
    synthetic.set("grad_var_norm", "dense_2:bias", 1e-10)
    run = read(synthetic, tmp_path)
    assert evaluate(run) == ()
    synthetic.layers[7].role = None
    assert RULES_BY_ID["vanishing_gradient"](read(synthetic, tmp_path / "plain"))


# -- Hints and ratios that fit the model ------------------------------------------


def test_vanishing_hint_suggests_only_what_the_model_lacks(tmp_path):
    (plain,) = RULES_BY_ID["vanishing_gradient"](read(plain_mlp(), tmp_path))
    assert "BatchNormalization" in plain.hint and "ReLU" in plain.hint
    synthetic = plain_mlp(activation="relu")
    synthetic.layers.insert(1, batch_norm("batch_normalization", "dense"))
    synthetic.layers[2].inputs_from = ("batch_normalization",)
    (normalized,) = RULES_BY_ID["vanishing_gradient"](read(synthetic, tmp_path / "bn"))
    assert "BatchNormalization" not in normalized.hint
    assert "ReLU" not in normalized.hint and "residual" in normalized.hint


def _first_layer_gradient_100x():
    synthetic = mlp_bn()
    synthetic.set("grad_norm", "dense", 40.0, noise=0.05)
    synthetic.set("grad_norm", "dense_2", 0.4, noise=0.05)
    return synthetic


def test_depth_ratio_of_a_normalized_model_is_scale_free(tmp_path):
    # BN after `dense`: its gradient is large because its weights are small.
    synthetic = _first_layer_gradient_100x()
    synthetic.set("weight_norm", "dense", 0.05, noise=0.01)
    synthetic.set("weight_norm", "dense_2", 5.0, noise=0.01)
    assert RULES_BY_ID["exploding_gradient"](read(synthetic, tmp_path)) == []
    synthetic.set("weight_norm", "dense", 5.0, noise=0.01)  # large in both terms
    (finding,) = RULES_BY_ID["exploding_gradient"](read(synthetic, tmp_path / "b"))
    assert "scale-free gradient ‖g‖·‖w‖" in finding.message
    assert "BatchNormalization" not in finding.hint


def test_depth_ratio_without_normalization_is_autotrainer_s(tmp_path):
    synthetic = plain_mlp(activation="relu")
    synthetic.set("grad_norm", "dense", 40.0, noise=0.05)
    synthetic.set("grad_norm", "dense_5", 0.4, noise=0.05)
    (finding,) = RULES_BY_ID["exploding_gradient"](read(synthetic, tmp_path))
    assert finding.message.startswith("gradient of first layer dense is")
    assert "add BatchNormalization" in finding.hint


# -- Evidence beats gates ---------------------------------------------------------


def _warming_up(agreement: float, dropout: bool = False) -> SyntheticRun:
    """BN at momentum 0.999 (a 1000-step window): never converged in 1000 steps."""
    synthetic = mlp_bn(momentum=0.999)
    if not dropout:
        synthetic.layers[6] = activation_layer("identity", "activation_1", "linear")
        synthetic.layers[7].inputs_from = ("identity",)
    synthetic.set_late("gap_argmax_agreement", "output_0", agreement, start=0.8)
    return synthetic


def test_a_gap_beyond_doubt_is_reported_with_its_cause(tmp_path):
    findings = evaluate(read(_warming_up(0.125), tmp_path))
    assert "bn_train_inference_gap" not in {f.rule for f in findings}
    (ema,) = findings
    assert ema.rule == "bn_ema_not_converged" and ema.severity == "warning"
    assert "only 12% of predictions of output output_0 agree" in ema.message
    assert "will not match fit()" in ema.hint


def test_a_gap_within_doubt_waits_for_the_warm_up(tmp_path):
    (ema,) = evaluate(read(_warming_up(0.8), tmp_path))
    assert ema.rule == "bn_ema_not_converged" and "disagrees" not in ema.message


def test_one_probe_beyond_doubt_is_enough_once_converged(tmp_path):
    synthetic = mlp_bn()
    synthetic.layers[6] = activation_layer("identity", "activation_1", "linear")
    synthetic.layers[7].inputs_from = ("identity",)
    synthetic.set_late("gap_argmax_agreement", "output_0", 0.1, start=0.99)
    (gap,) = evaluate(read(synthetic, tmp_path))
    assert (gap.rule, gap.severity, gap.step) == (
        "bn_train_inference_gap",
        "error",
        1000,
    )


@pytest.mark.parametrize("bn_gap", [0.1, 0.9])
def test_with_dropout_a_gap_must_show_in_bn_too(bn_gap, tmp_path):
    synthetic = _warming_up(0.125, dropout=True)
    synthetic.set("bn_gap", "batch_normalization_1", bn_gap)
    (ema,) = evaluate(read(synthetic, tmp_path))
    assert ("disagrees" in ema.message) is (bn_gap > 0.5)


# -- Learning ---------------------------------------------------------------------


def test_not_learning_needs_a_fresh_and_long_enough_run(tmp_path):
    late = SICK_RUNS["not_learning"]()
    late.steps = tuple(range(5000, 6001, 50))  # resumed: may have converged
    assert RULES_BY_ID["not_learning"](read(late, tmp_path / "late")) == []
    short = SICK_RUNS["not_learning"]()
    short.steps = tuple(range(0, 81, 20))
    assert RULES_BY_ID["not_learning"](read(short, tmp_path / "short")) == []


def test_not_learning_names_a_rising_and_a_zero_loss(tmp_path):
    rising = mlp_bn()
    rising.set("loss", "model", lambda t: 2.3 + t)
    (finding,) = RULES_BY_ID["not_learning"](read(rising, tmp_path / "rising"))
    assert "rose 39%" in finding.message
    zero = mlp_bn()
    zero.set("loss", "model", 0.0)
    (finding,) = RULES_BY_ID["not_learning"](read(zero, tmp_path / "zero"))
    assert "exactly 0" in finding.message and "one unit per class" in finding.hint


def test_learning_rate_names_the_optimizer(tmp_path):
    (finding,) = RULES_BY_ID["learning_rate"](
        read(SICK_RUNS["learning_rate"](), tmp_path)
    )
    assert "SGD learning rate 1.0e-06 is too small" in finding.message
    assert finding.threshold == 1e-5 and finding.value < 1e-5
    assert [f.rule for f in summarize(read_run(str(tmp_path / "run"))).findings] == [
        "learning_rate",
        "not_learning",
    ]


def test_learning_rate_too_large_only_while_the_loss_does_not_fall(tmp_path):
    synthetic = SICK_RUNS["not_learning"]()
    synthetic.optimizer = ("Adam", None)  # a schedule
    for layer in synthetic.layers:
        if layer.variables:
            synthetic.set("update_ratio", layer.name, 20.0, noise=0.1)
    (finding,) = RULES_BY_ID["learning_rate"](read(synthetic, tmp_path))
    assert "Adam learning-rate schedule is too large" in finding.message
    synthetic.set("loss", "model", lambda t: 2.3 - 2.0 * t)  # but it learns
    assert RULES_BY_ID["learning_rate"](read(synthetic, tmp_path / "learns")) == []


def test_large_inputs_alone_are_no_activation_explosion(tmp_path):
    synthetic = SICK_RUNS["exploding_activation"]()
    for layer in synthetic.layers:  # large from the first layer on, no growth
        synthetic.set("act_std", layer.name, 3e3, noise=0.05)
    assert RULES_BY_ID["exploding_activation"](read(synthetic, tmp_path)) == []
    (finding,) = RULES_BY_ID["exploding_activation"](
        read(SICK_RUNS["exploding_activation"](), tmp_path / "sick")
    )
    assert finding.layer == "dense_4" and "explodes" in finding.message
    assert "BatchNormalization or LayerNormalization" in finding.hint


# -- Targets, outputs and the BN axis ---------------------------------------------


def output_rules(synthetic, tmp_path) -> dict[str, Finding]:
    rules = ("output_loss_mismatch", "target_loss_mismatch", "constant_output")
    rules += ("unscaled_target", "constant_target")
    run = read(synthetic, tmp_path)
    return {f.rule: f for f in evaluate(run) if f.rule in rules}


def with_output(activation, loss, units=1, from_logits=False):
    synthetic = mlp_bn()
    synthetic.output_details["output_0"].update(
        activation=activation, loss=loss, shape=(128, units), from_logits=from_logits
    )
    return synthetic


@pytest.mark.parametrize(
    ("activation", "loss", "units", "from_logits", "expected"),
    [
        ("softmax", "binary_crossentropy", 1, False, "error"),
        ("softmax", "sparse_categorical_crossentropy", 1, False, "error"),
        ("sigmoid", "categorical_crossentropy", 1, False, "error"),  # identically 0
        ("linear", "binary_crossentropy", 1, False, "error"),
        ("relu", "categorical_crossentropy", 10, False, "error"),
        ("sigmoid", "categorical_crossentropy", 10, False, "warning"),
        ("softmax", "binary_crossentropy", 10, False, "warning"),
        ("sigmoid", "binary_crossentropy", 1, False, None),
        ("linear", "binary_crossentropy", 1, True, None),  # logits, as intended
        ("softmax", "sparse_categorical_crossentropy", 10, False, None),
        ("sigmoid", "binary_crossentropy", 10, False, None),  # multi-label
        ("linear", "mean_squared_error", 1, None, None),
        (None, "binary_crossentropy", 1, False, None),  # activation unknown
    ],
)
def test_output_loss_mismatch(activation, loss, units, from_logits, expected, tmp_path):
    synthetic = with_output(activation, loss, units, from_logits)
    set_targets(synthetic, 0.0, 1.0, 0.5, 0.5, 2, True)
    found = RULES_BY_ID["output_loss_mismatch"](read(synthetic, tmp_path))
    assert [f.severity for f in found] == ([] if expected is None else [expected])
    if found:
        assert found[0].layer == "dense_2"


@pytest.mark.parametrize(
    ("loss", "activation", "units", "targets", "fires"),
    [
        # class ids 0-9 fed to binary cross-entropy
        ("binary_crossentropy", "sigmoid", 1, (0, 9, 4.5, 2.9, 10, True), True),
        ("binary_crossentropy", "sigmoid", 1, (0, 1, 0.4, 0.5, 2, True), False),
        ("binary_crossentropy", "sigmoid", 1, (0, 1, 0.4, 0.3, 64, False), False),
        # integer ids under categorical cross-entropy
        ("categorical_crossentropy", "softmax", 10, (0, 9, 4.5, 2.9, 10, True), True),
        ("categorical_crossentropy", "softmax", 10, (0, 1, 0.1, 0.3, 2, True), False),
        # sparse: real values truncated, or ids beyond the units
        (
            "sparse_categorical_crossentropy",
            "softmax",
            10,
            (0, 8.7, 4, 2, 64, False),
            True,
        ),
        (
            "sparse_categorical_crossentropy",
            "softmax",
            5,
            (0, 9, 4.5, 2.9, 10, True),
            True,
        ),
        (
            "sparse_categorical_crossentropy",
            "softmax",
            10,
            (0, 9, 4.5, 2.9, 10, True),
            False,
        ),
        # a bounded output can never reach the targets
        ("mean_squared_error", "sigmoid", 1, (1e3, 9e3, 5e3, 2e3, 64, False), True),
        ("mean_squared_error", "tanh", 1, (-1, 1, 0, 0.5, 64, False), False),
        ("mean_squared_error", "relu", 1, (-3, 3, 0, 1, 64, False), True),
        ("mean_squared_error", "linear", 1, (-3, 3, 0, 1, 64, False), False),
    ],
)
def test_target_loss_mismatch(loss, activation, units, targets, fires, tmp_path):
    synthetic = with_output(activation, loss, units)
    set_targets(synthetic, *targets)
    found = RULES_BY_ID["target_loss_mismatch"](read(synthetic, tmp_path))
    assert bool(found) is fires
    if fires:
        (finding,) = found
        assert finding.severity == "error" and finding.step == 0
        assert f"range {targets[0]:g}" in finding.message.replace(".0–", "–")


def test_class_ids_under_binary_loss_get_a_softmax_hint(tmp_path):
    (finding,) = RULES_BY_ID["target_loss_mismatch"](
        read(SICK_RUNS["target_loss_mismatch"](), tmp_path)
    )
    assert "0–9 (10 distinct values)" in finding.message
    assert "Dense(10, activation='softmax')" in finding.hint
    assert "sparse_categorical_crossentropy" in finding.hint


def test_target_mismatch_follows_the_latest_fit(tmp_path):
    synthetic = SICK_RUNS["target_loss_mismatch"]()
    # A second fit on fixed targets (probes from step 600 on).
    fixed = synthetic.progress >= 0.6
    synthetic.values["target_max/output_0"][fixed] = 1.0
    assert RULES_BY_ID["target_loss_mismatch"](read(synthetic, tmp_path)) == []


def test_unscaled_targets_quiet_once_predictions_reach_their_scale(tmp_path):
    synthetic = SICK_RUNS["unscaled_target"]()
    for metric, value in (("output_mean", 2.3e5), ("output_max", 4.0e5)):
        synthetic.set(metric, "output_0", value)
    assert RULES_BY_ID["unscaled_target"](read(synthetic, tmp_path)) == []


@pytest.mark.parametrize(
    ("targets", "fires"),
    [((0, 40, 23, 8, 64, False), False), ((1e3, 9e3, 5e3, 2e3, 64, False), True)],
    ids=["auto-mpg-scale", "thousands"],
)
def test_unscaled_target_threshold(targets, fires, tmp_path):
    synthetic = SICK_RUNS["unscaled_target"]()
    set_targets(synthetic, *targets)
    found = RULES_BY_ID["unscaled_target"](read(synthetic, tmp_path))
    assert bool(found) is fires


def test_constant_class_labels_are_only_info(tmp_path):
    synthetic = mlp_bn()
    set_targets(synthetic, 0.0, 0.0, 0.0, 0.0, 1, True)
    (finding,) = RULES_BY_ID["constant_target"](read(synthetic, tmp_path))
    assert finding.severity == "info"  # one class in a batch may be chance
    assert "all 128 targets" in finding.message


def test_constant_targets_of_a_tiny_batch_prove_nothing(tmp_path):
    synthetic = SICK_RUNS["constant_target"]()
    synthetic.batch_size = 4
    synthetic.output_details["output_0"]["target_shape"] = (4, 1)
    assert RULES_BY_ID["constant_target"](read(synthetic, tmp_path)) == []


def test_constant_output_names_the_cached_logits(tmp_path):
    (finding,) = RULES_BY_ID["constant_output"](
        read(SICK_RUNS["constant_output"](), tmp_path)
    )
    assert finding.severity == "warning" and finding.value == 0.0  # relative spread
    assert "same prediction from output_0, 1 (spread 0)" in finding.message
    assert "although the loss fell" in finding.message
    assert "cached logits" in finding.message
    assert "sigmoid" in finding.hint


def test_constant_output_names_the_first_constant_layer(tmp_path):
    synthetic = mlp_bn()
    synthetic.set("output_spread", "output_0", 0.0)
    synthetic.set("output_min", "output_0", 0.1)
    synthetic.set("output_max", "output_0", 0.1)
    synthetic.set("act_min", "activation", 0.0)
    synthetic.set("act_max", "activation", 0.0)
    (finding,) = RULES_BY_ID["constant_output"](read(synthetic, tmp_path))
    assert finding.hint.startswith("activation outputs one value")
    assert "cached logits" not in finding.message


def test_rounding_level_spread_is_constant_but_small_spread_is_not(tmp_path):
    synthetic = mlp_bn()
    synthetic.set("output_min", "output_0", 0.1)
    synthetic.set("output_max", "output_0", 0.1)
    synthetic.set("output_spread", "output_0", 1.5e-8)  # rounding of 0.1
    assert RULES_BY_ID["constant_output"](read(synthetic, tmp_path, "rounding"))
    synthetic.set("output_spread", "output_0", 1e-4)
    assert not RULES_BY_ID["constant_output"](read(synthetic, tmp_path, "small"))


def test_all_zero_gradients_are_an_error(tmp_path):
    synthetic = mlp_bn()
    synthetic.set("grad_global_norm", "model", 0.0)
    (finding,) = RULES_BY_ID["constant_output"](read(synthetic, tmp_path))
    assert finding.severity == "error" and finding.layer is None
    assert "every gradient is exactly 0" in finding.message
    synthetic.set_late("grad_global_norm", "model", 1e-9, start=0.7)  # tiny, not 0
    assert RULES_BY_ID["constant_output"](read(synthetic, tmp_path, "tiny")) == []


@pytest.mark.parametrize(
    ("shape", "axis", "data_format", "fires"),
    [
        ((None, 28, 28, 16), (1,), None, True),  # axis=1 on channels-last images
        ((None, 28, 28, 16), (-1,), None, False),
        ((None, 28, 28, 16), (3,), None, False),
        ((None, 16, 28, 28), (1,), "channels_first", False),
        ((None, 16, 28, 28), (-1,), "channels_first", True),
        ((None, 28, 28, 16), (1, 2, 3), None, True),  # per position as well
        ((None, 64), (-1,), None, False),
        ((None, 64), (0,), None, True),  # the batch axis
    ],
)
def test_bn_axis(shape, axis, data_format, fires, tmp_path):
    synthetic = mlp_bn()
    synthetic.layer("dense").data_format = data_format  # as a convolution's
    bn = synthetic.layer("batch_normalization")
    bn.input_shape, bn.normalization["axis"] = shape, axis
    found = RULES_BY_ID["bn_axis"](read(synthetic, tmp_path))
    assert bool(found) is fires
    if fires:
        assert found[0].layer == "batch_normalization"
        expected = 1 if data_format == "channels_first" else -1
        assert f"axis={expected}" in found[0].hint


@pytest.mark.parametrize(
    ("feeder", "data_format", "fires"),
    [
        ("Permute", None, False),  # axes moved: the layout is unknown
        ("Reshape", None, False),
        ("Conv1D", "channels_first", False),  # axis 1 is the channel axis
        ("Conv1D", "channels_last", True),
        ("Activation", None, True),  # the chain reaches the input: channels-last
    ],
)
def test_bn_axis_reads_the_layout_upstream(feeder, data_format, fires, tmp_path):
    synthetic = mlp_bn()
    bn = synthetic.layer("batch_normalization")
    # dense -> feeder -> batch_normalization(axis=1) on a (batch, 16, 64) input
    layer = dataclasses.replace(
        bn, name="feeder", class_name=feeder, normalization=None, variables=()
    )
    layer.inputs_from, layer.data_format = ("dense",), data_format
    synthetic.layers.insert(1, layer)
    synthetic.layer("dense").class_name = "CustomLayer"  # says nothing of the layout
    bn.inputs_from = ("feeder",)
    bn.input_shape, bn.normalization["axis"] = (None, 16, 64), (1,)
    found = RULES_BY_ID["bn_axis"](read(synthetic, tmp_path))
    assert bool(found) is fires


def test_bn_axis_after_an_op_is_left_alone(tmp_path):
    synthetic = SICK_RUNS["bn_axis"]()
    synthetic.layer("batch_normalization").inputs_from = ()  # e.g. keras.ops.transpose
    assert RULES_BY_ID["bn_axis"](read(synthetic, tmp_path)) == []


@pytest.mark.parametrize("with_metadata", [True, False], ids=["metadata", "bare"])
@pytest.mark.parametrize("name", sorted(SICK_RUNS))
def test_findings_do_not_depend_on_tag_order(name, with_metadata, tmp_path):
    """TensorBoard's Rust data server lists tags in another order than the file."""
    from bnscope.analysis.runs import Run

    run_dir = tmp_path / "run"
    SICK_RUNS[name]().write(run_dir, metadata=with_metadata)
    read = read_run(str(run_dir))
    shuffled = dict(
        sorted(read.scalars.items(), key=lambda item: hash(item[0][::-1]) % 997)
    )
    reversed_ = dict(reversed(list(read.scalars.items())))
    expected = evaluate(read)
    for scalars in (shuffled, reversed_):
        again = Run(read.name, read.path, scalars, read.metadata, read.stats)
        assert again.layers == read.layers
        assert evaluate(again) == expected


def test_not_learning_at_a_classifier_s_chance_level(tmp_path):
    synthetic = mlp_bn()  # a 10-class softmax under sparse cross-entropy
    # A bad start falls to ln(10) and stays: a uniform guess.
    synthetic.set("loss", "model", lambda t: 2.3026 + 2.0 * np.exp(-30 * t), 0.002)
    (finding,) = RULES_BY_ID["not_learning"](read(synthetic, tmp_path))
    assert "chance level ln(10) of a 10-class softmax" in finding.message
    assert finding.threshold == pytest.approx(np.log(10))
    synthetic.set("loss", "model", lambda t: 2.3026 - 1.5 * t)  # learns past it
    assert RULES_BY_ID["not_learning"](read(synthetic, tmp_path / "learns")) == []
