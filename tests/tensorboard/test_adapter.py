"""The provider → `Run` adapter gives the rules what the reader gives them.

In-process, through TensorBoard's Python data provider (the multiplexer);
test_plugin.py does the same through a real TensorBoard, Rust data server
included.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from tensorboard.compat.proto import summary_pb2

from bnscope import tags
from bnscope.analysis import jsonv1
from bnscope.analysis.reader import read_logdir, read_run
from bnscope.analysis.rules import evaluate
from bnscope.events.writer import EventFileWriter, text_value
from bnscope.tensorboard import adapter
from tests.support import tensorboard_logs
from tests.support.synthetic_runs import SICK_RUNS


def provider_runs(logdir) -> dict[str, adapter.ProviderRun]:
    provider = tensorboard_logs.provider_for(logdir)
    ctx = tensorboard_logs.request_context()
    indexes = adapter.list_runs(provider, ctx, "")
    return {
        name: adapter.read_run(provider, ctx, "", index)
        for name, index in indexes.items()
    }


@pytest.fixture(scope="module")
def every_rule(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("every_rule")
    tensorboard_logs.write_every_rule(logdir)
    return logdir


def findings_of(run) -> list[dict]:
    return [jsonv1.finding(f) for f in evaluate(run)]


def test_findings_equal_the_readers_on_every_rule(every_rule):
    expected = {run.name: run for run in read_logdir(str(every_rule)).runs}
    built = provider_runs(every_rule)
    assert sorted(built) == sorted(expected)
    fired = set()
    for name, provider_run in built.items():
        assert provider_run.metadata_source == adapter.METADATA_FROM_TENSOR
        want = findings_of(expected[name])
        assert findings_of(provider_run.run) == want, name
        fired |= {f["rule"] for f in want}
    assert fired >= set(SICK_RUNS)  # every rule saw the adapter's Run


def test_scalars_layers_and_metadata_equal_the_readers(every_rule):
    for name, provider_run in provider_runs(every_rule).items():
        run = provider_run.run
        expected = read_run(os.path.join(every_rule, name), name)
        assert run.layers == expected.layers
        assert run.metadata == expected.metadata
        assert set(run.scalars) == set(expected.scalars)
        for tag, series in expected.scalars.items():
            np.testing.assert_array_equal(run.scalars[tag].steps, series.steps)
            np.testing.assert_array_equal(run.scalars[tag].values, series.values)


def test_logs_without_a_data_class_fall_back_to_the_layer_table(tmp_path):
    tensorboard_logs.write_pair(tmp_path, old_logs=True)
    expected = {run.name: run for run in read_logdir(str(tmp_path)).runs}
    for name, provider_run in provider_runs(tmp_path).items():
        assert provider_run.metadata_source == adapter.METADATA_FROM_TABLE
        run = provider_run.run
        assert [layer.name for layer in run.layers] == [
            layer.name for layer in expected[name].layers
        ]
        assert adapter.NOTE_TABLE_ONLY in run.notes
        got = {(f["rule"], f["layer"]) for f in findings_of(run)}
        assert got <= {(f["rule"], f["layer"]) for f in findings_of(expected[name])}
        if name.startswith("sick"):
            assert ("vanishing_gradient", "dense") in got


def test_the_findings_text_summary_is_handed_on(tmp_path):
    tensorboard_logs.write_pair(tmp_path)
    writer = EventFileWriter(str(tmp_path / "sick" / "bnscope"))
    summary = summary_pb2.Summary()
    text_value(summary, tags.FINDINGS_TAG, "**1 warning**: vanishing_gradient")
    writer.add_summary(summary, 1000)
    writer.close()
    runs = provider_runs(tmp_path)
    assert runs["sick/bnscope"].findings_markdown == "**1 warning**: vanishing_gradient"
    assert runs["healthy/bnscope"].findings_markdown is None


def test_runs_without_bnscope_data_are_not_listed(tmp_path):
    from tests.support.synthetic_runs import write_tensorboard_only

    write_tensorboard_only(tmp_path / "train")
    tensorboard_logs.write_pair(tmp_path)
    assert sorted(provider_runs(tmp_path)) == ["healthy/bnscope", "sick/bnscope"]


def test_series_are_sorted_and_the_later_value_of_a_step_wins():
    from types import SimpleNamespace

    data = [SimpleNamespace(step=s, value=v) for s, v in [(2, 1.0), (1, 5.0), (2, 3.0)]]
    series = adapter._series(data)
    assert series.steps.tolist() == [1, 2] and series.values.tolist() == [5.0, 3.0]
