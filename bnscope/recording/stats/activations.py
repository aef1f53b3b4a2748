"""Activation statistics of one layer output."""

from __future__ import annotations

import math

import tensorflow as tf

from bnscope import tags

HISTOGRAM_BINS = 30
_FLOAT32_MAX = tf.float32.max


def activation_stats(outputs, activation: str | None = None) -> dict:
    """Summarizes one layer output.

    Args:
        outputs: The layer output tensor, batch first.
        activation: Name of the layer's activation function, used to pick the
            saturation bounds. Defaults to `None` (no saturation statistic).

    Returns:
        A flat dict keyed by `bnscope.tags` metric names.
    """
    stacked = stacked_activation_stats(tf.expand_dims(outputs, 0), activation)
    return {metric: values[0] for metric, values in stacked.items()}


def grouped_activation_stats(
    outputs: list, activations: list[str | None]
) -> list[dict]:
    """`activation_stats` of many layer outputs, computed group by group.

    Outputs of the same shape (a Dense, its BatchNormalization and its
    activation, or the blocks of a deep network) are stacked and summarized by
    one set of ops: the probe's graph, and so its one-time compile cost, grows
    with the number of distinct shapes rather than of layers.
    """
    results: list[dict] = [{} for _ in outputs]
    for members in shape_groups(outputs):
        stacked = _stack(outputs, members)
        stats = {
            metric: _rows(values)
            for metric, values in stacked_activation_stats(stacked).items()
        }
        for position, index in enumerate(members):
            results[index] = {metric: rows[position] for metric, rows in stats.items()}
        # Saturation depends on the activation: one sub-stack per bounded kind.
        by_activation: dict[str, list[int]] = {}
        for position, index in enumerate(members):
            if activations[index] in tags.SATURATING_ACTIVATIONS:
                by_activation.setdefault(activations[index], []).append(position)
        for activation, positions in by_activation.items():
            subset = (
                tf.gather(stacked, positions)
                if len(positions) < len(members)
                else stacked
            )
            fractions = _rows(saturated_fraction(subset, activation))
            for row, position in enumerate(positions):
                results[members[position]][tags.ACT_SATURATED_FRAC.name] = fractions[
                    row
                ]
    return results


def _rows(vector) -> list:
    """The rows of a `[G]` (or `[G, ...]`) tensor, as one op.

    Not `vector[i]` per row: a strided slice is four ops with its constants,
    and on MobileNetV2 those slices were most of the statistics' trace time
    (2.4 of 3.1 s) and graph (5,980 ops).
    """
    return tf.unstack(vector)


def shape_groups(outputs: list) -> list[list[int]]:
    """Indices of outputs grouped by static shape (unknown shapes stay alone)."""
    groups: dict[tuple, list[int]] = {}
    for index, output in enumerate(outputs):
        shape = tuple(output.shape)
        groups.setdefault(shape if None not in shape else (index,), []).append(index)
    return list(groups.values())


def _stack(outputs: list, members: list[int]):
    """The outputs at `members`, stacked on a new axis 0 (a lone one is not copied)."""
    if len(members) == 1:
        return tf.expand_dims(tf.cast(outputs[members[0]], tf.float32), 0)
    return tf.stack([tf.cast(outputs[i], tf.float32) for i in members])


