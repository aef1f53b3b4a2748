"""`bnscope compare RUN_A RUN_B`: two runs side by side.

Layers are aligned in depth order by their class sequence (`difflib`), since
automatic names differ between runs (`dense` vs `dense_3`) and one run may
have layers the other lacks (BatchNormalization inserted after each Dense).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from rich.console import Group, RenderableType
from rich.rule import Rule as HorizontalRule
from rich.table import Table
from rich.text import Text

from bnscope import tags
from bnscope.report import (
    RunReport,
    format_value,
    render_findings,
    sparkline,
    verdict,
)
from bnscope.rules import Finding
from bnscope.rules.base import gradient_layers, json_number
from bnscope.runs import LayerInfo, Run


@dataclass(frozen=True)
class LayerPair:
    """A layer of run A and its counterpart in run B (either may be missing)."""

    a: LayerInfo | None
    b: LayerInfo | None


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
    layers_a: tuple[LayerInfo, ...], layers_b: tuple[LayerInfo, ...]
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
    layers_a: tuple[LayerInfo, ...], layers_b: tuple[LayerInfo, ...]
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


def _grad_cell(run: Run, layer: LayerInfo | None) -> Text:
    if layer is None:
        return Text("")
    series = run.series(tags.GRAD_NORM, layer.name)
    if series is None:
        return Text("no grad", style="bnscope.muted")
    text = Text(f"{format_value(series.last):>7} ")
    text.append(sparkline(series.values, log=True), style="bnscope.spark")
    return text


def _name_cell(layer: LayerInfo | None, style: str) -> Text:
    if layer is None:
        return Text("—", style="bnscope.muted")
    return Text(layer.name, style=style)


def render_comparison(comparison: Comparison) -> RenderableType:
    """Both headers, the aligned gradient flow, and the findings diff."""
    a, b = comparison.a, comparison.b
    header = Table.grid(padding=(0, 1))
    header.add_column(no_wrap=True)
    header.add_column()
    for tag, label, report, style in (
        ("A", comparison.label_a, a, "bnscope.a"),
        ("B", comparison.label_b, b, "bnscope.b"),
    ):
        line = Text(f"{label}", style=style)
        ratio = gradient_ratio(report.run)
        line.append(
            f" · {report.run.model_name or 'model'} · {len(report.run.layers)} layers"
        )
        if ratio is not None:
            line.append(f" · grad first/last {format_value(ratio)}")
        line.append(" · ")
        line.append_text(verdict(report))
        header.add_row(Text(tag, style=style), line)

    table = Table(
        box=None,
        pad_edge=False,
        header_style="bnscope.title",
        title="Gradient flow (depth order: last norm and trend)",
        title_justify="left",
        title_style="bnscope.title",
    )
    table.add_column("A layer", max_width=22, overflow="ellipsis", no_wrap=True)
    table.add_column("A grad norm", no_wrap=True)
    table.add_column("B layer", max_width=22, overflow="ellipsis", no_wrap=True)
    table.add_column("B grad norm", no_wrap=True)
    table.add_column(
        "kind", max_width=18, overflow="ellipsis", no_wrap=True, style="bnscope.muted"
    )
    for pair in comparison.pairs:
        kind = (pair.a or pair.b).class_name or ""
        table.add_row(
            _name_cell(pair.a, "bnscope.a"),
            _grad_cell(a.run, pair.a),
            _name_cell(pair.b, "bnscope.b"),
            _grad_cell(b.run, pair.b),
            kind,
        )

    parts: list[RenderableType] = [
        HorizontalRule(
            Text("compare", style="bnscope.title"), style="bnscope.rule", align="left"
        ),
        header,
        Text(""),
        table,
        Text(""),
    ]
    for label, findings in (
        (f"Only in A ({comparison.label_a})", comparison.only_a),
        (f"Only in B ({comparison.label_b})", comparison.only_b),
    ):
        parts.append(Text(label, style="bnscope.title"))
        parts.append(
            render_findings(findings)
            if findings
            else Text("none", style="bnscope.muted")
        )
        parts.append(Text(""))
    return Group(*parts)


def comparison_json(comparison: Comparison) -> dict[str, Any]:
    """The comparison as JSON (`version` 1, `compare` object)."""

    def grad(run: Run, layer: LayerInfo | None) -> float | None:
        series = run.series(tags.GRAD_NORM, layer.name) if layer else None
        return None if series is None else json_number(series.last)

    return {
        "version": 1,
        "compare": {
            "a": {"label": comparison.label_a, "run": comparison.a.run.name},
            "b": {"label": comparison.label_b, "run": comparison.b.run.name},
            "grad_ratio": {
                "a": json_number(gradient_ratio(comparison.a.run)),
                "b": json_number(gradient_ratio(comparison.b.run)),
            },
            "layers": [
                {
                    "a": pair.a.name if pair.a else None,
                    "b": pair.b.name if pair.b else None,
                    "grad_norm_a": grad(comparison.a.run, pair.a),
                    "grad_norm_b": grad(comparison.b.run, pair.b),
                }
                for pair in comparison.pairs
            ],
            "only_in_a": [f.to_json() for f in comparison.only_a],
            "only_in_b": [f.to_json() for f in comparison.only_b],
        },
    }
