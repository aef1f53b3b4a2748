"""The `bnscope summarize` report: rich renderables of a `RunReport`.

What is computed lives in `bnscope.analysis` (`RunReport`: a run and its
findings); this module only decides how it is shown.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import accumulate

import numpy as np
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.padding import Padding
from rich.rule import Rule as HorizontalRule
from rich.table import Table
from rich.text import Text

from bnscope import tags
from bnscope.analysis.formatting import format_number, one_line, percent
from bnscope.analysis.rules import Finding
from bnscope.analysis.runs import Run, Series
from bnscope.analysis.summary import RunReport
from bnscope.cli.theme import SEVERITY_LABEL, SEVERITY_STYLE
from bnscope.schema import LayerMeta

SPARK_CHARS = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 8
_VALUE_WIDTH = 7  # a formatted value, as `_cell` pads it

_SHORT_CLASS = {
    "BatchNormalization": "BatchNorm",
    "LayerNormalization": "LayerNorm",
    "GroupNormalization": "GroupNorm",
    "RMSNormalization": "RMSNorm",
}


def sparkline(
    values: Sequence[float] | np.ndarray, width: int = SPARK_WIDTH, log: bool = False
) -> str:
    """Draws `values` as `width` block characters (mean per bucket).

    Non-finite buckets are drawn as `!`; a constant series as its lowest bar.

    Args:
        values: The series, oldest first.
        width: Characters to draw. Defaults to `8`.
        log: Scale by log10 (gradient norms span decades). Defaults to `False`.
    """
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        return ""
    buckets = np.array_split(array, min(width, array.size))
    bad = np.array([not np.isfinite(b).all() for b in buckets])
    means = np.array(
        [b[np.isfinite(b)].mean() if np.isfinite(b).any() else np.nan for b in buckets]
    )
    if log:
        with np.errstate(divide="ignore", invalid="ignore"):
            means = np.where(
                means > 0, np.log10(np.where(means > 0, means, 1.0)), np.nan
            )
    finite = np.isfinite(means)
    if not finite.any():
        return "!" * len(buckets)
    low, high = means[finite].min(), means[finite].max()
    span = high - low
    chars = []
    for mean, is_bad in zip(means, bad, strict=True):
        if is_bad or not np.isfinite(mean):
            chars.append("!")
        elif span <= 0:
            chars.append(SPARK_CHARS[0])
        else:
            level = round((mean - low) / span * (len(SPARK_CHARS) - 1))
            chars.append(SPARK_CHARS[level])
    return "".join(chars)


def _cell(
    series: Series | None,
    spark_width: int,
    log: bool = False,
    as_percent: bool = False,
) -> Text:
    """`last value` then a sparkline of the whole series."""
    if series is None or len(series) == 0:
        return Text("")
    last = series.last
    value = percent(last) if as_percent else format_number(last)
    text = Text(f"{value:>{_VALUE_WIDTH}}")
    if spark_width:
        spark = sparkline(series.values, width=spark_width, log=log)
        text.append(" ")
        text.append(
            spark, style="bnscope.spark.bad" if "!" in spark else "bnscope.spark"
        )
    return text


def _kind(layer: LayerMeta) -> str:
    name = _SHORT_CLASS.get(layer.class_name or "", layer.class_name or "")
    if (
        layer.activation
        and layer.activation != "linear"
        and layer.activation.lower() != name.lower()
    ):
        return f"{name} {layer.activation}".strip()
    return name


def _steps_text(first: int | None, last: int | None) -> str:
    if first is None:
        return ""
    return str(first) if first == last else f"{first}–{last}"


def verdict(report: RunReport) -> Text:
    """`✗ 1 error, 2 warnings`, `! 3 warnings`, or `✓ healthy`."""
    parts = []
    for severity in ("error", "warning", "info"):
        count = report.count(severity)
        if count:
            parts.append(f"{count} {severity}{'s' if count != 1 else ''}")
    if report.count("error"):
        return Text("✗ " + ", ".join(parts), style="bnscope.error")
    if report.count("warning"):
        return Text("! " + ", ".join(parts), style="bnscope.warning")
    if parts:
        return Text("✓ healthy (" + ", ".join(parts) + ")", style="bnscope.ok")
    return Text("✓ healthy", style="bnscope.ok")


# -- Renderables ------------------------------------------------------------------


def render_header(report: RunReport) -> RenderableType:
    run = report.run
    title = Text("run ", style="bnscope.title")
    title.append(one_line(run.name), style="bnscope.title")
    title.append("  ")
    title.append_text(verdict(report))
    line = Text()
    model = run.model_name or "unknown model"
    line.append(f"model {model}")
    if run.model_class:
        line.append(f" ({run.model_class})", style="bnscope.muted")
    steps = run.steps
    if steps is not None:
        probes = len(run.probe_steps)
        line.append(f" · steps {steps[0]}–{steps[1]} · {probes} probes")
    line.append(f" · {len(run.layers)} layers")
    batch = None if run.metadata is None else run.metadata.batch_size
    if batch:
        line.append(f" · batch {batch}")
    return Group(HorizontalRule(title, style="bnscope.rule", align="left"), line)


# Below this width the findings are stacked (a line of severity, rule, layer
# and steps, then the text indented below it) instead of a table whose text
# column would be a few characters wide: bnscope's choice, where the table's
# fixed columns (about 40) leave the text fewer than 24 columns.
STACKED_FINDINGS_BELOW = 64


def _detail(finding: Finding) -> Text:
    detail = Text(one_line(finding.message))
    if finding.value is not None:
        detail.append(
            f"\nvalue {format_number(finding.value)} · limit {format_number(finding.threshold)}",
            style="bnscope.muted",
        )
    detail.append("\n→ " + finding.hint, style="bnscope.hint")
    return detail


def _label(finding: Finding) -> Text:
    return Text(
        SEVERITY_LABEL[finding.severity], style=SEVERITY_STYLE[finding.severity]
    )


class FindingsView:
    """The findings: a table, or stacked when the console is narrow.

    Args:
        findings: The findings, most severe first.
    """

    def __init__(self, findings: Iterable[Finding]):
        self.findings = list(findings)

    def __rich_console__(
        self, console: Console, options: ConsoleOptions
    ) -> RenderResult:
        if not self.findings:
            yield Text("No findings: nothing looks wrong.", style="bnscope.ok")
        elif options.max_width < STACKED_FINDINGS_BELOW:
            yield self._stacked()
        else:
            yield self._table()

    def _table(self) -> Table:
        table = Table(
            show_header=True,
            header_style="bnscope.title",
            box=None,
            pad_edge=False,
            expand=True,
            title="Findings",
            title_justify="left",
            title_style="bnscope.title",
        )
        table.add_column("", no_wrap=True, min_width=5)
        table.add_column("finding", no_wrap=True, max_width=24, overflow="ellipsis")
        table.add_column("steps", no_wrap=True, justify="right")
        table.add_column("what and what to do", ratio=1)
        for finding in self.findings:
            name = Text(finding.rule, style="bnscope.title")
            if finding.layer:
                name.append("\n" + one_line(finding.layer), style="bnscope.layer")
            steps = _steps_text(finding.step, finding.last_step)
            table.add_row(_label(finding), name, steps, _detail(finding))
        return table

    def _stacked(self) -> Group:
        parts: list[RenderableType] = [Text("Findings", style="bnscope.title")]
        for finding in self.findings:
            line = _label(finding)
            line.append("  ")
            line.append(finding.rule, style="bnscope.title")
            if finding.layer:
                line.append("  ")
                line.append(one_line(finding.layer), style="bnscope.layer")
            steps = _steps_text(finding.step, finding.last_step)
            if steps:
                line.append(f"  steps {steps}", style="bnscope.muted")
            parts.extend([line, Padding(_detail(finding), (0, 0, 0, 2))])
        return Group(*parts)


def render_findings(findings: Iterable[Finding]) -> RenderableType:
    """The findings, most severe first, laid out for the console's width."""
    return FindingsView(findings)


