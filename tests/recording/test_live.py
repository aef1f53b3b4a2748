"""Live findings: said once while `fit` trains, the same as `bnscope summarize` after.

The first half drives `LiveFindings` with synthetic probes through a stand-in
observer; the second trains real Keras models with `BNScope` and checks what
was printed against what the event files say, read back independently.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import warnings

import keras
import numpy as np
import pytest

from bnscope import BNScope, tags
from bnscope.analysis.reader import read_run
from bnscope.analysis.rules import SEVERITY_RANK
from bnscope.analysis.runs import Run, Series
from bnscope.analysis.summary import summarize
from bnscope.events.markdown import findings_markdown
from bnscope.recording import live as live_module
from bnscope.recording import live_lines
from bnscope.recording.guard import Guard
from bnscope.recording.live import LiveFindings
from bnscope.recording.live_store import LiveSeriesStore
from tests.support import eventdata, models
from tests.support.synthetic_runs import SICK_RUNS, mlp_bn

# -- A stand-in observer: what LiveFindings uses of `Observer` --------------------


class FakeObserver:
    def __init__(self, strict: bool = True):
        self.listeners = []
        self.guard = Guard(strict=strict)
        self.run_dir = "logs/bnscope"
        self.texts: list[tuple[int, str, str]] = []

    def write(self, step, values, metadata=None):
        for listener in self.listeners:
            listener(step, values, metadata)

    def write_text(self, step, tag, text):
        self.texts.append((step, tag, text))


class FakeModel:
    stop_training = False


def reported(run):
    """What `bnscope summarize` reports for `run`: the live findings' reference."""
    return summarize(run).findings


def attached(fit_verbose=2, strict=True, **kwargs):
    live = LiveFindings(**kwargs)
    observer, model = FakeObserver(strict), FakeModel()
    live.attach(observer)
    live.start_fit(model, {"verbose": fit_verbose})
    return live, observer, model


def feed(live, observer, synthetic, probes=None, epoch_end=True):
    """One probe per epoch: write it, end the batch, end the epoch; logs per epoch."""
    logs = []
    metadata = synthetic.metadata()
    for index in range(len(synthetic.steps) if probes is None else probes):
        step = synthetic.steps[index]
        observer.write(
            step, synthetic.probe_values(index), metadata if index == 0 else None
        )
        live.end_batch(step)
        if epoch_end:
            epoch_logs = {}
            live.end_epoch(step, epoch_logs)
            logs.append(epoch_logs)
    return logs


def bnscope_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("bnscope: ")]


def flapping_dead_relu():
    """Dead ReLUs in three episodes: probes 5–9, 16–20 and 27–31 (every 50 steps)."""
    run = mlp_bn(steps=range(0, 2001, 50))
    dead = np.full(len(run.steps), 0.02)
    for lo, hi in ((5, 10), (16, 21), (27, 32)):
        dead[lo:hi] = 0.8
    run.set("act_dead_frac", "activation", dead)
    return run


# -- Said once --------------------------------------------------------------------


def test_a_finding_is_said_once_cleared_once_and_returns_once(capsys):
    live, observer, _ = attached()
    logs = feed(live, observer, flapping_dead_relu())
    lines = [
        line for line in bnscope_lines(capsys.readouterr().out) if "dead_relu" in line
    ]
    assert len(lines) == 3, lines
    # Two hits in a majority of the last 5 probes: open at probe 7 (step 350),
    # dated from its first hit; closed when fewer than 3 of 5 hold (probe 12).
    assert lines[0].startswith("bnscope: WARN dead_relu at step 250: 80% of the units")
    assert " → lower the learning rate" in lines[0]
    assert lines[1] == (
        "bnscope: cleared dead_relu in activation at step 600 (open since step 250)"
    )
    assert lines[2].startswith("bnscope: WARN dead_relu returns at step 800: ")
    # The second clear and return are silent, but the logs follow every change.
    open_by_probe = [entry["bnscope_warnings"] for entry in logs][7:]
    assert open_by_probe == [1] * 5 + [0] * 6 + [1] * 5 + [0] * 6 + [1] * 5 + [0] * 7


