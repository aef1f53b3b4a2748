"""Exact per-step gradient norms, read from the optimizer's own `apply`.

The probe measures gradients on a fixed batch every few steps. For the
gradients training actually applied at every step, bnscope wraps
`optimizer.apply` on the instance (the inner optimizer under a
`LossScaleOptimizer`, so the gradients are already unscaled), stashes the
per-layer norms in its own variable, and rebuilds the train function so the
extra reductions are compiled into it (XLA included). Under `tf.distribute`
the optimizer sees per-replica gradients before the all-reduce; bnscope records
the mean over replicas of each replica's own-batch gradient norm (see
docs/robustness.md).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from bnscope import tags
from bnscope.recording.hooks import LayerHooks
from bnscope.recording.stats.gradients import l2_norm


class StepGradientNorms:
    """Records exact gradient norms of every training step.

    `install()` and `remove()` take effect when the caller rebuilds the
    train function (`model.make_train_function(force=True)`).

    Args:
        model: A compiled model.
        hooks: Its layer hooks, which name the layers.
    """

    def __init__(self, model: keras.Model, hooks: LayerHooks):
        self.model = model
        self.subjects: list[str] = []
        self._groups: list[set[int]] = []
        owned: set[int] = set()
        for name, layer in hooks.layers:
            ids = {id(v) for v in layer.trainable_variables} - owned
            if ids:
                owned |= ids
                self.subjects.append(name)
                self._groups.append(ids)
        self._norms = tf.Variable(
            tf.zeros(len(self.subjects) + 1),
            trainable=False,
            name="bnscope_step_grad_norms",
        )
        self._optimizer = None

    def install(self) -> None:
        optimizer = self.model.optimizer
        optimizer = getattr(optimizer, "inner_optimizer", optimizer)
        original = optimizer.apply

        def apply(grads, trainable_variables=None):
            variables = trainable_variables or optimizer._trainable_variables
            self._stash(grads, variables)
            return original(grads, trainable_variables)

        optimizer.__dict__["apply"] = apply
        self._optimizer = optimizer

    def remove(self) -> None:
        if self._optimizer is not None:
            self._optimizer.__dict__.pop("apply", None)
            self._optimizer = None

    def read(self) -> dict[str, float]:
        values = self._norms.numpy().tolist()
        result = {
            tags.STEP_GRAD_NORM.tag(name): value
            for name, value in zip(self.subjects, values)
        }
        result[tags.STEP_GRAD_GLOBAL_NORM.tag()] = values[-1]
        return result

    def _stash(self, grads, variables) -> None:
        by_id = {id(v): g for v, g in zip(variables, grads) if g is not None}
        norms = [
            l2_norm([by_id[i] for i in group if i in by_id]) for group in self._groups
        ]
        norms.append(l2_norm(list(by_id.values())))
        norms = tf.stack(norms)
        context = tf.distribute.get_replica_context()
        replicas = context.num_replicas_in_sync if context is not None else 1
        if replicas > 1:
            # Each replica sees its own gradient, of its loss divided by the
            # replica count (Keras scales it so the all-reduced sum is the
            # mean). Record the mean over replicas of each replica's own-batch
            # gradient norm, the same on every replica: one tiny all-reduce.
            norms = context.all_reduce(tf.distribute.ReduceOp.MEAN, norms)
            norms = norms * float(replicas)
        self._norms.assign(norms)
