"""Units that stopped working or blew up: `dead_relu`, `saturation`, `exploding_activation`."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from bnscope import tags
from bnscope.analysis.formatting import format_number, percent
from bnscope.analysis.rules.base import (
    WARNING,
    Finding,
    Rule,
    align,
    persistent,
    values_at,
)
from bnscope.analysis.rules.model_graph import ModelGraph
from bnscope.analysis.runs import Run

# SageMaker Debugger `dead_relu`: a ReLU is dead when active less than
# threshold_inactivity = 1% of the time, and the layer is flagged when more
# than threshold_layer = 50% of its ReLUs are dead. bnscope's `act_dead_frac`
# counts units that are 0 for every probe sample (active 0% of the time).
DEAD_FRACTION = 0.5
# SageMaker Debugger `saturated_activation`: threshold_layer = 50% of the
# layer's tanh/sigmoid units saturated. Which values count as saturated is in
# `bnscope.tags.SATURATION_BOUNDS` and docs/findings.md.
SATURATED_FRACTION = 0.5
# Softmax is left out: a confident classifier saturates its softmax by design.
SATURATING_HIDDEN = tags.SATURATING_HIDDEN
# Explosion in absolute terms (bnscope's choice): hidden activations of a
# healthy network stay near unit scale (Glorot/He initialization and
# normalization layers are designed to keep them there); raw 0-255 inputs
# make the first layer's outputs large but do not grow them further. So: a
# hidden layer's activation std above 1e3 and 100x the first layer's, while
# the loss or the global gradient norm is above 1e3, where a cross-entropy
# at chance is ln(classes) < 10 and healthy gradient norms are O(0.1-10).
ACTIVATION_LIMIT = 1e3
ACTIVATION_GROWTH = 100.0
MAGNITUDE_LIMIT = 1e3
_BOUNDED = tags.SATURATING_ACTIVATIONS


def check_dead_relu(rule: Rule, run: Run) -> Iterator[Finding]:
    for layer in run.layers:
        if layer.activation not in tags.RELU_FAMILY:
            continue
        series = run.series(tags.ACT_DEAD_FRAC, layer.name)
        if series is None:
            continue
        episode = persistent(series.steps, series.values > DEAD_FRACTION, series.values)
        if episode is None:
            continue
        yield rule.finding(
            layer=layer.name,
            episode=episode,
            threshold=DEAD_FRACTION,
            message=(
                f"{percent(episode.value)} of the units of {layer.name} output 0 "
                "for every probe sample (dead ReLUs)"
            ),
            what="most units output 0 for every probe sample (dead ReLUs)",
            hint=(
                "lower the learning rate, add BatchNormalization before the ReLU, "
                "use He initialization, or try LeakyReLU"
            ),
        )


def check_saturation(rule: Rule, run: Run) -> Iterator[Finding]:
    # The output layer is left out: a confident sigmoid output is the goal.
    last_depth = max((layer.depth for layer in run.layers), default=-1)
    for layer in run.layers:
        if layer.activation not in SATURATING_HIDDEN or layer.depth == last_depth:
            continue
        series = run.series(tags.ACT_SATURATED_FRAC, layer.name)
        if series is None:
            continue
        episode = persistent(
            series.steps, series.values > SATURATED_FRACTION, series.values
        )
        if episode is None:
            continue
        yield rule.finding(
            layer=layer.name,
            episode=episode,
            threshold=SATURATED_FRACTION,
            message=(
                f"{percent(episode.value)} of the {layer.activation} outputs of "
                f"{layer.name} sit in the flat tails, where gradients vanish"
            ),
            what=(
                f"most {layer.activation} outputs sit in the flat tails, where "
                "gradients vanish"
            ),
            hint=(
                "use ReLU instead of sigmoid/tanh in hidden layers, or add "
                "BatchNormalization before the activation"
            ),
        )


def check_exploding_activation(rule: Rule, run: Run) -> Iterator[Finding]:
    last = max((layer.depth for layer in run.layers), default=-1)
    hidden = [
        layer
        for layer in run.layers
        if layer.depth != last
        and layer.normalization is None
        and layer.activation not in _BOUNDED
        and run.series(tags.ACT_STD, layer.name) is not None
    ]
    magnitude = [
        series
        for series in (
            run.series(tags.LOSS, tags.MODEL_SUBJECT),
            run.series(tags.GRAD_GLOBAL_NORM, tags.MODEL_SUBJECT),
        )
        if series is not None
    ]
    if len(hidden) < 2 or not magnitude:
        return
    stds = [run.series(tags.ACT_STD, layer.name) for layer in hidden]
    aligned = align(*stds)
    if aligned is None:
        return
    steps, values = aligned
    scales = np.abs(np.stack(values))  # layers x probes
    scales = np.where(np.isfinite(scales), scales, 0.0)  # NaN is `nonfinite`'s
    first = scales[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = scales.max(axis=0) / first
    sizes = np.zeros(len(steps))
    for series in magnitude:
        at = np.abs(values_at(series, steps))
        sizes = np.maximum(sizes, np.where(np.isfinite(at), at, 0.0))
    condition = (
        (scales.max(axis=0) > ACTIVATION_LIMIT)
        & (growth > ACTIVATION_GROWTH)
        & (sizes > MAGNITUDE_LIMIT)
        & np.isfinite(growth)
    )
    episode = persistent(steps, condition, growth)
    if episode is None:
        return
    at = int(np.searchsorted(steps, episode.last_step))
    top = hidden[int(np.argmax(scales[:, at]))]
    fixes = (
        "initialize weights at Keras' default scale (Glorot/He) rather than large "
        "random values, lower the learning rate"
    )
    if not ModelGraph(run).normalized:
        fixes += ", or add BatchNormalization or LayerNormalization between layers"
    yield rule.finding(
        layer=top.name,
        episode=episode,
        threshold=ACTIVATION_GROWTH,
        message=(
            f"activations grow {format_number(episode.value)}x through depth (std "
            f"{format_number(first[at])} at {hidden[0].name}, "
            f"{format_number(scales[:, at].max())} at {top.name}) and loss or "
            f"gradient norm reach {format_number(sizes[at])}: the forward pass "
            "explodes"
        ),
        hint=fixes,
    )


DEAD_RELU = Rule(
    id="dead_relu",
    severities=(WARNING,),
    summary="most units of a ReLU layer never activate",
    source="SageMaker Debugger dead_relu (threshold_layer 50%)",
    check=check_dead_relu,
)
SATURATION = Rule(
    id="saturation",
    severities=(WARNING,),
    summary="most sigmoid/tanh units sit in the flat tails",
    source="SageMaker Debugger saturated_activation (threshold_layer 50%)",
    check=check_saturation,
)
EXPLODING_ACTIVATION = Rule(
    id="exploding_activation",
    severities=(WARNING,),
    summary="activations grow through depth and loss or gradients are huge",
    source="bnscope's choice: act std > 1e3 and 100x the first layer's, loss or grad > 1e3",
    check=check_exploding_activation,
)