def test_logs_hold_open_findings_by_severity():
    live, observer, _ = attached()
    logs = feed(live, observer, SICK_RUNS["nonfinite"]())
    assert set(logs[-1]) == {"bnscope_errors", "bnscope_warnings", "bnscope_infos"}
    final = reported(
        Run("bnscope", "x", live.store.series(), SICK_RUNS["nonfinite"]().metadata())
    )
    for severity, key in live_module.LOG_KEYS.items():
        assert logs[-1][key] == sum(f.severity == severity for f in final)
    assert logs[-1]["bnscope_errors"] == 1
    assert logs[0]["bnscope_errors"] == 0


def test_the_first_probe_is_judged_at_once(capsys):
    live, observer, _ = attached()
    feed(live, observer, SICK_RUNS["small_batch_bn"](), probes=1, epoch_end=False)
    (line,) = bnscope_lines(capsys.readouterr().out)
    assert line.startswith("bnscope: WARN small_batch_bn at step 0: ")


def test_a_nonfinite_probe_is_judged_at_once_without_waiting_for_the_epoch(capsys):
    live, observer, model = attached(halt_on="nonfinite")
    synthetic = SICK_RUNS["nonfinite"]()
    feed(live, observer, synthetic, epoch_end=False)
    first_bad = synthetic.steps[int(np.argmax(synthetic.progress >= 0.6))]
    lines = bnscope_lines(capsys.readouterr().out)
    assert lines[0].startswith(f"bnscope: ERROR nonfinite at step {first_bad}: ")
    assert "dense_1" in lines[0]
    assert lines[1] == (
        f"bnscope: stopping training at step {first_bad}: nonfinite in dense_1 "
        f"since step {first_bad} (halt_on=nonfinite)"
    )
    assert model.stop_training
    assert live.halted[1] == first_bad and live.halted[0].layer == "dense_1"
    assert len(lines) == 2  # said once, stopped once


@pytest.mark.parametrize(
    "halt_on, stops",
    [
        ("error", True),
        (("dead_relu", "nonfinite"), True),
        ("warning", True),  # a severity means that severity or worse
        ("dead_relu", False),
        (None, False),
    ],
)
def test_halt_on_takes_rule_ids_or_a_severity(halt_on, stops):
    live, observer, model = attached(halt_on=halt_on)
    feed(live, observer, SICK_RUNS["nonfinite"]())
    assert model.stop_training is stops
    assert (live.halted is not None) is stops


def test_settling_findings_wait_for_the_end_of_fit_and_never_stop_training(capsys):
    # Every BN run starts with unconverged moving statistics (a warning below
    # one EMA window): said at the end, if still open, and never a reason to stop.
    live, observer, model = attached(halt_on="warning", alerts="info")
    logs = feed(live, observer, mlp_bn(), probes=4)
    assert logs[0]["bnscope_warnings"] == 1  # below one window: a warning...
    assert [f.rule for f in live.findings] == ["bn_ema_not_converged"]
    assert not bnscope_lines(capsys.readouterr().out)
    assert not model.stop_training
    live.end_fit(150)
    (line,) = bnscope_lines(capsys.readouterr().out)
    assert line.startswith("bnscope: INFO bn_ema_not_converged at step 0: ")


@pytest.mark.parametrize(
    "kwargs, fit_verbose, printed",
    [
        ({}, 1, True),
        ({}, 2, True),
        ({}, "auto", True),
        ({}, 0, False),  # quiet like the progress bar...
        ({"verbose": True}, 0, True),  # ...unless asked
        ({"verbose": False}, 1, False),
        ({"alerts": None}, 1, False),
        ({"alerts": "error"}, 1, False),  # the run has warnings only
    ],
)
def test_what_is_printed_follows_alerts_and_verbose(
    kwargs, fit_verbose, printed, capsys
):
    live, observer, _ = attached(fit_verbose=fit_verbose, **kwargs)
    logs = feed(live, observer, flapping_dead_relu(), probes=8)
    assert bool(bnscope_lines(capsys.readouterr().out)) is printed
    assert logs[-1]["bnscope_warnings"] == 1  # the logs get the counts regardless


def test_the_findings_are_written_as_markdown_at_the_end_of_fit():
    live, observer, _ = attached(halt_on="nonfinite")
    feed(live, observer, SICK_RUNS["nonfinite"]())
    live.end_fit(1000)
    ((step, tag, text),) = observer.texts
    assert (step, tag) == (1000, tags.FINDINGS_TAG)
    finding, stopped_at = live.halted
    assert text == findings_markdown(
        live.findings,
        1000,
        f"at step {stopped_at}: nonfinite in dense_1 since step {finding.step} "
        "(halt_on=nonfinite)",
    )


