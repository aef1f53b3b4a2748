"""Statistics of normalization layers: BatchNormalization drift and the rest."""

from __future__ import annotations

from collections.abc import Sequence

from keras import ops

from bnscope import tags


def reduction_axes(rank: int, channel_axes: Sequence[int]) -> list[int]:
    """Axes BatchNormalization reduces over: all but the (normalized) channel axes."""
    kept = {axis % rank for axis in channel_axes}
    return [axis for axis in range(rank) if axis not in kept]


def batch_statistics(inputs, channel_axes: Sequence[int]):
    """Per-channel mean and biased variance of `inputs`, as Keras 3 BN computes them."""
    x = ops.cast(inputs, "float32")
    axes = reduction_axes(len(x.shape), channel_axes)
    return ops.mean(x, axis=axes), ops.var(x, axis=axes)


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
    moving_mean = ops.reshape(ops.cast(moving_mean, "float32"), (-1,))
    moving_variance = ops.reshape(ops.cast(moving_variance, "float32"), (-1,))
    batch_mean = ops.reshape(ops.cast(batch_mean, "float32"), (-1,))
    batch_variance = ops.reshape(ops.cast(batch_variance, "float32"), (-1,))
    shift = ops.abs(batch_mean - moving_mean) / ops.sqrt(moving_variance + epsilon)
    log_ratio = ops.abs(
        ops.log((batch_variance + epsilon) / (moving_variance + epsilon))
    )
    return {
        tags.BN_MEAN_SHIFT.name: ops.mean(shift),
        tags.BN_MEAN_SHIFT_MAX.name: ops.max(shift),
        tags.BN_LOG_VAR_RATIO.name: ops.mean(log_ratio),
        tags.BN_LOG_VAR_RATIO_MAX.name: ops.max(log_ratio),
    }


def moving_change(current: Sequence, previous: Sequence) -> dict:
    """Relative change of the moving statistics since the previous probe."""
    change = ops.zeros((), "float32")
    size = ops.zeros((), "float32")
    for now, before in zip(current, previous):
        now = ops.cast(now, "float32")
        before = ops.cast(before, "float32")
        change = change + ops.sum(ops.square(now - before))
        size = size + ops.sum(ops.square(before))
    return {
        tags.BN_MOVING_CHANGE.name: ops.sqrt(change)
        / ops.maximum(ops.sqrt(size), 1e-12)
    }


def relative_l2(actual, reference):
    """‖actual − reference‖ / ‖reference‖, in float32."""
    actual = ops.cast(actual, "float32")
    reference = ops.cast(reference, "float32")
    difference = ops.sqrt(ops.sum(ops.square(actual - reference)))
    return difference / ops.maximum(ops.sqrt(ops.sum(ops.square(reference))), 1e-12)


def output_gap_stats(training_output, inference_output, classifier: bool) -> dict:
    """Train/inference gap of one model output on the same batch."""
    stats = {tags.GAP_REL_L2.name: relative_l2(training_output, inference_output)}
    if classifier:
        agree = ops.equal(
            ops.argmax(training_output, axis=-1), ops.argmax(inference_output, axis=-1)
        )
        stats[tags.GAP_ARGMAX_AGREEMENT.name] = ops.mean(ops.cast(agree, "float32"))
    return stats


def norm_layer_stats(inputs, gamma=None, beta=None) -> dict:
    """Input and affine-parameter statistics of a LayerNorm-style layer."""
    x = ops.cast(inputs, "float32")
    stats = {tags.NORM_IN_MEAN.name: ops.mean(x), tags.NORM_IN_STD.name: ops.std(x)}
    if gamma is not None:
        gamma = ops.cast(gamma, "float32")
        stats[tags.GAMMA_MEAN.name] = ops.mean(gamma)
        stats[tags.GAMMA_STD.name] = ops.std(gamma)
    if beta is not None:
        beta = ops.cast(beta, "float32")
        stats[tags.BETA_MEAN.name] = ops.mean(beta)
        stats[tags.BETA_STD.name] = ops.std(beta)
    return stats
