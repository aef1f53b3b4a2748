"""Builds the run metadata (`bnscope.schema.RunMetadata`) from a live model.

Written once per `fit` under `bnscope/metadata` (schema in docs/tags.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import platform
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from bnscope import schema
from bnscope._version import __version__
from bnscope.recording import layer_info, output_info
from bnscope.recording.distribution import replicas
from bnscope.recording.probe import TraceInfo


def build(
    model: keras.Model,
    info: TraceInfo,
    *,
    training_modes: dict[str, bool],
    requested_training: dict[str, bool],
    batch_size: int | None,
    config: dict[str, Any],
    steps_per_epoch: int | None = None,
    epochs: int | None = None,
) -> schema.RunMetadata:
    """The metadata of `model` as the probe's first trace saw it.

    Args:
        model: The observed model.
        info: What the probe's trace learned (layers in call order, outputs).
        training_modes: The mode each BN layer ran in inside the train step.
        requested_training: Layers called with an explicit `training=`.
        batch_size: The batch each replica's BN normalizes over.
        config: bnscope's settings for this run.
        steps_per_epoch: As `fit` was told. Defaults to `None`.
        epochs: As `fit` was told. Defaults to `None`.
    """
    layers = []
    roles = layer_info.roles(model)
    for depth, call in enumerate(info.calls):
        layer = call.layer
        normalization = layer_info.normalization_meta(layer)
        if normalization is not None and normalization.is_batch:
            normalization = dataclasses.replace(
                normalization,
                training_mode=training_modes.get(call.name),
                requested_training=requested_training.get(call.name),
            )
        layers.append(
            schema.LayerMeta(
                name=call.name,
                depth=depth,
                class_name=type(layer).__name__,
                activation=layer_info.activation_name(layer),
                params=layer_info.parameter_count(layer),
                trainable=bool(layer.trainable),
                use_bias=layer_info.uses_bias(layer),
                inputs_from=tuple(call.inputs_from),
                normalization=normalization,
                input_shape=_static_shape(call.inputs),
                data_format=_data_format(layer),
                reads_inputs=tuple(call.reads_inputs),
                reads_ops=tuple(call.reads_ops),
                reads_ops_from=tuple(call.reads_ops_from),
                kernel_size=layer_info.kernel_size(layer),
                padding=layer_info.padding(layer),
                role=roles.get(id(layer)),
            )
        )
    return schema.RunMetadata(
        versions={
            "bnscope": __version__,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "python": platform.python_version(),
        },
        model=schema.ModelMeta(
            name=model.name,
            class_name=type(model).__name__,
            params=int(model.count_params()) if model.built else None,
        ),
        batch_size=batch_size,
        replicas=replicas(model),
        steps_per_epoch=steps_per_epoch,
        epochs=epochs,
        optimizer=optimizer_meta(getattr(model, "optimizer", None)),
        config=dict(config),
        inputs=tuple(
            schema.InputMeta(name=name, dtype=dtype)
            for name, dtype in zip(info.input_names, info.input_dtypes)
        ),
        outputs=outputs_meta(model, info),
        layers=tuple(layers),
        gradients_skipped=info.gradients_skipped,
    )


def optimizer_meta(optimizer) -> schema.OptimizerMeta | None:
    """Optimizer class and (constant) learning rate."""
    if optimizer is None:
        return None
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    learning_rate = None
    # A schedule has no single rate; the optimizer class is still useful.
    with contextlib.suppress(TypeError, ValueError, AttributeError):
        learning_rate = float(np.asarray(inner.learning_rate))
    return schema.OptimizerMeta(
        class_name=type(optimizer).__name__, learning_rate=learning_rate
    )


def outputs_meta(model: keras.Model, info: TraceInfo) -> tuple[schema.OutputMeta, ...]:
    """Each output: what produced it, its compiled loss and its targets."""
    names = list(info.output_names)
    losses = output_info.compiled_losses(model, names)
    layers = {call.name: call.layer for call in info.calls}
    specs = list(info.output_specs) + [{}] * (len(names) - len(info.output_specs))
    outputs = []
    for index, (name, classifier, spec, (loss, from_logits)) in enumerate(
        zip(names, info.classifier_outputs, specs, losses)
    ):
        producer = spec.get("layer")
        outputs.append(
            schema.OutputMeta(
                name=name,
                classifier=classifier,
                layer=producer,
                activation=output_info.output_activation(
                    model, index, layers.get(producer)
                ),
                shape=spec.get("shape"),
                loss=loss,
                from_logits=from_logits,
                target_dtype=spec.get("target_dtype"),
                target_shape=spec.get("target_shape"),
            )
        )
    return tuple(outputs)


def _static_shape(tensor) -> schema.Shape | None:
    shape = getattr(tensor, "shape", None)
    if shape is None:
        return None
    with contextlib.suppress(TypeError, ValueError):
        return tuple(None if d is None else int(d) for d in shape)
    return None


def _data_format(layer) -> str | None:
    data_format = getattr(layer, "data_format", None)
    return data_format if isinstance(data_format, str) else None
