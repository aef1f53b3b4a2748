"""`Observer`: probe a model at a step and write bnscope's TensorBoard run.

This is the engine behind the `BNScope` callback and the public API for custom
training loops:

```python
with bnscope.Observer(model, log_dir="logs", loss_fn=my_loss) as observer:
    for step, (x, y) in enumerate(dataset, start=1):
        if step == 1:
            with observer.watch_training_step():  # records BN training modes
                train_step(x, y)
        else:
            train_step(x, y)
        if step == 1 or step % 100 == 0:
            observer.observe(step, x, y)
```

It writes the same tags as the callback; see docs/robustness.md for
`tf.distribute` loops.
"""

from __future__ import annotations

import contextlib
import os
import platform
import warnings
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np
import tensorflow as tf

import bnscope
from bnscope import event_writer, layer_info, layout, tags
from bnscope.hooks import LayerHooks, Recording
from bnscope.probe import LossFn, Probe, ProbeResult
from bnscope.train_tap import requested_training


class Observer:
    """Measures a model on a probe batch and writes the statistics as events.

    Every diagnostic failure is caught, reported once as a `RuntimeWarning`
    naming what was skipped, and training goes on; `strict=True` re-raises.
    A log directory that cannot be written (or a full disk) is reported once,
    then nothing more is probed or written.

    In a custom loop: call `observe(step, x, y)` every few steps (probing is
    side-effect free, so any batch will do; a fixed one makes steps
    comparable), wrap the first call of your train step in
    `watch_training_step()` so BN training modes are known, and `close()` at
    the end or use the observer as a context manager. Under `tf.distribute`,
    `observe` takes the per-replica batch as is, and only the chief writes.

    Args:
        model: The Keras model to observe (TensorFlow backend).
        log_dir: Directory of TensorBoard logs; the run goes to
            `<log_dir>/bnscope/`. Defaults to `"logs"`.
        loss_fn: `(x, y, y_pred, sample_weight) -> loss` used for the probe's
            gradients (a scalar mean, as `fit` would use). Defaults to the
            model's compiled loss; an uncompiled model needs one.
        histogram_every_n_probes: Write activation histograms every this many
            probes (0 disables them). Defaults to `10`.
        strict: Re-raise diagnostic errors instead of warning. Defaults to `False`.
        is_chief: Whether this process writes. Defaults to the
            `tf.distribute` cluster's chief (always true outside multi-worker).
        config: Extra settings recorded in the run metadata.
    """

    def __init__(
        self,
        model: keras.Model,
        log_dir: str = "logs",
        *,
        loss_fn: LossFn | None = None,
        histogram_every_n_probes: int = 10,
        strict: bool = False,
        is_chief: bool | None = None,
        config: dict[str, Any] | None = None,
    ):
        if histogram_every_n_probes < 0:
            raise ValueError(
                "`histogram_every_n_probes` must be >= 0. "
                f"Received: histogram_every_n_probes={histogram_every_n_probes}"
            )
        self.model = model
        self.log_dir = os.fspath(log_dir)
        self.run_dir = os.path.join(self.log_dir, tags.RUN_DIRNAME)
        self.histogram_every_n_probes = histogram_every_n_probes
        self.strict = strict
        self.is_chief = _is_chief(model) if is_chief is None else is_chief
        self.config = dict(config or {})
        self.config.setdefault("histogram_every_n_probes", histogram_every_n_probes)
        self._loss_fn = loss_fn
        self._probe: Probe | None = None
        self._hooks: LayerHooks | None = None
        self.last_probe_traced = False
        self._writer = event_writer.EventFileWriter(self.run_dir)
        self._metadata_written = False
        self._probes = 0
        self._training_modes: dict[str, bool] = {}
        self._requested_training: dict[str, bool] = {}
        self._batch_size: int | None = None
        self._extra_metadata: dict[str, Any] = {}
        self.failures: dict[str, int] = {}

    # -- Public API ----------------------------------------------------------
    def observe(
        self,
        step: int,
        x,
        y=None,
        sample_weight=None,
        extra_scalars: dict[str, float] | None = None,
    ) -> ProbeResult | None:
        """Probes the model on `(x, y)` and writes the statistics at `step`.

        Args:
            step: The training step to record the values at.
            x: Model inputs of the probe batch.
            y: Targets, needed for gradient statistics. Defaults to `None`.
            sample_weight: Optional sample weights. Defaults to `None`.
            extra_scalars: More `tag -> value` pairs to write in the same event.

        Returns:
            The `ProbeResult`, or `None` if the probe failed (and was reported).
        """
        if self._writer.error is not None:
            return None  # nothing can be recorded: do not spend the probe
        with self._guard("probe (statistics at this step were skipped)"):
            x, y, sample_weight = _merge_replicas((x, y, sample_weight))
            if self._probe is None:
                self._probe = Probe(self.model, self.hooks, self._loss_fn)
            traces = self._probe.traces
            if self._batch_size is None:
                self._batch_size = _replica_batch_size(self.model, x)
            histograms = (
                self.histogram_every_n_probes > 0
                and self._probes % self.histogram_every_n_probes == 0
            )
            result = self._probe(x, y, sample_weight, with_histograms=histograms)
            self.last_probe_traced = self._probe.traces != traces
            self._probes += 1
            result.scalars.update(extra_scalars or {})
            self._add_python_scalars(result, step)
            self._write(step, result)
            return result
        return None

    def write_scalars(self, step: int, values: dict[str, float]) -> None:
        """Writes `tag -> value` pairs as one event at `step`."""
        if values and self.is_chief:
            with self._write_guard():
                self._writer.add_summary(event_writer.scalars_summary(values), step)

    @property
    def hooks(self) -> LayerHooks:
        """The model's layer hooks (created on first use)."""
        if self._hooks is None:
            self._hooks = LayerHooks(self.model)
        return self._hooks

    @contextlib.contextmanager
    def watch_training_step(self) -> Iterator[None]:
        """Records the mode each BN layer runs in during a custom training step.

        Wrap the call that runs (and, for a `tf.function`, traces) your train
        step, once: `bn_training_mode/<layer>` and the frozen-BN diagnostics
        then work as they do with the `BNScope` callback.
        """
        hooks = self.hooks
        with self._guard("recording BatchNormalization modes"):
            self.set_requested_training(requested_training(self.model, hooks))
        with hooks.recording() as recording:
            yield
        with self._guard("recording BatchNormalization modes"):
            self.record_training_modes(recording)

    def record_training_modes(self, recording: Recording) -> None:
        """Remembers which mode each BN layer actually ran in inside `train_step`."""
        for call in recording.calls:
            if layer_info.is_batch_norm(call.layer):
                self._training_modes[call.name] = bool(call.training) and bool(
                    call.layer.trainable
                )

    def set_requested_training(self, requested: dict[str, bool]) -> None:
        """Layers the user called with an explicit `training=` (a frozen base)."""
        self._requested_training.update(requested)

    def start_fit(self, **metadata: Any) -> None:
        """Marks a new `fit`: metadata is written again with these extra fields."""
        self._metadata_written = False
        self._extra_metadata.update(
            {k: v for k, v in metadata.items() if v is not None}
        )
        if metadata.get("batch_size"):
            self._batch_size = int(metadata["batch_size"])

    def close(self) -> None:
        """Flushes and closes the event file (safe to call more than once)."""
        with self._guard("closing the event file"):
            self._writer.close()

    def __enter__(self) -> Observer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- Internals -------------------------------------------------------------
    def _guard(self, what: str):
        return _Guard(self, what)

    def _write_guard(self):
        # One warning for a directory that cannot be written, whichever write
        # hits it first; the writer then drops everything quietly.
        return _Guard(self, f"writing to {self.run_dir} (nothing more is recorded)")

    def _add_python_scalars(self, result: ProbeResult, step: int) -> None:
        """Values known in Python rather than in the graph."""
        for name, mode in self._training_modes.items():
            result.scalars[tags.BN_TRAINING_MODE.tag(name)] = float(mode)
            layer = self._layer(name)
            if mode and layer is not None:
                window = 1.0 / max(1.0 - float(layer.momentum), 1e-12)
                result.scalars[tags.BN_EMA_PROGRESS.tag(name)] = step / window

    def _layer(self, name: str):
        return dict(self.hooks.layers).get(name)

    def _write(self, step: int, result: ProbeResult) -> None:
        if not self.is_chief:
            return
        summaries = []
        if not self._metadata_written:
            metadata = self._metadata()
            summaries.append(
                event_writer.metadata_summary(metadata, _layers_markdown(metadata))
            )
            summaries.append(layout.custom_scalars_summary(metadata))
        summary = event_writer.scalars_summary(result.scalars)
        for tag, (edges, counts) in result.histograms.items():
            event_writer.histogram_value(summary, tag, edges, counts)
        summaries.append(summary)
        with self._write_guard():
            for each in summaries:
                self._writer.add_summary(each, step)
            self._metadata_written = True

    def _metadata(self) -> dict[str, Any]:
        model = self.model
        info = self._probe.info
        layers = []
        for depth, call in enumerate(info.calls):
            layer = call.layer
            normalization = layer_info.normalization_config(layer)
            if normalization is not None and normalization["kind"] == "batch":
                normalization["training_mode"] = self._training_modes.get(call.name)
                normalization["requested_training"] = self._requested_training.get(
                    call.name
                )
            layers.append(
                {
                    "name": call.name,
                    "class": type(layer).__name__,
                    "activation": layer_info.activation_name(layer),
                    "depth": depth,
                    "params": layer_info.parameter_count(layer),
                    "trainable": bool(layer.trainable),
                    "use_bias": layer_info.uses_bias(layer),
                    "inputs_from": call.inputs_from,
                    "normalization": normalization,
                }
            )
        optimizer = getattr(model, "optimizer", None)
        metadata = {
            "schema": tags.METADATA_SCHEMA_VERSION,
            "versions": {
                "bnscope": bnscope.__version__,
                "tensorflow": tf.__version__,
                "keras": keras.__version__,
                "python": platform.python_version(),
            },
            "model": {
                "name": model.name,
                "class": type(model).__name__,
                "params": int(model.count_params()) if model.built else None,
            },
            "batch_size": self._batch_size,
            "replicas": _replicas(model),
            "optimizer": _optimizer_info(optimizer),
            "config": self.config,
            "inputs": [
                {"name": name, "dtype": dtype}
                for name, dtype in zip(info.input_names, info.input_dtypes)
            ],
            "outputs": [
                {"name": name, "classifier": classifier}
                for name, classifier in zip(info.output_names, info.classifier_outputs)
            ],
            "layers": layers,
            "gradients_skipped": info.gradients_skipped,
        }
        metadata.update(self._extra_metadata)
        return metadata


