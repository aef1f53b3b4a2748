"""A minimal, obviously correct event-file reader for the callback tests.

Kept separate from `bnscope.analysis.reader` on purpose: the callback tests should not
trust the code the CLI tests check.
"""

from __future__ import annotations

import glob
import json
import os
from collections import defaultdict

from tensorboard.compat.proto import event_pb2

from bnscope import tags
from bnscope.events.tfrecord import iter_records


def events(run_dir: str) -> list[event_pb2.Event]:
    found = []
    for path in sorted(glob.glob(os.path.join(run_dir, "*tfevents*"))):
        with open(path, "rb") as handle:
            found.extend(
                event_pb2.Event.FromString(r) for r in iter_records(handle.read())
            )
    return found


def scalars(run_dir: str) -> dict[str, list[tuple[int, float]]]:
    """`tag -> [(step, value), ...]` for every scalar in the run."""
    series = defaultdict(list)
    for event in events(run_dir):
        for value in event.summary.value:
            if value.HasField("simple_value"):
                series[value.tag].append((event.step, value.simple_value))
    return dict(series)


def metadata(run_dir: str) -> dict:
    """The latest bnscope metadata record of the run."""
    found = None
    for event in events(run_dir):
        for value in event.summary.value:
            if value.tag == tags.METADATA_TAG:
                found = json.loads(value.tensor.string_val[0])
    assert found is not None, "no metadata written"
    return found


def tags_of(run_dir: str, metric: tags.Metric) -> set[str]:
    """Subjects that have a scalar for `metric`."""
    prefix = metric.name + "/"
    return {tag[len(prefix) :] for tag in scalars(run_dir) if tag.startswith(prefix)}


def texts(run_dir: str, tag: str) -> list[tuple[int, str]]:
    """`[(step, text), ...]` of every text record written under `tag`."""
    return [
        (event.step, value.tensor.string_val[0].decode())
        for event in events(run_dir)
        for value in event.summary.value
        if value.tag == tag
    ]
