"""Full mode: statistics computed inside the training step itself.

A separate probe pass costs about as much as a training step, so probing at
every step would double training time. In full mode (`every_n_steps=1`)
bnscope instead wraps `model.train_step` on the instance, so the activations
training already computes are summarized in the same compiled function, on
the first `STEP_SAMPLES` samples of each training batch, and the values are
stashed in bnscope's own variable (read once per step). Exact gradient norms come from the optimizer wrapper in
`exact_gradients.py`. What needs extra passes (probe-batch gradients, BN
drift against the fixed batch, the train/inference gap) still comes from the
probe, spaced by the overhead budget.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from bnscope import tags
from bnscope.recording.hooks import LayerHooks
from bnscope.recording.probe import layer_activation_stats

# Samples of each training batch summarized in full mode. Summarizing is
# memory-bound (several passes over every layer output); on a LeNet-5 at batch
# 128 the whole batch costs about 0.4 of a training step, 32 samples about 0.1,
# which keeps full mode within its 1.3x target (benchmarks/overhead.py). A
# different slice is seen at every step, since batches change.
STEP_SAMPLES = 32


def supported(model: keras.Model) -> str | None:
    """`None` if full mode can run on `model`, else the reason it cannot."""
    if (
        tf.distribute.has_strategy()
        or model.distribute_strategy.num_replicas_in_sync > 1
    ):
        return "a tf.distribute strategy is active (statistics would be per replica)"
    if model.jit_compile:
        return "jit_compile=True (XLA needs statically shaped variables)"
    return None


class StepStatistics:
    """Wraps `model.train_step` to summarize every layer's output at each step.

    Args:
        model: The model being fitted.
        hooks: Its layer hooks.
        guard: Context-manager factory isolating bnscope's own failures, so a
            statistic that fails to build never breaks the training step.
    """

    def __init__(self, model: keras.Model, hooks: LayerHooks, guard):
        self.model = model
        self.hooks = hooks
        self.guard = guard
        self.tags: list[str] = []
        self._values = tf.Variable(
            tf.zeros([0]), shape=tf.TensorShape([None]), trainable=False
        )
        self._installed = False

    def install(self) -> None:
        original = self.model.train_step

        def train_step(data):
            with self.hooks.recording() as recording:
                logs = original(data)
            with self.guard("training-step statistics (skipped for this run)"):
                self._stash(recording)
            return logs

        self.model.__dict__["train_step"] = train_step
        self._installed = True

    def _stash(self, recording) -> None:
        values = {
            tags.make_tag(metric, name): value
            for name, stats in layer_activation_stats(
                recording.calls, STEP_SAMPLES
            ).items()
            for metric, value in stats.items()
        }
        if values:
            stacked = tf.stack([tf.cast(v, tf.float32) for v in values.values()])
            self._values.assign(stacked)
            self.tags = list(values)

    def remove(self) -> None:
        if self._installed:
            self.model.__dict__.pop("train_step", None)
            self._installed = False

    def read(self) -> dict[str, float]:
        """The statistics of the latest training step."""
        values = self._values.numpy().tolist()
        if len(values) != len(self.tags):
            return {}
        return dict(zip(self.tags, values))
