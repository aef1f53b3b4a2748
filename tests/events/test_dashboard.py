"""What the dashboards get: only informative series, described, with log10 norms.

The central check: every synthetic run (healthy, and one sick run per rule)
written as the observer now writes it gives exactly the findings of the same
run written in full, as old logs hold it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from tensorboard.plugins.custom_scalar import layout_pb2

from bnscope import tags
from bnscope.analysis import jsonv1
from bnscope.analysis.reader import read_run
from bnscope.analysis.rules import RULES_BY_ID, evaluate
from bnscope.events.dashboard import DashboardFilter, keeps
from bnscope.schema import LayerMeta
from tests.support.synthetic_runs import SICK_RUNS, mlp_bn, plain_mlp
from tests.support.tensorboard_logs import write_as_observer


def findings_json(run_dir) -> list[dict]:
    return [jsonv1.finding(f) for f in evaluate(read_run(str(run_dir)))]


CASES = {"healthy": mlp_bn, "plain_sigmoid": plain_mlp, **SICK_RUNS}


@pytest.mark.parametrize("name", sorted(CASES))
def test_filtered_logs_give_the_findings_of_full_logs(name, tmp_path):
    full = tmp_path / "full"
    CASES[name]().write(full, histograms=False)
    write_as_observer(CASES[name](), tmp_path / "filtered")
    assert findings_json(tmp_path / "filtered") == findings_json(full)


def test_what_is_dropped_and_what_stays(tmp_path):
    run = mlp_bn(hidden_activation="tanh")  # tanh hidden layers, softmax output
    write_as_observer(run, tmp_path)
    written = set(read_run(str(tmp_path)).scalars)
    # Zero counters, sigmoid/tanh zero fractions, softmax saturation: gone.
    assert not [
        t for t in written if t.startswith(("act_nonfinite/", "grad_nonfinite/"))
    ]
    assert not [
        t for t in written if t.startswith(("act_dead_frac/", "act_zero_frac/"))
    ]
    assert "act_saturated_frac/dense_2" not in written  # the softmax output
    assert "act_saturated_frac/activation" in written  # a hidden tanh
    assert not [t for t in written if t.startswith("bn_training_mode/")]
    assert "loss_nonfinite/model" not in written
    # The model-level counter, at every probe.
    assert "nonfinite_total/model" in written
    # ReLU layers keep their dead/zero fractions.
    relu = mlp_bn()
    write_as_observer(relu, tmp_path / "relu")
    relu_tags = set(read_run(str(tmp_path / "relu")).scalars)
    assert {"act_dead_frac/activation", "act_zero_frac/activation"} <= relu_tags
    assert "act_dead_frac/dense" not in relu_tags


def test_a_counter_is_written_from_its_first_non_zero_count_on(tmp_path):
    dashboard = DashboardFilter()
    metadata = mlp_bn().metadata()
    clean = {"grad_nonfinite/dense_1": 0.0, "act_nonfinite/dense_1": 0.0}
    assert dashboard.scalars(clean, metadata) == {"nonfinite_total/model": 0.0}
    sick = {"grad_nonfinite/dense_1": 3.0, "act_nonfinite/dense_1": 0.0}
    assert dashboard.scalars(sick, metadata) == {
        "grad_nonfinite/dense_1": 3.0,
        "nonfinite_total/model": 3.0,
    }
    # Recovered: still written, so the chart shows it went back to 0.
    assert dashboard.scalars(clean, metadata)["grad_nonfinite/dense_1"] == 0.0
    # A NaN count counts.
    assert dashboard.scalars({"loss_nonfinite/model": math.nan}, metadata)[
        "nonfinite_total/model"
    ] == pytest.approx(1.0)


def test_training_step_values_get_no_total():
    dashboard = DashboardFilter()
    values = dashboard.scalars({"act_nonfinite/dense": 0.0}, None, probe=False)
    assert values == {}


def test_nonfinite_fires_from_the_model_level_counter_alone(tmp_path):
    """A run holding no per-layer counter at all (say, only the total)."""
    run = mlp_bn()
    counters = {metric.name for metric in tags.NONFINITE_COUNTERS}
    run.values = {
        t: v for t, v in run.values.items() if t.split("/")[0] not in counters
    }
    run.set("nonfinite_total", "model", 0.0)
    run.set_late("nonfinite_total", "model", 12.0, start=0.7)
    run.write(tmp_path, histograms=False)
    (finding,) = RULES_BY_ID["nonfinite"](read_run(str(tmp_path)))
    assert finding.layer is None and finding.step == 700 and finding.value == 12.0
    assert "the model's values" in finding.message


def test_nonfinite_fires_when_a_layer_counter_appears_late(tmp_path):
    run = mlp_bn()
    run.set_late("act_nonfinite", "dense_1", 5.0, start=0.6)
    write_as_observer(run, tmp_path)
    series = read_run(str(tmp_path)).series(tags.ACT_NONFINITE, "dense_1")
    assert series.steps[0] == 600  # absent before its first non-zero count
    (finding,) = RULES_BY_ID["nonfinite"](read_run(str(tmp_path)))
    assert (finding.layer, finding.step) == ("dense_1", 600)


def test_log10_companion_of_every_positive_gradient_norm():
    dashboard = DashboardFilter()
    values = dashboard.scalars(
        {"grad_norm/a": 6.2e-9, "grad_norm/b": 0.0, "grad_norm/c": math.nan}, None
    )
    assert values["grad_norm_log10/a"] == pytest.approx(math.log10(6.2e-9))
    assert "grad_norm_log10/b" not in values and "grad_norm_log10/c" not in values
    assert values["grad_norm/b"] == 0.0 and math.isnan(values["grad_norm/c"])


def test_each_tag_is_described_once_from_the_registry():
    dashboard = DashboardFilter()
    first = dashboard.summary({"act_std/dense": 1.0, "epoch_loss": 2.0})
    by_tag = {v.tag: v for v in first.value}
    assert by_tag["act_std/dense"].metadata.summary_description == (
        tags.ACT_STD.description
    )
    assert by_tag["act_std/dense"].metadata.plugin_data.plugin_name == "scalars"
    assert by_tag["epoch_loss"].metadata.summary_description == ""  # not ours
    (again,) = dashboard.summary({"act_std/dense": 1.5}).value
    assert not again.HasField("metadata")
    assert again.simple_value == 1.5


def test_described_logs_still_read_at_full_speed_and_value(tmp_path):
    run = mlp_bn()
    write_as_observer(run, tmp_path)
    read = read_run(str(tmp_path))
    np.testing.assert_allclose(
        read.series(tags.ACT_STD, "dense").values,
        run.values["act_std/dense"],
        rtol=1e-6,
    )


def test_unknown_layers_keep_everything():
    assert keeps("act_dead_frac", None, is_output=False)
    sigmoid = LayerMeta("s", 0, "Dense", "sigmoid")
    assert not keeps("act_dead_frac", sigmoid, is_output=False)
    assert keeps("act_saturated_frac", sigmoid, is_output=False)
    assert not keeps("act_saturated_frac", sigmoid, is_output=True)
    assert not keeps("bn_training_mode", None, is_output=False)


def test_layout_charts_only_recorded_metrics_and_layers_in_depth_order():
    dashboard = DashboardFilter()
    run = plain_mlp()
    metadata = run.metadata()
    values = dashboard.scalars(run.probe_values(0), metadata)
    summary = dashboard.layout(values, metadata)
    layout = layout_pb2.Layout.FromString(summary.value[0].tensor.string_val[0])
    titles = [chart.title for category in layout.category for chart in category.chart]
    assert "step_grad_norm" not in titles  # no exact gradients recorded
    assert "grad_norm_log10" in titles and "grad_norm" in titles
    depth = layout.category[-1]
    assert [c.title.split(" · ")[1].split(" ")[0] for c in depth.chart] == [
        layer.name for layer in metadata.layers
    ]
    assert depth.chart[0].title == "0 · dense (Dense sigmoid)"
    # Nothing new: no new layout. A new metric: a new layout.
    assert dashboard.layout(values, metadata) is None
    more = dict(values, **{"step_grad_norm/dense": 0.1})
    assert dashboard.layout(more, metadata) is not None
