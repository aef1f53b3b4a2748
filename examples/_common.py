"""What the examples share: data, command-line flags and printing the report.

Data comes from what is already on this machine, never from the network:
scikit-learn's bundled digits (1,797 real 8x8 scans of handwritten digits,
values 0-16) by default, and MNIST from the Keras cache
(`~/.keras/datasets/mnist.npz`) only when it is already there and asked for.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DIGITS = "scikit-learn digits (1,797 real 8x8 scans, bundled with scikit-learn)"


@dataclass(frozen=True)
class Data:
    """A train/test split and where it came from."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str


def parse_args(
    description: str, argv: Sequence[str] | None, default_logdir: str
) -> argparse.Namespace:
    """The flags every example takes: `--quick` and `--logdir`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer steps (what the tests run); the findings still appear",
    )
    parser.add_argument(
        "--logdir",
        default=default_logdir,
        help=f"where to write the runs (default: {default_logdir})",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    return parser.parse_args(argv)


def digits(test_fraction: float = 0.2, seed: int = 0) -> Data:
    """scikit-learn's digits as raw pixel intensities 0-16, `(n, 8, 8)` float32."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.images.astype("float32")
    y = bunch.target.astype("int32")
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    n_test = round(test_fraction * len(x))
    return Data(x[n_test:], y[n_test:], x[:n_test], y[:n_test], DIGITS)


def mnist_cache() -> str:
    """Where `keras.datasets.mnist.load_data()` keeps its download."""
    return os.path.join(os.path.expanduser("~"), ".keras", "datasets", "mnist.npz")


def mnist_if_cached() -> Data | None:
    """MNIST `(n, 28, 28)` raw 0-255 from the Keras cache, or `None`; never downloads."""
    path = mnist_cache()
    if not os.path.exists(path):
        return None
    with np.load(path) as f:
        return Data(
            f["x_train"].astype("float32"),
            f["y_train"].astype("int32"),
            f["x_test"].astype("float32"),
            f["y_test"].astype("int32"),
            f"MNIST from the Keras cache ({path})",
        )


def upsample(images: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upsampling of `(n, h, w)` images by an integer factor."""
    return np.repeat(np.repeat(images, factor, axis=1), factor, axis=2)


def header(title: str, data_source: str) -> None:
    print(f"\n=== {title} ===\ndata: {data_source}\n", flush=True)


def print_results(results: dict[str, dict[str, float]]) -> None:
    """One line per variant: its accuracies (and anything else measured)."""
    for variant, values in results.items():
        cells = "  ".join(f"{key} {value:.3f}" for key, value in values.items())
        print(f"{variant:<16} {cells}", flush=True)


def scope(log_dir: str, every_n_steps: int = 10):
    """The `BNScope` callback the examples attach.

    Probes every `every_n_steps` steps (rather than by measured cost), so that
    short runs have enough probes for the trend rules.
    """
    import bnscope

    return bnscope.BNScope(log_dir=log_dir, every_n_steps=every_n_steps)


def _cli(*argv: str) -> int:
    """Runs the `bnscope` console script's entry point, as typed in a shell."""
    from bnscope.cli import main

    if not sys.stdout.isatty():
        # Piped (e.g. into a log): lay the report out for 100 columns, not 80.
        os.environ.setdefault("COLUMNS", "100")
    print(f"\n$ bnscope {' '.join(argv)}", flush=True)
    return main(list(argv))


def summarize(logdir: str) -> int:
    """Prints `bnscope summarize LOGDIR` (it never fails the example)."""
    return _cli("summarize", logdir, "--fail-on", "never")


def compare(run_a: str, run_b: str) -> int:
    """Prints `bnscope compare RUN_A RUN_B`."""
    return _cli("compare", run_a, run_b)


def fit_and_evaluate(
    model, optimizer, x_train, y_train, x_test, y_test, *, epochs, batch_size, log_dir
):
    """Compiles, fits with `BNScope` writing to `log_dir`, and evaluates.

    Returns:
        `(history, test_accuracy)`. `evaluate` runs in inference mode, so BN
        uses its moving statistics there.
    """
    model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(
        x_train,
        y_train,
        batch_size=batch_size,
        epochs=epochs,
        verbose=0,
        callbacks=[scope(log_dir)],
    )
    _, test_accuracy = model.evaluate(x_test, y_test, verbose=0)
    return history, test_accuracy


def run_dir(logdir: str, variant: str) -> str:
    """The directory the callback writes a variant's run to."""
    return os.path.join(logdir, variant, "bnscope")


def fresh_log_dir(logdir: str, variant: str) -> str:
    """`<logdir>/<variant>`, without the bnscope run a previous invocation left.

    A second run into the same directory would otherwise be read as a resumed
    run of the first.
    """
    log_dir = os.path.join(logdir, variant)
    shutil.rmtree(os.path.join(log_dir, "bnscope"), ignore_errors=True)
    return log_dir
