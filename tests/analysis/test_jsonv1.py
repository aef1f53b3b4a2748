"""JSON version 1: the documented keys, and non-finite numbers as null."""

import json
import math

from bnscope.analysis import jsonv1
from bnscope.analysis.compare import compare
from bnscope.analysis.reader import read_run
from bnscope.analysis.rules import Finding
from bnscope.analysis.summary import summarize
from tests.support.contract import JSON_V1_FINDING_KEYS
from tests.support.synthetic_runs import SICK_RUNS, mlp_bn


def test_finding_keys_and_nonfinite_values():
    found = Finding("nonfinite", "error", "dense", 3, 9, math.nan, 0.0, "m", "h")
    data = jsonv1.finding(found)
    assert set(data) >= JSON_V1_FINDING_KEYS
    assert data["value"] is None and data["threshold"] == 0.0
    json.dumps(data, allow_nan=False)


def test_summary_document(tmp_path):
    SICK_RUNS["dead_relu"]().write(tmp_path)
    report = summarize(read_run(str(tmp_path)))
    document = jsonv1.summary([report])
    assert document["version"] == 1
    (run,) = document["runs"]
    assert set(run) >= {"run", "steps", "layers", "findings", "notes"}
    assert run["segments"][0]["steps"] == [0, 1000]
    assert run["layers"] == [layer.name for layer in report.run.layers]
    assert [f["rule"] for f in run["findings"]] == ["dead_relu"]
    json.dumps(document, allow_nan=False)


def test_comparison_document(tmp_path):
    mlp_bn().write(tmp_path / "a")
    SICK_RUNS["dead_relu"]().write(tmp_path / "b")
    a, b = (summarize(read_run(str(tmp_path / n))) for n in "ab")
    document = jsonv1.comparison(compare(a, b, "with", "without"))
    assert document["version"] == 1
    body = document["compare"]
    assert body["a"] == {"label": "with", "run": "a"}
    assert [f["rule"] for f in body["only_in_b"]] == ["dead_relu"]
    assert body["only_in_a"] == []
    json.dumps(document, allow_nan=False)
