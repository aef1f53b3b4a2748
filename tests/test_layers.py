"""Tests for bnscope.layers: golden worked examples, and equivalence with Keras."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from bnscope.layers import BatchNormalization, LayerNormalization

TOL = {"rtol": 1e-5, "atol": 1e-5}


def _three_maps() -> np.ndarray:
    """All ones, 1..9 and 9..1: a batch of three 3x3 maps with one channel."""
    maps = [np.ones((3, 3)), np.arange(1, 10).reshape(3, 3), np.arange(9, 0, -1)]
    return np.stack([np.reshape(m, (3, 3)) for m in maps])[..., None].astype("float32")


# Golden numbers -------------------------------------------------------------


@pytest.mark.parametrize(
    ("epsilon", "first_value"), [(0.0, -0.94280904), (1e-3, -0.9427501)]
)
def test_bn_three_maps_worked_example(epsilon, first_value):
    maps = _three_maps()
    layer = BatchNormalization(epsilon=epsilon)
    outputs = np.asarray(layer(maps, training=True))

    # 99 / 27 and sqrt(579 / 27 - (99 / 27) ** 2) = sqrt(8).
    assert layer.last_batch_mean.shape == (1,)
    np.testing.assert_allclose(layer.last_batch_mean, [3.6666667], rtol=1e-7)
    np.testing.assert_allclose(np.sqrt(layer.last_batch_variance), [2.8284271])
    np.testing.assert_allclose(outputs[0, 0, 0, 0], first_value, rtol=1e-6)
    np.testing.assert_allclose(outputs[0, 0, 0, 0], (1 - 11 / 3) / np.sqrt(8 + epsilon))
    keras_outputs = keras.layers.BatchNormalization(epsilon=epsilon)(
        maps, training=True
    )
    np.testing.assert_allclose(outputs, keras_outputs, **TOL)


def test_bn_column_versus_ln_rows():
    column = np.array([[2.0], [5.0], [7.0]], "float32")
    bn = BatchNormalization(epsilon=0.0)
    normalized = np.asarray(bn(column, training=True)).ravel()
    assert round(float(bn.last_batch_mean[0]), 2) == 4.67
    assert round(float(np.sqrt(bn.last_batch_variance[0])), 2) == 2.05
    np.testing.assert_allclose(np.round(normalized, 2), [-1.30, 0.16, 1.14], atol=1e-6)

    # Layer normalization of rows normalizes across features, per row.
    rows = np.array([[2.0, 5.0, 7.0], [1.0, 2.0, 3.0], [0.0, 0.0, 6.0]], "float32")
    ln = LayerNormalization(epsilon=0.0)
    ln_rows = np.asarray(ln(rows))
    for row, ln_row in zip(rows, ln_rows):
        np.testing.assert_allclose(ln_row, (row - row.mean()) / row.std(), **TOL)
    np.testing.assert_allclose(ln_rows[0], normalized, **TOL)  # the same numbers
    np.testing.assert_allclose(ln.last_mean, rows.mean(axis=1), **TOL)
    np.testing.assert_allclose(ln.last_variance, rows.var(axis=1), **TOL)
    bn_rows = np.asarray(BatchNormalization(epsilon=0.0)(rows, training=True))
    assert not np.allclose(bn_rows, ln_rows, atol=0.1)
    np.testing.assert_allclose(bn_rows, (rows - rows.mean(0)) / rows.std(0), **TOL)


def test_normalization_adapt_worked_example():
    samples = np.stack([np.full((3, 3, 1), v) for v in (1.0, 2.0, 3.0)])
    samples = samples.astype("float32")
    adapted = keras.layers.Normalization()
    adapted.adapt(samples)
    np.testing.assert_allclose(np.ravel(adapted.mean), [2.0])
    np.testing.assert_allclose(np.sqrt(np.ravel(adapted.variance)), [0.8164966])
    keras_value = np.asarray(adapted(samples))[0, 0, 0, 0]
    np.testing.assert_allclose(keras_value, -1.2247449, rtol=1e-7)

    # BN on that batch, with epsilon 0, computes exactly the same statistics.
    bn = BatchNormalization(epsilon=0.0)
    np.testing.assert_allclose(bn(samples, training=True), adapted(samples), **TOL)


# Equivalence with Keras -----------------------------------------------------


def _random_case(seed: int, layer_kind: str):
    """A random input shape, axis and arguments for one layer kind."""
    rng = np.random.default_rng(seed)
    rank = int(rng.integers(2, 5))
    # LN over a single element has zero variance: ours returns beta exactly,
    # while Keras' fused x * inv - mean * inv cancels to about 1e-5 of noise.
    low = 1 if layer_kind == "bn" else 2
    shape = (int(rng.integers(2, 6)), *rng.integers(low, 5, size=rank - 1).tolist())
    kwargs = {
        "epsilon": float(rng.choice([1e-3, 1e-5])),
        "center": bool(rng.integers(2)),
        "scale": bool(rng.integers(2)),
    }
    non_batch = list(range(1, rank))
    if layer_kind == "bn":
        axis = int(rng.choice(non_batch))
        kwargs["axis"] = axis - rank if rng.integers(2) else axis
        kwargs["momentum"] = float(rng.choice([0.99, 0.9, 0.5]))
    else:
        count = int(rng.integers(1, rank))
        axes = sorted(rng.choice(non_batch, size=count, replace=False).tolist())
        kwargs["axis"] = axes[0] if count == 1 and rng.integers(2) else axes
    return rng, shape, kwargs


def _copy_random_weights(rng, reference, candidate) -> None:
    """Gives both layers the same random weights (variances kept positive)."""
    mine = {w.name: w for w in candidate.weights}
    assert sorted(mine) == sorted(w.name for w in reference.weights)
    for weight in reference.weights:
        value = rng.normal(size=weight.shape)
        if weight.name == "moving_variance":
            value = np.abs(value) + 0.5
        weight.assign(value.astype("float32"))
        mine[weight.name].assign(value.astype("float32"))


def _train_both(rng, shape, reference, candidate, steps: int = 3):
    """Runs SGD steps through both layers, asserting they agree at every step."""
    scale = rng.normal(size=shape[1:]).astype("float32")
    pre_scales = [keras.Variable(scale), keras.Variable(scale)]
    optimizers = [keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1)]
    for _ in range(steps):
        x = (3.0 * rng.normal(size=shape) + 2.0).astype("float32")
        target = rng.normal(size=shape).astype("float32")
        outputs = []
        for layer, pre_scale, optimizer in zip(
            (reference, candidate), pre_scales, optimizers
        ):
            with tf.GradientTape() as tape:
                y = layer(keras.ops.multiply(x, pre_scale), training=True)
                loss = keras.ops.mean(keras.ops.square(y - target))
            variables = [pre_scale, *layer.trainable_weights]
            optimizer.apply(tape.gradient(loss, variables), variables)
            outputs.append(np.asarray(y))
        np.testing.assert_allclose(outputs[1], outputs[0], **TOL)
        for theirs, mine in zip(reference.weights, candidate.weights):
            np.testing.assert_allclose(mine, theirs, **TOL, err_msg=mine.name)
        np.testing.assert_allclose(pre_scales[1], pre_scales[0], **TOL)
    return x * np.asarray(pre_scales[0])


@pytest.mark.parametrize("seed", range(8))
def test_bn_matches_keras_over_training_steps(seed):
    rng, shape, kwargs = _random_case(seed, "bn")
    reference = keras.layers.BatchNormalization(**kwargs)
    candidate = BatchNormalization(**kwargs)
    reference.build(shape)
    candidate.build(shape)
    _copy_random_weights(rng, reference, candidate)

    # The first step against a slow numpy reference of the definition.
    x = rng.normal(size=shape).astype("float32")
    moving_mean = np.asarray(candidate.moving_mean)
    outputs = np.asarray(candidate(x, training=True))
    axes = tuple(i for i in range(len(shape)) if i != kwargs["axis"] % len(shape))
    mean, variance = x.mean(axis=axes), x.var(axis=axes)
    np.testing.assert_allclose(candidate.last_batch_mean, mean, **TOL)
    np.testing.assert_allclose(candidate.last_batch_variance, variance, **TOL)
    assert candidate.last_batch_mean.shape == candidate.moving_mean.shape
    momentum = kwargs["momentum"]
    expected = moving_mean * momentum + mean * (1 - momentum)
    np.testing.assert_allclose(candidate.moving_mean, expected, **TOL)
    keep = [1 if i in axes else -1 for i in range(len(shape))]
    expected = (x - mean.reshape(keep)) / np.sqrt(
        variance.reshape(keep) + kwargs["epsilon"]
    )
    if kwargs["scale"]:
        expected = expected * np.asarray(candidate.gamma).reshape(keep)
    if kwargs["center"]:
        expected = expected + np.asarray(candidate.beta).reshape(keep)
    np.testing.assert_allclose(outputs, expected, **TOL)
    reference(x, training=True)

    last_x = _train_both(rng, shape, reference, candidate)
    np.testing.assert_allclose(
        candidate(last_x, training=False), reference(last_x, training=False), **TOL
    )
    assert candidate.last_training_mode is False
    assert candidate.last_batch_mean is None


@pytest.mark.parametrize("seed", range(8))
def test_ln_matches_keras_over_training_steps(seed):
    rng, shape, kwargs = _random_case(seed, "ln")
    reference = keras.layers.LayerNormalization(**kwargs)
    candidate = LayerNormalization(**kwargs)
    reference.build(shape)
    candidate.build(shape)
    _copy_random_weights(rng, reference, candidate)

    x = rng.normal(size=shape).astype("float32")
    candidate(x)
    axes = kwargs["axis"] if isinstance(kwargs["axis"], list) else [kwargs["axis"]]
    np.testing.assert_allclose(candidate.last_mean, x.mean(axis=tuple(axes)), **TOL)
    np.testing.assert_allclose(candidate.last_variance, x.var(axis=tuple(axes)), **TOL)

    last_x = _train_both(rng, shape, reference, candidate)
    np.testing.assert_allclose(candidate(last_x), reference(last_x), **TOL)


def _tiny_model(bn_class, ln_class) -> keras.Model:
    keras.utils.set_random_seed(7)
    return keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            keras.layers.Conv2D(3, 3),
            bn_class(momentum=0.8),
            keras.layers.ReLU(),
            keras.layers.Flatten(),
            keras.layers.Dense(5),
            ln_class(),
            keras.layers.Dense(1),
        ]
    )


def test_fit_matches_keras():
    rng = np.random.default_rng(0)
    x = (2.0 * rng.normal(size=(32, 6, 6, 2)) + 1.0).astype("float32")
    y = rng.normal(size=(32, 1)).astype("float32")
    models = [
        _tiny_model(keras.layers.BatchNormalization, keras.layers.LayerNormalization),
        _tiny_model(BatchNormalization, LayerNormalization),
    ]
    models[1].set_weights(models[0].get_weights())
    for model in models:
        model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
        model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    reference, candidate = models
    assert np.abs(candidate.layers[1].moving_mean).max() > 1e-3  # it moved
    for theirs, mine in zip(reference.weights, candidate.weights):
        np.testing.assert_allclose(mine, theirs, **TOL, err_msg=mine.path)
    np.testing.assert_allclose(candidate.predict(x, verbose=0), reference(x), **TOL)


# Modes, masks and the last_* contract ---------------------------------------


def test_bn_frozen_layer_uses_moving_statistics():
    x = np.random.default_rng(1).normal(size=(4, 3)).astype("float32") + 5.0
    layer = BatchNormalization()
    assert layer.last_training_mode is False and layer.last_batch_mean is None
    layer.build(x.shape)
    layer(x, training=True)
    assert layer.last_training_mode is True
    before = np.asarray(layer.moving_mean)

    layer.trainable = False
    outputs = layer(x, training=True)
    assert layer.last_training_mode is False
    assert layer.last_batch_mean is None and layer.last_batch_variance is None
    np.testing.assert_array_equal(layer.moving_mean, before)
    expected = (x - before) / np.sqrt(np.asarray(layer.moving_variance) + 1e-3)
    np.testing.assert_allclose(outputs, expected, **TOL)


def test_last_statistics_are_tensors_of_the_trace():
    bn, ln = BatchNormalization(), LayerNormalization()
    x = np.random.default_rng(2).normal(size=(5, 4, 3)).astype("float32")

    @tf.function
    def probe(inputs, training):
        bn(inputs, training=training)
        ln(inputs)
        mode = tf.constant(bn.last_training_mode)
        if bn.last_batch_mean is None:
            return mode, tf.zeros(3), tf.zeros(3), ln.last_mean
        return mode, bn.last_batch_mean, bn.last_batch_variance, ln.last_mean

    mode, mean, variance, ln_mean = probe(x, True)
    assert bool(mode)
    np.testing.assert_allclose(mean, x.mean(axis=(0, 1)), **TOL)
    np.testing.assert_allclose(variance, x.var(axis=(0, 1)), **TOL)
    np.testing.assert_allclose(ln_mean, x.mean(axis=2), **TOL)
    assert not bool(probe(x, False)[0])


def test_bn_mask_matches_keras():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 6, 3)).astype("float32")
    mask = rng.random(size=(4, 6)) > 0.3
    reference, candidate = keras.layers.BatchNormalization(), BatchNormalization()
    outputs = candidate(x, training=True, mask=mask)
    np.testing.assert_allclose(outputs, reference(x, training=True, mask=mask), **TOL)
    np.testing.assert_allclose(candidate.last_batch_mean, x[mask].mean(0), **TOL)
    np.testing.assert_allclose(candidate.last_batch_variance, x[mask].var(0), **TOL)
    np.testing.assert_allclose(candidate.moving_mean, reference.moving_mean, **TOL)
    with pytest.raises(ValueError, match="one dimension less"):
        candidate(x, training=True, mask=np.ones((4,), bool))


def test_mixed_precision_keeps_statistics_in_float32():
    # 300 squared overflows float16, so float16 statistics would be inf.
    x = 300.0 + 40.0 * np.random.default_rng(4).normal(size=(8, 5, 3))
    x = x.astype("float32")
    for reference, candidate in [
        (
            keras.layers.BatchNormalization(dtype="mixed_float16"),
            BatchNormalization(dtype="mixed_float16"),
        ),
        (
            keras.layers.LayerNormalization(dtype="mixed_float16"),
            LayerNormalization(dtype="mixed_float16"),
        ),
    ]:
        outputs = candidate(x, training=True)
        assert outputs.dtype == "float16"
        assert all(w.dtype == "float32" for w in candidate.weights)
        assert np.isfinite(np.asarray(outputs)).all()
        expected = np.asarray(reference(x, training=True), "float32")
        np.testing.assert_allclose(np.asarray(outputs, "float32"), expected, atol=2e-3)
        for theirs, mine in zip(reference.weights, candidate.weights):
            np.testing.assert_allclose(mine, theirs, **TOL)
    assert candidate.last_mean.dtype == "float32"
    bn = BatchNormalization(dtype="mixed_float16")
    bn(x, training=True)
    assert bn.last_batch_variance.dtype == "float32"
    # The statistics of the float16-cast inputs, taken in float64.
    autocast_inputs = x.astype("float16").astype("float64")
    np.testing.assert_allclose(
        bn.last_batch_variance, autocast_inputs.var((0, 1)), rtol=1e-5
    )
    assert np.isfinite(np.asarray(bn.moving_variance)).all()


# Serialization and arguments ------------------------------------------------


def test_config_round_trip():
    bn = BatchNormalization(
        axis=1,
        momentum=0.9,
        epsilon=1e-5,
        center=False,
        gamma_initializer="random_normal",
        gamma_regularizer="l2",
        name="bn",
    )
    ln = LayerNormalization(axis=[1, 2], epsilon=1e-5, scale=False, name="ln")
    for layer in (bn, ln):
        config = layer.get_config()
        clone = type(layer).from_config(config)
        assert clone.get_config() == config
        restored = keras.saving.deserialize_keras_object(
            keras.saving.serialize_keras_object(layer)
        )
        assert type(restored) is type(layer)
    assert bn.get_config()["momentum"] == 0.9
    assert keras.saving.get_registered_name(BatchNormalization) == (
        "bnscope>BatchNormalization"
    )


def test_keras_file_round_trip(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((4, 3)),
            BatchNormalization(axis=1, momentum=0.5),
            LayerNormalization(axis=[1, 2]),
        ]
    )
    x = np.random.default_rng(5).normal(size=(6, 4, 3)).astype("float32") + 2.0
    model(x, training=True)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert [type(layer) for layer in loaded.layers] == [
        BatchNormalization,
        LayerNormalization,
    ]
    np.testing.assert_array_equal(
        loaded.layers[0].moving_mean, model.layers[0].moving_mean
    )
    np.testing.assert_allclose(loaded(x), model(x), **TOL)


def test_invalid_arguments_are_reported():
    with pytest.raises(ValueError, match="axis=3"):
        BatchNormalization(axis=3).build((2, 4, 5))
    with pytest.raises(ValueError, match="epsilon=-1"):
        BatchNormalization(epsilon=-1)
    with pytest.raises(ValueError, match="axis=\\[1, 4\\]"):
        LayerNormalization(axis=[1, 4]).build((2, 4, 5))
    with pytest.raises(TypeError, match="axis='features'"):
        LayerNormalization(axis="features")
