"""The statistic functions, on values small enough to check by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from bnscope import tags
from bnscope.recording.stats import activations, gradients, normalization, targets


def values(stats: dict) -> dict[str, float]:
    return {key: float(np.asarray(value)) for key, value in stats.items()}


def test_activation_stats_by_hand():
    x = np.array([[0.0, 1.0], [0.0, 3.0]], "float32")
    stats = values(activations.activation_stats(x, "relu"))
    assert stats[tags.ACT_MEAN.name] == 1.0
    assert stats[tags.ACT_STD.name] == pytest.approx(math.sqrt((1 + 0 + 1 + 4) / 4))
    assert stats[tags.ACT_MIN.name] == 0.0
    assert stats[tags.ACT_MAX.name] == 3.0
    assert stats[tags.ACT_ZERO_FRAC.name] == 0.5
    assert stats[tags.ACT_DEAD_FRAC.name] == 0.5  # unit 0 is zero for every sample
    assert stats[tags.ACT_NONFINITE.name] == 0.0
    assert tags.ACT_SATURATED_FRAC.name not in stats  # ReLU is unbounded


def test_nonfinite_values_are_counted_and_kept_out_of_the_moments():
    x = np.array([[1.0, np.nan], [np.inf, 3.0]], "float32")
    stats = values(activations.activation_stats(x))
    assert stats[tags.ACT_NONFINITE.name] == 2.0
    assert stats[tags.ACT_MAX.name] == 3.0


@pytest.mark.parametrize(
    "activation, x, expected",
    [
        ("sigmoid", [[0.005, 0.5], [0.995, 0.2]], 0.5),
        ("tanh", [[-0.999, 0.0], [0.5, 0.991]], 0.5),
        ("hard_sigmoid", [[0.0, 1.0], [0.5, 0.5]], 0.5),
        ("softmax", [[0.995, 0.005], [0.6, 0.4]], 0.5),  # per sample
    ],
)
def test_saturation_bounds(activation, x, expected):
    stats = values(activations.activation_stats(np.array(x, "float32"), activation))
    assert stats[tags.ACT_SATURATED_FRAC.name] == expected


def test_histogram_bins_every_value():
    x = np.array([0.0, 0.1, 0.5, 0.9, 1.0, np.nan], "float32")
    edges, counts = activations.histogram(x, bins=2)
    np.testing.assert_allclose(np.asarray(edges), [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(np.asarray(counts), [2, 3])


def test_input_stats():
    stats = values(activations.input_stats(np.array([[1, 2], [3, 4]], "int32")))
    assert stats[tags.INPUT_MEAN.name] == 2.5
    assert stats[tags.INPUT_STD.name] == pytest.approx(math.sqrt(1.25))
    assert (stats[tags.INPUT_MIN.name], stats[tags.INPUT_MAX.name]) == (1.0, 4.0)


def _variable_stats(*layers):
    return gradients.variable_stats(
        [gradients.LayerVariables.of(*layer) for layer in layers]
    )


def test_gradient_norms_by_hand():
    grads = [np.array([1.0, 2.0], "float32"), np.array([[3.0]], "float32")]
    assert float(gradients.l2_norm(grads)) == pytest.approx(math.sqrt(1 + 4 + 9))
    other = [np.array([np.nan, 4.0, np.inf], "float32")]
    result = _variable_stats((grads, grads, grads), (other, other, other))
    first, second = (values(layer) for layer in result.layers)
    assert first[tags.GRAD_NORM.name] == pytest.approx(math.sqrt(14))
    assert first[tags.GRAD_NONFINITE.name] == 0.0
    assert second[tags.GRAD_NONFINITE.name] == 2.0
    assert second[tags.WEIGHT_NONFINITE.name] == 2.0
    assert [float(n) for n in result.variable_norms[0]] == pytest.approx(
        [math.sqrt(5), 3.0]
    )
    assert math.isnan(float(result.global_norm))  # the NaN gradient


def test_a_layer_without_all_its_gradients_keeps_only_its_weight_stats():
    kernel, bias = np.ones((2, 2), "float32"), np.ones(2, "float32")
    result = _variable_stats(([None, bias], [kernel, bias], [kernel, bias]))
    (stats,) = (values(layer) for layer in result.layers)
    assert tags.GRAD_NORM.name not in stats and result.variable_norms == [[]]
    assert stats[tags.WEIGHT_NORM.name] == pytest.approx(math.sqrt(6))
    assert float(result.global_norm) == pytest.approx(math.sqrt(2))


def test_nan_and_inf_are_counted_across_chunks(monkeypatch):
    """Counts are per variable when variables share or straddle chunks."""
    monkeypatch.setattr(gradients, "_CHUNK_VALUES", 5)
    sizes = [3, 4, 1, 7, 2]
    tensors = []
    for size, bad in zip(sizes, [1, 0, 1, 3, 2]):
        tensor = np.ones(size, "float32")
        tensor[:bad] = [np.nan, np.inf, -np.inf][:bad]
        tensors.append(tensor)
    counts = gradients._nonfinite_counts([tf.constant(t) for t in tensors])
    np.testing.assert_array_equal(np.asarray(counts), [1, 0, 1, 3, 2])


def test_update_ratio_by_hand():
    weights = [np.array([3.0, 4.0], "float32")]
    previous = [np.array([3.0, 3.0], "float32")]
    (stats,) = _variable_stats((weights, weights, previous)).layers
    stats = values(stats)
    assert stats[tags.WEIGHT_NORM.name] == 5.0
    assert stats[tags.UPDATE_RATIO.name] == pytest.approx(1.0 / 5.0)


def test_batch_statistics_use_biased_variance_over_non_channel_axes():
    x = np.arange(12, dtype="float32").reshape(2, 3, 2)  # channels last
    mean, variance = normalization.batch_statistics(x, [-1])
    np.testing.assert_allclose(np.asarray(mean), x.reshape(-1, 2).mean(0))
    np.testing.assert_allclose(np.asarray(variance), x.reshape(-1, 2).var(0))  # ddof=0


def test_bn_drift_by_hand():
    first = normalization.BatchNormState.of(
        np.array([1.0, 0.0]),  # batch mean
        np.array([4.0, 1.0]),  # batch variance
        np.array([0.0, 0.0]),  # moving mean
        np.array([1.0, 1.0]),  # moving variance
        epsilon=0.0,
        previous_mean=np.array([0.0, 0.0]),
        previous_variance=np.array([1.0, 1.0]),
    )
    # A second layer of three channels, its statistics as (1, 1, C) tensors.
    second = normalization.BatchNormState.of(
        *[np.full((1, 1, 3), v) for v in (2.0, 1.0, 0.0, 1.0)],
        epsilon=0.0,
        previous_mean=np.zeros(3),
        previous_variance=np.full(3, 0.5),
    )
    stats, other = (values(s) for s in normalization.bn_drift_stats([first, second]))
    assert stats[tags.BN_MEAN_SHIFT.name] == 0.5  # (1 + 0) / 2
    assert stats[tags.BN_MEAN_SHIFT_MAX.name] == 1.0
    assert stats[tags.BN_LOG_VAR_RATIO.name] == pytest.approx(math.log(4) / 2)
    assert stats[tags.BN_LOG_VAR_RATIO_MAX.name] == pytest.approx(math.log(4))
    assert stats[tags.BN_MOVING_CHANGE.name] == 0.0
    assert other[tags.BN_MEAN_SHIFT.name] == 2.0
    assert other[tags.BN_LOG_VAR_RATIO_MAX.name] == 0.0
    # ‖(0, 0, 0, 1, 1, 1) − (0, 0, 0, .5, .5, .5)‖ / ‖(0, 0, 0, .5, .5, .5)‖
    assert other[tags.BN_MOVING_CHANGE.name] == pytest.approx(1.0)


def test_bn_state_of_mismatched_channels_is_refused():
    with pytest.raises(ValueError, match="sizes"):
        normalization.BatchNormState.of(
            np.zeros(3),
            np.ones(3),
            np.zeros(4),
            np.ones(4),
            epsilon=1e-3,
            previous_mean=np.zeros(4),
            previous_variance=np.ones(4),
        )


def test_output_gap():
    gap = values(
        normalization.output_gap_stats(
            np.array([[0.9, 0.1], [0.4, 0.6]]), np.array([[0.8, 0.2], [0.6, 0.4]]), True
        )
    )
    assert gap[tags.GAP_ARGMAX_AGREEMENT.name] == 0.5
    expected = math.sqrt(0.01 + 0.01 + 0.04 + 0.04) / math.sqrt(
        0.64 + 0.04 + 0.36 + 0.16
    )
    assert gap[tags.GAP_REL_L2.name] == pytest.approx(expected, rel=1e-6)


def test_norm_layer_stats():
    stats = values(
        normalization.norm_layer_stats(
            np.array([[1.0, 3.0]]),
            gamma=np.array([1.0, 3.0]),
            beta=np.array([0.0, 0.0]),
        )
    )
    assert stats[tags.NORM_IN_MEAN.name] == 2.0
    assert stats[tags.NORM_IN_STD.name] == 1.0
    assert (stats[tags.GAMMA_MEAN.name], stats[tags.GAMMA_STD.name]) == (2.0, 1.0)
    assert stats[tags.BETA_STD.name] == 0.0


def test_grouped_statistics_equal_one_by_one():
    rng = np.random.default_rng(0)
    outputs = [
        rng.normal(size=(4, 3, 5)).astype("float32"),
        np.maximum(rng.normal(size=(4, 3, 5)), 0).astype("float32"),
        1 / (1 + np.exp(-4 * rng.normal(size=(4, 3, 5)))).astype("float32"),
        rng.normal(size=(4, 7)).astype("float32"),
        np.tanh(3 * rng.normal(size=(4, 3, 5))).astype("float32"),
    ]
    names = ["linear", "relu", "sigmoid", None, "tanh"]
    grouped = activations.grouped_activation_stats(outputs, names)
    for output, name, stats in zip(outputs, names, grouped):
        alone = values(activations.activation_stats(output, name))
        assert values(stats) == pytest.approx(alone, rel=1e-6, abs=1e-7)
    grouped = activations.grouped_histograms(outputs)
    for output, (edges, counts) in zip(
        outputs, activations.ungrouped(outputs, grouped)
    ):
        alone_edges, alone_counts = activations.histogram(output)
        np.testing.assert_allclose(
            np.asarray(edges), np.asarray(alone_edges), rtol=1e-6
        )
        np.testing.assert_array_equal(np.asarray(counts), np.asarray(alone_counts))


def test_target_stats_of_class_ids_by_hand():
    stats = values(targets.target_stats(np.array([0, 3, 3, 9], "int64")))
    assert (stats[tags.TARGET_MIN.name], stats[tags.TARGET_MAX.name]) == (0.0, 9.0)
    assert stats[tags.TARGET_MEAN.name] == 3.75
    assert stats[tags.TARGET_STD.name] == pytest.approx(
        math.sqrt((3.75**2 + 2 * 0.75**2 + 5.25**2) / 4)
    )
    assert stats[tags.TARGET_DISTINCT.name] == 3.0
    assert stats[tags.TARGET_INTEGRAL.name] == 1.0
    assert tags.TARGET_ONEHOT_FRAC.name not in stats  # no class axis


def test_target_stats_of_rows_count_one_hot_rows():
    rows = np.array([[0, 1, 0], [1, 0, 0], [0.5, 0.5, 0], [1, 1, 0]], "float32")
    stats = values(targets.target_stats(rows))
    assert stats[tags.TARGET_ONEHOT_FRAC.name] == 0.5  # the soft and the 2-hot row
    assert stats[tags.TARGET_DISTINCT.name] == 3.0  # 0, 0.5, 1
    assert stats[tags.TARGET_INTEGRAL.name] == 0.0


def test_distinct_target_values_are_capped():
    stats = values(targets.target_stats(np.arange(500, dtype="float32")))
    assert stats[tags.TARGET_DISTINCT.name] == targets.DISTINCT_CAP


def test_output_spread_is_the_largest_per_unit_spread_across_samples():
    predictions = np.array([[1.0, 0.2], [1.0, 0.6]], "float32")
    stats = values(targets.output_stats(predictions))
    assert stats[tags.OUTPUT_SPREAD.name] == pytest.approx(0.2)  # unit 1: std 0.2
    assert stats[tags.OUTPUT_MEAN.name] == pytest.approx(0.7)
    assert (stats[tags.OUTPUT_MIN.name], stats[tags.OUTPUT_MAX.name]) == (
        pytest.approx(0.2),
        1.0,
    )
    constant = values(targets.output_stats(np.ones((5, 1), "float32")))
    assert constant[tags.OUTPUT_SPREAD.name] == 0.0


@pytest.mark.parametrize(
    ("row", "finite"),
    [
        ([np.inf, np.inf, -np.inf, np.nan], 0),  # a layer that overflowed
        ([np.nan] * 4, 0),
        ([-3e38, 3e38, 0.0, 1.0], 4),  # the span overflows float32
        ([3e38, 3e38, 3e38, np.inf], 3),  # constant at the top of the range
        ([1e30, 5e29, 0.0, -1e30], 4),
        ([0.0, 1e-45, 1e-45, 0.0], 4),  # a span of subnormals: scale capped
    ],
)
def test_histograms_of_extreme_values_never_fail(row, finite):
    """Issue 14: inputs scaled x100 made `bincount` fail ("Input arr must be
    non-negative!") and the probe step was lost (seen failing on every row
    here: a NaN bin index)."""
    healthy = np.linspace(-1, 1, 4)
    stacked = np.array([row, healthy], "float32")
    edges, counts = activations.stacked_histograms(stacked, bins=5)
    edges, counts = np.asarray(edges), np.asarray(counts)
    assert counts[0].sum() == finite and counts[1].sum() == 4
    assert np.isfinite(edges).all() and (np.diff(edges, axis=1) >= 0).all()
    np.testing.assert_allclose(edges[1], np.linspace(-1, 1, 6), rtol=1e-6)
    if finite == 0:
        np.testing.assert_allclose(edges[0], np.linspace(0, 1, 6))


def test_histograms_bin_as_float64_arithmetic_does_up_to_values_on_an_edge():
    """The per-value float32 arithmetic (halved values, one scale per row)
    against the same bins computed in float64 in numpy."""
    rng = np.random.default_rng(1)
    rows = np.stack(
        [
            rng.normal(size=5000),
            rng.exponential(size=5000) * 1e6,
            1e-3 * rng.random(5000) + 1e4,  # a narrow range far from zero
        ]
    ).astype("float32")
    edges, counts = activations.stacked_histograms(rows, bins=30)
    for row, row_edges, row_counts in zip(rows, np.asarray(edges), np.asarray(counts)):
        values = row.astype("float64")
        low, high = values.min(), values.max()
        width = (high - low) / 30
        index = np.clip(np.floor((values - low) / width), 0, 29).astype(int)
        expected = np.bincount(index, minlength=30)
        np.testing.assert_allclose(row_edges, low + width * np.arange(31), rtol=1e-6)
        assert row_counts.sum() == len(row)
        # Only values within float32 rounding of an edge may move, by one bin.
        moved = np.abs(row_counts - expected)
        assert moved.sum() <= 2 * 31 and moved.max() <= 3, moved
