"""Two runs side by side: layers aligned by depth, findings diffed.

Layers are aligned in depth order by their class sequence (`difflib`), since
automatic names differ between runs (`dense` vs `dense_3`) and one run may
have layers the other lacks (BatchNormalization inserted after each Dense).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from bnscope import tags
from bnscope.analysis.rules import Finding
from bnscope.analysis.rules.base import gradient_layers
from bnscope.analysis.runs import Run
from bnscope.analysis.summary import RunReport
from bnscope.schema import LayerMeta


@dataclass(frozen=True)
class LayerPair:
    """A layer of run A and its counterpart in run B (either may be missing)."""

    a: LayerMeta | None
    b: LayerMeta | None


@dataclass(frozen=True)
class Comparison:
    """Two runs, their aligned layers, and the findings only one of them has."""

    a: RunReport
    b: RunReport
    label_a: str
    label_b: str
    pairs: tuple[LayerPair, ...]
    only_a: tuple[Finding, ...]
    only_b: tuple[Finding, ...]


def align_layers(
    layers_a: tuple[LayerMeta, ...], layers_b: tuple[LayerMeta, ...]
) -> tuple[LayerPair, ...]:
    """Pairs layers of the same class in depth order; inserted layers pair with None.

    The output layers are paired first when their classes agree, so a deeper
    run's extra hidden layers do not pull the classifier out of line.
    """
    if layers_a and layers_b and layers_a[-1].class_name == layers_b[-1].class_name:
        head = _align(layers_a[:-1], layers_b[:-1])
        return (*head, LayerPair(layers_a[-1], layers_b[-1]))
    return _align(layers_a, layers_b)


def _align(
    layers_a: tuple[LayerMeta, ...], layers_b: tuple[LayerMeta, ...]
) -> tuple[LayerPair, ...]:
    kinds_a = [layer.class_name or "?" for layer in layers_a]
    kinds_b = [layer.class_name or "?" for layer in layers_b]
    matcher = difflib.SequenceMatcher(None, kinds_a, kinds_b, autojunk=False)
    pairs: list[LayerPair] = []
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        common = a1 - a0 if op == "equal" else 0
        pairs += [LayerPair(layers_a[a0 + i], layers_b[b0 + i]) for i in range(common)]
        pairs += [LayerPair(layer, None) for layer in layers_a[a0 + common : a1]]
        pairs += [LayerPair(None, layer) for layer in layers_b[b0 + common : b1]]
    return tuple(pairs)


def gradient_ratio(run: Run) -> float | None:
    """Last gradient norm of the first weight layer over the last one's."""
    layers = gradient_layers(run)
    if len(layers) < 2:
        return None
    first = run.series(tags.GRAD_NORM, layers[0].name)
    last = run.series(tags.GRAD_NORM, layers[-1].name)
    if not last.last:
        return None
    return first.last / last.last


def _finding_keys(findings, pairs: tuple[LayerPair, ...], side: str) -> dict:
    position = {}
    for index, pair in enumerate(pairs):
        layer = getattr(pair, side)
        if layer is not None:
            position[layer.name] = index
    return {(f.rule, position.get(f.layer) if f.layer else None): f for f in findings}


def compare(
    report_a: RunReport, report_b: RunReport, label_a: str = "A", label_b: str = "B"
) -> Comparison:
    """Aligns two reports layer by layer and diffs their findings.

    Args:
        report_a: The first run's report (e.g. without BN).
        report_b: The second run's report (e.g. with BN).
        label_a: How to call run A in the output. Defaults to `"A"`.
        label_b: How to call run B in the output. Defaults to `"B"`.
    """
    pairs = align_layers(report_a.run.layers, report_b.run.layers)
    keys_a = _finding_keys(report_a.findings, pairs, "a")
    keys_b = _finding_keys(report_b.findings, pairs, "b")
    return Comparison(
        a=report_a,
        b=report_b,
        label_a=label_a,
        label_b=label_b,
        pairs=pairs,
        only_a=tuple(f for key, f in keys_a.items() if key not in keys_b),
        only_b=tuple(f for key, f in keys_b.items() if key not in keys_a),
    )
