"""The run metadata: frozen dataclasses, and the only place its field names live.

The callback writes one `RunMetadata` per `fit` as JSON text under
`bnscope/metadata` (see docs/tags.md); the TensorFlow-free reader parses it
back with `RunMetadata.from_json`, and rules and views read typed fields,
never raw keys. Parsing is lenient, field by field: a value of the wrong type
(from a damaged file, or an older or newer writer) is dropped with a note and
the rest of the metadata is kept.

This module never imports TensorFlow.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

SCHEMA_VERSION = 1

BATCH = "batch"
LAYER = "layer"
GROUP = "group"
RMS = "rms"
OTHER = "other"
NORMALIZATION_KINDS = (BATCH, LAYER, GROUP, RMS, OTHER)

# A static tensor shape: `None` for a dimension unknown when traced.
Shape = tuple[int | None, ...]


@dataclass(frozen=True)
class NormalizationMeta:
    """A normalization layer's settings, and how BN really ran.

    Args:
        kind: `batch`, `layer`, `group`, `rms` or `other`.
        axis: The normalized (channel) axes.
        epsilon: The layer's epsilon.
        center: Whether it has β.
        scale: Whether it has γ.
        momentum: BN only: the moving-statistics momentum.
        channels: BN only: the number of channels.
        training_mode: BN only: whether it normalized with batch statistics
            inside the training step (`None` if not seen).
        requested_training: BN only: the `training=` the user passed when
            calling it in a Functional model, if any.
    """

    kind: str
    axis: tuple[int, ...] = ()
    epsilon: float | None = None
    center: bool | None = None
    scale: bool | None = None
    momentum: float | None = None
    channels: int | None = None
    training_mode: bool | None = None
    requested_training: bool | None = None

    @property
    def is_batch(self) -> bool:
        return self.kind == BATCH


@dataclass(frozen=True)
class LayerMeta:
    """One observed layer. Every field but `name` and `depth` may be `None`.

    Args:
        name: Hierarchical name below the model (`encoder/dense_1`).
        depth: Position in call order (0 is the first layer called).
        class_name: The layer class, e.g. `"Conv2D"`.
        activation: Its activation function's name, `"linear"` if none.
        params: Number of weights.
        trainable: `layer.trainable`.
        use_bias: Whether it adds a bias.
        inputs_from: The observed layers whose outputs it reads directly.
        normalization: Normalization settings, for normalization layers.
        input_shape: Static shape of its (first) input in the probe's trace,
            batch axis included (`None` for an unknown dimension).
        data_format: `"channels_last"` or `"channels_first"` for layers that
            have one (convolutions, pooling, ...).
        reads_inputs: The model inputs it reads directly (through dtype casts
            and reshapes at most).
        reads_ops: Types of the raw (non-layer) ops it reads, e.g.
            `("AddV2",)` for `ReLU(6.0)(x + 3.0)`: TensorFlow op type names.
        reads_ops_from: The layers and model inputs behind those ops.
        kernel_size: Convolutions: the kernel size.
        padding: Convolutions and pooling: `"valid"` or `"same"`.
        role: The part it plays inside a composite Keras layer, e.g.
            `"attention_key"` for MultiHeadAttention's key projection.
    """

    name: str
    depth: int
    class_name: str | None = None
    activation: str | None = None
    params: int | None = None
    trainable: bool | None = None
    use_bias: bool | None = None
    inputs_from: tuple[str, ...] = ()
    normalization: NormalizationMeta | None = None
    input_shape: Shape | None = None
    data_format: str | None = None
    reads_inputs: tuple[str, ...] = ()
    reads_ops: tuple[str, ...] = ()
    reads_ops_from: tuple[str, ...] = ()
    kernel_size: tuple[int, ...] = ()
    padding: str | None = None
    role: str | None = None

    @property
    def normalization_kind(self) -> str | None:
        return None if self.normalization is None else self.normalization.kind

    @property
    def is_batch_norm(self) -> bool:
        return self.normalization is not None and self.normalization.is_batch


@dataclass(frozen=True)
class InputMeta:
    """A model input: its name and dtype (`"float32"`, `"uint8"`, ...)."""

    name: str
    dtype: str | None = None


@dataclass(frozen=True)
class OutputMeta:
    """A model output, what produces it, the loss that scores it and its targets.

    Args:
        name: The output's name (the subject of its `gap_*`, `target_*` and
            `output_*` tags).
        classifier: Whether it looks like a classifier `(batch, classes)`.
        layer: The observed layer whose output it is, if known.
        activation: That layer's activation (`"softmax"`, `"linear"`, ...), or
            the activation op producing the output; `None` if unknown.
        shape: Static shape of the output, batch axis included.
        loss: The compiled loss of this output, as its Keras function name
            (`"binary_crossentropy"`, `"mean_squared_error"`, ...), or the
            name of a custom loss.
        from_logits: The loss's `from_logits` (`False` for string losses),
            `None` if it has none.
        target_dtype: The dtype of its targets on the probe batch.
        target_shape: The static shape of those targets.
    """

    name: str
    classifier: bool | None = None
    layer: str | None = None
    activation: str | None = None
    shape: Shape | None = None
    loss: str | None = None
    from_logits: bool | None = None
    target_dtype: str | None = None
    target_shape: Shape | None = None

    @property
    def units(self) -> int | None:
        """Size of the last axis (1 for a `(batch,)` output), if known."""
        if self.shape is None:
            return None
        return 1 if len(self.shape) < 2 else self.shape[-1]


@dataclass(frozen=True)
class ModelMeta:
    """The observed model."""

    name: str | None = None
    class_name: str | None = None
    params: int | None = None


@dataclass(frozen=True)
class OptimizerMeta:
    """The optimizer class, and its learning rate when it is a constant."""

    class_name: str | None = None
    learning_rate: float | None = None


@dataclass(frozen=True)
class RunMetadata:
    """Everything the analysis side knows about a run besides its scalars.

    Args:
        schema: The metadata schema version (`SCHEMA_VERSION`).
        versions: Versions of bnscope, TensorFlow, Keras and Python.
        model: The model's name, class and size.
        batch_size: The batch each replica's BN normalizes over.
        replicas: Replicas training in sync.
        steps_per_epoch: As `fit` was told, if known.
        epochs: As `fit` was told, if known.
        optimizer: Optimizer class and learning rate.
        config: bnscope's own settings for the run.
        inputs: The model inputs.
        outputs: The model outputs.
        layers: Observed layers in depth (call) order.
        gradients_skipped: Why probe gradients were not computed, if they
            were not.
    """

    schema: int = SCHEMA_VERSION
    versions: Mapping[str, str | None] = field(default_factory=dict)
    model: ModelMeta = field(default_factory=ModelMeta)
    batch_size: int | None = None
    replicas: int | None = None
    steps_per_epoch: int | None = None
    epochs: int | None = None
    optimizer: OptimizerMeta | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    inputs: tuple[InputMeta, ...] = ()
    outputs: tuple[OutputMeta, ...] = ()
    layers: tuple[LayerMeta, ...] = ()
    gradients_skipped: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The metadata as the JSON object written to disk."""
        return _encode(self)

    def dumps(self) -> str:
        return json.dumps(self.to_json(), default=str)

    @classmethod
    def from_json(cls, data: Any, notes: list[str] | None = None) -> RunMetadata | None:
        """Parses a decoded JSON object; `None` if it is not an object at all.

        Args:
            data: What `json.loads` returned.
            notes: Optional list that receives one line per field that was
                malformed and dropped.
        """
        if not isinstance(data, Mapping):
            return None
        problems: list[str] = []
        parsed = _decode(cls, data, "metadata", problems)
        if notes is not None and problems:
            notes.append("malformed metadata ignored: " + "; ".join(problems[:3]))
        return parsed

    @classmethod
    def loads(cls, text: str, notes: list[str] | None = None) -> RunMetadata | None:
        """Parses metadata JSON text; `None` (with a note) if it is not JSON."""
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: nested too deep
            if notes is not None:
                notes.append(
                    "bnscope metadata is not valid JSON; layer details missing"
                )
            return None
        parsed = cls.from_json(data, notes)
        if parsed is None and notes is not None:
            notes.append("bnscope metadata is not a JSON object; layer details missing")
        return parsed

    def layer(self, name: str) -> LayerMeta | None:
        for layer in self.layers:
            if layer.name == name:
                return layer
        return None

    def output(self, name: str) -> OutputMeta | None:
        for output in self.outputs:
            if output.name == name:
                return output
        return None


