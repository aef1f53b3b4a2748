"""BNScope across model kinds and training settings: tags written, weights unchanged.

Every case trains twice from the same seed with op determinism on, once
without and once with `BNScope(strict=True)`, and asserts bit-identical final
weights; then it reads the run back and checks the tags each layer should
have. `strict=True` turns any diagnostic failure into a test failure.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.framework import config as determinism

from bnscope import BNScope, tags
from tests.support import eventdata, models
from tests.support.summarize import rules_found, summarize_json

mixed = keras.mixed_precision
Adam = keras.optimizers.Adam

RUN = tags.RUN_DIRNAME
SEED = 7


# -- Data ----------------------------------------------------------------------
def _labels(x: np.ndarray) -> np.ndarray:
    flat = x.reshape(len(x), -1)
    return np.minimum((flat[:, 0] > 0) + (flat[:, 1] > 0.5), 2).astype("int64")


def dense(n: int = 48, batch_size: int = 16) -> dict:
    x, y = models.data(n=n)
    return {"x": x, "y": y, "batch_size": batch_size}


def shaped(*shape: int, n: int = 48) -> Callable[[], dict]:
    def make() -> dict:
        x = np.random.default_rng(0).normal(size=(n, *shape)).astype("float32")
        return {"x": x, "y": _labels(x), "batch_size": 16}

    return make


def two_inputs() -> dict:
    x, y = models.data(n=48)
    extra = np.random.default_rng(1).normal(size=(48, 4)).astype("float32")
    return {"x": {"left": x, "right": extra}, "y": y, "batch_size": 16}


def two_outputs() -> dict:
    x, y = models.data(n=48)
    return {"x": x, "y": (y, x[:, :1]), "batch_size": 16}


def tokens() -> dict:
    x = np.random.default_rng(0).integers(1, 20, size=(48, 6)).astype("int32")
    return {"x": x, "y": (x[:, 0] % 3).astype("int64"), "batch_size": 16}


def unknown_cardinality() -> dict:
    x, y = models.data(n=48)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).filter(lambda *_: True)
    dataset = dataset.batch(16)
    assert dataset.cardinality() == tf.data.UNKNOWN_CARDINALITY
    return {"x": dataset}


# -- Case-specific checks ---------------------------------------------------------
def inputs_and_outputs(inputs: set[str], outputs: set[str]):
    def check(run, scalars, meta, report) -> None:
        assert eventdata.tags_of(run, tags.INPUT_MEAN) == inputs
        assert eventdata.tags_of(run, tags.GAP_REL_L2) == outputs

    return check


def token_inputs_are_not_flagged(run, scalars, meta, report) -> None:
    # Integer ids: statistics of the ids themselves, and no scaling advice.
    assert meta["inputs"][0]["dtype"] == "int32"
    (subject,) = {tag.split("/", 1)[1] for tag in scalars if tag.startswith("input_")}
    assert scalars[tags.INPUT_MIN.tag(subject)][0][1] >= 1
    assert scalars[tags.INPUT_MAX.tag(subject)][0][1] <= 19
    assert "unnormalized_input" not in rules_found(report)


def batch_of_one_is_flagged(run, scalars, meta, report) -> None:
    # Batch variance is 0: BN outputs beta exactly, which is what to report.
    assert meta["batch_size"] == 1
    assert scalars[tags.ACT_STD.tag("batch_normalization")][0][1] == 0.0
    assert "small_batch_bn" in rules_found(report)


def skipped_gradients_are_explained(run, scalars, meta, report) -> None:
    assert "loss" in meta["gradients_skipped"]
    assert tags.LOSS.tag() not in scalars


def frozen_batch_norm_runs_in_inference_mode(run, scalars, meta, report) -> None:
    (bn,) = [layer for layer in meta["layers"] if layer["name"] == "bn"]
    assert bn["normalization"]["training_mode"] is False
    assert {value for _, value in scalars[tags.BN_MOVING_CHANGE.tag("bn")]} == {0.0}


# -- Cases ---------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    build: Callable[[], keras.Model]
    data: Callable[[], dict] = dense
    compile: dict[str, Any] = field(default_factory=dict)
    fits: tuple[dict[str, Any], ...] = ({"epochs": 2},)
    policy: str | None = None
    gradients: bool = True
    # Histograms cost a second probe trace; exercised where layers differ.
    histograms: bool = False
    # Keras turns XLA off under op determinism; XLA on CPU is deterministic.
    op_determinism: bool = True
    # Extra assertions on the run: `check(run_dir, scalars, metadata, report)`.
    check: Callable[[str, dict, dict, dict], None] | None = None


SPARSE = "sparse_categorical_crossentropy"

CASES = {
    "sequential": Case(models.sequential),
    "functional": Case(models.functional),
    "subclassed": Case(models.subclassed),
    "nested": Case(models.nested),
    "multi_input": Case(
        models.multi_input,
        two_inputs,
        check=inputs_and_outputs({"left", "right"}, {"probs"}),
    ),
    "multi_output": Case(
        models.multi_output,
        two_outputs,
        compile={"loss": [SPARSE, "mse"], "loss_weights": [1.0, 0.5]},
        check=inputs_and_outputs({"features"}, {"probs", "value"}),
    ),
    # SimpleRNN, LSTM and GRU in one model.
    "recurrent": Case(models.recurrent, shaped(4, 3), histograms=True),
    "conv1d": Case(models.conv1d, shaped(12, 3), histograms=True),
    "conv2d": Case(models.conv2d, shaped(8, 8, 3), histograms=True),
    "embedding": Case(
        models.embedding, tokens, histograms=True, check=token_inputs_are_not_flagged
    ),
    # Two fits: loss scaling skips the first steps (an initial scale that
    # overflows float16), so `optimizer.iterations` lags the steps `fit` ran;
    # the second fit must still append.
    "mixed_float16": Case(
        models.sequential,
        compile={"optimizer": lambda: mixed.LossScaleOptimizer(Adam(), 2.0**18)},
        fits=({"epochs": 1}, {"epochs": 1}),
        policy="mixed_float16",
        histograms=True,
    ),
    "jit_compile": Case(
        models.sequential,
        compile={"jit_compile": True},
        op_determinism=False,
        histograms=True,
    ),
    "steps_per_execution": Case(models.sequential, compile={"steps_per_execution": 2}),
    "validation_data": Case(
        models.sequential, fits=({"epochs": 2, "validation_data": models.data(16)},)
    ),
    "class_weight": Case(
        models.sequential, fits=({"epochs": 2, "class_weight": {0: 1, 1: 3, 2: 0.5}},)
    ),
    "fit_twice": Case(models.sequential, fits=({"epochs": 1}, {"epochs": 1})),
    "custom_train_step": Case(models.custom_train_step),
    "custom_train_step_no_loss": Case(
        models.custom_train_step,
        compile={"loss": None},
        gradients=False,
        check=skipped_gradients_are_explained,
    ),
    "unknown_cardinality": Case(models.sequential, unknown_cardinality),
    "batch_size_1": Case(
        models.sequential,
        lambda: dense(n=6, batch_size=1),
        fits=({"epochs": 1},),
        check=batch_of_one_is_flagged,
    ),
    "no_batch_norm": Case(models.no_batch_norm),
    "frozen": Case(
        models.frozen, gradients=False, check=frozen_batch_norm_runs_in_inference_mode
    ),
}


class BatchCounter(keras.callbacks.Callback):
    """Training steps run, as `fit` counts them (skipped loss-scaled steps too)."""

    def __init__(self):
        super().__init__()
        self.steps = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._last = -1

    def on_train_batch_end(self, batch, logs=None):
        self.steps += batch - self._last  # steps_per_execution covers several
        self._last = batch


def _train(case: Case, callbacks: list) -> keras.Model:
    was_deterministic = determinism.is_op_determinism_enabled()
    if case.op_determinism:
        determinism.enable_op_determinism()
    else:
        determinism.disable_op_determinism()
    previous_policy = keras.mixed_precision.global_policy().name
    keras.backend.clear_session()  # deterministic layer names (resets the policy)
    if case.policy:
        keras.mixed_precision.set_global_policy(case.policy)
    keras.utils.set_random_seed(SEED)
    try:
        model = case.build()
        settings = {"optimizer": "adam", "loss": SPARSE, **case.compile}
        if callable(settings["optimizer"]):
            settings["optimizer"] = settings["optimizer"]()
        model.compile(**settings)
        for fit in case.fits:
            model.fit(**case.data(), **fit, callbacks=callbacks, verbose=0)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
        if was_deterministic:
            determinism.enable_op_determinism()
        else:
            determinism.disable_op_determinism()
    if case.compile.get("jit_compile"):
        assert model.jit_compile, "XLA was not used"
    if case.policy:
        assert model.dtype_policy.name == case.policy
    return model


def _histogram_tags(run: str) -> set[str]:
    return {
        value.tag
        for event in eventdata.events(run)
        for value in event.summary.value
        if value.metadata.plugin_data.plugin_name == "histograms"
    }


def _probe_steps(run: str) -> list[int]:
    return [step for step, _ in eventdata.scalars(run)[tags.ACT_STD.tag(_first(run))]]


def _first(run: str) -> str:
    return eventdata.metadata(run)["layers"][0]["name"]


@pytest.mark.parametrize("in_step", [False, True], ids=["separate", "in_step"])
@pytest.mark.parametrize("name", list(CASES))
def test_case_records_every_layer_and_leaves_training_unchanged(
    name, in_step, tmp_path
):
    case = CASES[name]
    plain = _train(case, [])
    counter = BatchCounter()
    callback = BNScope(
        log_dir=str(tmp_path),
        every_n_steps=2,
        histogram_every_n_probes=int(case.histograms),
        strict=True,
        in_step=in_step,
    )
    observed = _train(case, [callback, counter])

    assert len(plain.weights) == len(observed.weights)
    for a, b in zip(plain.weights, observed.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)

    run = os.path.join(tmp_path, RUN)
    meta = eventdata.metadata(run)
    layers = meta["layers"]
    names = {layer["name"] for layer in layers}
    assert names, "no layer observed"
    assert eventdata.tags_of(run, tags.ACT_STD) == names
    batch_norm = {
        layer["name"]
        for layer in layers
        if (layer["normalization"] or {}).get("kind") == "batch"
    }
    assert eventdata.tags_of(run, tags.BN_MEAN_SHIFT) == batch_norm
    assert eventdata.tags_of(run, tags.BN_GAP) == batch_norm
    weighted = {
        layer["name"] for layer in layers if layer["params"] and layer["trainable"]
    }
    if case.gradients:
        assert eventdata.tags_of(run, tags.GRAD_NORM) == weighted
        assert tags.LOSS.tag() in eventdata.scalars(run)
    else:
        assert not eventdata.tags_of(run, tags.GRAD_NORM)
    assert eventdata.tags_of(run, tags.WEIGHT_NORM) >= weighted
    assert eventdata.tags_of(run, tags.INPUT_MEAN)
    if case.histograms:
        assert _histogram_tags(run) == {tags.ACT_HIST.tag(name) for name in names}

    # Probes at increasing steps, the last at the last training step.
    steps = _probe_steps(run)
    assert steps == sorted(set(steps))
    assert steps[-1] == counter.steps, (steps, counter.steps)
    scalars = eventdata.scalars(run)
    for series in scalars.values():
        assert all(np.isfinite(value) for _, value in series)

    # The CLI reads the run; a healthy tiny model may still have warnings.
    code, report, _ = summarize_json(tmp_path)
    assert code in (0, 1) and report is not None
    assert [r["run"] for r in report["runs"]] == [RUN]
    assert "nonfinite" not in rules_found(report)
    if case.check is not None:
        case.check(run, scalars, meta, report)


def _resumed_training(tmp_path, log_dir: str | None) -> keras.Model:
    """One epoch, save, load as a new process would, resume for two more."""
    callbacks = lambda: (  # noqa: E731
        [] if log_dir is None else [BNScope(log_dir=log_dir, every_n_steps=2)]
    )
    determinism.enable_op_determinism()
    keras.backend.clear_session()
    model = models.compiled(models.sequential, seed=SEED)
    x, y = models.data(n=48)
    model.fit(x, y, batch_size=16, epochs=1, callbacks=callbacks(), verbose=0)
    path = str(tmp_path / f"checkpoint-{log_dir is None}.keras")
    model.save(path)
    model = keras.models.load_model(path)
    model.fit(
        x,
        y,
        batch_size=16,
        epochs=3,
        initial_epoch=1,
        callbacks=callbacks(),
        verbose=0,
    )
    return model


def test_initial_epoch_resume_appends_to_the_same_run(tmp_path):
    plain = _resumed_training(tmp_path, None)
    resumed = _resumed_training(tmp_path, str(tmp_path / "logs"))
    for a, b in zip(plain.weights, resumed.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())

    run = tmp_path / "logs" / RUN
    assert len(os.listdir(run)) == 2  # one event file per fit, one run
    steps = [step for step, _ in eventdata.scalars(run)[tags.LOSS.tag()]]
    assert steps == [1, 2, 3, 4, 6, 8, 9]  # 3 steps per epoch, then resumed at 3
    code, report, _ = summarize_json(tmp_path / "logs")
    assert code in (0, 1)
    assert report["runs"][0]["steps"] == [1, 9]