class LayerTable:
    """The per-layer table; sparklines take whatever width the console has.

    Args:
        run: The run whose layers to show, in depth order.
    """

    columns = ("grad norm", "act std", "dead/sat", "BN drift")

    def __init__(self, run: Run):
        self.run = run

    def _cells(self, layer: LayerMeta, spark: int) -> list[Text]:
        run = self.run
        if layer.activation in tags.RELU_FAMILY:
            dead_or_sat = run.series(tags.ACT_DEAD_FRAC, layer.name)
        elif layer.activation in tags.SATURATING_ACTIVATIONS:
            dead_or_sat = run.series(tags.ACT_SATURATED_FRAC, layer.name)
        else:
            dead_or_sat = None
        return [
            _cell(run.series(tags.GRAD_NORM, layer.name), spark, log=True),
            _cell(run.series(tags.ACT_STD, layer.name), spark),
            _cell(dead_or_sat, spark, as_percent=True),
            _cell(run.series(tags.BN_MEAN_SHIFT, layer.name), spark),
        ]

    def __rich_console__(
        self, console: Console, options: ConsoleOptions
    ) -> RenderResult:
        layers = self.run.layers
        width = options.max_width
        depth_width = len(str(max((layer.depth for layer in layers), default=0)))
        name_width = min(max((len(layer.name) for layer in layers), default=5), 22)
        kinds = [_kind(layer) for layer in layers]
        kind_width = min(max((len(kind) for kind in kinds), default=4), 16)
        show_kind = width >= 96
        # A narrow console shortens the names to 12 and then shows the metric
        # columns that fit whole (a value is 7 wide, plus a space) rather than
        # cutting every number to an ellipsis.
        needs = [max(_VALUE_WIDTH, len(title)) + 1 for title in self.columns]
        room = width - depth_width - 1
        name_width = min(name_width, max(12, room - sum(needs)))
        shown = max(1, sum(1 for end in accumulate(needs) if name_width + end <= room))
        cells_of = self._cells
        titles = self.columns[:shown]
        columns = 2 + (1 if show_kind else 0) + shown
        fixed = depth_width + name_width + (kind_width if show_kind else 0)
        per_metric = (width - fixed - (columns - 1)) // shown
        spark = min(12, per_metric - 8)
        spark = spark if spark >= 3 else 0  # a trend needs a few characters
        table = Table(
            box=None,
            pad_edge=False,
            padding=(0, 1),
            collapse_padding=True,
            header_style="bnscope.title",
            title="Layers (depth order: last value, then trend over probes)",
            title_justify="left",
            title_style="bnscope.title",
        )
        table.add_column("#", justify="right", no_wrap=True)
        table.add_column(
            "layer",
            max_width=name_width,
            overflow="ellipsis",
            no_wrap=True,
            style="bnscope.layer",
        )
        if show_kind:
            table.add_column(
                "kind",
                max_width=kind_width,
                overflow="ellipsis",
                no_wrap=True,
                style="bnscope.muted",
            )
        for title in titles:
            table.add_column(title, no_wrap=True)
        for layer, kind in zip(layers, kinds, strict=True):
            head = [Text(str(layer.depth)), Text(one_line(layer.name))]
            if show_kind:
                head.append(Text(kind))
            table.add_row(*head, *cells_of(layer, spark)[:shown])
        yield table
        if shown < len(self.columns):
            hidden = ", ".join(self.columns[shown:])
            yield Text(f"(too narrow for: {hidden})", style="bnscope.muted")


def render_layers(run: Run) -> RenderableType:
    """Per-layer table in depth order with current values and sparklines."""
    return LayerTable(run)


def render_notes(notes: Iterable[str]) -> RenderableType | None:
    notes = list(notes)
    if not notes:
        return None
    text = Text()
    for index, note in enumerate(notes):
        if index:
            text.append("\n")
        text.append("note: ", style="bnscope.note")
        text.append(one_line(note))
    return text


def render_run(report: RunReport) -> RenderableType:
    """Header, findings by severity, per-layer table, and read notes of one run."""
    parts: list[RenderableType] = [render_header(report), Text("")]
    parts.append(render_findings(report.findings))
    parts.append(Text(""))
    if report.run.layers:
        parts.append(render_layers(report.run))
    notes = render_notes(report.run.notes)
    if notes is not None:
        parts.extend([Text(""), notes])
    parts.append(Text(""))
    return Group(*parts)


def render_reports(reports: Sequence[RunReport]) -> RenderableType:
    """Every run's report, one after another."""
    return Group(*(render_run(report) for report in reports))
