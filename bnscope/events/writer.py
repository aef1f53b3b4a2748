"""A small TensorBoard event-file writer that needs no TensorFlow.

The callback builds one `Summary` proto per probe step holding every value and
appends it here as one record, so writing costs microseconds per probe instead
of one TensorFlow op per scalar. Every record is flushed to the operating
system when written: a killed training process loses nothing already probed.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import weakref
from collections.abc import Mapping

import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2

from bnscope import tags
from bnscope.events.markdown import layers_markdown
from bnscope.events.tfrecord import encode_record
from bnscope.schema import RunMetadata


def _plugin_metadata(
    plugin_name: str, content: bytes = b""
) -> summary_pb2.SummaryMetadata:
    metadata = summary_pb2.SummaryMetadata()
    metadata.plugin_data.plugin_name = plugin_name
    metadata.plugin_data.content = content
    return metadata


def scalars_summary(values: Mapping[str, float]) -> summary_pb2.Summary:
    """Builds one `Summary` holding every `tag -> value` as a scalar."""
    summary = summary_pb2.Summary()
    add = summary.value.add
    for tag, value in values.items():
        add(tag=tag, simple_value=float(value))
    return summary


def histogram_value(
    summary: summary_pb2.Summary, tag: str, edges: np.ndarray, counts: np.ndarray
) -> None:
    """Appends a TensorBoard histogram (`[k, 3]` tensor of left, right, count)."""
    data = np.stack([edges[:-1], edges[1:], counts], axis=1).astype(np.float64)
    value = summary.value.add(tag=tag)
    value.metadata.CopyFrom(_plugin_metadata("histograms"))
    tensor = value.tensor
    tensor.dtype = 2  # DT_DOUBLE
    tensor.tensor_shape.dim.add(size=data.shape[0])
    tensor.tensor_shape.dim.add(size=3)
    tensor.tensor_content = data.tobytes()


def text_value(
    summary: summary_pb2.Summary, tag: str, text: str | bytes, plugin_name: str = "text"
) -> None:
    """Appends a string tensor (shown by TensorBoard's Text dashboard by default)."""
    value = summary.value.add(tag=tag)
    value.metadata.CopyFrom(_plugin_metadata(plugin_name))
    tensor = value.tensor
    tensor.dtype = 7  # DT_STRING
    tensor.string_val.append(text.encode("utf-8") if isinstance(text, str) else text)


def text_summary(tag: str, text: str) -> summary_pb2.Summary:
    """Builds a `Summary` holding one text record (TensorBoard's Text dashboard)."""
    summary = summary_pb2.Summary()
    text_value(summary, tag, text)
    return summary


def metadata_summary(metadata: RunMetadata) -> summary_pb2.Summary:
    """Builds the once-per-fit summary: the run metadata and its layer table."""
    summary = summary_pb2.Summary()
    text_value(
        summary, tags.METADATA_TAG, metadata.dumps(), plugin_name=tags.METADATA_PLUGIN
    )
    text_value(summary, tags.LAYERS_TABLE_TAG, layers_markdown(metadata))
    return summary


class EventFileWriter:
    """Appends events to one `events.out.tfevents.*` file in `run_dir`.

    The directory and file are created on the first write, so constructing a
    writer never touches the disk.

    Args:
        run_dir: Directory the event file goes in.
    """

    def __init__(self, run_dir: str):
        self.run_dir = run_dir
        self.path: str | None = None
        # The first OSError (unwritable directory, full disk): raised once,
        # then the writer drops events instead of failing on every one.
        self.error: OSError | None = None
        self._file = None

    def _open(self) -> None:
        os.makedirs(self.run_dir, exist_ok=True)
        name = (
            f"events.out.tfevents.{int(time.time()):010d}."
            f"{socket.gethostname()}.{os.getpid()}.bnscope.v2"
        )
        path = os.path.join(self.run_dir, name)
        # Two writers in one second (e.g. two fits) must not share a file.
        counter = 0
        while os.path.exists(path):
            counter += 1
            path = os.path.join(self.run_dir, f"{name}.{counter}")
        self._file = open(path, "ab")  # noqa: SIM115 - lives as long as the writer
        # A `fit` that raises never reaches `on_train_end`: close the file when
        # the writer is collected instead of leaking it (ResourceWarning).
        weakref.finalize(self, self._file.close)
        self.path = path
        header = event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2")
        self._file.write(encode_record(header.SerializeToString()))

    def add_summary(self, summary: summary_pb2.Summary, step: int) -> None:
        """Writes `summary` as one event at `step` and flushes it to the OS."""
        event = event_pb2.Event(wall_time=time.time(), step=int(step))
        event.summary.CopyFrom(summary)
        self.add_event(event)

    def add_event(self, event: event_pb2.Event) -> None:
        if self.error is not None:
            return
        try:
            if self._file is None:
                self._open()
            self._file.write(encode_record(event.SerializeToString()))
            self._file.flush()
        except OSError as error:
            self.error = error
            self._discard()
            raise

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _discard(self) -> None:
        # A failed flush leaves bytes in the buffer that every later write and
        # close() would retry; close the file without them. What was flushed
        # before stays readable (a torn last record fails its CRC).
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
