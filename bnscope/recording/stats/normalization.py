"""Statistics of normalization layers: BatchNormalization drift and the rest."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


@dataclass
class BatchNormState:
    """One BatchNormalization layer's statistics, as `bn_drift_stats` takes them.

    Args:
        batch_mean: Per-channel mean of the layer input on the probe batch.
        batch_variance: Per-channel biased variance of that input.
        moving_mean: The layer's moving mean.
        moving_variance: The layer's moving variance.
        epsilon: The layer's epsilon.
        previous_mean: The moving mean at the previous probe.
        previous_variance: The moving variance at the previous probe.
    """

    batch_mean: object
    batch_variance: object
    moving_mean: object
    moving_variance: object
    epsilon: float
    previous_mean: object
    previous_variance: object

    @classmethod
    def of(cls, *args, epsilon: float, **kwargs) -> BatchNormState:
        """Each statistic as a flat float32 vector of the layer's channels."""
        state = cls(*args, epsilon=float(epsilon), **kwargs)
        for name in _BN_VECTORS:
            setattr(
                state, name, tf.reshape(tf.cast(getattr(state, name), tf.float32), [-1])
            )
        channels = {getattr(state, name).shape.num_elements() for name in _BN_VECTORS}
        if len(channels) != 1 or None in channels:
            raise ValueError(
                f"per-channel statistics of sizes {sorted(channels, key=str)}"
            )
        return state

    @property
    def channels(self) -> int:
        return self.moving_mean.shape.num_elements()


_BN_VECTORS = (
    "batch_mean",
    "batch_variance",
    "moving_mean",
    "moving_variance",
    "previous_mean",
    "previous_variance",
)


def bn_drift_stats(layers: Sequence[BatchNormState]) -> list[dict]:
    """How far each BN layer's moving statistics are from the data it sees.

    The standardized mean shift |μ_batch − μ_moving| / sqrt(σ²_moving + ε) is
    the error, in units of the normalizer, that inference mode makes on this
    batch's mean. The log variance ratio |log((σ²_batch + ε) / (σ²_moving + ε))|
    is the same for the scale (0 when they agree; log 2 means a factor 2).
    The moving change is ‖(μ, σ²)_now − (μ, σ²)_previous‖ / ‖(μ, σ²)_previous‖.

    All layers' channels are concatenated and reduced per layer by segment,
    a few ops in all rather than about 40 per layer.

    Returns:
        Per layer, `{metric: value}`.
    """
    if not layers:
        return []
    owners = [i for i, layer in enumerate(layers) for _ in range(layer.channels)]
    count = len(layers)

    joined = {
        name: tf.concat([getattr(layer, name) for layer in layers], axis=0)
        for name in _BN_VECTORS
    }
    epsilon = tf.constant(
        [layer.epsilon for layer in layers for _ in range(layer.channels)], tf.float32
    )
    moving_mean, moving_variance = joined["moving_mean"], joined["moving_variance"]
    previous_mean = joined["previous_mean"]
    previous_variance = joined["previous_variance"]
    shift = tf.abs(joined["batch_mean"] - moving_mean) / tf.sqrt(
        moving_variance + epsilon
    )
    log_ratio = tf.abs(
        tf.math.log((joined["batch_variance"] + epsilon) / (moving_variance + epsilon))
    )
    change = tf.square(moving_mean - previous_mean) + tf.square(
        moving_variance - previous_variance
    )
    size = tf.square(previous_mean) + tf.square(previous_variance)
    moving_change = tf.sqrt(tf.math.segment_sum(change, owners)) / tf.maximum(
        tf.sqrt(tf.math.segment_sum(size, owners)), 1e-12
    )
    vectors = {
        tags.BN_MEAN_SHIFT.name: tf.math.segment_mean(shift, owners),
        tags.BN_MEAN_SHIFT_MAX.name: tf.math.segment_max(shift, owners),
        tags.BN_LOG_VAR_RATIO.name: tf.math.segment_mean(log_ratio, owners),
        tags.BN_LOG_VAR_RATIO_MAX.name: tf.math.segment_max(log_ratio, owners),
        tags.BN_MOVING_CHANGE.name: moving_change,
    }
    rows = {metric: tf.unstack(vector, num=count) for metric, vector in vectors.items()}
    return [{metric: rows[metric][i] for metric in vectors} for i in range(count)]


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
