"""Trains a small model under a `tf.distribute` strategy, with or without bnscope.

Run as a script by tests/test_distribution.py, in a fresh process: logical
devices and TF_CONFIG must be set before TensorFlow initializes.

    python tests/distributed_fit.py mirrored LOG_DIR OUT.npz [--bnscope] [--exact]
    TF_CONFIG=... python tests/distributed_fit.py multiworker LOG_DIR OUT.npz ...

`mirrored` trains with `fit` and the `BNScope` callback on two logical CPUs.
`multiworker` trains with a custom loop and `bnscope.Observer`: Keras 3.15
`fit` itself fails under MultiWorkerMirroredStrategy (keras-team/keras#20585),
so that is how multi-worker users train. Writes the final weights, the bnscope
warnings raised and the replica count to OUT.npz.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(
    0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
)

GLOBAL_BATCH = 16
STEPS_PER_EPOCH = 3
EPOCHS = 2


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("strategy", choices=("mirrored", "multiworker"))
    parser.add_argument("log_dir")
    parser.add_argument("out")
    parser.add_argument("--bnscope", action="store_true")
    parser.add_argument("--exact", action="store_true")
    parser.add_argument(
        "--frozen-weights",
        action="store_true",
        help="functional model, SGD(0), one step: gradients checkable by hand",
    )
    args = parser.parse_args()

    import tensorflow as tf

    if args.strategy == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    else:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    tf.config.experimental.enable_op_determinism()

    import keras
    import numpy as np

    from tests.support import models

    keras.utils.set_random_seed(7)
    steps, epochs = (1, 1) if args.frozen_weights else (STEPS_PER_EPOCH, EPOCHS)
    x, y = models.data(n=GLOBAL_BATCH * steps)
    options = tf.data.Options()
    # Each worker reads every batch and keeps its share of each one.
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA
    )
    dataset = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .batch(GLOBAL_BATCH)
        .with_options(options)
    )
    with strategy.scope():
        if args.frozen_weights:
            model = models.functional()
            optimizer = keras.optimizers.SGD(0.0)
        else:
            model = models.sequential()
            optimizer = keras.optimizers.Adam()
        model.compile(optimizer, "sparse_categorical_crossentropy")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if args.strategy == "multiworker":
            custom_loop(model, dataset, strategy, epochs, args.log_dir, args.bnscope)
        else:
            callbacks = []
            if args.bnscope:
                from bnscope import BNScope

                callbacks.append(
                    BNScope(
                        log_dir=args.log_dir,
                        every_n_steps=2,
                        exact_gradients=args.exact,
                    )
                )
            model.fit(dataset, epochs=epochs, callbacks=callbacks, verbose=0)
    messages = [str(w.message) for w in caught if "bnscope" in str(w.message)]
    extra = {}
    if args.frozen_weights:
        extra["replica_grad_norms"] = _replica_gradient_norms(model, x, y, strategy)
    np.savez(
        args.out,
        *[w.numpy() for w in model.weights],
        warnings=np.array(json.dumps(messages)),
        replicas=np.array(strategy.num_replicas_in_sync),
        **extra,
    )


def custom_loop(model, dataset, strategy, epochs, log_dir, observe) -> None:
    """A `tf.distribute` custom training loop observed with `bnscope.Observer`."""
    import keras
    import tensorflow as tf

    import bnscope

    losses = keras.losses.SparseCategoricalCrossentropy(reduction=None)

    def replica_step(x, y):
        with tf.GradientTape() as tape:
            per_sample = losses(y, model(x, training=True))
            loss = tf.nn.compute_average_loss(
                per_sample, global_batch_size=GLOBAL_BATCH
            )
        grads = tape.gradient(loss, model.trainable_variables)
        model.optimizer.apply(grads, model.trainable_variables)
        return loss

    @tf.function
    def train_step(batch):
        per_replica = strategy.run(replica_step, args=batch)
        return strategy.reduce("SUM", per_replica, axis=None)

    def mean_loss(x, y, y_pred, sample_weight):
        return keras.ops.mean(losses(y, y_pred))

    observer = bnscope.Observer(model, log_dir, loss_fn=mean_loss) if observe else None
    with strategy.scope():
        model.optimizer.build(model.trainable_variables)
    step = 0
    for _ in range(epochs):
        for batch in strategy.experimental_distribute_dataset(dataset):
            if observer is not None and step == 0:
                with observer.watch_training_step():
                    train_step(batch)
            else:
                train_step(batch)
            step += 1
            if observer is not None and (step == 1 or step % 2 == 0):
                observer.observe(step, *batch)  # per-replica values are merged
    if observer is not None:
        observer.close()


def _replica_gradient_norms(model, x, y, strategy):
    """Global gradient norm of each replica's own share of the batch, by hand."""
    import numpy as np
    import tensorflow as tf

    norms = []
    for part_x, part_y in zip(
        np.split(x, strategy.num_replicas_in_sync),
        np.split(y, strategy.num_replicas_in_sync),
    ):
        with tf.GradientTape() as tape:
            loss = model.compute_loss(
                x=part_x, y=part_y, y_pred=model(part_x, training=True)
            )
        grads = tape.gradient(loss, model.trainable_variables)
        norms.append(np.sqrt(sum(float(tf.reduce_sum(g * g)) for g in grads)))
    return np.array(norms)


if __name__ == "__main__":
    main()
