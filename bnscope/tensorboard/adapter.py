"""TensorBoard data provider → the `Run` that bnscope's TF-free reader returns.

`bnscope summarize` reads event files itself. Inside TensorBoard the plugin
must read what TensorBoard already loaded, through `context.data_provider`
(the Python multiplexer or the Rust data server, local or remote logdirs
alike), and hand the rules the very dataclass the reader builds:

- `Run.scalars`: every bnscope scalar tag (`<metric>/<subject>` whose metric
  is one of `bnscope.tags.ALL_METRICS`, histograms excepted) as a `Series`
  of int64 steps and float64 values, sorted by step, one value per step
  (the later one wins, as in the reader);
- `Run.metadata`: the latest `bnscope/metadata` JSON string tensor (plugin
  name `bnscope`);
- `Run.layers`: from the metadata in depth order, exactly as the reader
  derives them (`Run`'s own default).

It also hands the page the `bnscope/findings` Markdown text summary written
at the end of a `fit`, when the run holds one.

TensorBoard only hands a plugin tensors whose `SummaryMetadata.data_class`
is known. The text, scalar and histogram summaries get one on load
(`tensorboard/dataclass_compat.py`), but a tensor with plugin name `bnscope`
written without `data_class = DATA_CLASS_TENSOR` stays `DATA_CLASS_UNKNOWN`
and `list_tensors` never lists it. For such runs the layers come from the
`bnscope/layers` markdown table (a text summary, which TensorBoard does
expose): names, depth, class, activation, params and normalization kind, but
no batch size, inputs, `inputs_from`, momentum or training mode. The rules
that need those stay silent and `Run.notes` says so. bnscope's writer sets
that data class (`bnscope.events.writer.metadata_summary`); older logs lack it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from tensorboard.data import provider as tb_provider

from bnscope import tags
from bnscope.analysis.runs import ReadStats, Run, Series, fits_from_records
from bnscope.events.markdown import parse_layers_markdown

SCALARS_PLUGIN = "scalars"
TEXT_PLUGIN = "text"
# `downsample` is a cap on the points returned per time series. TensorBoard
# already keeps at most `--samples_per_plugin scalars=N` (default 1000) per
# series when it loads a run, so asking for more than any run can hold returns
# every point it kept.
ALL_POINTS = 2**31 - 1
# TensorBoard's default reservoir for scalars: a series this long may have
# been sampled down at load time (`--samples_per_plugin scalars=0` keeps all).
DEFAULT_SCALAR_RESERVOIR = 1000


METADATA_FROM_TENSOR = "tensor"
METADATA_FROM_TABLE = "layers_table"
METADATA_MISSING = "missing"

NOTE_TABLE_ONLY = (
    "bnscope/metadata is not visible through TensorBoard (written without a "
    "data class); layers come from the bnscope/layers table, so the checks "
    "that need the batch size, the inputs or the layer wiring are skipped here "
    "(`bnscope summarize` runs them all)"
)
NOTE_NO_METADATA = "no bnscope/metadata: layer classes and activations unknown"


def is_bnscope_scalar(tag: str) -> bool:
    name, sep, subject = tag.partition("/")
    return bool(sep and subject) and name in tags.SCALAR_METRICS


@dataclass(frozen=True)
class RunIndex:
    """What the provider lists for one bnscope run, cheaply.

    Args:
        name: TensorBoard's run name (the directory relative to the logdir).
        scalar_tags: The run's bnscope scalar tags, in the provider's order.
        metadata_tag: True if `bnscope/metadata` is listed (plugin `bnscope`).
        table_tag: True if the `bnscope/layers` text table is listed.
        findings_tag: True if the `bnscope/findings` text summary is listed.
        generation: Changes whenever new data arrives for the run.
    """

    name: str
    scalar_tags: tuple[str, ...]
    metadata_tag: bool
    table_tag: bool
    generation: tuple
    findings_tag: bool = False
    probe: tuple | None = None  # (tag, max_step, max_wall_time): see `probe_generation`


@dataclass(frozen=True)
class ProviderRun:
    """A `Run` built from the data provider, and how it was built."""

    run: Run
    metadata_source: str
    possibly_sampled: int  # series at the scalar reservoir limit
    findings_markdown: str | None = None  # the latest `bnscope/findings` text
    timings: Mapping[str, float] = field(default_factory=dict)


def _filter(runs=None, tags_=None):
    return tb_provider.RunTagFilter(runs=runs, tags=tags_)


def list_runs(
    data_provider, ctx, experiment_id: str, runs: list[str] | None = None
) -> dict[str, RunIndex]:
    """Every run with bnscope scalars or a `bnscope/metadata` tensor, by name.

    Args:
        runs: Only these runs. Defaults to `None`: every run.
    """
    scalars = data_provider.list_scalars(
        ctx,
        experiment_id=experiment_id,
        plugin_name=SCALARS_PLUGIN,
        run_tag_filter=_filter(runs) if runs is not None else None,
    )
    meta = data_provider.list_tensors(
        ctx,
        experiment_id=experiment_id,
        plugin_name=tags.METADATA_PLUGIN,
        run_tag_filter=_filter(runs, [tags.METADATA_TAG]),
    )
    tables = data_provider.list_tensors(
        ctx,
        experiment_id=experiment_id,
        plugin_name=TEXT_PLUGIN,
        run_tag_filter=_filter(runs, [tags.LAYERS_TABLE_TAG, tags.FINDINGS_TAG]),
    )
    result: dict[str, RunIndex] = {}
    for run in sorted(set(scalars) | set(meta)):
        by_tag = scalars.get(run, {})
        bn_tags = tuple(tag for tag in by_tag if is_bnscope_scalar(tag))
        has_meta = tags.METADATA_TAG in meta.get(run, {})
        if not bn_tags and not has_meta:
            continue
        series = [by_tag[tag] for tag in bn_tags]
        series += list(meta.get(run, {}).values()) + list(tables.get(run, {}).values())
        generation = (
            len(bn_tags),
            max((s.max_step for s in series), default=None),
            max((s.max_wall_time for s in series), default=None),
        )
        probe = None
        if bn_tags:
            tag = PROBE_TAG if PROBE_TAG in by_tag else bn_tags[0]
            probe = (tag, by_tag[tag].max_step, by_tag[tag].max_wall_time)
        result[run] = RunIndex(
            name=run,
            scalar_tags=bn_tags,
            metadata_tag=has_meta,
            table_tag=tags.LAYERS_TABLE_TAG in tables.get(run, {}),
            findings_tag=tags.FINDINGS_TAG in tables.get(run, {}),
            generation=generation,
            probe=probe,
        )
    return result


# Written at every probe, with every other scalar of that probe in the same
# event: when its last step and time have not moved, nothing else has.
PROBE_TAG = tags.LOSS.tag(tags.MODEL_SUBJECT)


def probe_generation(data_provider, ctx, experiment_id: str, run: str, tag: str):
    """`(tag, max_step, max_wall_time)` of one series: a cheap freshness check
    (one tag listed instead of thousands)."""
    listed = data_provider.list_scalars(
        ctx,
        experiment_id=experiment_id,
        plugin_name=SCALARS_PLUGIN,
        run_tag_filter=_filter([run], [tag]),
    )
    series = listed.get(run, {}).get(tag)
    return None if series is None else (tag, series.max_step, series.max_wall_time)


def _series(data) -> Series:
    count = len(data)
    steps = np.fromiter((d.step for d in data), dtype=np.int64, count=count)
    values = np.fromiter((d.value for d in data), dtype=np.float64, count=count)
    if count > 1 and not (np.diff(steps) > 0).all():
        order = np.argsort(steps, kind="stable")
        steps, values = steps[order], values[order]
        last_of_step = np.append(steps[1:] != steps[:-1], True)
        steps, values = steps[last_of_step], values[last_of_step]
    return Series(steps=steps, values=values)


def _text_of(datum) -> str | None:
    array = np.asarray(datum.numpy)
    if array.size == 0:
        return None
    item = array.reshape(-1)[0]
    if isinstance(item, bytes):
        return item.decode("utf-8", "replace")
    return str(item)


def _texts(
    data_provider, ctx, experiment_id, run, plugin, tag
) -> list[tuple[int, str]]:
    """Every `(step, text)` of a string-tensor tag that TensorBoard kept."""
    result = data_provider.read_tensors(
        ctx,
        experiment_id=experiment_id,
        plugin_name=plugin,
        downsample=ALL_POINTS,
        run_tag_filter=_filter([run], [tag]),
    )
    data = result.get(run, {}).get(tag) or []
    return [
        (datum.step, text) for datum in data if (text := _text_of(datum)) is not None
    ]


def _latest_text(data_provider, ctx, experiment_id, run, plugin, tag) -> str | None:
    texts = _texts(data_provider, ctx, experiment_id, run, plugin, tag)
    return texts[-1][1] if texts else None


def read_run(
    data_provider,
    ctx,
    experiment_id: str,
    index: RunIndex,
    *,
    reservoir: int | None = DEFAULT_SCALAR_RESERVOIR,
    data_location: str | None = None,
) -> ProviderRun:
    """Builds the `Run` of one bnscope run from the data provider.

    Args:
        data_provider: `context.data_provider`.
        ctx: The request's `RequestContext`.
        experiment_id: The request's experiment id.
        index: The run, from `list_runs`.
        reservoir: TensorBoard's scalar reservoir size (`--samples_per_plugin
            scalars=N`; 0 or None: unlimited), to flag possibly sampled series.
        data_location: The logdir, for `Run.path`.
    """
    timings: dict[str, float] = {}
    start = time.perf_counter()
    read = data_provider.read_scalars(
        ctx,
        experiment_id=experiment_id,
        plugin_name=SCALARS_PLUGIN,
        downsample=ALL_POINTS,
        run_tag_filter=_filter([index.name], list(index.scalar_tags)),
    ).get(index.name, {})
    timings["read_scalars"] = time.perf_counter() - start
    start = time.perf_counter()
    scalars: dict[str, Series] = {}
    sampled = 0
    for tag in index.scalar_tags:  # the provider's listing order
        data = read.get(tag)
        if not data:
            continue
        scalars[tag] = _series(data)
        if reservoir and len(data) >= reservoir:
            sampled += 1
    timings["series"] = time.perf_counter() - start

    start = time.perf_counter()
    notes: list[str] = []
    metadata = None
    fits: tuple = ()
    layers = None
    source = METADATA_MISSING
    if index.metadata_tag:
        # Every fit's record, as the reader keeps them: per-fit segments.
        records = _texts(
            data_provider,
            ctx,
            experiment_id,
            index.name,
            tags.METADATA_PLUGIN,
            tags.METADATA_TAG,
        )
        fits = fits_from_records(records, notes)
        if fits:
            metadata = fits[-1].metadata
            source = METADATA_FROM_TENSOR
    if metadata is None and index.table_tag:
        text = _latest_text(
            data_provider,
            ctx,
            experiment_id,
            index.name,
            TEXT_PLUGIN,
            tags.LAYERS_TABLE_TAG,
        )
        layers = parse_layers_markdown(text or "") or None
        if layers:
            source = METADATA_FROM_TABLE
            notes.append(NOTE_TABLE_ONLY)
    if source == METADATA_MISSING:
        notes.append(NOTE_NO_METADATA)
    if sampled:
        notes.append(
            f"{sampled} series have {reservoir} points, TensorBoard's scalar "
            "reservoir: they may be sampled down; start TensorBoard with "
            "--samples_per_plugin scalars=0 to keep every probe"
        )
    findings_markdown = None
    if index.findings_tag:
        findings_markdown = _latest_text(
            data_provider,
            ctx,
            experiment_id,
            index.name,
            TEXT_PLUGIN,
            tags.FINDINGS_TAG,
        )
    timings["metadata"] = time.perf_counter() - start
    run = Run(
        name=index.name,
        path=_join(data_location, index.name),
        scalars=scalars,
        metadata=metadata,
        stats=ReadStats(scalars=sum(len(s) for s in scalars.values())),
        notes=tuple(notes),
        layers=layers,
        fits=fits,
    )
    return ProviderRun(
        run=run,
        metadata_source=source,
        possibly_sampled=sampled,
        findings_markdown=findings_markdown,
        timings=timings,
    )


def _join(location: str | None, run: str) -> str:
    if not location:
        return run
    return location.rstrip("/") + "/" + run if run != "." else location
