"""TensorBoard Custom Scalars layout: one multi-line chart per statistic.

Every layer of a statistic shares one chart. Given the metrics a run
records, only their charts are laid out (no empty `step_grad_norm` chart
without exact gradients). Given the layers with a gradient, a last category
holds one `grad_norm_log10` chart per layer in depth order, so the gradient
flow reads top to bottom as the model does.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from tensorboard.compat.proto import summary_pb2
from tensorboard.plugins.custom_scalar import layout_pb2

from bnscope import tags
from bnscope.events.writer import text_value
from bnscope.schema import RunMetadata

# (category title, metrics charted in it), in the order a reader debugs.
_CATEGORIES: tuple[tuple[str, tuple[tags.Metric, ...]], ...] = (
    (
        "bnscope: gradients",
        (
            tags.GRAD_NORM_LOG10,
            tags.GRAD_NORM,
            tags.STEP_GRAD_NORM,
            tags.UPDATE_RATIO,
        ),
    ),
    (
        "bnscope: activations",
        (tags.ACT_STD, tags.ACT_MEAN, tags.ACT_DEAD_FRAC, tags.ACT_SATURATED_FRAC),
    ),
    (
        "bnscope: batch normalization",
        (tags.BN_MEAN_SHIFT, tags.BN_LOG_VAR_RATIO, tags.BN_GAP, tags.BN_MOVING_CHANGE),
    ),
    (
        "bnscope: model",
        (tags.LOSS, tags.GRAD_GLOBAL_NORM, tags.NONFINITE_TOTAL, tags.GAP_REL_L2),
    ),
)
DEPTH_CATEGORY = "bnscope: gradient flow by depth (log10 of the gradient norm)"
# Above this many layers the per-layer category starts collapsed: TensorBoard
# draws the charts of an open category at once (bnscope's choice).
OPEN_DEPTH_CHARTS = 32


def custom_scalars_layout(
    recorded: Collection[str] | None = None,
    gradient_layers: Sequence[str] = (),
    metadata: RunMetadata | None = None,
) -> layout_pb2.Layout:
    """Builds the layout.

    Args:
        recorded: Names of the metrics the run records. Defaults to `None`:
            every chart.
        gradient_layers: Layers with a `grad_norm_log10` series, in depth
            order, for the per-layer category. Defaults to none.
        metadata: Gives each per-layer chart its depth, class and activation.
    """
    layout = layout_pb2.Layout()
    for title, metrics in _CATEGORIES:
        wanted = [m for m in metrics if recorded is None or m.name in recorded]
        if not wanted:
            continue
        category = layout.category.add(title=title)
        for metric in wanted:
            chart = category.chart.add(title=metric.name)
            chart.multiline.tag.append(f"^{re.escape(metric.name)}/")
    if gradient_layers:
        category = layout.category.add(
            title=DEPTH_CATEGORY, closed=len(gradient_layers) > OPEN_DEPTH_CHARTS
        )
        for name in gradient_layers:
            chart = category.chart.add(title=_depth_title(name, metadata))
            tag = tags.GRAD_NORM_LOG10.tag(name)
            chart.multiline.tag.append(f"^{re.escape(tag)}$")
    return layout


def _depth_title(name: str, metadata: RunMetadata | None) -> str:
    layer = None if metadata is None else metadata.layer(name)
    if layer is None:
        return name
    kind = " ".join(
        part
        for part in (layer.class_name, layer.activation)
        if part and part != "linear"
    )
    return f"{layer.depth} · {name}" + (f" ({kind})" if kind else "")


def custom_scalars_summary(
    recorded: Collection[str] | None = None,
    gradient_layers: Sequence[str] = (),
    metadata: RunMetadata | None = None,
) -> summary_pb2.Summary:
    """The layout as the summary TensorBoard's Custom Scalars plugin reads.

    Args are those of `custom_scalars_layout`.
    """
    summary = summary_pb2.Summary()
    layout = custom_scalars_layout(recorded, gradient_layers, metadata)
    text_value(
        summary,
        tags.CUSTOM_SCALARS_TAG,
        layout.SerializeToString(),
        plugin_name="custom_scalars",
    )
    return summary
