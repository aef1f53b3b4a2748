"""The compiled probe against a slow eager/numpy reference on a tiny model."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from bnscope import tags
from bnscope.recording.hooks import LayerHooks
from bnscope.recording.probe import Probe

L = keras.layers


def tiny_model():
    """A Dense-ReLU-BN-softmax model, its batch and integer targets."""
    keras.utils.set_random_seed(3)
    inputs = keras.Input((5,), name="x")
    h = L.Dense(4, activation="relu", name="dense")(inputs)
    h = L.BatchNormalization(name="bn", epsilon=1e-3)(h)
    outputs = L.Dense(3, activation="softmax", name="out")(h)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    bn = model.get_layer("bn")
    # Moving statistics that disagree with the data, so drift is non-trivial.
    bn.moving_mean.assign(np.array([0.5, -0.2, 1.0, 0.0], "float32"))
    bn.moving_variance.assign(np.array([2.0, 0.5, 1.0, 3.0], "float32"))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 5)).astype("float32")
    y = rng.integers(0, 3, 12)
    return model, x, y


@pytest.fixture
def tiny():
    return tiny_model()


def reference(model, x, y):
    """Everything the probe reports, computed eagerly and in numpy."""
    dense, bn, out = (model.get_layer(n) for n in ("dense", "bn", "out"))
    kernel, bias = (v.numpy() for v in dense.weights)
    h = np.maximum(x @ kernel + bias, 0.0)
    gamma, beta = bn.gamma.numpy(), bn.beta.numpy()
    mean, var = h.mean(0), h.var(0)
    moving_mean, moving_var = bn.moving_mean.numpy(), bn.moving_variance.numpy()
    bn_train = gamma * (h - mean) / np.sqrt(var + bn.epsilon) + beta
    bn_infer = gamma * (h - moving_mean) / np.sqrt(moving_var + bn.epsilon) + beta

    def softmax(z):
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    w_out, b_out = (v.numpy() for v in out.weights)
    y_train = softmax(bn_train @ w_out + b_out)
    y_infer = softmax(bn_infer @ w_out + b_out)

    with keras.StatelessScope(
        state_mapping=[(v, v.value) for v in model.non_trainable_variables]
    ):
        with tf.GradientTape() as tape:
            loss = model.compute_loss(x=x, y=y, y_pred=model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
    grad_by_path = {v.path: g.numpy() for v, g in zip(model.trainable_variables, grads)}

    def norm(*arrays):
        return float(np.sqrt(sum(np.sum(np.square(a)) for a in arrays)))

    shift = np.abs(mean - moving_mean) / np.sqrt(moving_var + bn.epsilon)
    log_ratio = np.abs(np.log((var + bn.epsilon) / (moving_var + bn.epsilon)))
    return {
        "input_mean/x": x.mean(),
        "input_std/x": x.std(),
        "act_mean/dense": h.mean(),
        "act_std/dense": h.std(),
        "act_max/dense": h.max(),
        "act_zero_frac/dense": (h == 0).mean(),
        "act_dead_frac/dense": (h == 0).all(0).mean(),
        "act_mean/bn": bn_train.mean(),
        "act_std/out": y_train.std(),
        "act_saturated_frac/out": (y_train.max(1) >= 0.99).mean(),
        "loss/model": float(loss),
        "grad_norm/dense": norm(
            grad_by_path["dense/kernel"], grad_by_path["dense/bias"]
        ),
        "grad_var_norm/dense:kernel": norm(grad_by_path["dense/kernel"]),
        "grad_norm/bn": norm(grad_by_path["bn/gamma"], grad_by_path["bn/beta"]),
        "grad_norm/out": norm(grad_by_path["out/kernel"], grad_by_path["out/bias"]),
        "grad_global_norm/model": norm(*grad_by_path.values()),
        "weight_norm/dense": norm(kernel, bias),
        "bn_mean_shift/bn": shift.mean(),
        "bn_mean_shift_max/bn": shift.max(),
        "bn_log_var_ratio/bn": log_ratio.mean(),
        "bn_log_var_ratio_max/bn": log_ratio.max(),
        "bn_gap/bn": norm(bn_train - bn_infer) / norm(bn_infer),
        "gap_rel_l2/out": norm(y_train - y_infer) / norm(y_infer),
        "gap_argmax_agreement/out": (y_train.argmax(1) == y_infer.argmax(1)).mean(),
        "output_mean/out": y_train.mean(),
        "output_min/out": y_train.min(),
        "output_max/out": y_train.max(),
        "output_spread/out": y_train.std(0).max(),
        "target_min/out": y.min(),
        "target_max/out": y.max(),
        "target_mean/out": y.mean(),
        "target_std/out": y.std(),
        "target_distinct/out": len(np.unique(y)),
        "target_integral/out": 1.0,
    }


def test_probe_matches_slow_reference(tiny):
    model, x, y = tiny
    probe = Probe(model, LayerHooks(model))
    result = probe(tf.constant(x), tf.constant(y))
    expected = reference(model, x, y)
    for tag, value in expected.items():
        assert result.scalars[tag] == pytest.approx(value, rel=1e-4, abs=1e-6), tag
    assert (
        result.scalars["update_ratio/dense"] == 0.0
    )  # nothing trained since the snapshot


def test_probe_leaves_model_state_untouched(tiny):
    model, x, y = tiny
    before = [v.numpy().copy() for v in model.variables]
    Probe(model, LayerHooks(model))(tf.constant(x), tf.constant(y))
    for a, v in zip(before, model.variables):
        np.testing.assert_array_equal(a, v.numpy())


def test_update_ratio_and_moving_change_between_probes(tiny):
    model, x, y = tiny
    probe = Probe(model, LayerHooks(model))
    probe(tf.constant(x), tf.constant(y))
    kernel = model.get_layer("dense").kernel
    delta = np.full(kernel.shape, 0.01, "float32")
    kernel.assign(kernel.numpy() + delta)
    bn = model.get_layer("bn")
    bn.moving_mean.assign(bn.moving_mean.numpy() + 1.0)
    result = probe(tf.constant(x), tf.constant(y))
    bias = model.get_layer("dense").bias.numpy()
    expected = np.linalg.norm(delta) / np.sqrt(
        np.sum(kernel.numpy() ** 2) + np.sum(bias**2)
    )
    assert result.scalars["update_ratio/dense"] == pytest.approx(expected, rel=1e-4)
    previous = np.concatenate(
        [bn.moving_mean.numpy() - 1.0, bn.moving_variance.numpy()]
    )
    assert result.scalars[tags.BN_MOVING_CHANGE.tag("bn")] == pytest.approx(
        2.0 / np.linalg.norm(previous), rel=1e-4
    )


def test_trace_records_what_produces_each_output_and_its_targets(tiny):
    model, x, y = tiny
    probe = Probe(model, LayerHooks(model))
    probe(tf.constant(x), tf.constant(y))
    (spec,) = probe.info.output_specs
    assert spec == {
        "layer": "out",
        "shape": (12, 3),
        "target_dtype": "int64",
        "target_shape": (12,),
    }


def test_without_targets_only_predictions_are_summarized(tiny):
    model, x, _ = tiny
    probe = Probe(model, LayerHooks(model))
    result = probe(tf.constant(x))
    assert "output_spread/out" in result.scalars
    assert not [tag for tag in result.scalars if tag.startswith("target_")]
    assert "target_dtype" not in probe.info.output_specs[0]
