"""The Custom Scalars layout: one multi-line chart per statistic, all layers on it."""

import re

from tensorboard.plugins.custom_scalar import layout_pb2

from bnscope import tags
from bnscope.events.custom_scalars import custom_scalars_layout, custom_scalars_summary


def test_every_chart_matches_its_metric_and_only_it():
    layout = custom_scalars_layout()
    charts = [chart for category in layout.category for chart in category.chart]
    assert charts
    for chart in charts:
        (pattern,) = chart.multiline.tag
        assert re.match(pattern, tags.make_tag(chart.title, "dense_1"))
        for other in tags.ALL_METRICS:  # e.g. bn_mean_shift vs bn_mean_shift_max
            if other.name != chart.title:
                assert not re.match(pattern, other.tag("dense_1"))
        assert not re.match(pattern, "epoch_loss")


def test_summary_is_what_the_custom_scalars_plugin_reads():
    summary = custom_scalars_summary()
    (value,) = summary.value
    assert value.tag == tags.CUSTOM_SCALARS_TAG
    assert value.metadata.plugin_data.plugin_name == "custom_scalars"
    parsed = layout_pb2.Layout.FromString(value.tensor.string_val[0])
    assert parsed == custom_scalars_layout()
