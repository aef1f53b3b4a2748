"""The `Run` dataclass: its index, lookups and tidy frame."""

from __future__ import annotations

import numpy as np
import pytest

from bnscope import tags
from bnscope.analysis.runs import Logdir, Run, Series
from bnscope.schema import LayerMeta, RunMetadata


def series(*values: float) -> Series:
    return Series(np.arange(len(values), dtype=np.int64) * 10, np.asarray(values))


SCALARS = {
    "grad_norm/dense": series(1.0, 0.5),
    "grad_norm/dense_1": series(2.0, 1.0),
    "grad_var_norm/dense:kernel": series(0.9, 0.4),
    "grad_var_norm/dense:bias": series(0.1, 0.05),
    "grad_var_norm/enc/dense:kernel": series(3.0, 3.0),
    "loss/model": series(2.3, 1.1),
}


def make_run(**kwargs) -> Run:
    return Run(name="exp/bnscope", path="/logs/exp/bnscope", scalars=SCALARS, **kwargs)


def test_series_and_subjects_come_from_the_index():
    run = make_run()
    assert run.series(tags.GRAD_NORM, "dense_1") is SCALARS["grad_norm/dense_1"]
    assert run.series("grad_norm", "dense") is SCALARS["grad_norm/dense"]
    assert run.series(tags.GRAD_NORM, "missing") is None
    assert run.subjects("grad_norm") == ["dense", "dense_1"]
    assert run.subjects(tags.ACT_STD) == []
    assert sorted(run.metrics()) == ["grad_norm", "grad_var_norm", "loss"]


def test_variables_are_grouped_by_layer_at_the_last_colon():
    run = make_run()
    assert [v for v, _ in run.variables(tags.GRAD_VAR_NORM, "dense")] == [
        "kernel",
        "bias",
    ]
    assert [v for v, _ in run.variables(tags.GRAD_VAR_NORM, "enc/dense")] == ["kernel"]
    assert run.variables(tags.GRAD_VAR_NORM, "dense_1") == []


def test_unknown_metric_names_fail_loudly():
    with pytest.raises(tags.UnknownMetricError, match="grad_nrom"):
        make_run().series("grad_nrom", "dense")


def test_layers_come_from_metadata_or_from_tag_order():
    assert [layer.name for layer in make_run().layers] == ["dense", "dense_1"]
    metadata = RunMetadata(layers=(LayerMeta("first", 0), LayerMeta("second", 1)))
    run = make_run(metadata=metadata)
    assert [layer.name for layer in run.layers] == ["first", "second"]
    assert run.layer("second").depth == 1 and run.layer("dense") is None


def test_steps_and_probe_steps():
    run = make_run()
    assert run.steps == (0, 10)
    np.testing.assert_array_equal(run.probe_steps, [0, 10])
    empty = Run(name="e", path="e", scalars={})
    assert empty.steps is None and len(empty.probe_steps) == 0
    assert not empty.is_bnscope


def test_to_pandas_is_tidy():
    frame = make_run().to_pandas()
    assert list(frame.columns) == ["run", "step", "metric", "layer", "value"]
    assert len(frame) == sum(len(s) for s in SCALARS.values())
    row = frame[(frame.metric == "grad_norm") & (frame.layer == "dense_1")]
    assert row.step.tolist() == [0, 10] and row.value.tolist() == [2.0, 1.0]
    assert frame.step.dtype == "int64" and frame.value.dtype == "float64"
    both = Logdir(path="/logs", runs=(make_run(), make_run())).to_pandas()
    assert len(both) == 2 * len(frame)
    assert str(frame.metric.dtype) == "category"


def test_to_pandas_without_pandas_says_how_to_get_it(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ModuleNotFoundError, match="pip install pandas"):
        make_run().to_pandas()


def test_logdir_run_lookup():
    logdir = Logdir(path="/logs", runs=(make_run(),))
    assert logdir.run("exp/bnscope").name == "exp/bnscope"
    with pytest.raises(KeyError, match="runs: exp/bnscope"):
        logdir.run("other")


def test_layers_without_metadata_by_first_step_then_natural_name():
    from bnscope.analysis.runs import Run, Series, natural_key

    def series(first):
        return Series(np.arange(first, first + 3, dtype=np.int64), np.ones(3))

    scalars = {
        "act_std/dense_10": series(0),
        "act_std/late": series(5),
        "act_std/dense_2": series(0),
        "grad_norm/dense": series(0),
        "loss/model": series(0),
    }
    for order in (scalars, dict(reversed(list(scalars.items())))):
        run = Run("r", "r", order)
        assert [(layer.name, layer.depth) for layer in run.layers] == [
            ("dense", 0),
            ("dense_2", 1),
            ("dense_10", 2),
            ("late", 3),
        ]
    assert sorted(["b_10", "b_9", "a"], key=natural_key) == ["a", "b_9", "b_10"]
