"""Model inputs far from zero mean and unit scale: `unnormalized_input`."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from bnscope import tags
from bnscope.analysis.formatting import format_number
from bnscope.analysis.rules.base import (
    WARNING,
    Episode,
    Finding,
    Rule,
    align,
    persistent,
)
from bnscope.analysis.rules.model_graph import INPUT_ADAPTERS, ModelGraph
from bnscope.analysis.runs import Run

# |mean| or std above this counts as unnormalized (bnscope's choice): inputs
# scaled to [0, 1] or standardized stay far below it; raw pixels (0–255, mean
# ~120) and raw physical units are far above. TheDeepChecker checks the same
# property (data normalized before training) with configurable bounds.
SCALE_LIMIT = 5.0
# Integer and boolean dtypes: ids, tokens, or raw pixel intensities.
_INTEGER_DTYPES = ("int", "uint", "bool")


def _dtype(run: Run, name: str) -> str:
    if run.metadata is None:
        return ""
    for entry in run.metadata.inputs:
        if entry.name == name:
            return entry.dtype or ""
    return ""


def _checked_inputs(run: Run, names: list[str]) -> list[str]:
    """The inputs the model reads at their raw scale with a layer that needs scale.

    With the input path recorded, an input is checked when some layer reads
    it directly (through pass-through layers at most) and that layer is not an
    adapter (`Normalization`, `Rescaling`, `Embedding`, lookups, ...) nor a
    linear layer whose output is normalized right away (a conv → BN stem: the
    normalization divides the input's scale out), and the model does not
    compute on it with raw ops first. Without it (older
    metadata), layers that read no layer count as the first layers, and
    integer inputs are skipped as ids.
    """
    graph = ModelGraph(run)
    if not graph.knows_input_path:
        firsts = graph.first_layers()
        if firsts and all(layer.class_name in INPUT_ADAPTERS for layer in firsts):
            return []
        return [n for n in names if not _dtype(run, n).startswith(_INTEGER_DTYPES)]
    checked = []
    for name in names:
        readers, transformed = graph.input_readers(name)
        if transformed or not readers:
            continue  # rescaled by the model's own ops, or not read by a layer
        if all(
            layer.class_name in INPUT_ADAPTERS or graph.normalized_output(layer.name)
            for layer in readers
        ):
            continue  # scaled by the model itself, or normalized right after
        checked.append(name)
    return checked


def unnormalized_inputs(run: Run) -> list[tuple[str, Episode]]:
    """Model inputs whose scale stayed above `SCALE_LIMIT` recently."""
    found = []
    for name in _checked_inputs(run, run.subjects(tags.INPUT_MEAN)):
        if _dtype(run, name).startswith(("bool", "string")):
            continue
        aligned = align(
            run.series(tags.INPUT_MEAN, name), run.series(tags.INPUT_STD, name)
        )
        if aligned is None:
            continue
        steps, (mean, std) = aligned
        scale = np.maximum(np.abs(mean), std)
        episode = persistent(steps, scale > SCALE_LIMIT, scale)
        if episode is not None:
            found.append((name, episode))
    return found


def check_unnormalized_input(rule: Rule, run: Run) -> Iterator[Finding]:
    for name, episode in unnormalized_inputs(run):
        mean = run.series(tags.INPUT_MEAN, name)
        std = run.series(tags.INPUT_STD, name)
        high = run.series(tags.INPUT_MAX, name)
        dtype = _dtype(run, name)
        stats = f"mean {format_number(mean.last)} and std {format_number(std.last)}"
        if dtype.startswith(_INTEGER_DTYPES):
            top = f", 0–{format_number(high.last)}" if high is not None else ""
            message = (
                f"input {name} is raw {dtype} data ({stats}{top}) fed straight "
                "into the network; large first-layer gradients follow from it"
            )
            hint = (
                "rescale it: `keras.layers.Rescaling(1/255)` as the first layer "
                "for 0–255 pixels, or `Normalization()` adapted on the data"
            )
        else:
            message = (
                f"input {name} has {stats}; large first-layer gradients follow from it"
            )
            hint = (
                "normalize inputs: `keras.layers.Normalization()` adapted on the "
                "training data, or `Rescaling(1/255)` for images"
            )
        yield rule.finding(
            episode=episode, threshold=SCALE_LIMIT, message=message, hint=hint
        )


UNNORMALIZED_INPUT = Rule(
    id="unnormalized_input",
    severities=(WARNING,),
    summary="model inputs far from zero mean and unit scale",
    source="bnscope's choice (|mean| or std > 5); TheDeepChecker checks the same",
    check=check_unnormalized_input,
)
