"""What bnscope reads off a Keras layer without running it."""

from __future__ import annotations

import keras
import pytest

from bnscope import schema
from bnscope.layers import BatchNormalization as ReferenceBN
from bnscope.layers import LayerNormalization as ReferenceLN
from bnscope.recording import layer_info

L = keras.layers


@pytest.mark.parametrize(
    "layer, name",
    [
        (L.Dense(3), "linear"),
        (L.Dense(3, activation="relu"), "relu"),
        (L.Dense(3, activation=keras.activations.sigmoid), "sigmoid"),
        (L.Activation("tanh"), "tanh"),
        (L.ReLU(max_value=6.0), "relu"),
        (L.LeakyReLU(), "leaky_relu"),
        (L.Softmax(), "softmax"),
        (L.Dropout(0.5), None),
    ],
    ids=lambda value: (
        type(value).__name__ if not isinstance(value, str | None) else str(value)
    ),
)
def test_activation_names(layer, name):
    assert layer_info.activation_name(layer) == name


@pytest.mark.parametrize(
    "layer, kind",
    [
        (L.BatchNormalization(), schema.BATCH),
        (ReferenceBN(), schema.BATCH),
        (L.LayerNormalization(), schema.LAYER),
        (ReferenceLN(), schema.LAYER),
        (L.GroupNormalization(groups=2), schema.GROUP),
        (L.Dense(2), None),
    ],
    ids=lambda value: (
        type(value).__name__ if not isinstance(value, str | None) else str(value)
    ),
)
def test_normalization_kinds(layer, kind):
    assert layer_info.normalization_kind(layer) == kind


def test_batch_norm_metadata_of_a_built_layer():
    bn = L.BatchNormalization(axis=1, momentum=0.9, epsilon=1e-5, center=False)
    bn.build((None, 4, 8))
    meta = layer_info.normalization_meta(bn)
    assert meta == schema.NormalizationMeta(
        kind=schema.BATCH,
        axis=(1,),
        epsilon=1e-5,
        center=False,
        scale=True,
        momentum=0.9,
        channels=4,
    )
    assert layer_info.normalization_meta(L.Dense(2)) is None


def test_sizes_bias_and_affine_parameters():
    dense = L.Dense(3, use_bias=False)
    dense.build((None, 4))
    assert layer_info.parameter_count(dense) == 12
    assert layer_info.uses_bias(dense) is False
    assert layer_info.uses_bias(L.Activation("relu")) is None
    ln = L.LayerNormalization()
    ln.build((None, 4))
    gamma, beta = layer_info.scale_and_offset(ln)
    assert tuple(gamma.shape) == (4,) and tuple(beta.shape) == (4,)


def test_kernel_size_and_padding():
    conv = L.Conv2D(4, 3, padding="same")
    assert layer_info.kernel_size(conv) == (3, 3)
    assert layer_info.padding(conv) == "same"
    assert layer_info.kernel_size(L.Dense(3)) == ()
    assert layer_info.padding(L.Dense(3)) is None


def test_roles_of_attention_projections():
    inputs = keras.Input((5, 8))
    attention = L.MultiHeadAttention(num_heads=2, key_dim=4)
    model = keras.Model(inputs, attention(inputs, inputs))
    roles = layer_info.roles(model)
    assert roles[id(attention._key_dense)] == "attention_key"
    assert roles[id(attention._query_dense)] == "attention_query"
    assert sorted(roles.values()) == [
        "attention_key",
        "attention_output",
        "attention_query",
        "attention_value",
    ]
