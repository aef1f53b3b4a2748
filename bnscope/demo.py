"""`bnscope demo`: train a sick and a healthy model and explain both.

Two 8-layer sigmoid MLPs learn scikit-learn's digits (1,797 real 8x8 scans of
handwritten digits, bundled with scikit-learn, so nothing is downloaded) with
Adam at a learning rate of 0.01:

- `sick`: plain `Dense(sigmoid)` layers. Gradients vanish on the way down and
  the sigmoids saturate; the model stays at chance.
- `healthy`: the same layers with `BatchNormalization` before each sigmoid.

Then it prints `bnscope summarize` of both runs, `bnscope compare` of the two,
and the `tensorboard` command that shows the dashboards. It returns 0 even
though the sick model has findings: it is a demo, not a CI gate.

Needs TensorFlow and scikit-learn: `pip install "bnscope[cpu,demo]"`.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from typing import IO

from rich.console import Console

from bnscope import cli
from bnscope.theme import make_console

DEFAULT_OUT = "bnscope-demo"
DEPTH = 8
UNITS = 100
LEARNING_RATE = 0.01
BATCH_SIZE = 32
EPOCHS = 10
QUICK_EPOCHS = 3
PROBE_EVERY_N_STEPS = 10
VARIANTS = (("sick", False), ("healthy", True))


def build_model(batch_norm: bool):
    """The demo MLP; with `batch_norm`, BN sits between each Dense and its sigmoid."""
    import keras

    layers: list = [keras.Input((64,))]
    for _ in range(DEPTH):
        if batch_norm:
            layers += [
                keras.layers.Dense(UNITS, use_bias=False),  # BN's beta is the bias
                keras.layers.BatchNormalization(),
                keras.layers.Activation("sigmoid"),
            ]
        else:
            layers.append(keras.layers.Dense(UNITS, activation="sigmoid"))
    layers.append(keras.layers.Dense(10, activation="softmax"))
    return keras.Sequential(layers)


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
    variant: str, batch_norm: bool, data, out: str, epochs: int, seed: int
) -> dict[str, float]:
    """Trains one variant with `BNScope` attached; returns its accuracies."""
    import keras

    import bnscope

    x_train, y_train, x_test, y_test = data
    log_dir = os.path.join(out, variant)
    # A second demo into the same directory would read as a resumed run.
    shutil.rmtree(os.path.join(log_dir, "bnscope"), ignore_errors=True)
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
        callbacks=[bnscope.BNScope(log_dir=log_dir, every_n_steps=PROBE_EVERY_N_STEPS)],
    )
    _, test_accuracy = model.evaluate(x_test, y_test, verbose=0)
    return {
        "train_accuracy": float(history.history["accuracy"][-1]),
        "test_accuracy": float(test_accuracy),
    }


def main(
    out: str | None = None,
    *,
    quick: bool = False,
    seed: int = 0,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
    width: int | None = None,
) -> int:
    """Runs the demo and returns the exit code.

    Args:
        out: Log directory to write. Defaults to `None` (`./bnscope-demo`).
        quick: Train 3 epochs instead of 10 (for tests). Defaults to `False`.
        seed: Random seed. Defaults to `0`.
        stdout: Where to print. Defaults to `None` (`sys.stdout`).
        stderr: Where errors go. Defaults to `None` (`sys.stderr`).
        width: Report width in columns. Defaults to `None` (the terminal's).

    Returns:
        0 when the demo ran (findings in the sick model are expected), 2 when
        a dependency is missing.

    Example:

    ```python
    import bnscope.demo
    bnscope.demo.main(out="bnscope-demo")
    ```
    """
    out = out if out is not None else DEFAULT_OUT
    console = make_console(stdout, width)
    try:
        import sklearn  # noqa: F401

        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import keras  # noqa: F401
    except ModuleNotFoundError as error:
        (stderr or sys.stderr).write(
            f"bnscope: error: the demo needs {error.name}: "
            "pip install 'bnscope[cpu,demo]'\n"
        )
        return cli.EXIT_BAD_INPUT
    epochs = QUICK_EPOCHS if quick else EPOCHS
    _intro(console, out, epochs)
    data = load_digits(seed)
    results = {}
    for variant, batch_norm in VARIANTS:
        start = time.perf_counter()
        console.print(f"training [bnscope.title]{variant}[/] ...", end=" ")
        results[variant] = train(variant, batch_norm, data, out, epochs, seed)
        console.print(
            f"{time.perf_counter() - start:.0f} s, test accuracy "
            f"{results[variant]['test_accuracy']:.0%}"
        )
    # Commands are printed unwrapped, so they can be copied as they are.
    console.print(f"\n$ bnscope summarize {out}", style="bnscope.title", soft_wrap=True)
    cli.summarize_command(out, fail_on="never", stdout=stdout, width=width)
    sick, healthy = (os.path.join(out, variant, "bnscope") for variant, _ in VARIANTS)
    console.print(
        f"\n$ bnscope compare {sick} {healthy}", style="bnscope.title", soft_wrap=True
    )
    cli.compare_command(sick, healthy, stdout=stdout, width=width)
    console.print()
    console.print(
        f"To see the dashboards: [bnscope.title]tensorboard --logdir {out}[/]",
        soft_wrap=True,
    )
    console.print(
        "What each finding means and how to fix it: docs/findings.md",
        style="bnscope.muted",
    )
    return cli.EXIT_OK


def _intro(console: Console, out: str, epochs: int) -> None:
    console.print(
        f"bnscope demo: two {DEPTH}-layer sigmoid MLPs learn scikit-learn's digits "
        "(1,797 real 8x8 scans of handwritten digits, bundled with scikit-learn), "
        f"{epochs} epochs of Adam at learning rate {LEARNING_RATE}, with BNScope "
        f"probing every {PROBE_EVERY_N_STEPS} steps.\n"
        "  [bnscope.title]sick[/]     plain Dense(sigmoid) layers\n"
        "  [bnscope.title]healthy[/]  the same with BatchNormalization before each "
        "sigmoid\n"
        f"Logs go to {out}/.\n"
    )
