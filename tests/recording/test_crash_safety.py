"""A crash, an interrupt or a bad log directory never costs the user's training.

- SIGKILL mid-epoch: every probe written before the kill is on disk and
  `bnscope summarize` reads the run (exit 0 or 1, never 2).
- KeyboardInterrupt: it propagates, the data is on disk, the model trains on.
- An unwritable or full log directory: exactly one RuntimeWarning, and
  training finishes with bit-identical weights.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from bnscope import BNScope, tags
from bnscope.events import writer as event_writer
from tests.support import eventdata, models
from tests.support.summarize import summarize_json

REPO = str(Path(__file__).resolve().parents[2])
RUN = tags.RUN_DIRNAME

KILLED_FIT = """
import os, signal, sys
sys.path.insert(0, {repo!r})
import keras
from bnscope import BNScope
from tests.support import models


class Kill(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if batch == {kill_at_batch}:
            os.kill(os.getpid(), signal.SIGKILL)


x, y = models.data(n=160)
model = models.compiled(models.sequential)
model.fit(
    x, y, batch_size=16, epochs=1, verbose=0,
    callbacks=[BNScope(log_dir={log_dir!r}, every_n_steps=2), Kill()],
)
raise SystemExit("not killed")
"""


def test_sigkill_mid_epoch_leaves_a_readable_run(tmp_path):
    script = tmp_path / "killed_fit.py"
    log_dir = tmp_path / "logs"
    # Killed after step 7 of 10: BNScope (listed first) has probed at 1, 2, 4, 6.
    script.write_text(
        KILLED_FIT.format(repo=REPO, log_dir=str(log_dir), kill_at_batch=6)
    )
    process = subprocess.run(
        [sys.executable, str(script)],
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert process.returncode == -signal.SIGKILL, process.stderr[-3000:]

    run = str(log_dir / RUN)
    steps = [step for step, _ in eventdata.scalars(run)[tags.LOSS.tag()]]
    assert steps == [1, 2, 4, 6]
    assert eventdata.metadata(run)["layers"]
    code, report, stderr = summarize_json(log_dir)
    assert code in (0, 1), stderr
    (found,) = report["runs"]
    assert found["steps"] == [1, 6]


def _train(callbacks, epochs=2):
    tf.config.experimental.enable_op_determinism()
    model = models.compiled(models.sequential, seed=7)
    x, y = models.data(n=64)
    model.fit(x, y, batch_size=16, epochs=epochs, callbacks=callbacks, verbose=0)
    return model


def test_keyboard_interrupt_propagates_and_keeps_the_data(tmp_path):
    class Interrupt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == 1 and batch == 1:  # step 6 of 8
                raise KeyboardInterrupt

    callback = BNScope(log_dir=str(tmp_path), every_n_steps=2)
    model = models.compiled(models.sequential)
    x, y = models.data(n=64)
    with pytest.raises(KeyboardInterrupt):
        model.fit(
            x, y, batch_size=16, epochs=2, verbose=0, callbacks=[callback, Interrupt()]
        )
    run = str(tmp_path / RUN)
    # Read while the writer is still open, as after Ctrl-C in a notebook.
    steps = [step for step, _ in eventdata.scalars(run)[tags.LOSS.tag()]]
    assert steps == [1, 2, 4, 6]
    code, _, stderr = summarize_json(tmp_path)
    assert code in (0, 1), stderr
    # The model is left as it was: it trains on, observed again or not.
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[callback])
    steps = [step for step, _ in eventdata.scalars(run)[tags.LOSS.tag()]]
    assert steps[-1] == int(model.optimizer.iterations.numpy()) == 14


def _writes_to_dev_full(monkeypatch) -> None:
    """Every event file is opened on /dev/full: each flush fails with ENOSPC."""
    real_open = open

    def full_disk(path, mode="r", *args, **kwargs):
        return real_open("/dev/full", mode, *args, **kwargs)

    monkeypatch.setattr(event_writer, "open", full_disk, raising=False)


def _fails_after(count: int, monkeypatch) -> None:
    """The disk fills up after `count` events were written."""
    real_add_event = event_writer.EventFileWriter.add_event
    written = [0]

    def add_event(self, event):
        if written[0] >= count:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written[0] += 1
        return real_add_event(self, event)

    monkeypatch.setattr(event_writer.EventFileWriter, "add_event", add_event)


@pytest.mark.parametrize(
    "trouble", ["parent_is_a_file", "proc", "disk_full", "disk_fills_up"]
)
def test_unwritable_log_dir_warns_once_and_training_goes_on(
    trouble, tmp_path, monkeypatch
):
    log_dir = str(tmp_path / "logs")
    if trouble == "parent_is_a_file":
        # Tests run as root, which ignores permission bits: a path below a
        # regular file cannot be created by anyone.
        (tmp_path / "file").write_text("")
        log_dir = str(tmp_path / "file" / "logs")
    elif trouble == "proc":
        log_dir = "/proc/bnscope-cannot-write-here"
    elif trouble == "disk_full":
        _writes_to_dev_full(monkeypatch)
    else:
        _fails_after(3, monkeypatch)

    plain = _train([])
    callback = BNScope(log_dir=log_dir, every_n_steps=1, exact_gradients=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        observed = _train([callback])
    ours = [
        w
        for w in caught
        if "bnscope" in str(w.message) and issubclass(w.category, RuntimeWarning)
    ]
    assert len(ours) == 1, [str(w.message) for w in ours]
    assert ours[0].category is RuntimeWarning
    assert "training continues" in str(ours[0].message).lower()
    for a, b in zip(plain.weights, observed.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    if trouble == "disk_fills_up":
        # What was written before the disk filled up is intact and readable.
        scalars = eventdata.scalars(os.path.join(log_dir, RUN))
        assert scalars[tags.LOSS.tag()][0][0] == 1
