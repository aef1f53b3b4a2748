"""What bnscope knows about a layer without running it: kind, activation, config."""

from __future__ import annotations

import keras

from bnscope import schema

# Layers whose sub-layers run inside a loop or a vectorized map: their inner
# tensors cannot be observed from outside, so the wrapper is the leaf.
OPAQUE_LAYERS: tuple[type, ...] = (
    keras.layers.RNN,
    keras.layers.Bidirectional,
    keras.layers.TimeDistributed,
)

# Activation layers whose class names their function.
_ACTIVATION_LAYER_NAMES = {
    "ReLU": "relu",
    "LeakyReLU": "leaky_relu",
    "PReLU": "prelu",
    "ELU": "elu",
    "Softmax": "softmax",
}

_NORMALIZATION_KINDS = {
    "BatchNormalization": schema.BATCH,
    "SyncBatchNormalization": schema.BATCH,
    "LayerNormalization": schema.LAYER,
    "GroupNormalization": schema.GROUP,
    "RMSNormalization": schema.RMS,
    "UnitNormalization": schema.OTHER,
    "SpectralNormalization": schema.OTHER,
}


def is_batch_norm(layer: keras.layers.Layer) -> bool:
    """True for Keras' BatchNormalization, bnscope's, and look-alikes."""
    return all(
        hasattr(layer, name) for name in ("moving_mean", "moving_variance", "momentum")
    )


def normalization_kind(layer: keras.layers.Layer) -> str | None:
    """`batch`, `layer`, `group`, `rms`, `other`, or `None` if not a normalization."""
    if is_batch_norm(layer):
        return schema.BATCH
    for cls in type(layer).__mro__:
        if cls.__name__ in _NORMALIZATION_KINDS:
            return _NORMALIZATION_KINDS[cls.__name__]
    return None


def activation_name(layer: keras.layers.Layer) -> str | None:
    """Name of the layer's activation, `"linear"` if none, `None` if not applicable."""
    for cls in type(layer).__mro__:
        if cls.__name__ in _ACTIVATION_LAYER_NAMES:
            return _ACTIVATION_LAYER_NAMES[cls.__name__]
    activation = getattr(layer, "activation", None)
    if activation is None:
        return None
    if isinstance(activation, str):
        return activation
    name = getattr(activation, "__name__", None) or type(activation).__name__
    return name.lower()


def channel_axes(layer: keras.layers.Layer) -> list[int]:
    axis = getattr(layer, "axis", -1)
    return list(axis) if isinstance(axis, (list, tuple)) else [int(axis)]


def normalization_meta(layer: keras.layers.Layer) -> schema.NormalizationMeta | None:
    """The normalization settings the analysis side reasons about."""
    kind = normalization_kind(layer)
    if kind is None:
        return None
    is_batch = kind == schema.BATCH
    return schema.NormalizationMeta(
        kind=kind,
        axis=tuple(channel_axes(layer)),
        epsilon=_float_or_none(getattr(layer, "epsilon", None)),
        center=_bool_or_none(getattr(layer, "center", None)),
        scale=_bool_or_none(getattr(layer, "scale", None)),
        momentum=_float_or_none(layer.momentum) if is_batch else None,
        channels=(
            int(layer.moving_mean.shape[0]) if is_batch and layer.built else None
        ),
    )


def scale_and_offset(layer: keras.layers.Layer) -> tuple:
    """The layer's γ and β variables (either may be `None`)."""
    gamma = getattr(layer, "gamma", None)
    if gamma is None:
        # RMSNormalization names its γ `scale` (which elsewhere is a flag).
        scale = getattr(layer, "scale", None)
        gamma = scale if hasattr(scale, "shape") else None
    return gamma, getattr(layer, "beta", None)


# Sub-layers of MultiHeadAttention by attribute, and the role each plays. The
# softmax over keys cancels the key projection's bias (q·(k + b) shifts every
# score of a query by the same q·b), so that bias gets no gradient.
_ATTENTION_ROLES = {
    "_query_dense": "attention_query",
    "_key_dense": "attention_key",
    "_value_dense": "attention_value",
    "_output_dense": "attention_output",
}


def roles(model: keras.Model) -> dict[int, str]:
    """`id(layer) -> role` for the sub-layers of composite layers bnscope knows."""
    found: dict[int, str] = {}
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.MultiHeadAttention):
            for attribute, role in _ATTENTION_ROLES.items():
                part = getattr(layer, attribute, None)
                if part is not None:
                    found[id(part)] = role
    return found


def kernel_size(layer: keras.layers.Layer) -> tuple[int, ...]:
    """A convolution's kernel size, `()` for other layers."""
    size = getattr(layer, "kernel_size", None)
    if isinstance(size, int):
        return (size,)
    if isinstance(size, (list, tuple)) and all(isinstance(k, int) for k in size):
        return tuple(size)
    return ()


def padding(layer: keras.layers.Layer) -> str | None:
    value = getattr(layer, "padding", None)
    return value if isinstance(value, str) else None


def parameter_count(layer: keras.layers.Layer) -> int:
    return int(sum(_size(v) for v in layer.weights))


def uses_bias(layer: keras.layers.Layer) -> bool | None:
    use_bias = getattr(layer, "use_bias", None)
    return bool(use_bias) if use_bias is not None else None


def _size(variable) -> int:
    size = 1
    for dim in variable.shape:
        size *= int(dim)
    return size


def _bool_or_none(value) -> bool | None:
    # RMSNormalization's `scale` is its weight, not a flag.
    return value if isinstance(value, bool) else None


def _float_or_none(value) -> float | None:
    return None if value is None else float(value)
