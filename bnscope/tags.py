"""The names of everything bnscope writes, shared by the writer and the reader.

Tags are metric-first, `<metric>/<subject>`, because TensorBoard groups charts
by the prefix before the first `/`: one card group per statistic then compares
all layers. The subject is a layer name (hierarchical, `/`-separated, e.g.
`encoder/dense_1`), a `<layer>:<variable>` pair, a model input or output name,
or `model` for whole-model values.

This module never imports TensorFlow. Every metric is documented in
`docs/tags.md`; a test keeps the two in sync.
"""

from __future__ import annotations

from dataclasses import dataclass

# Subject kinds.
LAYER = "layer"
VARIABLE = "variable"
INPUT = "input"
OUTPUT = "output"
MODEL = "model"

MODEL_SUBJECT = "model"
VARIABLE_SEPARATOR = ":"


@dataclass(frozen=True)
class Metric:
    """One statistic bnscope records, written under `<name>/<subject>`."""

    name: str
    subject: str
    description: str

    def tag(self, subject: str = MODEL_SUBJECT) -> str:
        return f"{self.name}/{subject}"


# --- Activations (output of every observed layer, on the probe batch) -------
ACT_MEAN = Metric("act_mean", LAYER, "Mean of the layer output.")
ACT_STD = Metric("act_std", LAYER, "Standard deviation of the layer output.")
ACT_MIN = Metric("act_min", LAYER, "Minimum of the layer output.")
ACT_MAX = Metric("act_max", LAYER, "Maximum of the layer output.")
ACT_ZERO_FRAC = Metric(
    "act_zero_frac",
    LAYER,
    "Fraction of output values exactly 0 (ReLU sparsity; about 0.5 is normal).",
)
ACT_DEAD_FRAC = Metric(
    "act_dead_frac",
    LAYER,
    "Fraction of units (channels, last axis) that are 0 for every probe sample "
    "and position: dead ReLU units.",
)
ACT_SATURATED_FRAC = Metric(
    "act_saturated_frac",
    LAYER,
    "Fraction of output values in the flat tails of a bounded activation "
    "(sigmoid, tanh, softmax and hard variants); see docs/findings.md.",
)
ACT_NONFINITE = Metric("act_nonfinite", LAYER, "Count of NaN/Inf output values.")
ACT_HIST = Metric("act_hist", LAYER, "Histogram of the layer output (lower cadence).")

# --- Gradients and weights ---------------------------------------------------
GRAD_NORM = Metric(
    "grad_norm",
    LAYER,
    "L2 norm of the loss gradient over the layer's trainable variables.",
)
GRAD_VAR_NORM = Metric(
    "grad_var_norm",
    VARIABLE,
    "L2 norm of the gradient of one variable (`<layer>:<var>`).",
)
GRAD_NONFINITE = Metric(
    "grad_nonfinite", LAYER, "Count of NaN/Inf gradient values of the layer."
)
WEIGHT_NORM = Metric(
    "weight_norm", LAYER, "L2 norm of the layer's trainable variables."
)
WEIGHT_NONFINITE = Metric(
    "weight_nonfinite", LAYER, "Count of NaN/Inf values in the layer's variables."
)
UPDATE_RATIO = Metric(
    "update_ratio", LAYER, "‖Δw‖/‖w‖ between this probe and the previous one."
)
STEP_GRAD_NORM = Metric(
    "step_grad_norm",
    LAYER,
    "Exact L2 gradient norm of the last training step (`exact_gradients=True`).",
)
GRAD_GLOBAL_NORM = Metric(
    "grad_global_norm", MODEL, "L2 norm of the gradient over all trainable variables."
)
STEP_GRAD_GLOBAL_NORM = Metric(
    "step_grad_global_norm",
    MODEL,
    "Exact global gradient norm of the last training step (`exact_gradients=True`).",
)
LOSS = Metric("loss", MODEL, "Loss on the probe batch in training mode.")
LOSS_NONFINITE = Metric("loss_nonfinite", MODEL, "1 if the probe loss is NaN/Inf.")

# --- Model inputs -------------------------------------------------------------
INPUT_MEAN = Metric("input_mean", INPUT, "Mean of a model input on the probe batch.")
INPUT_STD = Metric("input_std", INPUT, "Standard deviation of a model input.")
INPUT_MIN = Metric("input_min", INPUT, "Minimum of a model input.")
INPUT_MAX = Metric("input_max", INPUT, "Maximum of a model input.")