def stacked_activation_stats(stacked, activation: str | None = None) -> dict:
    """Statistics of `G` outputs stacked on axis 0: a dict of `[G]` tensors."""
    x = tf.cast(stacked, tf.float32)
    flat = tf.reshape(x, (tf.shape(x)[0], -1))
    count = tf.cast(tf.shape(flat)[1], tf.float32)
    total = tf.reduce_sum(flat, axis=1)
    # Few passes over the tensors: this also runs inside the training step in
    # full mode. NaN/Inf make a sum non-finite, and only then is the slower
    # path that keeps them out of the moments taken.
    mean, std, low, high, nonfinite = tf.cond(
        tf.reduce_all(tf.math.is_finite(total)),
        lambda: _finite_moments(flat, total / count, count),
        lambda: _guarded_moments(flat, count),
    )
    stats = {
        tags.ACT_MEAN.name: mean,
        tags.ACT_STD.name: std,
        tags.ACT_MIN.name: low,
        tags.ACT_MAX.name: high,
        tags.ACT_NONFINITE.name: nonfinite,
    }
    if len(x.shape) >= 3:
        # A unit (last-axis channel) is dead when it is 0 for every sample and
        # position of the batch. Its non-zero count also gives the zero
        # fraction: one pass over the tensor serves both.
        units = tf.reshape(x, (tf.shape(x)[0], -1, tf.shape(x)[-1]))
        nonzero = _nonzero(units, axis=1)
        stats[tags.ACT_ZERO_FRAC.name] = 1.0 - tf.reduce_sum(nonzero, 1) / count
        dead = tf.cast(tf.equal(nonzero, 0.0), tf.float32)
        stats[tags.ACT_DEAD_FRAC.name] = tf.reduce_mean(dead, axis=1)
    else:
        stats[tags.ACT_ZERO_FRAC.name] = 1.0 - _nonzero(flat, axis=1) / count
    if activation in tags.SATURATING_ACTIVATIONS:
        stats[tags.ACT_SATURATED_FRAC.name] = saturated_fraction(x, activation)
    return stats


def saturated_fraction(stacked, activation: str):
    """Per row of `stacked`, the fraction of saturated values (`[G]`)."""
    saturated = saturated_mask(stacked, activation)
    saturated = tf.reshape(saturated, (tf.shape(stacked)[0], -1))
    return _nonzero(saturated, axis=1) / tf.cast(tf.shape(saturated)[1], tf.float32)


def _finite_moments(flat, mean, count):
    variance = tf.reduce_sum(tf.math.squared_difference(flat, mean[:, None]), 1) / count
    extremes = tf.reduce_min(flat, axis=1), tf.reduce_max(flat, axis=1)
    return mean, tf.sqrt(variance), *extremes, tf.zeros_like(mean)


def _guarded_moments(flat, count):
    finite = tf.math.is_finite(flat)
    # A scalar zero, broadcast: `zeros_like(flat)` has a static shape, so
    # grappler folds it into a constant as large as the activations, kept
    # with the compiled graph even though this branch almost never runs (on
    # MobileNetV2, the probe's first call took +405 MB with it, +233 without).
    safe = tf.where(finite, flat, tf.zeros([], flat.dtype))
    mean = tf.reduce_sum(safe, axis=1) / count
    variance = tf.reduce_sum(tf.math.squared_difference(safe, mean[:, None]), 1) / count
    extremes = tf.reduce_min(safe, axis=1), tf.reduce_max(safe, axis=1)
    nonfinite = tf.reduce_sum(tf.cast(tf.logical_not(finite), tf.float32), axis=1)
    return mean, tf.sqrt(variance), *extremes, nonfinite


def _nonzero(x, axis: int):
    """Count of non-zero values of `x` along `axis`, as float32.

    Summed as float32, not `count_nonzero`'s int64: on CPU that reduction
    takes a third of the time, and it is exact up to 2**24 values per count
    (beyond, a fraction is off by about 1e-7; a count of 0 is always exact).
    """
    nonzero = tf.not_equal(x, tf.zeros([], x.dtype))
    return tf.reduce_sum(tf.cast(nonzero, tf.float32), axis=axis)


def saturated_mask(x, activation: str | None):
    """Boolean tensor marking saturated values, or `None` for unbounded ones."""
    if activation in tags.SATURATION_BOUNDS:
        low, high = tags.SATURATION_BOUNDS[activation]
        return tf.logical_or(tf.less_equal(x, low), tf.greater_equal(x, high))
    if activation == "softmax":
        return tf.greater_equal(tf.reduce_max(x, axis=-1), tags.SOFTMAX_SATURATION)
    if activation == "log_softmax":
        return tf.greater_equal(
            tf.reduce_max(x, axis=-1), math.log(tags.SOFTMAX_SATURATION)
        )
    return None


def histogram(outputs, bins: int = HISTOGRAM_BINS):
    """`(edges, counts)` of one output's finite values, `bins` equal-width bins."""
    edges, counts = stacked_histograms(tf.expand_dims(outputs, 0), bins)
    return edges[0], counts[0]


