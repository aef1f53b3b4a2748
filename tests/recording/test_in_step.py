"""The probe compiled into Keras' train step: same numbers, same weights, isolated."""

from __future__ import annotations

import os
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.framework import config as determinism

from bnscope import BNScope, tags
from bnscope.recording import in_step
from tests.recording.test_probe import reference, tiny_model
from tests.support import eventdata, models

L = keras.layers
RUN = tags.RUN_DIRNAME


def test_a_probe_step_matches_the_slow_reference(tmp_path):
    """Gradients are the ones the step applied (before its update); everything
    else is the model after the step, on the step's own batch."""
    model, x, y = tiny_model()
    before = reference(model, x, y)
    callback = BNScope(log_dir=str(tmp_path), in_step=True)
    model.fit(
        x, y, batch_size=12, epochs=1, shuffle=False, verbose=0, callbacks=[callback]
    )
    assert callback._in_step is not None  # the probe ran inside the step
    assert callback.observer.probe.traces == 1
    after = reference(model, x, y)
    scalars = eventdata.scalars(os.path.join(tmp_path, RUN))
    assert [step for step, _ in scalars[tags.LOSS.tag()]] == [1]
    measured = callback._in_step.read().scalars  # all of them, before the filter
    for tag, value in after.items():
        expected = before[tag] if tag.startswith("grad_") else value
        recorded = measured[tag]
        assert recorded == pytest.approx(expected, rel=1e-4, abs=1e-6), tag
    # The gradients measured are the step's, not the updated model's.
    assert before["grad_norm/dense"] != pytest.approx(after["grad_norm/dense"])


def test_weights_are_bit_identical_and_compiled_once_across_fits(tmp_path):
    def train(callbacks):
        model = models.compiled(models.conv2d)
        x = np.random.default_rng(1).normal(size=(48, 8, 8, 3)).astype("float32")
        y = np.arange(48) % 3
        for _ in range(2):
            model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=callbacks)
        return model

    plain = train([])
    callback = BNScope(log_dir=str(tmp_path), every_n_steps=3, in_step=True)
    observed = train([callback])
    for a, b in zip(plain.weights, observed.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    assert callback._in_step is not None
    assert callback.observer.probe.traces == 1  # the second fit did not retrace
    steps = [s for s, _ in eventdata.scalars(os.path.join(tmp_path, RUN))["loss/model"]]
    assert steps == [1, 3, 6, 9, 12, 13, 15, 18, 21, 24]  # 13: fit 2's first step


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"run_eagerly": True}, "eagerly"),
        ({"jit_compile_after": True}, "XLA"),
        ({"steps_per_execution": 2}, "steps_per_execution"),
        ({"optimizer": keras.optimizers.LossScaleOptimizer}, "mixed precision"),
        ({"optimizer": "accumulating"}, "accumulates"),
    ],
)
def test_where_it_cannot_run_it_says_why(change, reason):
    model = models.functional()
    optimizer = change.pop("optimizer", "adam")
    if optimizer is keras.optimizers.LossScaleOptimizer:
        optimizer = optimizer(keras.optimizers.Adam())
    elif optimizer == "accumulating":
        optimizer = keras.optimizers.Adam(gradient_accumulation_steps=2)
    jit = change.pop("jit_compile_after", False)
    model.compile(optimizer, "sparse_categorical_crossentropy", **change)
    if jit:
        # Keras turns XLA off while op determinism is on (other tests enable it).
        deterministic = determinism.is_op_determinism_enabled()
        determinism.disable_op_determinism()
        try:
            model.jit_compile = True
        finally:
            if deterministic:
                determinism.enable_op_determinism()
        assert model.jit_compile
    assert reason in in_step.unsupported(model)


def test_a_custom_train_step_is_probed_separately(tmp_path):
    model = models.compiled(models.custom_train_step)
    assert "train_step" in in_step.unsupported(model)
    x, y = models.data()
    callback = BNScope(log_dir=str(tmp_path), every_n_steps=2, in_step=True)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[callback])
    assert callback._in_step is None
    assert tags.ACT_STD.tag("hidden") in eventdata.scalars(os.path.join(tmp_path, RUN))


def test_a_statistic_failing_in_the_step_loses_nothing_of_training(
    tmp_path, monkeypatch
):
    """A probe op failing when the step runs: the step itself completed, so
    training goes on with the same weights, the failure is reported once, and
    bnscope probes separately from the next step on (its histograms retried
    without)."""
    from bnscope.recording.stats import activations

    original = activations.grouped_histograms

    def failing(outputs, *args, **kwargs):
        results = original(outputs, *args, **kwargs)
        magnitude = tf.reduce_max(tf.abs(outputs[0]))  # fails when it runs
        check = tf.debugging.assert_less(magnitude, -1.0, message="histogram failed")
        with tf.control_dependencies([check]):
            return [(tf.identity(e), tf.identity(c)) for e, c in results]

    x, y = models.data()

    def train(callbacks):
        model = models.compiled(models.functional)
        model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=callbacks)
        return model

    plain = train([])
    monkeypatch.setattr(activations, "grouped_histograms", failing)
    callback = BNScope(log_dir=str(tmp_path), every_n_steps=2, in_step=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        observed = train([callback])
    for a, b in zip(plain.weights, observed.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    messages = [str(w.message) for w in caught if "bnscope" in str(w.message)]
    assert any("inside the training step" in m for m in messages), messages
    assert len(messages) == len(set(messages))
    assert callback._in_step is None
    steps = [s for s, _ in eventdata.scalars(os.path.join(tmp_path, RUN))["loss/model"]]
    assert steps == [2, 4, 6, 8]  # step 1's probe lost; then probed separately
