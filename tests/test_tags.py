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
    subject = "encoder/dense_1" if metric.subject == tags.LAYER else "model"
    assert tags.parse_tag(metric.tag(subject)) == (metric, subject)


def test_variable_subjects_split_at_the_last_colon():
    subject = tags.variable_subject("encoder/dense_1", "kernel")
    assert subject == "encoder/dense_1:kernel"
    assert tags.split_variable_subject(subject) == ("encoder/dense_1", "kernel")


@pytest.mark.parametrize(
    "tag", ["loss", "unknown_metric/layer", "act_std/", "epoch_loss"]
)
def test_foreign_tags_are_not_parsed(tag):
    assert tags.parse_tag(tag) is None


def test_metric_names_are_unique():
    assert len(tags.METRICS_BY_NAME) == len(tags.ALL_METRICS)
