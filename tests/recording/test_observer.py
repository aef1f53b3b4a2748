"""`bnscope.Observer` in a custom `tf.GradientTape` training loop.

A loop that does what `fit` does, observed at the same steps on the same
batch, writes the same tags with the same values and gives the same findings
as the `BNScope` callback.
"""

from __future__ import annotations

import os
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import bnscope
from bnscope import BNScope, tags
from tests.support import eventdata, models
from tests.support.summarize import rules_found, summarize_json

RUN = tags.RUN_DIRNAME
BATCH = 16
EPOCHS = 2
PROBE_STEPS = [1, 2, 4, 6, 8]  # every 2 steps and at epoch ends (4 steps each)


def _callback_run(log_dir: str) -> keras.Model:
    model = models.compiled(models.functional, seed=5)
    x, y = models.data()
    model.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=EPOCHS,
        shuffle=False,
        verbose=0,
        # On one fixed batch, as the loop probes (by default the callback
        # probes inside the training step, on that step's batch).
        callbacks=[
            BNScope(log_dir=log_dir, every_n_steps=2, probe_data=(x[:BATCH], y[:BATCH]))
        ],
    )
    return model


def _custom_loop_run(log_dir: str) -> keras.Model:
    model = models.compiled(models.functional, seed=5)
    x, y = models.data()
    model.optimizer.build(model.trainable_variables)

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            loss = model.compute_loss(x=x, y=y, y_pred=y_pred, training=True)
        grads = tape.gradient(loss, model.trainable_variables)
        model.optimizer.apply(grads, model.trainable_variables)
        return loss

    probe_x, probe_y = x[:BATCH], y[:BATCH]  # what the callback captures
    step = 0
    with bnscope.Observer(model, log_dir=log_dir) as observer:
        for _ in range(EPOCHS):
            for start in range(0, len(x), BATCH):
                batch = x[start : start + BATCH], y[start : start + BATCH]
                if step == 0:
                    with observer.watch_training_step():  # BN modes, once
                        train_step(*batch)
                else:
                    train_step(*batch)
                step += 1
                if step in PROBE_STEPS:
                    observer.observe(step, probe_x, probe_y)
    return model


def test_custom_loop_writes_what_the_callback_writes(tmp_path):
    callback_dir, loop_dir = str(tmp_path / "fit"), str(tmp_path / "loop")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fitted = _callback_run(callback_dir)
        looped = _custom_loop_run(loop_dir)
    assert not [w for w in caught if "bnscope" in str(w.message)]
    for a, b in zip(fitted.weights, looped.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())

    by_fit = eventdata.scalars(os.path.join(callback_dir, RUN))
    by_loop = eventdata.scalars(os.path.join(loop_dir, RUN))
    assert set(by_loop) == set(by_fit)
    assert tags.GRAD_NORM_LOG10.tag("bn") in by_loop
    for tag, series in by_fit.items():
        steps, values = zip(*series)
        loop_steps, loop_values = zip(*by_loop[tag])
        assert loop_steps == steps == tuple(PROBE_STEPS), tag
        np.testing.assert_allclose(loop_values, values, rtol=1e-6, err_msg=tag)

    fit_meta = eventdata.metadata(os.path.join(callback_dir, RUN))
    loop_meta = eventdata.metadata(os.path.join(loop_dir, RUN))
    assert loop_meta["layers"] == fit_meta["layers"]
    # The BN mode the loop's training step ran in, as the callback records it.
    (bn,) = [layer for layer in loop_meta["layers"] if layer["name"] == "bn"]
    assert bn["normalization"]["training_mode"] is True
    assert loop_meta["batch_size"] == fit_meta["batch_size"] == BATCH

    fit_code, fit_report, _ = summarize_json(callback_dir)
    loop_code, loop_report, _ = summarize_json(loop_dir)
    assert loop_code == fit_code
    assert rules_found(loop_report) == rules_found(fit_report)


def test_uncompiled_model_with_loss_fn(tmp_path):
    keras.utils.set_random_seed(0)
    model = models.functional()  # never compiled
    optimizer = keras.optimizers.SGD(0.05)
    x, y = models.data()
    crossentropy = keras.losses.SparseCategoricalCrossentropy()

    def loss_fn(x, y, y_pred, sample_weight):
        return crossentropy(y, y_pred, sample_weight=sample_weight)

    observer = bnscope.Observer(model, log_dir=str(tmp_path), loss_fn=loss_fn)
    for step in range(1, 5):
        with tf.GradientTape() as tape:
            loss = loss_fn(x, y, model(x, training=True), None)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        result = observer.observe(step, x, y)
        assert result is not None
        # The probe measured the model as it is after this step's update.
        assert result.scalars[tags.LOSS.tag()] == pytest.approx(
            float(loss_fn(x, y, model(x, training=True), None)), rel=1e-5
        )
    observer.close()
    observer.close()  # safe twice

    run = str(tmp_path / RUN)
    assert eventdata.tags_of(run, tags.GRAD_NORM) == {"hidden", "bn", "probs"}
    meta = eventdata.metadata(run)
    assert meta["optimizer"] is None and meta["gradients_skipped"] is None
    code, _, stderr = summarize_json(tmp_path)
    assert code in (0, 1), stderr


