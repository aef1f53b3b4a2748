"""Activation statistics of one layer output."""

from __future__ import annotations

import math

from keras import ops

from bnscope import tags

# Output bounds outside which a bounded activation counts as saturated: within
# 1% of the range from either end, where the derivative has fallen below 4%
# (sigmoid: s(1−s) < 0.0099 vs 0.25) or 2% (tanh: 1−t² < 0.0199 vs 1) of its
# peak. SageMaker Debugger's `saturated_activation` rule asks the same
# question on pre-activations (tanh |z| > 9.4999, sigmoid z < −23 or > 16.99999,
# where float32 gradients are exactly zero); this softer bound flags the
# layers before their gradients are gone entirely. See docs/findings.md.
SATURATION_BOUNDS: dict[str, tuple[float, float]] = {
    "sigmoid": (0.01, 0.99),
    "hard_sigmoid": (0.01, 0.99),
    "tanh": (-0.99, 0.99),
    "hard_tanh": (-0.99, 0.99),
    "softsign": (-0.99, 0.99),
}
# Softmax saturates per sample: the largest probability is (almost) one.
SOFTMAX_SATURATION = 0.99
SATURATING_ACTIVATIONS = (*SATURATION_BOUNDS, "softmax", "log_softmax")


def activation_stats(outputs, activation: str | None = None) -> dict:
    """Summarizes one layer output on the probe batch.

    Args:
        outputs: The layer output tensor, batch first.
        activation: Name of the layer's activation function, used to pick the
            saturation bounds. Defaults to `None` (no saturation statistic).

    Returns:
        A flat dict keyed by `bnscope.tags` metric names.
    """
    x = ops.cast(outputs, "float32")
    finite = ops.isfinite(x)
    safe = ops.where(finite, x, ops.zeros_like(x))
    count = ops.cast(ops.size(x), "float32")
    mean = ops.sum(safe) / count
    std = ops.sqrt(ops.maximum(ops.sum(ops.square(safe - mean)) / count, 0.0))
    is_zero = ops.equal(x, 0.0)
    stats = {
        tags.ACT_MEAN.name: mean,
        tags.ACT_STD.name: std,
        tags.ACT_MIN.name: ops.min(safe),
        tags.ACT_MAX.name: ops.max(safe),
        tags.ACT_ZERO_FRAC.name: ops.mean(ops.cast(is_zero, "float32")),
        tags.ACT_NONFINITE.name: ops.sum(ops.cast(ops.logical_not(finite), "float32")),
    }
    if len(x.shape) >= 2:
        # A unit (last-axis channel) is dead when it is 0 for every sample and
        # position of the probe batch.
        per_unit = ops.reshape(is_zero, (-1, ops.shape(x)[-1]))
        dead = ops.all(per_unit, axis=0)
        stats[tags.ACT_DEAD_FRAC.name] = ops.mean(ops.cast(dead, "float32"))
    saturated = saturated_mask(x, activation)
    if saturated is not None:
        stats[tags.ACT_SATURATED_FRAC.name] = ops.mean(ops.cast(saturated, "float32"))
    return stats


def saturated_mask(x, activation: str | None):
    """Boolean tensor marking saturated values, or `None` for unbounded ones."""
    if activation in SATURATION_BOUNDS:
        low, high = SATURATION_BOUNDS[activation]
        return ops.logical_or(ops.less_equal(x, low), ops.greater_equal(x, high))
    if activation == "softmax":
        return ops.greater_equal(ops.max(x, axis=-1), SOFTMAX_SATURATION)
    if activation == "log_softmax":
        return ops.greater_equal(ops.max(x, axis=-1), math.log(SOFTMAX_SATURATION))
    return None


def histogram(outputs, bins: int = 30):
    """Returns `(edges, counts)` of the finite values of `outputs`."""
    x = ops.reshape(ops.cast(outputs, "float32"), (-1,))
    finite = ops.isfinite(x)
    low = ops.min(ops.where(finite, x, ops.full_like(x, float("inf"))))
    high = ops.max(ops.where(finite, x, ops.full_like(x, float("-inf"))))
    high = ops.where(ops.greater(high, low), high, low + 1.0)
    width = (high - low) / bins
    index = ops.floor((ops.where(finite, x, low) - low) / width)
    index = ops.cast(ops.clip(index, 0, bins - 1), "int32")
    counts = ops.bincount(index, weights=ops.cast(finite, "float32"), minlength=bins)
    edges = low + width * ops.arange(bins + 1, dtype="float32")
    return edges, counts


def input_stats(inputs) -> dict:
    """Mean, std, min and max of one model input (integer inputs included)."""
    x = ops.cast(inputs, "float32")
    return {
        tags.INPUT_MEAN.name: ops.mean(x),
        tags.INPUT_STD.name: ops.std(x),
        tags.INPUT_MIN.name: ops.min(x),
        tags.INPUT_MAX.name: ops.max(x),
    }
