"""Per-layer statistics the probe builds for all layers at once."""

from __future__ import annotations

from bnscope import tags
from bnscope.recording.stats import gradients, normalization


class JointStats:
    """Per-layer statistics built for all layers at once.

    Gradient and weight statistics (`gradients.variable_stats`) and BN drift
    (`normalization.bn_drift_stats`) are a few vector ops for the whole
    model rather than dozens per layer. Each layer's tags are reserved in
    `values` when the layer is added, so they keep their place in the
    layer order; `build` fills them.
    """

    def __init__(self, values: dict):
        self.values = values
        self.variables: list[tuple[str, list[str], gradients.LayerVariables]] = []
        self.batch_norms: list[tuple[str, normalization.BatchNormState]] = []

    def add_variables(self, subject, names, variables: gradients.LayerVariables):
        self.variables.append((subject, names, variables))
        self._reserve(subject, _VARIABLE_METRICS)

    def add_batch_norm(self, name, state: normalization.BatchNormState):
        self.batch_norms.append((name, state))
        self._reserve(name, _BN_DRIFT_METRICS)

    def build(self) -> object | None:
        """Fills the reserved tags; returns the global gradient norm."""
        drift = normalization.bn_drift_stats([state for _, state in self.batch_norms])
        for (name, _), layer_stats in zip(self.batch_norms, drift):
            self._fill(name, _BN_DRIFT_METRICS, layer_stats)
        stats = gradients.variable_stats([v for *_, v in self.variables])
        for (subject, names, _), layer_stats, norms in zip(
            self.variables, stats.layers, stats.variable_norms
        ):
            self._fill(subject, _VARIABLE_METRICS, layer_stats)
            for name, norm in zip(names, norms):
                var_subject = tags.variable_subject(subject, name)
                self.values[tags.GRAD_VAR_NORM.tag(var_subject)] = norm
        return stats.global_norm

    def _reserve(self, subject, metrics):
        for metric in metrics:
            self.values[tags.make_tag(metric, subject)] = None

    def _fill(self, subject, metrics, layer_stats: dict):
        for metric in metrics:
            tag = tags.make_tag(metric, subject)
            if metric in layer_stats:
                self.values[tag] = layer_stats[metric]
            else:  # a layer without all its gradients has no gradient stats
                del self.values[tag]


# Their metrics, in the order each layer's tags are written.
_VARIABLE_METRICS = (
    tags.GRAD_NORM.name,
    tags.GRAD_NONFINITE.name,
    tags.WEIGHT_NORM.name,
    tags.WEIGHT_NONFINITE.name,
    tags.UPDATE_RATIO.name,
)
_BN_DRIFT_METRICS = (
    tags.BN_MEAN_SHIFT.name,
    tags.BN_MEAN_SHIFT_MAX.name,
    tags.BN_LOG_VAR_RATIO.name,
    tags.BN_LOG_VAR_RATIO_MAX.name,
    tags.BN_MOVING_CHANGE.name,
)
