"""Tests for `bnscope compare`: layer alignment, findings diff, rendering, JSON."""

from __future__ import annotations

import io

from bnscope.analysis.compare import align_layers, compare, gradient_ratio
from bnscope.analysis.reader import read_run
from bnscope.analysis.summary import summarize
from bnscope.cli import commands as cli
from bnscope.schema import LayerMeta
from tests.support.synthetic_runs import plain_mlp


def layers(*classes: str) -> tuple[LayerMeta, ...]:
    return tuple(
        LayerMeta(name=f"{c.lower()}_{i}", depth=i, class_name=c)
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
