"""BatchNormalization against its own moving statistics.

`bn_stat_drift`, `bn_train_inference_gap`, `bn_mode_override` and
`bn_ema_not_converged`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from bnscope import tags
from bnscope.analysis.formatting import format_number, percent
from bnscope.analysis.rules.base import (
    ERROR,
    INFO,
    WARNING,
    Episode,
    Finding,
    Rule,
    align,
    current,
    persistent,
)
from bnscope.analysis.runs import Run
from bnscope.schema import LayerMeta

# EMA windows: after k windows of 1/(1 - momentum) steps the initial moving
# statistics keep a weight of momentum^(k / (1 - momentum)) ≈ e^-k: 37% after
# one window, 5% after three (arithmetic, not a tuned number).
EMA_WINDOWS_CONVERGED = 3.0
EMA_WINDOWS_MINIMUM = 1.0
# Drift: the moving mean is off by half a standard deviation, or the moving
# variance by a factor 2 (|log ratio| > log 2). bnscope's choice, well above
# the sampling noise of a batch of 16+ (standard error of a mean ≈ 1/sqrt(B)).
MEAN_SHIFT_LIMIT = 0.5
LOG_VAR_RATIO_LIMIT = math.log(2.0)
# Relative L2 gap between a BN layer's training- and inference-mode output.
# Batch statistics alone differ from population ones by about sqrt(1.5 / B)
# (mean and std sampling error), 0.31 at B = 16; 0.5 sits above that.
LAYER_GAP_LIMIT = 0.5
# Whole model: fraction of probe samples whose predicted class survives the
# switch to inference mode (TheDeepChecker checks train/inference-mode
# consistency of outputs; this threshold is bnscope's choice).
ARGMAX_AGREEMENT_LIMIT = 0.9
OUTPUT_GAP_LIMIT = 0.5
# Evidence beyond doubt, reported whatever the gates say (BN warm-up, Dropout
# in the model, persistence): fewer than half the predictions survive the
# switch to inference mode, or the outputs differ by more than their own norm.
# bnscope's choice: neither happens by sampling noise on a batch of 16+, and
# Dropout alone rarely flips half of a trained classifier's predictions (it
# must also show in the BN layers' own gaps for models with Dropout).
DOUBTLESS_AGREEMENT = 0.5
DOUBTLESS_GAP = 1.0
_STOCHASTIC_CLASSES = ("Dropout", "GaussianNoise")


def batch_norm_layers(run: Run) -> list[LayerMeta]:
    return [layer for layer in run.layers if layer.is_batch_norm]


def _is_frozen(layer: LayerMeta) -> bool:
    return layer.trainable is False or layer.normalization.training_mode is False


def _converged_mask(run: Run, layer: LayerMeta, steps: np.ndarray) -> np.ndarray:
    """True at steps where the layer's EMA has seen enough windows (or is frozen)."""
    progress = run.series(tags.BN_EMA_PROGRESS, layer.name)
    if _is_frozen(layer) or progress is None:
        return np.ones(len(steps), dtype=bool)
    index = np.searchsorted(progress.steps, steps, side="right") - 1
    known = index >= 0
    result = np.zeros(len(steps), dtype=bool)
    result[known] = progress.values[index[known]] >= EMA_WINDOWS_CONVERGED
    return result


def check_stat_drift(rule: Rule, run: Run) -> Iterator[Finding]:
    for layer in batch_norm_layers(run):
        aligned = align(
            run.series(tags.BN_MEAN_SHIFT, layer.name),
            run.series(tags.BN_LOG_VAR_RATIO, layer.name),
        )
        if aligned is None:
            continue
        steps, (shift, log_ratio) = aligned
        converged = _converged_mask(run, layer, steps)
        shifted = converged & (shift > MEAN_SHIFT_LIMIT)
        scaled = converged & (log_ratio > LOG_VAR_RATIO_LIMIT)
        by_shift = persistent(steps, shifted, shift)
        by_scale = persistent(steps, scaled, log_ratio)
        if by_shift is None and by_scale is None:
            continue
        if by_shift is not None:
            episode, threshold = by_shift, MEAN_SHIFT_LIMIT
            what = f"batch mean is {format_number(episode.value)} std away from the moving mean"
        else:
            episode, threshold = by_scale, LOG_VAR_RATIO_LIMIT
            factor = math.exp(episode.value)
            what = f"batch variance differs from the moving variance by {format_number(factor)}x"
        if _is_frozen(layer):
            message = f"frozen {layer.name}: {what}"
            summary = "frozen BN statistics do not describe the data it sees"
            hint = (
                "the frozen statistics do not describe this data: unfreeze BN "
                "(trainable=True) or recompute its statistics on the new data"
            )
        else:
            message = f"{layer.name}: {what}"
            summary = "moving statistics disagree with the batch statistics"
            hint = (
                "moving statistics lag the data: lower BN momentum (e.g. 0.9), "
                "lower the learning rate, or recompute statistics before evaluating"
            )
        yield rule.finding(
            layer=layer.name,
            episode=episode,
            threshold=threshold,
            message=message,
            what=summary,
            hint=hint,
        )


