"""A run and what the rules found in it: what `bnscope summarize` computes.

The rules run on the whole run and on each per-fit segment
(`bnscope.analysis.segments`); findings of one cause in many layers are
grouped into one (`bnscope.analysis.grouping`); root causes come first with
their likely consequences beneath them (`bnscope.analysis.causes`).
"""

from __future__ import annotations

from dataclasses import dataclass

from bnscope.analysis.causes import Cause, explain, flatten
from bnscope.analysis.grouping import group
from bnscope.analysis.rules import SEVERITY_RANK, Finding, evaluate
from bnscope.analysis.runs import Run
from bnscope.analysis.segments import Segment, evaluate_segments

# `--fail-on` levels, most severe first; `never` never fails.
FAIL_LEVELS = ("error", "warning", "info", "never")


@dataclass(frozen=True)
class RunReport:
    """A run and its findings: root causes first, each followed by its consequences.

    Args:
        run: The run.
        findings: Every finding, in report order.
        causes: The same findings as root causes with their consequences.
            Defaults to each finding as its own root.
        segments: The run's per-fit segments (empty or one for a single fit).
    """

    run: Run
    findings: tuple[Finding, ...]
    causes: tuple[Cause, ...] | None = None
    segments: tuple[Segment, ...] = ()

    def __post_init__(self) -> None:
        if self.causes is None:
            object.__setattr__(self, "causes", tuple(Cause(f) for f in self.findings))

    def count(self, severity: str) -> int:
        return sum(1 for finding in self.findings if finding.severity == severity)

    def fails(self, fail_on: str) -> bool:
        """True if a finding is at or above `fail_on` (`"never"` never fails)."""
        if fail_on == "never":
            return False
        limit = SEVERITY_RANK[fail_on]
        return any(SEVERITY_RANK[f.severity] <= limit for f in self.findings)

    def segment(self, index: int) -> Segment | None:
        for segment in self.segments:
            if segment.index == index:
                return segment
        return None


def summarize(run: Run) -> RunReport:
    """Applies every rule to `run`, per segment and overall, grouped by cause."""
    found, parts = evaluate_segments(run, evaluate)
    depth = {layer.name: layer.depth for layer in run.layers}
    explained = explain(group(found, run), depth)
    return RunReport(
        run=run, findings=flatten(explained), causes=explained, segments=parts
    )
