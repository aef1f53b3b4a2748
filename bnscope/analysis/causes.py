"""Root causes first: which findings are likely consequences of which.

Some findings explain others. Raw 0–255 inputs scale the first layer's
gradient and saturate sigmoids; unconverged BN moving statistics make
inference-mode outputs differ from training-mode ones; a learning rate far
out of range stops the loss from moving. When both are present, the report
lists the cause first and its likely consequences beneath it, so a reader
fixes the cause instead of chasing each symptom.

`CONSEQUENCES` is bnscope's reasoning, one line per cause (docs/findings.md,
"Causes and consequences"); it must stay acyclic (a test checks).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bnscope.analysis.rules import SEVERITY_RANK, Finding

# cause rule -> rules whose findings it can explain.
CONSEQUENCES: Mapping[str, frozenset[str]] = {
    # Large inputs scale first-layer gradients and pre-activations.
    "unnormalized_input": frozenset(
        {
            "exploding_gradient",
            "exploding_activation",
            "saturation",
            "dead_relu",
            "vanishing_gradient",
            "not_learning",
        }
    ),
    # Steps far too small do nothing; far too large overshoot and kill units.
    "learning_rate": frozenset(
        {
            "not_learning",
            "exploding_gradient",
            "exploding_activation",
            "dead_relu",
            "nonfinite",
        }
    ),
    # Activations that grow through depth end in overflow and flat tails.
    "exploding_activation": frozenset(
        {"exploding_gradient", "nonfinite", "saturation", "not_learning"}
    ),
    "exploding_gradient": frozenset({"nonfinite"}),
    # Units in flat tails or dead pass no gradient down.
    "saturation": frozenset({"vanishing_gradient", "not_learning"}),
    "dead_relu": frozenset({"vanishing_gradient", "not_learning"}),
    "vanishing_gradient": frozenset({"not_learning"}),
    # BN's inference mode uses moving statistics; these make them wrong.
    "bn_ema_not_converged": frozenset({"bn_train_inference_gap", "bn_stat_drift"}),
    "small_batch_bn": frozenset({"bn_train_inference_gap", "bn_stat_drift"}),
    "bn_mode_override": frozenset({"bn_train_inference_gap", "bn_stat_drift"}),
    "dropout_before_bn": frozenset({"bn_train_inference_gap"}),
    "bn_axis": frozenset({"bn_train_inference_gap", "bn_stat_drift"}),
    # An output or targets the loss cannot use: no learning signal.
    "output_loss_mismatch": frozenset(
        {"constant_output", "not_learning", "vanishing_gradient"}
    ),
    "constant_output": frozenset({"not_learning", "vanishing_gradient"}),
    "target_loss_mismatch": frozenset({"not_learning", "constant_output"}),
    "constant_target": frozenset({"not_learning"}),
    # Targets in the thousands make the loss and its gradients huge.
    "unscaled_target": frozenset(
        {"exploding_gradient", "nonfinite", "not_learning", "learning_rate"}
    ),
    "bn_stat_drift": frozenset({"bn_train_inference_gap"}),
}


@dataclass(frozen=True)
class Cause:
    """A root finding and the findings it likely explains.

    Args:
        finding: The root cause (a finding nothing else explains).
        consequences: Findings it likely explains, most severe first.
    """

    finding: Finding
    consequences: tuple[Finding, ...] = ()

    @property
    def severity_rank(self) -> int:
        """The most severe rank in the tree (0 is `error`)."""
        return min(
            SEVERITY_RANK[f.severity] for f in (self.finding, *self.consequences)
        )


def _overlap(a: Finding, b: Finding) -> bool:
    """Same segment (or no segments): a cause must be where its effect is."""
    return not a.segments or not b.segments or bool(set(a.segments) & set(b.segments))


def explain(findings: Iterable[Finding], depth: Mapping[str, int]) -> tuple[Cause, ...]:
    """Arranges findings into root causes with their consequences.

    A finding's cause is the root reached by following `CONSEQUENCES` back
    through the findings present (in the same segment). Roots are ordered by
    the most severe finding in their tree, then by step and depth.

    Args:
        findings: One run's findings.
        depth: Layer name -> depth, for the order.
    """
    findings = list(findings)
    by_rule: dict[str, list[Finding]] = {}
    for finding in findings:
        by_rule.setdefault(finding.rule, []).append(finding)

    def direct_cause(finding: Finding) -> Finding | None:
        for cause_rule, effects in CONSEQUENCES.items():
            if finding.rule not in effects:
                continue
            for candidate in by_rule.get(cause_rule, []):
                if candidate is not finding and _overlap(candidate, finding):
                    return candidate
        return None

    def root(finding: Finding) -> Finding:
        seen = {id(finding)}
        current = finding
        while (cause := direct_cause(current)) is not None and id(cause) not in seen:
            seen.add(id(cause))
            current = cause
        return current

    trees: dict[int, list[Finding]] = {}
    roots: dict[int, Finding] = {}
    for finding in findings:
        top = root(finding)
        roots[id(top)] = top
        if top is not finding:
            trees.setdefault(id(top), []).append(
                dataclasses.replace(finding, caused_by=top.rule)
            )
    causes = [
        Cause(top, tuple(sorted(trees.get(key, []), key=lambda f: _order(f, depth))))
        for key, top in roots.items()
    ]
    causes.sort(key=lambda c: (c.severity_rank, *_order(c.finding, depth)[1:]))
    return tuple(causes)


def _order(finding: Finding, depth: Mapping[str, int]) -> tuple:
    return (
        SEVERITY_RANK[finding.severity],
        finding.step if finding.step is not None else -1,
        depth.get(finding.layer, -1) if finding.layer is not None else -1,
        finding.rule,
    )


def flatten(causes: Iterable[Cause]) -> tuple[Finding, ...]:
    """Each cause followed by its consequences: the report's order."""
    return tuple(f for cause in causes for f in (cause.finding, *cause.consequences))
