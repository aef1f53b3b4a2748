"""Deep sigmoid networks with and without BatchNormalization, at two learning rates.

The experiment of Ioffe & Szegedy (2015, section 4.1) on a small scale: a stack
of 8 sigmoid layers of 100 units learns digits only with BatchNormalization
before each sigmoid. Without it, gradients vanish on the way down
(`vanishing_gradient`) and, at the higher learning rate, the sigmoids pin to
0 or 1 (`saturation`); the plain network stays at chance. With BN (bnscope's
reference `BatchNormalization`), both learning rates learn and bnscope finds
nothing.

    python examples/deep_sigmoid.py [--quick] [--logdir logs/deep_sigmoid]
    bnscope compare logs/deep_sigmoid/plain_lr0.01 logs/deep_sigmoid/bn_lr0.01
"""

from __future__ import annotations

import _common
import keras

from bnscope import demo
from bnscope.layers import BatchNormalization

LEARNING_RATES = (0.001, 0.01)


def build_model(batch_norm: bool) -> keras.Model:
    # The demo's network (bnscope.demo), here with bnscope's reference BN at
    # momentum 0.9, so the moving statistics converge within a short run (an
    # EMA window of 10 steps).
    return demo.build_model(batch_norm, BatchNormalization, momentum=0.9)


def main(argv=None) -> dict[str, dict[str, float]]:
    args = _common.parse_args(__doc__.splitlines()[0], argv, "logs/deep_sigmoid")
    data = _common.digits()
    _common.header("Deep sigmoid networks, with and without BN", data.source)
    # Pixels scaled to [0, 1]: the inputs are not what is being tested here.
    x_train = data.x_train.reshape(len(data.x_train), -1) / 16.0
    x_test = data.x_test.reshape(len(data.x_test), -1) / 16.0
    epochs = 3 if args.quick else 10
    results = {}
    for learning_rate in LEARNING_RATES:
        for batch_norm in (False, True):
            variant = f"{'bn' if batch_norm else 'plain'}_lr{learning_rate}"
            keras.utils.set_random_seed(args.seed)
            model = build_model(batch_norm)
            history, test_accuracy = _common.fit_and_evaluate(
                model,
                keras.optimizers.Adam(learning_rate),
                x_train,
                data.y_train,
                x_test,
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
        _common.run_dir(args.logdir, "plain_lr0.01"),
        _common.run_dir(args.logdir, "bn_lr0.01"),
    )
    return results


if __name__ == "__main__":
    main()
