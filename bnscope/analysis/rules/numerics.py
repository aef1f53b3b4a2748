"""NaN or Inf anywhere: `nonfinite`, named at its first step and layer."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from bnscope import tags
from bnscope.analysis.rules.base import ERROR, Finding, Rule
from bnscope.analysis.runs import Run

# Counters of non-finite values, and statistics that are themselves NaN/Inf
# when their input is. Any one is enough: NaN is never noise (SageMaker
# Debugger's exploding_tensor flags the first NaN/Inf too). Since bnscope
# writes the per-layer counters only from their first non-zero count on, and
# the model-level total at every probe, a run may hold any subset of them:
# an absent counter means "zero so far", never "unknown".
_COUNTERS = {
    tags.ACT_NONFINITE: "outputs",
    tags.GRAD_NONFINITE: "gradients",
    tags.WEIGHT_NONFINITE: "weights",
    tags.LOSS_NONFINITE: "loss",
    tags.NONFINITE_TOTAL: "values",
}
_VALUES = {
    tags.LOSS: "loss",
    tags.GRAD_NORM: "gradients",
    tags.GRAD_GLOBAL_NORM: "gradients",
    tags.ACT_STD: "outputs",
    tags.WEIGHT_NORM: "weights",
}


def _first_nonfinite(run: Run) -> Iterator[tuple]:
    """`(first step, depth, subject, what, count, last step)` per bad series."""
    depth = {layer.name: layer.depth for layer in run.layers}
    for metric, what in (*_COUNTERS.items(), *_VALUES.items()):
        counter = metric in _COUNTERS
        for subject, series in run.items(metric):
            bad = ~np.isfinite(series.values)
            if counter:
                bad |= np.isfinite(series.values) & (series.values > 0)
            hits = np.flatnonzero(bad)
            if len(hits) == 0:
                continue
            yield (
                int(series.steps[hits[0]]),
                depth.get(subject, len(depth)),  # model-level values sort last
                subject,
                what,
                series.values[hits[0]] if counter else math.nan,
                int(series.steps[hits[-1]]),
            )


def check_nonfinite(rule: Rule, run: Run) -> Iterator[Finding]:
    events = list(_first_nonfinite(run))
    if not events:
        return
    # Earliest step, then shallowest layer, then a counted value over a NaN
    # statistic; subject and kind settle the rest, so the order of the tags
    # on disk (or in TensorBoard's data provider) never matters.
    events.sort(
        key=lambda event: (
            event[0],
            event[1],
            0 if math.isfinite(event[4]) else 1,
            event[2],
            event[3],
        )
    )
    step, _, subject, what, count, _ = events[0]
    last_step = max(event[5] for event in events)
    affected = sorted({event[2] for event in events if event[2] != tags.MODEL_SUBJECT})
    if what == "loss":
        where = "the loss"
    elif subject == tags.MODEL_SUBJECT:
        where = f"the model's {what}"
    else:
        where = f"the {what} of {subject}"
    spread = (
        f"; {len(affected)} layers affected by step {last_step}"
        if len(affected) > 1
        else ""
    )
    yield rule.finding(
        layer=None if subject == tags.MODEL_SUBJECT else subject,
        steps=(step, last_step),
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
    severities=(ERROR,),
    summary="NaN or Inf in loss, activations, gradients or weights",
    source="any non-finite value (SageMaker Debugger exploding_tensor)",
    check=check_nonfinite,
)