# --- BatchNormalization --------------------------------------------------------
BN_MEAN_SHIFT = Metric(
    "bn_mean_shift",
    LAYER,
    "Mean over channels of |μ_batch − μ_moving| / sqrt(σ²_moving + ε).",
)
BN_MEAN_SHIFT_MAX = Metric(
    "bn_mean_shift_max", LAYER, "Max over channels of the standardized mean shift."
)
BN_LOG_VAR_RATIO = Metric(
    "bn_log_var_ratio",
    LAYER,
    "Mean over channels of |log(σ²_batch / σ²_moving)| (biased batch variance).",
)
BN_LOG_VAR_RATIO_MAX = Metric(
    "bn_log_var_ratio_max", LAYER, "Max over channels of |log variance ratio|."
)
BN_MOVING_CHANGE = Metric(
    "bn_moving_change",
    LAYER,
    "Relative change of the moving mean/variance since the previous probe.",
)
BN_EMA_PROGRESS = Metric(
    "bn_ema_progress",
    LAYER,
    "Training steps so far divided by the EMA window 1/(1 − momentum).",
)
BN_TRAINING_MODE = Metric(
    "bn_training_mode",
    LAYER,
    "1 if the layer normalized with batch statistics inside the training step, "
    "0 if it ran in inference mode.",
)
BN_GAP = Metric(
    "bn_gap",
    LAYER,
    "Relative L2 difference of the layer output in training vs inference mode.",
)

# --- Other normalization layers (LayerNormalization, GroupNormalization, ...) ----
NORM_IN_MEAN = Metric("norm_in_mean", LAYER, "Mean of the normalization layer's input.")
NORM_IN_STD = Metric("norm_in_std", LAYER, "Std of the normalization layer's input.")
GAMMA_MEAN = Metric("gamma_mean", LAYER, "Mean of the normalization scale (γ).")
GAMMA_STD = Metric("gamma_std", LAYER, "Std of the normalization scale (γ).")
BETA_MEAN = Metric("beta_mean", LAYER, "Mean of the normalization offset (β).")
BETA_STD = Metric("beta_std", LAYER, "Std of the normalization offset (β).")

# --- Train/inference gap of the whole model ------------------------------------
GAP_REL_L2 = Metric(
    "gap_rel_l2",
    OUTPUT,
    "‖y_train − y_infer‖ / ‖y_infer‖ for a model output on the probe batch.",
)
GAP_ARGMAX_AGREEMENT = Metric(
    "gap_argmax_agreement",
    OUTPUT,
    "Fraction of probe samples whose argmax agrees between training and "
    "inference mode (classifier outputs only).",
)

ALL_METRICS: tuple[Metric, ...] = (
    ACT_MEAN,
    ACT_STD,
    ACT_MIN,
    ACT_MAX,
    ACT_ZERO_FRAC,
    ACT_DEAD_FRAC,
    ACT_SATURATED_FRAC,
    ACT_NONFINITE,
    ACT_HIST,
    GRAD_NORM,
    GRAD_VAR_NORM,
    GRAD_NONFINITE,
    WEIGHT_NORM,
    WEIGHT_NONFINITE,
    UPDATE_RATIO,
    STEP_GRAD_NORM,
    GRAD_GLOBAL_NORM,
    STEP_GRAD_GLOBAL_NORM,
    LOSS,
    LOSS_NONFINITE,
    INPUT_MEAN,
    INPUT_STD,
    INPUT_MIN,
    INPUT_MAX,
    BN_MEAN_SHIFT,
    BN_MEAN_SHIFT_MAX,
    BN_LOG_VAR_RATIO,
    BN_LOG_VAR_RATIO_MAX,
    BN_MOVING_CHANGE,
    BN_EMA_PROGRESS,
    BN_TRAINING_MODE,
    BN_GAP,
    NORM_IN_MEAN,
    NORM_IN_STD,
    GAMMA_MEAN,
    GAMMA_STD,
    BETA_MEAN,
    BETA_STD,
    GAP_REL_L2,
    GAP_ARGMAX_AGREEMENT,
)
METRICS_BY_NAME: dict[str, Metric] = {m.name: m for m in ALL_METRICS}

# Non-scalar records.
METADATA_TAG = "bnscope/metadata"  # JSON text, see docs/tags.md
LAYERS_TABLE_TAG = "bnscope/layers"  # markdown table for TensorBoard's Text tab
CUSTOM_SCALARS_TAG = "custom_scalars__config__"  # fixed by TensorBoard
METADATA_PLUGIN = "bnscope"
METADATA_SCHEMA_VERSION = 1

# The directory, below `log_dir`, that the callback writes its run to.
RUN_DIRNAME = "bnscope"


def make_tag(metric: Metric, subject: str = MODEL_SUBJECT) -> str:
    """Returns the tag of `metric` for `subject`, e.g. `act_std/conv2d`."""
    return metric.tag(subject)


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
    metric = METRICS_BY_NAME.get(name)
    if not sep or metric is None or not subject:
        return None
    return metric, subject
