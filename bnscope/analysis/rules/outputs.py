"""Outputs that cannot learn: `output_loss_mismatch` and `constant_output`.

`output_loss_mismatch` reads the metadata alone: the output's activation and
units against its compiled loss and `from_logits`. `constant_output` reads what
the model really predicts (`output_*` tags), not the loss: Keras 3 computes
cross-entropy from the logits it caches on a sigmoid or softmax output, so a
softmax over one unit trains its logit (the loss falls) while every
prediction stays exactly 1.0.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from bnscope import tags
from bnscope.analysis.formatting import format_number
from bnscope.analysis.rules.base import (
    ERROR,
    WARNING,
    Finding,
    Rule,
    align,
    persistent,
    run_steps,
)
from bnscope.analysis.runs import Run
from bnscope.schema import OutputMeta

# Predictions count as constant across the probe samples when their spread is
# at most this fraction of their magnitude: about 8 float32 ulps (machine
# epsilon 1.2e-7), i.e. differences that are rounding, not signal
# (bnscope's choice; a healthy classifier's spread is of order 1e-2 and more).
CONSTANT_SPREAD = 1e-6

_LOSS_FIX = {
    "binary_crossentropy": "keras.losses.BinaryCrossentropy(from_logits=True)",
    "binary_focal_crossentropy": (
        "keras.losses.BinaryFocalCrossentropy(from_logits=True)"
    ),
    "categorical_crossentropy": (
        "keras.losses.CategoricalCrossentropy(from_logits=True)"
    ),
    "categorical_focal_crossentropy": (
        "keras.losses.CategoricalFocalCrossentropy(from_logits=True)"
    ),
    "sparse_categorical_crossentropy": (
        "keras.losses.SparseCategoricalCrossentropy(from_logits=True)"
    ),
}
# Softmax cross-entropies (Keras computes them from the cached softmax logits).
_SOFTMAX_CE = (tags.CATEGORICAL_LOSSES | tags.SPARSE_CATEGORICAL_LOSSES) - {
    "kl_divergence"
}
_ONE_UNIT_HINT = (
    "for a yes/no target use Dense(1, activation='sigmoid') with "
    "binary_crossentropy; for K classes Dense(K, activation='softmax')"
)


def _mismatch(output: OutputMeta) -> tuple[str, str, str] | None:
    """(severity, message, hint) of the first output/loss mismatch, if any."""
    name, activation, loss, units = (
        output.name,
        output.activation,
        output.loss,
        output.units,
    )
    where = output.layer or name
    if activation == "softmax" and units == 1:
        return (
            ERROR,
            f"{where} is a softmax over 1 unit: it outputs 1.0 for every input, "
            "whatever the loss does",
            _ONE_UNIT_HINT,
        )
    if loss in _SOFTMAX_CE and units == 1:
        return (
            ERROR,
            f"{loss} over the single unit of {where} is identically 0 (a softmax "
            "over one class is 1): nothing is learned",
            _ONE_UNIT_HINT,
        )
    if loss not in tags.PROBABILITY_LOSSES or activation is None:
        return None
    if output.from_logits is False and activation not in tags.PROBABILITY_ACTIVATIONS:
        return (
            ERROR,
            f"{where} has a {activation} output, but {loss} expects probabilities "
            "(from_logits=False): values outside (0, 1) are clipped and get no "
            "gradient",
            f"add activation='{'sigmoid' if loss in tags.BINARY_PROBABILITY_LOSSES else 'softmax'}'"
            f" to {where}, or keep it linear and compile with "
            f"{_LOSS_FIX.get(loss, 'from_logits=True')}",
        )
    if activation in ("sigmoid", "hard_sigmoid") and loss in _SOFTMAX_CE:
        return (
            WARNING,
            f"{where} has {units} independent sigmoid outputs, but {loss} scores "
            "them as one distribution over classes: the predictions are not the "
            "probabilities being trained",
            f"use activation='softmax' on {where} for one class per sample, or "
            "binary_crossentropy for several labels per sample",
        )
    if activation == "softmax" and loss in tags.BINARY_PROBABILITY_LOSSES:
        return (
            WARNING,
            f"{where} is a softmax over {units} classes, but {loss} scores every "
            "unit as its own yes/no: the classes compete in the output but not in "
            "the loss, and 'accuracy' becomes binary accuracy",
            "use categorical_crossentropy (one-hot targets) or "
            "sparse_categorical_crossentropy (class ids) with the softmax; "
            "sigmoid outputs for several labels per sample",
        )
    return None


def check_output_loss_mismatch(rule: Rule, run: Run) -> Iterator[Finding]:
    if run.metadata is None:
        return
    for output in run.metadata.outputs:
        found = _mismatch(output)
        if found is None:
            continue
        severity, message, hint = found
        yield rule.finding(
            layer=output.layer,
            steps=run_steps(run),
            severity=severity,
            message=message,
            hint=hint,
        )


def _first_constant_layer(run: Run, step: int) -> str | None:
    """The shallowest layer whose every output value was equal at `step`."""
    for layer in run.layers:
        low = run.series(tags.ACT_MIN, layer.name)
        high = run.series(tags.ACT_MAX, layer.name)
        aligned = align(low, high)
        if aligned is None:
            continue
        steps, (lows, highs) = aligned
        index = np.searchsorted(steps, step)
        if index < len(steps) and steps[index] == step and lows[index] == highs[index]:
            return layer.name
    return None


def _inputs_constant(run: Run, step: int) -> bool:
    stds = [series for _, series in run.items(tags.INPUT_STD)]
    if not stds:
        return False
    for series in stds:
        index = np.searchsorted(series.steps, step)
        if index >= len(series) or series.steps[index] != step:
            return False
        if series.values[index] > 0:
            return False
    return True


def _loss_fell(run: Run, first: int, last: int) -> tuple[float, float] | None:
    """(loss at `first`, at `last`) if the probe loss fell by a tenth or more."""
    loss = run.series(tags.LOSS, tags.MODEL_SUBJECT)
    if loss is None:
        return None
    window = (loss.steps >= first) & (loss.steps <= last)
    values = loss.values[window]
    if len(values) < 2 or not np.all(np.isfinite(values)):
        return None
    if values[-1] <= 0.9 * values[0]:
        return float(values[0]), float(values[-1])
    return None


def _scored_from_logits(output: OutputMeta | None) -> bool:
    """A one-unit softmax: constant 1.0, while Keras 3 trains its cached logit."""
    return (
        output is not None
        and output.activation == "softmax"
        and output.units == 1
        and output.loss in tags.PROBABILITY_LOSSES
    )


def _constant_predictions(rule: Rule, run: Run) -> Iterator[Finding]:
    batch = None if run.metadata is None else run.metadata.batch_size
    if batch is not None and batch < 2:
        return  # one sample has no spread
    for name, spread in run.items(tags.OUTPUT_SPREAD):
        aligned = align(
            spread,
            run.series(tags.OUTPUT_MIN, name),
            run.series(tags.OUTPUT_MAX, name),
            run.series(tags.OUTPUT_MEAN, name),
        )
        if aligned is None:
            continue
        steps, (spreads, lows, highs, means) = aligned
        magnitude = np.maximum(np.abs(lows), np.abs(highs))
        # Spread relative to the magnitude; 0 for an output that is 0 everywhere.
        relative = np.divide(
            spreads, magnitude, out=np.zeros_like(spreads), where=magnitude > 0
        )
        constant = relative <= CONSTANT_SPREAD
        episode = persistent(steps, constant, relative)
        if episode is None:
            continue
        output = None if run.metadata is None else run.metadata.output(name)
        samples = f"all {batch}" if batch else "all"
        message = (
            f"{samples} probe samples get the same prediction from {name}, "
            f"{format_number(means[-1])} (spread {format_number(spreads[-1])})"
        )
        fell = _loss_fell(run, episode.first_step, episode.last_step)
        if fell is not None:
            message += (
                f", although the loss fell from {format_number(fell[0])} to "
                f"{format_number(fell[1])}"
            )
            if _scored_from_logits(output):
                message += (
                    ": Keras computes the loss from the cached logits, not from "
                    "these predictions"
                )
        cause = _first_constant_layer(run, episode.last_step)
        if output is not None and output.activation == "softmax" and output.units == 1:
            hint = (
                "a softmax over 1 unit is always 1.0: use Dense(1, "
                "activation='sigmoid') with binary_crossentropy"
            )
        elif _inputs_constant(run, episode.last_step):
            message += "; the inputs of the probe batch are identical too"
            hint = "check the input pipeline: every sample has the same input"
        elif cause is not None:
            hint = (
                f"{cause} outputs one value for every sample and all after it is "
                "constant: look for dead ReLUs or saturated units there (lower the "
                "learning rate, He initialization, BatchNormalization)"
            )
        else:
            hint = (
                "the output ignores the input: check for a collapsed layer (dead "
                "ReLUs, saturated units) or a learning rate that is too high"
            )
        yield rule.finding(
            layer=None if output is None else output.layer,
            episode=episode,
            threshold=CONSTANT_SPREAD,
            message=message,
            hint=hint,
        )


def _zero_gradients(rule: Rule, run: Run) -> Iterator[Finding]:
    norm = run.series(tags.GRAD_GLOBAL_NORM, tags.MODEL_SUBJECT)
    if norm is None:
        return
    episode = persistent(norm.steps, norm.values == 0.0, norm.values)
    if episode is None:
        return
    single_unit = [
        output
        for output in (run.metadata.outputs if run.metadata else ())
        if output.units == 1 and output.loss in _SOFTMAX_CE
    ]
    if single_unit:
        output = single_unit[0]
        why = (
            f": {output.loss} over the single unit of {output.layer or output.name}"
            " is identically 0"
        )
        hint = _ONE_UNIT_HINT
    else:
        why = ""
        hint = (
            "the loss does not depend on the weights: check the output layer and "
            "the loss; a custom loss must be computed from y_pred with "
            "differentiable ops (no argmax, round or cast)"
        )
    yield rule.finding(
        episode=episode,
        threshold=0.0,
        severity=ERROR,
        message=f"every gradient is exactly 0: no weight can learn{why}",
        hint=hint,
    )


def check_constant_output(rule: Rule, run: Run) -> Iterator[Finding]:
    yield from _constant_predictions(rule, run)
    yield from _zero_gradients(rule, run)


OUTPUT_LOSS_MISMATCH = Rule(
    id="output_loss_mismatch",
    severities=(ERROR, WARNING),
    summary="an output activation or size the compiled loss cannot train",
    source="the losses' and activations' definitions (Keras); no threshold",
    check=check_output_loss_mismatch,
)
CONSTANT_OUTPUT = Rule(
    id="constant_output",
    severities=(WARNING, ERROR),
    summary="predictions identical for every probe sample, or every gradient 0",
    source="bnscope's choice (spread ≤ 1e-6 × magnitude: float32 rounding)",
    check=check_constant_output,
)
