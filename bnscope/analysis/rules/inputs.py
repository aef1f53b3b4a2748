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
from bnscope.analysis.runs import Run

# |mean| or std above this counts as unnormalized (bnscope's choice): inputs
# scaled to [0, 1] or standardized stay far below it; raw pixels (0–255, mean
# ~120) and raw physical units are far above. TheDeepChecker checks the same
# property (data normalized before training) with configurable bounds.
SCALE_LIMIT = 5.0
# Layers that normalize or do not need normalized inputs when they read a
# model input directly.
_INPUT_ADAPTERS = {
    "Normalization",
    "Rescaling",
    "Embedding",
    "BatchNormalization",
    "LayerNormalization",
    "GroupNormalization",
    "RMSNormalization",
    "UnitNormalization",
    "StringLookup",
    "IntegerLookup",
    "TextVectorization",
    "Hashing",
    "CategoryEncoding",
    "Discretization",
}


def _skipped_inputs(run: Run) -> set[str]:
    """Inputs that are integer/str typed (ids, tokens): not meant to be scaled."""
    if run.metadata is None:
        return set()
    return {
        entry.name
        for entry in run.metadata.inputs
        if (entry.dtype or "").startswith(("int", "uint", "bool", "string"))
    }


def _first_layers_adapt(run: Run) -> bool:
    firsts = [layer for layer in run.layers if not layer.inputs_from]
    return bool(firsts) and all(layer.class_name in _INPUT_ADAPTERS for layer in firsts)


def unnormalized_inputs(run: Run) -> list[tuple[str, Episode]]:
    """Model inputs whose scale stayed above `SCALE_LIMIT` recently."""
    if _first_layers_adapt(run):
        return []
    skipped = _skipped_inputs(run)
    found = []
    for name in run.subjects(tags.INPUT_MEAN):
        if name in skipped:
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
        yield rule.finding(
            episode=episode,
            threshold=SCALE_LIMIT,
            message=(
                f"input {name} has mean {format_number(mean.last)} and std "
                f"{format_number(std.last)}; large first-layer gradients follow "
                "from it"
            ),
            hint=(
                "normalize inputs: `keras.layers.Normalization()` adapted on the "
                "training data, or `Rescaling(1/255)` for images"
            ),
        )


UNNORMALIZED_INPUT = Rule(
    id="unnormalized_input",
    severities=(WARNING,),
    summary="model inputs far from zero mean and unit scale",
    source="bnscope's choice (|mean| or std > 5); TheDeepChecker checks the same",
    check=check_unnormalized_input,
)
