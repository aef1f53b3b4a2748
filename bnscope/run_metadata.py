"""The run metadata: everything the CLI needs to reason without TensorFlow.

Written once per `fit` under `bnscope/metadata` (schema in docs/tags.md).
"""

from __future__ import annotations

import contextlib
import platform
from typing import Any

import keras
import numpy as np
import tensorflow as tf

import bnscope
from bnscope import layer_info, tags
from bnscope.distribution import replicas
from bnscope.probe import TraceInfo


def build(
    model: keras.Model,
    info: TraceInfo,
    *,
    training_modes: dict[str, bool],
    requested_training: dict[str, bool],
    batch_size: int | None,
    config: dict[str, Any],
) -> dict[str, Any]:
    """The metadata dict of `model` as the probe's first trace saw it.

    Args:
        model: The observed model.
        info: What the probe's trace learned (layers in call order, outputs).
        training_modes: The mode each BN layer ran in inside the train step.
        requested_training: Layers called with an explicit `training=`.
        batch_size: The batch each replica's BN normalizes over.
        config: bnscope's settings for this run.
    """
    layers = []
    for depth, call in enumerate(info.calls):
        layer = call.layer
        normalization = layer_info.normalization_config(layer)
        if normalization is not None and normalization["kind"] == "batch":
            normalization["training_mode"] = training_modes.get(call.name)
            normalization["requested_training"] = requested_training.get(call.name)
        layers.append(
            {
                "name": call.name,
                "class": type(layer).__name__,
                "activation": layer_info.activation_name(layer),
                "depth": depth,
                "params": layer_info.parameter_count(layer),
                "trainable": bool(layer.trainable),
                "use_bias": layer_info.uses_bias(layer),
                "inputs_from": call.inputs_from,
                "normalization": normalization,
            }
        )
    optimizer = getattr(model, "optimizer", None)
    metadata = {
        "schema": tags.METADATA_SCHEMA_VERSION,
        "versions": {
            "bnscope": bnscope.__version__,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "python": platform.python_version(),
        },
        "model": {
            "name": model.name,
            "class": type(model).__name__,
            "params": int(model.count_params()) if model.built else None,
        },
        "batch_size": batch_size,
        "replicas": replicas(model),
        "optimizer": optimizer_info(optimizer),
        "config": config,
        "inputs": [
            {"name": name, "dtype": dtype}
            for name, dtype in zip(info.input_names, info.input_dtypes)
        ],
        "outputs": [
            {"name": name, "classifier": classifier}
            for name, classifier in zip(info.output_names, info.classifier_outputs)
        ],
        "layers": layers,
        "gradients_skipped": info.gradients_skipped,
    }
    return metadata


def optimizer_info(optimizer) -> dict[str, Any] | None:
    """Optimizer class and (constant) learning rate."""
    if optimizer is None:
        return None
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    learning_rate = None
    # A schedule has no single rate; the optimizer class is still useful.
    with contextlib.suppress(TypeError, ValueError, AttributeError):
        learning_rate = float(np.asarray(inner.learning_rate))
    return {"class": type(optimizer).__name__, "learning_rate": learning_rate}


def layers_markdown(metadata: dict[str, Any]) -> str:
    """The layer list as a markdown table for TensorBoard's Text dashboard."""
    rows = [
        "| depth | layer | class | activation | params | normalization |",
        "|---|---|---|---|---|---|",
    ]
    for layer in metadata["layers"]:
        norm = layer["normalization"]
        rows.append(
            f"| {layer['depth']} | {layer['name']} | {layer['class']} | "
            f"{layer['activation'] or ''} | {layer['params']} | "
            f"{norm['kind'] if norm else ''} |"
        )
    return "\n".join(rows)