def check_train_inference_gap(rule: Rule, run: Run) -> Iterator[Finding]:
    bn_layers = batch_norm_layers(run)
    for layer in bn_layers:
        gap = run.series(tags.BN_GAP, layer.name)
        if gap is None:
            continue
        converged = _converged_mask(run, layer, gap.steps)
        episode = persistent(
            gap.steps, converged & (gap.values > LAYER_GAP_LIMIT), gap.values
        )
        if episode is None:
            continue
        yield rule.finding(
            layer=layer.name,
            episode=episode,
            threshold=LAYER_GAP_LIMIT,
            message=(
                f"{layer.name} output differs by {percent(episode.value)} between "
                "training and inference mode"
            ),
            what="output differs by more than 50% between training and inference mode",
            hint=(
                "batch and moving statistics disagree: use larger batches, lower "
                "BN momentum, or LayerNormalization"
            ),
        )
    for gap in output_gaps(run):
        if gap.converged:
            yield _output_finding(rule, gap)


@dataclass(frozen=True)
class OutputGap:
    """A model output that differs between training and inference mode.

    Args:
        output: The output's name.
        agreement: Whether `episode.value` is the argmax agreement (else the
            relative L2 gap).
        episode: Where it held.
        converged: Whether every learning BN had seen 3 EMA windows at the
            latest probe; if not, `bn_ema_not_converged` reports the gap as
            the consequence it is.
    """

    output: str
    agreement: bool
    episode: Episode
    converged: bool

    @property
    def message(self) -> str:
        if self.agreement:
            return (
                f"only {percent(self.episode.value)} of predictions of output "
                f"{self.output} agree between training and inference mode"
            )
        return (
            f"output {self.output} differs by {percent(self.episode.value)} "
            "between training and inference mode"
        )


def output_gaps(run: Run) -> list[OutputGap]:
    """Train/inference gaps of the model outputs, with the gates applied.

    A gap counts once every learning BN has seen 3 EMA windows, in a model
    without Dropout or noise layers (they make training-mode outputs differ on
    their own), when it persists. Evidence beyond doubt (`DOUBTLESS_*`) at the
    latest probe counts whatever the gates say; in a model with Dropout it
    must also show in a BN layer's own gap, so that BN is what the outputs
    disagree about.
    """
    bn_layers = batch_norm_layers(run)
    if not bn_layers:
        return []
    stochastic = _stochastic(run)
    corroborated = not stochastic or any(
        (gap := run.series(tags.BN_GAP, bn.name)) is not None
        and gap.last > LAYER_GAP_LIMIT
        for bn in bn_layers
    )
    names = dict.fromkeys(
        [*run.subjects(tags.GAP_ARGMAX_AGREEMENT), *run.subjects(tags.GAP_REL_L2)]
    )
    gaps = []
    for name in names:
        for metric, agreement in (
            (tags.GAP_ARGMAX_AGREEMENT, True),
            (tags.GAP_REL_L2, False),
        ):
            series = run.series(metric, name)
            if series is None or not len(series):
                continue
            steps, values = series.steps, series.values
            ok = _all_converged(run, bn_layers, steps)
            if agreement:
                bad, doubtless = (
                    values < ARGMAX_AGREEMENT_LIMIT,
                    values < DOUBTLESS_AGREEMENT,
                )
            else:
                bad, doubtless = values > OUTPUT_GAP_LIMIT, values > DOUBTLESS_GAP
            episode = None if stochastic else persistent(steps, ok & bad, values)
            if episode is None and corroborated:
                episode = current(steps, doubtless, values)
            if episode is not None:
                gaps.append(OutputGap(name, agreement, episode, bool(ok[-1])))
                break
    return gaps


def _stochastic(run: Run) -> bool:
    """Dropout and noise layers make training-mode outputs differ on their own."""
    return any(
        any(word in (layer.class_name or "") for word in _STOCHASTIC_CLASSES)
        for layer in run.layers
    )


def _all_converged(
    run: Run, bn_layers: list[LayerMeta], steps: np.ndarray
) -> np.ndarray:
    return np.all([_converged_mask(run, bn, steps) for bn in bn_layers], axis=0)


