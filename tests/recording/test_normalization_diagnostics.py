"""BN misuse, drift and gap: detected on purpose-built models, quiet on healthy ones.

Each case trains a real Keras model with `fit` and `BNScope`, reads the run
back with bnscope's reader and applies the rules, end to end.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from bnscope import BNScope, tags
from bnscope.analysis.reader import read_run
from bnscope.analysis.rules import evaluate
from tests.support import eventdata

L = keras.layers


def data(n=256, features=8, shift=0.0, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64")
    return x * scale + shift, y


def findings(
    model, tmp_path, x, y, batch_size=32, epochs=3, every_n_steps=2, **fit_kwargs
):
    model.fit(
        x,
        y,
        batch_size=batch_size,
        epochs=epochs,
        verbose=0,
        callbacks=[BNScope(log_dir=str(tmp_path), every_n_steps=every_n_steps)],
        **fit_kwargs,
    )
    run_dir = str(tmp_path / tags.RUN_DIRNAME)
    return {(f.rule, f.layer): f for f in evaluate(read_run(run_dir))}, run_dir


def rules_of(found) -> set[str]:
    return {rule for rule, _ in found}


def mlp(*middle, name="mlp"):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((8,)), *middle, L.Dense(2, activation="softmax")], name=name
    )
    model.compile(keras.optimizers.SGD(0.05), "sparse_categorical_crossentropy")
    return model


@pytest.mark.parametrize("frozen", [True, False], ids=["frozen", "trainable"])
def test_frozen_bn_facing_new_data(frozen, tmp_path):
    model = mlp(
        L.Dense(16, use_bias=False),
        L.BatchNormalization(momentum=0.8, name="bn"),
        L.Activation("relu"),
    )
    x, y = data()
    model.fit(x, y, batch_size=32, epochs=3, verbose=0)  # statistics of the old data
    model.get_layer("bn").trainable = not frozen
    model.compile(keras.optimizers.SGD(0.05), "sparse_categorical_crossentropy")
    new_x, new_y = data(shift=3.0, scale=2.0, seed=1)  # the data moved
    found, run = findings(model, tmp_path, new_x, new_y, epochs=4)
    layer = eventdata.metadata(run)["layers"][1]
    assert layer["normalization"]["training_mode"] is (not frozen)
    if frozen:
        finding = found[("bn_stat_drift", "bn")]
        assert "frozen" in finding.message
        assert finding.value > finding.threshold
    else:  # a trainable BN (momentum 0.8) catches up with the new data
        assert ("bn_stat_drift", "bn") not in found


@pytest.mark.parametrize(
    "override", [True, False], ids=["training-false-call", "trainable-false"]
)
def test_functional_training_false_override_keras_20285(override, tmp_path):
    keras.utils.set_random_seed(0)
    base = keras.Sequential(
        [
            keras.Input((8,)),
            L.Dense(16, use_bias=False),
            L.BatchNormalization(name="bn"),
        ],
        name="base",
    )
    inputs = keras.Input((8,))
    if override:
        features = base(inputs, training=False)  # meant to freeze BN; fit overrides it
    else:
        base.trainable = False  # the documented way to freeze
        features = base(inputs)
    model = keras.Model(inputs, L.Dense(2, activation="softmax")(features))
    model.compile(keras.optimizers.SGD(0.05), "sparse_categorical_crossentropy")
    x, y = data()
    found, run = findings(model, tmp_path, x, y)
    bn = {layer["name"]: layer for layer in eventdata.metadata(run)["layers"]}[
        "base/bn"
    ]
    if override:
        assert bn["normalization"]["requested_training"] is False
        assert bn["normalization"]["training_mode"] is True  # what really happened
        assert found[("bn_mode_override", "base/bn")].severity == "error"
    else:
        assert bn["normalization"]["training_mode"] is False
        assert "bn_mode_override" not in rules_of(found)


@pytest.mark.parametrize("batch_size", [2, 64])
def test_small_batch_bn(batch_size, tmp_path):
    model = mlp(
        L.Dense(16, use_bias=False), L.BatchNormalization(), L.Activation("relu")
    )
    x, y = data(n=128)
    found, _ = findings(
        model, tmp_path, x, y, batch_size=batch_size, epochs=1 if batch_size == 2 else 4
    )
    assert ("small_batch_bn" in rules_of(found)) is (batch_size == 2)


@pytest.mark.parametrize("use_bias", [True, False])
def test_bias_before_bn(use_bias, tmp_path):
    model = mlp(
        L.Dense(16, use_bias=use_bias, name="dense"),
        L.BatchNormalization(),
        L.Activation("relu"),
    )
    x, y = data()
    found, run = findings(model, tmp_path, x, y)
    assert (("bias_before_bn", "dense") in found) is use_bias
    if use_bias:  # the structural zero is visible in the per-variable gradient
        bias_grads = eventdata.scalars(run)["grad_var_norm/dense:bias"]
        assert max(value for _, value in bias_grads) < 1e-6


@pytest.mark.parametrize("dropout_first", [True, False])
def test_dropout_feeding_bn(dropout_first, tmp_path):
    norm_then_drop = [L.BatchNormalization(name="bn"), L.Dropout(0.5, name="drop")]
    layers = list(reversed(norm_then_drop)) if dropout_first else norm_then_drop
    model = mlp(L.Dense(16, use_bias=False, activation="relu"), *layers)
    x, y = data()
    found, _ = findings(model, tmp_path, x, y)
    assert ("dropout_before_bn" in rules_of(found)) is dropout_first


def test_healthy_bn_model_is_quiet(tmp_path):
    model = mlp(
        L.Dense(16, use_bias=False),
        L.BatchNormalization(momentum=0.9),
        L.Activation("relu"),
    )
    x, y = data(n=512)
    found, _ = findings(model, tmp_path, x, y, epochs=6, every_n_steps=8)
    misuse = {
        "bn_stat_drift",
        "bn_mode_override",
        "small_batch_bn",
        "bias_before_bn",
        "dropout_before_bn",
        "bn_train_inference_gap",
    }
    assert not rules_of(found) & misuse, found


def test_reference_bn_layer_gives_the_same_drift_as_keras(tmp_path):
    from bnscope.layers import BatchNormalization as ReferenceBN

    x, y = data(n=64)
    runs = {}
    for name, bn_class in (("keras", L.BatchNormalization), ("reference", ReferenceBN)):
        keras.utils.set_random_seed(0)  # the layers below draw their seeds now
        model = mlp(
            L.Dense(16, use_bias=False),
            bn_class(momentum=0.9, name="bn"),
            L.Activation("relu"),
        )
        findings(model, tmp_path / name, x, y, epochs=1, shuffle=False)
        runs[name] = eventdata.scalars(tmp_path / name / tags.RUN_DIRNAME)
    for metric in (
        tags.BN_MEAN_SHIFT,
        tags.BN_LOG_VAR_RATIO,
        tags.BN_GAP,
        tags.GRAD_NORM,
    ):
        keras_values = [v for _, v in runs["keras"][metric.tag("bn")]]
        reference_values = [v for _, v in runs["reference"][metric.tag("bn")]]
        assert reference_values == pytest.approx(keras_values, rel=1e-4, abs=1e-6), (
            metric.name
        )


def test_layer_group_and_rms_normalization_statistics(tmp_path):
    from bnscope.layers import LayerNormalization as ReferenceLN

    model = mlp(
        L.Dense(16, name="d1"),
        L.LayerNormalization(name="ln"),
        L.Dense(16, name="d2"),
        L.GroupNormalization(groups=4, name="gn"),
        L.Dense(16, name="d3"),
        L.RMSNormalization(name="rms"),
        L.Dense(16, name="d4"),
        ReferenceLN(name="ref_ln"),
    )
    x, y = data(n=64, shift=2.0)
    _, run = findings(model, tmp_path, x, y, epochs=1)
    kinds = {
        layer["name"]: (layer["normalization"] or {}).get("kind")
        for layer in eventdata.metadata(run)["layers"]
    }
    assert {name: kind for name, kind in kinds.items() if kind} == {
        "ln": "layer",
        "gn": "group",
        "rms": "rms",
        "ref_ln": "layer",
    }
    normalized = {"ln", "gn", "rms", "ref_ln"}
    assert eventdata.tags_of(run, tags.NORM_IN_STD) == normalized
    assert eventdata.tags_of(run, tags.GAMMA_MEAN) == normalized
    assert eventdata.tags_of(run, tags.BETA_MEAN) == normalized - {
        "rms"
    }  # RMSNorm has no β
    assert not eventdata.tags_of(run, tags.BN_MEAN_SHIFT)  # no moving statistics
    scalars = eventdata.scalars(run)
    # γ starts at 1 and has taken one SGD step when first probed.
    assert scalars[tags.GAMMA_MEAN.tag("ln")][0][1] == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("axis", [1, -1])
def test_bn_axis_against_the_channel_axis(axis, tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            L.Conv2D(4, 3, padding="same", use_bias=False, name="conv"),
            L.BatchNormalization(axis=axis, name="bn"),  # channels_last: -1 is right
            L.Activation("relu"),
            L.GlobalAveragePooling2D(),
            L.Dense(2, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.SGD(0.05), "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 8, 8, 3)).astype("float32")
    y = (x[:, :4].mean(axis=(1, 2, 3)) > 0).astype("int64")
    found, run = findings(model, tmp_path, x, y, epochs=1)
    layers = {layer["name"]: layer for layer in eventdata.metadata(run)["layers"]}
    assert layers["bn"]["input_shape"][1:] == [8, 8, 4]
    assert layers["conv"]["data_format"] == "channels_last"
    if axis == 1:
        finding = found[("bn_axis", "bn")]
        assert "channel axis is 3" in finding.message and "axis=-1" in finding.hint
    else:
        assert "bn_axis" not in rules_of(found)