def test_nothing_is_written_before_anything_was_recorded():
    live, observer, _ = attached()
    live.end_epoch(0, {})
    live.end_fit(0)
    assert observer.texts == []


def test_an_episode_keeps_its_first_step_after_old_values_are_dropped():
    live, observer, _ = attached()
    live.store = LiveSeriesStore(head=2, tail=6)
    synthetic = SICK_RUNS["vanishing_gradient"]()
    feed(live, observer, synthetic)
    assert live.store.dropped
    (finding,) = [f for f in live.findings if f.rule == "vanishing_gradient"]
    assert finding.step == synthetic.steps[0]  # as summarize dates it
    whole = LiveSeriesStore()
    for index, step in enumerate(synthetic.steps):
        whole.add(step, synthetic.probe_values(index), synthetic.metadata())
    assert finding == next(
        f for f in reported(whole.run("b", "x")) if f.rule == "vanishing_gradient"
    )


def test_a_new_observer_starts_afresh(capsys):
    live, observer, _ = attached()
    feed(live, observer, flapping_dead_relu(), probes=8)
    assert live.findings
    live.attach(FakeObserver())
    assert live.findings == () and not live.store.rows


def test_the_batch_loss_going_nonfinite_is_noticed_once():
    live, _, _ = attached()
    assert not live.loss_went_nonfinite({"loss": 0.5})
    assert not live.loss_went_nonfinite({})
    assert live.loss_went_nonfinite({"loss": math.nan})
    assert not live.loss_went_nonfinite({"loss": math.inf})  # once per fit
    live.start_fit(FakeModel(), {"verbose": 1})
    assert live.loss_went_nonfinite({"loss": math.inf})


def test_a_failure_warns_once_and_training_goes_on(monkeypatch, capsys):
    def broken(run):
        raise RuntimeError("rules exploded")

    monkeypatch.setattr(live_module, "summarize", broken)
    live, observer, _ = attached(strict=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        feed(live, observer, flapping_dead_relu(), probes=5)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "rules exploded" in messages[0]
    assert "live findings" in messages[0]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"alerts": "loud"}, "Received: alerts='loud'"),
        ({"alerts": 1}, "Received: alerts=1"),
        ({"verbose": 1}, "Received: verbose=1"),
        ({"halt_on": "nonfinit"}, "Received: halt_on='nonfinit'"),
        ({"halt_on": ("nonfinite", 3)}, r"Received: halt_on=\('nonfinite', 3\)"),
        ({"halt_on": ()}, r"Received: halt_on=\(\)"),
    ],
)
def test_invalid_arguments_echo_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BNScope(**kwargs)


def test_arguments_are_normalized():
    live = LiveFindings(alerts="WARNING", halt_on=["NONFINITE", "error", "nonfinite"])
    assert live.alerts == "warning"
    assert live.halt_on == ("nonfinite", "error")


# -- In a real fit ---------------------------------------------------------------

DIGITS_EPOCHS = 3


def fit_digits(log_dir, batch_norm: bool, verbose=2, **kwargs):
    """A demo MLP on scikit-learn's digits; returns (callback, history, stdout)."""
    from bnscope import demo

    x, y, _, _ = demo.load_digits(0)
    keras.utils.set_random_seed(0)
    # 3 epochs are 135 steps: with BN momentum 0.99 the moving statistics have
    # seen 1.35 EMA windows and inference mode rightly disagrees on some
    # batches; 0.9 (13.5 windows) makes the healthy model healthy.
    model = demo.build_model(batch_norm, momentum=0.9)
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    callback = BNScope(log_dir=str(log_dir), every_n_steps=10, **kwargs)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        history = model.fit(
            x,
            y,
            batch_size=32,
            epochs=DIGITS_EPOCHS,
            verbose=verbose,
            callbacks=[callback],
        )
    return callback, history, out.getvalue()


