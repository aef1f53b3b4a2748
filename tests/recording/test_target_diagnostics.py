"""Targets, outputs and losses that do not fit: found on real models, quiet on sound ones.

Each case trains a small real Keras model with `fit` and `BNScope`, reads the
run back with bnscope's reader and applies the rules, end to end: the probe's
`target_*`/`output_*` statistics and the metadata's compiled loss and output
activation are what the rules see.
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
RULES = {
    "output_loss_mismatch",
    "target_loss_mismatch",
    "constant_output",
    "unscaled_target",
    "constant_target",
}


def data(n=256, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype("float32")
    score = x[:, 0] + x[:, 1]
    class_ids = np.digitize(score, np.linspace(-2.5, 2.5, 9)).astype("int64")  # 0-9
    labels = (score > 0).astype("float32")
    price = (1e5 * (3 + x[:, 0] + 0.5 * x[:, 1])).astype("float32")
    return x, class_ids, labels, price


X, CLASS_IDS, LABELS, PRICE = data()


def train(tmp_path, head, loss, y, epochs=2):
    """Fits Dense(16, relu) → `head` on `(X, y)`; returns its findings and run dir."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), L.Dense(16, activation="relu"), head])
    model.compile(keras.optimizers.Adam(0.01), loss)
    model.fit(
        X,
        y,
        batch_size=32,
        epochs=epochs,
        verbose=0,
        callbacks=[BNScope(log_dir=str(tmp_path), every_n_steps=4)],
    )
    run_dir = str(tmp_path / tags.RUN_DIRNAME)
    found = {f.rule: f for f in evaluate(read_run(run_dir)) if f.rule in RULES}
    return found, run_dir, model


@pytest.mark.filterwarnings("ignore:You are using a softmax over axis -1")
@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
def test_single_unit_softmax_trains_through_cached_logits(activation, tmp_path):
    found, run_dir, model = train(
        tmp_path, L.Dense(1, activation=activation), "binary_crossentropy", LABELS
    )
    if activation == "sigmoid":  # the right head for a yes/no target
        assert found == {}
        return
    # What the probe saw: every prediction exactly 1.0, the loss falling.
    scalars = eventdata.scalars(run_dir)
    assert {value for _, value in scalars["output_spread/output"]} == {0.0}
    assert {value for _, value in scalars["output_min/output"]} == {1.0}
    losses = [value for _, value in scalars["loss/model"]]
    assert losses[-1] < 0.9 * losses[0]
    np.testing.assert_array_equal(model.predict(X, verbose=0), 1.0)
    assert set(found) == {"output_loss_mismatch", "constant_output"}
    assert found["output_loss_mismatch"].severity == "error"
    assert "softmax over 1 unit" in found["output_loss_mismatch"].message
    constant = found["constant_output"]
    assert constant.value == 0.0 and constant.threshold == 1e-6
    assert "same prediction from output, 1 (spread 0)" in constant.message
    assert "although the loss fell" in constant.message
    assert "sigmoid" in constant.hint


@pytest.mark.parametrize("targets", ["class_ids", "labels"])
def test_class_ids_under_binary_crossentropy(targets, tmp_path):
    y = CLASS_IDS if targets == "class_ids" else LABELS
    found, run_dir, _ = train(
        tmp_path, L.Dense(1, activation="sigmoid"), "binary_crossentropy", y
    )
    (output,) = eventdata.metadata(run_dir)["outputs"]
    assert output["loss"] == "binary_crossentropy" and output["from_logits"] is False
    assert output["target_dtype"] == str(y.dtype)
    if targets == "labels":
        assert found == {}
        return
    finding = found["target_loss_mismatch"]
    assert finding.severity == "error" and finding.value > 1.0
    assert "expects labels in [0, 1]" in finding.message
    assert "sparse_categorical_crossentropy" in finding.hint


