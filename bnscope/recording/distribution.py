"""What `tf.distribute` means for bnscope: who writes, and which batch BN sees."""

from __future__ import annotations

import keras
import tensorflow as tf


def is_chief(model: keras.Model) -> bool:
    """Whether this process writes: the chief, or worker 0 without a chief."""
    # The model's strategy: callbacks and loops usually run outside its scope.
    strategy = (
        getattr(model, "distribute_strategy", None) or tf.distribute.get_strategy()
    )
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "cluster_spec", None):
        return True
    task_type = resolver.task_type
    task_id = resolver.task_id
    if task_type in (None, "chief"):
        return True
    spec = resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and "chief" not in spec


def merge_replicas(batch):
    """Per-replica values (`tf.distribute`) as one batch of this worker's data.

    Also unwraps the `tf.experimental.Optional` values a data iterator may hand
    out (an empty one becomes `None`).
    """

    def merge(value):
        if isinstance(value, tf.distribute.DistributedValues):
            parts = value.values
            return tf.concat(parts, axis=0) if len(parts) > 1 else parts[0]
        if isinstance(value, tf.experimental.Optional):
            return value.get_value() if value.has_value() else None
        return value

    return tf.nest.map_structure(merge, batch)


def replicas(model: keras.Model) -> int:
    """Replicas training in sync (1 without a strategy)."""
    strategy = getattr(model, "distribute_strategy", None)
    return int(getattr(strategy, "num_replicas_in_sync", 1) or 1)


def replica_batch_size(model: keras.Model, x) -> int | None:
    """The batch each replica's BN normalizes over: this worker's share per device."""
    size = batch_size(x)
    if size is None or replicas(model) <= 1:
        return size
    # Only distribution strategies have worker devices (the default raises).
    devices = len(model.distribute_strategy.extended.worker_devices)
    return max(size // devices, 1)


def batch_size(x) -> int | None:
    """The leading dimension of the first input that has one."""
    for tensor in tf.nest.flatten(x):
        shape = getattr(tensor, "shape", None)
        if shape is not None and len(shape) and shape[0] is not None:
            return int(shape[0])
    return None
