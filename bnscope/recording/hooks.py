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


@dataclass(eq=False)  # holds tensors: compare by identity
class LayerCall:
    """The first call of one observed layer during a recording."""

    name: str
    layer: keras.layers.Layer
    inputs: Any
    outputs: Any
    training: bool | None
    inputs_from: list[str]
    # bnscope.layers expose the batch statistics they computed.
    batch_mean: Any = None
    batch_variance: Any = None


@dataclass(eq=False)  # holds tensors: compare by identity
class Recording:
    """The layer calls seen during one `LayerHooks.recording()`, in call order."""

    calls: list[LayerCall] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _seen: set[int] = field(default_factory=set)
    _producers: dict[int, str] = field(default_factory=dict)

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
    def recording(self) -> Iterator[Recording]:
        """Hooks every leaf layer for the duration of the block."""
        recording = Recording()
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
            sources = []
            for tensor in flat_inputs:
                source = recording._producers.get(id(tensor))
                if source is not None and source not in sources:
                    sources.append(source)
            recording.calls.append(
                LayerCall(
                    name=name,
                    layer=layer,
                    inputs=flat_inputs[0] if flat_inputs else None,
                    outputs=flat_outputs[0] if flat_outputs else None,
                    training=kwargs.get("training"),
                    inputs_from=sources,
                    batch_mean=_last_batch_statistic(layer, "last_batch_mean"),
                    batch_variance=_last_batch_statistic(layer, "last_batch_variance"),
                )
            )
        for tensor in flat_outputs:
            recording._producers[id(tensor)] = name


def _last_batch_statistic(layer: keras.layers.Layer, name: str):
    """A statistic bnscope's own BN layers expose, if this call computed it."""
    if not getattr(layer, "last_training_mode", False):
        return None
    return getattr(layer, name, None)
