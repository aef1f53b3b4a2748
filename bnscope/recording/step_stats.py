"""Full mode: statistics computed inside the training step itself.

A separate probe pass costs about as much as a training step, so probing at
every step would double training time. In full mode (`every_n_steps=1`)
bnscope instead wraps `model.train_step` on the instance, so the activations
training already computes are summarized in the same compiled function, on
the first few samples of each training batch (`step_samples`), and the values are
stashed in bnscope's own variable (read once per step). Exact gradient norms come from the optimizer wrapper in
`exact_gradients.py`. What needs extra passes (probe-batch gradients, BN
drift against the fixed batch, the train/inference gap) still comes from the
probe, spaced by the overhead budget.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from bnscope import tags
from bnscope.recording.hooks import LayerHooks
from bnscope.recording.probe import layer_activation_stats

# How many samples of each training batch a layer's statistics summarize.
# Summarizing is memory-bound (several passes over every layer output), so
# its cost is the number of values summarized: MobileNetV2 at batch 16
# (64x64) runs at 1.48x plain fit's steady state with all 16 samples and
# 1.15x with 4 (benchmarks/real_models.py --configs plain full). What the
# statistics need is rows per unit (channel), not samples: a unit counts as
# dead when it is zero on every row, and one active on a fraction p of rows
# looks dead on r rows with probability (1 - p)^r, 3.4% for p = 0.1 and
# r = 32. So each layer gets enough samples for `MIN_ROWS_PER_UNIT` rows
# (a Dense layer: 32 samples; a convolution's every spatial position is a
# row, so its large early outputs, which dominate the cost, need few), and
# never fewer than `MIN_STEP_SAMPLES`, so one atypical sample does not set a
# step's mean. A different slice is seen at every step, since batches change.
MIN_ROWS_PER_UNIT = 32
MIN_STEP_SAMPLES = 4


def step_samples(shape: tf.TensorShape) -> int:
    """Leading samples of a `shape` output that full mode summarizes per step.

    Example: a `(batch, 32, 32, 16)` convolution output gets 4 samples
    (4,096 rows per channel), a `(batch, 2, 2, 1280)` one 8, a `(batch, 10)`
    Dense output 32 (a batch of fewer samples is summarized whole).
    """
    positions = 1
    for dim in shape[1:-1]:
        positions *= dim or 1  # an unknown size counts as 1: more samples
    return max(MIN_STEP_SAMPLES, math.ceil(MIN_ROWS_PER_UNIT / positions))


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
                recording.calls, step_samples
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
