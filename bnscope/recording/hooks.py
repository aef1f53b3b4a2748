"""Layer hooks: see every leaf layer's inputs and outputs while a model is traced.

A hook replaces `layer.call` on the instance, which reaches the leaf layers of
Sequential, Functional, nested and subclassed models alike (a sub-model built
from `layer.output` does not). Hooks only exist inside `LayerHooks.recording()`,
which bnscope enters while tracing a function, so the compiled graphs contain
no trace of them and the user's model is left exactly as it was.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import keras
from keras import tree

from bnscope.recording.layer_info import OPAQUE_LAYERS

# Graph ops that only change a tensor's dtype or shape: a layer reading a
# model input through them still reads the raw input (Functional models cast
# inputs to the compute dtype, for example).
VALUE_PRESERVING_OPS = frozenset(
    {
        "Cast",
        "Identity",
        "IdentityN",
        "Reshape",
        "ExpandDims",
        "Squeeze",
        "StopGradient",
    }
)
# Where walking back through raw ops stops: constants, weights and captured
# values are not what a layer "reads", and an op that reads only a tensor's
# shape (`ops.arange(ops.shape(x)[-1])` for positions) does not read its values.
_LEAF_OPS = frozenset(
    {
        "Const",
        "ReadVariableOp",
        "VarHandleOp",
        "Placeholder",
        "VariableV2",
        "Shape",
        "ShapeN",
        "Size",
        "Rank",
    }
)
# Bound on the raw ops walked per recording, so a model made mostly of raw
# ops cannot make tracing slow (bnscope's choice: MobileNetV3Small walks 18,
# EfficientNetB0 none).
_MAX_OPS_WALKED = 5000


@dataclass(eq=False)  # holds tensors: compare by identity
class LayerCall:
    """The first call of one observed layer during a recording."""

    name: str
    layer: keras.layers.Layer
    inputs: Any
    outputs: Any
    training: bool | None
    inputs_from: list[str]
    # Model inputs read directly (or through casts and reshapes only).
    reads_inputs: list[str] = field(default_factory=list)
    # Raw (non-layer) ops read, by op type, and the layers and model inputs
    # behind them: `ReLU(6.0)(x + 3.0)` reads `AddV2` from the layer of `x`.
    reads_ops: list[str] = field(default_factory=list)
    reads_ops_from: list[str] = field(default_factory=list)
    # bnscope.layers expose the batch statistics they computed.
    batch_mean: Any = None
    batch_variance: Any = None


@dataclass(eq=False)  # holds tensors: compare by identity
class Recording:
    """The layer calls seen during one `LayerHooks.recording()`, in call order."""

    calls: list[LayerCall] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # id of a model input tensor -> its name (see `LayerHooks.recording`).
    inputs: dict[int, str] = field(default_factory=dict)
    _seen: set[int] = field(default_factory=set)
    _producers: dict[int, str] = field(default_factory=dict)
    # id of a raw-op tensor -> {(kind, source): op types on the way},
    # memoized; kind is `_LAYER` or `_INPUT`.
    _behind: dict[int, dict[tuple[str, str], frozenset[str]]] = field(
        default_factory=dict
    )
    _ops_walked: int = 0

    def by_name(self) -> dict[str, LayerCall]:
        return {call.name: call for call in self.calls}


def leaf_layers(model: keras.Model) -> list[tuple[str, keras.layers.Layer]]:
    """Every leaf layer of `model` with a stable hierarchical name.

    Names are `/`-joined layer names below the model (`encoder/dense_1`), in
    the order Keras tracks the layers; the probe reorders them by call order.
    """
    found: list[tuple[str, keras.layers.Layer]] = []
    visited: set[int] = set()

    def visit(layer: keras.layers.Layer, name: str) -> None:
        if id(layer) in visited:
            return
        visited.add(id(layer))
        children = _children(layer)
        if not children or isinstance(layer, OPAQUE_LAYERS):
            found.append((name, layer))
            return
        for child in children:
            visit(child, f"{name}/{child.name}")

    for child in _children(model):
        visit(child, child.name)
    return found


def _children(layer: keras.layers.Layer) -> list[keras.layers.Layer]:
    return [
        child
        for child in layer._flatten_layers(include_self=False, recursive=False)
        if not isinstance(child, keras.layers.InputLayer)
    ]


class LayerHooks:
    """Installs call hooks on a model's leaf layers while recording.

    Args:
        model: The model to observe.
    """

    def __init__(self, model: keras.Model):
        self.layers = leaf_layers(model)
        # Recordings may nest (the probe traced inside a recorded train step,
        # or the train-step statistics inside the first-call recording).
        self._recordings: list[Recording] = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def recording(self, inputs: dict[str, Any] | None = None) -> Iterator[Recording]:
        """Hooks every leaf layer for the duration of the block.

        Args:
            inputs: `name -> tensor` of the model inputs the block feeds the
                model, so each call can say which layers read a model input
                and which read raw ops. Defaults to `None` (not tracked).
        """
        recording = Recording(
            inputs={id(tensor): name for name, tensor in (inputs or {}).items()}
        )
        installed = []
        try:
            if not self._recordings:
                for name, layer in self.layers:
                    if "call" in layer.__dict__:  # hooked by another observer
                        continue
                    layer.__dict__["call"] = self._hook(name, layer, layer.call)
                    installed.append(layer)
            self._recordings.append(recording)
            yield recording
        finally:
            self._recordings.remove(recording)
            for layer in installed:
                layer.__dict__.pop("call", None)

    def _hook(self, name: str, layer: keras.layers.Layer, original):
        def call(*args, **kwargs):
            outputs = original(*args, **kwargs)
            for recording in list(self._recordings):
                # Never let observation break the user's forward pass.
                try:
                    with self._lock:
                        self._record(recording, name, layer, args, kwargs, outputs)
                except Exception as error:
                    recording.errors.append(f"{name}: {type(error).__name__}: {error}")
            return outputs

        return call

    @staticmethod
    def _record(recording, name, layer, args, kwargs, outputs) -> None:
        flat_outputs = [t for t in tree.flatten(outputs) if hasattr(t, "shape")]
        if id(layer) not in recording._seen:
            recording._seen.add(id(layer))
            flat_inputs = [
                t for t in tree.flatten((args, kwargs)) if hasattr(t, "shape")
            ]
            sources: list[str] = []
            reads_inputs: list[str] = []
            reads_ops: list[str] = []
            reads_ops_from: list[str] = []
            for tensor in flat_inputs:
                source = recording._producers.get(id(tensor))
                if source is not None:
                    _add(sources, source)
                    continue
                if id(tensor) in recording.inputs:
                    _add(reads_inputs, recording.inputs[id(tensor)])
                    continue
                behind_ops = _behind_ops(recording, tensor)
                for (kind, behind), op_types in behind_ops.items():
                    if kind == _INPUT and op_types <= VALUE_PRESERVING_OPS:
                        _add(reads_inputs, behind)
                        continue
                    _add(reads_ops_from, behind)
                    for op_type in sorted(op_types):
                        _add(reads_ops, op_type)
            recording.calls.append(
                LayerCall(
                    name=name,
                    layer=layer,
                    inputs=flat_inputs[0] if flat_inputs else None,
                    outputs=flat_outputs[0] if flat_outputs else None,
                    training=kwargs.get("training"),
                    inputs_from=sources,
                    reads_inputs=reads_inputs,
                    reads_ops=reads_ops,
                    reads_ops_from=reads_ops_from,
                    batch_mean=_last_batch_statistic(layer, "last_batch_mean"),
                    batch_variance=_last_batch_statistic(layer, "last_batch_variance"),
                )
            )
        for tensor in flat_outputs:
            recording._producers[id(tensor)] = name


def _add(items: list[str], item: str) -> None:
    if item not in items:
        items.append(item)


_LAYER, _INPUT = "layer", "input"


def _behind_ops(recording: Recording, tensor) -> dict[tuple[str, str], frozenset[str]]:
    """The layers and model inputs a raw-op tensor is computed from.

    Walks the graph back from `tensor` through ops no layer produced, to the
    nearest layer outputs and model inputs, and returns each of them with the
    op types on the way. Eager tensors (no graph to walk) give nothing.
    Iterative with memoization: each raw op is visited once per recording.
    """
    memo = recording._behind
    stack: list[tuple[Any, tuple[str, list] | None]] = [(tensor, None)]
    while stack:
        current, op = stack.pop()
        key = id(current)
        if op is None:
            if key in memo:
                continue
            memo[key] = {}  # stays empty where the walk stops
            op = _op_inputs(recording, current)
            if op is not None:
                stack.append((current, op))
                stack.extend((t, None) for t in op[1] if _source(recording, t) is None)
            continue
        op_type, op_inputs = op
        found: dict[tuple[str, str], set[str]] = {}
        for each in op_inputs:
            source = _source(recording, each)
            if source is not None:
                found.setdefault(source, set()).add(op_type)
                continue
            for behind, op_types in memo.get(id(each), {}).items():
                found.setdefault(behind, set()).update(op_types | {op_type})
        memo[key] = {source: frozenset(types) for source, types in found.items()}
    return memo.get(id(tensor), {})


def _source(recording: Recording, tensor) -> tuple[str, str] | None:
    if id(tensor) in recording._producers:
        return (_LAYER, recording._producers[id(tensor)])
    if id(tensor) in recording.inputs:
        return (_INPUT, recording.inputs[id(tensor)])
    return None


def _op_inputs(recording: Recording, tensor) -> tuple[str, list] | None:
    """`(op type, op inputs)` of a graph tensor's op; `None` where the walk stops."""
    if recording._ops_walked >= _MAX_OPS_WALKED:
        return None
    try:
        op = tensor.op
        op_type, op_inputs = op.type, list(op.inputs)
    except (AttributeError, ValueError):
        return None  # an eager tensor: there is no graph to walk
    if op_type in _LEAF_OPS:
        return None
    recording._ops_walked += 1
    return op_type, op_inputs


def _last_batch_statistic(layer: keras.layers.Layer, name: str):
    """A statistic bnscope's own BN layers expose, if this call computed it."""
    if not getattr(layer, "last_training_mode", False):
        return None
    return getattr(layer, name, None)
