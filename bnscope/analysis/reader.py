"""Reads bnscope runs back from TensorBoard event files, without TensorFlow.

Event files are TFRecord-framed `Event` protos (`bnscope.events.tfrecord`). This
module checks every record's masked CRC32C, skips and counts a corrupt record
instead of giving up on the rest of the file, tolerates a truncated tail (a
run still training), merges the several files of a resumed run, and returns
frozen dataclasses for the rules and the report.

Runs are found by `bnscope.analysis.discovery`, as TensorBoard finds them.

Scalars are decoded in bulk: the first event of each tag layout is parsed
with protobuf, later ones through a `SummaryTemplate`
(`bnscope.events.decoding`), without a proto parse.
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from google.protobuf.message import DecodeError
from tensorboard.compat.proto import event_pb2

from bnscope import tags
from bnscope.analysis.discovery import (
    ReaderError,
    event_files,
    find_run_dirs,
    reason,
    run_names,
)
from bnscope.analysis.runs import Fit, Logdir, ReadStats, Run, Series, fits_from_records
from bnscope.events.decoding import (
    SummaryTemplate,
    event_summary_span,
    summary_template,
)
from bnscope.events.tfrecord import FramingReport, iter_records

__all__ = ["ReaderError", "iter_runs", "read_logdir", "read_run"]


class NotRegularFileError(OSError):
    """A `*tfevents*` name on a FIFO, device, socket or directory: never read."""


_SPECIAL_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a directory"),
)


def _read_bytes(path: str) -> bytes:
    """The bytes of a regular file, at most as many as it had when opened.

    `O_NONBLOCK` makes opening a FIFO return at once instead of waiting for a
    writer, and the size check on the open descriptor (not on the name, which
    may change in between) refuses FIFOs and devices such as `/dev/zero`, which
    would block forever or never end.

    Raises:
        NotRegularFileError: If `path` (or what a link at `path` points to) is
            not a regular file.
        OSError: If it cannot be opened or read.
    """
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        info = os.fstat(descriptor)
    except OSError:
        os.close(descriptor)
        raise
    if not stat.S_ISREG(info.st_mode):
        os.close(descriptor)
        kind = next(
            (name for test, name in _SPECIAL_KINDS if test(info.st_mode)), "unknown"
        )
        raise NotRegularFileError(f"not a regular file ({kind})")
    with os.fdopen(descriptor, "rb") as file:
        # A file still being written may grow; what follows is read next time.
        return file.read(info.st_size)


# -- Decoding -------------------------------------------------------------------


@dataclass
class _Layout:
    """One distinct tuple of tags, decoded once and reused for later events."""

    scalar_positions: list[int]
    scalar_tags: list[str]
    fast: bool  # every value is a bnscope `simple_value` scalar
    simple: bool  # every scalar position holds a `simple_value`
    metadata_position: int | None
    template: bool = False  # a `SummaryTemplate` was built (or given up on)
    template_tries: int = 0
    steps: list[int] = field(default_factory=list)
    sequence: list[int] = field(default_factory=list)
    files: list[int] = field(default_factory=list)
    rows: list = field(default_factory=list)


@dataclass
class _Accumulator:
    layouts: dict[tuple[str, ...], _Layout] = field(default_factory=dict)
    templates: dict[int, list[SummaryTemplate]] = field(default_factory=dict)
    # One per fit: (sequence, step, file index, json text).
    metadata: list[tuple[int, int, int, str]] = field(default_factory=list)
    sequence: int = 0
    file_min_steps: list[float] = field(default_factory=list)
    records: int = 0
    undecodable: int = 0


def _new_layout(values) -> _Layout:
    positions: list[int] = []
    scalar_tags: list[str] = []
    metadata_position = None
    fast = simple = True
    for index, value in enumerate(values):
        tag = value.tag
        if tag == tags.METADATA_TAG:
            metadata_position = index
            fast = False
            continue
        parsed = tags.parse_tag(tag)
        if parsed is not None and parsed[0].kind == tags.SCALAR:
            positions.append(index)
            scalar_tags.append(tag)
            if value.WhichOneof("value") != "simple_value":
                fast = simple = False
        else:
            fast = False
    return _Layout(positions, scalar_tags, fast, simple, metadata_position)


def _scalar_of(value) -> float:
    """A scalar from a `simple_value` or from a one-element float tensor."""
    kind = value.WhichOneof("value")
    if kind == "simple_value":
        return value.simple_value
    if kind == "tensor":
        tensor = value.tensor
        for repeated in (tensor.float_val, tensor.double_val):
            if len(repeated) == 1:
                return float(repeated[0])
        if tensor.tensor_content and tensor.dtype in (1, 2):  # DT_FLOAT, DT_DOUBLE
            dtype = "<f4" if tensor.dtype == 1 else "<f8"
            array = np.frombuffer(tensor.tensor_content, dtype=dtype)
            if array.size == 1:
                return float(array[0])
    return math.nan


# A layout's first event may carry extras a template cannot hold (the tag
# descriptions bnscope writes once per tag); its next events usually do not.
_TEMPLATE_TRIES = 3


def _add_template(acc: _Accumulator, layout: _Layout, summary: bytes) -> None:
    template = summary_template(layout, summary, len(layout.scalar_positions))
    layout.template_tries += 1
    if template is not None:
        acc.templates.setdefault(len(summary), []).append(template)
    layout.template = template is not None or layout.template_tries >= _TEMPLATE_TRIES


def _decode_file(
    data: bytes, file_index: int, acc: _Accumulator, report: FramingReport
) -> None:
    layouts = acc.layouts
    templates = acc.templates
    min_step = math.inf
    for record in iter_records(data, report):
        acc.records += 1
        span = event_summary_span(record)
        row = layout = None
        if span is not None:
            step, start, end = span
            candidates = templates.get(end - start)
            if candidates:
                raw = np.frombuffer(
                    record, dtype=np.uint8, count=end - start, offset=start
                )
                for template in candidates:
                    row = template.values(raw)
                    if row is not None:
                        layout = template.layout
                        break
        if row is None:
            try:
                event = event_pb2.Event.FromString(record)
            except DecodeError:
                acc.undecodable += 1
                continue
            values = event.summary.value
            if not values:
                continue
            key = tuple([v.tag for v in values])
            layout = layouts.get(key)
            if layout is None:
                layout = layouts[key] = _new_layout(values)
            step = event.step
            acc.sequence += 1
            if layout.metadata_position is not None:
                tensor = values[layout.metadata_position].tensor
                if tensor.string_val:
                    text = tensor.string_val[0].decode("utf-8", "replace")
                    acc.metadata.append((acc.sequence, step, file_index, text))
            if not layout.scalar_positions:
                continue
            if layout.fast:
                row = [v.simple_value for v in values]
                if not layout.template and span is not None:
                    _add_template(acc, layout, record[span[1] : span[2]])
            elif layout.simple:
                row = [values[i].simple_value for i in layout.scalar_positions]
            else:
                row = [_scalar_of(values[i]) for i in layout.scalar_positions]
        else:
            acc.sequence += 1
        layout.rows.append(row)
        layout.steps.append(step)
        layout.sequence.append(acc.sequence)
        layout.files.append(file_index)
        if step < min_step:
            min_step = step
    acc.file_min_steps.append(min_step)


def _merge_series(acc: _Accumulator) -> dict[str, Series]:
    """Builds one sorted `Series` per tag from every layout's rows.

    A later file that starts at step S supersedes what earlier files recorded
    at steps >= S (training resumed from a checkpoint), as TensorBoard purges
    orphaned steps; among duplicates of one (tag, step), the later record wins.
    """
    # cutoff[f]: the smallest first step of any file after f.
    mins = acc.file_min_steps
    cutoff = np.full(len(mins), np.inf)
    running = math.inf
    for index in range(len(mins) - 1, -1, -1):
        cutoff[index] = running
        running = min(running, mins[index])

    pieces: dict[str, list[tuple[np.ndarray, ...]]] = {}
    for layout in acc.layouts.values():
        if not layout.rows:
            continue
        steps = np.asarray(layout.steps, dtype=np.int64)
        sequence = np.asarray(layout.sequence, dtype=np.int64)
        keep = steps < cutoff[np.asarray(layout.files, dtype=np.int64)]
        # Fast rows hold every value, and every value is a scalar, in tag order.
        matrix = np.asarray(layout.rows, dtype=np.float64)
        if not keep.all():
            steps, sequence, matrix = steps[keep], sequence[keep], matrix[keep]
        for column, tag in enumerate(layout.scalar_tags):
            pieces.setdefault(tag, []).append((steps, sequence, matrix[:, column]))

    scalars: dict[str, Series] = {}
    for tag, parts in pieces.items():
        if len(parts) == 1:
            steps, sequence, values = parts[0]
        else:
            steps = np.concatenate([p[0] for p in parts])
            sequence = np.concatenate([p[1] for p in parts])
            values = np.concatenate([p[2] for p in parts])
        if len(steps) == 0:
            continue
        if len(steps) > 1 and not (np.diff(steps) > 0).all():
            order = np.lexsort((sequence, steps))
            steps, values = steps[order], values[order]
            last_of_step = np.append(steps[1:] != steps[:-1], True)
            steps, values = steps[last_of_step], values[last_of_step]
        scalars[tag] = Series(steps=np.ascontiguousarray(steps), values=values.copy())
    return scalars


def _fits(acc: _Accumulator, notes: list[str]) -> tuple[Fit, ...]:
    """Each fit's metadata with the step it was written at, in training order.

    The callback writes the metadata at the first probe of every `fit`. A
    record that a later file supersedes (training resumed from an earlier
    step) is dropped with the steps it described.
    """
    mins = acc.file_min_steps
    kept = [
        (step, text)
        for _, step, file_index, text in sorted(acc.metadata)
        if not [m for m in mins[file_index + 1 :] if m <= step]
    ]
    return fits_from_records(kept, notes)


def read_run(run_dir: str, name: str | None = None) -> Run:
    """Reads and merges every event file of one run directory.

    Args:
        run_dir: A directory directly holding `*tfevents*` files.
        name: The run's name. Defaults to `None`: the directory's basename.

    Returns:
        A `Run`; check `run.is_bnscope` and `run.notes`.
    """
    acc = _Accumulator()
    skipped = {"truncated": [], "empty": [], "unreadable": [], "garbage": []}
    corrupt = skipped_bytes = 0
    notes: list[str] = []
    files = event_files(run_dir)
    for index, path in enumerate(files):
        base = os.path.basename(path)
        try:
            data = _read_bytes(path)
        except NotRegularFileError as error:
            skipped["unreadable"].append(base)
            notes.append(f"skipped {base}: {error}")
            acc.file_min_steps.append(math.inf)
            continue
        except (OSError, MemoryError) as error:
            skipped["unreadable"].append(base)
            why = reason(error) if isinstance(error, OSError) else "too large to read"
            notes.append(f"unreadable file {base}: {why}")
            acc.file_min_steps.append(math.inf)
            continue
        if not data:
            skipped["empty"].append(base)
            notes.append(f"empty file {base} skipped")
            acc.file_min_steps.append(math.inf)
            continue
        report = FramingReport()
        records_before = acc.records
        _decode_file(data, index, acc, report)
        corrupt += report.corrupt_records
        skipped_bytes += report.skipped_bytes
        if acc.records == records_before:
            skipped["garbage"].append(base)
            notes.append(f"no readable records in {base} (not an event file?)")
            continue
        if report.corrupt_records:
            notes.append(
                f"skipped {report.corrupt_records} corrupt record"
                f"{'s' if report.corrupt_records != 1 else ''} "
                f"({report.skipped_bytes} bytes) in {base}"
            )
        if report.truncated_tail:
            skipped["truncated"].append(base)
            notes.append(f"incomplete last record in {base} (still being written?)")
    if acc.undecodable:
        notes.append(f"skipped {acc.undecodable} records that are not Event protos")
    scalars = _merge_series(acc)
    fits = _fits(acc, notes)
    metadata = fits[-1].metadata if fits else None
    if metadata is None and scalars:
        # Tags alone make a bnscope run only when they are unambiguous
        # (`tags.parse_tag`); say so, since the layer details are missing.
        notes.append(
            "no bnscope metadata record (damaged, or an older bnscope): read "
            "from tag names alone; layer kinds and depth order are unknown"
        )
    stats = ReadStats(
        files=len(files),
        records=acc.records,
        scalars=sum(len(s) for s in scalars.values()),
        corrupt_records=corrupt,
        skipped_bytes=skipped_bytes,
        undecodable_events=acc.undecodable,
        truncated_files=tuple(skipped["truncated"]),
        empty_files=tuple(skipped["empty"]),
        unreadable_files=tuple(skipped["unreadable"]),
        garbage_files=tuple(skipped["garbage"]),
    )
    return Run(
        name=name if name is not None else os.path.basename(os.path.abspath(run_dir)),
        path=run_dir,
        scalars=scalars,
        metadata=metadata,
        stats=stats,
        notes=tuple(dict.fromkeys(notes)),
        fits=fits,
    )


def iter_runs(logdir: str) -> Iterator[Run]:
    """Yields every run (bnscope or not) below `logdir`, sorted by name."""
    run_dirs, _ = find_run_dirs(logdir)
    for run_dir, name in zip(run_dirs, run_names(logdir, run_dirs)):
        yield read_run(run_dir, name)


def read_logdir(logdir: str) -> Logdir:
    """Finds and reads every bnscope run below `logdir`.

    Args:
        logdir: The log directory, e.g. the `log_dir` given to `BNScope`.

    Returns:
        A `Logdir`; its `runs` may be empty (the caller decides how to say so).

    Raises:
        ReaderError: If `logdir` does not exist, is not a directory, or cannot
            be listed.

    Example:

    ```python
    for run in read_logdir("logs").runs:
        print(run.name, run.steps, len(run.layers))
    ```
    """
    run_dirs, notes = find_run_dirs(logdir)
    runs: list[Run] = []
    others: list[str] = []
    for run_dir, name in zip(run_dirs, run_names(logdir, run_dirs)):
        try:
            run = read_run(run_dir, name)
        except OSError as error:
            notes.append(f"skipped run {name}: {reason(error)}")
            continue
        if run.is_bnscope:
            runs.append(run)
        else:
            others.append(name)
            notes.extend(f"{name}: {note}" for note in run.notes)
    runs.sort(key=lambda run: run.name)
    return Logdir(
        path=logdir, runs=tuple(runs), other_runs=tuple(others), notes=tuple(notes)
    )
