"""BatchNormalization at a batch size of 4, against LayerNormalization.

Wu & He (Group Normalization, 2018) show BN's error rising fast as batches
shrink: the statistics of 4 samples are a poor estimate of the population's,
so the network learns on one normalization and is evaluated on another. The
same MLP on digits, batch size 4, once with bnscope's reference
`BatchNormalization` and once with its reference `LayerNormalization`
(per-sample statistics, identical in training and inference). bnscope finds
`small_batch_bn`, `bn_stat_drift` and `bn_train_inference_gap` in the BN run
and nothing in the LN run.

    python examples/tiny_batches.py [--quick] [--logdir logs/tiny_batches]
"""

from __future__ import annotations

import _common
import keras

from bnscope.layers import BatchNormalization, LayerNormalization

BATCH_SIZE = 4


def build_model(normalization: type[keras.layers.Layer]) -> keras.Model:
    layers: list = [keras.Input((64,))]
    for units in (64, 64):
        layers += [
            keras.layers.Dense(units, use_bias=False),
            normalization(),
            keras.layers.Activation("relu"),
        ]
    layers.append(keras.layers.Dense(10, activation="softmax"))
    return keras.Sequential(layers)


def main(argv=None) -> dict[str, dict[str, float]]:
    args = _common.parse_args(__doc__.splitlines()[0], argv, "logs/tiny_batches")
    data = _common.digits()
    _common.header(
        f"BatchNormalization vs LayerNormalization at batch size {BATCH_SIZE}",
        data.source,
    )
    x_train = data.x_train.reshape(len(data.x_train), -1) / 16.0
    x_test = data.x_test.reshape(len(data.x_test), -1) / 16.0
    # One epoch is 360 steps: 3.6 windows of BN's default momentum (0.99), so
    # the moving statistics have converged and the gap is not a warm-up effect.
    epochs = 1 if args.quick else 3
    results = {}
    for variant, normalization in (
        (f"bn_batch{BATCH_SIZE}", BatchNormalization),
        (f"ln_batch{BATCH_SIZE}", LayerNormalization),
    ):
        keras.utils.set_random_seed(args.seed)
        model = build_model(normalization)
        history, test_accuracy = _common.fit_and_evaluate(
            model,
            keras.optimizers.Adam(0.001),
            x_train,
            data.y_train,
            x_test,
            data.y_test,
            epochs=epochs,
            batch_size=BATCH_SIZE,
            log_dir=_common.fresh_log_dir(args.logdir, variant),
        )
        results[variant] = {
            "train accuracy": history.history["accuracy"][-1],
            "test accuracy": test_accuracy,
        }
    _common.print_results(results)
    _common.summarize(args.logdir)
    return results


if __name__ == "__main__":
    main()
