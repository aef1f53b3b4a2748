"""Layer hooks: every leaf layer found and named, wrappers observed whole."""

from __future__ import annotations

import keras

from bnscope.recording.hooks import leaf_layers

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
