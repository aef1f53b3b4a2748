"""What a rule is, what it returns, and the persistence test trend rules share."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from bnscope.runs import LayerInfo, Run, Series

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
class Finding:
    """One diagnosis of one run, with the evidence behind it.

    Args:
        rule: The rule id (public, see DESIGN).
        severity: `error`, `warning` or `info`.
        layer: The layer concerned, or `None` for the whole model.
        step: First step of the condition (of its latest episode).
        last_step: Last step at which the condition held.
        value: The measured value (median over the recent probes for trend
            rules), or `None` for structural findings.
        threshold: The threshold `value` was compared against, or `None`.
        message: One line saying what is wrong.
        hint: One line saying what to do about it.
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

    def to_json(self) -> dict[str, Any]:
        """The finding in JSON v1 form (non-finite numbers become `null`)."""
        return {
            "rule": self.rule,
            "severity": self.severity,
            "layer": self.layer,
            "step": self.step,
            "last_step": self.last_step,
            "value": json_number(self.value),
            "threshold": json_number(self.threshold),
            "message": self.message,
            "hint": self.hint,
        }


def json_number(value: float | None) -> float | None:
    """`value` as a JSON number; `None` for missing, NaN and Inf."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


@dataclass(frozen=True)
class Rule:
    """A named check of a run.

    Args:
        id: Stable public id, e.g. `"dead_relu"`.
        severity: The severity of its findings (some rules escalate).
        summary: One line for docs and `--help`.
        source: Where its thresholds come from (see docs/findings.md).
        check: Function from a `Run` to its findings.
    """

    id: str
    severity: str
    summary: str
    source: str
    check: Callable[[Run], Iterable[Finding]]

    def __call__(self, run: Run) -> list[Finding]:
        return list(self.check(run))


@dataclass(frozen=True)
class Episode:
    """When a condition held recently, and the value it held at."""

    first_step: int
    last_step: int
    value: float


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


def run_steps(run: Run) -> tuple[int | None, int | None]:
    """First and last step of the run, for structural findings."""
    steps = run.steps
    return (steps[0], steps[1]) if steps else (None, None)


def consumers(run: Run) -> Mapping[str, list[LayerInfo]]:
    """For each layer name, the layers that consume its output directly."""
    result: dict[str, list[LayerInfo]] = {}
    for layer in run.layers:
        for source in layer.inputs_from:
            result.setdefault(source, []).append(layer)
    return result


def is_linear(layer: LayerInfo) -> bool:
    return layer.activation in (None, "linear")


def feeds_only_batch_norm(run: Run, layer: LayerInfo) -> bool:
    """True if every consumer of `layer` is a BN layer normalizing with batch stats.

    BN subtracts the batch mean per channel, so a per-channel bias added just
    before it (through a linear activation) cancels exactly: its gradient is
    zero by construction.
    """
    users = consumers(run).get(layer.name, [])
    return (
        bool(users)
        and is_linear(layer)
        and all(
            user.is_batch_norm
            and (user.normalization or {}).get("training_mode") is not False
            for user in users
        )
    )


def gradient_layers(run: Run) -> list[LayerInfo]:
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
        and run.series("grad_norm", layer.name) is not None
    ]


def fmt(value: float) -> str:
    """Compact number for messages: `3.1e-06`, `0.42`, `120`."""
    if value is None:
        return "n/a"
    if not math.isfinite(value):
        return str(value)
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-2 or magnitude >= 1e4):
        return f"{value:.1e}"
    if magnitude >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def percent(value: float) -> str:
    return f"{100 * value:.0f}%"
