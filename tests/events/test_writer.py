"""The TF-free event writer: what TensorBoard's own loader reads back."""

from __future__ import annotations

import json
import os

import numpy as np
from tensorboard.backend.event_processing import event_file_loader

from bnscope import tags
from bnscope.events.writer import (
    EventFileWriter,
    histogram_value,
    metadata_summary,
    scalars_summary,
    text_summary,
)
from bnscope.schema import LayerMeta, RunMetadata


def events(path: str) -> list:
    return list(event_file_loader.EventFileLoader(path).Load())


def test_nothing_touches_disk_until_the_first_write(tmp_path):
    run_dir = tmp_path / "run"
    writer = EventFileWriter(str(run_dir))
    assert not run_dir.exists() and writer.path is None
    writer.close()
    assert not run_dir.exists()


def test_scalars_histograms_and_metadata_as_tensorboard_reads_them(tmp_path):
    writer = EventFileWriter(str(tmp_path))
    metadata = RunMetadata(batch_size=8, layers=(LayerMeta("dense", 0, "Dense"),))
    writer.add_summary(metadata_summary(metadata), 1)
    summary = scalars_summary({"act_std/dense": 0.5, "loss/model": 2.0})
    histogram_value(
        summary, "act_hist/dense", np.linspace(0, 1, 4), np.array([1, 2, 3])
    )
    writer.add_summary(summary, 7)
    writer.close()
    assert os.path.basename(writer.path).startswith("events.out.tfevents.")
    first, meta_event, scalar_event = events(writer.path)
    assert first.file_version == "brain.Event:2"
    by_tag = {v.tag: v for v in meta_event.summary.value}
    text = by_tag[tags.METADATA_TAG]
    assert text.metadata.plugin_data.plugin_name == tags.METADATA_PLUGIN
    assert RunMetadata.loads(text.tensor.string_val[0].decode()) == metadata
    assert (
        "| 0 | dense | Dense |"
        in by_tag[tags.LAYERS_TABLE_TAG].tensor.string_val[0].decode()
    )
    values = {v.tag: v for v in scalar_event.summary.value}
    assert scalar_event.step == 7
    assert list(values["act_std/dense"].tensor.float_val) == [0.5]  # as TB migrates it
    histogram = values["act_hist/dense"]
    assert histogram.metadata.plugin_data.plugin_name == "histograms"
    data = np.frombuffer(histogram.tensor.tensor_content, dtype=np.float64).reshape(
        3, 3
    )
    np.testing.assert_allclose(data[:, 2], [1, 2, 3])
    json.loads(text.tensor.string_val[0])


def test_two_writers_in_one_second_never_share_a_file(tmp_path):
    paths = set()
    for _ in range(3):
        writer = EventFileWriter(str(tmp_path))
        writer.add_summary(scalars_summary({"loss/model": 1.0}), 1)
        writer.close()
        paths.add(writer.path)
    assert len(paths) == 3


def test_every_record_is_flushed_as_written(tmp_path):
    writer = EventFileWriter(str(tmp_path))
    writer.add_summary(scalars_summary({"loss/model": 1.0}), 1)
    # Not closed: what a killed process leaves behind is already readable.
    assert [e.step for e in events(writer.path)][1:] == [1]
    writer.close()


def test_an_unwritable_directory_fails_once_then_drops_quietly(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    writer = EventFileWriter(str(blocker / "run"))
    try:
        writer.add_summary(scalars_summary({"loss/model": 1.0}), 1)
    except OSError:
        pass
    else:
        raise AssertionError("the first failure must surface")
    assert writer.error is not None
    writer.add_summary(scalars_summary({"loss/model": 1.0}), 2)  # no second raise


def test_text_summary_is_one_string_for_the_text_dashboard():
    summary = text_summary(tags.FINDINGS_TAG, "| a | b |")
    (value,) = summary.value
    assert value.tag == tags.FINDINGS_TAG
    assert value.metadata.plugin_data.plugin_name == "text"
    assert value.tensor.dtype == 7  # DT_STRING
    assert list(value.tensor.string_val) == [b"| a | b |"]
