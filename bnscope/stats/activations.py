"""Activation statistics of one layer output."""

from __future__ import annotations

import math

import tensorflow as tf

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
    x = tf.cast(outputs, tf.float32)
    finite = tf.math.is_finite(x)
    safe = tf.where(finite, x, tf.zeros_like(x))
    count = tf.cast(tf.size(x), tf.float32)
    mean = tf.reduce_sum(safe) / count
    std = tf.sqrt(tf.maximum(tf.reduce_sum(tf.square(safe - mean)) / count, 0.0))
    is_zero = tf.equal(x, 0.0)
    stats = {
        tags.ACT_MEAN.name: mean,
        tags.ACT_STD.name: std,
        tags.ACT_MIN.name: tf.reduce_min(safe),
        tags.ACT_MAX.name: tf.reduce_max(safe),
        tags.ACT_ZERO_FRAC.name: tf.reduce_mean(tf.cast(is_zero, tf.float32)),
        tags.ACT_NONFINITE.name: tf.reduce_sum(
            tf.cast(tf.logical_not(finite), tf.float32)
        ),
    }
    if len(x.shape) >= 2:
        # A unit (last-axis channel) is dead when it is 0 for every sample and
        # position of the probe batch.
        per_unit = tf.reshape(is_zero, (-1, tf.shape(x)[-1]))
        dead = tf.reduce_all(per_unit, axis=0)
        stats[tags.ACT_DEAD_FRAC.name] = tf.reduce_mean(tf.cast(dead, tf.float32))
    saturated = saturated_mask(x, activation)
    if saturated is not None:
        stats[tags.ACT_SATURATED_FRAC.name] = tf.reduce_mean(
            tf.cast(saturated, tf.float32)
        )
    return stats


def saturated_mask(x, activation: str | None):
    """Boolean tensor marking saturated values, or `None` for unbounded ones."""
    if activation in SATURATION_BOUNDS:
        low, high = SATURATION_BOUNDS[activation]
        return tf.logical_or(tf.less_equal(x, low), tf.greater_equal(x, high))
    if activation == "softmax":
        return tf.greater_equal(tf.reduce_max(x, axis=-1), SOFTMAX_SATURATION)
    if activation == "log_softmax":
        return tf.greater_equal(tf.reduce_max(x, axis=-1), math.log(SOFTMAX_SATURATION))
    return None


def histogram(outputs, bins: int = 30):
    """Returns `(edges, counts)` of the finite values of `outputs`."""
    x = tf.reshape(tf.cast(outputs, tf.float32), (-1,))
    finite = tf.math.is_finite(x)
    low = tf.reduce_min(tf.where(finite, x, tf.fill(tf.shape(x), float("inf"))))
    high = tf.reduce_max(tf.where(finite, x, tf.fill(tf.shape(x), float("-inf"))))
    high = tf.where(tf.greater(high, low), high, low + 1.0)
    width = (high - low) / bins
    index = tf.floor((tf.where(finite, x, low) - low) / width)
    index = tf.cast(tf.clip_by_value(index, 0.0, bins - 1.0), tf.int32)
    counts = tf.math.bincount(
        index, weights=tf.cast(finite, tf.float32), minlength=bins, maxlength=bins
    )
    edges = low + width * tf.range(bins + 1, dtype=tf.float32)
    return edges, counts


def input_stats(inputs) -> dict:
    """Mean, std, min and max of one model input (integer inputs included)."""
    x = tf.cast(inputs, tf.float32)
    return {
        tags.INPUT_MEAN.name: tf.reduce_mean(x),
        tags.INPUT_STD.name: tf.math.reduce_std(x),
        tags.INPUT_MIN.name: tf.reduce_min(x),
        tags.INPUT_MAX.name: tf.reduce_max(x),
    }
