"""What the tab's routes serve for one run: findings, layers, matrices, series."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from bnscope import tags
from bnscope.analysis import jsonv1
from bnscope.analysis.reader import read_run
from bnscope.analysis.rules import evaluate
from bnscope.tensorboard import adapter, payload
from tests.support.synthetic_runs import SICK_RUNS, mlp_bn, plain_mlp


def analysed(synthetic, tmp_path, findings_markdown=None) -> payload.AnalysedRun:
    synthetic.write(tmp_path)
    run = read_run(str(tmp_path), "run")
    provider_run = adapter.ProviderRun(
        run=run,
        metadata_source=adapter.METADATA_FROM_TENSOR,
        possibly_sampled=0,
        findings_markdown=findings_markdown,
    )
    return payload.AnalysedRun(provider_run, generation=(1,))


def test_rows_keep_seven_digits_and_mark_missing_and_nonfinite_values():
    values = np.array([6.2177762e-9, 0.0, math.nan, math.inf, 1.5])
    known = np.array([True, True, True, True, False])
    assert json.loads(payload.row_json(values, known)) == [
        6.217776e-9,
        0,
        "nan",
        "inf",
        None,
    ]
    assert payload.value_json(-math.inf) == "-inf" and payload.value_json(2.0) == 2.0


def test_payload_holds_layers_in_depth_order_and_one_row_per_layer(tmp_path):
    synthetic = mlp_bn()
    built = analysed(synthetic, tmp_path, findings_markdown="**no findings**")
    body = json.loads(built.payload())
    names = [layer.name for layer in synthetic.layers]
    assert [layer["name"] for layer in body["layer_info"]] == names
    assert [layer["depth"] for layer in body["layer_info"]] == list(range(len(names)))
    assert body["layer_info"][1]["class"] == "BatchNormalization"
    assert body["layer_info"][1]["training_mode"] is True
    assert body["probe_steps"] == list(synthetic.steps)
    assert body["findings_markdown"] == "**no findings**"
    assert list(body["stats"]) == [
        metric.name for metric, _, _ in payload.HEATMAP_STATS
    ]
    grad = body["stats"]["grad_norm"]
    assert grad["scale"] == "log" and grad["description"] == tags.GRAD_NORM.description
    assert len(grad["rows"]) == len(names)
    # Layers without weights have no gradient row; Dense rows hold the values.
    assert grad["rows"][2] is None
    assert grad["rows"][0] == pytest.approx(
        list(synthetic.values["grad_norm/dense"]), rel=1e-6
    )
    assert body["stats"]["act_dead_frac"]["scale"] == "linear"
    assert built.payload() is built.payload()  # built once


def test_findings_are_summarize_json_and_in_the_payload(tmp_path):
    built = analysed(SICK_RUNS["vanishing_gradient"](), tmp_path)
    expected = [jsonv1.finding(f) for f in evaluate(built.run)]
    assert expected and built.findings_json()["findings"] == expected
    assert json.loads(built.payload())["findings"] == expected
    assert built.counts()["warning"] == len(expected)


def test_series_of_one_layer_and_its_variables(tmp_path):
    built = analysed(mlp_bn(bias_before_bn=True), tmp_path)
    body = built.series_json("dense")
    subjects = {entry["subject"] for entry in body["series"].values()}
    assert subjects == {"dense", "dense:kernel", "dense:bias"}
    assert "dense_1" not in subjects


def test_alignment_pairs_layers_as_compare_does(tmp_path):
    a = analysed(plain_mlp(), tmp_path / "a").run
    b = analysed(mlp_bn(), tmp_path / "b").run
    pairs = payload.align_json(a, b)["pairs"]
    assert pairs[0] == [0, 0]  # dense ↔ dense
    assert [None, 1] in pairs  # BN only in b
    assert pairs[-1] == [len(a.layers) - 1, len(b.layers) - 1]  # the classifiers


def test_heatmap_metrics_are_registered():
    for metric, _, scale in payload.HEATMAP_STATS:
        assert tags.METRICS_BY_NAME[metric.name] is metric
        assert scale in ("log", "linear")
