"""Root causes first, their likely consequences beneath them."""

from __future__ import annotations

import dataclasses

from bnscope.analysis.causes import CONSEQUENCES, explain, flatten
from bnscope.analysis.rules import RULES_BY_ID, Finding


def finding(rule: str, severity: str = "warning", segments=()) -> Finding:
    return Finding(
        rule,
        severity,
        None,
        1,
        9,
        None,
        None,
        rule,
        f"fix {rule}",
        segments=tuple(segments),
    )


def test_the_relation_names_rules_and_has_no_cycle():
    for cause, effects in CONSEQUENCES.items():
        assert cause in RULES_BY_ID and effects <= set(RULES_BY_ID), cause

    def reaches(start, target, seen=()):
        return any(
            effect == target
            or (effect not in seen and reaches(effect, target, (*seen, effect)))
            for effect in CONSEQUENCES.get(start, ())
        )

    assert not [rule for rule in CONSEQUENCES if reaches(rule, rule)]


def test_consequences_follow_their_root_cause():
    found = [
        finding("not_learning"),
        finding("vanishing_gradient"),
        finding("saturation"),
        finding("unnormalized_input"),
        finding("bias_before_bn", "info"),
    ]
    causes = explain(found, {})
    root = causes[0]
    assert root.finding.rule == "unnormalized_input"
    assert {f.rule for f in root.consequences} == {
        "not_learning",
        "vanishing_gradient",
        "saturation",
    }
    assert {f.caused_by for f in root.consequences} == {"unnormalized_input"}
    assert [c.finding.rule for c in causes[1:]] == ["bias_before_bn"]
    assert flatten(causes)[0].rule == "unnormalized_input"


def test_a_tree_with_an_error_comes_first():
    found = [
        finding("dead_relu"),
        finding("bn_ema_not_converged", "info"),
        finding("bn_train_inference_gap", "error"),
    ]
    causes = explain(found, {})
    assert causes[0].finding.rule == "bn_ema_not_converged"
    assert causes[0].consequences[0].rule == "bn_train_inference_gap"
    assert causes[0].severity_rank == 0


def test_a_cause_in_another_fit_explains_nothing():
    found = [
        finding("small_batch_bn", segments=(1,)),
        finding("bn_stat_drift", segments=(2,)),
    ]
    assert all(not cause.consequences for cause in explain(found, {}))
    both = [dataclasses.replace(found[0], segments=(1, 2)), found[1]]
    (cause,) = explain(both, {})
    assert cause.consequences[0].rule == "bn_stat_drift"
