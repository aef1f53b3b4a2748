"""The tag contract: names round-trip and every metric is documented."""

from pathlib import Path

import pytest

from bnscope import tags

DOC = (Path(__file__).resolve().parents[1] / "docs" / "tags.md").read_text()


@pytest.mark.parametrize("metric", tags.ALL_METRICS, ids=lambda m: m.name)
def test_every_metric_is_documented(metric):
    assert f"`{metric.name}/" in DOC


@pytest.mark.parametrize("metric", tags.ALL_METRICS, ids=lambda m: m.name)
def test_tags_round_trip(metric):
    subject = {
        tags.LAYER: "encoder/dense_1",
        tags.VARIABLE: "encoder/dense_1:kernel",
        tags.INPUT: "input_layer",
        tags.OUTPUT: "output_0",
    }.get(metric.subject, "model")
    assert tags.parse_tag(metric.tag(subject)) == (metric, subject)


def test_variable_subjects_split_at_the_last_colon():
    subject = tags.variable_subject("encoder/dense_1", "kernel")
    assert subject == "encoder/dense_1:kernel"
    assert tags.split_variable_subject(subject) == ("encoder/dense_1", "kernel")


@pytest.mark.parametrize(
    "tag",
    [
        "loss",
        "unknown_metric/layer",
        "act_std/",
        "epoch_loss",
        # Plain `tf.summary` logs: a whole-model metric names no other subject.
        "loss/train",
        "loss/validation",
        "grad_global_norm/train",
        "grad_var_norm/dense",  # a variable subject is `<layer>:<variable>`
    ],
)
def test_foreign_tags_are_not_parsed(tag):
    assert tags.parse_tag(tag) is None


def test_metric_names_are_unique():
    assert len(tags.METRICS_BY_NAME) == len(tags.ALL_METRICS)


def test_unregistered_metrics_cannot_be_written():
    # The probe builds every tag with `make_tag`: a statistic whose name is not
    # registered fails here instead of being dropped by the reader.
    with pytest.raises(tags.UnknownMetricError, match="act_new_thing"):
        tags.make_tag("act_new_thing", "dense")
    assert tags.make_tag("act_std", "dense") == "act_std/dense"


def test_model_metrics_have_the_model_subject():
    for metric in tags.ALL_METRICS:
        if metric.subject == tags.MODEL:
            assert metric.tag() == f"{metric.name}/{tags.MODEL_SUBJECT}"


def test_activation_families_are_disjoint_and_bounded():
    assert not tags.RELU_FAMILY & tags.SATURATING_ACTIVATIONS
    for low, high in tags.SATURATION_BOUNDS.values():
        assert low < high
    assert tags.SOFTMAX_FAMILY <= tags.SATURATING_ACTIVATIONS


def test_callback_docstring_lists_exactly_the_registered_metrics():
    import ast
    import re

    path = Path(__file__).resolve().parents[1] / "bnscope/recording/callback.py"
    (callback,) = [
        node
        for node in ast.parse(path.read_text()).body
        if isinstance(node, ast.ClassDef) and node.name == "BNScope"
    ]
    doc = ast.get_docstring(callback)
    listed = set()
    for pattern in re.findall(r"`([a-z0-9_{},]+)/(?:<|model`)", doc):
        head, _, options = pattern.partition("{")
        if options:
            listed.update(head + option for option in options.rstrip("}").split(","))
        else:
            listed.add(pattern)
    assert listed == {metric.name for metric in tags.ALL_METRICS}
