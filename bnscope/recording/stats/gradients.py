"""Gradient and weight statistics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import tensorflow as tf

from bnscope import tags

# Values concatenated at a time to count NaN/Inf (16 MB of float32): the
# counts of all variables take a few ops per chunk rather than five per
# variable, and the copy stays small on a 25M-parameter model.
_CHUNK_VALUES = 1 << 22


def l2_norm(tensors: Sequence) -> object:
    """L2 norm of all values of `tensors` taken together, in float32."""
    total = tf.zeros((), tf.float32)
    for tensor in tensors:
        total = total + tf.reduce_sum(tf.square(tf.cast(tensor, tf.float32)))
    return tf.sqrt(total)


@dataclass
class LayerVariables:
    """One layer's trainable variables, as `variable_stats` takes them
    (`LayerVariables.of` converts them to float32).

    Args:
        gradients: One per variable, `None` where it has none.
        weights: The variables' current values.
        previous: Their values at the previous probe (for the update ratio).
    """

    gradients: list
    weights: list
    previous: list

    @classmethod
    def of(cls, gradients, weights, previous) -> LayerVariables:
        """As float32 dense tensors (where a variable cannot be, this raises)."""
        return cls(
            [None if g is None else _float32(g) for g in gradients],
            [_float32(w) for w in weights],
            [_float32(p) for p in previous],
        )

    @property
    def has_gradients(self) -> bool:
        return all(g is not None for g in self.gradients)


@dataclass
class VariableStats:
    """What `variable_stats` returns, as scalar tensors.

    Attributes:
        layers: Per layer, `{metric: value}`: the weight statistics, and the
            gradient ones where every variable of the layer has a gradient.
        variable_norms: Per layer, each variable's gradient norm (empty
            where the layer's gradient statistics are).
        global_norm: Of all gradients together; `None` without any.
    """

    layers: list[dict]
    variable_norms: list[list]
    global_norm: object | None


def variable_stats(layers: Sequence[LayerVariables]) -> VariableStats:
    """Each layer's gradient and weight statistics, all layers at once.

    Per layer: the gradient norm and NaN/Inf count over its variables, each
    variable's gradient norm, the weight norm and NaN/Inf count, and the
    update ratio ‖w − w_prev‖ / ‖w‖. Built as vectors: one `l2_loss` per
    tensor (a single op: sum of squares / 2), NaN/Inf counted on
    concatenated chunks, and the per-layer sums, norms and ratios as a
    handful of vector ops for all layers, where one layer at a time took
    about 25 ops per variable (a quarter of MobileNetV2's probe graph,
    docs/performance.md). No op takes every tensor as an input, so none
    keeps them all alive.
    """
    flat = [
        (index, grad, weight, previous)
        for index, layer in enumerate(layers)
        for grad, weight, previous in zip(
            layer.gradients, layer.weights, layer.previous
        )
    ]
    if not flat:
        return VariableStats([{} for _ in layers], [[] for _ in layers], None)
    owners = [index for index, *_ in flat]
    zero = tf.zeros((), tf.float32)
    grads = [g for _, g, _, _ in flat]
    weights = [w for _, _, w, _ in flat]
    changes = [w - p for _, _, w, p in flat]

    def per_variable_squares(tensors):
        halves = [zero if t is None else tf.nn.l2_loss(t) for t in tensors]
        return 2.0 * tf.stack(halves)

    def per_layer(vector):
        return tf.math.unsorted_segment_sum(vector, owners, num_segments=len(layers))

    grad_squares = per_variable_squares(grads)
    grad_norms = tf.unstack(tf.sqrt(grad_squares))
    present = [g if g is not None else tf.zeros((0,)) for g in grads]
    weight_norm = tf.sqrt(per_layer(per_variable_squares(weights)))
    change_norm = tf.sqrt(per_layer(per_variable_squares(changes)))
    # Vectors of one value per layer, split into scalars once each.
    layer_grad_norms, layer_grad_nonfinite, weight_norms, weight_nonfinite, ratios = (
        tf.unstack(vector)
        for vector in (
            tf.sqrt(per_layer(grad_squares)),
            per_layer(_nonfinite_counts(present)),
            weight_norm,
            per_layer(_nonfinite_counts(weights)),
            change_norm / tf.maximum(weight_norm, 1e-12),
        )
    )

    stats, variable_norms = [], []
    for index, layer in enumerate(layers):
        layer_stats, norms = {}, []
        if layer.gradients and layer.has_gradients:
            layer_stats[tags.GRAD_NORM.name] = layer_grad_norms[index]
            layer_stats[tags.GRAD_NONFINITE.name] = layer_grad_nonfinite[index]
            norms = [grad_norms[i] for i, owner in enumerate(owners) if owner == index]
        if layer.weights:
            layer_stats[tags.WEIGHT_NORM.name] = weight_norms[index]
            layer_stats[tags.WEIGHT_NONFINITE.name] = weight_nonfinite[index]
            layer_stats[tags.UPDATE_RATIO.name] = ratios[index]
        stats.append(layer_stats)
        variable_norms.append(norms)
    has_any = any(g is not None for g in grads)
    global_norm = tf.sqrt(tf.reduce_sum(grad_squares)) if has_any else None
    return VariableStats(stats, variable_norms, global_norm)


def _float32(tensor):
    return tf.cast(tf.convert_to_tensor(tensor), tf.float32)


def _nonfinite_counts(tensors: Sequence) -> object:
    """NaN/Inf count of each tensor, as one float32 vector.

    Counted on concatenations of at most `_CHUNK_VALUES` values, each after
    the previous one (a control dependency), so at most one chunk's copy is
    alive at a time. Only the positions of non-finite values (normally none)
    are mapped back to their tensors: a segment id per value would cost as
    much memory as the values (and `tf.repeat`, which would build it, takes
    tensors x largest tensor).
    """
    chunks: list[list] = [[]]
    filled = 0
    for tensor in tensors:
        size = tensor.shape.num_elements()
        if chunks[-1] and (size is None or filled + size > _CHUNK_VALUES):
            chunks.append([])
            filled = 0
        chunks[-1].append(tensor)
        filled += _CHUNK_VALUES if size is None else size
    counts = []
    flat_shape = tf.constant([-1])  # one constant for every reshape
    for chunk in chunks:
        with tf.control_dependencies(counts[-1:]):
            values = tf.concat([tf.reshape(t, flat_shape) for t in chunk], axis=0)
        sizes = [t.shape.num_elements() for t in chunk]
        if None in sizes:
            sizes = [tf.size(t, out_type=tf.int64) for t in chunk]
        ends = tf.math.cumsum(tf.cast(tf.stack(sizes), tf.int64))
        positions = tf.where(tf.logical_not(tf.math.is_finite(values)))[:, 0]
        owners = tf.searchsorted(ends, positions, side="right")
        counts.append(
            tf.math.bincount(
                tf.cast(owners, tf.int32),
                minlength=len(chunk),
                maxlength=len(chunk),
                dtype=tf.float32,
            )
        )
    return tf.concat(counts, axis=0)
