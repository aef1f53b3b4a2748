"""Idioms of stock architectures, each in a minimal model trained with `BNScope`.

`keras.applications` models raised false alarms through a handful of idioms
(benchmarks/false_alarms.py runs the real ones): MobileNetV3's `ReLU(6.0)(x +
3.0)`, ConvNeXt's raw residual `+`, MobileNetV2's β before BN through a 1×1
convolution, MultiHeadAttention's key bias, ResNet's mean-subtracted pixels
into a conv → BN stem, and the fine-tuning recipe's two fits. Each is
reproduced here small enough to train in seconds, end to end: real `fit`,
event files, the reader and the report's findings.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from bnscope import BNScope, tags
from bnscope.analysis.reader import read_run
from bnscope.analysis.summary import summarize

L = keras.layers


def images(n=128, size=8, dtype="float32", seed=0):
    """Pixel intensities 0-255 whose class is the brighter half of the image."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 255, size=(n, size, size, 3))
    y = x[:, : size // 2].mean(axis=(1, 2, 3)) > x[:, size // 2 :].mean(axis=(1, 2, 3))
    return x.astype(dtype), y.astype("int64")


def train(model, x, y, tmp_path, epochs=2, batch_size=16, every_n_steps=4):
    """Fits with `BNScope`, then reads the run: `(report, run)`."""
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    model.fit(
        x,
        y,
        batch_size=batch_size,
        epochs=epochs,
        verbose=0,
        callbacks=[BNScope(log_dir=str(tmp_path), every_n_steps=every_n_steps)],
    )
    run = read_run(str(tmp_path / tags.RUN_DIRNAME))
    return summarize(run), run


def rules(report) -> set[str]:
    return {finding.rule for finding in report.findings}


def hard_sigmoid_model(rescale: bool) -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = L.Rescaling(1 / 255)(inputs) if rescale else inputs
    x = L.Dense(16, name="dense")(L.Flatten()(x))
    x = L.ReLU(6.0)(x + 3.0)  # MobileNetV3's hard sigmoid, a raw op in between
    outputs = L.Dense(2, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("rescale", [True, False], ids=["rescaled", "raw"])
def test_raw_op_between_layers_is_not_a_model_input(rescale, tmp_path):
    x, y = images()
    report, run = train(hard_sigmoid_model(rescale), x, y, tmp_path)
    re_lu = next(layer for layer in run.layers if layer.class_name == "ReLU")
    assert re_lu.inputs_from == () and re_lu.reads_inputs == ()
    assert re_lu.reads_ops == ("AddV2",) and re_lu.reads_ops_from == ("dense",)
    # Only the layer that really reads the 0-255 input decides.
    assert ("unnormalized_input" in rules(report)) is not rescale


def test_raw_residual_add_after_normalization(tmp_path):
    # ConvNeXt: Normalization first, then blocks whose `+` is a raw op.
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = L.Normalization(mean=[127.5] * 3, variance=[5400.0] * 3)(inputs)
    x = L.Conv2D(8, 2, strides=2, name="stem")(x)
    x = L.LayerNormalization(epsilon=1e-6)(x)
    for block in range(2):
        residual = x
        x = L.DepthwiseConv2D(3, padding="same", name=f"dw{block}")(x)
        x = L.LayerNormalization(epsilon=1e-6)(x)
        x = L.Dense(16, activation="gelu")(x)
        x = L.Dense(8)(x)
        x = residual + x
    outputs = L.Dense(2, activation="softmax")(L.GlobalAveragePooling2D()(x))
    x_train, y_train = images()
    report, run = train(keras.Model(inputs, outputs), x_train, y_train, tmp_path)
    after_add = run.layer("dw1")
    assert after_add.inputs_from == () and "AddV2" in after_add.reads_ops
    assert "unnormalized_input" not in rules(report)


class DividesItsInput(keras.Model):
    def __init__(self):
        super().__init__()
        self.flatten = L.Flatten()
        self.hidden = L.Dense(16, activation="relu")
        self.out = L.Dense(2, activation="softmax")

    def call(self, x):
        x = keras.ops.cast(x, "float32") / 255.0  # rescaled by a raw op
        return self.out(self.hidden(self.flatten(x)))


def conv_model(rescale: bool) -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = L.Rescaling(1 / 255)(inputs) if rescale else inputs
    x = L.Conv2D(8, 3, activation="relu")(x)
    outputs = L.Dense(2, activation="softmax")(L.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize(
    ("build", "flagged"),
    [
        (lambda: conv_model(rescale=False), True),
        (lambda: conv_model(rescale=True), False),
        (DividesItsInput, False),
    ],
    ids=["raw", "rescaling-layer", "divided-in-call"],
)
def test_uint8_images(build, flagged, tmp_path):
    keras.utils.set_random_seed(0)
    x, y = images(dtype="uint8")
    model = build()
    model(x[:2])
    report, _ = train(model, x, y, tmp_path)
    found = [f for f in report.findings if f.rule == "unnormalized_input"]
    assert bool(found) is flagged
    if flagged:
        assert "raw uint8 data" in found[0].message


def test_mean_subtracted_pixels_into_a_conv_bn_stem(tmp_path):
    # ResNet's "caffe" preprocessing keeps the 0-255 scale; its first conv
    # feeds BN, which divides any input scale out again.
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = L.ZeroPadding2D(1)(inputs)
    x = L.Conv2D(8, 3, name="conv1")(x)
    x = L.BatchNormalization(name="conv1_bn")(x)
    x = L.Activation("relu")(x)
    outputs = L.Dense(2, activation="softmax")(L.GlobalAveragePooling2D()(x))
    x_train, y_train = images()
    report, _ = train(keras.Model(inputs, outputs), x_train - 120.0, y_train, tmp_path)
    assert "unnormalized_input" not in rules(report)


def test_beta_before_bn_through_a_linear_layer(tmp_path):
    # MobileNetV2: project_BN → next block's 1×1 expand conv (no bias) → BN.
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8,)),
            L.Dense(16, use_bias=False),
            L.BatchNormalization(name="project_bn"),
            L.Dense(16, use_bias=False, name="expand"),
            L.BatchNormalization(name="expand_bn"),
            L.ReLU(),
            L.Dense(2, activation="softmax"),
        ]
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 8)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    report, run = train(model, x, y, tmp_path)
    beta = run.series(tags.GRAD_VAR_NORM, "project_bn:beta")
    assert beta.values.max() < 1e-5  # rounding noise: zero by construction
    assert "vanishing_gradient" not in rules(report)
    (info,) = [f for f in report.findings if f.rule == "bias_before_bn"]
    assert info.severity == "info" and info.layer == "project_bn"
    assert "expand" in info.message