def _output_finding(rule: Rule, gap: OutputGap) -> Finding:
    return rule.finding(
        severity=ERROR if gap.agreement else WARNING,
        episode=gap.episode,
        threshold=ARGMAX_AGREEMENT_LIMIT if gap.agreement else OUTPUT_GAP_LIMIT,
        message=gap.message,
        hint=(
            "evaluate() and predict() will not match fit(): check batch size, BN "
            "momentum and frozen BN layers (see the per-layer findings)"
        ),
    )


def check_mode_override(rule: Rule, run: Run) -> Iterator[Finding]:
    for layer in batch_norm_layers(run):
        if layer.normalization.requested_training is not False:
            continue
        mode = run.series(tags.BN_TRAINING_MODE, layer.name)
        in_training = layer.normalization.training_mode is True or (
            mode is not None and bool((mode.values > 0).any())
        )
        change = run.series(tags.BN_MOVING_CHANGE, layer.name)
        if not in_training or change is None:
            continue
        moved = np.flatnonzero(change.values > 0)
        if len(moved) == 0:
            continue
        yield rule.finding(
            layer=layer.name,
            steps=(int(change.steps[moved[0]]), int(change.steps[moved[-1]])),
            value=float(change.values[moved[-1]]),
            threshold=0.0,
            message=(
                f"{layer.name} was called with training=False but ran in training "
                "mode; its moving statistics kept moving"
            ),
            what=(
                "called with training=False but ran in training mode; the moving "
                "statistics kept moving"
            ),
            hint=(
                "Keras 3 overrides training=False inside a Functional model during "
                "fit (keras-team/keras#20285): to fine-tune with BN frozen, set "
                "`trainable = False` on the BatchNormalization layers only (not on "
                "the whole base, which would stop fine-tuning)"
            ),
        )


def check_ema_not_converged(rule: Rule, run: Run) -> Iterator[Finding]:
    lagging = []
    for layer in batch_norm_layers(run):
        progress = run.series(tags.BN_EMA_PROGRESS, layer.name)
        if _is_frozen(layer) or progress is None or not len(progress):
            continue
        if progress.last < EMA_WINDOWS_CONVERGED:
            lagging.append((progress.last, layer, progress))
    if not lagging:
        return
    value, layer, progress = min(lagging, key=lambda item: item[0])
    momentum = layer.normalization.momentum
    window = (
        f" of {format_number(1 / (1 - momentum))} steps"
        if momentum and momentum < 1
        else ""
    )
    count = f"{len(lagging)} BN layers" if len(lagging) > 1 else layer.name
    message = (
        f"moving statistics of {count} have seen only {format_number(value)} EMA "
        f"windows{window}; they still remember their initialization"
    )
    hint = (
        "train longer before evaluating, or lower BN momentum (e.g. 0.9) so "
        "the moving statistics catch up"
    )
    # Evidence beats the warm-up gate: an output gap measured beyond doubt is
    # this finding's consequence, reported here with it.
    measured = [gap for gap in output_gaps(run) if not gap.converged]
    if measured:
        message += f"; inference mode already disagrees: {measured[0].message}"
        hint = (
            "evaluate() and predict() will not match fit() until the moving "
            "statistics converge: " + hint
        )
    yield rule.finding(
        severity=WARNING if value < EMA_WINDOWS_MINIMUM or measured else INFO,
        layer=layer.name,
        steps=(int(progress.steps[0]), int(progress.steps[-1])),
        value=value,
        threshold=EMA_WINDOWS_CONVERGED,
        message=message,
        hint=hint,
    )


BN_STAT_DRIFT = Rule(
    id="bn_stat_drift",
    severities=(WARNING,),
    summary="BN moving statistics disagree with the data the layer sees",
    source="bnscope's choice: 0.5 std mean shift or 2x variance",
    check=check_stat_drift,
)
BN_TRAIN_INFERENCE_GAP = Rule(
    id="bn_train_inference_gap",
    severities=(WARNING, ERROR),
    summary="training and inference mode give materially different outputs",
    source="TheDeepChecker train/inference consistency; thresholds bnscope's",
    check=check_train_inference_gap,
)
BN_MODE_OVERRIDE = Rule(
    id="bn_mode_override",
    severities=(ERROR,),
    summary="BN asked for training=False ran in training mode and kept updating",
    source="keras-team/keras#20285",
    check=check_mode_override,
)
BN_EMA_NOT_CONVERGED = Rule(
    id="bn_ema_not_converged",
    severities=(INFO, WARNING),
    summary="BN moving statistics have seen fewer than 3 EMA windows",
    source="EMA arithmetic: weight of the initial value ≈ e^-windows",
    check=check_ema_not_converged,
)
