"""One finding per cause: the same rule and cause in many layers becomes one.

ResNet50 has 53 convolutions with a bias right before BatchNormalization, and
a fine-tuned base can have 52 BN layers whose `training=False` was
overridden: one finding each, naming the layers (how many, the first few and
their depth range), says it once. Each layer's own detail stays in
`Finding.layers` (and in the JSON).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from bnscope.analysis.rules import Finding
from bnscope.analysis.runs import Run

# How many layer names a grouped message spells out (bnscope's choice: three
# names fit on a line at width 80 and are enough to find the block).
NAMED_LAYERS = 3


def layer_list(names: Sequence[str], shown: int = NAMED_LAYERS) -> str:
    """`a, b, c and 49 more`."""
    if len(names) <= shown + 1:
        return ", ".join(names)
    return f"{', '.join(names[:shown])} and {len(names) - shown} more"


def group(findings: Iterable[Finding], run: Run) -> tuple[Finding, ...]:
    """Merges findings of one rule with the same cause into one per cause.

    Findings group when they share rule, severity, `what` (their message
    without the layer's name), hint and segments. A group of one is returned
    unchanged; a larger one becomes a finding whose `layer` is the shallowest
    member, whose steps span the members' and whose value is their median.

    Args:
        findings: Findings of one run, in any order.
        run: The run, for layer depths and classes.

    Returns:
        The findings with each group merged, in the order of each group's
        first member.
    """
    groups: dict[tuple, list[Finding]] = {}
    for index, finding in enumerate(findings):
        key = (
            (*finding.cause_key, finding.segments)
            if finding.layer is not None and finding.what is not None
            else (index,)  # a finding without a cause phrase stands alone
        )
        groups.setdefault(key, []).append(finding)
    return tuple(_merge(members, run) for members in groups.values())


def _merge(members: list[Finding], run: Run) -> Finding:
    if len(members) == 1:
        return members[0]
    depth = {layer.name: layer.depth for layer in run.layers}
    members = sorted(members, key=lambda f: depth.get(f.layer, math.inf))
    details = tuple(detail for member in members for detail in member.layers)
    names = [detail.layer for detail in details]
    depths = sorted(depth[name] for name in names if name in depth)
    kind = _kind(run, names)
    where = layer_list(names)
    if depths:
        where += f"; depth {depths[0]}–{depths[-1]}"
    first = members[0]
    values = [
        f.value for f in members if f.value is not None and math.isfinite(f.value)
    ]
    steps = [f.step for f in members if f.step is not None]
    last_steps = [f.last_step for f in members if f.last_step is not None]
    return Finding(
        rule=first.rule,
        severity=first.severity,
        layer=first.layer,
        step=min(steps) if steps else None,
        last_step=max(last_steps) if last_steps else None,
        value=float(np.median(values)) if values else None,
        threshold=first.threshold,
        message=f"{len(names)} {kind}layers ({where}): {first.what}",
        hint=first.hint,
        what=first.what,
        layers=details,
        segments=first.segments,
        caused_by=first.caused_by,
    )


def _kind(run: Run, names: Sequence[str]) -> str:
    """`BatchNormalization ` when every layer has that class, else empty."""
    classes = {
        (run.layer(name).class_name if run.layer(name) else None) for name in names
    }
    if len(classes) == 1 and None not in classes:
        return f"{classes.pop()} "
    return ""