def test_observe_without_targets_records_activations_only(tmp_path):
    model = models.compiled(models.functional)
    x, _ = models.data(n=16)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with bnscope.Observer(model, log_dir=str(tmp_path)) as observer:
            assert observer.observe(1, x) is not None
    assert not [w for w in caught if "bnscope" in str(w.message)]
    run = str(tmp_path / RUN)
    assert eventdata.tags_of(run, tags.ACT_STD) == {"hidden", "bn", "probs"}
    assert not eventdata.tags_of(run, tags.GRAD_NORM)
    assert eventdata.metadata(run)["gradients_skipped"]  # explained, not silent


def test_listeners_see_each_write_and_text_records_are_written(tmp_path):
    model = models.compiled(models.functional)
    x, y = models.data(n=16)
    seen = []
    with bnscope.Observer(model, log_dir=str(tmp_path)) as observer:
        observer.listeners.append(
            lambda step, values, metadata: seen.append((step, dict(values), metadata))
        )
        observer.observe(1, x, y)
        observer.observe(3, x, y)
        observer.write_scalars(4, {tags.LOSS.tag(): 0.5})
        observer.write_text(4, tags.FINDINGS_TAG, "**bnscope findings at step 4**")
    run = str(tmp_path / RUN)
    assert [step for step, _, _ in seen] == [1, 3, 4]
    assert seen[0][2] is not None and seen[0][2].layers  # metadata, once per fit
    assert seen[1][2] is None and seen[2][2] is None
    written = eventdata.scalars(run)
    for step, values, _ in seen:
        for tag, value in values.items():
            assert (step, np.float32(value)) in written[tag]
    assert eventdata.texts(run, tags.FINDINGS_TAG) == [
        (4, "**bnscope findings at step 4**")
    ]


def test_histograms_of_a_layer_that_overflows_are_written(tmp_path):
    """Issue 14: inputs scaled x100 made the histogram op fail, and the whole
    probe step was skipped. Here an `exponential` layer overflows to Inf on
    every value of x100 inputs, and the next layer to NaN; with `strict=True`
    the failure raised (seen failing)."""
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(
                8, "exponential", kernel_initializer="ones", name="explodes"
            ),
            keras.layers.Dense(1, name="head"),
        ]
    )
    model.compile(optimizer="sgd", loss="mse")
    x = 100 + np.random.default_rng(0).random((16, 4)).astype("float32")
    x *= 100
    y = np.zeros((16, 1), "float32")
    with bnscope.Observer(model, str(tmp_path), strict=True) as observer:
        result = observer.observe(1, x, y)
    assert result.scalars[tags.ACT_NONFINITE.tag("explodes")] == 16 * 8
    histogram = next(
        value
        for event in eventdata.events(os.path.join(str(tmp_path), RUN))
        for value in event.summary.value
        if value.tag == tags.ACT_HIST.tag("explodes")
    )
    counts = np.frombuffer(histogram.tensor.tensor_content, "<f8").reshape(-1, 3)
    assert counts[:, 2].sum() == 0  # no finite value to count


def _histogram_tags(run_dir) -> set[str]:
    return {
        value.tag
        for event in eventdata.events(run_dir)
        for value in event.summary.value
        if value.tag.startswith(tags.ACT_HIST.name)
    }


