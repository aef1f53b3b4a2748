"""The names of everything bnscope writes: one registry shared by writer and reader.

Tags are metric-first, `<metric>/<subject>`, because TensorBoard groups charts
by the prefix before the first `/`: one card group per statistic then compares
all layers. The subject is a layer name (hierarchical, `/`-separated, e.g.
`encoder/dense_1`), a `<layer>:<variable>` pair, a model input or output name,
or `model` for whole-model values.

Every metric is registered exactly once below; `make_tag` refuses a name that
is not registered (so a statistic that is written but not registered fails
loudly instead of being dropped by the reader), and `parse_tag` is the only
place tags are split. This module never imports TensorFlow. Every metric is
documented in `docs/tags.md`; a test keeps the two in sync.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

# Subject kinds.
LAYER = "layer"
VARIABLE = "variable"
INPUT = "input"
OUTPUT = "output"
MODEL = "model"

# Value kinds.
SCALAR = "scalar"
HISTOGRAM = "histogram"

MODEL_SUBJECT = "model"
VARIABLE_SEPARATOR = ":"


class UnknownMetricError(KeyError):
    """A metric name that is not in the registry."""


@dataclass(frozen=True)
class Metric:
    """One statistic bnscope records, written under `<name>/<subject>`.

    Args:
        name: The tag prefix, e.g. `"act_std"`.
        subject: What a subject is: `LAYER`, `VARIABLE`, `INPUT`, `OUTPUT`
            or `MODEL`.
        description: One line for docs and TensorBoard.
        kind: `SCALAR` or `HISTOGRAM`.
    """

    name: str
    subject: str
    description: str
    kind: str = SCALAR

    def tag(self, subject: str = MODEL_SUBJECT) -> str:
        return f"{self.name}/{subject}"


_REGISTRY: dict[str, Metric] = {}


def _register(name: str, subject: str, description: str, kind: str = SCALAR) -> Metric:
    if name in _REGISTRY:
        raise ValueError(f"metric {name!r} is registered twice")
    metric = _REGISTRY[name] = Metric(name, subject, description, kind)
    return metric


# --- Activations (output of every observed layer, on the probe batch) -------
ACT_MEAN = _register("act_mean", LAYER, "Mean of the layer output.")
ACT_STD = _register("act_std", LAYER, "Standard deviation of the layer output.")
ACT_MIN = _register("act_min", LAYER, "Minimum of the layer output.")
ACT_MAX = _register("act_max", LAYER, "Maximum of the layer output.")
ACT_ZERO_FRAC = _register(
    "act_zero_frac",
    LAYER,
    "Fraction of output values exactly 0 (ReLU sparsity; about 0.5 is normal).",
)
ACT_DEAD_FRAC = _register(
    "act_dead_frac",
    LAYER,
    "Fraction of units (channels, last axis) that are 0 for every probe sample "
    "and position: dead ReLU units.",
)
ACT_SATURATED_FRAC = _register(
    "act_saturated_frac",
    LAYER,
    "Fraction of output values in the flat tails of a bounded activation "
    "(sigmoid, tanh, softmax and hard variants); see docs/findings.md.",
)
ACT_NONFINITE = _register("act_nonfinite", LAYER, "Count of NaN/Inf output values.")
ACT_HIST = _register(
    "act_hist", LAYER, "Histogram of the layer output (lower cadence).", HISTOGRAM
)

# --- Gradients and weights ---------------------------------------------------
GRAD_NORM = _register(
    "grad_norm",
    LAYER,
    "L2 norm of the loss gradient over the layer's trainable variables.",
)
GRAD_VAR_NORM = _register(
    "grad_var_norm",
    VARIABLE,
    "L2 norm of the gradient of one variable (`<layer>:<var>`).",
)
GRAD_NONFINITE = _register(
    "grad_nonfinite", LAYER, "Count of NaN/Inf gradient values of the layer."
)
WEIGHT_NORM = _register(
    "weight_norm", LAYER, "L2 norm of the layer's trainable variables."
)
WEIGHT_NONFINITE = _register(
    "weight_nonfinite", LAYER, "Count of NaN/Inf values in the layer's variables."
)
UPDATE_RATIO = _register(
    "update_ratio", LAYER, "‖Δw‖/‖w‖ between this probe and the previous one."
)
STEP_GRAD_NORM = _register(
    "step_grad_norm",
    LAYER,
    "Exact L2 gradient norm of the last training step (`exact_gradients=True`).",
)
GRAD_GLOBAL_NORM = _register(
    "grad_global_norm", MODEL, "L2 norm of the gradient over all trainable variables."
)
STEP_GRAD_GLOBAL_NORM = _register(
    "step_grad_global_norm",
    MODEL,
    "Exact global gradient norm of the last training step (`exact_gradients=True`).",
)
LOSS = _register("loss", MODEL, "Loss on the probe batch in training mode.")
LOSS_NONFINITE = _register("loss_nonfinite", MODEL, "1 if the probe loss is NaN/Inf.")

# --- Model inputs -------------------------------------------------------------
INPUT_MEAN = _register("input_mean", INPUT, "Mean of a model input on the probe batch.")
INPUT_STD = _register("input_std", INPUT, "Standard deviation of a model input.")
INPUT_MIN = _register("input_min", INPUT, "Minimum of a model input.")
INPUT_MAX = _register("input_max", INPUT, "Maximum of a model input.")

# --- BatchNormalization --------------------------------------------------------
BN_MEAN_SHIFT = _register(
    "bn_mean_shift",
    LAYER,
    "Mean over channels of |μ_batch − μ_moving| / sqrt(σ²_moving + ε).",
)
BN_MEAN_SHIFT_MAX = _register(
    "bn_mean_shift_max", LAYER, "Max over channels of the standardized mean shift."
)
BN_LOG_VAR_RATIO = _register(
    "bn_log_var_ratio",
    LAYER,
    "Mean over channels of |log(σ²_batch / σ²_moving)| (biased batch variance).",
)
BN_LOG_VAR_RATIO_MAX = _register(
    "bn_log_var_ratio_max", LAYER, "Max over channels of |log variance ratio|."
)
BN_MOVING_CHANGE = _register(
    "bn_moving_change",
    LAYER,
    "Relative change of the moving mean/variance since the previous probe.",
)
BN_EMA_PROGRESS = _register(
    "bn_ema_progress",
    LAYER,
    "Training steps so far divided by the EMA window 1/(1 − momentum).",
)
BN_TRAINING_MODE = _register(
    "bn_training_mode",
    LAYER,
    "1 if the layer normalized with batch statistics inside the training step, "
    "0 if it ran in inference mode.",
)
BN_GAP = _register(
    "bn_gap",
    LAYER,
    "Relative L2 difference of the layer output in training vs inference mode.",
)

# --- Other normalization layers (LayerNormalization, GroupNormalization, ...) ----
NORM_IN_MEAN = _register(
    "norm_in_mean", LAYER, "Mean of the normalization layer's input."
)
NORM_IN_STD = _register("norm_in_std", LAYER, "Std of the normalization layer's input.")
GAMMA_MEAN = _register("gamma_mean", LAYER, "Mean of the normalization scale (γ).")
GAMMA_STD = _register("gamma_std", LAYER, "Std of the normalization scale (γ).")
BETA_MEAN = _register("beta_mean", LAYER, "Mean of the normalization offset (β).")
BETA_STD = _register("beta_std", LAYER, "Std of the normalization offset (β).")

# --- Train/inference gap of the whole model ------------------------------------
GAP_REL_L2 = _register(
    "gap_rel_l2",
    OUTPUT,
    "‖y_train − y_infer‖ / ‖y_infer‖ for a model output on the probe batch.",
)
GAP_ARGMAX_AGREEMENT = _register(
    "gap_argmax_agreement",
    OUTPUT,
    "Fraction of probe samples whose argmax agrees between training and "
    "inference mode (classifier outputs only).",
)


# --- Targets and predictions of each model output, on the probe batch ----------
# What the loss sees: the rules compare them with the compiled loss and the
# output layer (docs/findings.md). The subject is the output's name.
TARGET_MIN = _register("target_min", OUTPUT, "Minimum of the targets of an output.")
TARGET_MAX = _register("target_max", OUTPUT, "Maximum of the targets of an output.")
TARGET_MEAN = _register("target_mean", OUTPUT, "Mean of the targets of an output.")
TARGET_STD = _register(
    "target_std", OUTPUT, "Standard deviation of the targets of an output."
)
TARGET_DISTINCT = _register(
    "target_distinct",
    OUTPUT,
    "Number of distinct target values, counted up to 64 (64 means 64 or more).",
)
TARGET_INTEGRAL = _register(
    "target_integral",
    OUTPUT,
    "1 if every target value is a whole number (class ids, 0/1 labels), else 0.",
)
TARGET_ONEHOT_FRAC = _register(
    "target_onehot_frac",
    OUTPUT,
    "Fraction of target rows (last axis, 2 or more entries) that are one-hot.",
)
OUTPUT_MEAN = _register(
    "output_mean", OUTPUT, "Mean of a model output (the predictions) in training mode."
)
OUTPUT_MIN = _register("output_min", OUTPUT, "Minimum of a model output.")
OUTPUT_MAX = _register("output_max", OUTPUT, "Maximum of a model output.")
OUTPUT_SPREAD = _register(
    "output_spread",
    OUTPUT,
    "Largest standard deviation, over output units, of the predictions across "
    "the probe samples: 0 when every sample gets the same prediction.",
)


ALL_METRICS: tuple[Metric, ...] = tuple(_REGISTRY.values())
METRICS_BY_NAME: Mapping[str, Metric] = MappingProxyType(_REGISTRY)
SCALAR_METRICS: frozenset[str] = frozenset(
    metric.name for metric in ALL_METRICS if metric.kind == SCALAR
)

# --- Activation families -----------------------------------------------------
# What the activation statistics mean depends on the activation; the probe,
# the rules and the views all read these, and nothing else, to decide it.

# Activations whose units can die: exactly 0 for every input (`act_dead_frac`).
RELU_FAMILY: frozenset[str] = frozenset({"relu", "relu6"})
# Output bounds outside which a bounded activation counts as saturated: within
# 1% of the range from either end, where the derivative has fallen below 4%
# (sigmoid: s(1−s) < 0.0099 vs 0.25) or 2% (tanh: 1−t² < 0.0199 vs 1) of its
# peak. SageMaker Debugger's `saturated_activation` rule asks the same
# question on pre-activations (tanh |z| > 9.4999, sigmoid z < −23 or > 16.99999,
# where float32 gradients are exactly zero); this softer bound flags the
# layers before their gradients are gone entirely. See docs/findings.md.
SATURATION_BOUNDS: Mapping[str, tuple[float, float]] = MappingProxyType(
    {
        "sigmoid": (0.01, 0.99),
        "hard_sigmoid": (0.01, 0.99),
        "tanh": (-0.99, 0.99),
        "hard_tanh": (-0.99, 0.99),
        "softsign": (-0.99, 0.99),
    }
)
# Softmax saturates per sample: the largest probability is (almost) one.
SOFTMAX_FAMILY: frozenset[str] = frozenset({"softmax", "log_softmax"})
SOFTMAX_SATURATION = 0.99
SATURATING_ACTIVATIONS: frozenset[str] = frozenset(SATURATION_BOUNDS) | SOFTMAX_FAMILY

# --- Loss families -------------------------------------------------------------
# The compiled loss of each output is recorded under its Keras function name
# (`keras.losses.get(...).__name__`, e.g. `"binary_crossentropy"`); what the
# target and output rules expect of it depends on its family.

# Losses that read each output unit as the probability of a yes/no event.
BINARY_PROBABILITY_LOSSES: frozenset[str] = frozenset(
    {"binary_crossentropy", "binary_focal_crossentropy"}
)
# Losses that read the last axis as a probability distribution over classes,
# with one-hot (or soft) targets of the same shape.
CATEGORICAL_LOSSES: frozenset[str] = frozenset(
    {"categorical_crossentropy", "categorical_focal_crossentropy", "kl_divergence"}
)
# The same, with integer class ids as targets.
SPARSE_CATEGORICAL_LOSSES: frozenset[str] = frozenset(
    {"sparse_categorical_crossentropy"}
)
PROBABILITY_LOSSES: frozenset[str] = (
    BINARY_PROBABILITY_LOSSES | CATEGORICAL_LOSSES | SPARSE_CATEGORICAL_LOSSES
)
# Losses on real-valued targets, in the targets' own units.
REGRESSION_LOSSES: frozenset[str] = frozenset(
    {
        "mean_squared_error",
        "mean_absolute_error",
        "huber",
        "log_cosh",
        "mean_absolute_percentage_error",
    }
)
# Output activations whose values are probabilities (each in [0, 1]).
PROBABILITY_ACTIVATIONS: frozenset[str] = frozenset(
    {"sigmoid", "hard_sigmoid", "softmax"}
)
# The range each bounded output activation can reach.
OUTPUT_RANGES: Mapping[str, tuple[float, float]] = MappingProxyType(
    {
        "sigmoid": (0.0, 1.0),
        "hard_sigmoid": (0.0, 1.0),
        "softmax": (0.0, 1.0),
        "tanh": (-1.0, 1.0),
        "hard_tanh": (-1.0, 1.0),
        "softsign": (-1.0, 1.0),
        "relu": (0.0, math.inf),
        "relu6": (0.0, 6.0),
        "softplus": (0.0, math.inf),
        "exponential": (0.0, math.inf),
    }
)

# Non-scalar records.
METADATA_TAG = "bnscope/metadata"  # JSON text, see docs/tags.md and schema.py
LAYERS_TABLE_TAG = "bnscope/layers"  # markdown table for TensorBoard's Text tab
# The findings at the end of each `fit`, as markdown for TensorBoard's Text tab
# (bnscope.events.markdown.findings_markdown; columns documented in docs/tags.md).
FINDINGS_TAG = "bnscope/findings"
CUSTOM_SCALARS_TAG = "custom_scalars__config__"  # fixed by TensorBoard
METADATA_PLUGIN = "bnscope"

# The directory, below `log_dir`, that the callback writes its run to.
RUN_DIRNAME = "bnscope"


def metric(name: str) -> Metric:
    """The registered metric called `name`.

    Raises:
        UnknownMetricError: If no metric of that name is registered.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownMetricError(
            f"{name!r} is not a registered bnscope metric (see bnscope/tags.py)"
        ) from None


def make_tag(metric_or_name: Metric | str, subject: str = MODEL_SUBJECT) -> str:
    """Returns the tag of a metric for `subject`, e.g. `act_std/conv2d`.

    Args:
        metric_or_name: A `Metric`, or the name of a registered one.
        subject: A layer, `<layer>:<variable>`, input, output or `"model"`.

    Raises:
        UnknownMetricError: If a name is given that is not registered.
    """
    if isinstance(metric_or_name, str):
        metric_or_name = metric(metric_or_name)
    return metric_or_name.tag(subject)


def variable_subject(layer: str, variable: str) -> str:
    """Returns the subject naming one variable of a layer: `dense:kernel`."""
    return f"{layer}{VARIABLE_SEPARATOR}{variable}"


def split_variable_subject(subject: str) -> tuple[str, str]:
    """Inverse of `variable_subject`."""
    layer, _, variable = subject.rpartition(VARIABLE_SEPARATOR)
    return layer, variable


def parse_tag(tag: str) -> tuple[Metric, str] | None:
    """Splits a tag into its metric and subject; `None` if it is not bnscope's."""
    name, sep, subject = tag.partition("/")
    found = _REGISTRY.get(name)
    if not sep or found is None or not subject:
        return None
    return found, subject
