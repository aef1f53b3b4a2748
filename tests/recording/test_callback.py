"""The BNScope callback: tags per model kind, no perturbation, isolation, capture."""

from __future__ import annotations

import os
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from bnscope import BNScope, tags
from tests.support import eventdata, models

RUN = tags.RUN_DIRNAME


def fit(model, tmp_path, epochs=2, batch_size=16, **kwargs):
    x, y = models.data()
    callback = BNScope(log_dir=str(tmp_path), every_n_steps=2, **kwargs)
    model.fit(
        x, y, batch_size=batch_size, epochs=epochs, callbacks=[callback], verbose=0
    )
    return os.path.join(tmp_path, RUN), callback


EXPECTED_LAYERS = {
    "sequential": ["dense", "batch_normalization", "activation", "dropout", "dense_1"],
    "functional": ["hidden", "bn", "probs"],
    "nested": ["encoder/dense", "encoder/batch_normalization", "head"],
    "subclassed": ["dense", "batch_normalization", "dense_1"],
}


@pytest.mark.parametrize("kind", sorted(models.BUILDERS))
def test_tags_written_for_each_model_kind(kind, tmp_path):
    keras.backend.clear_session()  # deterministic auto names
    run, _ = fit(models.compiled(models.BUILDERS[kind]), tmp_path)
    meta = eventdata.metadata(run)
    names = [layer["name"] for layer in meta["layers"]]
    assert names == EXPECTED_LAYERS[kind]  # depth (call) order
    assert [layer["depth"] for layer in meta["layers"]] == list(range(len(names)))
    assert eventdata.tags_of(run, tags.ACT_STD) == set(names)
    weighted = {n for n in names if not n.startswith(("activation", "dropout"))}
    assert eventdata.tags_of(run, tags.GRAD_NORM) == weighted
    bn = {n for n in names if "batch_normalization" in n or n == "bn"}
    assert eventdata.tags_of(run, tags.BN_MEAN_SHIFT) == bn
    assert eventdata.tags_of(run, tags.BN_GAP) == bn
    # Constant within a fit: in the metadata (below), not a flat chart.
    assert eventdata.tags_of(run, tags.BN_TRAINING_MODE) == set()
    # Only what carries information: no zero NaN counters, no dead fraction
    # outside ReLU layers, and the log10 companion of every gradient norm.
    relu = {n["name"] for n in meta["layers"] if n["activation"] in tags.RELU_FAMILY}
    assert eventdata.tags_of(run, tags.ACT_DEAD_FRAC) == relu
    for counter in tags.NONFINITE_COUNTERS:
        assert eventdata.tags_of(run, counter) == set()
    assert eventdata.tags_of(run, tags.GRAD_NORM_LOG10) == weighted
    scalars = eventdata.scalars(run)
    for metric in (tags.LOSS, tags.GRAD_GLOBAL_NORM, tags.NONFINITE_TOTAL):
        assert metric.tag() in scalars
    assert {v for _, v in scalars[tags.NONFINITE_TOTAL.tag()]} == {0.0}
    assert eventdata.tags_of(run, tags.GAP_ARGMAX_AGREEMENT)
    assert eventdata.tags_of(run, tags.INPUT_MEAN)
    # 64 samples / 16 = 4 steps per epoch, 2 epochs: probes at 1, 2, 4, 6, 8.
    assert [step for step, _ in scalars[tags.LOSS.tag()]] == [1, 2, 4, 6, 8]
    assert meta["batch_size"] == 16
    assert all(
        layer["normalization"]["training_mode"]
        for layer in meta["layers"]
        if layer["name"] in bn
    )


def test_tensorboard_loads_the_run(tmp_path):
    from tensorboard.backend.event_processing import event_accumulator

    run, _ = fit(models.compiled(models.functional), tmp_path)
    accumulator = event_accumulator.EventAccumulator(
        run, size_guidance={event_accumulator.SCALARS: 0, event_accumulator.TENSORS: 0}
    )
    accumulator.Reload()
    ours = eventdata.scalars(run)
    loaded = accumulator.Tags()
    assert set(loaded["scalars"]) == set(ours)
    for tag, series in ours.items():
        theirs = accumulator.Scalars(tag)
        assert [e.step for e in theirs] == [step for step, _ in series]
        assert [e.value for e in theirs] == pytest.approx([v for _, v in series])
    assert tags.METADATA_TAG in loaded["tensors"]
    assert tags.CUSTOM_SCALARS_TAG in loaded["tensors"]
    assert any(tag.startswith("act_hist/") for tag in loaded["tensors"])

    # TensorBoard's own plugin-aware loader, as the dashboard uses it.
    from tensorboard.backend.event_processing import plugin_event_accumulator

    plugin = plugin_event_accumulator.EventAccumulator(
        run, size_guidance={"tensors": 0}
    )
    plugin.Reload()
    content = plugin.PluginTagToContent("custom_scalars")
    assert tags.CUSTOM_SCALARS_TAG in content
    assert "act_hist/hidden" in plugin.PluginTagToContent("histograms")
    hist = tf.make_ndarray(plugin.Tensors("act_hist/hidden")[0].tensor_proto)
    assert (
        hist.shape[1] == 3 and hist[:, 2].sum() == 16 * 16
    )  # batch 16 x 16 units, all binned


