"""Full mode: statistics of every training step, computed inside the step."""

from __future__ import annotations

import keras
import tensorflow as tf

from bnscope import BNScope, tags
from bnscope.recording.step_stats import step_samples
from tests.support import eventdata, models

RUN = tags.RUN_DIRNAME


def test_full_mode_records_every_training_step(tmp_path):
    keras.backend.clear_session()
    model = models.compiled(models.functional)
    x, y = models.data()
    callback = BNScope(log_dir=str(tmp_path), every_n_steps=1)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[callback])
    scalars = eventdata.scalars(tmp_path / RUN)
    every_step = list(range(1, 9))
    assert [s for s, _ in scalars[tags.ACT_STD.tag("hidden")]] == every_step
    assert [s for s, _ in scalars[tags.STEP_GRAD_NORM.tag("hidden")]] == every_step
    assert [s for s, _ in scalars[tags.STEP_GRAD_GLOBAL_NORM.tag()]] == every_step
    # The probe (fixed batch, extra passes) still runs, on the budget and
    # once per epoch, not spread over the fit: at the first step, which
    # covers epoch 1, and at the end of epoch 2 (steps 5-8).
    assert [s for s, _ in scalars[tags.BN_GAP.tag("bn")]] == [1, 8]
    assert "train_step" not in model.__dict__  # the user's step is restored
    # tanh outputs of the first 32 (here: all 16) samples of each batch.
    assert all(0.0 < v <= 1.0 for _, v in scalars[tags.ACT_STD.tag("hidden")])
    assert tags.ACT_SATURATED_FRAC.tag("hidden") in scalars


def test_each_layer_summarizes_enough_samples_for_32_rows_per_unit():
    assert step_samples(tf.TensorShape([16, 32, 32, 16])) == 4  # the floor
    assert step_samples(tf.TensorShape([16, 2, 2, 1280])) == 8  # 8 x 4 rows
    assert step_samples(tf.TensorShape([16, 10])) == 32
    assert step_samples(tf.TensorShape([None, None, None, 3])) == 32
