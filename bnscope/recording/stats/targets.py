"""Statistics of what the loss sees: the targets and the predictions of an output."""

from __future__ import annotations

import tensorflow as tf

from bnscope import tags

# Distinct target values are counted up to this many: enough to tell constant
# targets (1), binary labels (2) and the class ids of a small classifier apart;
# beyond it the targets are continuous or of many classes, and the exact count
# changes no rule (bnscope's choice).
DISTINCT_CAP = 64


def target_stats(targets) -> dict:
    """Summarizes the targets of one model output on the probe batch.

    Args:
        targets: The targets (`y`) of one output, batch first, any dtype.

    Returns:
        A flat dict keyed by `bnscope.tags` metric names: min, max, mean and
        std of the values, how many distinct values there are (up to
        `DISTINCT_CAP`), whether all are whole numbers, and, for targets with a
        last axis of 2 or more entries, the fraction of one-hot rows.
    """
    y = tf.cast(targets, tf.float32)
    flat = tf.reshape(y, [-1])
    distinct = tf.size(tf.unique(flat).y)
    stats = {
        tags.TARGET_MIN.name: tf.reduce_min(flat),
        tags.TARGET_MAX.name: tf.reduce_max(flat),
        tags.TARGET_MEAN.name: tf.reduce_mean(flat),
        tags.TARGET_STD.name: tf.math.reduce_std(flat),
        tags.TARGET_DISTINCT.name: tf.cast(
            tf.minimum(distinct, DISTINCT_CAP), tf.float32
        ),
        tags.TARGET_INTEGRAL.name: tf.cast(
            tf.reduce_all(tf.equal(flat, tf.round(flat))), tf.float32
        ),
    }
    if len(y.shape) >= 2 and y.shape[-1] is not None and y.shape[-1] >= 2:
        rows = tf.reshape(y, [-1, y.shape[-1]])
        binary = tf.reduce_all(
            tf.logical_or(tf.equal(rows, 0.0), tf.equal(rows, 1.0)), 1
        )
        one = tf.equal(tf.reduce_sum(rows, axis=1), 1.0)
        stats[tags.TARGET_ONEHOT_FRAC.name] = tf.reduce_mean(
            tf.cast(tf.logical_and(binary, one), tf.float32)
        )
    return stats


def output_stats(predictions) -> dict:
    """Summarizes the predictions of one model output on the probe batch.

    `output_spread` is the largest, over output units (every value of a
    sample), of the standard deviation across the samples: exactly 0 when
    every sample gets the same prediction, whatever the loss does.

    Args:
        predictions: One model output (`y_pred`), batch first.
    """
    p = tf.cast(predictions, tf.float32)
    per_sample = tf.reshape(p, [tf.shape(p)[0], -1]) if len(p.shape) else p[None, None]
    return {
        tags.OUTPUT_MEAN.name: tf.reduce_mean(p),
        tags.OUTPUT_MIN.name: tf.reduce_min(p),
        tags.OUTPUT_MAX.name: tf.reduce_max(p),
        tags.OUTPUT_SPREAD.name: tf.reduce_max(tf.math.reduce_std(per_sample, axis=0)),
    }
