"""Statistics of normalization layers: BatchNormalization drift and the rest."""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from bnscope import tags


def reduction_axes(rank: int, channel_axes: Sequence[int]) -> list[int]:
    """Axes BatchNormalization reduces over: all but the (normalized) channel axes."""
    kept = {axis % rank for axis in channel_axes}
    return [axis for axis in range(rank) if axis not in kept]


def batch_statistics(inputs, channel_axes: Sequence[int]):
    """Per-channel mean and biased variance of `inputs`, as Keras 3 BN computes them."""
    x = tf.cast(inputs, tf.float32)
    axes = reduction_axes(len(x.shape), channel_axes)
    return tf.reduce_mean(x, axis=axes), tf.math.reduce_variance(x, axis=axes)


def bn_drift_stats(
    batch_mean, batch_variance, moving_mean, moving_variance, epsilon: float
) -> dict:
    """How far BN's moving statistics are from the data the layer sees.

    The standardized mean shift |μ_batch − μ_moving| / sqrt(σ²_moving + ε) is
    the error, in units of the normalizer, that inference mode makes on this
    batch's mean. The log variance ratio |log((σ²_batch + ε) / (σ²_moving + ε))|
    is the same for the scale (0 when they agree; log 2 means a factor 2).

    Args:
        batch_mean: Per-channel mean of the layer input on the probe batch.
        batch_variance: Per-channel biased variance of that input.
        moving_mean: The layer's moving mean.
        moving_variance: The layer's moving variance.
        epsilon: The layer's epsilon.
    """
    moving_mean = tf.reshape(tf.cast(moving_mean, tf.float32), (-1,))
    moving_variance = tf.reshape(tf.cast(moving_variance, tf.float32), (-1,))
    batch_mean = tf.reshape(tf.cast(batch_mean, tf.float32), (-1,))
    batch_variance = tf.reshape(tf.cast(batch_variance, tf.float32), (-1,))
    shift = tf.abs(batch_mean - moving_mean) / tf.sqrt(moving_variance + epsilon)
    log_ratio = tf.abs(
        tf.math.log((batch_variance + epsilon) / (moving_variance + epsilon))
    )
    return {
        tags.BN_MEAN_SHIFT.name: tf.reduce_mean(shift),
        tags.BN_MEAN_SHIFT_MAX.name: tf.reduce_max(shift),
        tags.BN_LOG_VAR_RATIO.name: tf.reduce_mean(log_ratio),
        tags.BN_LOG_VAR_RATIO_MAX.name: tf.reduce_max(log_ratio),
    }


def moving_change(current: Sequence, previous: Sequence) -> dict:
    """Relative change of the moving statistics since the previous probe."""
    change = tf.zeros((), tf.float32)
    size = tf.zeros((), tf.float32)
    for now, before in zip(current, previous):
        now = tf.cast(now, tf.float32)
        before = tf.cast(before, tf.float32)
        change = change + tf.reduce_sum(tf.square(now - before))
        size = size + tf.reduce_sum(tf.square(before))
    return {
        tags.BN_MOVING_CHANGE.name: tf.sqrt(change) / tf.maximum(tf.sqrt(size), 1e-12)
    }


def relative_l2(actual, reference):
    """‖actual − reference‖ / ‖reference‖, in float32."""
    actual = tf.cast(actual, tf.float32)
    reference = tf.cast(reference, tf.float32)
    difference = tf.sqrt(tf.reduce_sum(tf.square(actual - reference)))
    return difference / tf.maximum(tf.sqrt(tf.reduce_sum(tf.square(reference))), 1e-12)


def output_gap_stats(training_output, inference_output, classifier: bool) -> dict:
    """Train/inference gap of one model output on the same batch."""
    stats = {tags.GAP_REL_L2.name: relative_l2(training_output, inference_output)}
    if classifier:
        agree = tf.equal(
            tf.argmax(training_output, axis=-1), tf.argmax(inference_output, axis=-1)
        )
        stats[tags.GAP_ARGMAX_AGREEMENT.name] = tf.reduce_mean(
            tf.cast(agree, tf.float32)
        )
    return stats


def norm_layer_stats(inputs, gamma=None, beta=None) -> dict:
    """Input and affine-parameter statistics of a LayerNorm-style layer."""
    x = tf.cast(inputs, tf.float32)
    stats = {
        tags.NORM_IN_MEAN.name: tf.reduce_mean(x),
        tags.NORM_IN_STD.name: tf.math.reduce_std(x),
    }
    if gamma is not None:
        gamma = tf.cast(gamma, tf.float32)
        stats[tags.GAMMA_MEAN.name] = tf.reduce_mean(gamma)
        stats[tags.GAMMA_STD.name] = tf.math.reduce_std(gamma)
    if beta is not None:
        beta = tf.cast(beta, tf.float32)
        stats[tags.BETA_MEAN.name] = tf.reduce_mean(beta)
        stats[tags.BETA_STD.name] = tf.math.reduce_std(beta)
    return stats
