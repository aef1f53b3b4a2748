"""What a run's events hold, so that TensorBoard's own dashboards read well.

The probe measures every statistic of every layer; not every series carries
information. `DashboardFilter` decides, per event, what is written:

- NaN/Inf counters: `nonfinite_total/model` at every probe (the sum of all of
  them); a per-layer counter (and `loss_nonfinite`) only from its first
  non-zero count on, and then at every later event, so its chart shows when
  it recovers;
- `act_dead_frac` and `act_zero_frac` only for ReLU-family layers
  (`tags.RELU_FAMILY`): other layers never output exact zeros by design;
- `act_saturated_frac` only for hidden sigmoid/tanh-like layers
  (`tags.SATURATING_HIDDEN`), not for softmax nor for the output layer,
  which saturate by design (the `saturation` rule ignores them too);
- `bn_training_mode` never: it is constant within a fit and sits in the run
  metadata (`normalization.training_mode`);
- `grad_norm_log10` beside every positive, finite `grad_norm`, so a norm of
  1e-8 does not read as 0;
- each tag's description from `bnscope.tags`, in its summary metadata, the
  first time the tag is written (TensorBoard keeps the first it sees);
- the Custom Scalars layout, with charts only for the metrics recorded, and
  one chart per layer in depth order for the gradient flow.

A layer the metadata does not know keeps all its statistics: nothing is
dropped on a guess. The reader and the rules treat an absent counter as
"zero so far". This module never imports TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from tensorboard.compat.proto import summary_pb2

from bnscope import tags
from bnscope.events.custom_scalars import custom_scalars_summary
from bnscope.events.writer import scalars_summary
from bnscope.schema import LayerMeta, RunMetadata

_COUNTERS = frozenset(metric.name for metric in tags.NONFINITE_COUNTERS)
_RELU_ONLY = frozenset({tags.ACT_DEAD_FRAC.name, tags.ACT_ZERO_FRAC.name})
_IN_METADATA = frozenset({tags.BN_TRAINING_MODE.name})


def keeps(metric: str, layer: LayerMeta | None, is_output: bool) -> bool:
    """Whether `metric` of `layer` carries information (counters aside).

    Args:
        metric: A metric name.
        layer: The layer the value belongs to, or `None` when unknown.
        is_output: Whether the layer is the model's last.
    """
    if metric in _IN_METADATA:
        return False
    if layer is None:
        return True
    if metric in _RELU_ONLY:
        return layer.activation in tags.RELU_FAMILY
    if metric == tags.ACT_SATURATED_FRAC.name:
        return layer.activation in tags.SATURATING_HIDDEN and not is_output
    return True


class DashboardFilter:
    """Filters and describes the scalars of one run, event after event.

    One instance per event file writer: it remembers which counters have
    fired, which tags carry their description already, and which metrics
    the Custom Scalars layout charts.
    """

    def __init__(self) -> None:
        self._fired: set[str] = set()
        self._described: set[str] = set()
        self._charted: frozenset[str] | None = None
        self._layout_layers: tuple[str, ...] = ()

    def scalars(
        self,
        values: Mapping[str, float],
        metadata: RunMetadata | None,
        *,
        probe: bool = True,
    ) -> dict[str, float]:
        """The values worth writing, in their order, plus the derived ones.

        Args:
            values: `tag -> value` as measured. Tags that are not bnscope's
                pass through unchanged.
            metadata: The run metadata (layer activations and depths), or
                `None` if not known yet.
            probe: True for a full probe, whose counters are summed into
                `nonfinite_total/model`; False for training-step values
                (full mode), which hold only some of them.
        """
        layers = {} if metadata is None else {x.name: x for x in metadata.layers}
        last_depth = max((x.depth for x in layers.values()), default=None)
        kept: dict[str, float] = {}
        total = 0.0
        counted = False
        for tag, value in values.items():
            parsed = tags.parse_tag(tag)
            if parsed is None:
                kept[tag] = value
                continue
            metric, subject = parsed
            if metric.name in _COUNTERS:
                counted = True
                total += value if math.isfinite(value) else 1.0
                if value != 0 or tag in self._fired:
                    self._fired.add(tag)
                    kept[tag] = value
                continue
            layer = layers.get(subject)
            is_output = layer is not None and layer.depth == last_depth
            if not keeps(metric.name, layer, is_output):
                continue
            kept[tag] = value
            if metric is tags.GRAD_NORM and math.isfinite(value) and value > 0:
                kept[tags.GRAD_NORM_LOG10.tag(subject)] = math.log10(value)
        if probe and counted:
            kept[tags.NONFINITE_TOTAL.tag()] = total
        return kept

    def summary(self, values: Mapping[str, float]) -> summary_pb2.Summary:
        """`values` as one `Summary`; a tag's first value carries its description."""
        summary = scalars_summary(values)
        for value in summary.value:
            if value.tag in self._described:
                continue
            parsed = tags.parse_tag(value.tag)
            if parsed is None:
                continue
            self._described.add(value.tag)
            metadata = value.metadata
            metadata.summary_description = parsed[0].description
            # Without the plugin name and data class, TensorBoard's Rust data
            # server (its default loader) drops the description of a
            # `simple_value`; the Python loader keeps it either way.
            metadata.plugin_data.plugin_name = "scalars"
            metadata.data_class = summary_pb2.DATA_CLASS_SCALAR
        return summary

    def layout(
        self, values: Mapping[str, float], metadata: RunMetadata | None
    ) -> summary_pb2.Summary | None:
        """The Custom Scalars layout, when the charts it should hold changed.

        Args:
            values: What is about to be written (after `scalars`).
            metadata: The run metadata, for the depth order of the layers.

        Returns:
            The layout summary to write, or `None` if the last one still fits.
        """
        recorded = {parsed[0].name for parsed in map(tags.parse_tag, values) if parsed}
        charted = frozenset(recorded | (self._charted or frozenset()))
        layers = _gradient_layers(values, metadata, self._layout_layers)
        if charted == self._charted and layers == self._layout_layers:
            return None
        self._charted, self._layout_layers = charted, layers
        return custom_scalars_summary(charted, layers, metadata)


def _gradient_layers(
    values: Mapping[str, float],
    metadata: RunMetadata | None,
    before: tuple[str, ...] = (),
) -> tuple[str, ...]:
    """Layers with a `grad_norm_log10` value now or `before`, in depth order."""
    with_grad = set(before) | {
        parsed[1]
        for parsed in map(tags.parse_tag, values)
        if parsed and parsed[0] is tags.GRAD_NORM_LOG10
    }
    if metadata is None:
        return tuple(sorted(with_grad))
    ordered = [layer.name for layer in metadata.layers if layer.name in with_grad]
    return tuple(ordered + sorted(with_grad - set(ordered)))
