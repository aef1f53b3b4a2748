"""Gradient flow through depth: `vanishing_gradient` and `exploding_gradient`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from bnscope import tags
from bnscope.analysis.formatting import format_number
from bnscope.analysis.rules.base import (
    ERROR,
    WARNING,
    Episode,
    Finding,
    Rule,
    align,
    gradient_layers,
    persistent,
)
from bnscope.analysis.rules.inputs import unnormalized_inputs
from bnscope.analysis.rules.model_graph import ModelGraph
from bnscope.analysis.runs import Run
from bnscope.schema import LayerMeta

# AUTOTRAINER (Zhang et al., ICSE 2021), utils/monitor.py `gradient_issue`:
# vanishing when |g_first| / |g_last| < beta_1 = 1e-3 and |g_first| < beta_2 =
# 1e-4; exploding when the ratio > beta_3 = 70 (kernel gradient L2 norms).
VANISHING_RATIO = 1e-3
VANISHING_FIRST_NORM = 1e-4
EXPLODING_RATIO = 70.0
# SageMaker Debugger `vanishing_gradient`: mean |g| < 1e-7. bnscope records
# L2 norms; mean |g| <= ||g||_2 / sqrt(n) <= ||g||_2, so ||g||_2 < 1e-7 implies
# SageMaker's condition without knowing n.
NEAR_ZERO_NORM = 1e-7
# Growth of the global gradient norm over training that bnscope calls an
# explosion: recent median / median of the first probes (bnscope's choice;
# healthy runs shrink or stay within a few x).
GROWTH_FACTOR = 100.0


def vanishing_hint(graph: ModelGraph) -> str:
    """The fixes for vanishing gradients this model does not use yet."""
    fixes = []
    if not graph.normalized:
        fixes.append("add BatchNormalization before the activations")
    if graph.saturating_hidden:
        fixes.append("use ReLU instead of sigmoid/tanh with He initialization")
    if not graph.residual:
        fixes.append("add residual connections")
    if not fixes:
        return (
            "the model already normalizes, avoids saturating activations and has "
            "skip connections: look for dead or saturated units and check the "
            "learning rate"
        )
    return _either(fixes)


def exploding_hint(graph: ModelGraph) -> str:
    """The fixes for exploding gradients, normalization only if it is missing."""
    fixes = ["lower the learning rate", "clip gradients (`clipnorm=1.0`)"]
    if not graph.normalized:
        fixes.append("add BatchNormalization")
    return _either(fixes)


def _either(fixes: list[str]) -> str:
    return fixes[0] if len(fixes) == 1 else ", ".join(fixes[:-1]) + " or " + fixes[-1]


@dataclass(frozen=True)
class DepthRatio:
    """The first/last gradient ratio where it crossed its threshold."""

    first: LayerMeta
    last: LayerMeta
    episode: Episode
    first_norm: float
    scale_free: bool

    def describe(self) -> str:
        what = "scale-free gradient ‖g‖·‖w‖" if self.scale_free else "gradient"
        return (
            f"{what} of first layer {self.first.name} is "
            f"{format_number(self.episode.value)}x that of last layer {self.last.name}"
        )


def _ratio_episodes(run: Run, below: bool) -> Iterator[DepthRatio]:
    """AUTOTRAINER's first/last gradient ratio, where it crosses its threshold.

    In a normalized architecture (the first weight layer feeds normalization)
    that layer's loss does not change when its weights are rescaled, so its
    gradient norm is inversely proportional to its weight norm (van Laarhoven
    2017): the raw ratio mostly compares weight norms. There both layers are
    compared by ‖g‖·‖w‖, the loss change per relative change of the weights,
    which rescaling leaves alone.
    """
    layers = gradient_layers(run)
    if len(layers) < 2:
        return
    first, last = layers[0], layers[-1]
    scale_free = ModelGraph(run).normalized_output(first.name)
    series = [
        run.series(tags.GRAD_NORM, first.name),
        run.series(tags.GRAD_NORM, last.name),
    ]
    if scale_free:
        series += [
            run.series(tags.WEIGHT_NORM, first.name),
            run.series(tags.WEIGHT_NORM, last.name),
        ]
    aligned = align(*series)
    if aligned is None:
        return
    steps, values = aligned
    g_first, g_last = values[0], values[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        if scale_free:
            ratio = (g_first * values[2]) / (g_last * values[3])
        else:
            ratio = g_first / g_last
    if below:
        condition = (ratio < VANISHING_RATIO) & (g_first < VANISHING_FIRST_NORM)
    else:
        condition = ratio > EXPLODING_RATIO
    episode = persistent(steps, condition, ratio)
    if episode is not None:
        yield DepthRatio(
            first, last, episode, float(np.median(g_first[-5:])), scale_free
        )


def check_vanishing(rule: Rule, run: Run) -> Iterator[Finding]:
    graph = ModelGraph(run)
    hint = vanishing_hint(graph)
    flagged: set[str] = set()
    for ratio in _ratio_episodes(run, below=True):
        flagged.add(ratio.first.name)
        yield rule.finding(
            layer=ratio.first.name,
            episode=ratio.episode,
            threshold=VANISHING_RATIO,
            message=f"{ratio.describe()} (norm {format_number(ratio.first_norm)})",
            hint=hint,
        )
    for layer in run.layers:
        if layer.name in flagged or layer.trainable is False:
            continue
        for variable, series in _gradient_series(graph, layer):
            episode = persistent(
                series.steps, series.values < NEAR_ZERO_NORM, series.values
            )
            if episode is None:
                continue
            what = layer.name if variable is None else f"{layer.name}:{variable}"
            yield rule.finding(
                layer=layer.name,
                episode=episode,
                threshold=NEAR_ZERO_NORM,
                message=(
                    f"gradient of {what} is near zero "
                    f"(L2 norm {format_number(episode.value)})"
                ),
                what="gradient is near zero (L2 norm < 1e-7)",
                hint=hint,
            )
            break


def _gradient_series(graph: ModelGraph, layer):
    """The layer's gradient norm, then its variables' (structural zeros left out).

    A parameter cancelled by construction (a bias or β before BN through
    linear layers, attention's key bias) has a zero gradient whatever the
    training does: it is not a vanishing gradient (see `bias_before_bn`).
    """
    run = graph.run
    variables = run.variables(tags.GRAD_VAR_NORM, layer.name)
    cancelled = {v for v, _ in variables if (layer.name, v) in graph.cancelled}
    whole = run.series(tags.GRAD_NORM, layer.name)
    if whole is not None and not (variables and len(cancelled) == len(variables)):
        yield None, whole
    for variable, series in variables:
        if variable not in cancelled:
            yield variable, series


def check_exploding(rule: Rule, run: Run) -> Iterator[Finding]:
    hint = exploding_hint(ModelGraph(run))
    # Raw inputs scale the first layer's gradient: an input problem, reported
    # by `unnormalized_input`, not an explosion.
    if not unnormalized_inputs(run):
        for ratio in _ratio_episodes(run, below=False):
            yield rule.finding(
                severity=WARNING,
                layer=ratio.first.name,
                episode=ratio.episode,
                threshold=EXPLODING_RATIO,
                message=ratio.describe(),
                hint=hint,
            )
    total = run.series(tags.GRAD_GLOBAL_NORM, tags.MODEL_SUBJECT)
    if total is None or len(total) < 4:
        return
    finite = np.isfinite(total.values)
    baseline = float(np.median(total.values[finite][:3])) if finite.sum() >= 3 else 0.0
    if baseline <= 0:
        return
    growth = total.values / baseline
    episode = persistent(total.steps, finite & (growth > GROWTH_FACTOR), growth)
    if episode is not None:
        yield rule.finding(
            severity=ERROR,
            episode=episode,
            threshold=GROWTH_FACTOR,
            message=(
                f"global gradient norm grew {format_number(episode.value)}x since the first "
                "probes"
            ),
            hint=hint,
        )


VANISHING_GRADIENT = Rule(
    id="vanishing_gradient",
    severities=(WARNING,),
    summary="early layers get orders of magnitude less gradient than later ones",
    source="AUTOTRAINER (ICSE 2021) beta_1/beta_2; SageMaker Debugger 1e-7",
    check=check_vanishing,
)
EXPLODING_GRADIENT = Rule(
    id="exploding_gradient",
    severities=(WARNING, ERROR),
    summary="gradients grow through depth or over time without bound",
    source="AUTOTRAINER (ICSE 2021) beta_3 = 70; growth 100x is bnscope's choice",
    check=check_exploding,
)