# -- JSON encoding ----------------------------------------------------------------
# Python field names are the JSON keys, except where JSON keeps its own name.
_JSON_KEYS = {"class_name": "class"}


def _encode(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return {
            _JSON_KEYS.get(f.name, f.name): _encode(getattr(value, f.name))
            for f in fields(value)
        }
    if isinstance(value, tuple | list):
        return [_encode(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): _encode(item) for key, item in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# -- Lenient decoding -------------------------------------------------------------


def _opt(kind: type | tuple[type, ...]) -> Callable[[Any], Any]:
    """A converter accepting `None` or a value of `kind` (bool is not an int)."""

    def convert(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) and bool not in _as_tuple(kind):
            raise TypeError
        if kind is float and isinstance(value, int):
            return float(value)
        if not isinstance(value, kind):
            raise TypeError
        return value

    return convert


def _as_tuple(kind) -> tuple:
    return kind if isinstance(kind, tuple) else (kind,)


def _str_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple) or not all(
        isinstance(v, str) for v in value
    ):
        raise TypeError
    return tuple(value)


def _int_tuple(value: Any) -> tuple[int, ...]:
    if value is None:
        return ()
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,)
    if not isinstance(value, list | tuple) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise TypeError
    return tuple(value)


def _shape(value: Any) -> Shape | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not all(
        v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in value
    ):
        raise TypeError
    return tuple(value)


def _mapping(value: Any) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError
    return dict(value)


