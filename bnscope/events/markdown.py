"""Markdown for TensorBoard's Text dashboard, built from typed run data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from bnscope.schema import RunMetadata


def layers_markdown(metadata: RunMetadata) -> str:
    """The layer list as a markdown table, in depth order."""
    rows = [
        "| depth | layer | class | activation | params | normalization |",
        "|---|---|---|---|---|---|",
    ]
    for layer in metadata.layers:
        rows.append(
            f"| {layer.depth} | {layer.name} | {layer.class_name or ''} | "
            f"{layer.activation or ''} | {layer.params if layer.params is not None else ''} | "
            f"{layer.normalization_kind or ''} |"
        )
    return "\n".join(rows)


class FindingLike(Protocol):
    """What `findings_markdown` reads of a finding (`bnscope.analysis.rules.Finding`)."""

    @property
    def rule(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def layer(self) -> str | None: ...
    @property
    def step(self) -> int | None: ...
    @property
    def last_step(self) -> int | None: ...
    @property
    def value(self) -> float | None: ...
    @property
    def threshold(self) -> float | None: ...
    @property
    def message(self) -> str: ...
    @property
    def hint(self) -> str: ...


FINDINGS_COLUMNS = (
    "severity",
    "rule",
    "layer",
    "first step",
    "last step",
    "value",
    "threshold",
    "message",
    "hint",
)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3g}"
    # A pipe would end the cell; a newline the row.
    return str(value).replace("|", "\\|").replace("\n", " ")


def findings_markdown(
    findings: Sequence[FindingLike], step: int, stopped: str | None = None
) -> str:
    """The findings at `step` as markdown: a summary line, then one table row each.

    The layout is stable, for TensorBoard's Text tab and for tools that parse
    it: the first line is `**bnscope findings at step N**: E errors, W
    warnings, I infos`; then, if training was stopped by `halt_on`, a line
    starting `Training stopped`; then either `No findings.` or a table whose
    columns are `FINDINGS_COLUMNS`, one row per finding, most severe first.

    Args:
        findings: The findings, in the order to list them.
        step: The training step they describe.
        stopped: Why training was stopped, if it was.
    """
    counts = {
        severity: sum(1 for f in findings if f.severity == severity)
        for severity in ("error", "warning", "info")
    }
    lines = [
        f"**bnscope findings at step {step}**: {counts['error']} errors, "
        f"{counts['warning']} warnings, {counts['info']} infos"
    ]
    if stopped:
        lines += ["", f"Training stopped {_cell(stopped)}"]
    lines.append("")
    if not findings:
        lines.append("No findings.")
        return "\n".join(lines)
    lines.append("| " + " | ".join(FINDINGS_COLUMNS) + " |")
    lines.append("|" + "---|" * len(FINDINGS_COLUMNS))
    for f in findings:
        cells = (
            f.severity,
            f.rule,
            f.layer,
            f.step,
            f.last_step,
            f.value,
            f.threshold,
            f.message,
            f.hint,
        )
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)
