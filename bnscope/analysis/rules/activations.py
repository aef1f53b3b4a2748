"""Units that stopped working: `dead_relu` and `saturation`."""

from __future__ import annotations

from collections.abc import Iterator

from bnscope import tags
from bnscope.analysis.formatting import percent
from bnscope.analysis.rules.base import WARNING, Finding, Rule, persistent
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
            hint=(
                "use ReLU instead of sigmoid/tanh in hidden layers, or add "
                "BatchNormalization before the activation"
            ),
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