def test_a_failing_histogram_loses_only_the_histograms(tmp_path, monkeypatch):
    """Issue 14: a histogram op failing at run time skipped every statistic of
    that probe step. Now the same trace reruns without the histograms."""
    from bnscope.recording.stats import activations

    original = activations.grouped_histograms

    def failing(outputs, *args, **kwargs):
        results = original(outputs, *args, **kwargs)
        # Data-dependent, so it fails when the op runs, not while tracing.
        magnitude = tf.reduce_max(tf.abs(outputs[0]))
        check = tf.debugging.assert_less(magnitude, -1.0, message="histogram failed")
        with tf.control_dependencies([check]):
            return [(tf.identity(e), tf.identity(c)) for e, c in results]

    monkeypatch.setattr(activations, "grouped_histograms", failing)
    model = models.compiled(models.functional)
    x, y = models.data()
    observer = bnscope.Observer(model, str(tmp_path), histogram_every_n_probes=1)
    with pytest.warns(RuntimeWarning) as record, observer:
        results = [observer.observe(step, x[:16], y[:16]) for step in (1, 2, 3)]
    assert all(r is not None and r.scalars for r in results)  # scalars kept
    run_dir = os.path.join(str(tmp_path), RUN)
    assert {s for s, _ in eventdata.scalars(run_dir)["loss/model"]} == {1, 2, 3}
    assert _histogram_tags(run_dir) == set()
    histogram_warnings = [
        str(w.message) for w in record if "histograms" in str(w.message)
    ]
    assert len(histogram_warnings) == 1  # once, saying what was skipped and kept
    assert "scalar statistics were kept" in histogram_warnings[0]
    assert "tried again at the next histogram probe" in histogram_warnings[0]


class _TrainOnly(keras.layers.Layer):
    """A layer with no inference path: only bnscope's probe calls it so."""

    def call(self, x, training=None):
        if training is False:
            raise RuntimeError("no inference path")
        return x


def test_a_layer_failing_only_in_inference_mode_loses_only_the_gap(tmp_path):
    """Issue 14: it warned once, then nothing was recorded for the whole fit."""

    keras.utils.set_random_seed(0)
    x, y = models.data()
    inputs = keras.Input(x.shape[1:])
    hidden = keras.layers.BatchNormalization(name="bn")(
        keras.layers.Dense(8, name="dense")(inputs)
    )
    outputs = keras.layers.Dense(3, "softmax", name="head")(_TrainOnly()(hidden))
    model = keras.Model(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy")
    with pytest.warns(RuntimeWarning) as record:
        model.fit(
            x,
            y,
            batch_size=16,
            epochs=2,
            verbose=0,
            callbacks=[BNScope(log_dir=str(tmp_path), every_n_steps=2)],
        )
    messages = [str(w.message) for w in record if "bnscope" in str(w.message)]
    assert len(messages) == 1 and "inference-mode pass" in messages[0]
    assert "no inference path" in messages[0]
    scalars = eventdata.scalars(os.path.join(str(tmp_path), RUN))
    assert len(scalars[tags.ACT_STD.tag("dense")]) >= 4  # every probe recorded
    assert tags.GRAD_NORM.tag("dense") in scalars
    assert not [t for t in scalars if t.startswith(("bn_gap/", "gap_"))]


def test_strict_mode_raises_a_failing_inference_pass(tmp_path):
    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Dense(3)(_TrainOnly()(inputs)))
    model.compile("adam", "mse")
    x, _ = models.data()
    observer = bnscope.Observer(model, str(tmp_path), strict=True)
    with observer, pytest.raises(RuntimeError, match="no inference path"):
        observer.observe(1, x[:16], np.zeros((16, 3), "float32"))


def test_a_layer_whose_statistics_fail_loses_only_its_own(tmp_path, monkeypatch):
    """Issue 14: one layer's statistic failing must not lose the others."""
    from bnscope.recording.probe import Probe

    original = Probe._record_normalization

    def failing(self, values, call, inference_calls):
        if call.name == "bn":
            raise ValueError("unusual BN layout")
        original(self, values, call, inference_calls)

    monkeypatch.setattr(Probe, "_record_normalization", failing)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8,))
    hidden = keras.layers.BatchNormalization(name="bn")(
        keras.layers.Dense(8, name="dense")(inputs)
    )
    model = keras.Model(inputs, keras.layers.Dense(3, name="head")(hidden))
    model.compile("adam", "mse")
    x, _ = models.data()
    y = np.zeros((16, 3), "float32")
    observer = bnscope.Observer(model, str(tmp_path))
    with pytest.warns(RuntimeWarning) as record, observer:
        results = [observer.observe(step, x[:16], y) for step in (1, 2)]
    assert all(r is not None for r in results)
    scalars = results[-1].scalars
    assert tags.GRAD_NORM.tag("dense") in scalars  # other layers recorded
    assert tags.ACT_STD.tag("bn") in scalars  # and bn's own activation stats
    assert tags.BN_MEAN_SHIFT.tag("bn") not in scalars
    messages = [str(w.message) for w in record if "bnscope" in str(w.message)]
    assert len(messages) == 1 and "statistics of layer 'bn'" in messages[0]
    assert "unusual BN layout" in messages[0]
