"""Targets the loss cannot use: `target_loss_mismatch`, `unscaled_target`, `constant_target`.

The probe records statistics of each output's targets on the probe batch
(`target_*` tags); the metadata names the compiled loss and the output's
activation and shape. The probe batch is fixed within a `fit`, so its targets
are a fact of the run, not a noisy trend: these rules fire when the condition
holds at the latest probe, from the first probe of that stretch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from bnscope import tags
from bnscope.analysis.formatting import format_number
from bnscope.analysis.rules.base import (
    ERROR,
    INFO,
    WARNING,
    Episode,
    Finding,
    Rule,
    align,
)
from bnscope.analysis.runs import Run
from bnscope.schema import OutputMeta

# Regression targets whose |mean| or std exceeds this are unscaled (bnscope's
# choice): a freshly initialized network predicts values of order 1 (Glorot
# initialization keeps activations at unit scale, Glorot & Bengio 2010), so
# targets of order 100 start with squared errors of 1e4 that dominate the
# gradients. Typical teaching data sets sit below it (Auto MPG, mean 23;
# Boston housing, mean 22); prices or counts in the thousands sit far above.
TARGET_SCALE_LIMIT = 100.0
# ... and the predictions have not caught up: their scale is still below a
# tenth of the targets' (bnscope's choice; a model that learned the scale no
# longer starts from a huge error).
CAUGHT_UP_FRACTION = 0.1
# Fewest target values for "constant" to be evidence (bnscope's choice): with
# balanced binary labels, 16 equal values happen by chance with probability
# 2 × 0.5^16 ≈ 3e-5; a tiny hand-made batch (the worked example's 4 rows)
# proves nothing.
MIN_CONSTANT_SAMPLES = 16


@dataclass(frozen=True)
class TargetStats:
    """One output's target statistics at each probe, and its metadata."""

    output: OutputMeta
    steps: np.ndarray
    low: np.ndarray
    high: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    distinct: np.ndarray
    integral: np.ndarray

    def last(self, name: str) -> float:
        return float(getattr(self, name)[-1])


def target_stats(run: Run) -> list[TargetStats]:
    """Every output with target statistics and a metadata record."""
    if run.metadata is None:
        return []
    found = []
    for output in run.metadata.outputs:
        aligned = align(
            *(
                run.series(metric, output.name)
                for metric in (
                    tags.TARGET_MIN,
                    tags.TARGET_MAX,
                    tags.TARGET_MEAN,
                    tags.TARGET_STD,
                    tags.TARGET_DISTINCT,
                    tags.TARGET_INTEGRAL,
                )
            )
        )
        if aligned is not None:
            steps, values = aligned
            found.append(TargetStats(output, steps, *values))
    return found


def holds_now(steps: np.ndarray, condition: np.ndarray, values) -> Episode | None:
    """The trailing stretch of probes where `condition` holds, if it holds last.

    For facts of the probe batch rather than noisy trends: no majority vote.
    """
    if len(steps) == 0 or not condition[-1]:
        return None
    misses = np.flatnonzero(~condition)
    first = int(misses[-1]) + 1 if len(misses) else 0
    values = np.broadcast_to(np.asarray(values, dtype=np.float64), condition.shape)
    return Episode(int(steps[first]), int(steps[-1]), float(values[-1]))


def describe(stats: TargetStats) -> str:
    """`0–9 (10 distinct values)`: the targets' range as a reader checks it."""
    low, high = stats.last("low"), stats.last("high")
    distinct = int(stats.last("distinct"))
    count = (
        f"{distinct}+ distinct values"
        if distinct >= 64
        else f"{distinct} distinct value{'s' if distinct != 1 else ''}"
    )
    return f"{format_number(low)}–{format_number(high)} ({count})"


def _class_ids(stats: TargetStats) -> np.ndarray:
    """Whole numbers from 0 up, with a class beyond 0/1: what class ids look like."""
    return (stats.integral > 0.5) & (stats.low >= 0) & (stats.high >= 2)


