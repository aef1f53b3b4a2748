"""TensorBoard Custom Scalars layout: one multi-line chart per statistic."""

from __future__ import annotations

import re
from typing import Any

from tensorboard.compat.proto import summary_pb2
from tensorboard.plugins.custom_scalar import layout_pb2

from bnscope import tags
from bnscope.events.writer import text_value

# (category title, metrics charted in it), in the order a reader debugs.
_CATEGORIES: tuple[tuple[str, tuple[tags.Metric, ...]], ...] = (
    ("bnscope: gradients", (tags.GRAD_NORM, tags.STEP_GRAD_NORM, tags.UPDATE_RATIO)),
    (
        "bnscope: activations",
        (tags.ACT_STD, tags.ACT_MEAN, tags.ACT_DEAD_FRAC, tags.ACT_SATURATED_FRAC),
    ),
    (
        "bnscope: batch normalization",
        (tags.BN_MEAN_SHIFT, tags.BN_LOG_VAR_RATIO, tags.BN_GAP, tags.BN_MOVING_CHANGE),
    ),
    ("bnscope: model", (tags.LOSS, tags.GRAD_GLOBAL_NORM, tags.GAP_REL_L2)),
)


def custom_scalars_layout(metadata: dict[str, Any] | None = None) -> layout_pb2.Layout:
    """Builds the layout; every layer of a statistic shares one chart."""
    del metadata  # the regexes match every layer, present and future
    layout = layout_pb2.Layout()
    for title, metrics in _CATEGORIES:
        category = layout.category.add(title=title)
        for metric in metrics:
            chart = category.chart.add(title=metric.name)
            chart.multiline.tag.append(f"^{re.escape(metric.name)}/")
    return layout


def custom_scalars_summary(
    metadata: dict[str, Any] | None = None,
) -> summary_pb2.Summary:
    """The layout as the summary TensorBoard's Custom Scalars plugin reads."""
    summary = summary_pb2.Summary()
    text_value(
        summary,
        tags.CUSTOM_SCALARS_TAG,
        custom_scalars_layout(metadata).SerializeToString(),
        plugin_name="custom_scalars",
    )
    return summary
