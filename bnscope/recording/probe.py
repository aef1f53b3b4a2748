"""The compiled, side-effect-free probe that measures a model on one batch.

One call runs the model in training mode under a `GradientTape` and in
inference mode on the same batch, with every leaf layer hooked, and returns
every statistic as one vector (one device-to-host copy). It runs inside a
`keras.StatelessScope` mapping all non-trainable variables to their current
values, so BatchNormalization moving statistics, dropout seeds and metric
states are left bit-identical: observing never changes what the model learns.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import tree

from bnscope import schema, tags
from bnscope.recording import backend, layer_info
from bnscope.recording.hooks import LayerCall, LayerHooks, Recording
from bnscope.recording.stats import (
    activations,
    gradients,
    joint,
    normalization,
    targets,
)

LossFn = Callable[[Any, Any, Any, Any], Any]  # (x, y, y_pred, sample_weight) -> loss


@dataclass
class ProbeResult:
    """What one probe measured, as host values."""

    scalars: dict[str, float]
    histograms: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


@dataclass
class TraceInfo:
    """What the first trace learned about the model (for the metadata)."""

    calls: list[LayerCall]
    output_names: list[str]
    classifier_outputs: list[bool]
    input_names: list[str]
    input_dtypes: list[str]
    gradients_skipped: str | None = None
    # Per output, in `output_names` order: its producing layer, shape and
    # targets (`Probe._record_targets`).
    output_specs: list[dict] = field(default_factory=list)


class Probe:
    """Builds and runs the compiled probe for one model.

    Args:
        model: The Keras model.
        hooks: Its `LayerHooks`.
        loss_fn: `(x, y, y_pred, sample_weight) -> loss`. Defaults to the
            model's compiled loss (`model.compute_loss`).
    """

    def __init__(
        self, model: keras.Model, hooks: LayerHooks, loss_fn: LossFn | None = None
    ):
        self.model = model
        self.hooks = hooks
        self.traces = 0
        self.loss_fn = loss_fn or self._compiled_loss
        self.info: TraceInfo | None = None
        self.inference_skipped: Exception | None = None
        # layer name -> why its gradient/weight/normalization statistics are
        # not in the probe (found while tracing; the observer reports them).
        self.skipped_layers: dict[str, Exception] = {}
        self.scalar_tags: list[str] = []
        self.histogram_tags: list[str] = []
        self.trainable_variables = list(model.trainable_variables)
        self.trainable_ids = [id(v) for v in self.trainable_variables]
        # Snapshots for ‖Δw‖/‖w‖ and BN moving-statistic change between probes.
        self._weight_snapshot = [
            tf.Variable(v.value, trainable=False) for v in self.trainable_variables
        ]
        self._bn_layers = [
            layer for _, layer in self.hooks.layers if layer_info.is_batch_norm(layer)
        ]
        self._bn_snapshot = {
            id(layer): [
                tf.Variable(layer.moving_mean.value, trainable=False),
                tf.Variable(layer.moving_variance.value, trainable=False),
            ]
            for layer in self._bn_layers
        }
        self._function = backend.compile_function(self.measure)

    def __call__(
        self, x, y=None, sample_weight=None, with_histograms: bool = False
    ) -> ProbeResult:
        # A tensor, not a Python bool: one trace serves both kinds of probe.
        scalars, histograms = self._function(
            x, y, sample_weight, tf.constant(with_histograms)
        )
        values = scalars.numpy().tolist()
        result = ProbeResult(dict(zip(self.scalar_tags, values)))
        if with_histograms:
            for tag, (edges, counts) in zip(self.histogram_tags, histograms):
                result.histograms[tag] = (edges.numpy(), counts.numpy())
        return result

    def _compiled_loss(self, x, y, y_pred, sample_weight):
        return self.model.compute_loss(
            x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True
        )

    # Everything below runs while tracing.
    def measure(self, x, y, sample_weight, with_histograms, given_gradients=None):
        """The probe's body, to trace inside a compiled function.

        Args:
            x, y, sample_weight: The batch.
            with_histograms: A boolean tensor: whether histograms are computed.
            given_gradients: The gradients of `model.trainable_variables` on this
                batch, where the caller has them (`in_step.py`: the ones the
                optimizer applies), with `None` for a variable without one.
                Defaults to `None`: computed here, under a gradient tape.

        Returns:
            `(scalars, histograms)`: every scalar statistic stacked in one
            vector (tags in `scalar_tags`), and `(edges, counts)` per
            histogram (tags in `histogram_tags`).
        """
        self.traces += 1
        model = self.model
        state = [(v, v.value) for v in model.non_trainable_variables]
        gradients_skipped = None
        scale = None if given_gradients is not None else self._loss_scale()
        tape_scope = (
            tf.GradientTape(persistent=scale is not None)
            if given_gradients is None
            else contextlib.nullcontext()
        )
        with keras.StatelessScope(state_mapping=state):
            with tape_scope as tape:
                inputs = dict(zip(self._input_names(x), tree.flatten(x)))
                with self.hooks.recording(inputs=inputs) as train:
                    y_pred = model(x, training=True)
                try:
                    loss = self.loss_fn(x, y, y_pred, sample_weight)
                except Exception as error:
                    loss = None
                    gradients_skipped = f"{type(error).__name__}: {error}"
                scaled = None
                if loss is not None and scale is not None:
                    scaled = loss * tf.cast(scale, loss.dtype)
            grads = [None] * len(self.trainable_variables)
            if given_gradients is not None:
                grads = list(given_gradients)
            elif loss is not None:
                grads = self._gradients(tape, loss, scaled, scale)
        inference, y_infer = self._inference_pass(x, state)

        values: dict[str, Any] = {}
        self._record_inputs(values, x)
        global_norm = self._record_layers(values, train, inference, grads)
        outputs = self._record_outputs(values, y_pred, y_infer)
        # -- Targets and predictions of each output (stats/targets.py) -------
        output_specs = self._record_targets(values, y, y_pred, outputs[0], train)
        # ---------------------------------------------------------------------
        if loss is not None:
            loss = tf.cast(loss, tf.float32)
            values[tags.LOSS.tag()] = loss
            values[tags.LOSS_NONFINITE.tag()] = tf.cast(
                tf.logical_not(tf.math.is_finite(loss)), tf.float32
            )
        if global_norm is not None:
            values[tags.GRAD_GLOBAL_NORM.tag()] = global_norm

        observed = [call for call in train.calls if call.outputs is not None]
        self.histogram_tags = [tags.ACT_HIST.tag(call.name) for call in observed]
        histograms = []
        if observed:
            outs = [c.outputs for c in observed]
            grouped = tf.cond(
                with_histograms,
                lambda: activations.grouped_histograms(outs),
                lambda: activations.empty_grouped_histograms(outs),
            )
            histograms = activations.ungrouped(outs, grouped)

        # Snapshots are ours, not the model's; update them after the scope.
        for snapshot, variable in zip(self._weight_snapshot, self.trainable_variables):
            snapshot.assign(variable.value)
        for layer in self._bn_layers:
            mean, variance = self._bn_snapshot[id(layer)]
            mean.assign(layer.moving_mean.value)
            variance.assign(layer.moving_variance.value)

        self.scalar_tags = list(values)
        if self.info is None:
            self.info = TraceInfo(
                calls=train.calls,
                output_names=outputs[0],
                classifier_outputs=outputs[1],
                input_names=self._input_names(x),
                input_dtypes=[tf.as_dtype(t.dtype).name for t in tree.flatten(x)],
                gradients_skipped=gradients_skipped,
                output_specs=output_specs,
            )
        stacked = tf.stack([tf.cast(v, tf.float32) for v in values.values()])
        return stacked, histograms

    def _inference_pass(self, x, state) -> tuple[Recording, Any]:
        """The model in inference mode on the probe batch, with hooks.

        A model that fails only in inference mode (only the probe calls it
        so during `fit`) loses only what needs that pass: the train/inference
        gap statistics. The error is kept in `inference_skipped` for the
        observer to report once.
        """
        # A fresh scope: inference must see the moving statistics as they
        # are, not as the training-mode pass would have updated them.
        try:
            with (
                keras.StatelessScope(state_mapping=state),
                self.hooks.recording() as inference,
            ):
                return inference, self.model(x, training=False)
        except Exception as error:
            self.inference_skipped = error
            return Recording(), None

    def _loss_scale(self):
        optimizer = getattr(self.model, "optimizer", None)
        return getattr(optimizer, "dynamic_scale", None)

    def _gradients(self, tape, loss, scaled_loss, scale) -> list:
        """Gradients of `loss`, loss-scaled as the optimizer scales them."""
        if scale is None:
            return tape.gradient(loss, self.trainable_variables)
        scaled = tape.gradient(scaled_loss, self.trainable_variables)
        present = [i for i, g in enumerate(scaled) if g is not None]
        if not present:
            return scaled
        unscaled = [
            tf.convert_to_tensor(scaled[i]) / tf.cast(scale, scaled[i].dtype)
            for i in present
        ]
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in unscaled])

        def unscaled_gradients():
            # A scale that overflows is normal: the optimizer skips that step
            # and halves the scale. Measure at scale 1 rather than report the
            # overflow as NaN gradients; a real NaN stays NaN.
            variables = [self.trainable_variables[i] for i in present]
            return [tf.convert_to_tensor(g) for g in tape.gradient(loss, variables)]

        chosen = tf.cond(finite, lambda: unscaled, unscaled_gradients)
        grads = [None] * len(scaled)
        for i, gradient in zip(present, chosen):
            grads[i] = gradient
        return grads

    def _input_names(self, x) -> list[str]:
        flat = tree.flatten(x)
        names = [
            _input_layer_name(t) for t in getattr(self.model, "inputs", None) or []
        ]
        if isinstance(x, dict):
            names = sorted(x)
        if len(names) != len(flat) or not all(names):
            names = (
                ["input"]
                if len(flat) == 1
                else [f"input_{i}" for i in range(len(flat))]
            )
        return [str(n).split(":")[0] for n in names]

    def _record_inputs(self, values: dict, x) -> None:
        for name, tensor in zip(self._input_names(x), tree.flatten(x)):
            for metric, value in activations.input_stats(tensor).items():
                values[tags.make_tag(metric, name)] = value

    def _record_layers(
        self, values: dict, train: Recording, inference: Recording, grads
    ) -> object | None:
        """Every layer's statistics into `values`.

        Returns:
            The global gradient norm, `None` without gradients.
        """
        grads_by_variable = {id(v): g for v, g in zip(self.trainable_variables, grads)}
        snapshots = {
            id(v): s for v, s in zip(self.trainable_variables, self._weight_snapshot)
        }
        together = joint.JointStats(values)

        def add_variables(subject, variables):
            if variables:
                together.add_variables(
                    subject,
                    [v.name for v in variables],
                    gradients.LayerVariables.of(
                        [grads_by_variable[id(v)] for v in variables],
                        [v.value for v in variables],
                        [snapshots[id(v)] for v in variables],
                    ),
                )

        owned: set[int] = set()
        inference_calls = inference.by_name()
        activation_stats = layer_activation_stats(train.calls)
        for call in train.calls:
            layer = call.layer
            for metric, value in activation_stats.get(call.name, {}).items():
                values[tags.make_tag(metric, call.name)] = value
            variables = [v for v in layer.trainable_variables if id(v) not in owned]
            owned.update(id(v) for v in variables)
            # One layer whose statistics cannot be built (an unusual variable
            # or layout) loses only its own; the error is reported once.
            try:
                add_variables(call.name, variables)
                state = self._record_normalization(values, call, inference_calls)
                if state is not None:
                    together.add_batch_norm(call.name, state)
            except Exception as error:
                self.skipped_layers[call.name] = error
        # Variables a subclassed model owns directly, outside any layer.
        add_variables(
            tags.MODEL_SUBJECT,
            [v for v in self.trainable_variables if id(v) not in owned],
        )
        return together.build()

    def _record_normalization(
        self, values, call: LayerCall, inference_calls
    ) -> normalization.BatchNormState | None:
        """A normalization layer's statistics into `values` (a BN layer's
        drift is left to `bn_drift_stats`: its state is returned)."""
        kind = layer_info.normalization_kind(call.layer)
        if kind == schema.BATCH:
            return self._record_batch_norm(values, call, inference_calls.get(call.name))
        if kind is not None and call.inputs is not None:
            stats = normalization.norm_layer_stats(
                call.inputs, *layer_info.scale_and_offset(call.layer)
            )
            for metric, value in stats.items():
                values[tags.make_tag(metric, call.name)] = value
        return None

    def _record_batch_norm(
        self, values, call: LayerCall, inference_call: LayerCall | None
    ) -> normalization.BatchNormState | None:
        """A BN layer's train/inference gap into `values`.

        Returns:
            Its state for `normalization.bn_drift_stats`, which builds the
            drift of all BN layers at once; `None` without a recorded input.
        """
        layer = call.layer
        if call.inputs is None:
            return None
        if call.batch_mean is not None and call.batch_variance is not None:
            batch_mean, batch_variance = call.batch_mean, call.batch_variance
        else:
            batch_mean, batch_variance = normalization.batch_statistics(
                call.inputs, layer_info.channel_axes(layer)
            )
        previous_mean, previous_variance = self._bn_snapshot[id(layer)]
        state = normalization.BatchNormState.of(
            batch_mean,
            batch_variance,
            layer.moving_mean.value,
            layer.moving_variance.value,
            epsilon=layer.epsilon,
            previous_mean=previous_mean,
            previous_variance=previous_variance,
        )
        if inference_call is not None and inference_call.outputs is not None:
            values[tags.BN_GAP.tag(call.name)] = normalization.relative_l2(
                call.outputs, inference_call.outputs
            )
        return state

    def _record_outputs(self, values, y_pred, y_infer) -> tuple[list[str], list[bool]]:
        flat_train = tree.flatten(y_pred)
        flat_infer = [] if y_infer is None else tree.flatten(y_infer)
        names = list(getattr(self.model, "output_names", None) or [])
        if isinstance(y_pred, dict):
            names = sorted(y_pred)
        if len(names) != len(flat_train):
            names = (
                ["output"]
                if len(flat_train) == 1
                else [f"output_{i}" for i in range(len(flat_train))]
            )
        classifiers = [_looks_like_classifier(t) for t in flat_train]
        for name, train, infer, classifier in zip(
            names, flat_train, flat_infer, classifiers
        ):
            for metric, value in normalization.output_gap_stats(
                train, infer, classifier
            ).items():
                values[tags.make_tag(metric, name)] = value
        return names, classifiers

    def _record_targets(self, values, y, y_pred, names, train: Recording) -> list:
        """Statistics of each output's targets and predictions; their static specs.

        Returns one dict per output: the observed layer that produced it (if
        one did), its shape, and the dtype and shape of its targets.
        """
        flat_pred = tree.flatten(y_pred)
        producers = {
            id(call.outputs): call.name
            for call in train.calls
            if call.outputs is not None
        }
        specs = []
        for name, pred, target in zip(
            names, flat_pred, _targets_by_output(y, names, len(flat_pred))
        ):
            spec = {"layer": producers.get(id(pred)), "shape": _shape(pred)}
            if spec["shape"] is not None:
                for metric, value in targets.output_stats(pred).items():
                    values[tags.make_tag(metric, name)] = value
            if _is_numeric(target) and _shape(target) is not None:
                for metric, value in targets.target_stats(target).items():
                    values[tags.make_tag(metric, name)] = value
                spec["target_dtype"] = tf.as_dtype(target.dtype).name
                spec["target_shape"] = _shape(target)
            specs.append(spec)
        return specs


def _targets_by_output(y, names: list[str], count: int) -> list:
    """The targets of each flat output, or `None` where they cannot be paired."""
    if y is None:
        return [None] * count
    if isinstance(y, dict) and all(name in y for name in names):
        return [y[name] for name in names]
    flat = tree.flatten(y)
    return flat if len(flat) == count else [None] * count


def _is_numeric(tensor) -> bool:
    if not isinstance(tensor, tf.Tensor):
        return False
    dtype = tf.as_dtype(tensor.dtype)
    return dtype.is_floating or dtype.is_integer or dtype.is_bool


def _shape(tensor) -> tuple | None:
    """The static shape, `None` for a tensor of unknown rank."""
    if tensor.shape.rank is None:
        return None
    return tuple(None if d is None else int(d) for d in tensor.shape)


def layer_activation_stats(
    calls: list[LayerCall], samples: Callable[[tf.TensorShape], int] | None = None
) -> dict:
    """`layer name -> activation statistics` of every call with an output.

    Args:
        calls: Recorded layer calls.
        samples: How many leading samples of an output of a given shape to
            summarize. Defaults to all.
    """
    observed = [call for call in calls if call.outputs is not None]
    outputs = [call.outputs for call in observed]
    if samples is not None:
        outputs = [o[: samples(o.shape)] if len(o.shape) >= 1 else o for o in outputs]
    names = [layer_info.activation_name(call.layer) for call in observed]
    stats = activations.grouped_activation_stats(outputs, names)
    return {call.name: layer_stats for call, layer_stats in zip(observed, stats)}


def _input_layer_name(tensor) -> str | None:
    """The name of the `Input` layer behind a symbolic model input."""
    history = getattr(tensor, "_keras_history", None)
    operation = getattr(history, "operation", None)
    return getattr(operation, "name", None)


def _looks_like_classifier(output) -> bool:
    """A `(batch, classes)` output with at least two classes."""
    shape = output.shape
    return len(shape) == 2 and shape[-1] is not None and shape[-1] >= 2
