"""Exact per-step gradient norms, read from the optimizer, match a GradientTape."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from bnscope import BNScope, tags
from tests.support import eventdata, models

RUN = tags.RUN_DIRNAME


def test_exact_gradients_match_gradient_tape(tmp_path):
    keras.utils.set_random_seed(1)
    model = models.functional()
    model.compile(keras.optimizers.SGD(0.0), "sparse_categorical_crossentropy")
    x, y = models.data(n=16)
    model.fit(
        x,
        y,
        batch_size=16,
        epochs=1,
        verbose=0,
        shuffle=False,
        callbacks=[BNScope(log_dir=str(tmp_path), exact_gradients=True)],
    )
    with tf.GradientTape() as tape:
        loss = model.compute_loss(x=x, y=y, y_pred=model(x, training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    expected = np.sqrt(sum(float(tf.reduce_sum(g * g)) for g in grads))
    scalars = eventdata.scalars(tmp_path / RUN)
    assert scalars[tags.STEP_GRAD_GLOBAL_NORM.tag()][0][1] == pytest.approx(
        expected, rel=1e-5
    )
    # The probe ran on the same batch and weights: its gradient agrees too.
    assert scalars[tags.GRAD_GLOBAL_NORM.tag()][0][1] == pytest.approx(
        expected, rel=1e-5
    )
