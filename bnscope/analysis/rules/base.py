"""What a rule is, what it returns, and the persistence test trend rules share."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from bnscope import tags
from bnscope.analysis.runs import Run, Series
from bnscope.schema import LayerMeta

ERROR = "error"
WARNING = "warning"
INFO = "info"
SEVERITIES: tuple[str, ...] = (ERROR, WARNING, INFO)
SEVERITY_RANK: dict[str, int] = {ERROR: 0, WARNING: 1, INFO: 2}

# Trend rules look at the last WINDOW probes and fire when the condition holds
# in a strict majority of them, and in at least MIN_HITS: one noisy probe is
# not a trend, and a single-probe run is not evidence (bnscope's choice).
WINDOW = 5
MIN_HITS = 2


@dataclass(frozen=True)
class LayerDetail:
    """One layer's part in a finding that names several layers.

    Args:
        layer: The layer.
        step: First step of the condition in this layer.
        last_step: Last step at which it held.
        value: The value measured in this layer, or `None`.
        message: The layer's own one-line message.
    """

    layer: str
    step: int | None
    last_step: int | None
    value: float | None
    message: str


@dataclass(frozen=True)
class Finding:
    """One diagnosis of one run, with the evidence behind it.

    Findings of one rule and one cause in several layers are grouped into one
    (`bnscope.analysis.grouping`): `layer` is then the shallowest of them and
    `layers` holds each layer's detail.

    Args:
        rule: The rule id (public, see docs/findings.md).
        severity: `error`, `warning` or `info`.
        layer: The layer concerned, or `None` for the whole model.
        step: First step of the condition (of its latest episode).
        last_step: Last step at which the condition held.
        value: The measured value (median over the recent probes for trend
            rules), or `None` for structural findings.
        threshold: The threshold `value` was compared against, or `None`.
        message: One line saying what is wrong.
        hint: One line saying what to do about it.
        what: What is wrong without the layer's name: findings of one rule
            with the same `what` and hint have one cause and are grouped.
            Defaults to `None` (the message).
        layers: Per-layer detail, one entry per layer the finding names.
        segments: The fits (1-based segments of the run) the finding
            belongs to; empty when the run is a single segment.
        caused_by: The rule id of the finding this one is a consequence of,
            when both are present (`bnscope.analysis.causes`).
    """

    rule: str
    severity: str
    layer: str | None
    step: int | None
    last_step: int | None
    value: float | None
    threshold: float | None
    message: str
    hint: str
    what: str | None = None
    layers: tuple[LayerDetail, ...] = ()
    segments: tuple[int, ...] = ()
    caused_by: str | None = None

    @property
    def cause_key(self) -> tuple:
        """Findings with equal keys have one cause (see `what`)."""
        return (self.rule, self.severity, self.what or self.message, self.hint)


@dataclass(frozen=True)
class Episode:
    """When a condition held recently, and the value it held at."""

    first_step: int
    last_step: int
    value: float


CheckFn = Callable[["Rule", Run], Iterable[Finding]]


@dataclass(frozen=True)
class Rule:
    """A named check of a run: data, plus the function that checks.

    Args:
        id: Stable public id, e.g. `"dead_relu"` (see docs/findings.md).
        severities: Every severity its findings can have, the usual first.
        summary: One line for docs and `--help`.
        source: Where its thresholds come from (see docs/findings.md).
        check: `(rule, run) -> findings`; builds each with `rule.finding`.
    """

    id: str
    severities: tuple[str, ...]
    summary: str
    source: str
    check: CheckFn

    def __call__(self, run: Run) -> list[Finding]:
        return list(self.check(self, run))

    def finding(
        self,
        *,
        message: str,
        hint: str,
        layer: str | None = None,
        episode: Episode | None = None,
        steps: tuple[int | None, int | None] = (None, None),
        value: float | None = None,
        threshold: float | None = None,
        severity: str | None = None,
        what: str | None = None,
    ) -> Finding:
        """A finding of this rule.

        Args:
            message: One line saying what is wrong.
            hint: One line saying what to do about it.
            layer: The layer concerned. Defaults to `None` (the model).
            episode: Where the condition held; gives the steps and the value.
            steps: `(first, last)` step when there is no episode.
            value: The measured value, when there is no episode.
            threshold: What the value was compared against.
            severity: One of `severities`. Defaults to the first.
            what: The message without the layer's name, for grouping the
                same cause in several layers. Defaults to `None`.
        """
        severity = severity or self.severities[0]
        if severity not in self.severities:
            raise ValueError(
                f"rule {self.id!r} does not emit {severity!r} findings "
                f"(declared: {self.severities})"
            )
        if episode is not None:
            steps, value = (episode.first_step, episode.last_step), episode.value
        details = ()
        if layer is not None:
            details = (LayerDetail(layer, steps[0], steps[1], value, message),)
        return Finding(
            rule=self.id,
            severity=severity,
            layer=layer,
            step=steps[0],
            last_step=steps[1],
            value=value,
            threshold=threshold,
            message=message,
            hint=hint,
            what=what,
            layers=details,
        )


def persistent(
    steps: np.ndarray,
    condition: np.ndarray,
    values: np.ndarray,
    window: int = WINDOW,
    min_hits: int = MIN_HITS,
) -> Episode | None:
    """Tests whether `condition` describes the current state of training.

    The condition must hold in a strict majority of the last `window` probes
    and in at least `min_hits` of them. The episode then runs back from the
    last probe where it held, through isolated misses, to where it started.

    Args:
        steps: Probe steps, increasing.
        condition: Boolean per probe.
        values: The measured value per probe.
        window: How many recent probes describe the current state.
        min_hits: Fewest probes the condition must hold in.

    Returns:
        An `Episode` (value: median over the recent hits), or `None`.
    """
    count = len(steps)
    recent = min(window, count)
    if recent == 0:
        return None
    hits = condition[count - recent :]
    n_hits = int(hits.sum())
    if n_hits < min_hits or 2 * n_hits <= recent:
        return None
    true_at = np.flatnonzero(condition)
    last = int(true_at[-1])
    first = last
    misses = 0
    for index in range(last - 1, -1, -1):
        if condition[index]:
            first, misses = index, 0
        else:
            misses += 1
            if misses >= 2:
                break
    recent_values = values[count - recent :][hits]
    return Episode(
        first_step=int(steps[first]),
        last_step=int(steps[last]),
        value=float(np.median(recent_values)),
    )


def current(
    steps: np.ndarray, condition: np.ndarray, values: np.ndarray
) -> Episode | None:
    """The episode the latest probe belongs to, if the condition holds there.

    For evidence measured beyond doubt: a gate may delay such a finding (it
    waits for a probe), but one probe is enough to report it.
    """
    if len(steps) == 0 or not condition[-1]:
        return None
    first = len(steps) - 1
    while first > 0 and condition[first - 1]:
        first -= 1
    return Episode(
        first_step=int(steps[first]),
        last_step=int(steps[-1]),
        value=float(np.median(values[first:])),
    )


def align(*series: Series | None) -> tuple[np.ndarray, list[np.ndarray]] | None:
    """The steps every series has, and each series' values at them."""
    if any(s is None or len(s) == 0 for s in series):
        return None
    steps = series[0].steps
    for other in series[1:]:
        steps = np.intersect1d(steps, other.steps, assume_unique=True)
    if len(steps) == 0:
        return None
    values = [s.values[np.searchsorted(s.steps, steps)] for s in series]
    return steps, values


def values_at(series: Series, steps: np.ndarray) -> np.ndarray:
    """The series' values at `steps`, NaN where it has none."""
    index = np.minimum(np.searchsorted(series.steps, steps), len(series) - 1)
    hit = series.steps[index] == steps
    return np.where(hit, series.values[index], np.nan)


def run_steps(run: Run) -> tuple[int | None, int | None]:
    """First and last step of the run, for structural findings."""
    return run.steps or (None, None)


def gradient_layers(run: Run) -> list[LayerMeta]:
    """Trainable weight layers with a gradient series, in depth order.

    Normalization layers are left out: their γ/β gradients are not part of
    the backward signal AUTOTRAINER's depth ratio compares.
    """
    return [
        layer
        for layer in run.layers
        if layer.trainable is not False
        and layer.normalization is None
        and layer.params != 0
        and run.series(tags.GRAD_NORM, layer.name) is not None
    ]
