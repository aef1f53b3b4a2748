"""Tests for `bnscope compare`: layer alignment, findings diff, rendering, JSON."""

from __future__ import annotations

import io
import json

import pytest

from bnscope import cli
from bnscope.compare import align_layers, compare, gradient_ratio
from bnscope.reader import read_run
from bnscope.report import summarize
from bnscope.runs import LayerInfo
from tests.synthetic_runs import mlp_bn, plain_mlp


def layers(*classes: str) -> tuple[LayerInfo, ...]:
    return tuple(
        LayerInfo(name=f"{c.lower()}_{i}", depth=i, class_name=c)
        for i, c in enumerate(classes)
    )


def test_alignment_pairs_same_classes_around_inserted_bn():
    plain = layers("Dense", "Dense", "Dense")
    with_bn = layers("Dense", "BatchNormalization", "ReLU", "Dense", "Dense")
    pairs = align_layers(plain, with_bn)
    named = [(p.a and p.a.name, p.b and p.b.name) for p in pairs]
    assert named == [
        ("dense_0", "dense_0"),
        (None, "batchnormalization_1"),
        (None, "relu_2"),
        ("dense_1", "dense_3"),
        ("dense_2", "dense_4"),
    ]


def test_alignment_keeps_outputs_together():
    deep = layers("Dense", "Dense", "Dense", "Dense")
    shallow = layers("Dense", "BatchNormalization", "Dense")
    pairs = align_layers(deep, shallow)
    assert (pairs[-1].a.name, pairs[-1].b.name) == ("dense_3", "dense_2")
    assert all(
        p.a is None or p.b is None or p.a.class_name == p.b.class_name for p in pairs
    )


@pytest.fixture
def two_runs(tmp_path):
    plain_mlp().write(tmp_path / "no_bn" / "bnscope")
    mlp_bn().write(tmp_path / "with_bn" / "bnscope")
    return tmp_path


def test_findings_only_in_one_run(two_runs):
    a = summarize(read_run(str(two_runs / "no_bn" / "bnscope")))
    b = summarize(read_run(str(two_runs / "with_bn" / "bnscope")))
    comparison = compare(a, b, "no_bn", "with_bn")
    assert [f.rule for f in comparison.only_a] == ["vanishing_gradient"]
    assert comparison.only_b == ()
    assert gradient_ratio(a.run) < 1e-3 < gradient_ratio(b.run)


def test_same_finding_in_both_runs_is_not_a_difference(tmp_path):
    plain_mlp().write(tmp_path / "a")
    plain_mlp().write(tmp_path / "b")
    a = summarize(read_run(str(tmp_path / "a")))
    b = summarize(read_run(str(tmp_path / "b")))
    comparison = compare(a, b)
    assert comparison.only_a == () and comparison.only_b == ()


def test_compare_cli_text_and_json(two_runs):
    out, err = io.StringIO(), io.StringIO()
    code = cli.compare_command(
        str(two_runs / "no_bn"), str(two_runs / "with_bn"), False, out, err, 100
    )
    text = out.getvalue()
    assert code == 0 and err.getvalue() == ""
    assert "Gradient flow" in text and "batch_normalization_1" in text
    assert "Only in A" in text and "vanishing_gradient" in text
    assert max(len(line) for line in text.splitlines()) <= 100

    out = io.StringIO()
    cli.compare_command(
        str(two_runs / "no_bn"), str(two_runs / "with_bn"), True, out, err
    )
    data = json.loads(out.getvalue())["compare"]
    assert [f["rule"] for f in data["only_in_a"]] == ["vanishing_gradient"]
    assert data["only_in_b"] == []
    assert data["layers"][0] == {
        "a": "dense",
        "b": "dense",
        "grad_norm_a": data["layers"][0]["grad_norm_a"],
        "grad_norm_b": data["layers"][0]["grad_norm_b"],
    }
    assert data["grad_ratio"]["a"] < 1e-3


def test_compare_needs_exactly_one_run_each(two_runs):
    err = io.StringIO()
    code = cli.compare_command(
        str(two_runs), str(two_runs / "with_bn"), False, io.StringIO(), err
    )
    assert code == 2
    assert "holds 2 bnscope runs" in err.getvalue() and err.getvalue().count("\n") == 1
    err = io.StringIO()
    code = cli.compare_command(
        str(two_runs / "x"), str(two_runs), False, io.StringIO(), err
    )
    assert code == 2 and "no such directory" in err.getvalue()