@pytest.fixture(scope="module")
def sick_fit(tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("sick")
    callback, history, out = fit_digits(log_dir, batch_norm=False)
    return callback, history, out, os.path.join(log_dir, tags.RUN_DIRNAME)


def truncated(run: Run, last_step: int) -> Run:
    """The run as it stood at `last_step`."""
    scalars = {}
    for tag, series in run.scalars.items():
        keep = series.steps <= last_step
        if keep.any():
            scalars[tag] = Series(series.steps[keep], series.values[keep])
    return Run(run.name, run.path, scalars, run.metadata)


def expected_lines(run: Run, evaluation_steps: list[int]) -> list[list[str]]:
    """What should be said at each evaluation, recomputed from the event file."""
    said: dict[tuple, dict] = {}
    by_evaluation = []
    for step in evaluation_steps:
        findings = [
            f
            for f in reported(truncated(run, step))
            if SEVERITY_RANK[f.severity] <= SEVERITY_RANK["warning"]
            and f.rule not in live_module.SETTLES_WITH_TRAINING
        ]
        keys, ranks = [], {}
        for f in findings:
            base = (f.rule, f.severity, f.layer)
            keys.append((*base, ranks.setdefault(base, 0)))
            ranks[base] += 1
        lines = []
        for key, f in zip(keys, findings):
            state = said.setdefault(key, {"open": False})
            if not state["open"] and "new" not in state:
                lines.append(live_lines.plain(live_lines.finding_segments(f)))
                state["new"] = True
            elif not state["open"] and "cleared" in state and "returns" not in state:
                lines.append(live_lines.plain(live_lines.returns_segments(f)))
                state["returns"] = True
            state["open"], state["finding"] = True, f
        for key, state in said.items():
            if state["open"] and key not in keys:
                state["open"] = False
                if "cleared" not in state:
                    state["cleared"] = True
                    lines.append(
                        live_lines.plain(
                            live_lines.cleared_segments(state["finding"], step)
                        )
                    )
        by_evaluation.append(lines)
    return by_evaluation


def test_a_sick_run_says_each_finding_once_and_in_order(sick_fit):
    callback, _, out, run_dir = sick_fit
    run = read_run(run_dir)
    steps_per_epoch = callback.params["steps"]
    epoch_ends = [steps_per_epoch * (k + 1) for k in range(DIGITS_EPOCHS)]
    # Judged at the first probe (step 1) and at every epoch end.
    expected = expected_lines(run, [1, *epoch_ends])
    expected_by_epoch = [expected[0] + expected[1], *expected[2:]]
    said_by_epoch = [
        bnscope_lines(chunk)
        for chunk in re.split(r"^Epoch \d+/\d+$", out, flags=re.M)[1:]
    ]
    assert said_by_epoch == expected_by_epoch
    said = [line for lines in said_by_epoch for line in lines]
    assert len(said) >= 3  # vanishing gradients and saturation, in this run
    assert len(set(said)) == len(said)
    assert {"vanishing_gradient", "saturation"} <= {line.split()[2] for line in said}


def test_live_findings_logs_and_summarize_agree_on_a_sick_run(sick_fit):
    callback, history, _, run_dir = sick_fit
    summary = reported(read_run(run_dir))  # what `bnscope summarize` reports
    assert callback.live.findings == summary
    for severity, key in live_module.LOG_KEYS.items():
        assert history.history[key][-1] == sum(f.severity == severity for f in summary)
    last_step = callback.params["steps"] * DIGITS_EPOCHS
    ((step, text),) = eventdata.texts(run_dir, tags.FINDINGS_TAG)
    assert step == last_step
    assert text == findings_markdown(summary, last_step)
    # The last probe: at the epoch's last full batch (in the training step).
    last_probe = eventdata.scalars(run_dir)[tags.LOSS.tag()][-1][0]
    assert last_step - 1 <= last_probe <= last_step
    assert f"| warning | vanishing_gradient | hidden_1 | 1 | {last_probe} |" in text


def test_tensorboard_shows_the_findings_in_its_text_dashboard(sick_fit):
    from tensorboard.backend.event_processing import plugin_event_accumulator

    _, _, _, run_dir = sick_fit
    accumulator = plugin_event_accumulator.EventAccumulator(
        run_dir, size_guidance={"tensors": 0}
    )
    accumulator.Reload()
    assert tags.FINDINGS_TAG in accumulator.PluginTagToContent("text")
    (event,) = accumulator.Tensors(tags.FINDINGS_TAG)
    text = event.tensor_proto.string_val[0].decode()
    assert text.startswith("**bnscope findings at step ")


def test_a_healthy_run_says_nothing(tmp_path):
    callback, history, out = fit_digits(tmp_path, batch_norm=True)
    assert "Epoch 3/3" in out
    assert bnscope_lines(out) == []
    assert callback.live.findings == reported(
        read_run(str(tmp_path / tags.RUN_DIRNAME))
    )
    assert history.history["bnscope_errors"] == [0] * DIGITS_EPOCHS


def diverging(seed: int = 0) -> keras.Model:
    """A ReLU MLP under SGD at learning rate 20: its loss turns NaN in epoch 1."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(32, activation="relu", name="hidden"),
            keras.layers.Dense(32, activation="relu", name="hidden_2"),
            keras.layers.Dense(3, activation="softmax", name="probs"),
        ]
    )
    model.compile(keras.optimizers.SGD(20.0), "sparse_categorical_crossentropy")
    return model


class BatchLosses(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.losses = []

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(logs["loss"])


def test_halt_on_stops_a_diverging_run_at_its_first_nan_and_names_the_layer(tmp_path):
    x, y = models.data(n=256)
    losses = BatchLosses()
    callback = BNScope(log_dir=str(tmp_path), halt_on=("nonfinite",))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        history = diverging().fit(
            x, y, batch_size=16, epochs=10, verbose=2, callbacks=[callback, losses]
        )
    first_nan = next(
        i for i, loss in enumerate(losses.losses) if not math.isfinite(loss)
    )
    nan_step = first_nan + 1
    assert len(losses.losses) == nan_step  # stopped after that very step
    assert len(history.history["loss"]) == nan_step // 16 + 1  # within its epoch
    finding, stopped_at = callback.live.halted
    assert (finding.rule, finding.step, stopped_at) == ("nonfinite", nan_step, nan_step)
    assert finding.layer is not None  # unlike TerminateOnNaN, says where
    stop_lines = [line for line in bnscope_lines(out.getvalue()) if "stopping" in line]
    assert stop_lines == [
        f"bnscope: stopping training at step {nan_step}: nonfinite in {finding.layer} "
        f"since step {nan_step} (halt_on=nonfinite)"
    ]
    # Everything was written first: the run reads back with the same finding.
    run_dir = str(tmp_path / tags.RUN_DIRNAME)
    summary = reported(read_run(run_dir))
    assert summary[0] == finding
    ((_, text),) = eventdata.texts(run_dir, tags.FINDINGS_TAG)
    assert f"Training stopped at step {nan_step}: nonfinite in {finding.layer}" in text


def test_without_halt_on_the_diverging_run_trains_on_and_verbose_0_says_nothing(
    tmp_path,
):
    x, y = models.data(n=256)
    callback = BNScope(log_dir=str(tmp_path))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        history = diverging().fit(
            x, y, batch_size=16, epochs=2, verbose=0, callbacks=[callback]
        )
    assert len(history.history["loss"]) == 2
    assert out.getvalue() == ""
    assert history.history["bnscope_errors"] == [1, 1]  # the logs still know
    assert callback.live.halted is None


def test_each_fit_can_stop_anew(capsys):
    live, observer, model = attached(halt_on="nonfinite")
    synthetic = SICK_RUNS["nonfinite"]()
    feed(live, observer, synthetic)
    assert model.stop_training
    second = FakeModel()
    live.start_fit(second, {"verbose": 2})
    assert live.halted is None
    step = synthetic.steps[-1] + 50
    observer.write(step, synthetic.probe_values(len(synthetic.steps) - 1))
    live.end_batch(step)  # the first probe of the new fit is judged at once
    assert second.stop_training and live.halted[1] == step


def test_no_blank_line_when_the_end_of_fit_speaks_after_a_silent_epoch(capsys):
    live, observer, _ = attached(fit_verbose=1, alerts="info")
    synthetic = mlp_bn()
    for index in range(3):
        step = synthetic.steps[index]
        observer.write(step, synthetic.probe_values(index), synthetic.metadata())
        live.end_batch(step)
        live.end_batch(step)  # a second step: the bar line is open
        live.end_epoch(step, {})
    capsys.readouterr()
    live.end_fit(synthetic.steps[2])
    out = capsys.readouterr().out
    assert out.startswith("bnscope: ")  # the bar was finalized: no "\n" first
