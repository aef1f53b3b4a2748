"""`bnscope.load`: the public reading API, against the reader and the rules."""

from __future__ import annotations

import pytest

import bnscope
from bnscope.analysis.reader import read_logdir
from bnscope.analysis.summary import summarize
from tests.support.synthetic_runs import SICK_RUNS, mlp_bn


@pytest.fixture
def logdir(tmp_path):
    mlp_bn().write(tmp_path / "healthy" / "bnscope")
    SICK_RUNS["vanishing_gradient"]().write(tmp_path / "sick" / "bnscope")
    return tmp_path


def test_load_gives_what_the_reader_gives(logdir):
    loaded = bnscope.load(logdir)
    direct = read_logdir(str(logdir))
    assert [run.name for run in loaded.runs] == ["healthy/bnscope", "sick/bnscope"]
    for a, b in zip(loaded.runs, direct.runs):
        assert a.layers == b.layers and set(a.scalars) == set(b.scalars)


def test_layers_series_and_findings(logdir):
    run = bnscope.load(logdir).run("sick/bnscope")
    first = run.layers[0]
    assert first.depth == 0 and first.class_name == "Dense"
    grad = run.series("grad_norm", first.name)
    assert grad is not None and len(grad) == len(run.probe_steps)
    found = bnscope.findings(run)
    assert found == summarize(run).findings
    assert "vanishing_gradient" in {f.rule for f in found}
    assert bnscope.findings(bnscope.load(logdir).run("healthy/bnscope")) == ()


def test_load_run_reads_one_directory(logdir):
    run = bnscope.load_run(logdir / "sick" / "bnscope")
    assert run.name == "bnscope" and run.layers


def test_to_pandas_matches_the_series(logdir):
    loaded = bnscope.load(logdir)
    frame = loaded.to_pandas()
    run = loaded.run("sick/bnscope")
    layer = run.layers[0].name
    rows = frame[
        (frame.run == "sick/bnscope")
        & (frame.metric == "grad_norm")
        & (frame.layer == layer)
    ]
    series = run.series("grad_norm", layer)
    assert rows.step.tolist() == series.steps.tolist()
    assert rows.value.tolist() == series.values.tolist()
    assert len(frame) == sum(r.stats.scalars for r in loaded.runs)
