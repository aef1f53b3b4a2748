"""The first-batch tap: the probe batch is taken without taking it from training."""

from __future__ import annotations

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
