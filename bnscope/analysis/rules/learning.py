"""Whether the model learns at all: `not_learning` and `learning_rate`.

Both read the probe loss, measured on the same batch (the first of the fit)
at every probe, so its fall is the model learning that batch, free of the
batch-to-batch noise of the training loss. `learning_rate` also reads the
update ratio ‖Δw‖/‖w‖ each layer's weights moved between two probes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from bnscope import tags
from bnscope.analysis.formatting import format_number, percent
from bnscope.analysis.rules.base import WARNING, Finding, Rule
from bnscope.analysis.runs import Run

# Evidence a model should have learned something: the run starts at the
# beginning of training (its first probe within the first steps), spans at
# least this many steps and probes (bnscope's choice: every healthy variant
# in examples/, with SGD or Adam, lowers the loss of a batch it trains on by
# 38-96% within 100 steps; the deep sigmoid MLP that does not learn, 0%).
FRESH_STEP = 10
MIN_STEPS = 100
MIN_PROBES = 5
# "Has not moved": the recent median is within 1% of the start and no probe
# ever went 2% below it (bnscope's choice, well above the probe loss's noise
# on a fixed batch, which only Dropout and BN batch statistics make).
STILL_FRACTION = 0.01
NEVER_BELOW_FRACTION = 0.02
# A classifier that guesses: the cross-entropy of a uniform prediction is
# ln(classes) (ln 2 per unit for binary cross-entropy). The last 5 probes all
# within 2% of it count as sitting there (bnscope's choice: a model that
# learns passes that level in a probe or two; one predicting the class priors
# of unbalanced data sits below it and is not reported).
CHANCE_FRACTION = 0.02
_CROSS_ENTROPIES = {"categorical_crossentropy", "sparse_categorical_crossentropy"}
# Updates per step relative to the weights: "a rough heuristic is that this
# ratio should be somewhere around 1e-3. If it is lower than this then the
# learning rate might be too low. If it is higher then the learning rate is
# likely too high." (A. Karpathy, CS231n notes, Neural Networks Part 3,
# "Ratio of weights:updates"). bnscope flags 100x off either way (every
# variant in examples/ measures 8e-4 to 3e-2 per step), and only while the
# loss does not fall: a rate far off that still trains is no bug.
UPDATE_RATIO_RULE_OF_THUMB = 1e-3
UPDATE_RATIO_LOW = UPDATE_RATIO_RULE_OF_THUMB / 100
UPDATE_RATIO_HIGH = UPDATE_RATIO_RULE_OF_THUMB * 100
_WINDOW = 5
_NOT_LEARNING_HINT = (
    "check the findings listed above it; else the learning rate, the output "
    "activation against the loss, and the targets"
)


@dataclass(frozen=True)
class Stall:
    """A probe loss that has not fallen since the start of training."""

    start: float
    recent: float
    lowest: float
    first_step: int
    last_step: int
    probes: int

    @property
    def change(self) -> float:
        """Relative change of the recent loss from the start (+ is a rise)."""
        return (self.recent - self.start) / abs(self.start) if self.start else 0.0


def _fresh_loss(run: Run) -> tuple[np.ndarray, np.ndarray] | None:
    """The finite probe losses of a run long enough, from the start of training."""
    loss = run.series(tags.LOSS, tags.MODEL_SUBJECT)
    if loss is None:
        return None
    finite = np.isfinite(loss.values)
    steps, values = loss.steps[finite], loss.values[finite]
    if len(steps) < MIN_PROBES or steps[0] > FRESH_STEP:
        return None
    if steps[-1] - steps[0] < MIN_STEPS:
        return None
    return steps, values


def loss_stall(run: Run) -> Stall | None:
    """The stalled probe loss of a run that started training fresh, if any."""
    fresh = _fresh_loss(run)
    if fresh is None:
        return None
    steps, values = fresh
    start = float(values[0])
    recent = float(np.median(values[-_WINDOW:]))
    lowest = float(values[1:].min())
    scale = abs(start)
    if scale == 0.0:
        stalled = bool(np.all(values == 0.0))
    else:
        stalled = (
            recent > start - STILL_FRACTION * scale
            and lowest > start - NEVER_BELOW_FRACTION * scale
        )
    if not stalled:
        return None
    return Stall(start, recent, lowest, int(steps[0]), int(steps[-1]), len(steps))


def chance_level(run: Run) -> tuple[float, str] | None:
    """The loss of a uniform guess, for a single-output classifier whose loss is known.

    Returns `(level, what)`, e.g. `(2.303, "ln(10) of a 10-class softmax")`.
    """
    outputs = () if run.metadata is None else run.metadata.outputs
    if len(outputs) != 1:
        return None
    output = outputs[0]
    units, loss = output.units, output.loss
    if output.from_logits or units is None:
        return None
    if loss in _CROSS_ENTROPIES and output.activation == "softmax" and units >= 2:
        return math.log(units), f"ln({units}) of a {units}-class softmax"
    if loss == "binary_crossentropy" and output.activation == "sigmoid":
        return math.log(2.0), "ln(2) of a sigmoid that guesses"
    return None


def _at_chance(run: Run) -> tuple[Stall, float, str] | None:
    """A fresh, long enough run whose recent probe losses all sit at chance."""
    chance = chance_level(run)
    fresh = _fresh_loss(run)
    if chance is None or fresh is None:
        return None
    steps, values = fresh
    level, what = chance
    recent = values[-_WINDOW:]
    if not np.all(np.abs(recent - level) <= CHANCE_FRACTION * level):
        return None
    stall = Stall(
        float(values[0]),
        float(np.median(recent)),
        float(values[1:].min()),
        int(steps[0]),
        int(steps[-1]),
        len(steps),
    )
    return stall, level, what


def check_not_learning(rule: Rule, run: Run) -> Iterator[Finding]:
    stall = loss_stall(run)
    if stall is None:
        chance = _at_chance(run)
        if chance is None:
            return
        stall, level, what = chance
        yield rule.finding(
            steps=(stall.first_step, stall.last_step),
            value=stall.recent,
            threshold=level,
            message=(
                f"the probe loss sits at {format_number(stall.recent)}, the chance "
                f"level {what}, over the last {min(_WINDOW, stall.probes)} probes "
                f"(it started at {format_number(stall.start)}): the model predicts "
                "no better than a uniform guess"
            ),
            hint=_NOT_LEARNING_HINT,
        )
        return
    steps = stall.last_step - stall.first_step
    if stall.start == 0.0:
        message = (
            f"the probe loss is exactly 0 from step {stall.first_step} on and never "
            "moves: the model gets no learning signal"
        )
        hint = (
            "check that the output layer fits the loss: a softmax needs one unit "
            "per class, a single probability needs a sigmoid"
        )
    else:
        moved = (
            f"rose {percent(stall.change)}"
            if stall.change > STILL_FRACTION
            else f"moved {percent(abs(stall.change))}"
        )
        message = (
            f"the probe loss {moved} in {steps} steps ({format_number(stall.start)} "
            f"at step {stall.first_step}, {format_number(stall.recent)} now) on a "
            "batch the model trains on: it is not learning"
        )
        hint = _NOT_LEARNING_HINT
    yield rule.finding(
        steps=(stall.first_step, stall.last_step),
        value=stall.change,
        threshold=-STILL_FRACTION,
        message=message,
        hint=hint,
    )


def _update_ratios(run: Run) -> tuple[np.ndarray, np.ndarray] | None:
    """Per probe interval: the median over layers of ‖Δw‖/‖w‖, and the steps.

    The first probe of a series compares against the snapshot taken when
    the probe was built (no update yet), so each layer's first value is left
    out.
    """
    per_step: dict[int, list[tuple[float, int]]] = {}
    for layer in run.layers:
        if layer.trainable is False:
            continue
        series = run.series(tags.UPDATE_RATIO, layer.name)
        if series is None or len(series) < 2:
            continue
        gaps = np.diff(series.steps)
        for step, gap, value in zip(series.steps[1:], gaps, series.values[1:]):
            if gap > 0 and math.isfinite(value):
                per_step.setdefault(int(step), []).append((float(value), int(gap)))
    if not per_step:
        return None
    steps = np.array(sorted(per_step))
    ratios = np.array([np.median([v for v, _ in per_step[s]]) for s in steps])
    gaps = np.array([per_step[s][0][1] for s in steps], dtype=np.float64)
    return steps, np.stack([ratios, gaps])


def _optimizer(run: Run) -> str:
    optimizer = None if run.metadata is None else run.metadata.optimizer
    if optimizer is None or optimizer.class_name is None:
        return "the optimizer's learning rate"
    if optimizer.learning_rate is None:
        return f"the {optimizer.class_name} learning-rate schedule"
    return f"the {optimizer.class_name} learning rate {format_number(optimizer.learning_rate)}"


def check_learning_rate(rule: Rule, run: Run) -> Iterator[Finding]:
    stall = loss_stall(run)
    measured = _update_ratios(run)
    if stall is None or measured is None:
        return
    steps, (ratios, gaps) = measured
    recent = slice(-_WINDOW, None)
    # Over a gap of k steps the weights moved ‖Σ Δw‖ ≤ k·mean‖Δw‖, so
    # ratio / k bounds the per-step ratio from below; with updates of
    # random direction it is nearer ratio / √k, which bounds it from above.
    lowest = float(np.median(ratios[recent] / gaps[recent]))
    highest = float(np.median(ratios[recent] / np.sqrt(gaps[recent])))
    optimizer = _optimizer(run)
    if highest < UPDATE_RATIO_LOW:
        value, threshold, verdict = highest, UPDATE_RATIO_LOW, "too small"
        hint = "raise the learning rate (10–100x), or use Adam at its default 1e-3"
    elif lowest > UPDATE_RATIO_HIGH:
        value, threshold, verdict = lowest, UPDATE_RATIO_HIGH, "too large"
        hint = "lower the learning rate (10–100x), or clip gradients (`clipnorm=1.0`)"
    else:
        return
    yield rule.finding(
        steps=(int(steps[recent][0]), int(steps[-1])),
        value=value,
        threshold=threshold,
        message=(
            f"weights change by {format_number(value)} of their norm per step "
            f"(median over layers; about 1e-3 is healthy) and the loss does not "
            f"fall: {optimizer} is {verdict}"
        ),
        hint=hint,
    )


NOT_LEARNING = Rule(
    id="not_learning",
    severities=(WARNING,),
    summary="the probe loss has not moved from its start, or sits at chance level",
    source="bnscope's choice: < 1% change, or within 2% of ln(classes), over >= 100 steps and 5 probes",
    check=check_not_learning,
)
LEARNING_RATE = Rule(
    id="learning_rate",
    severities=(WARNING,),
    summary="update ratio ‖Δw‖/‖w‖ 100x off the ~1e-3 rule of thumb, loss stalled",
    source="CS231n (Karpathy), ratio of weights:updates ~1e-3; 100x is bnscope's",
    check=check_learning_rate,
)