def _mismatch(stats: TargetStats) -> tuple[np.ndarray, float, str, str] | None:
    """(condition per probe, threshold, message, hint) of the first problem."""
    output, name, loss = stats.output, stats.output.name, stats.output.loss
    units = output.units
    seen = describe(stats)
    if loss in tags.BINARY_PROBABILITY_LOSSES:
        outside = (stats.low < 0) | (stats.high > 1)
        if _class_ids(stats)[-1]:
            classes = int(stats.last("high")) + 1
            hint = (
                f"these are class ids: use Dense({classes}, activation='softmax') "
                "with loss='sparse_categorical_crossentropy'"
            )
        else:
            hint = (
                "binary labels must be 0 or 1 (or a probability); for real-valued "
                "targets use a regression loss such as 'mse' with a linear output"
            )
        message = f"targets of {name} range {seen}, but {loss} expects labels in [0, 1]"
        return outside, 1.0, message, hint
    if loss in tags.SPARSE_CATEGORICAL_LOSSES:
        fractional = stats.integral < 0.5
        if fractional[-1]:
            return (
                fractional,
                None,
                f"targets of {name} range {seen} and are not whole numbers, but "
                f"{loss} casts them to integer class ids (2.7 becomes 2)",
                "give class ids 0..K-1 as integers, or for real-valued targets use "
                "a regression loss such as 'mse' with a linear output",
            )
        if units is None:
            return None
        too_large = (stats.high >= units) | (stats.low < 0)
        return (
            too_large,
            float(units),
            f"targets of {name} range {seen}, but {loss} over {units} output "
            f"unit{'s' if units != 1 else ''} accepts class ids 0–{(units or 1) - 1}",
            f"give the output layer one unit per class: Dense({int(stats.last('high')) + 1}"
            ", activation='softmax'), with class ids counted from 0",
        )
    if loss in tags.CATEGORICAL_LOSSES:
        outside = (stats.low < 0) | (stats.high > 1)
        if _class_ids(stats)[-1]:
            hint = (
                "these are class ids: compile with "
                "loss='sparse_categorical_crossentropy', or one-hot encode them "
                "with keras.utils.to_categorical(y)"
            )
        else:
            hint = "give one-hot (or probability) rows that sum to 1"
        message = (
            f"targets of {name} range {seen}, but {loss} expects one-hot or "
            "probability rows in [0, 1]"
        )
        return outside, 1.0, message, hint
    if loss in tags.REGRESSION_LOSSES and output.activation in tags.OUTPUT_RANGES:
        low, high = tags.OUTPUT_RANGES[output.activation]
        above = stats.high > high
        outside = (stats.low < low) | above
        reach = f"[{format_number(low)}, {format_number(high)}]"
        return (
            outside,
            high if above[-1] else low,
            f"targets of {name} range {seen}, but its {output.activation} output "
            f"can only reach {reach}: {loss} can never get close",
            "use a linear output (activation=None) for regression targets, or "
            f"scale the targets into {reach}",
        )
    return None


def check_target_loss_mismatch(rule: Rule, run: Run) -> Iterator[Finding]:
    for stats in target_stats(run):
        found = _mismatch(stats)
        if found is None:
            continue
        condition, threshold, message, hint = found
        # The value is the target extreme beyond the threshold (the max, or the
        # min for one below a lower bound).
        below = threshold is not None and stats.last("high") <= threshold
        episode = holds_now(stats.steps, condition, stats.low if below else stats.high)
        if episode is None:
            continue
        yield rule.finding(
            layer=stats.output.layer,
            episode=episode,
            threshold=threshold,
            message=message,
            hint=hint,
        )


def _output_scale(run: Run, name: str, steps: np.ndarray) -> np.ndarray | None:
    """max(|mean|, |min|, |max|) of the predictions at `steps`, if recorded."""
    aligned = align(
        *(
            run.series(m, name)
            for m in (tags.OUTPUT_MEAN, tags.OUTPUT_MIN, tags.OUTPUT_MAX)
        )
    )
    if aligned is None:
        return None
    at, values = aligned
    scale = np.max(np.abs(np.stack(values)), axis=0)
    index = np.searchsorted(at, steps)
    present = (index < len(at)) & (at[np.minimum(index, len(at) - 1)] == steps)
    result = np.full(len(steps), np.nan)
    result[present] = scale[index[present]]
    return result


