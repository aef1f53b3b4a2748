"""Gradient and weight statistics."""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from bnscope import tags


def l2_norm(tensors: Sequence) -> object:
    """L2 norm of all values of `tensors` taken together, in float32."""
    total = tf.zeros((), tf.float32)
    for tensor in tensors:
        total = total + tf.reduce_sum(tf.square(tf.cast(tensor, tf.float32)))
    return tf.sqrt(total)


def nonfinite_count(tensors: Sequence) -> object:
    """Number of NaN or Inf values in `tensors`."""
    total = tf.zeros((), tf.float32)
    for tensor in tensors:
        total = total + tf.reduce_sum(
            tf.cast(tf.logical_not(tf.math.is_finite(tensor)), tf.float32)
        )
    return total


def layer_gradient_stats(gradients: Sequence) -> dict:
    """Gradient norm and NaN/Inf count over one layer's trainable variables."""
    return {
        tags.GRAD_NORM.name: l2_norm(gradients),
        tags.GRAD_NONFINITE.name: nonfinite_count(gradients),
    }


def layer_weight_stats(weights: Sequence, previous: Sequence) -> dict:
    """Weight norm, NaN/Inf count and update ratio ‖w − w_prev‖ / ‖w‖."""
    norm = l2_norm(weights)
    change = l2_norm([tf.subtract(w, p) for w, p in zip(weights, previous)])
    return {
        tags.WEIGHT_NORM.name: norm,
        tags.WEIGHT_NONFINITE.name: nonfinite_count(weights),
        tags.UPDATE_RATIO.name: change / tf.maximum(norm, 1e-12),
    }
