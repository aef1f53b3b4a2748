"""What bnscope knows about a model's outputs: the compiled loss and the activation.

The rules compare them with the targets and predictions the probe measures
(`bnscope/recording/stats/targets.py`): a softmax over one unit, a sigmoid
scored by categorical cross-entropy, a linear output under a probability loss.
Everything read from Keras internals is optional: what cannot be found is
`None`, and the rules that need it stay silent.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import keras

from bnscope import tags
from bnscope.recording import layer_info

# Keras operations (`keras.ops.softmax(x)` in a Functional model) that are an
# output activation, by class name.
_ACTIVATION_OPS = {
    "Softmax": "softmax",
    "LogSoftmax": "log_softmax",
    "Sigmoid": "sigmoid",
    "HardSigmoid": "hard_sigmoid",
    "Tanh": "tanh",
    "Relu": "relu",
    "Relu6": "relu6",
    "Softplus": "softplus",
}


def loss_spec(loss) -> tuple[str | None, bool | None]:
    """`(name, from_logits)` of one loss, as `compile` resolved it.

    Args:
        loss: A loss string, function or `keras.losses.Loss`.

    Returns:
        The Keras function name (`"binary_crossentropy"`, ...) or, for a
        custom loss, its name; and `from_logits` (`False` for a probability
        loss that does not set it, `None` for losses that have none).
    """
    if loss is None:
        return None, None
    if isinstance(loss, str):
        with contextlib.suppress(ValueError, TypeError):
            loss = keras.losses.get(loss)
        if isinstance(loss, str):
            return loss, None
    kwargs = dict(getattr(loss, "_fn_kwargs", None) or {})
    function = getattr(loss, "fn", None) or loss
    name = getattr(function, "__name__", None) or getattr(loss, "name", None)
    if name is None:
        name = type(loss).__name__
    from_logits = kwargs.get("from_logits", getattr(loss, "from_logits", None))
    if from_logits is None and name in tags.PROBABILITY_LOSSES:
        from_logits = False  # the default of every Keras probability loss
    return str(name), None if from_logits is None else bool(from_logits)


def compiled_losses(model: keras.Model, names: Sequence[str]) -> list[tuple]:
    """`(loss name, from_logits)` of each flat output (`(None, None)` if unknown).

    Args:
        model: The compiled model; its loss is resolved once `compute_loss`
            ran (the probe runs it).
        names: The outputs' names, in flat order.
    """
    result: list[tuple] = [(None, None)] * len(names)
    flat = None
    with contextlib.suppress(AttributeError, TypeError):
        flat = model._compile_loss._flat_losses
    if flat:
        for entry in flat:
            path = tuple(getattr(entry, "path", ()) or ())
            spec = loss_spec(getattr(entry, "loss", None))
            if not path:
                indices = range(len(names))
            elif isinstance(path[0], int) and path[0] < len(names):
                indices = [path[0]]
            elif path[0] in names:
                indices = [list(names).index(path[0])]
            else:
                continue
            for index in indices:
                result[index] = spec
        return result
    loss = getattr(model, "loss", None)
    if len(names) == 1 and loss is not None and not isinstance(loss, list | dict):
        with contextlib.suppress(AttributeError, TypeError):
            result[0] = loss_spec(loss)
    return result


def output_activation(
    model: keras.Model, index: int, layer: keras.layers.Layer | None
) -> str | None:
    """The activation that produces flat output `index`, or `None` if unknown.

    Args:
        model: The model.
        index: The output's position in the flat outputs.
        layer: The observed layer whose output it is (from the probe's
            trace), if one is.
    """
    if layer is not None:
        return layer_info.activation_name(layer)
    # A Functional model whose output is an op (`keras.ops.softmax(x)`).
    outputs = []
    with contextlib.suppress(AttributeError, ValueError):
        outputs = list(model.outputs or [])
    if index >= len(outputs):
        return None
    history = getattr(outputs[index], "_keras_history", None)
    operation = getattr(history, "operation", None)
    if operation is None or isinstance(operation, keras.Model):
        return None
    if isinstance(operation, keras.layers.Layer):
        return layer_info.activation_name(operation)
    return _ACTIVATION_OPS.get(type(operation).__name__)
