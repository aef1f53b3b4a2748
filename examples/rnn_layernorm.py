"""LayerNormalization between recurrent layers (SimpleRNN), for sequence classification.

Ba, Kiros & Hinton (Layer Normalization, 2016) introduced LN for recurrent
networks, where batch statistics are awkward. Here each 8x8 digit is read as a
sequence of 8 rows of 8 raw pixel intensities (0-16) by three stacked
SimpleRNN layers, with Adam at a learning rate of 0.01. Without normalization
bnscope reports the raw inputs (`unnormalized_input`) and the first layer's
tanh units pinned at -1 or 1 from the first probes on (`saturation`). With
bnscope's reference `LayerNormalization` before each SimpleRNN (on the input
sequence and between the recurrent layers) the `--quick` run is clean. LN
fixes the scale of what enters each layer, not the growth of the recurrent
weights: in the full 10-epoch run the deeper layers of both stacks saturate
later in training, and bnscope says so.

Data: scikit-learn's digits, rows as time steps.

    python examples/rnn_layernorm.py [--quick] [--logdir logs/rnn_layernorm]
"""

from __future__ import annotations

import _common
import keras

from bnscope.layers import LayerNormalization

DEPTH = 3
UNITS = 64
LEARNING_RATE = 0.01


def build_model(layer_norm: bool) -> keras.Model:
    layers: list = [keras.Input((8, 8))]
    for index in range(DEPTH):
        if layer_norm:
            layers.append(LayerNormalization())
        layers.append(keras.layers.SimpleRNN(UNITS, return_sequences=index < DEPTH - 1))
    layers.append(keras.layers.Dense(10, activation="softmax"))
    return keras.Sequential(layers)


def main(argv=None) -> dict[str, dict[str, float]]:
    args = _common.parse_args(__doc__.splitlines()[0], argv, "logs/rnn_layernorm")
    data = _common.digits()
    _common.header("Stacked SimpleRNN with and without LayerNormalization", data.source)
    epochs = 3 if args.quick else 10
    results = {}
    for variant, layer_norm in (("rnn", False), ("rnn_ln", True)):
        keras.utils.set_random_seed(args.seed)
        model = build_model(layer_norm)
        history, test_accuracy = _common.fit_and_evaluate(
            model,
            keras.optimizers.Adam(LEARNING_RATE),
            data.x_train,
            data.y_train,
            data.x_test,
            data.y_test,
            epochs=epochs,
            batch_size=32,
            log_dir=_common.fresh_log_dir(args.logdir, variant),
        )
        results[variant] = {
            "train accuracy": history.history["accuracy"][-1],
            "test accuracy": test_accuracy,
        }
    _common.print_results(results)
    _common.summarize(args.logdir)
    _common.compare(
        _common.run_dir(args.logdir, "rnn"), _common.run_dir(args.logdir, "rnn_ln")
    )
    return results


if __name__ == "__main__":
    main()
