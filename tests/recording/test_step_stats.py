"""Full mode: statistics of every training step, computed inside the step."""

from __future__ import annotations

import keras

from bnscope import BNScope, tags
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
    # The probe (fixed batch, extra passes) still runs, spaced by the budget.
    assert scalars[tags.BN_GAP.tag("bn")][0][0] == 1
    assert "train_step" not in model.__dict__  # the user's step is restored
    # tanh outputs of the first 32 (here: all 16) samples of each batch.
    assert all(0.0 < v <= 1.0 for _, v in scalars[tags.ACT_STD.tag("hidden")])
    assert tags.ACT_SATURATED_FRAC.tag("hidden") in scalars