def test_attention_key_bias(tmp_path):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 8))
    attention = L.MultiHeadAttention(num_heads=2, key_dim=4, name="mha")
    x = L.LayerNormalization()(inputs + attention(inputs, inputs))
    outputs = L.Dense(2, activation="softmax")(L.GlobalAveragePooling1D()(x))
    rng = np.random.default_rng(0)
    x_train = rng.normal(size=(128, 6, 8)).astype("float32")
    y_train = (x_train[:, :, 0].mean(axis=1) > 0).astype("int64")
    report, run = train(keras.Model(inputs, outputs), x_train, y_train, tmp_path)
    assert run.layer("mha/key").role == "attention_key"
    key_bias = run.series(tags.GRAD_VAR_NORM, "mha/key:bias")
    assert key_bias.values.max() < 1e-6
    assert "vanishing_gradient" not in rules(report)
    assert report.findings == ()


def test_fine_tuning_recipe_keeps_each_fit_s_findings(tmp_path):
    # keras.io's transfer-learning guide: train a head on a frozen base, then
    # unfreeze the base (still called with training=False) and fit again.
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    old = rng.normal(size=(256, 8)).astype("float32")
    base = keras.Sequential(
        [
            keras.Input((8,)),
            L.Dense(16, use_bias=False),
            L.BatchNormalization(momentum=0.8, name="base_bn"),
            L.ReLU(),
        ],
        name="base",
    )
    base.compile("adam", "mse")
    base.fit(old, rng.normal(size=(256, 16)), epochs=2, verbose=0)  # "pretrained"
    base.trainable = False
    inputs = keras.Input((8,))
    outputs = L.Dense(2, activation="softmax")(base(inputs, training=False))
    model = keras.Model(inputs, outputs)
    new = (rng.normal(size=(256, 8)) * 3.0 + 4.0).astype("float32")  # new domain
    y = (new[:, 0] > 4.0).astype("int64")
    callback = BNScope(log_dir=str(tmp_path), every_n_steps=4)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    model.fit(new, y, batch_size=32, epochs=3, verbose=0, callbacks=[callback])
    base.trainable = True
    model.compile(keras.optimizers.Adam(1e-5), "sparse_categorical_crossentropy")
    model.fit(new, y, batch_size=32, epochs=3, verbose=0, callbacks=[callback])

    report = summarize(read_run(str(tmp_path / tags.RUN_DIRNAME)))
    assert [segment.label.split(" (")[0] for segment in report.segments] == [
        "fit 1",
        "fit 2",
    ]
    by_rule = {finding.rule: finding for finding in report.findings}
    drift = by_rule["bn_stat_drift"]
    assert "frozen" in drift.message and drift.segments == (1,)
    override = by_rule["bn_mode_override"]
    assert override.segments == (2,)
    assert "trainable = False` on the BatchNormalization layers only" in override.hint