class _Guard:
    """Catches a diagnostic failure, warns once per kind, and lets training go on."""

    def __init__(self, observer: Observer, what: str):
        self.observer = observer
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, error, traceback) -> bool:
        if error is None or not isinstance(error, Exception):
            return False
        if self.observer.strict:
            return False
        failures = self.observer.failures
        key = f"{self.what}: {type(error).__name__}"
        failures[key] = failures.get(key, 0) + 1
        if failures[key] == 1:
            warnings.warn(
                f"bnscope: {self.what} failed with {type(error).__name__}: {error}. "
                "Training continues; this warning is shown once "
                "(pass strict=True to raise instead).",
                RuntimeWarning,
                stacklevel=2,
            )
        return True


def _is_chief(model: keras.Model) -> bool:
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


def _merge_replicas(batch):
    """Per-replica values (`tf.distribute`) as one batch of this worker's data."""

    def merge(value):
        if isinstance(value, tf.distribute.DistributedValues):
            parts = value.values
            return tf.concat(parts, axis=0) if len(parts) > 1 else parts[0]
        return value

    return tf.nest.map_structure(merge, batch)


def _replicas(model: keras.Model) -> int:
    strategy = getattr(model, "distribute_strategy", None)
    return int(getattr(strategy, "num_replicas_in_sync", 1) or 1)