def _nested(cls: type) -> Callable[[Any, str, list[str]], Any]:
    def convert(value: Any, where: str, problems: list[str]) -> Any:
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise TypeError
        return _decode(cls, value, where, problems)

    return convert


def _nested_list(cls: type) -> Callable[[Any, str, list[str]], Any]:
    def convert(value: Any, where: str, problems: list[str]) -> tuple:
        if value is None:
            return ()
        if not isinstance(value, list | tuple):
            raise TypeError
        items = []
        for index, item in enumerate(value):
            label = f"{where}[{index}]"
            decoded = (
                _decode(cls, item, label, problems)
                if isinstance(item, Mapping)
                else None
            )
            if decoded is None:
                problems.append(f"{label} dropped")
            else:
                items.append(decoded)
        return tuple(items)

    return convert


_OPT_STR = _opt(str)
_OPT_INT = _opt(int)
_OPT_FLOAT = _opt(float)
_OPT_BOOL = _opt(bool)

# Per dataclass: field -> converter. Converters that take (value, where,
# problems) decode nested records; the others take the value alone.
_CONVERTERS: dict[type, dict[str, Callable]] = {
    NormalizationMeta: {
        "kind": _opt(str),
        "axis": _int_tuple,
        "epsilon": _OPT_FLOAT,
        "center": _OPT_BOOL,
        "scale": _OPT_BOOL,
        "momentum": _OPT_FLOAT,
        "channels": _OPT_INT,
        "training_mode": _OPT_BOOL,
        "requested_training": _OPT_BOOL,
    },
    LayerMeta: {
        "name": _OPT_STR,
        "depth": _OPT_INT,
        "class_name": _OPT_STR,
        "activation": _OPT_STR,
        "params": _OPT_INT,
        "trainable": _OPT_BOOL,
        "use_bias": _OPT_BOOL,
        "inputs_from": _str_tuple,
        "normalization": _nested(NormalizationMeta),
        "input_shape": _shape,
        "data_format": _OPT_STR,
        "reads_inputs": _str_tuple,
        "reads_ops": _str_tuple,
        "reads_ops_from": _str_tuple,
        "kernel_size": _int_tuple,
        "padding": _OPT_STR,
        "role": _OPT_STR,
    },
    InputMeta: {"name": _OPT_STR, "dtype": _OPT_STR},
    OutputMeta: {
        "name": _OPT_STR,
        "classifier": _OPT_BOOL,
        "layer": _OPT_STR,
        "activation": _OPT_STR,
        "shape": _shape,
        "loss": _OPT_STR,
        "from_logits": _OPT_BOOL,
        "target_dtype": _OPT_STR,
        "target_shape": _shape,
    },
    ModelMeta: {"name": _OPT_STR, "class_name": _OPT_STR, "params": _OPT_INT},
    OptimizerMeta: {"class_name": _OPT_STR, "learning_rate": _OPT_FLOAT},
    RunMetadata: {
        "schema": _OPT_INT,
        "versions": _mapping,
        "model": _nested(ModelMeta),
        "batch_size": _OPT_INT,
        "replicas": _OPT_INT,
        "steps_per_epoch": _OPT_INT,
        "epochs": _OPT_INT,
        "optimizer": _nested(OptimizerMeta),
        "config": _mapping,
        "inputs": _nested_list(InputMeta),
        "outputs": _nested_list(OutputMeta),
        "layers": _nested_list(LayerMeta),
        "gradients_skipped": _OPT_STR,
    },
}
_NESTED = {
    converter
    for table in _CONVERTERS.values()
    for converter in table.values()
    if converter.__code__.co_argcount == 3
}
# Fields without which a record means nothing.
_REQUIRED = {
    NormalizationMeta: ("kind",),
    LayerMeta: ("name",),
    InputMeta: ("name",),
    OutputMeta: ("name",),
}


def _decode(cls: type, data: Mapping, where: str, problems: list[str]) -> Any:
    values: dict[str, Any] = {}
    for name, converter in _CONVERTERS[cls].items():
        key = _JSON_KEYS.get(name, name)
        if key not in data:
            continue
        label = f"{where}.{key}"
        try:
            if converter in _NESTED:
                value = converter(data[key], label, problems)
            else:
                value = converter(data[key])
        except (TypeError, ValueError):
            problems.append(f"{label}={data[key]!r:.40}")
            continue
        if value is not None:
            values[name] = value
    if any(values.get(name) is None for name in _REQUIRED.get(cls, ())):
        return None
    if cls is LayerMeta:
        values.setdefault("depth", -1)  # placed by `_in_depth_order`
    if cls is RunMetadata:
        values["layers"] = _in_depth_order(values.get("layers", ()))
    return cls(**values)


def _in_depth_order(layers: tuple[LayerMeta, ...]) -> tuple[LayerMeta, ...]:
    """Layers sorted by depth; a layer without one keeps its place in the list."""
    placed = [
        layer if layer.depth >= 0 else replace(layer, depth=index)
        for index, layer in enumerate(layers)
    ]
    return tuple(sorted(placed, key=lambda layer: layer.depth))
