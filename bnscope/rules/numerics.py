"""NaN or Inf anywhere: `nonfinite`, named at its first step and layer."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from bnscope import tags
from bnscope.rules.base import ERROR, Finding, Rule
from bnscope.runs import Run

# Counters of non-finite values, and statistics that are themselves NaN/Inf
# when their input is. Any one is enough: NaN is never noise (SageMaker
# Debugger's exploding_tensor flags the first NaN/Inf too).
_COUNTERS = {
    tags.ACT_NONFINITE.name: "outputs",
    tags.GRAD_NONFINITE.name: "gradients",
    tags.WEIGHT_NONFINITE.name: "weights",
    tags.LOSS_NONFINITE.name: "loss",
}
_VALUES = {
    tags.LOSS.name: "loss",
    tags.GRAD_NORM.name: "gradients",
    tags.GRAD_GLOBAL_NORM.name: "gradients",
    tags.ACT_STD.name: "outputs",
    tags.WEIGHT_NORM.name: "weights",
}


def check_nonfinite(run: Run) -> Iterator[Finding]:
    depth = {layer.name: layer.depth for layer in run.layers}
    events = []  # (first step, depth, subject, what, count, last step)
    for tag, series in run.scalars.items():
        metric, _, subject = tag.partition("/")
        if metric in _COUNTERS:
            bad = np.isfinite(series.values) & (series.values > 0)
            bad |= ~np.isfinite(series.values)
            what = _COUNTERS[metric]
        elif metric in _VALUES:
            bad = ~np.isfinite(series.values)
            what = _VALUES[metric]
        else:
            continue
        hits = np.flatnonzero(bad)
        if len(hits) == 0:
            continue
        count = series.values[hits[0]] if metric in _COUNTERS else math.nan
        order = depth.get(subject, len(depth))  # model-level values sort last
        events.append(
            (
                int(series.steps[hits[0]]),
                order,
                subject,
                what,
                count,
                int(series.steps[hits[-1]]),
            )
        )
    if not events:
        return
    events.sort(
        key=lambda event: (event[0], event[1], 0 if math.isfinite(event[4]) else 1)
    )
    step, _, subject, what, count, _ = events[0]
    last_step = max(event[5] for event in events)
    affected = sorted({event[2] for event in events if event[2] != tags.MODEL_SUBJECT})
    where = "the loss" if subject == tags.MODEL_SUBJECT else f"the {what} of {subject}"
    spread = (
        f"; {len(affected)} layers affected by step {last_step}"
        if len(affected) > 1
        else ""
    )
    yield Finding(
        rule="nonfinite",
        severity=ERROR,
        layer=None if subject == tags.MODEL_SUBJECT else subject,
        step=step,
        last_step=last_step,
        value=float(count) if math.isfinite(count) else None,
        threshold=0.0,
        message=f"NaN/Inf first in {where} at step {step}{spread}",
        hint=(
            "lower the learning rate, clip gradients (`clipnorm=1.0`), check the "
            "inputs for NaN, and compute the loss from logits (`from_logits=True`)"
        ),
    )


NONFINITE = Rule(
    id="nonfinite",
    severity=ERROR,
    summary="NaN or Inf in loss, activations, gradients or weights",
    source="any non-finite value (SageMaker Debugger exploding_tensor)",
    check=check_nonfinite,
)