def _replica_batch_size(model: keras.Model, x) -> int | None:
    """The batch each replica's BN normalizes over: this worker's share per device."""
    size = _batch_size(x)
    if size is None or _replicas(model) <= 1:
        return size
    # Only distribution strategies have worker devices (the default raises).
    devices = len(model.distribute_strategy.extended.worker_devices)
    return max(size // devices, 1)


def _batch_size(x) -> int | None:
    for tensor in tf.nest.flatten(x):
        shape = getattr(tensor, "shape", None)
        if shape is not None and len(shape) and shape[0] is not None:
            return int(shape[0])
    return None


def _optimizer_info(optimizer) -> dict[str, Any] | None:
    if optimizer is None:
        return None
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    learning_rate = None
    # A schedule has no single rate; the optimizer class is still useful.
    with contextlib.suppress(TypeError, ValueError, AttributeError):
        learning_rate = float(np.asarray(inner.learning_rate))
    return {"class": type(optimizer).__name__, "learning_rate": learning_rate}


def _layers_markdown(metadata: dict[str, Any]) -> str:
    rows = [
        "| depth | layer | class | activation | params | normalization |",
        "|---|---|---|---|---|---|",
    ]
    for layer in metadata["layers"]:
        norm = layer["normalization"]
        rows.append(
            f"| {layer['depth']} | {layer['name']} | {layer['class']} | "
            f"{layer['activation'] or ''} | {layer['params']} | "
            f"{norm['kind'] if norm else ''} |"
        )
    return "\n".join(rows)
