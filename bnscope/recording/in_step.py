"""The probe compiled into Keras' own train step, run on the steps bnscope picks.

A separate probe is a second copy of the training step (forward, gradient
tape, backward) plus an inference-mode forward, compiled and optimized on its
own: on keras.applications networks that costs more than Keras' own compile
and doubles peak memory (docs/performance.md). In-step, bnscope instead wraps
`model.train_step` and the optimizer's `apply` on the instance and adds, after
the step, one `tf.cond` on "this is a probe step" (a bnscope-owned variable
the callback sets before the step). Its branch calls the probe's body
(`Probe.measure`) as a nested, non-inlined function, given the gradients the
optimizer just applied, so:

- no backward pass is compiled again, and the step's own graph is unchanged
  for grappler (it sees a call it may not inline): weights stay bit-identical;
- the statistics' function is built without grappler at the first probe step
  (`backend.IN_STEP_GRAPH_OPTIMIZATION`), not with Keras' compile;
- it runs after every effect of the step (it waits on every stateful op of
  the step and on its metrics), measuring the model as the separate probe
  does after the step, on the step's own batch; the gradients are the step's.

Ordinary steps pay one comparison. What it cannot run on (`unsupported`),
the callback probes separately. Measured, its probe steps are cheaper than
the separate probe's but its peak memory is higher (docs/performance.md), so
it is `BNScope(in_step=True)`, not the default.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf
from keras import tree

from bnscope.recording import backend
from bnscope.recording.probe import Probe, ProbeResult
from bnscope.recording.stats.activations import HISTOGRAM_BINS

_NOT_ARMED = -1

# The in-step probe compiled into each model's train function now. It stays
# there (disarmed) after `fit`, so the next `fit` with the same callback does
# not compile Keras' step again; a new callback replaces it.
_ATTACHED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def attach(model: keras.Model, probe: Probe) -> InStepProbe:
    """The in-step probe running `probe` in `model`'s train step, installed.

    Reuses the one already compiled in (no new trace) when it runs the same
    probe and Keras' train function is still the one built with it.
    """
    current = _ATTACHED.get(model)
    if current is not None and current.probe is probe and current.installed:
        return current
    if current is not None:
        current.uninstall()
    in_step = InStepProbe(model, probe)
    in_step.install()
    _ATTACHED[model] = in_step
    return in_step


def unsupported(model: keras.Model) -> str | None:
    """Why the probe cannot run inside `model`'s train step, or `None`.

    In-step needs Keras' own TensorFlow `train_step` (a custom one may not
    compute gradients through the optimizer's `apply`, or may compute a loss
    bnscope cannot), compiled, one step per call and one replica, and an
    optimizer that applies the gradients it is given directly.
    """
    optimizer = getattr(model, "optimizer", None)
    if type(model).train_step is not keras.Model.train_step:
        return "the model has its own train_step"
    if "train_step" in model.__dict__ and model not in _ATTACHED:
        return "the model's train_step is already wrapped"
    if "apply" in getattr(optimizer, "__dict__", {}) and model not in _ATTACHED:
        return "the optimizer's apply is already wrapped"
    if optimizer is None or not model.trainable_weights:
        return "the model has no optimizer or no trainable weights"
    if model.run_eagerly or model.jit_compile:
        return "the train step runs eagerly or under XLA"
    if getattr(model, "steps_per_execution", 1) != 1:
        return "steps_per_execution is not 1"
    if (
        tf.distribute.has_strategy()
        or model.distribute_strategy.num_replicas_in_sync > 1
    ):
        return "a tf.distribute strategy is active"
    if hasattr(optimizer, "inner_optimizer"):
        return "the optimizer scales the loss (mixed precision)"
    if getattr(optimizer, "gradient_accumulation_steps", None):
        return "the optimizer accumulates gradients"
    return None


class InStepProbe:
    """Runs `probe` inside the model's train step on the steps it is armed for.

    Args:
        model: The model being fitted (`unsupported(model)` is `None`).
        probe: The model's `Probe`, whose body, statistics and tags this
            shares: a probe step writes exactly what a separate probe would.
    """

    def __init__(self, model: keras.Model, probe: Probe):
        self.model = model
        self.probe = probe
        self.optimizer = model.optimizer
        # Why the statistics could not be compiled into the step (the callback
        # then probes separately), and a run-time failure of a probe step.
        self.build_error: Exception | None = None
        self.run_error: Exception | None = None
        self.built = False
        with tf.init_scope():
            # Steps this train function ran, counted by the step itself, and
            # the count at which to probe. (Not `optimizer.iterations`: inside
            # the step its read is not ordered against its increment.)
            self._steps = tf.Variable(
                tf.constant(0, tf.int64), trainable=False, name="bnscope_steps"
            )
            self._target = tf.Variable(
                tf.constant(_NOT_ARMED, tf.int64),
                trainable=False,
                name="bnscope_probe_at",
            )
            self._histograms = tf.Variable(
                False, trainable=False, name="bnscope_histograms"
            )
            self._scalars = _stash("bnscope_scalars")
            self._batch_size = tf.Variable(
                tf.constant(0, tf.int32), trainable=False, name="bnscope_batch"
            )
            self._histogram_values = _stash("bnscope_histograms_values")
        self._gradients: dict[int, Any] | None = None
        self._armed_histograms = False
        self._installed: list[tuple[Any, str]] = []
        self._train_function: Callable | None = None
        self._next_function: Callable | None = None
        self._tags: tuple[list[str], list[str]] = ([], [])

    # -- installing ------------------------------------------------------------
    def install(self) -> None:
        """Wraps the train step and `apply`, and has Keras rebuild its step.

        Keras traces its train step at the first step of `fit`, so compiling
        the probe into it costs no extra trace of the model.
        """
        model, optimizer = self.model, self.optimizer
        if not optimizer.built:
            # What Keras' own `_symbolic_build` does under a distribution
            # strategy. Slots created inside the first trace make tf.function
            # trace the step a second time; built here (zeros either way),
            # the step, and the probe in it, are traced once.
            optimizer.build(model.trainable_variables)
        original_step = model.train_step
        original_apply = optimizer.apply

        def train_step(data):
            return self._train_step(original_step, data)

        def apply(grads, trainable_variables=None):
            if self._gradients is None:  # the step's first (and only) apply
                variables = trainable_variables or optimizer._trainable_variables
                self._gradients = {
                    id(v): g for v, g in zip(variables, grads) if g is not None
                }
            return original_apply(grads, trainable_variables)

        model.__dict__["train_step"] = train_step
        optimizer.__dict__["apply"] = apply
        self._installed = [(model, "train_step"), (optimizer, "apply")]
        model.make_train_function(force=True)
        self._train_function = model.train_function

    @property
    def installed(self) -> bool:
        """Whether the model's train function is still the one built with it."""
        return self._train_function is not None and (
            self.model.train_function is self._train_function
        )

    def uninstall(self) -> None:
        """Takes the wrappers off; Keras' step is rebuilt at its next use."""
        for owner, name in self._installed:
            owner.__dict__.pop(name, None)
        self._installed = []
        self._train_function = None
        self.disarm()
        self.model.make_train_function(force=True)

    # -- probing ---------------------------------------------------------------
    def arm(self, histograms: bool) -> None:
        """Makes the next training step a probe step.

        Args:
            histograms: Whether that probe computes histograms.
        """
        self._target.assign(self._steps.numpy() + 1)
        self._histograms.assign(histograms)
        self._armed_histograms = histograms
        # Around whatever `fit` would call (at the first step, bnscope's
        # one-shot `TrainFunctionTap`, which then restores Keras' function).
        self._next_function = self.model.train_function
        self.model.train_function = self._guarded_step

    def disarm(self) -> None:
        self._target.assign(_NOT_ARMED)
        if self.model.train_function == self._guarded_step:
            self.model.train_function = self._next_function

    def read(self) -> ProbeResult | None:
        """What the last probe step measured, or `None` if it measured nothing."""
        scalar_tags, histogram_tags = self._tags
        values = self._scalars.numpy()
        if not self.built or len(values) != len(scalar_tags):
            return None
        result = ProbeResult(dict(zip(scalar_tags, values.tolist())))
        if self._armed_histograms:
            rows = self._histogram_values.numpy().reshape(
                len(histogram_tags), 2 * HISTOGRAM_BINS + 1
            )
            for tag, row in zip(histogram_tags, rows):
                result.histograms[tag] = (
                    row[: HISTOGRAM_BINS + 1],
                    row[HISTOGRAM_BINS + 1 :],
                )
        return result

    def batch_size(self) -> int | None:
        """The batch size of the last probe step."""
        return int(self._batch_size.numpy()) or None

    def _guarded_step(self, iterator):
        """Keras' step; a failure of bnscope's statistics alone loses only them.

        When the step completed before the error (`completed`), return its
        logs, keep the error for the callback to report, and train on. Any
        other error is the model's own and is raised as is.
        """
        self.model.train_function = function = self._next_function
        try:
            return function(iterator)
        except Exception as error:
            logs = self.completed(error)
            if logs is None:
                raise
            return logs

    def completed(self, error: Exception) -> dict | None:
        """The armed step's logs if it completed before `error`, else `None`.

        bnscope's step counter moves after every effect of the step and
        before the probe, so it tells a failure of the probe (the step's
        metrics are then up to date) from one of the step.
        """
        if int(self._steps.numpy()) != int(self._target.numpy()):
            return None
        self.run_error = error
        return self.model.get_metrics_result()

    # -- while Keras traces its step ---------------------------------------------
    def _train_step(self, original: Callable, data):
        self._gradients = None
        graph = tf.compat.v1.get_default_graph()
        first_op = len(graph.get_operations())
        try:
            logs = original(data)
            gradients, self._gradients = self._gradients, None
            # After every effect of the step (weights, slots, moving statistics,
            # metrics, the iteration count), so that a probe failing at run
            # time fails a step that is already complete; and never when the
            # batch could not be fetched (an op with no input from the data
            # would run even then).
            effects = [
                op for op in graph.get_operations()[first_op:] if op._is_stateful
            ]
            with tf.control_dependencies(effects + _tensors(logs)):
                step = self._steps.assign_add(1)
            try:
                self._compile_probe(data, step, gradients)
            except Exception as error:
                # Training must not depend on bnscope: the step is traced
                # without the probe, and the callback probes separately.
                self.build_error = error
            return logs
        finally:
            self._gradients = None

    def _compile_probe(self, data, step, gradients) -> None:
        if not gradients:
            raise ValueError("the train step applied no gradients")
        probe = self.probe
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        variables = probe.trainable_variables
        present = [i for i, v in enumerate(variables) if id(v) in gradients]
        given = [tf.convert_to_tensor(gradients[id(variables[i])]) for i in present]

        def measure(x, y, sample_weight, with_histograms, given):
            ordered: list = [None] * len(variables)
            for i, gradient in zip(present, given):
                ordered[i] = gradient
            scalars, histograms = probe.measure(
                x, y, sample_weight, with_histograms, given_gradients=ordered
            )
            # This trace's tags: the separate probe may trace the same body
            # later (at an epoch end), without the gradients given.
            self._tags = (list(probe.scalar_tags), list(probe.histogram_tags))
            rows = [tf.concat([edges, counts], 0) for edges, counts in histograms]
            return scalars, tf.concat(rows, 0) if rows else tf.zeros([0])

        nested = backend.nested_function(
            measure, optimize=backend.IN_STEP_GRAPH_OPTIMIZATION
        )

        def run():
            scalars, histograms = nested(
                x, y, sample_weight, self._histograms.value(), given
            )
            self._scalars.assign(scalars)
            self._histogram_values.assign(histograms)
            self._batch_size.assign(tf.shape(tree.flatten(x)[0])[0])

        backend.run_if(tf.equal(step, self._target.value()), run)
        self.built = True
        self.build_error = None


def _tensors(logs) -> list:
    return [t for t in tree.flatten(logs) if isinstance(t, tf.Tensor)]


def _stash(name: str) -> tf.Variable:
    """A float vector variable of any length, bnscope's own."""
    return tf.Variable(
        tf.zeros([0]), shape=tf.TensorShape([None]), trainable=False, name=name
    )