def _trained_weights(callbacks):
    tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(7)
    model = models.sequential()  # BN + Dropout: RNG and moving stats in play
    model.compile("adam", "sparse_categorical_crossentropy")
    x, y = models.data(n=96)
    model.fit(
        x, y, batch_size=16, epochs=2, callbacks=callbacks, verbose=0, shuffle=True
    )
    return [w.numpy() for w in model.weights]


@pytest.mark.parametrize(
    "settings",
    [{}, {"every_n_steps": 1, "exact_gradients": True}],
    ids=["defaults", "every-step-exact-gradients"],
)
def test_same_seed_gives_bit_identical_weights(settings, tmp_path):
    plain = _trained_weights([])
    observed = _trained_weights(
        [BNScope(log_dir=str(tmp_path), strict=True, **settings)]
    )
    assert len(plain) == len(observed)
    for a, b in zip(plain, observed):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("every_n_steps", [2, 1], ids=["probe", "full-mode"])
def test_failure_in_diagnostics_warns_once_and_training_goes_on(
    every_n_steps, tmp_path, monkeypatch
):
    from bnscope.recording.stats import activations

    def broken(*args, **kwargs):
        raise RuntimeError("statistic exploded")

    monkeypatch.setattr(activations, "stacked_activation_stats", broken)
    plain = _trained_weights([])
    callback = BNScope(log_dir=str(tmp_path), every_n_steps=every_n_steps)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        observed = _trained_weights([callback])
    messages = [str(w.message) for w in caught if "bnscope" in str(w.message)]
    assert messages  # reported...
    assert len(messages) == len(set(messages))  # ...once per kind of failure
    assert all("statistic exploded" in m and "skipped" in m for m in messages)
    assert sum(callback.observer.failures.values()) > len(messages)  # it kept failing
    for a, b in zip(plain, observed):
        np.testing.assert_array_equal(a, b)


def test_strict_mode_raises(tmp_path, monkeypatch):
    from bnscope.recording.stats import activations

    monkeypatch.setattr(activations, "stacked_activation_stats", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        fit(models.compiled(models.sequential), tmp_path, strict=True)


def test_hooks_removed_and_model_saves_after_training(tmp_path):
    model = models.compiled(models.nested)
    _, _callback = fit(model, tmp_path)
    for layer in model._flatten_layers(include_self=True, recursive=True):
        assert "call" not in layer.__dict__
    assert model.train_function.__name__ == "function"  # Keras' own again
    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    x, _ = models.data(n=4)
    np.testing.assert_allclose(
        restored.predict(x, verbose=0), model.predict(x, verbose=0)
    )


def test_hooks_removed_when_training_fails(tmp_path):
    class Boom(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            raise RuntimeError("user callback failed")

    model = models.compiled(models.sequential)
    x, y = models.data()
    with pytest.raises(RuntimeError, match="user callback failed"):
        model.fit(
            x,
            y,
            epochs=1,
            verbose=0,
            callbacks=[BNScope(log_dir=str(tmp_path)), Boom()],
        )
    for layer in model._flatten_layers(include_self=True, recursive=True):
        assert "call" not in layer.__dict__
    model.fit(x, y, epochs=1, verbose=0)  # the model still trains normally


def test_reused_across_fits_continues_the_step_counter(tmp_path):
    model = models.compiled(models.functional)
    x, y = models.data()
    callback = BNScope(log_dir=str(tmp_path), every_n_steps=2)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[callback])
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[callback])
    steps = [s for s, _ in eventdata.scalars(tmp_path / RUN)[tags.LOSS.tag()]]
    assert steps == [1, 2, 4, 5, 6, 8]
    assert len(os.listdir(tmp_path / RUN)) == 2  # one file per fit, same run
    assert callback.observer._probe.traces == 1  # compiled once, histograms or not


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"every_n_steps": 0}, "Received: every_n_steps=0"),
        ({"overhead_budget": 2}, "Received: overhead_budget=2"),
        ({"histogram_every_n_probes": -1}, "Received: histogram_every_n_probes=-1"),
        # Issue 14: these were a TypeError naming neither argument nor value
        # in `fit`, a bare "'<' not supported", or silently full mode. Fixed
        # on main, before these BNScope-level tests, by `recording/arguments.py`.
        (
            {"log_dir": None},
            "`log_dir` must be a directory path.*Received: log_dir=None",
        ),
        ({"log_dir": 123}, "Received: log_dir=123"),
        ({"overhead_budget": "x"}, "Received: overhead_budget='x'"),
        ({"histogram_every_n_probes": "x"}, "Received: histogram_every_n_probes='x'"),
        ({"every_n_steps": True}, "Received: every_n_steps=True"),
        ({"every_n_steps": 2.5}, "Received: every_n_steps=2.5"),
    ],
)
def test_invalid_arguments_echo_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BNScope(**kwargs)


