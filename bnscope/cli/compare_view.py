"""The `bnscope compare` view: two runs' gradient flow side by side."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.rule import Rule as HorizontalRule
from rich.table import Table
from rich.text import Text

from bnscope import tags
from bnscope.analysis.compare import Comparison, gradient_ratio
from bnscope.analysis.formatting import format_number, one_line
from bnscope.analysis.runs import Run
from bnscope.cli.report import render_findings, sparkline, verdict
from bnscope.schema import LayerMeta


def _grad_cell(run: Run, layer: LayerMeta | None) -> Text:
    if layer is None:
        return Text("")
    series = run.series(tags.GRAD_NORM, layer.name)
    if series is None:
        return Text("no grad", style="bnscope.muted")
    text = Text(f"{format_number(series.last):>7} ")
    text.append(sparkline(series.values, log=True), style="bnscope.spark")
    return text


def _name_cell(layer: LayerMeta | None, style: str) -> Text:
    if layer is None:
        return Text("—", style="bnscope.muted")
    return Text(one_line(layer.name), style=style)


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
        line = Text(one_line(label), style=style)
        ratio = gradient_ratio(report.run)
        line.append(
            f" · {report.run.model_name or 'model'} · {len(report.run.layers)} layers"
        )
        if ratio is not None:
            line.append(f" · grad first/last {format_number(ratio)}")
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
        parts.append(Text(one_line(label), style="bnscope.title"))
        parts.append(
            render_findings(findings)
            if findings
            else Text("none", style="bnscope.muted")
        )
        parts.append(Text(""))
    return Group(*parts)
