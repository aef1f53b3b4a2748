"""Checks of the model's structure and setup, read from the run metadata.

`small_batch_bn`, `bias_before_bn`, `dropout_before_bn` and `bn_axis`.
"""

from __future__ import annotations

from collections.abc import Iterator

from bnscope.analysis.rules.base import (
    INFO,
    WARNING,
    Finding,
    Rule,
    run_steps,
)
from bnscope.analysis.rules.model_graph import ModelGraph
from bnscope.analysis.runs import Run
from bnscope.schema import LayerMeta

# Wu & He, "Group Normalization" (ECCV 2018): BN's error "increases rapidly
# when the batch size becomes smaller"; at batch 2, GN has 10.6% lower
# ImageNet error than BN. The cut at 16 is bnscope's choice (BN is the
# standard at 32 per device and degrades visibly below 16).
SMALL_BATCH = 16


def check_small_batch(rule: Rule, run: Run) -> Iterator[Finding]:
    batch_size = None if run.metadata is None else run.metadata.batch_size
    if batch_size is None or batch_size >= SMALL_BATCH:
        return
    learning = [
        layer
        for layer in run.layers
        if layer.is_batch_norm
        and layer.trainable is not False
        and layer.normalization.training_mode is not False
    ]
    if not learning:
        return
    yield rule.finding(
        layer=learning[0].name,
        steps=run_steps(run),
        value=float(batch_size),
        threshold=float(SMALL_BATCH),
        message=(
            f"{len(learning)} BatchNormalization layer"
            f"{'s' if len(learning) != 1 else ''} trained on batches of "
            f"{batch_size}: batch statistics are noisy"
        ),
        hint=(
            "use LayerNormalization or GroupNormalization (batch-independent), "
            "or a batch of 16 or more"
        ),
    )


def check_bias_before_bn(rule: Rule, run: Run) -> Iterator[Finding]:
    # MultiHeadAttention's key bias (cancelled by the softmax) is left out:
    # Keras gives no way to drop just that bias, so there is nothing to do.
    graph = ModelGraph(run)
    for cancelled in graph.cancelled.values():
        if not cancelled.by:
            continue
        if not cancelled.through:
            yield rule.finding(
                layer=cancelled.layer,
                steps=run_steps(run),
                message=(
                    f"{cancelled.layer} adds a {cancelled.variable} that the next "
                    f"BatchNormalization ({_names(cancelled.by)}) subtracts again; "
                    "its gradient is exactly zero"
                ),
                what=(
                    f"adds a {cancelled.variable} that the next BatchNormalization "
                    "subtracts again; its gradient is exactly zero"
                ),
                hint=_hint(cancelled.variable),
            )
            continue
        yield rule.finding(
            layer=cancelled.layer,
            steps=run_steps(run),
            message=(
                f"the {cancelled.variable} of {cancelled.layer} reaches "
                f"BatchNormalization ({_names(cancelled.by)}) only through linear "
                f"layers ({_names(cancelled.through)}), which subtracts it again; "
                "its gradient is exactly zero"
            ),
            what=(
                f"{cancelled.variable} reaches a BatchNormalization only through "
                "linear layers, which subtracts it again; its gradient is exactly zero"
            ),
            hint=_hint(cancelled.variable),
        )


def _names(names: tuple[str, ...], shown: int = 3) -> str:
    return ", ".join(names[:shown]) + (", ..." if len(names) > shown else "")


def _hint(variable: str) -> str:
    if variable == "beta":
        return (
            "harmless (a stock architecture has it by design); in a model of your "
            "own, `center=False` on that normalization saves the parameters"
        )
    return "create the layer with `use_bias=False` (BN's β is the bias)"


def check_dropout_before_bn(rule: Rule, run: Run) -> Iterator[Finding]:
    for layer in run.layers:
        if not layer.is_batch_norm:
            continue
        for source in layer.inputs_from:
            feeder = run.layer(source)
            if feeder is None or "Dropout" not in (feeder.class_name or ""):
                continue
            yield rule.finding(
                layer=feeder.name,
                steps=run_steps(run),
                message=(
                    f"{feeder.name} feeds {layer.name}: dropout changes the "
                    "variance BN learns, so inference sees a different scale"
                ),
                what=(
                    "Dropout feeds BatchNormalization: dropout changes the variance "
                    "BN learns, so inference sees a different scale"
                ),
                hint=(
                    "move Dropout after the last BatchNormalization (before the "
                    "classifier), or lower its rate"
                ),
            )


