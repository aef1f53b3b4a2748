"""Logdirs for the TensorBoard plugin's tests, and TensorBoard's own provider.

The runs are the synthetic ones of `synthetic_runs` (written with bnscope's
TF-free writer, as the callback writes them); `old_logs=True` writes them as
bnscope did before the metadata declared its data class, which TensorBoard's
data provider then does not list.
"""

from __future__ import annotations

import os

from tensorboard import context
from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
from tensorboard.compat.proto import summary_pb2

from bnscope import tags
from bnscope.events import writer as event_writer
from bnscope.events.dashboard import DashboardFilter
from tests.support.synthetic_runs import (
    SICK_RUNS,
    SyntheticRun,
    frozen_bn_drift,
    mlp_bn,
    plain_mlp,
)


def write_without_data_class(run: SyntheticRun, run_dir) -> None:
    """`run` as bnscope wrote it before `DATA_CLASS_TENSOR` was set."""
    original = event_writer.metadata_summary

    def old_metadata_summary(metadata):
        summary = original(metadata)
        for value in summary.value:
            value.metadata.data_class = summary_pb2.DATA_CLASS_UNKNOWN
        return summary

    import tests.support.synthetic_runs as synthetic_runs

    synthetic_runs.metadata_summary = old_metadata_summary
    try:
        run.write(run_dir)
    finally:
        synthetic_runs.metadata_summary = original


def write_as_observer(run: SyntheticRun, run_dir) -> DashboardFilter:
    """`run` as `Observer._write` writes it: metadata, layout, filtered scalars."""
    dashboard = DashboardFilter()
    metadata = run.metadata()
    writer = event_writer.EventFileWriter(os.fspath(run_dir))
    for index, step in enumerate(run.steps):
        if index == 0:
            writer.add_summary(event_writer.metadata_summary(metadata), step)
        values = dashboard.scalars(run.probe_values(index), metadata)
        layout = dashboard.layout(values, metadata)
        if layout is not None:
            writer.add_summary(layout, step)
        writer.add_summary(dashboard.summary(values), step)
    writer.close()
    return dashboard


def write_every_rule(logdir) -> dict[str, SyntheticRun]:
    """One run per rule id, the healthy MLP and a frozen BN, under `logdir`."""
    runs = {name: factory() for name, factory in SICK_RUNS.items()}
    runs["healthy"] = mlp_bn()
    runs["frozen_bn_drift"] = frozen_bn_drift()
    for name, run in runs.items():
        run.write(os.path.join(logdir, name, tags.RUN_DIRNAME))
    # And one as the observer writes it today: filtered and described.
    runs["described"] = mlp_bn()
    write_as_observer(runs["described"], os.path.join(logdir, "described", "bnscope"))
    return runs


def write_pair(logdir, old_logs: bool = False) -> None:
    """`sick/bnscope` (a plain sigmoid MLP) and `healthy/bnscope` (with BN)."""
    for name, run in (("sick", plain_mlp(depth=8)), ("healthy", mlp_bn())):
        run_dir = os.path.join(logdir, name, tags.RUN_DIRNAME)
        if old_logs:
            write_without_data_class(run, run_dir)
        else:
            run.write(run_dir)


def provider_for(logdir):
    """TensorBoard's Python data provider over `logdir`, loaded once."""
    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(os.fspath(logdir))
    multiplexer.Reload()
    return data_provider.MultiplexerDataProvider(multiplexer, os.fspath(logdir))


def request_context():
    return context.RequestContext()
