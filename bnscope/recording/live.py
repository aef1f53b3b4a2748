"""Live findings: the rules of `bnscope summarize`, run while `fit` trains.

`LiveFindings` keeps a bounded in-memory copy of every scalar the observer
writes (`LiveSeriesStore`), and evaluates `bnscope.analysis.rules` on it —
the one rules engine, on a `Run` built from memory, never from the files — at
the first probe of each `fit`, as soon as a probe writes a non-finite value,
and at every epoch end that brought new values. Then it:

- prints each new finding once, as one line beside Keras' progress bar, and
  says once that a finding cleared and once that it returned;
- puts the number of open findings by severity into the epoch `logs`
  (`bnscope_errors`, `bnscope_warnings`, `bnscope_infos`);
- with `halt_on`, sets `model.stop_training` when a matching finding opens,
  and says why in one line naming the step and layer;
- at the end of each `fit`, writes the open findings into the run as a
  markdown text record (`bnscope/findings`).

A finding is identified by its rule, severity and layer (and its rank among
findings sharing those, for model-level findings of several inputs or
outputs); its first step is where its episode started, as in the summary.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bnscope import tags
from bnscope.analysis.rules import (
    RULES_BY_ID,
    SEVERITIES,
    SEVERITY_RANK,
    Finding,
)
from bnscope.analysis.summary import summarize
from bnscope.events.markdown import findings_markdown
from bnscope.recording import arguments, live_lines
from bnscope.recording.live_store import LiveSeriesStore
from bnscope.schema import RunMetadata

# Findings that training itself resolves: the moving statistics of every BN
# layer start unconverged, so `bn_ema_not_converged` is open early in every BN
# run. It is said at the end of a `fit` (if still open), never mid-training,
# and never stops training (stopping cannot fix it; training longer does).
SETTLES_WITH_TRAINING = frozenset({"bn_ema_not_converged"})

# Keys added to the epoch `logs`: open findings by severity.
LOG_KEYS = {
    "error": "bnscope_errors",
    "warning": "bnscope_warnings",
    "info": "bnscope_infos",
}

Key = tuple[str, str, str | None, int]


@dataclass
class _Tracked:
    """What has happened to one finding, and what was said about it."""

    finding: Finding
    open: bool = True
    announced: bool = False
    said_cleared: bool = False
    said_returns: bool = False


class LiveFindings:
    """Evaluates bnscope's rules during `fit` and reports what they find.

    Args:
        alerts: Lowest severity printed: `"error"`, `"warning"` or `"info"`;
            `None` prints nothing. Defaults to `"warning"`.
        verbose: Whether to print: `None` prints when `fit` shows a progress
            bar (`verbose` 1 or 2) and stays quiet with `verbose=0`; `True`
            prints even then; `False` never prints. Defaults to `None`.
        halt_on: A rule id or severity, or a sequence of them, whose findings
            stop training (a severity means that severity or worse). Defaults
            to `None`: never stop.
    """

    def __init__(
        self,
        alerts: str | None = "warning",
        verbose: bool | None = None,
        halt_on: str | Sequence[str] | None = None,
    ):
        self.alerts = arguments.severity_or_none(alerts, "alerts", SEVERITIES)
        self.verbose = arguments.boolean_or_none(verbose, "verbose")
        self.halt_on = arguments.rule_selection(
            halt_on, "halt_on", tuple(RULES_BY_ID), SEVERITIES
        )
        self._halt_rules = {name for name in self.halt_on if name not in SEVERITIES}
        halt_severities = [SEVERITY_RANK[s] for s in self.halt_on if s in SEVERITIES]
        self._halt_rank = max(halt_severities) if halt_severities else None
        self._printer = live_lines.LinePrinter()
        self._observer: Any = None
        self._model: Any = None
        self._reset()
        self._start_fit_state(fit_verbose=0)

    # -- Lifecycle (called by the callback) ----------------------------------------
    def attach(self, observer) -> None:
        """Follows `observer`'s writes; a new observer (a new model) starts afresh."""
        if observer is self._observer:
            return
        self._observer = observer
        self._reset()
        observer.listeners.append(self._record)

    def start_fit(self, model, params: Mapping[str, Any] | None) -> None:
        """A new `fit`: evaluates at its first probe; reads how `fit` prints."""
        self._model = model
        self.halted = None  # `halt_on` stops each fit anew
        fit_verbose = (params or {}).get("verbose", 1)
        self._start_fit_state(1 if fit_verbose == "auto" else fit_verbose)

    def loss_went_nonfinite(self, logs: Mapping[str, Any] | None) -> bool:
        """True the first time in this `fit` the batch loss is NaN or Inf."""
        loss = (logs or {}).get("loss")
        if self._loss_nonfinite or not isinstance(loss, int | float):
            return False
        self._loss_nonfinite = not math.isfinite(loss)
        return self._loss_nonfinite

    def end_batch(self, step: int) -> None:
        """After a training step: evaluates now if a probe asked for it."""
        bar_open = self._fit_verbose == 1 and self._batches > 0
        self._batches += 1
        if self._evaluate_now:
            self._evaluate(step, bar_open)

    def end_epoch(self, step: int, logs: dict | None) -> None:
        """At an epoch end: evaluates if anything new was written; fills `logs`."""
        if self._fresh:
            self._evaluate(step, bar_open=self._fit_verbose == 1 and self._batches > 0)
        self._batches = 0
        if logs is not None:
            logs.update(self.counts())

    def end_fit(self, step: int) -> None:
        """At the end of `fit`: the settled findings, and the markdown record."""
        if self._observer is None or not self.store.rows:
            return
        with self._observer.guard("live findings (skipped)"):
            if self._fresh:
                self._evaluate(step, bar_open=False)
            for tracked in self._tracked.values():
                if tracked.finding.rule in SETTLES_WITH_TRAINING:
                    self._say(tracked, step, final=True)
            stopped = None
            if self.halted is not None:
                stopped = live_lines.halt_reason(*self.halted, self.halt_on)
            self._observer.write_text(
                step, tags.FINDINGS_TAG, findings_markdown(self.findings, step, stopped)
            )

    # -- What it found -------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """Open findings by severity, under the `logs` keys."""
        counts = Counter(finding.severity for finding in self.findings)
        return {key: counts.get(severity, 0) for severity, key in LOG_KEYS.items()}

    # -- Internals -------------------------------------------------------------------
    def _reset(self) -> None:
        self.store = LiveSeriesStore()
        self.findings: tuple[Finding, ...] = ()
        self.halted: tuple[Finding, int] | None = None  # (finding, step stopped at)
        self._tracked: dict[Key, _Tracked] = {}
        self._fresh = False  # values written since the last evaluation

    def _start_fit_state(self, fit_verbose: int) -> None:
        self._fit_verbose = fit_verbose
        self._printing = self.alerts is not None and (
            self.verbose if self.verbose is not None else fit_verbose != 0
        )
        self._first_probe = True
        self._evaluate_now = False
        self._loss_nonfinite = False
        self._batches = 0  # training steps this epoch (a bar line is open after one)
        self._bar_open = False  # a `verbose=1` bar line is half drawn right now

    def _record(
        self, step: int, values: Mapping[str, float], metadata: RunMetadata | None
    ) -> None:
        """The observer's listener: keeps what was written."""
        with self._observer.guard("live findings (skipped)"):
            first_nonfinite = self.store.add(step, values, metadata)
            self._fresh = True
            if self._first_probe or (first_nonfinite and not self._nonfinite_open()):
                self._evaluate_now = True
            self._first_probe = False

    def _nonfinite_open(self) -> bool:
        return any(f.rule == "nonfinite" for f in self.findings)

    def _evaluate(self, step: int, bar_open: bool) -> None:
        self._evaluate_now = self._fresh = False
        with self._observer.guard("live findings (skipped)"):
            run = self.store.run(tags.RUN_DIRNAME, self._observer.run_dir)
            # What `bnscope summarize` would report now: per fit, grouped.
            findings = summarize(run).findings
            if self.store.dropped:
                findings = self._keep_first_steps(findings)
            self.findings = findings
            self._bar_open = bar_open
            for tracked in self._track(findings):
                self._say(tracked, step)
            self._maybe_halt(step)
        self._bar_open = False

    def _track(self, findings: tuple[Finding, ...]) -> list[_Tracked]:
        """Updates what is open; returns what changed, in the findings' order."""
        changed = []
        now = dict(_keyed(findings))
        for key, finding in now.items():
            tracked = self._tracked.get(key)
            if tracked is None:
                tracked = self._tracked[key] = _Tracked(finding, open=False)
            if not tracked.open:
                changed.append(tracked)
            tracked.finding, tracked.open = finding, True
        for key, tracked in self._tracked.items():
            if tracked.open and key not in now:
                tracked.open = False
                changed.append(tracked)
        return changed

    def _keep_first_steps(self, findings: tuple[Finding, ...]) -> tuple[Finding, ...]:
        """Once the store has dropped old values, an episode that started before
        them is dated from where it was first seen, as the summary dates it."""
        result = []
        for key, finding in _keyed(findings):
            tracked = self._tracked.get(key)
            first = (
                tracked.finding.step if tracked is not None and tracked.open else None
            )
            if first is not None and finding.step is not None and first < finding.step:
                finding = dataclasses.replace(finding, step=first)
            result.append(finding)
        return tuple(result)

    def _printable(self, finding: Finding) -> bool:
        return (
            self._printing
            and SEVERITY_RANK[finding.severity] <= SEVERITY_RANK[self.alerts]
        )

    def _say(self, tracked: _Tracked, step: int, final: bool = False) -> None:
        """Prints what changed about one finding, at most once per kind of change."""
        finding = tracked.finding
        if finding.rule in SETTLES_WITH_TRAINING and not final:
            return
        if not self._printable(finding):
            return
        if tracked.open and not tracked.announced:
            tracked.announced = True
            self._print(live_lines.finding_segments(finding))
        elif tracked.open and tracked.said_cleared and not tracked.said_returns:
            tracked.said_returns = True
            self._print(live_lines.returns_segments(finding))
        elif not tracked.open and tracked.announced and not tracked.said_cleared:
            tracked.said_cleared = True
            self._print(live_lines.cleared_segments(finding, step))

    def _print(self, segments: live_lines.Segments) -> None:
        self._printer.print(segments, bar_open=self._bar_open)
        self._bar_open = False  # the line ended: the next one starts fresh

    def _maybe_halt(self, step: int) -> None:
        if self.halted is not None or not self.halt_on or self._model is None:
            return
        for finding in self.findings:
            if finding.rule in SETTLES_WITH_TRAINING:
                continue
            if finding.rule in self._halt_rules or (
                self._halt_rank is not None
                and SEVERITY_RANK[finding.severity] <= self._halt_rank
            ):
                self.halted = (finding, step)
                self._model.stop_training = True
                if self.verbose is not False:
                    self._print(live_lines.halt_segments(finding, step, self.halt_on))
                return


def _keyed(findings: tuple[Finding, ...]) -> list[tuple[Key, Finding]]:
    """Each finding with its identity: rule, severity, layer, rank among equals."""
    seen: Counter = Counter()
    keyed = []
    for finding in findings:
        base = (finding.rule, finding.severity, finding.layer)
        keyed.append(((*base, seen[base]), finding))
        seen[base] += 1
    return keyed
