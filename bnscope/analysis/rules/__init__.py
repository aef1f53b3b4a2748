"""Rules: turn a run's statistics into findings with provenance.

Every rule is registered once, in `RULES`. Each threshold cites its source in
a comment next to it and in docs/findings.md.
"""

from __future__ import annotations

from bnscope.analysis.rules.activations import (
    DEAD_RELU,
    EXPLODING_ACTIVATION,
    SATURATION,
)
from bnscope.analysis.rules.base import (
    ERROR,
    INFO,
    SEVERITIES,
    SEVERITY_RANK,
    WARNING,
    Finding,
    Rule,
)
from bnscope.analysis.rules.batchnorm import (
    BN_EMA_NOT_CONVERGED,
    BN_MODE_OVERRIDE,
    BN_STAT_DRIFT,
    BN_TRAIN_INFERENCE_GAP,
)
from bnscope.analysis.rules.gradients import EXPLODING_GRADIENT, VANISHING_GRADIENT
from bnscope.analysis.rules.inputs import UNNORMALIZED_INPUT
from bnscope.analysis.rules.learning import LEARNING_RATE, NOT_LEARNING
from bnscope.analysis.rules.numerics import NONFINITE
from bnscope.analysis.rules.outputs import CONSTANT_OUTPUT, OUTPUT_LOSS_MISMATCH
from bnscope.analysis.rules.structure import (
    BIAS_BEFORE_BN,
    BN_AXIS,
    DROPOUT_BEFORE_BN,
    SMALL_BATCH_BN,
)
from bnscope.analysis.rules.targets import (
    CONSTANT_TARGET,
    TARGET_LOSS_MISMATCH,
    UNSCALED_TARGET,
)
from bnscope.analysis.runs import Run

RULES: tuple[Rule, ...] = (
    NONFINITE,
    VANISHING_GRADIENT,
    EXPLODING_GRADIENT,
    DEAD_RELU,
    SATURATION,
    UNNORMALIZED_INPUT,
    BN_STAT_DRIFT,
    BN_TRAIN_INFERENCE_GAP,
    BN_MODE_OVERRIDE,
    SMALL_BATCH_BN,
    BN_EMA_NOT_CONVERGED,
    DROPOUT_BEFORE_BN,
    BIAS_BEFORE_BN,
    NOT_LEARNING,
    LEARNING_RATE,
    EXPLODING_ACTIVATION,
    # Targets, outputs and the BN axis (issue 15).
    OUTPUT_LOSS_MISMATCH,
    TARGET_LOSS_MISMATCH,
    CONSTANT_OUTPUT,
    UNSCALED_TARGET,
    CONSTANT_TARGET,
    BN_AXIS,
)
RULES_BY_ID: dict[str, Rule] = {rule.id: rule for rule in RULES}

__all__ = [
    "ERROR",
    "INFO",
    "RULES",
    "RULES_BY_ID",
    "SEVERITIES",
    "SEVERITY_RANK",
    "WARNING",
    "Finding",
    "Rule",
    "evaluate",
]


def evaluate(run: Run, rules: tuple[Rule, ...] = RULES) -> tuple[Finding, ...]:
    """Runs every rule on `run` and orders the findings.

    Args:
        run: A run from `bnscope.analysis.reader`.
        rules: The rules to apply. Defaults to `RULES`.

    Returns:
        Findings by severity (error first), then by step, then by depth,
        rule, layer and message: the same run gives the same order however
        its tags were ordered.

    Example:

    ```python
    from bnscope.analysis.reader import read_logdir
    for run in read_logdir("logs").runs:
        for finding in evaluate(run):
            print(finding.severity, finding.rule, finding.message)
    ```
    """
    depth = {layer.name: layer.depth for layer in run.layers}
    findings = [finding for rule in rules for finding in rule(run)]
    findings.sort(
        key=lambda f: (
            SEVERITY_RANK[f.severity],
            f.step if f.step is not None else -1,
            depth.get(f.layer, -1) if f.layer is not None else -1,
            f.rule,
            # Ties (two model outputs, two inputs) in a fixed order, whatever
            # the order of the tags the run was read from.
            f.layer or "",
            f.message,
        )
    )
    return tuple(findings)
