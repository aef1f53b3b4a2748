"""The `BNScope` Keras callback."""

from __future__ import annotations

import os
import time
import warnings
import weakref
from collections.abc import Sequence
from typing import Any

import keras

from bnscope.recording import arguments, in_step, step_stats
from bnscope.recording.exact_gradients import StepGradientNorms
from bnscope.recording.live import LiveFindings
from bnscope.recording.observer import Observer
from bnscope.recording.probe import LossFn
from bnscope.recording.schedule import ProbeSchedule, running_mean
from bnscope.recording.step_stats import StepStatistics
from bnscope.recording.train_tap import TrainFunctionTap, requested_training

# With `every_n_steps=None`, probes are spaced so their process CPU time stays
# within this fraction of training's (target: ≤ 3% overhead, docs/callback.md).
DEFAULT_OVERHEAD_BUDGET = 0.01

# The BNScope recording each model in a fit now, and that fit's `params`:
# Keras hands every callback of one fit the same `params` dict, so a second
# BNScope in the same fit is told apart from one left by a fit that raised.
_RECORDING: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class BNScope(keras.callbacks.Callback):
    """Records per-layer training diagnostics as TensorBoard events.

    Every few steps (and at epoch ends) bnscope measures the model on a fixed
    probe batch: activation statistics of every leaf layer, gradient and weight
    norms, BatchNormalization drift against its moving statistics, and the
    gap between training- and inference-mode outputs. The probe is compiled
    and side-effect free: with or without `BNScope`, the same seed gives
    bit-identical weights. Read the run with `bnscope summarize LOGDIR` or
    `tensorboard --logdir LOGDIR`.

    Tags written to `<log_dir>/bnscope/` (all documented in `docs/tags.md`):
    `act_{mean,std,min,max}/<layer>`, `act_{zero_frac,dead_frac}/<layer>`
    (ReLU-family layers), `act_saturated_frac/<layer>` (hidden sigmoid/tanh-like
    layers), `act_hist/<layer>`, `grad_{norm,norm_log10}/<layer>`,
    `grad_var_norm/<layer>:<var>`, `weight_norm/<layer>`, `update_ratio/<layer>`,
    `bn_{mean_shift,mean_shift_max,log_var_ratio,log_var_ratio_max}/<layer>`,
    `bn_{moving_change,ema_progress,gap}/<layer>`,
    `norm_in_{mean,std}/<layer>`, `gamma_{mean,std}/<layer>`,
    `beta_{mean,std}/<layer>`, `gap_{rel_l2,argmax_agreement}/<output>`,
    `output_{mean,min,max,spread}/<output>`,
    `target_{min,max,mean,std,distinct,integral,onehot_frac}/<output>`,
    `input_{mean,std,min,max}/<input>`, `loss/model`, `nonfinite_total/model`,
    `grad_global_norm/model`, and with `exact_gradients=True` (or in full mode)
    `step_grad_norm/<layer>` and `step_grad_global_norm/model`. NaN/Inf
    counters `act_nonfinite/<layer>`, `grad_nonfinite/<layer>`,
    `weight_nonfinite/<layer>` and `loss_nonfinite/model` appear from their
    first non-zero count on. Logs written before bnscope kept BN modes in the
    metadata also hold `bn_training_mode/<layer>`. At the end of each `fit`,
    the findings go to `bnscope/findings` as markdown.

    While training, bnscope runs the rules of `bnscope summarize` on what it
    recorded (at the first probe, as soon as a probe sees a NaN/Inf, and at
    every epoch end), prints each new finding once beside the progress bar,
    and adds the open findings by severity to the epoch `logs` as
    `bnscope_errors`, `bnscope_warnings` and `bnscope_infos` (for
    `EarlyStopping`, `CSVLogger`, ...: list `BNScope` before them).

    Args:
        log_dir: Directory of TensorBoard logs, as for
            `keras.callbacks.TensorBoard`. Defaults to `"logs"`.
        every_n_steps: Probe every this many training steps (and at every
            epoch end). Defaults to `None`: probes are spaced by measured cost
            so they take at most `overhead_budget` of training's CPU time.
            `1` is full mode: activation statistics and exact gradient norms
            of every training step are computed inside the step itself (on
            its first 32 samples), and the probe runs on the budget.
        probe_data: `x`, `(x, y)` or `(x, y, sample_weight)` to probe on.
            Defaults to `None`: the first training batch of each `fit`.
        histogram_every_n_probes: Write activation histograms every this many
            probes; 0 disables them. Defaults to `10`.
        exact_gradients: Also record the exact gradient norms of every
            training step, by wrapping the optimizer's `apply`. Defaults to
            `False`.
        overhead_budget: Fraction of training CPU time probes may use when
            `every_n_steps` is `None`. Defaults to `0.01`.
        strict: Raise diagnostic errors instead of warning once and going on.
            Defaults to `False`.
        loss_fn: `(x, y, y_pred, sample_weight) -> loss` for the probe's
            gradients, for models whose custom `train_step` computes a loss
            `compile()` does not know. Defaults to `model.compute_loss`.
        alerts: Lowest severity of the live findings printed during `fit`:
            `"error"`, `"warning"` or `"info"`; `None` prints none. Defaults
            to `"warning"`.
        verbose: Whether to print live findings: `None` prints when `fit`
            shows progress (`verbose` 1 or 2), `True` even with `verbose=0`,
            `False` never. Defaults to `None`.
        in_step: Compile the probe into Keras' own train step and probe each
            chosen step on its own batch, instead of running a separate
            compiled probe on a fixed batch (docs/callback.md). Measured on
            MobileNetV2 (docs/performance.md): probe steps cost less, the
            one-time cost is about the same, and peak memory is higher
            (2.6x plain `fit` instead of 1.9x), so it is off by default.
            Models it cannot run in are probed separately. Defaults to
            `False`.
        halt_on: A rule id or a severity, or a sequence of them (a severity
            means that severity or worse), e.g. `("nonfinite",)` or
            `"error"`: when such a finding appears, bnscope writes everything,
            sets `model.stop_training` and says why in one line naming the
            step and layer. Defaults to `None`: never stop.

    Example:

    ```python
    model.fit(x, y, epochs=5, callbacks=[bnscope.BNScope(halt_on="nonfinite")])
    # then: bnscope summarize logs
    ```
    """

    def __init__(
        self,
        log_dir: str = "logs",
        every_n_steps: int | None = None,
        probe_data: Any = None,
        histogram_every_n_probes: int = 10,
        exact_gradients: bool = False,
        overhead_budget: float = DEFAULT_OVERHEAD_BUDGET,
        strict: bool = False,
        loss_fn: LossFn | None = None,
        alerts: str | None = "warning",
        verbose: bool | None = None,
        halt_on: str | Sequence[str] | None = None,
        in_step: bool = False,
    ):
        super().__init__()
        if keras.backend.backend() != "tensorflow":
            raise ValueError(
                "BNScope needs the TensorFlow backend. "
                f"Received: keras.backend.backend()={keras.backend.backend()!r}"
            )
        self.log_dir = arguments.log_dir(log_dir)
        self.every_n_steps = arguments.positive_int_or_none(
            every_n_steps, "every_n_steps"
        )
        self.histogram_every_n_probes = arguments.non_negative_int(
            histogram_every_n_probes, "histogram_every_n_probes"
        )
        self.exact_gradients = arguments.boolean(exact_gradients, "exact_gradients")
        self.overhead_budget = arguments.open_fraction(
            overhead_budget, "overhead_budget"
        )
        self.strict = arguments.boolean(strict, "strict")
        self.in_step = arguments.boolean(in_step, "in_step")
        self.loss_fn = arguments.callable_or_none(loss_fn, "loss_fn")
        self.probe_data = _as_batch(probe_data) if probe_data is not None else None
        self.live = LiveFindings(alerts=alerts, verbose=verbose, halt_on=halt_on)
        self.observer: Observer | None = None
        self.schedule = ProbeSchedule(self.every_n_steps, self.overhead_budget)
        self._tap: TrainFunctionTap | None = None
        self._step_norms: StepGradientNorms | None = None
        self._step_stats: StepStatistics | None = None
        self._in_step: in_step.InStepProbe | None = None
        self._armed = False  # the coming (or just run) step is a probe step
        self._in_step_traces = 0  # the probe's traces at its last probe step
        # A probe step's statistics failed at run time: probe separately, for
        # good (the same compiled statistics would fail again).
        self._in_step_failed = False
        self._probe_next = False  # a NaN/Inf loss: probe the next step
        self._plain_step_cpu: float | None = None  # typical step without a probe
        self._batch = self.probe_data
        self._mark = 0.0
        self._base_step = 0
        self._steps_done = 0
        self._last_batch = -1

    # -- Keras hooks ---------------------------------------------------------------
    def on_train_begin(self, logs=None):
        self._claim_model()
        # Steps this callback already recorded for this model: loss scaling
        # skips steps without counting them in `optimizer.iterations`, and a
        # later fit must still append rather than rewrite those steps.
        recorded = 0
        if self.observer is not None and self.observer.model is self.model:
            recorded = self._step()
        if self.observer is None or self.observer.model is not self.model:
            self.observer = Observer(
                self.model,
                self.log_dir,
                loss_fn=self.loss_fn,
                histogram_every_n_probes=self.histogram_every_n_probes,
                strict=self.strict,
                config={
                    "every_n_steps": self.every_n_steps,
                    "overhead_budget": self.overhead_budget,
                    "exact_gradients": self.exact_gradients,
                    "in_step": self.in_step,
                    "probe_data": "given"
                    if self.probe_data is not None
                    else "first batch",
                },
            )
        observer = self.observer
        self.live.attach(observer)
        self.live.start_fit(self.model, self.params)
        self._batch = self.probe_data
        self._epochs_seen = 0
        self._base_step = max(_optimizer_step(self.model), recorded)
        self._steps_done = 0
        params = self.params or {}
        observer.start_fit(
            steps_per_epoch=params.get("steps"),
            epochs=params.get("epochs"),
        )
        with observer.guard("setting up observation"):
            hooks = observer.hooks
            observer.set_requested_training(requested_training(self.model, hooks))
            self._instrument_train_step(hooks)
            # The probe in the step needs no batch of its own (but for the end
            # of an epoch of unknown length). Taking one off the iterator runs
            # Keras' first step through its Python-iterator path, which costs
            # Keras a second trace of its step.
            separate = not self._in_step or params.get("steps") is None
            self._install_tap(capture=self.probe_data is None and separate)
        # Full mode reads statistics from the training step at every step, a
        # trend already: the probe (BN drift, the train/inference gap,
        # histograms) then runs on the budget and once per epoch, not spread.
        full = self._step_stats is not None
        self.schedule.every_n_steps = None if full else self.every_n_steps
        self.schedule.spread = not full
        self._mark = time.process_time()

    def on_epoch_begin(self, epoch, logs=None):
        self._last_batch = -1
        if self._epochs_seen == 0:
            # Here, not in on_train_begin: `epoch` is `initial_epoch`, so a
            # resumed fit's length is known.
            params = self.params or {}
            steps, epochs = params.get("steps"), params.get("epochs")
            total = steps * (epochs - epoch) if steps and epochs else None
            self.schedule.start_fit(first_step=self._base_step + 1, total_steps=total)
        self._epochs_seen += 1
        self.schedule.start_epoch()

    def on_train_batch_begin(self, batch, logs=None):
        if self._in_step is None:
            return
        step = self._step() + 1
        steps = (self.params or {}).get("steps")
        last = steps is not None and batch == steps - 1
        # The epoch's own probe, where it had none: at its last step for a
        # fixed `every_n_steps`; at its last full batch by default, since the
        # last may be a remainder of a few samples whose batch statistics say
        # little (a spread or budget probe due there waits one step).
        epoch_probe = last
        if self.schedule.every_n_steps is None and steps is not None and steps > 1:
            if last:
                return
            epoch_probe = batch == steps - 2
        if (
            self._probe_next
            or self.schedule.due(step)
            or (epoch_probe and self.schedule.due_at_epoch_end(step))
        ):
            self._probe_next = False
            with self.observer.guard("preparing a probe step"):
                self._in_step.arm(self.observer.histograms_due())
                self._armed = True
        self._mark = time.process_time()

    def on_train_batch_end(self, batch, logs=None):
        elapsed = time.process_time() - self._mark
        # `batch` is the last step's index in the epoch (steps_per_execution
        # may cover several); counting in Python avoids a device read per step.
        self._steps_done += batch - self._last_batch
        self._last_batch = batch
        step = self._step()
        if self._armed:
            elapsed -= self._record_probe_step(step, elapsed)
        else:
            self._plain_step_cpu = running_mean(self._plain_step_cpu, elapsed)
        self.schedule.add_training_time(elapsed)
        # A NaN/Inf loss is probed at once (in the step: the next one), so
        # the live findings name its layer.
        nonfinite_loss = self.live.loss_went_nonfinite(logs)
        self._probe_next = nonfinite_loss and self._in_step is not None
        if step == self.schedule.last_probe_step:
            pass  # probed inside the step
        elif self._due(step) or (nonfinite_loss and self._batch is not None):
            self._probe(step)
        elif self._step_stats is not None and not self._epoch_probe_follows(batch):
            with self.observer.guard("writing training-step statistics"):
                self.observer.write_scalars(step, self._step_values())
        self.live.end_batch(step)
        self._mark = time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        step = self._step()
        if self._armed:  # the data ended before the armed step ran
            self._in_step.disarm()
            self._armed = False
        # In-step, an epoch of known length had its probe before its end.
        in_step_epoch = self._in_step is not None and (self.params or {}).get("steps")
        if (
            self._batch is not None
            and not in_step_epoch
            and self.schedule.due_at_epoch_end(step)
        ):
            self._probe(step)
        self.live.end_epoch(step, logs)
        self._mark = time.process_time()

    def on_train_end(self, logs=None):
        self.live.end_fit(self._step())
        self._cleanup()
        entry = _RECORDING.get(self.model)
        if entry is not None and entry[0]() is self:
            del _RECORDING[self.model]

    # -- Internals -------------------------------------------------------------------
    def _claim_model(self) -> None:
        """Refuses a second model, or a second BNScope in one fit, clearly.

        Either would silently lose data: two callbacks on one model fight over
        its layer hooks and train function, and a second model's run would
        replace the first's in `<log_dir>/bnscope/` (its steps start at 1).
        """
        model = self.model
        if self.observer is not None and self.observer.model is not model:
            raise ValueError(
                f"This BNScope already recorded model {self.observer.model.name!r} "
                f"to {self.observer.run_dir}; model {model.name!r} would replace "
                "that run. Use one BNScope per model, each with its own log_dir, "
                f"e.g. BNScope(log_dir={os.path.join(self.log_dir, model.name)!r})."
            )
        entry = _RECORDING.get(model)
        other = entry[0]() if entry is not None else None
        if other is not None and self.params and entry[1] is self.params:
            # Undo the first one's instruments too: the fit stops here.
            other._cleanup()
            del _RECORDING[model]
            which = (
                "the same BNScope instance is passed twice"
                if other is self
                else f"two BNScope callbacks (log_dir={other.log_dir!r} and "
                f"log_dir={self.log_dir!r}) are passed"
            )
            raise ValueError(
                f"{which} to one fit of model {model.name!r}; only one could "
                "record. Pass a single BNScope callback."
            )
        _RECORDING[model] = (weakref.ref(self), self.params)

    def _set_batch(self, batch: tuple) -> None:
        self._batch = batch

    def _install_tap(self, capture: bool) -> None:
        """Keras' next step records BN modes, and gives its batch if `capture`."""
        observer = self.observer
        self._tap = TrainFunctionTap(
            self.model,
            observer.hooks,
            on_batch=self._set_batch if capture else None,
            on_trace=observer.record_training_modes,
            guard=observer.guard,
            on_failure=self._first_step_failed,
        )
        self._tap.install()

    def _step(self) -> int:
        return self._base_step + self._steps_done

    def _instrument_train_step(self, hooks) -> None:
        """Compile bnscope into the train step: the probe, where it can run
        there (`in_step.unsupported`), full mode and `exact_gradients`."""
        self._in_step = None
        if (
            self.in_step
            and self.every_n_steps != 1
            and self.probe_data is None
            and self.loss_fn is None
            and not self._in_step_failed
            and in_step.unsupported(self.model) is None
        ):
            with self.observer.guard(
                "compiling the probe into the training step (bnscope probes "
                "separately instead)"
            ):
                self._in_step = in_step.attach(self.model, self.observer.probe)
                self._in_step_traces = self._in_step.probe.traces
        if self.every_n_steps == 1 and self._step_stats is None:
            reason = step_stats.supported(self.model)
            if reason is None:
                self._step_stats = StepStatistics(
                    self.model, hooks, self.observer.guard
                )
                self._step_stats.install()
            else:
                warnings.warn(
                    f"bnscope: full mode probes every step instead of reading "
                    f"statistics from the training step, because {reason}; "
                    "expect roughly twice the training time.",
                    RuntimeWarning,
                    stacklevel=3,
                )
        wants_norms = self.exact_gradients or self._step_stats is not None
        if wants_norms and self._step_norms is None:
            self._step_norms = StepGradientNorms(self.model, hooks)
            self._step_norms.install()
        if wants_norms:
            self.model.make_train_function(force=True)

    def _step_values(self) -> dict[str, float]:
        values: dict[str, float] = {}
        if self._step_stats is not None:
            values.update(self._step_stats.read())
        if self._step_norms is not None:
            values.update(self._step_norms.read())
        return values

    def _due(self, step: int) -> bool:
        # With the in-step probe, steps are picked before they run.
        return (
            self._batch is not None
            and self._in_step is None
            and self.schedule.due(step)
        )

    def _epoch_probe_follows(self, batch: int) -> bool:
        """Whether `on_epoch_end` probes this step (and writes its training-step
        statistics with the probe's): only known for epochs of known length."""
        steps = (self.params or {}).get("steps")
        return (
            batch == (steps or 0) - 1
            and self._batch is not None
            and self._in_step is None
            and self.schedule.due_at_epoch_end(self._step())
        )

    def _first_step_failed(self, error: Exception) -> dict | None:
        """The first step's logs if it completed and only the probe failed.

        If not, Keras' step is traced again without bnscope: probe separately.
        """
        if self._in_step is None:
            return None
        logs = self._in_step.completed(error)
        if logs is None:
            self._in_step.uninstall()
            self._in_step = None
            self._armed = False
        return logs

    def _record_probe_step(self, step: int, elapsed: float) -> float:
        """Writes what the probe measured inside step `step`; returns its cost.

        A probe step whose statistics failed at run time (the step itself
        completed) is reported once, and probes run separately from then on.
        """
        probe = self._in_step
        self._armed = False
        probe.disarm()
        traced = probe.probe.traces != self._in_step_traces
        self._in_step_traces = probe.probe.traces
        result = probe.read() if probe.run_error is None else None
        if result is None:
            # Not compiled into this step (`probe.build_error`) or failed in
            # it: probe separately, on the next step's batch.
            self._in_step = None
            if self._batch is None:
                with self.observer.guard("capturing a probe batch"):
                    self._install_tap(capture=True)
            if probe.run_error is not None:
                self._in_step_failed = True
                with self.observer.guard(
                    "statistics inside the training step (the step itself "
                    "completed; bnscope probes separately from now on)"
                ):
                    raise probe.run_error
            return 0.0
        with self.observer.guard("probe (statistics at this step were skipped)"):
            self.observer.record(step, result, probe.batch_size(), self._step_values())
        # What the probe added to this step: beyond a typical step's CPU.
        plain = self._plain_step_cpu
        cost = max(elapsed - plain, 0.0) if plain is not None else 0.0
        self.schedule.probed(step, cost, traced=traced or plain is None)
        return cost

    def _probe(self, step: int) -> None:
        start = time.process_time()
        x, y, sample_weight = self._batch
        extra = None
        with self.observer.guard("reading training-step statistics"):
            extra = self._step_values()
        self.observer.observe(step, x, y, sample_weight, extra_scalars=extra)
        self.schedule.probed(
            step, time.process_time() - start, traced=self.observer.last_probe_traced
        )

    def _cleanup(self) -> None:
        if self._tap is not None:
            self._tap.remove()
            self._tap = None
        if self._in_step is not None:
            self._in_step.disarm()  # stays compiled in, for the next fit
            self._armed = False
        rebuild = False
        for instrument in (self._step_stats, self._step_norms):
            if instrument is not None:
                instrument.remove()
                rebuild = True
        self._step_stats = self._step_norms = None
        if rebuild:
            # Leave the user's model with Keras' own, uninstrumented step.
            with self.observer.guard("restoring the train function"):
                self.model.make_train_function(force=True)
        if self.observer is not None:
            self.observer.close()


def _optimizer_step(model: keras.Model) -> int:
    """Steps the model has trained so far, so resumed training appends."""
    iterations = getattr(getattr(model, "optimizer", None), "iterations", None)
    try:
        return int(iterations.numpy())
    except (AttributeError, TypeError, ValueError):
        return 0


def _as_batch(data: Any) -> tuple:
    if isinstance(data, tuple) and 1 <= len(data) <= 3:
        return keras.utils.unpack_x_y_sample_weight(data)
    return (data, None, None)
