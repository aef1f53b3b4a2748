"""The wire-format fast path decodes exactly what a full protobuf parse gives."""

from __future__ import annotations

import numpy as np

from bnscope import tags
from bnscope.analysis import reader
from bnscope.analysis.reader import read_run
from bnscope.events.writer import EventFileWriter, scalars_summary


def test_template_fast_path_matches_full_proto_parse(healthy, monkeypatch):
    _, run_dir, _ = healthy
    fast = read_run(run_dir)
    monkeypatch.setattr(reader, "event_summary_span", lambda record: None)
    slow = read_run(run_dir)
    assert set(fast.scalars) == set(slow.scalars)
    for tag, series in slow.scalars.items():
        np.testing.assert_array_equal(fast.scalars[tag].steps, series.steps)
        np.testing.assert_array_equal(fast.scalars[tag].values, series.values)


def test_same_length_summaries_with_other_tags_are_not_confused(tmp_path):
    writer = EventFileWriter(str(tmp_path))
    for step in range(4):
        subject = "aa" if step % 2 == 0 else "bb"  # same byte length, other tag
        writer.add_summary(
            scalars_summary({f"act_std/{subject}": step, "loss/model": -step}), step
        )
    writer.close()
    run = read_run(str(tmp_path))
    assert run.series(tags.ACT_STD, "aa").steps.tolist() == [0, 2]
    assert run.series(tags.ACT_STD, "bb").values.tolist() == [1.0, 3.0]
    assert run.series(tags.LOSS, "model").values.tolist() == [0.0, -1.0, -2.0, -3.0]
