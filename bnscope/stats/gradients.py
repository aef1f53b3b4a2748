"""Gradient and weight statistics."""

from __future__ import annotations

from collections.abc import Sequence

from keras import ops

from bnscope import tags


def l2_norm(tensors: Sequence) -> object:
    """L2 norm of all values of `tensors` taken together, in float32."""
    total = ops.zeros((), "float32")
    for tensor in tensors:
        total = total + ops.sum(ops.square(ops.cast(tensor, "float32")))
    return ops.sqrt(total)


def nonfinite_count(tensors: Sequence) -> object:
    """Number of NaN or Inf values in `tensors`."""
    total = ops.zeros((), "float32")
    for tensor in tensors:
        total = total + ops.sum(
            ops.cast(ops.logical_not(ops.isfinite(tensor)), "float32")
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
    change = l2_norm([ops.subtract(w, p) for w, p in zip(weights, previous)])
    return {
        tags.WEIGHT_NORM.name: norm,
        tags.WEIGHT_NONFINITE.name: nonfinite_count(weights),
        tags.UPDATE_RATIO.name: change / ops.maximum(norm, 1e-12),
    }