def check_unscaled_target(rule: Rule, run: Run) -> Iterator[Finding]:
    for stats in target_stats(run):
        output = stats.output
        if (
            output.loss not in tags.REGRESSION_LOSSES
            # a percentage error does not depend on the scale
            or output.loss == "mean_absolute_percentage_error"
            # a bounded output is `target_loss_mismatch`'s
            or output.activation in tags.OUTPUT_RANGES
        ):
            continue
        scale = np.maximum(np.abs(stats.mean), stats.std)
        condition = scale > TARGET_SCALE_LIMIT
        predicted = _output_scale(run, output.name, stats.steps)
        if predicted is not None:
            # Predictions already at the targets' scale: the model caught up.
            condition &= ~(predicted >= CAUGHT_UP_FRACTION * scale)
        episode = holds_now(stats.steps, condition, scale)
        if episode is None:
            continue
        reached = (
            ""
            if predicted is None or not math.isfinite(predicted[-1])
            else f", while its predictions stay within ±{format_number(predicted[-1])}"
        )
        yield rule.finding(
            layer=output.layer,
            episode=episode,
            threshold=TARGET_SCALE_LIMIT,
            message=(
                f"targets of {output.name} have mean {format_number(stats.last('mean'))}"
                f" and std {format_number(stats.last('std'))}{reached}: "
                f"{output.loss} and its gradients are dominated by the scale"
            ),
            hint=(
                "standardize the targets (y - mean) / std and invert it on the "
                "predictions, or fold the scale into the model (e.g. initialize "
                "the output bias to the target mean)"
            ),
        )


def check_constant_target(rule: Rule, run: Run) -> Iterator[Finding]:
    batch = None if run.metadata is None else run.metadata.batch_size
    for stats in target_stats(run):
        output = stats.output
        shape = output.target_shape or ()
        samples = shape[0] if shape and shape[0] is not None else batch
        if samples is None or samples < MIN_CONSTANT_SAMPLES:
            continue
        constant = (stats.distinct <= 1) | (stats.low == stats.high)
        episode = holds_now(stats.steps, constant, stats.high)
        if episode is None:
            continue
        value = stats.last("high")
        label = output.loss in tags.PROBABILITY_LOSSES and value in (0.0, 1.0)
        label = label or (
            output.loss in tags.SPARSE_CATEGORICAL_LOSSES and stats.last("integral")
        )
        message = (
            f"all {samples} targets of {output.name} in the probe batch are "
            f"{format_number(value)}: a model trained on them learns a constant"
        )
        if label:
            # One class in a batch can be chance on imbalanced data: say so.
            yield rule.finding(
                layer=output.layer,
                episode=episode,
                severity=INFO,
                message=message,
                hint=(
                    "check the labels (np.unique(y, return_counts=True)) and shuffle "
                    "the data; on a rare-positive data set this batch may be chance"
                ),
            )
        else:
            yield rule.finding(
                layer=output.layer,
                episode=episode,
                message=message,
                hint=(
                    "check how the targets are built: y should vary with the input "
                    "(np.unique(y)); shuffle data sorted by target"
                ),
            )


TARGET_LOSS_MISMATCH = Rule(
    id="target_loss_mismatch",
    severities=(ERROR,),
    summary="targets the compiled loss or the output layer cannot use",
    source="the loss's definition (Keras losses); no threshold",
    check=check_target_loss_mismatch,
)
UNSCALED_TARGET = Rule(
    id="unscaled_target",
    severities=(WARNING,),
    summary="regression targets far from unit scale, predictions still small",
    source="bnscope's choice (|mean| or std > 100, predictions below 1/10 of it)",
    check=check_unscaled_target,
)
CONSTANT_TARGET = Rule(
    id="constant_target",
    severities=(WARNING, INFO),
    summary="every target of the probe batch is the same value",
    source="bnscope's choice (at least 16 targets)",
    check=check_constant_target,
)
