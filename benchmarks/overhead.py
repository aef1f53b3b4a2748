"""Training overhead of BNScope against plain `fit` and Keras' TensorBoard callback.

Runs interleaved, repeated `fit`s of each configuration on two models and
prints the median ratio to plain `fit`, in process CPU time (steady on shared
machines, about ±4%) and wall time (about ±20% here). Each fit is timed twice:
in total, and in steady state (epochs after the first, which hold every
one-time cost: tracing Keras' train step and bnscope's probe).

Usage:
    python benchmarks/overhead.py [--repeats 5] [--epochs 6] [--models ...] [--configs ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np

from bnscope import BNScope

L = keras.layers
BATCH = 128
STEPS_PER_EPOCH = 30  # the setting of the TensorBoard-callback reference figure


def lenet_bn() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            L.Conv2D(6, 5, padding="same", use_bias=False),
            L.BatchNormalization(),
            L.Activation("relu"),
            L.MaxPooling2D(),
            L.Conv2D(16, 5, use_bias=False),
            L.BatchNormalization(),
            L.Activation("relu"),
            L.MaxPooling2D(),
            L.Flatten(),
            L.Dense(120, use_bias=False),
            L.BatchNormalization(),
            L.Activation("relu"),
            L.Dense(84, use_bias=False),
            L.BatchNormalization(),
            L.Activation("relu"),
            L.Dense(10, activation="softmax"),
        ],
        name="lenet5_bn",
    )


def deep_mlp() -> keras.Model:
    layers = [keras.Input((28, 28, 1)), L.Flatten()]
    for _ in range(12):
        layers += [
            L.Dense(256, use_bias=False),
            L.BatchNormalization(),
            L.Activation("relu"),
        ]
    layers.append(L.Dense(10, activation="softmax"))
    return keras.Sequential(layers, name="deep_mlp_bn")


MODELS = {"lenet5_bn": lenet_bn, "deep_mlp_bn": deep_mlp}


class EpochClock(keras.callbacks.Callback):
    """Process CPU and wall time from the end of epoch 1 to the end of training."""

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            self.cpu, self.wall = time.process_time(), time.perf_counter()

    def on_train_end(self, logs=None):
        self.cpu = time.process_time() - self.cpu
        self.wall = time.perf_counter() - self.wall


def configurations(log_dir: str) -> dict:
    return {
        "plain": lambda: [],
        "bnscope": lambda: [BNScope(log_dir=log_dir)],
        "bnscope_full": lambda: [BNScope(log_dir=log_dir, every_n_steps=1)],
        "keras_tensorboard": lambda: [
            keras.callbacks.TensorBoard(log_dir=log_dir, histogram_freq=1)
        ],
    }


def run_once(build, callbacks, x, y, epochs) -> dict[str, float]:
    keras.utils.set_random_seed(0)
    model = build()
    model.compile("adam", "sparse_categorical_crossentropy")
    clock = EpochClock()
    cpu, wall = time.process_time(), time.perf_counter()
    model.fit(
        x, y, batch_size=BATCH, epochs=epochs, verbose=0, callbacks=[*callbacks, clock]
    )
    return {
        "cpu": time.process_time() - cpu,
        "wall": time.perf_counter() - wall,
        "steady_cpu": clock.cpu,
        "steady_wall": clock.wall,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument(
        "--configs", nargs="*", default=None, help="default: all; plain is always run"
    )
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    n = BATCH * STEPS_PER_EPOCH
    x = rng.random((n, 28, 28, 1), dtype="float32")
    y = rng.integers(0, 10, n)
    print(
        f"{args.repeats} interleaved repeats, {args.epochs} epochs x {STEPS_PER_EPOCH} "
        f"steps, batch {BATCH}; medians; ratio to plain fit"
    )
    for name in args.models:
        samples: dict[str, list[dict[str, float]]] = {}
        with tempfile.TemporaryDirectory() as log_dir:
            configs = configurations(log_dir)
            if args.configs:
                configs = {
                    k: v for k, v in configs.items() if k in {"plain", *args.configs}
                }
            for repeat in range(args.repeats):
                # Rotate the order so no configuration always runs first.
                order = (
                    list(configs)[repeat % len(configs) :]
                    + list(configs)[: repeat % len(configs)]
                )
                for config in order:
                    result = run_once(
                        MODELS[name], configs[config](), x, y, args.epochs
                    )
                    samples.setdefault(config, []).append(result)
        base = {
            k: statistics.median(r[k] for r in samples["plain"])
            for k in samples["plain"][0]
        }
        print(
            f"\n{name}: plain fit {base['cpu']:.2f} s CPU ({base['wall']:.2f} s wall)"
        )
        print(
            f"  {'config':<18} {'CPU total':>10} {'CPU steady':>11} {'wall total':>11} {'wall steady':>12}"
        )
        for config, results in samples.items():
            ratios = {
                key: statistics.median(r[key] for r in results) / base[key]
                for key in base
            }
            print(
                f"  {config:<18} {ratios['cpu']:>9.3f}x {ratios['steady_cpu']:>10.3f}x "
                f"{ratios['wall']:>10.3f}x {ratios['steady_wall']:>11.3f}x"
            )


if __name__ == "__main__":
    main()
