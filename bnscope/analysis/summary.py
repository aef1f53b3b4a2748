"""A run and what the rules found in it: what `bnscope summarize` computes."""

from __future__ import annotations

from dataclasses import dataclass

from bnscope.analysis.rules import SEVERITY_RANK, Finding, evaluate
from bnscope.analysis.runs import Run

# `--fail-on` levels, most severe first; `never` never fails.
FAIL_LEVELS = ("error", "warning", "info", "never")


@dataclass(frozen=True)
class RunReport:
    """A run and its findings, ordered as `evaluate` orders them."""

    run: Run
    findings: tuple[Finding, ...]

    def count(self, severity: str) -> int:
        return sum(1 for finding in self.findings if finding.severity == severity)

    def fails(self, fail_on: str) -> bool:
        """True if a finding is at or above `fail_on` (`"never"` never fails)."""
        if fail_on == "never":
            return False
        limit = SEVERITY_RANK[fail_on]
        return any(SEVERITY_RANK[f.severity] <= limit for f in self.findings)


def summarize(run: Run) -> RunReport:
    """Applies every rule to `run`."""
    return RunReport(run=run, findings=evaluate(run))
