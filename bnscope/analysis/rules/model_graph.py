"""What the metadata says about the model's graph, for the structural rules.

The metadata records, per layer, the layers it reads directly
(`inputs_from`), the model inputs it reads (`reads_inputs`) and the raw ops it
reads with what lies behind them (`reads_ops`, `reads_ops_from`). From these
this module answers the questions several rules ask: which layers really read
a model input, which parameters get a zero gradient by construction, and
what kind of architecture it is (normalized, residual, saturating), so hints
fit the model.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property

from bnscope import tags
from bnscope.analysis.runs import Run
from bnscope.schema import LayerMeta

# Layers that normalize or do not need normalized inputs when they read a
# model input directly.
INPUT_ADAPTERS = frozenset(
    {
        "Normalization",
        "Rescaling",
        "Embedding",
        "BatchNormalization",
        "LayerNormalization",
        "GroupNormalization",
        "RMSNormalization",
        "UnitNormalization",
        "StringLookup",
        "IntegerLookup",
        "TextVectorization",
        "Hashing",
        "CategoryEncoding",
        "Discretization",
    }
)
# Layers that move, crop, pad or augment values without changing their scale:
# an input read by one of them is still raw for the layers after it.
PASS_THROUGH = frozenset(
    {
        "Reshape",
        "Flatten",
        "Permute",
        "RepeatVector",
        "Cropping1D",
        "Cropping2D",
        "Cropping3D",
        "ZeroPadding1D",
        "ZeroPadding2D",
        "ZeroPadding3D",
        "Resizing",
        "CenterCrop",
        "RandomCrop",
        "RandomFlip",
        "RandomRotation",
        "RandomTranslation",
        "RandomZoom",
        "Identity",
        "Masking",
        "Dropout",
        "SpatialDropout1D",
        "SpatialDropout2D",
        "SpatialDropout3D",
        "GaussianNoise",
    }
)
# Linear layers that map an offset constant across the batch and the spatial
# axes to another such offset (a per-channel constant stays per-channel
# constant): dense maps, and convolutions whose kernel never meets padding.
_AFFINE = frozenset({"Dense", "Add", "Subtract", "Average", "Identity", "Activation"})
_CONVOLUTIONS = frozenset(
    {
        "Conv1D",
        "Conv2D",
        "Conv3D",
        "DepthwiseConv1D",
        "DepthwiseConv2D",
        "SeparableConv1D",
        "SeparableConv2D",
    }
)
# The role of MultiHeadAttention's key projection (recording/layer_info.py):
# the softmax over keys cancels its bias, since q·(k + b) shifts every score
# of one query by the same q·b.
ATTENTION_KEY = "attention_key"
SATURATING = tags.SATURATING_ACTIVATIONS - tags.SOFTMAX_FAMILY


@dataclass(frozen=True)
class Cancelled:
    """A parameter whose gradient is zero by construction, and why.

    Args:
        layer: The layer that owns it.
        variable: `bias` or `beta`.
        by: The BatchNormalization layers that cancel it; empty for
            attention keys (the softmax cancels those).
        through: The linear layers in between, in order.
    """

    layer: str
    variable: str
    by: tuple[str, ...] = ()
    through: tuple[str, ...] = ()


class ModelGraph:
    """The observed layers of a run as a graph, and the questions rules ask of it.

    Args:
        run: The run whose metadata describes the model.
    """

    def __init__(self, run: Run):
        self.run = run
        self.layers = run.layers
        self._paths: dict[str, tuple[tuple[str, ...], tuple[str, ...]] | None] = {}

    # -- Edges -------------------------------------------------------------------
    @cached_property
    def consumers(self) -> Mapping[str, list[LayerMeta]]:
        """Layers that read each layer's output directly."""
        result: dict[str, list[LayerMeta]] = {}
        for layer in self.layers:
            for source in layer.inputs_from:
                result.setdefault(source, []).append(layer)
        return result

    @cached_property
    def op_consumers(self) -> Mapping[str, list[LayerMeta]]:
        """Layers that read each layer's output (or model input) through raw ops."""
        result: dict[str, list[LayerMeta]] = {}
        for layer in self.layers:
            for source in layer.reads_ops_from:
                result.setdefault(source, []).append(layer)
        return result

    @cached_property
    def knows_input_path(self) -> bool:
        """Whether the metadata records which layers read the model inputs.

        Metadata written before bnscope recorded it has no `reads_inputs`;
        rules then fall back to treating layers without `inputs_from` as the
        first layers.
        """
        return any(layer.reads_inputs or layer.reads_ops_from for layer in self.layers)

    # -- The input path ----------------------------------------------------------
    def input_readers(self, name: str) -> tuple[list[LayerMeta], bool]:
        """The first layers that see input `name` at its raw scale.

        Pass-through layers (reshapes, crops, augmentation, dropout) are
        looked through to the layers after them.

        Returns:
            `(readers, transformed)`: the layers that read the raw input, and
            whether the model also computes on it with raw ops before any
            layer (e.g. `x / 255.0` in a subclassed `call`).
        """
        readers: list[LayerMeta] = []
        transformed = bool(self.op_consumers.get(name))
        frontier = [layer for layer in self.layers if name in layer.reads_inputs]
        seen: set[str] = set()
        while frontier:
            layer = frontier.pop(0)
            if layer.name in seen:
                continue
            seen.add(layer.name)
            if layer.class_name in PASS_THROUGH:
                frontier.extend(self.consumers.get(layer.name, []))
                transformed |= bool(self.op_consumers.get(layer.name))
            else:
                readers.append(layer)
        return readers, transformed

    def first_layers(self) -> list[LayerMeta]:
        """Layers that read no observed layer (the pre-`reads_inputs` view)."""
        return [
            layer
            for layer in self.layers
            if not layer.inputs_from and not layer.reads_ops_from
        ]

    # -- Parameters zero by construction ----------------------------------------
    @cached_property
    def cancelled(self) -> dict[tuple[str, str], Cancelled]:
        """`(layer, variable) -> Cancelled` for every offset with zero gradient.

        An offset (a bias with a linear activation, or a normalization's β)
        that reaches only BatchNormalization layers in training mode, through
        linear layers that keep it constant over the batch and the spatial
        axes, is subtracted again with the batch mean: its gradient is zero.
        MultiHeadAttention's key bias is cancelled by the softmax.
        """
        found: dict[tuple[str, str], Cancelled] = {}
        for layer in self.layers:
            if layer.role == ATTENTION_KEY and layer.use_bias is not False:
                found[(layer.name, "bias")] = Cancelled(layer.name, "bias")
                continue
            variable = _offset_variable(layer)
            if variable is None:
                continue
            path = self._cancelling_path(layer.name)
            if path is not None:
                by, through = path
                found[(layer.name, variable)] = Cancelled(
                    layer.name, variable, by, through
                )
        return found

    def _cancelling_path(
        self, name: str
    ) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
        """The BNs that cancel an offset added at `name`, and the layers between.

        `None` when any path from `name` escapes: to a model output, through
        a raw op, a nonlinearity or a layer that varies the offset in space.
        Memoized: the layer graph is a DAG, each layer is solved once.
        """
        if name in self._paths:
            return self._paths[name]
        self._paths[name] = None  # a cycle (never in a layer graph) escapes
        users = self.consumers.get(name, [])
        if not users or self.op_consumers.get(name):
            return None
        by: list[str] = []
        through: list[str] = []
        for user in users:
            if user.is_batch_norm and user.normalization.training_mode is not False:
                by.append(user.name)
                continue
            if not _keeps_offset_constant(user):
                return None
            path = self._cancelling_path(user.name)
            if path is None:
                return None
            by += path[0]
            through += [user.name, *path[1]]
        result = (tuple(dict.fromkeys(by)), tuple(dict.fromkeys(through)))
        self._paths[name] = result
        return result

    # -- What kind of model --------------------------------------------------------
    @cached_property
    def normalized(self) -> bool:
        """Whether the model normalizes its hidden activations."""
        return any(layer.normalization is not None for layer in self.layers)

    @cached_property
    def residual(self) -> bool:
        """Whether the model adds skip connections (an `Add` layer or raw add)."""
        return any(
            layer.class_name == "Add"
            or ("AddV2" in layer.reads_ops and len(layer.reads_ops_from) >= 2)
            for layer in self.layers
        )

    @cached_property
    def saturating_hidden(self) -> bool:
        """Whether hidden layers use sigmoid/tanh-like activations."""
        last = max((layer.depth for layer in self.layers), default=-1)
        return any(
            layer.activation in SATURATING and layer.depth != last
            for layer in self.layers
        )

    def normalized_output(self, name: str) -> bool:
        """Whether a linear layer's output goes straight into normalization only.

        Then the layer's output scale, and so its input's, is removed again:
        `conv(a·x)` is `a·conv(x)`, and BN (in training mode), LayerNormalization
        or GroupNormalization divides `a` out.
        """
        layer = self.run.layer(name)
        if layer is None or layer.activation not in (None, "linear"):
            return False
        users = self.consumers.get(name, [])
        return (
            bool(users)
            and not self.op_consumers.get(name)
            and all(
                user.normalization is not None
                and (
                    not user.is_batch_norm
                    or user.normalization.training_mode is not False
                )
                for user in users
            )
        )

    def variables(self, layer: str) -> Iterator[str]:
        for variable, _ in self.run.variables(tags.GRAD_VAR_NORM, layer):
            yield variable


def _offset_variable(layer: LayerMeta) -> str | None:
    """The layer's additive offset variable: `bias`, `beta`, or `None`."""
    if layer.normalization is not None:
        return "beta" if layer.normalization.center is not False else None
    if layer.use_bias and layer.activation in (None, "linear"):
        return "bias"
    return None


def _keeps_offset_constant(layer: LayerMeta) -> bool:
    """Linear, and maps an offset constant over batch and space to another."""
    if layer.activation not in (None, "linear"):
        return False
    if layer.class_name in _AFFINE:
        return True
    if layer.class_name in _CONVOLUTIONS:
        pointwise = bool(layer.kernel_size) and all(k == 1 for k in layer.kernel_size)
        return pointwise or layer.padding == "valid"
    return False
