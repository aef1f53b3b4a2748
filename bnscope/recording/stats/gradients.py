"""Gradient and weight statistics."""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from bnscope import tags


def squared_norm(tensor) -> object:
    """Sum of the squares of `tensor`'s values, in float32."""
    return tf.reduce_sum(tf.square(tf.cast(tensor, tf.float32)))


def norm_of_squares(squares: Sequence) -> object:
    """The L2 norm of tensors whose `squared_norm`s are `squares`.

    Summed one by one in order, so a norm built from shared squares is
    bit-identical to `l2_norm` of the same tensors.
    """
    total = tf.zeros((), tf.float32)
    for square in squares:
        total = total + square
    return tf.sqrt(total)


def l2_norm(tensors: Sequence) -> object:
    """L2 norm of all values of `tensors` taken together, in float32."""
    return norm_of_squares([squared_norm(t) for t in tensors])


def nonfinite_count(tensors: Sequence) -> object:
    """Number of NaN or Inf values in `tensors`."""
    total = tf.zeros((), tf.float32)
    for tensor in tensors:
        total = total + tf.reduce_sum(
            tf.cast(tf.logical_not(tf.math.is_finite(tensor)), tf.float32)
        )
    return total


def layer_gradient_stats(gradients: Sequence, squares: Sequence | None = None) -> dict:
    """Gradient norm and NaN/Inf count over one layer's trainable variables.

    Args:
        gradients: The layer's gradients.
        squares: Their `squared_norm`s, where the caller already has them
            (the probe shares one per gradient between the layer's norm, the
            variable's and the global one). Defaults to computing them.
    """
    if squares is None:
        squares = [squared_norm(g) for g in gradients]
    return {
        tags.GRAD_NORM.name: norm_of_squares(squares),
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