def grouped_histograms(outputs: list, bins: int = HISTOGRAM_BINS) -> list[tuple]:
    """`histogram` of many outputs, one set of ops per group of equal shapes.

    Returns:
        Per group of `shape_groups(outputs)`, `[G, bins + 1]` edges and
        `[G, bins]` counts; `ungrouped` gives them per output. Kept per group
        so that the probe's `tf.cond` around them has a few outputs, not two
        per layer (and its other branch a few zeros, not two per layer).
    """
    return [
        stacked_histograms(_stack(outputs, members), bins)
        for members in shape_groups(outputs)
    ]


def empty_grouped_histograms(outputs: list, bins: int = HISTOGRAM_BINS) -> list:
    """All-zero stand-ins shaped like `grouped_histograms(outputs, bins)`."""
    return [
        (tf.zeros([len(m), bins + 1], tf.float32), tf.zeros([len(m), bins], tf.float32))
        for m in shape_groups(outputs)
    ]


def ungrouped(outputs: list, grouped: list) -> list[tuple]:
    """`grouped_histograms`' result as one `(edges, counts)` pair per output."""
    results: list[tuple] = [()] * len(outputs)
    for members, (edges, counts) in zip(shape_groups(outputs), grouped):
        for index, pair in zip(members, zip(_rows(edges), _rows(counts))):
            results[index] = pair
    return results


def stacked_histograms(stacked, bins: int = HISTOGRAM_BINS):
    """`[G, bins + 1]` edges and `[G, bins]` counts, one histogram per row.

    Only finite values are counted. A row without any (a layer that overflowed
    to Inf/NaN) gets empty bins over `[0, 1]`; a constant row bins over
    `[v, v + 1]`. Each row's range and bin width are computed in float64: the
    span of two float32 values (e.g. -3e38 to 3e38) can overflow float32. The
    per-value arithmetic stays in float32 (it is most of the cost: a
    memory-bound pass per op) on halved values, whose difference cannot
    overflow; a NaN bin index would make `bincount` fail ("Input arr must be
    non-negative"), so non-finite values go to an extra bin that is dropped.
    A value within float32 rounding of an edge may land in the bin beside the
    one float64 arithmetic would give it.
    """
    x = tf.cast(stacked, tf.float32)
    flat = tf.reshape(x, (tf.shape(x)[0], -1))
    finite = tf.math.is_finite(flat)
    low = tf.reduce_min(tf.where(finite, flat, float("inf")), axis=1)
    high = tf.reduce_max(tf.where(finite, flat, float("-inf")), axis=1)
    any_finite = tf.less_equal(low, high)
    low = tf.cast(tf.where(any_finite, low, tf.zeros_like(low)), tf.float64)
    high = tf.cast(tf.where(any_finite, high, tf.zeros_like(high)), tf.float64)
    width = tf.where(
        tf.greater(high, low), (high - low) / bins, tf.ones_like(low) / bins
    )
    half_low = tf.cast(low / 2, tf.float32)[:, None]
    # Capped: a span of a few subnormals would give an infinite scale (and
    # 0 * inf = NaN at the row's minimum).
    scale = tf.cast(tf.minimum(2 / width, _FLOAT32_MAX), tf.float32)[:, None]
    position = tf.clip_by_value((flat * 0.5 - half_low) * scale, 0.0, bins - 1.0)
    index = tf.where(finite, tf.cast(position, tf.int32), bins)
    counts = tf.math.bincount(
        index, minlength=bins + 1, maxlength=bins + 1, dtype=tf.float32, axis=-1
    )
    # bincount's result has no static shape; `_rows` needs the row count.
    rows = -1 if flat.shape[0] is None else flat.shape[0]
    counts = tf.reshape(counts, (rows, bins + 1))[:, :bins]
    edges = low[:, None] + width[:, None] * tf.range(bins + 1, dtype=tf.float64)
    return tf.cast(edges, tf.float32), counts


def input_stats(inputs) -> dict:
    """Mean, std, min and max of one model input (integer inputs included)."""
    x = tf.cast(inputs, tf.float32)
    return {
        tags.INPUT_MEAN.name: tf.reduce_mean(x),
        tags.INPUT_STD.name: tf.math.reduce_std(x),
        tags.INPUT_MIN.name: tf.reduce_min(x),
        tags.INPUT_MAX.name: tf.reduce_max(x),
    }
