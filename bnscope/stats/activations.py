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
    count = tf.cast(tf.size(x), tf.float32)
    total = tf.reduce_sum(x)
    # Few passes over the tensor: this also runs inside the training step in
    # full mode. NaN/Inf make the sum non-finite, and only then is the slower
    # path that keeps them out of the moments taken.
    mean, std, low, high, nonfinite = tf.cond(
        tf.math.is_finite(total),
        lambda: _finite_moments(x, total / count, count),
        lambda: _guarded_moments(x, count),
    )
    stats = {
        tags.ACT_MEAN.name: mean,
        tags.ACT_STD.name: std,
        tags.ACT_MIN.name: low,
        tags.ACT_MAX.name: high,
        tags.ACT_ZERO_FRAC.name: 1.0 - _fraction_nonzero(x, count),
        tags.ACT_NONFINITE.name: nonfinite,
    }
    if len(x.shape) >= 2:
        # A unit (last-axis channel) is dead when it is 0 for every sample and
        # position of the batch.
        per_unit = tf.math.count_nonzero(tf.reshape(x, (-1, tf.shape(x)[-1])), axis=0)
        dead = tf.cast(tf.equal(per_unit, 0), tf.float32)
        stats[tags.ACT_DEAD_FRAC.name] = tf.reduce_mean(dead)
    saturated = saturated_mask(x, activation)
    if saturated is not None:
        saturated_count = tf.cast(tf.math.count_nonzero(saturated), tf.float32)
        stats[tags.ACT_SATURATED_FRAC.name] = saturated_count / tf.cast(
            tf.size(saturated), tf.float32
        )
    return stats


def _finite_moments(x, mean, count):
    variance = tf.reduce_sum(tf.math.squared_difference(x, mean)) / count
    return mean, tf.sqrt(variance), tf.reduce_min(x), tf.reduce_max(x), 0.0


def _guarded_moments(x, count):
    finite = tf.math.is_finite(x)
    safe = tf.where(finite, x, tf.zeros_like(x))
    mean = tf.reduce_sum(safe) / count
    variance = tf.reduce_sum(tf.math.squared_difference(safe, mean)) / count
    nonfinite = tf.reduce_sum(tf.cast(tf.logical_not(finite), tf.float32))
    return mean, tf.sqrt(variance), tf.reduce_min(safe), tf.reduce_max(safe), nonfinite


def _fraction_nonzero(x, count):
    return tf.cast(tf.math.count_nonzero(x), tf.float32) / count


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


HISTOGRAM_BINS = 30


def empty_histogram(bins: int = HISTOGRAM_BINS):
    """An all-zero `(edges, counts)` pair shaped like `histogram`'s."""
    return tf.zeros([bins + 1], tf.float32), tf.zeros([bins], tf.float32)


def histogram(outputs, bins: int = HISTOGRAM_BINS):
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
