"""Batch vs layer normalization of one small batch, by hand and with the layers.

The worked example of the articles that introduce the two methods: four
samples of three features. Batch normalization standardizes each feature
(column) with the statistics of the batch; layer normalization standardizes
each sample (row) with its own statistics. The numbers are computed by hand
with numpy, then by bnscope's reference layers and by Keras' own, and the
script asserts they agree. It also shows BN's train/inference gap in
miniature (a fresh layer's moving statistics are 0 and 1), and that the
drift statistics bnscope writes for this batch are the hand-computed ones.

    python examples/worked_numbers.py [--logdir logs/worked_numbers]
"""

from __future__ import annotations

import _common
import keras
import numpy as np

import bnscope
from bnscope import layers as reference

EPSILON = 1e-3  # Keras' default for both layers
MOMENTUM = 0.99  # Keras' default for BatchNormalization
BATCH = np.array(
    [
        [1.0, 50.0, 0.2],
        [2.0, 60.0, 0.4],
        [3.0, 70.0, 0.9],
        [6.0, 20.0, 0.5],
    ],
    dtype="float32",
)


def show(title: str, array: np.ndarray) -> None:
    print(title)
    for row in np.atleast_2d(array):
        print("   " + "  ".join(f"{value:9.4f}" for value in row))


def agree(name: str, expected: np.ndarray, *computed: tuple[str, np.ndarray]) -> None:
    for source, values in computed:
        np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-5)
        print(f"   {source} agrees with the hand computation for {name}")


def batch_norm_by_hand(x: np.ndarray):
    mean = x.mean(axis=0)  # per feature, over the batch
    variance = x.var(axis=0)  # biased, as BN uses it
    return (x - mean) / np.sqrt(variance + EPSILON), mean, variance


def layer_norm_by_hand(x: np.ndarray):
    mean = x.mean(axis=1, keepdims=True)  # per sample, over the features
    variance = x.var(axis=1, keepdims=True)
    return (x - mean) / np.sqrt(variance + EPSILON), mean, variance


def observe(model: keras.Model, log_dir: str) -> None:
    """Records one bnscope probe of `model` on the batch (custom-loop API)."""
    model.compile(loss="mse")
    observer = bnscope.Observer(model, log_dir=log_dir, histogram_every_n_probes=0)
    observer.observe(0, BATCH, np.zeros_like(BATCH))
    observer.close()


def main(argv=None) -> dict[str, float]:
    args = _common.parse_args(__doc__.splitlines()[0], argv, "logs/worked_numbers")
    _common.header("Batch vs layer normalization, by hand", "four hand-written samples")
    show("batch x (4 samples, 3 features):", BATCH)

    print("\nBatch normalization, training mode: each feature (column) on its own")
    expected, mean, variance = batch_norm_by_hand(BATCH)
    show("   batch mean per feature:", mean)
    show("   batch variance per feature (biased):", variance)
    show("   (x - mean) / sqrt(variance + 0.001):", expected)
    ours = reference.BatchNormalization()
    theirs = keras.layers.BatchNormalization()
    agree(
        "BN in training mode",
        expected,
        ("bnscope.layers.BatchNormalization", np.asarray(ours(BATCH, training=True))),
        ("keras.layers.BatchNormalization  ", np.asarray(theirs(BATCH, training=True))),
    )
    moving_mean = MOMENTUM * 0.0 + (1 - MOMENTUM) * mean
    moving_variance = MOMENTUM * 1.0 + (1 - MOMENTUM) * variance
    show("   moving mean after that step: 0.99 * 0 + 0.01 * mean =", moving_mean)
    show("   moving variance: 0.99 * 1 + 0.01 * variance =", moving_variance)
    agree(
        "the moving statistics",
        np.concatenate([moving_mean, moving_variance]),
        (
            "bnscope.layers.BatchNormalization",
            np.concatenate([ours.moving_mean.numpy(), ours.moving_variance.numpy()]),
        ),
        (
            "keras.layers.BatchNormalization  ",
            np.concatenate(
                [theirs.moving_mean.numpy(), theirs.moving_variance.numpy()]
            ),
        ),
    )
    inference = (BATCH - moving_mean) / np.sqrt(moving_variance + EPSILON)
    show(
        "\n   inference mode normalizes with the moving statistics instead:", inference
    )
    agree(
        "BN in inference mode",
        inference,
        ("bnscope.layers.BatchNormalization", np.asarray(ours(BATCH, training=False))),
        (
            "keras.layers.BatchNormalization  ",
            np.asarray(theirs(BATCH, training=False)),
        ),
    )
    gap = np.linalg.norm(expected - inference) / np.linalg.norm(inference)
    print(
        f"   training and inference outputs differ by {gap:.0%} (relative L2): the "
        "moving statistics have seen one batch"
    )

    print("\nLayer normalization: each sample (row) on its own, same in both modes")
    expected_ln, mean_ln, variance_ln = layer_norm_by_hand(BATCH)
    show("   mean per sample:", mean_ln.T)
    show("   variance per sample (biased):", variance_ln.T)
    show("   (x - mean) / sqrt(variance + 0.001):", expected_ln)
    agree(
        "LN",
        expected_ln,
        (
            "bnscope.layers.LayerNormalization",
            np.asarray(reference.LayerNormalization()(BATCH)),
        ),
        (
            "keras.layers.LayerNormalization  ",
            np.asarray(keras.layers.LayerNormalization()(BATCH)),
        ),
    )

    # What bnscope records about a fresh BN layer on this batch: its moving
    # statistics are still (0, 1), so the drift is the batch's own statistics.
    bn_dir = _common.fresh_log_dir(args.logdir, "batch_norm")
    keras.utils.set_random_seed(args.seed)
    observe(
        keras.Sequential([keras.Input((3,)), reference.BatchNormalization()]), bn_dir
    )
    observe(
        keras.Sequential([keras.Input((3,)), reference.LayerNormalization()]),
        _common.fresh_log_dir(args.logdir, "layer_norm"),
    )
    run = bnscope.load_run(_common.run_dir(args.logdir, "batch_norm"))
    layer = run.layers[0].name
    recorded_shift = run.series("bn_mean_shift", layer).last
    recorded_log_ratio = run.series("bn_log_var_ratio", layer).last
    by_hand_shift = float(np.mean(np.abs(mean) / np.sqrt(1.0 + EPSILON)))
    by_hand_log_ratio = float(
        np.mean(np.abs(np.log((variance + EPSILON) / (1.0 + EPSILON))))
    )
    print(
        f"\nbnscope recorded bn_mean_shift {recorded_shift:.4f} "
        f"(by hand {by_hand_shift:.4f}) and bn_log_var_ratio "
        f"{recorded_log_ratio:.4f} (by hand {by_hand_log_ratio:.4f})"
    )
    np.testing.assert_allclose(recorded_shift, by_hand_shift, rtol=1e-5)
    np.testing.assert_allclose(recorded_log_ratio, by_hand_log_ratio, rtol=1e-5)
    _common.summarize(args.logdir)
    return {
        "bn_gap": float(gap),
        "bn_mean_shift": recorded_shift,
        "bn_log_var_ratio": recorded_log_ratio,
    }


if __name__ == "__main__":
    main()
