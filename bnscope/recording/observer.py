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
from collections.abc import Callable, Iterator
from typing import Any

import keras

from bnscope import schema, tags
from bnscope.events import writer as event_writer
from bnscope.events.dashboard import DashboardFilter
from bnscope.recording import arguments, distribution, layer_info, run_metadata
from bnscope.recording.guard import Guard
from bnscope.recording.hooks import LayerHooks, Recording
from bnscope.recording.probe import LossFn, Probe, ProbeResult
from bnscope.recording.train_tap import requested_training

# Sees each successful write: (step, scalars, the metadata written with them).
Listener = Callable[[int, dict[str, float], schema.RunMetadata | None], None]


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
        self.model = model
        self.log_dir = arguments.log_dir(log_dir)
        self.run_dir = os.path.join(self.log_dir, tags.RUN_DIRNAME)
        self.histogram_every_n_probes = arguments.non_negative_int(
            histogram_every_n_probes, "histogram_every_n_probes"
        )
        self.strict = arguments.boolean(strict, "strict")
        self.guard = Guard(self.strict)
        self.is_chief = distribution.is_chief(model) if is_chief is None else is_chief
        self.config = dict(config or {})
        self.config.setdefault("histogram_every_n_probes", histogram_every_n_probes)
        self._loss_fn = arguments.callable_or_none(loss_fn, "loss_fn")
        self._probe: Probe | None = None
        self._hooks: LayerHooks | None = None
        self.last_probe_traced = False
        self._writer = event_writer.EventFileWriter(self.run_dir)
        # What is worth writing, and each tag's description (docs/tags.md).
        self._dashboard = DashboardFilter()
        self._run_metadata: schema.RunMetadata | None = None
        self._metadata_written = False
        self._probes = 0
        self._reported_skips: set[str] = set()
        self._training_modes: dict[str, bool] = {}
        self._requested_training: dict[str, bool] = {}
        self._batch_size: int | None = None
        self._fit: dict[str, int] = {}  # steps_per_epoch, epochs of this fit
        # Called with (step, scalars, metadata or None) after each successful
        # write: the live findings keep their in-memory copy from it.
        self.listeners: list[Listener] = []

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
        with self.guard("probe (statistics at this step were skipped)"):
            x, y, sample_weight = distribution.merge_replicas((x, y, sample_weight))
            traces = self.probe.traces
            result = self._run_probe(x, y, sample_weight, self.histograms_due())
            self.last_probe_traced = self._probe.traces != traces
            batch_size = (
                distribution.replica_batch_size(self.model, x)
                if self._batch_size is None
                else None
            )
            self.record(step, result, batch_size, extra_scalars)
            return result
        return None

    @property
    def probe(self) -> Probe:
        """The model's probe (created on first use, compiled at its first call)."""
        trainable = [id(v) for v in self.model.trainable_variables]
        if self._probe is None or self._probe.trainable_ids != trainable:
            # A new probe when what trains changed (a base unfrozen between
            # fits): gradients and update ratios follow the variables.
            self._probe = Probe(self.model, self.hooks, self._loss_fn)
        return self._probe

    def histograms_due(self) -> bool:
        """Whether the next probe computes activation histograms."""
        return (
            self.histogram_every_n_probes > 0
            and self._probes % self.histogram_every_n_probes == 0
        )

    def record(
        self,
        step: int,
        result: ProbeResult,
        batch_size: int | None,
        extra_scalars: dict[str, float] | None = None,
    ) -> None:
        """Writes what a probe measured at `step` on a batch of `batch_size`.

        `observe` calls it; so does the callback for a probe that ran inside
        the training step (`in_step.py`).
        """
        self._report_skipped_pieces()
        if self._batch_size is None:
            self._batch_size = batch_size
        self._probes += 1
        result.scalars.update(extra_scalars or {})
        self._add_python_scalars(result, step)
        self._write(step, result)

    def _run_probe(self, x, y, sample_weight, histograms: bool) -> ProbeResult:
        """One probe; a failing histogram loses only the histograms.

        The histograms are one branch of the probe's single compiled function,
        so a failure there (an op error at run time) would otherwise lose every
        statistic of the step. The retry runs the same trace, no histograms.
        """
        try:
            result = self._probe(x, y, sample_weight, with_histograms=histograms)
        except Exception as error:
            if not histograms or self.guard.strict:
                raise
            result = self._probe(x, y, sample_weight, with_histograms=False)
            self.guard.report(
                "histograms (skipped at this probe step; its scalar statistics were "
                "kept, and histograms are tried again at the next histogram probe)",
                error,
            )
        return result

    def _report_skipped_pieces(self) -> None:
        """Pieces the probe's trace left out, each reported once (strict raises)."""
        probe = self._probe
        skipped = {
            f"statistics of layer {name!r} (those of its gradient, weight and "
            "normalization statistics that could not be built are skipped from now "
            "on; every other layer is recorded)": error
            for name, error in probe.skipped_layers.items()
        }
        if probe.inference_skipped is not None:
            what = (
                "the inference-mode pass of the probe (train/inference gap statistics "
                "are skipped for this model from now on; every other statistic is "
                "recorded)"
            )
            skipped[what] = probe.inference_skipped
        for what, error in skipped.items():
            if self.guard.strict:
                raise error
            if what not in self._reported_skips:
                self._reported_skips.add(what)
                self.guard.report(what, error)

    def write_scalars(self, step: int, values: dict[str, float]) -> None:
        """Writes `tag -> value` pairs as one event at `step`."""
        if values and self.is_chief:
            values = self._dashboard.scalars(values, self._run_metadata, probe=False)
            with self._write_guard():
                self._writer.add_summary(self._dashboard.summary(values), step)
            self._notify(step, values, None)

    def write_text(self, step: int, tag: str, text: str) -> None:
        """Writes `text` under `tag` at `step`, for TensorBoard's Text dashboard."""
        if self.is_chief:
            with self._write_guard():
                self._writer.add_summary(event_writer.text_summary(tag, text), step)

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
        with self.guard("recording BatchNormalization modes"):
            self.set_requested_training(requested_training(self.model, hooks))
        with hooks.recording() as recording:
            yield
        with self.guard("recording BatchNormalization modes"):
            self.record_training_modes(recording)

    def record_training_modes(self, recording: Recording) -> None:
        """Remembers which mode each BN layer actually ran in inside `train_step`."""
        before = dict(self._training_modes)
        for call in recording.calls:
            if layer_info.is_batch_norm(call.layer):
                self._training_modes[call.name] = bool(call.training) and bool(
                    call.layer.trainable
                )
        if self._training_modes != before:
            # The modes live in the metadata only: rewrite it at the next probe.
            self._metadata_written = False

    def set_requested_training(self, requested: dict[str, bool]) -> None:
        """Layers the user called with an explicit `training=` (a frozen base)."""
        self._requested_training.update(requested)

    @property
    def failures(self) -> dict[str, int]:
        """How often each kind of diagnostic failure happened."""
        return self.guard.failures

    def start_fit(
        self, steps_per_epoch: int | None = None, epochs: int | None = None
    ) -> None:
        """Marks a new `fit`: the metadata is written again at its first probe."""
        self._metadata_written = False
        for key, value in (("steps_per_epoch", steps_per_epoch), ("epochs", epochs)):
            if value is not None:
                self._fit[key] = int(value)

    def close(self) -> None:
        """Flushes and closes the event file (safe to call more than once)."""
        with self.guard("closing the event file"):
            self._writer.close()

    def __enter__(self) -> Observer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- Internals -------------------------------------------------------------
    def _write_guard(self):
        # One warning for a directory that cannot be written, whichever write
        # hits it first; the writer then drops everything quietly.
        return self.guard(f"writing to {self.run_dir} (nothing more is recorded)")

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
        metadata = None  # what the live findings hear: only a newly written one
        if not self._metadata_written:
            metadata = self._run_metadata = self._metadata()
            summaries.append(event_writer.metadata_summary(self._run_metadata))
        scalars = self._dashboard.scalars(result.scalars, self._run_metadata)
        layout = self._dashboard.layout(scalars, self._run_metadata)
        if layout is not None:
            summaries.append(layout)
        summary = self._dashboard.summary(scalars)
        for tag, (edges, counts) in result.histograms.items():
            event_writer.histogram_value(summary, tag, edges, counts)
        summaries.append(summary)
        with self._write_guard():
            for each in summaries:
                self._writer.add_summary(each, step)
            self._metadata_written = True
        # The live findings see exactly what the event file holds.
        self._notify(step, scalars, metadata)

    def _notify(
        self,
        step: int,
        scalars: dict[str, float],
        metadata: schema.RunMetadata | None,
    ) -> None:
        if self._writer.error is None:
            for listener in self.listeners:
                listener(step, scalars, metadata)

    def _metadata(self) -> schema.RunMetadata:
        return run_metadata.build(
            self.model,
            self._probe.info,
            training_modes=self._training_modes,
            requested_training=self._requested_training,
            batch_size=self._batch_size,
            config=self.config,
            **self._fit,
        )
