"""The compiled loss and the activation of each model output, read from Keras."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from bnscope.recording import output_info

L = keras.layers


@pytest.mark.parametrize(
    ("loss", "expected"),
    [
        ("mse", ("mean_squared_error", None)),
        ("binary_crossentropy", ("binary_crossentropy", False)),
        (keras.losses.binary_crossentropy, ("binary_crossentropy", False)),
        (
            keras.losses.CategoricalCrossentropy(from_logits=True),
            ("categorical_crossentropy", True),
        ),
        (
            keras.losses.SparseCategoricalCrossentropy(),
            ("sparse_categorical_crossentropy", False),
        ),
        (keras.losses.Huber(), ("huber", None)),
        ("no_such_loss", ("no_such_loss", None)),
        (None, (None, None)),
    ],
)
def test_loss_spec(loss, expected):
    assert output_info.loss_spec(loss) == expected


def test_custom_losses_keep_their_name():
    def my_loss(y_true, y_pred):
        return keras.ops.mean(y_pred - y_true)

    assert output_info.loss_spec(my_loss) == ("my_loss", None)


def two_outputs():
    inputs = keras.Input((4,))
    classes = L.Dense(3, activation="softmax", name="cls")(inputs)
    value = L.Dense(1, name="reg")(inputs)
    return keras.Model(inputs, [classes, value])


@pytest.mark.parametrize(
    "loss",
    [
        {"reg": "mae", "cls": "categorical_crossentropy"},
        ["categorical_crossentropy", "mae"],
    ],
    ids=["dict", "list"],
)
def test_compiled_losses_per_output(loss):
    model = two_outputs()
    model.compile("sgd", loss)
    x = np.zeros((4, 4), "float32")
    y = [np.eye(3)[[0, 1, 2, 0]], np.zeros((4, 1))]
    model.compute_loss(x=x, y=y, y_pred=model(x))  # resolves the losses
    assert output_info.compiled_losses(model, ["cls", "reg"]) == [
        ("categorical_crossentropy", False),
        ("mean_absolute_error", None),
    ]


def test_one_loss_applies_to_every_output():
    model = two_outputs()
    model.compile("sgd", "mse")
    x = np.zeros((4, 4), "float32")
    model.compute_loss(x=x, y=[np.zeros((4, 3)), np.zeros((4, 1))], y_pred=model(x))
    assert (
        output_info.compiled_losses(model, ["cls", "reg"])
        == [("mean_squared_error", None)] * 2
    )


def test_unresolved_loss_falls_back_to_the_compiled_argument():
    model = keras.Sequential([keras.Input((4,)), L.Dense(1, activation="sigmoid")])
    model.compile("sgd", "binary_crossentropy")
    assert output_info.compiled_losses(model, ["output"]) == [
        ("binary_crossentropy", False)
    ]
    uncompiled = keras.Sequential([keras.Input((4,)), L.Dense(1)])
    assert output_info.compiled_losses(uncompiled, ["output"]) == [(None, None)]


def test_output_activation_of_layers_and_ops():
    inputs = keras.Input((4,))
    logits = L.Dense(3, name="logits")(inputs)
    model = keras.Model(inputs, [keras.ops.softmax(logits), keras.ops.add(logits, 1)])
    assert output_info.output_activation(model, 0, None) == "softmax"
    assert output_info.output_activation(model, 1, None) is None  # not an activation
    assert output_info.output_activation(model, 2, None) is None  # no such output
    dense = L.Dense(1, activation="sigmoid")
    assert output_info.output_activation(model, 0, dense) == "sigmoid"
    head = keras.Sequential([keras.Input((4,)), L.Dense(2, activation="softmax")])
    assert output_info.output_activation(head, 0, None) == "softmax"
