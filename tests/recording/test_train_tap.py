"""The first-batch tap: the probe batch is taken without taking it from training."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from bnscope import BNScope, tags
from tests.support import eventdata, models

RUN = tags.RUN_DIRNAME


def _first_batch_mean(run):
    scalars = eventdata.scalars(run)
    (tag,) = [t for t in scalars if t.startswith("input_mean/")]
    return scalars[tag][0][1]


def test_probe_batch_captured_from_numpy_arrays(tmp_path):
    x, y = models.data()
    model = models.compiled(models.functional)
    model.fit(
        x,
        y,
        batch_size=16,
        epochs=1,
        shuffle=False,
        verbose=0,
        callbacks=[BNScope(log_dir=str(tmp_path), every_n_steps=2)],
    )
    assert _first_batch_mean(tmp_path / RUN) == pytest.approx(x[:16].mean(), abs=1e-6)


def test_probe_batch_captured_from_dataset(tmp_path):
    x, y = models.data()
    dataset = tf.data.Dataset.from_tensor_slices(
        (x[::-1].copy(), y[::-1].copy())
    ).batch(8)
    model = models.compiled(models.functional)
    model.fit(dataset, epochs=1, verbose=0, callbacks=[BNScope(log_dir=str(tmp_path))])
    assert _first_batch_mean(tmp_path / RUN) == pytest.approx(
        x[::-1][:8].mean(), abs=1e-6
    )
    assert eventdata.metadata(tmp_path / RUN)["batch_size"] == 8


class CountingTraces(keras.Sequential):
    """Counts how often Keras traces its train step."""

    traces = 0

    def train_step(self, data):
        type(self).traces += 1
        return super().train_step(data)


@pytest.mark.parametrize("source", ["arrays", "dataset"])
def test_capturing_the_batch_does_not_make_keras_trace_its_step_again(tmp_path, source):
    """Keras' first step reads the captured batch through a `tf.data` iterator
    of the same spec as the rest: its step compiles as often as without
    bnscope (its Python-iterator path would trace it again at step 2, a
    whole extra compile on a real network)."""
    x, y = models.data()
    data = {"x": x, "y": y, "batch_size": 16, "shuffle": False}
    if source == "dataset":
        data = {"x": tf.data.Dataset.from_tensor_slices((x, y)).batch(16)}
    counts = []
    for callbacks in ([], [BNScope(log_dir=str(tmp_path), every_n_steps=3)]):
        keras.utils.set_random_seed(0)
        CountingTraces.traces = 0
        layers = keras.layers
        model = CountingTraces(
            [
                keras.Input((x.shape[1],)),
                layers.Dense(4, activation="relu"),
                layers.BatchNormalization(),
                layers.Dense(3),
            ]
        )
        model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(True))
        model.fit(**data, epochs=2, verbose=0, callbacks=callbacks)
        counts.append(CountingTraces.traces)
    plain, observed = counts
    assert observed == plain
    assert _first_batch_mean(tmp_path / RUN) == pytest.approx(x[:16].mean(), abs=1e-6)


def test_probe_batch_captured_from_generator_without_stealing_batches(tmp_path):
    x, y = models.data()

    def batches():
        for start in range(0, 64, 16):
            yield x[start : start + 16] + 1.0, y[start : start + 16]

    def train(callbacks):
        tf.config.experimental.enable_op_determinism()
        model = models.compiled(models.functional, seed=3)
        history = model.fit(batches(), epochs=1, verbose=0, callbacks=callbacks)
        return model, history

    plain, _ = train([])
    observed, _history = train([BNScope(log_dir=str(tmp_path))])
    assert _first_batch_mean(tmp_path / RUN) == pytest.approx(
        x[:16].mean() + 1.0, abs=1e-6
    )
    for a, b in zip(plain.weights, observed.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # Same number of optimizer steps: no batch was stolen for the probe.
    assert observed.optimizer.iterations.numpy() == plain.optimizer.iterations.numpy()


def test_probe_data_argument_overrides_capture(tmp_path):
    x, y = models.data()
    probe_x = np.full((5, 8), 2.0, "float32")
    model = models.compiled(models.functional)
    model.fit(
        x,
        y,
        batch_size=16,
        epochs=1,
        verbose=0,
        callbacks=[BNScope(log_dir=str(tmp_path), probe_data=(probe_x, y[:5]))],
    )
    assert _first_batch_mean(tmp_path / RUN) == pytest.approx(2.0)


class _SelfInspecting(keras.layers.Layer):
    """A layer that refuses to run once its `call` is replaced on the instance."""

    def call(self, x):
        if "call" in self.__dict__:
            raise RuntimeError("my call was replaced")
        return x * 2.0


def test_a_layer_that_breaks_under_the_hooks_does_not_end_training(tmp_path):
    x, y = models.data()

    def train(callbacks):
        tf.config.experimental.enable_op_determinism()
        keras.utils.set_random_seed(5)
        inputs = keras.Input(x.shape[1:])
        hidden = _SelfInspecting()(keras.layers.Dense(8, activation="relu")(inputs))
        model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden))
        model.compile("adam", "sparse_categorical_crossentropy")
        history = model.fit(
            x, y, batch_size=16, epochs=2, verbose=0, callbacks=callbacks
        )
        return model, history

    plain, plain_history = train([])
    with pytest.warns(RuntimeWarning) as record:
        observed, history = train([BNScope(log_dir=str(tmp_path))])
    messages = [str(w.message) for w in record]
    assert any("while Keras traced its train step" in m for m in messages)
    # Training ran every step, on every batch, as without bnscope.
    assert history.history["loss"] == plain_history.history["loss"]
    for a, b in zip(plain.get_weights(), observed.get_weights()):
        np.testing.assert_array_equal(a, b)
    # The probe's own trace fails on that layer too: reported once, not raised.
    probe_failures = [m for m in messages if m.startswith("bnscope: probe")]
    assert len(probe_failures) == 1 and "my call was replaced" in probe_failures[0]


def test_a_genuine_model_error_still_fails_as_without_bnscope(tmp_path):
    class Broken(keras.layers.Layer):
        def call(self, x, training=None):
            if training:
                raise ValueError("the model's own bug")
            return x

    x, y = models.data()
    inputs = keras.Input(x.shape[1:])
    model = keras.Model(inputs, Broken()(inputs))
    model.compile("adam", "mse")
    with pytest.raises(ValueError, match="the model's own bug"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[BNScope(log_dir=str(tmp_path))])
