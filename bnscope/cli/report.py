"""The `bnscope summarize` report: rich renderables of a `RunReport`.

What is computed lives in `bnscope.analysis` (`RunReport`: a run and its
findings); this module only decides how it is shown.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import accumulate

import numpy as np
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.rule import Rule as HorizontalRule
from rich.table import Table
from rich.text import Text

from bnscope import tags
from bnscope.analysis.formatting import format_number, one_line, percent
from bnscope.analysis.rules import SEVERITIES, SEVERITY_RANK, Finding
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


def verdict_line(report: RunReport) -> Text:
    """One line saying what matters: the root causes, most severe first."""
    serious = [
        cause
        for cause in report.causes
        if SEVERITY_RANK[cause.finding.severity] <= SEVERITY_RANK["warning"]
        or cause.severity_rank <= SEVERITY_RANK["warning"]
    ]
    line = Text("verdict: ", style="bnscope.title")
    if not serious:
        notes = len(report.findings)
        text = "healthy: nothing looks wrong"
        if notes:
            text += f" ({notes} note{'s' if notes != 1 else ''} below)"
        return line.append(text, style="bnscope.ok")
    style = SEVERITY_STYLE[SEVERITIES[min(c.severity_rank for c in serious)]]
    names = list(dict.fromkeys(cause.finding.rule for cause in serious))
    effects = sum(len(cause.consequences) for cause in serious)
    what = f"{len(names)} root cause{'s' if len(names) != 1 else ''}: " + ", ".join(
        names
    )
    if effects:
        what += f" ({effects} likely consequence{'s' if effects != 1 else ''})"
    return line.append(what, style=style)


# -- Renderables ------------------------------------------------------------------


def render_header(report: RunReport) -> RenderableType:
    run = report.run
    title = Text("run ", style="bnscope.title")
    title.append(one_line(run.name), style="bnscope.title")
    title.append("  ")
    title.append_text(verdict(report))
    line = Text()
    line.append(run.model_name or "unknown model")
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
    parts: list[RenderableType] = [
        HorizontalRule(title, style="bnscope.rule", align="left"),
        line,
    ]
    if len(report.segments) > 1:
        fits = Text("fits: ", style="bnscope.muted")
        fits.append(" · ".join(segment.label for segment in report.segments))
        parts.append(fits)
    parts.append(verdict_line(report))
    return Group(*parts)


def _where(finding: Finding, report: RunReport | None) -> str:
    """`steps 1–450`, with the fit(s) when the run has several."""
    where = _steps_text(finding.step, finding.last_step)
    text = f"steps {where}" if where else ""
    if report is not None and len(report.segments) > 1 and finding.segments:
        labels = [
            segment.label.split(" (")[0]
            for index in finding.segments
            if (segment := report.segment(index)) is not None
        ]
        if len(labels) == len(report.segments):
            labels = ["all fits"]
        text = " · ".join(part for part in (", ".join(labels), text) if part)
    return text


class _FindingBlock:
    """One finding as a block of lines: label, rule and steps, then its text."""

    def __init__(
        self,
        finding: Finding,
        report: RunReport | None,
        indent: int,
        show_hint: bool,
        verbose: bool,
    ):
        self.finding = finding
        self.report = report
        self.indent = indent
        self.show_hint = show_hint
        self.verbose = verbose

    def __rich_console__(
        self, console: Console, options: ConsoleOptions
    ) -> RenderResult:
        finding = self.finding
        table = Table.grid(padding=(0, 1))
        if self.indent:
            table.add_column(width=self.indent - 1, no_wrap=True)
        table.add_column(width=5, no_wrap=True)
        table.add_column()
        head = Text(finding.rule, style="bnscope.title")
        if finding.layer and len(finding.layers) <= 1:
            head.append(f" {one_line(finding.layer)}", style="bnscope.layer")
        where = _where(finding, self.report)
        if where:
            head.append(f" · {where}", style="bnscope.muted")
        body: list[RenderableType] = [Text(one_line(finding.message))]
        if finding.value is not None:
            body.append(
                Text(
                    f"value {format_number(finding.value)} · limit "
                    f"{format_number(finding.threshold)}",
                    style="bnscope.muted",
                )
            )
        if self.verbose and len(finding.layers) > 1:
            details = Table.grid(padding=(0, 1))
            details.add_column(no_wrap=True, style="bnscope.layer")
            details.add_column(style="bnscope.muted")
            for detail in finding.layers:
                details.add_row(one_line(detail.layer), one_line(detail.message))
            body.append(details)
        if self.show_hint:
            hint = Table.grid(padding=(0, 1))
            hint.add_column(no_wrap=True, style="bnscope.hint")
            hint.add_column(style="bnscope.hint")
            hint.add_row("→", finding.hint)
            body.append(hint)
        label = Text(
            SEVERITY_LABEL[finding.severity], style=SEVERITY_STYLE[finding.severity]
        )
        lead = [Text("↳", style="bnscope.muted")] if self.indent else []
        table.add_row(*lead, label, head)
        table.add_row(*([Text("")] if self.indent else []), Text(""), Group(*body))
        yield table


def render_findings(
    findings: Iterable[Finding],
    report: RunReport | None = None,
    verbose: bool = False,
) -> RenderableType:
    """Findings as blocks; each hint is printed once unless `verbose`."""
    findings = list(findings)
    if not findings:
        return Text("No findings: nothing looks wrong.", style="bnscope.ok")
    blocks: list[RenderableType] = [Text("Findings", style="bnscope.title")]
    shown: set[str] = set()
    for finding in findings:
        blocks.append(_block(finding, report, 0, shown, verbose))
    return Group(*blocks)


def _block(
    finding: Finding,
    report: RunReport | None,
    indent: int,
    shown: set[str],
    verbose: bool,
) -> _FindingBlock:
    show_hint = verbose or finding.hint not in shown
    shown.add(finding.hint)
    return _FindingBlock(finding, report, indent, show_hint, verbose)


def render_causes(report: RunReport, verbose: bool = False) -> RenderableType:
    """Root causes, most severe first, each with its likely consequences beneath."""
    if not report.findings:
        return Text("No findings: nothing looks wrong.", style="bnscope.ok")
    title = Text("Findings", style="bnscope.title")
    if any(cause.consequences for cause in report.causes):
        title.append(
            " (root causes first; ↳ likely consequences of the one above)",
            style="bnscope.muted",
        )
    blocks: list[RenderableType] = [title]
    shown: set[str] = set()
    for cause in report.causes:
        blocks.append(_block(cause.finding, report, 0, shown, verbose))
        for consequence in cause.consequences:
            blocks.append(_block(consequence, report, 2, shown, verbose))
    return Group(*blocks)


class LayerTable:
    """The per-layer table; sparklines take whatever width the console has.

    Args:
        run: The run whose layers to show, in depth order.
    """

    columns = ("grad norm", "act std", "dead/sat", "BN drift")

    def __init__(self, run: Run, layers: Sequence[LayerMeta] | None = None):
        self.run = run
        self.layers = tuple(run.layers if layers is None else layers)

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
        layers = self.layers
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


# Above this many layers the default report shows only the layers findings
# name (and the first and last); `--verbose` shows all (bnscope's choice: a
# screenful at 40 layers, while ResNet50 has 177).
LAYER_TABLE_LIMIT = 40


def render_layers(run: Run, only: Sequence[str] | None = None) -> RenderableType:
    """Per-layer table in depth order with current values and sparklines.

    Args:
        run: The run.
        only: Show just these layers (plus the first and the last), with a
            line saying how many were left out. Defaults to `None` (all).
    """
    if only is None:
        return LayerTable(run)
    keep = set(only)
    if run.layers:
        keep |= {run.layers[0].name, run.layers[-1].name}
    layers = tuple(layer for layer in run.layers if layer.name in keep)
    left_out = len(run.layers) - len(layers)
    table = LayerTable(run, layers)
    if not left_out:
        return table
    note = Text(
        f"{left_out} more layers not shown (--verbose shows every layer)",
        style="bnscope.muted",
    )
    return Group(table, note)


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


def render_run(report: RunReport, verbose: bool = False) -> RenderableType:
    """Header and verdict, findings by root cause, per-layer table, read notes."""
    parts: list[RenderableType] = [render_header(report), Text("")]
    parts.append(render_causes(report, verbose))
    parts.append(Text(""))
    run = report.run
    if run.layers:
        if verbose or len(run.layers) <= LAYER_TABLE_LIMIT:
            parts.append(render_layers(run))
        else:
            serious = [f for f in report.findings if f.severity != "info"]
            named = [d.layer for f in serious for d in f.layers]
            named += [f.layer for f in serious if f.layer]
            parts.append(render_layers(run, only=named))
    notes = render_notes(run.notes)
    if notes is not None:
        parts.extend([Text(""), notes])
    parts.append(Text(""))
    return Group(*parts)


def render_reports(
    reports: Sequence[RunReport], verbose: bool = False
) -> RenderableType:
    """Every run's report, one after another."""
    return Group(*(render_run(report, verbose) for report in reports))
