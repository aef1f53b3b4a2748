"""LeNet-5 with and without normalization: faster, healthier training with BN.

The classic comparison (Ioffe & Szegedy, 2015, figure 1, on MNIST): the same
LeNet-5 trained on raw pixels, and with a Keras `Normalization` layer adapted
on the inputs plus bnscope's reference `BatchNormalization` after each
convolution and dense layer, before the ReLU. With SGD at a learning rate of
0.05 the normalized model reaches high accuracy within the first epoch;
bnscope flags the raw inputs of the plain model (`unnormalized_input`), and
`bnscope compare` shows its larger, noisier gradients next to the normalized
model's smoothly decaying ones.

Data: scikit-learn's digits (8x8) upsampled 4x to 32x32, LeNet-5's input
size; `--data mnist` uses MNIST (28x28 padded to 32x32) if it is already in
the Keras cache.

    python examples/lenet.py [--quick] [--logdir logs/lenet] [--data mnist]
"""

from __future__ import annotations

import argparse
import sys

import _common
import keras
import numpy as np

from bnscope.layers import BatchNormalization

LEARNING_RATE = 0.05


def build_model(x_train: np.ndarray, normalized: bool) -> keras.Model:
    """LeNet-5 (LeCun et al., 1998), with max pooling and ReLU."""

    def block(layer: keras.layers.Layer) -> list:
        if not normalized:
            return [layer]
        # Momentum 0.9: the moving statistics converge within a short run.
        return [
            layer,
            BatchNormalization(momentum=0.9),
            keras.layers.Activation("relu"),
        ]

    activation = None if normalized else "relu"
    use_bias = not normalized  # BN's beta is the bias
    layers: list = [keras.Input(x_train.shape[1:])]
    if normalized:
        normalization = keras.layers.Normalization(axis=None)
        normalization.adapt(x_train)
        layers.append(normalization)
    layers += [
        *block(keras.layers.Conv2D(6, 5, activation=activation, use_bias=use_bias)),
        keras.layers.MaxPooling2D(),
        *block(keras.layers.Conv2D(16, 5, activation=activation, use_bias=use_bias)),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        *block(keras.layers.Dense(120, activation=activation, use_bias=use_bias)),
        *block(keras.layers.Dense(84, activation=activation, use_bias=use_bias)),
        keras.layers.Dense(10, activation="softmax"),
    ]
    return keras.Sequential(layers)


def load(which: str, quick: bool) -> _common.Data:
    if which == "mnist":
        data = _common.mnist_if_cached()
        if data is None:
            sys.exit(f"MNIST is not in the Keras cache ({_common.mnist_cache()})")
        n_train = 6000 if quick else len(data.x_train)

        def pad(x: np.ndarray) -> np.ndarray:
            return np.pad(x, ((0, 0), (2, 2), (2, 2)))[..., None]

        return _common.Data(
            pad(data.x_train[:n_train]),
            data.y_train[:n_train],
            pad(data.x_test),
            data.y_test,
            data.source + ", padded to 32x32",
        )
    data = _common.digits()
    return _common.Data(
        _common.upsample(data.x_train, 4)[..., None],
        data.y_train,
        _common.upsample(data.x_test, 4)[..., None],
        data.y_test,
        data.source + ", upsampled 4x to 32x32",
    )


def main(argv=None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--data", choices=("digits", "mnist"), default="digits")
    known, rest = parser.parse_known_args(argv)
    args = _common.parse_args(__doc__.splitlines()[0], rest, "logs/lenet")
    data = load(known.data, args.quick)
    _common.header("LeNet-5 with and without normalization", data.source)
    epochs = 3 if args.quick else 10
    results = {}
    for variant, normalized in (("plain", False), ("bn", True)):
        keras.utils.set_random_seed(args.seed)
        model = build_model(data.x_train, normalized)
        history, test_accuracy = _common.fit_and_evaluate(
            model,
            keras.optimizers.SGD(LEARNING_RATE),
            data.x_train,
            data.y_train,
            data.x_test,
            data.y_test,
            epochs=epochs,
            batch_size=32,
            log_dir=_common.fresh_log_dir(args.logdir, variant),
        )
        results[variant] = {
            "train accuracy epoch 1": history.history["accuracy"][0],
            "final train accuracy": history.history["accuracy"][-1],
            "test accuracy": test_accuracy,
        }
    _common.print_results(results)
    _common.summarize(args.logdir)
    _common.compare(
        _common.run_dir(args.logdir, "plain"), _common.run_dir(args.logdir, "bn")
    )
    return results


if __name__ == "__main__":
    main()