# Layers whose output features are on the last axis whatever came before.
_FEATURES_LAST = {
    "Dense",
    "Embedding",
    "SimpleRNN",
    "LSTM",
    "GRU",
    "RNN",
    "Bidirectional",
    "MultiHeadAttention",
}
# Layers that move axes: past them, the layout upstream says nothing.
_LAYOUT_CHANGES = {"Permute", "Reshape", "Lambda", "TimeDistributed"}


def channel_axis(run: Run, layer: LayerMeta, rank: int) -> tuple[int, str] | None:
    """The channel axis of `layer`'s input and its data format, if it can be told.

    Walks upstream to the nearest layer that fixes the layout: one with a
    `data_format` (a convolution, a pooling layer) or one whose features are
    on the last axis (Dense, recurrent, attention). A chain that reaches the
    model's first layer follows Keras' default, channels-last
    (`keras.config.image_data_format()`). A layer that moves axes (Permute,
    Reshape), or a chain that starts at an op rather than at the model input,
    leaves the layout unknown: `None`.
    """
    seen: set[str] = set()
    frontier = [layer]
    while frontier:
        current = frontier.pop(0)
        if current.name in seen:
            continue
        seen.add(current.name)
        if current is not layer:
            if current.data_format in ("channels_first", "channels_last"):
                first = current.data_format == "channels_first"
                return (1 if first else rank - 1), current.data_format
            if current.class_name in _FEATURES_LAST:
                return rank - 1, "channels_last"
            if current.class_name in _LAYOUT_CHANGES:
                return None
        if not current.inputs_from:
            if current.depth != 0:
                return None  # fed by an op (not a layer): layout unknown
            continue
        for name in current.inputs_from:
            source = run.layer(name)
            if source is None:
                return None
            frontier.append(source)
    return rank - 1, "channels_last"


def check_bn_axis(rule: Rule, run: Run) -> Iterator[Finding]:
    for layer in run.layers:
        normalization, shape = layer.normalization, layer.input_shape
        if not layer.is_batch_norm or not shape or len(shape) < 2:
            continue
        rank = len(shape)
        axes = sorted({axis % rank for axis in normalization.axis})
        layout = channel_axis(run, layer, rank)
        if layout is None:
            continue
        channel, data_format = layout
        if not axes or axes == [channel]:
            continue
        shown = "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"
        where = ", ".join(str(axis) for axis in axes)
        yield rule.finding(
            layer=layer.name,
            steps=run_steps(run),
            message=(
                f"{layer.name} normalizes axis {where} of its {shown} input, but "
                f"the channel axis is {channel} ({data_format}): its statistics "
                "are per row or position, not per channel"
            ),
            hint=(
                f"create it with BatchNormalization(axis={-1 if channel == rank - 1 else channel})"
                + (
                    " (the default, right for channels_last)"
                    if channel == rank - 1
                    else ""
                )
            ),
        )


SMALL_BATCH_BN = Rule(
    id="small_batch_bn",
    severities=(WARNING,),
    summary="BN trained on batches too small for reliable statistics",
    source="Wu & He, Group Normalization (2018); cut at 16 is bnscope's",
    check=check_small_batch,
)
BIAS_BEFORE_BN = Rule(
    id="bias_before_bn",
    severities=(INFO,),
    summary="a bias right before BN is cancelled by it (zero gradient)",
    source="BN subtracts the batch mean (Ioffe & Szegedy 2015, section 3.2)",
    check=check_bias_before_bn,
)
DROPOUT_BEFORE_BN = Rule(
    id="dropout_before_bn",
    severities=(WARNING,),
    summary="Dropout feeding BN shifts variance between training and inference",
    source="Li et al., Understanding the disharmony between dropout and BN (2019)",
    check=check_dropout_before_bn,
)
BN_AXIS = Rule(
    id="bn_axis",
    severities=(WARNING,),
    summary="BN normalizes an axis that is not the channel axis of its input",
    source="BN normalizes each channel (Ioffe & Szegedy 2015, section 3.2)",
    check=check_bn_axis,
)
