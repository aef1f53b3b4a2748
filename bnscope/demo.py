"""`bnscope demo`: train a sick and a healthy model with `BNScope` attached.

Two 8-layer sigmoid MLPs learn scikit-learn's digits (1,797 real 8x8 scans of
handwritten digits, bundled with scikit-learn, so nothing is downloaded) with
Adam at a learning rate of 0.01:

- `sick`: plain `Dense(sigmoid)` layers. Gradients vanish on the way down and
  the sigmoids saturate; the model stays at chance.
- `healthy`: the same layers with `BatchNormalization` before each sigmoid.

This module trains and returns where the runs went; `bnscope demo`
(`bnscope.cli.demo_view`) prints the story and the reports. The model builder
is also what `examples/deep_sigmoid.py` uses.

Needs TensorFlow and scikit-learn: `pip install "bnscope[cpu,demo]"`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

DEFAULT_OUT = "bnscope-demo"
DEPTH = 8
UNITS = 100
LEARNING_RATE = 0.01
BATCH_SIZE = 32
EPOCHS = 10
QUICK_EPOCHS = 3
PROBE_EVERY_N_STEPS = 10
VARIANTS = (("sick", False), ("healthy", True))
DEPENDENCIES = ("sklearn", "keras")


@dataclass(frozen=True)
class TrainedVariant:
    """One trained demo model: where its run is and how well it learned."""

    name: str
    log_dir: str
    run_dir: str
    train_accuracy: float
    test_accuracy: float
    seconds: float


def missing_dependency() -> str | None:
    """The first module the demo needs that is not installed, else `None`."""
    import importlib.util

    for name in DEPENDENCIES:
        try:
            if importlib.util.find_spec(name) is None:
                return name
        except ValueError:  # a module set to None in sys.modules
            return name
    return None


def build_model(
    batch_norm: bool, normalization: Callable[..., Any] | None = None, **bn_kwargs
):
    """The deep sigmoid MLP; with `batch_norm`, BN sits before each sigmoid.

    Layers get the same names with and without BN (`hidden_1` ... `hidden_8`,
    `output`), so TensorBoard overlays the same layer of both runs.

    Args:
        batch_norm: Put a normalization layer between each Dense and its
            sigmoid.
        normalization: The normalization layer class. Defaults to
            `keras.layers.BatchNormalization`.
        **bn_kwargs: Passed to each normalization layer, e.g. `momentum=0.9`.
    """
    import keras

    normalization = normalization or keras.layers.BatchNormalization
    layers: list = [keras.Input((64,), name="pixels")]
    for index in range(1, DEPTH + 1):
        if batch_norm:
            layers += [
                # No bias: BN's beta is the bias.
                keras.layers.Dense(UNITS, use_bias=False, name=f"hidden_{index}"),
                normalization(name=f"bn_{index}", **bn_kwargs),
                keras.layers.Activation("sigmoid", name=f"sigmoid_{index}"),
            ]
        else:
            layers.append(
                keras.layers.Dense(UNITS, activation="sigmoid", name=f"hidden_{index}")
            )
    layers.append(keras.layers.Dense(10, activation="softmax", name="output"))
    return keras.Sequential(
        layers, name="deep_sigmoid_bn" if batch_norm else "deep_sigmoid"
    )


def load_digits(seed: int = 0):
    """Digits as `(x_train, y_train, x_test, y_test)`, pixels scaled to [0, 1]."""
    import numpy as np
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    x = (bunch.data / 16.0).astype("float32")
    y = bunch.target.astype("int32")
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    n_test = len(x) // 5
    return x[n_test:], y[n_test:], x[:n_test], y[:n_test]


def train(
    name: str, batch_norm: bool, data, out: str, epochs: int, seed: int
) -> TrainedVariant:
    """Trains one variant with `BNScope` attached."""
    import time

    import keras

    from bnscope.recording.callback import BNScope

    start = time.perf_counter()
    x_train, y_train, x_test, y_test = data
    log_dir = os.path.join(out, name)
    run_dir = os.path.join(log_dir, "bnscope")
    # A second demo into the same directory would read as a resumed run.
    shutil.rmtree(run_dir, ignore_errors=True)
    keras.utils.set_random_seed(seed)
    model = build_model(batch_norm)
    model.compile(
        keras.optimizers.Adam(LEARNING_RATE),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    history = model.fit(
        x_train,
        y_train,
        batch_size=BATCH_SIZE,
        epochs=epochs,
        verbose=0,
        callbacks=[BNScope(log_dir=log_dir, every_n_steps=PROBE_EVERY_N_STEPS)],
    )
    _, test_accuracy = model.evaluate(x_test, y_test, verbose=0)
    return TrainedVariant(
        name=name,
        log_dir=log_dir,
        run_dir=run_dir,
        train_accuracy=float(history.history["accuracy"][-1]),
        test_accuracy=float(test_accuracy),
        seconds=time.perf_counter() - start,
    )


def run(
    out: str = DEFAULT_OUT,
    *,
    quick: bool = False,
    seed: int = 0,
    on_start: Callable[[str], None] | None = None,
    on_done: Callable[[TrainedVariant], None] | None = None,
) -> list[TrainedVariant]:
    """Trains both variants into `out` and returns them, sick first.

    Args:
        out: Log directory to write. Defaults to `"bnscope-demo"`.
        quick: Train 3 epochs instead of 10 (for tests). Defaults to `False`.
        seed: Random seed. Defaults to `0`.
        on_start: Called with a variant's name before it trains.
        on_done: Called with each trained variant.

    Example:

    ```python
    import bnscope.demo
    sick, healthy = bnscope.demo.run("bnscope-demo", quick=True)
    ```
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    epochs = QUICK_EPOCHS if quick else EPOCHS
    data = load_digits(seed)
    trained = []
    for name, batch_norm in VARIANTS:
        if on_start is not None:
            on_start(name)
        variant = train(name, batch_norm, data, out, epochs, seed)
        if on_done is not None:
            on_done(variant)
        trained.append(variant)
    return trained