def _fit(model, callbacks, epochs=1):
    x, y = models.data()
    model.fit(x, y, batch_size=16, epochs=epochs, verbose=0, callbacks=callbacks)


def _assert_uninstrumented(model):
    assert not any(
        "call" in layer.__dict__
        for layer in model._flatten_layers(include_self=True, recursive=True)
    )


@pytest.mark.parametrize("same_log_dir", [True, False])
def test_two_bnscope_callbacks_on_one_fit_are_refused(tmp_path, same_log_dir):
    """Issue 14: one of two recorded nothing (or no metadata), without a word.

    Before the fix both were accepted (seen failing).
    """
    model = models.compiled(models.sequential)
    first = BNScope(log_dir=str(tmp_path / "a"), every_n_steps=2)
    second = BNScope(log_dir=str(tmp_path / ("a" if same_log_dir else "b")))
    with pytest.raises(ValueError, match=r"two BNScope callbacks .* one fit"):
        _fit(model, [first, second])
    _assert_uninstrumented(model)
    # The refused fit left nothing behind: one BNScope then records it all.
    _fit(model, [first])
    run = tmp_path / "a" / RUN
    names = {layer["name"] for layer in eventdata.metadata(run)["layers"]}
    assert len(names) == 5 and eventdata.tags_of(run, tags.ACT_STD) == names


def test_one_instance_passed_twice_is_refused(tmp_path):
    model = models.compiled(models.sequential)
    callback = BNScope(log_dir=str(tmp_path), every_n_steps=2)
    with pytest.raises(ValueError, match="same BNScope instance is passed twice"):
        _fit(model, [callback, callback])
    _assert_uninstrumented(model)


def test_a_bnscope_left_by_a_fit_that_raised_does_not_block_the_next(tmp_path):
    model = models.compiled(models.sequential)
    x, y = models.data()
    crashed = BNScope(log_dir=str(tmp_path / "a"), every_n_steps=2)
    with pytest.raises(ValueError):
        model.fit(x, y[:10], epochs=1, verbose=0, callbacks=[crashed])  # sizes differ
    _fit(model, [BNScope(log_dir=str(tmp_path / "b"), every_n_steps=2)])
    assert eventdata.tags_of(tmp_path / "b" / RUN, tags.ACT_STD)


def test_one_instance_on_a_second_model_is_refused(tmp_path):
    """Issue 14: model 2's file replaced model 1's run, with no warning.

    Before the fix the second fit was accepted and the report showed model 2
    from step 1 (seen failing).
    """
    callback = BNScope(log_dir=str(tmp_path), every_n_steps=2)
    first = models.compiled(models.sequential)
    _fit(first, [callback])
    second = models.compiled(models.functional)
    with pytest.raises(ValueError, match=f"already recorded model '{first.name}'"):
        _fit(second, [callback])
    _assert_uninstrumented(second)
    assert eventdata.metadata(tmp_path / RUN)["model"]["name"] == first.name
    assert len(os.listdir(tmp_path / RUN)) == 1
    _fit(first, [callback])  # the same model again: the run goes on
    assert len(os.listdir(tmp_path / RUN)) == 2


def test_loss_fn_gives_gradients_for_a_custom_train_step(tmp_path):
    class OwnLoss(keras.Model):
        """A custom train_step whose loss compile() does not know."""

        def train_step(self, data):
            x, y = data
            with tf.GradientTape() as tape:
                loss = keras.losses.sparse_categorical_crossentropy(
                    y, self(x, training=True)
                )
                loss = tf.reduce_mean(loss)
            grads = tape.gradient(loss, self.trainable_variables)
            self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
            return {"loss": loss}

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8,))
    model = OwnLoss(
        inputs, keras.layers.Dense(3, activation="softmax", name="out")(inputs)
    )
    model.compile("adam")  # no loss
    x, y = models.data()

    def loss_fn(x, y, y_pred, sample_weight):
        return tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, y_pred))

    for name, kwargs in (("without", {}), ("with", {"loss_fn": loss_fn})):
        callback = BNScope(log_dir=str(tmp_path / name), every_n_steps=2, **kwargs)
        model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[callback])
    without = eventdata.metadata(tmp_path / "without" / RUN)
    assert "No loss to compute" in without["gradients_skipped"]
    assert not eventdata.tags_of(tmp_path / "without" / RUN, tags.GRAD_NORM)
    assert eventdata.tags_of(tmp_path / "with" / RUN, tags.GRAD_NORM) == {"out"}
    assert eventdata.metadata(tmp_path / "with" / RUN)["gradients_skipped"] is None
