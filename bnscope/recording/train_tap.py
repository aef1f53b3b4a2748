"""Seeing the training data and the train step without changing either.

A Keras callback never sees batches. `fit` looks `model.train_function` up on
every step, so for the first step of a `fit` bnscope puts a thin wrapper there
that:

- takes the first batch off the data iterator, keeps it as the probe batch,
  and hands the very same tensors to Keras' own compiled step (through a
  one-batch `tf.data` iterator of the same element spec, so the step is
  compiled once, as without bnscope), so training sees exactly the data it
  would have seen;
- records, while the step is traced, which mode each BatchNormalization layer
  actually ran in.

Then the wrapper removes itself; every later step runs Keras' function as is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import keras
import tensorflow as tf

from bnscope.recording import distribution
from bnscope.recording.hooks import LayerHooks, Recording

_TF_ITERATORS = (tf.data.Iterator, tf.distribute.DistributedIterator)


class _Prepended:
    """An iterator yielding `first`, then the rest of `iterator`."""

    def __init__(self, first: Any, iterator: Iterator):
        self._first: list[Any] = [first]
        self._iterator = iterator

    def __iter__(self) -> _Prepended:
        return self

    def __next__(self) -> Any:
        if self._first:
            return self._first.pop()
        return next(self._iterator)


class TrainFunctionTap:
    """One-shot wrapper around `model.train_function`.

    Args:
        model: The model being fitted (its train function already made).
        hooks: Layer hooks used to record BN modes while the step is traced.
        on_batch: Called with the first batch (`(x, y, sample_weight)`).
        on_trace: Called with the `Recording` of the traced train step.
        guard: Context-manager factory isolating bnscope's own failures.
        on_failure: Called with an error of the first step. Returns the
            step's logs if it completed and only bnscope's statistics in it
            failed (`in_step.py`); else `None`, having taken out what bnscope
            compiled into the step, which is then traced again unhooked.
    """

    def __init__(
        self,
        model: keras.Model,
        hooks: LayerHooks,
        on_batch: Callable[[tuple], None] | None,
        on_trace: Callable[[Recording], None],
        guard: Callable[[str], Any],
        on_failure: Callable[[Exception], dict | None] | None = None,
    ):
        self.model = model
        self.hooks = hooks
        self.on_batch = on_batch
        self.on_trace = on_trace
        self.guard = guard
        self.on_failure = on_failure
        self._original = None

    def install(self) -> None:
        self._original = self.model.train_function
        self.model.train_function = self._first_call

    def remove(self) -> None:
        if self._original is not None and self.model.train_function == self._first_call:
            self.model.train_function = self._original
        self._original = None

    def _first_call(self, iterator):
        original = self._original
        self.remove()  # `model.train_function` is Keras' own again
        rest = None
        if self.on_batch is not None and isinstance(iterator, _TF_ITERATORS):
            batch = iterator.get_next()  # OutOfRangeError ends the epoch, as in Keras
            with self.guard("capturing the probe batch"):
                self.on_batch(_host_batch(batch))
            rest = iterator
            iterator = self._first_batch_iterator(batch, iterator)
        rewind = iterator if rest is None else _Prepended(batch, rest)
        try:
            with self.hooks.recording() as recording:
                logs = original(iterator)
        except Exception as error:
            # Keras traces its own train step here, under bnscope's hooks. A
            # layer that behaves differently once its `call` is wrapped (one
            # that inspects itself, say) must not end the user's training:
            # trace again unhooked. A genuine error of the model fails again,
            # unhooked, exactly as it would without bnscope.
            completed = self.on_failure(error) if self.on_failure else None
            if completed is not None:
                return completed  # the step ran: its logs, no retry
            # The failed trace may have created the optimizer's variables, and a
            # tf.function creates variables on its first call only: a new one.
            self.model.make_train_function(force=True)
            logs = self.model.train_function(rewind)
            with self.guard(
                "recording BatchNormalization modes while Keras traced its train "
                "step (skipped; the probe is unaffected)"
            ):
                raise error
            return logs
        with self.guard("recording BatchNormalization modes"):
            self.on_trace(recording)
        return logs

    def _first_batch_iterator(self, batch, iterator):
        """What Keras' first step reads: `batch`.

        A `tf.data` iterator over `batch` alone, with `iterator`'s element
        spec, where one step reads one batch: Keras' step then compiles for
        that spec, which the next steps' iterator has too, so it is traced
        once. (The fallback, `batch` then the rest of `iterator` as a Python
        iterator, takes Keras' Python-iterator path, which compiles its step
        for the batch's exact shapes and traces it again at step 2: on
        MobileNetV2 that second trace cost more CPU than 30 training steps.)
        """
        if (
            isinstance(iterator, tf.data.Iterator)
            and getattr(self.model, "steps_per_execution", 1) == 1
        ):
            spec = iterator.element_spec

            def relaxed(element):
                # The batch's static shapes, widened to the spec's (a `None`
                # batch dimension, say); the values are the batch's own.
                return tf.nest.map_structure(
                    lambda t, s: tf.raw_ops.PlaceholderWithDefault(
                        input=t, shape=s.shape
                    ),
                    element,
                    spec,
                )

            try:
                return iter(tf.data.Dataset.from_tensors((batch,)).map(relaxed))
            except Exception:  # e.g. ragged or sparse parts: the fallback works
                pass
        return _Prepended(batch, iterator)


def _host_batch(batch) -> tuple:
    """`(x, y, sample_weight)` of a (possibly per-replica) batch, merged."""
    return keras.utils.unpack_x_y_sample_weight(distribution.merge_replicas(batch))


def requested_training(model: keras.Model, hooks: LayerHooks) -> dict[str, bool]:
    """Layers inside a sub-model the user called with an explicit `training=`.

    In a Functional model, `base(x, training=False)` records `training=False`
    on the graph node; Keras 3.15 then overrides it during `fit`
    (keras-team/keras#20285). Comparing this with the mode recorded in the
    train step reveals the override.
    """
    requested: dict[str, bool] = {}
    names = {id(layer): name for name, layer in hooks.layers}

    def visit(functional: keras.Model) -> None:
        for operation in getattr(functional, "operations", []) or []:
            for node in getattr(operation, "_inbound_nodes", []) or []:
                arguments = getattr(node, "arguments", None)
                training = getattr(arguments, "kwargs", {}).get("training")
                if isinstance(training, bool) and isinstance(
                    operation, keras.layers.Layer
                ):
                    for layer in operation._flatten_layers(
                        include_self=True, recursive=True
                    ):
                        if id(layer) in names:
                            requested.setdefault(names[id(layer)], training)
            if isinstance(operation, keras.Model):
                visit(operation)

    visit(model)
    return requested
