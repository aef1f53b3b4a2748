"""JSON version 1: the machine-readable form of findings, summaries and comparisons.

The one place it is assembled, for `bnscope summarize --json`, `bnscope
compare --json`, the TensorBoard plugin and notebooks. Fields may be added
within version 1; none are renamed or removed (docs/cli.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from bnscope import tags
from bnscope.analysis.compare import Comparison, gradient_ratio
from bnscope.analysis.rules import Finding
from bnscope.analysis.runs import Run
from bnscope.analysis.summary import RunReport
from bnscope.schema import LayerMeta

VERSION = 1


def number(value: float | None) -> float | None:
    """`value` as a JSON number; `None` for missing, NaN and Inf."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def finding(found: Finding) -> dict[str, Any]:
    """One finding (non-finite numbers become `null`).

    Besides the version-1 keys: `layers`, each layer the finding names with
    its own steps, value and message (one finding per cause may name many);
    `segments`, the fits it belongs to (empty for a single-fit run); and
    `caused_by`, the rule id of its likely cause in the same report, or `null`.
    """
    return {
        "rule": found.rule,
        "severity": found.severity,
        "layer": found.layer,
        "step": found.step,
        "last_step": found.last_step,
        "value": number(found.value),
        "threshold": number(found.threshold),
        "message": found.message,
        "hint": found.hint,
        "layers": [
            {
                "layer": detail.layer,
                "step": detail.step,
                "last_step": detail.last_step,
                "value": number(detail.value),
                "message": detail.message,
            }
            for detail in found.layers
        ],
        "segments": list(found.segments),
        "caused_by": found.caused_by,
    }


def run_summary(report: RunReport) -> dict[str, Any]:
    """One run of `summarize --json`, plus its read `notes`."""
    run = report.run
    steps = run.steps
    return {
        "run": run.name,
        "steps": [steps[0], steps[1]] if steps else [None, None],
        "layers": [layer.name for layer in run.layers],
        "findings": [finding(f) for f in report.findings],
        "notes": list(run.notes),
        "segments": [
            {
                "index": segment.index,
                "label": segment.label,
                "steps": [segment.first_step, segment.last_step],
                "fits": segment.fits,
            }
            for segment in report.segments
        ],
    }


def summary(reports: Sequence[RunReport]) -> dict[str, Any]:
    """The whole `summarize --json` document."""
    return {"version": VERSION, "runs": [run_summary(r) for r in reports]}


def comparison(compared: Comparison) -> dict[str, Any]:
    """The whole `compare --json` document."""

    def grad(run: Run, layer: LayerMeta | None) -> float | None:
        series = run.series(tags.GRAD_NORM, layer.name) if layer else None
        return None if series is None else number(series.last)

    a, b = compared.a.run, compared.b.run
    return {
        "version": VERSION,
        "compare": {
            "a": {"label": compared.label_a, "run": a.name},
            "b": {"label": compared.label_b, "run": b.name},
            "grad_ratio": {
                "a": number(gradient_ratio(a)),
                "b": number(gradient_ratio(b)),
            },
            "layers": [
                {
                    "a": pair.a.name if pair.a else None,
                    "b": pair.b.name if pair.b else None,
                    "grad_norm_a": grad(a, pair.a),
                    "grad_norm_b": grad(b, pair.b),
                }
                for pair in compared.pairs
            ],
            "only_in_a": [finding(f) for f in compared.only_a],
            "only_in_b": [finding(f) for f in compared.only_b],
        },
    }