@pytest.mark.parametrize("from_logits", [False, True])
def test_linear_output_under_a_probability_loss(from_logits, tmp_path):
    loss = keras.losses.BinaryCrossentropy(from_logits=from_logits)
    found, _, _ = train(tmp_path, L.Dense(1), loss, LABELS)
    if from_logits:  # logits, as intended
        assert found == {}
    else:
        finding = found["output_loss_mismatch"]
        assert finding.severity == "error" and "linear output" in finding.message
        assert "from_logits=True" in finding.hint


@pytest.mark.parametrize(
    ("activation", "loss", "targets"),
    [
        ("sigmoid", "categorical_crossentropy", "one_hot"),
        ("softmax", "binary_crossentropy", "one_hot"),
        ("softmax", "categorical_crossentropy", "one_hot"),
    ],
)
def test_probability_head_of_the_wrong_kind(activation, loss, targets, tmp_path):
    y = np.eye(10, dtype="float32")[CLASS_IDS]
    found, _, _ = train(tmp_path, L.Dense(10, activation=activation), loss, y)
    if (activation, loss) == ("softmax", "categorical_crossentropy"):
        assert found == {}
    else:
        assert found["output_loss_mismatch"].severity == "warning"
        assert set(found) == {"output_loss_mismatch"}


@pytest.mark.parametrize("scaled", [False, True])
def test_regression_targets_in_the_hundred_thousands(scaled, tmp_path):
    y = (PRICE - PRICE.mean()) / PRICE.std() if scaled else PRICE
    found, _, _ = train(tmp_path, L.Dense(1), "mse", y)
    if scaled:
        assert found == {}
    else:
        finding = found["unscaled_target"]
        assert finding.value > 1e5 and finding.threshold == 100.0
        assert "standardize" in finding.hint


def test_sigmoid_output_cannot_reach_regression_targets(tmp_path):
    found, _, _ = train(tmp_path, L.Dense(1, activation="sigmoid"), "mse", PRICE)
    finding = found["target_loss_mismatch"]
    assert "sigmoid output can only reach [0, 1]" in finding.message
    assert "unscaled_target" not in found  # one finding for one cause


def test_real_valued_targets_under_sparse_crossentropy(tmp_path):
    y = CLASS_IDS + np.random.default_rng(1).uniform(0, 1, len(CLASS_IDS))
    found, _, _ = train(
        tmp_path,
        L.Dense(10, activation="softmax"),
        "sparse_categorical_crossentropy",
        y.astype("float32"),
    )
    assert "not whole numbers" in found["target_loss_mismatch"].message


def test_healthy_classifier_is_quiet(tmp_path):
    found, _, _ = train(
        tmp_path,
        L.Dense(10, activation="softmax"),
        "sparse_categorical_crossentropy",
        CLASS_IDS,
    )
    assert found == {}


@pytest.mark.parametrize("constant", [True, False])
def test_constant_regression_targets(constant, tmp_path):
    y = np.full(len(X), 3.5, "float32") if constant else PRICE / PRICE.max()
    found, _, _ = train(tmp_path, L.Dense(1), "mse", y)
    if constant:
        finding = found["constant_target"]
        assert finding.severity == "warning" and finding.value == 3.5
        assert "all 32 targets" in finding.message
    else:
        assert found == {}


def test_collapsed_network_gives_a_constant_output(tmp_path):
    keras.utils.set_random_seed(0)
    dead = keras.initializers.Constant(-100.0)  # every ReLU unit starts dead
    model = keras.Sequential(
        [
            keras.Input((8,)),
            L.Dense(16, activation="relu", bias_initializer=dead, name="dead"),
            L.Dense(10, activation="softmax", name="head"),
        ]
    )
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    model.fit(
        X,
        CLASS_IDS,
        batch_size=32,
        epochs=2,
        verbose=0,
        callbacks=[BNScope(log_dir=str(tmp_path), every_n_steps=4)],
    )
    findings = evaluate(read_run(str(tmp_path / tags.RUN_DIRNAME)))
    (constant,) = [f for f in findings if f.rule == "constant_output"]
    assert constant.layer == "head"
    assert constant.hint.startswith("dead outputs one value for every sample")
    assert "dead_relu" in {f.rule for f in findings}
