"""Layer hooks: every leaf layer found and named, wrappers observed whole."""

from __future__ import annotations

import keras
import numpy as np

from bnscope.recording.hooks import LayerHooks, leaf_layers

L = keras.layers


def test_leaf_layers_name_nested_models_hierarchically():
    inner = keras.Sequential([keras.Input((3,)), L.Dense(2, name="d")], name="block")
    outer = keras.Sequential(
        [keras.Input((3,)), inner, L.Dense(1, name="head")], name="outer"
    )
    assert [name for name, _ in leaf_layers(outer)] == ["block/d", "head"]


def test_recurrent_layers_are_observed_as_a_whole():
    model = keras.Sequential(
        [keras.Input((4, 3)), L.SimpleRNN(5, name="rnn"), L.Dense(2, name="head")]
    )
    names = [name for name, _ in leaf_layers(model)]
    assert names == ["rnn", "head"]  # the cell runs inside a loop: not hooked


def _trace(model, x):
    """The recording of one traced call, with the model input tracked."""
    import tensorflow as tf

    hooks = LayerHooks(model)
    found = {}

    @tf.function(autograph=False)
    def call(x):
        with hooks.recording(inputs={"pixels": x}) as recording:
            outputs = model(x)
        found["calls"] = recording.by_name()
        return outputs

    call(x)
    return found["calls"]


def test_raw_ops_between_layers_are_recorded_with_what_is_behind_them():
    inputs = keras.Input((4,), dtype="uint8")
    x = L.Rescaling(1 / 255, name="rescale")(inputs)  # reads the cast input
    x = L.Dense(3, name="d")(x)
    x = L.ReLU(6.0, name="hard")(x + 3.0)
    model = keras.Model(inputs, L.Dense(2, name="out")(x))
    calls = _trace(model, np.zeros((2, 4), "uint8"))
    assert calls["rescale"].reads_inputs == ["pixels"]  # through Cast only
    assert calls["rescale"].reads_ops == []
    assert calls["hard"].inputs_from == [] and calls["hard"].reads_inputs == []
    assert calls["hard"].reads_ops == ["AddV2"]
    assert calls["hard"].reads_ops_from == ["d"]
    assert calls["out"].inputs_from == ["hard"] and calls["out"].reads_ops == []


def test_an_input_computed_on_before_any_layer():
    class Scaled(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = L.Dense(2, name="d")

        def call(self, x):
            return self.dense(keras.ops.cast(x, "float32") / 255.0)

    model = Scaled()
    x = np.zeros((2, 4), "uint8")
    model(x)
    (call,) = _trace(model, x).values()
    assert call.reads_inputs == []
    assert call.reads_ops == ["Cast", "RealDiv"]
    assert call.reads_ops_from == ["pixels"]
