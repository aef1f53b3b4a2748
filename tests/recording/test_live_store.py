"""The live store holds what the reader would read back, bounded per series."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bnscope import tags
from bnscope.analysis.reader import read_run
from bnscope.analysis.rules import evaluate
from bnscope.analysis.summary import summarize
from bnscope.events.writer import EventFileWriter, metadata_summary, scalars_summary
from bnscope.recording.live_store import LiveSeriesStore
from tests.support.synthetic_runs import SICK_RUNS, mlp_bn

GRAD = tags.GRAD_NORM.tag("dense")
LOSS = tags.LOSS.tag()
ACT_NONFINITE = tags.ACT_NONFINITE.tag("dense")


def rows_of(synthetic):
    """`(step, values)` per probe of a synthetic run, as the observer writes them."""
    return [
        (step, synthetic.probe_values(index))
        for index, step in enumerate(synthetic.steps)
    ]


def write_and_store(synthetic, run_dir, store):
    writer = EventFileWriter(str(run_dir))
    metadata = synthetic.metadata()
    for index, (step, values) in enumerate(rows_of(synthetic)):
        if index == 0:
            writer.add_summary(metadata_summary(metadata), step)
        writer.add_summary(scalars_summary(values), step)
        store.add(step, values, metadata if index == 0 else None)
    writer.close()


def reference(rows, head, tail):
    """The slow, obvious bounded copy: first `head`, last `tail`, first bad value."""
    by_tag: dict[str, list[tuple[int, float]]] = {}
    for step, values in rows:
        for tag, value in values.items():
            entries = by_tag.setdefault(tag, [])
            entries[:] = [e for e in entries if e[0] != step]
            entries.append((step, float(np.float32(value))))  # as written
    kept = {}
    for tag, entries in by_tag.items():
        entries.sort()
        index = set(range(min(head, len(entries))))
        index |= set(range(max(len(entries) - tail, 0), len(entries)))
        counter = tag.split("/")[0].endswith("_nonfinite")
        for i, (_, value) in enumerate(entries):
            if not math.isfinite(value) or (counter and value > 0):
                index.add(i)
                break
        kept[tag] = [entries[i] for i in sorted(index)]
    return kept


def as_pairs(series):
    return list(zip(series.steps.tolist(), series.values.tolist()))


@pytest.mark.parametrize("name", ["healthy", *sorted(SICK_RUNS)])
def test_holds_what_the_reader_reads_and_the_rules_agree(name, tmp_path):
    synthetic = mlp_bn() if name == "healthy" else SICK_RUNS[name]()
    store = LiveSeriesStore()
    write_and_store(synthetic, tmp_path / "bnscope", store)
    on_disk = read_run(str(tmp_path / "bnscope"))
    live = store.run(on_disk.name, on_disk.path)
    assert set(live.scalars) == set(on_disk.scalars)
    for tag, series in on_disk.scalars.items():
        np.testing.assert_array_equal(live.scalars[tag].steps, series.steps)
        np.testing.assert_array_equal(live.scalars[tag].values, series.values)
    assert live.metadata == on_disk.metadata
    assert evaluate(live) == evaluate(on_disk)
    assert live.fits == on_disk.fits
    assert summarize(live).findings == summarize(on_disk).findings
    assert not store.dropped


def test_bounded_to_head_tail_and_first_nonfinite():
    rng = np.random.default_rng(0)
    rows = []
    for step in range(1, 201):
        grad = float(rng.normal())
        if step in (40, 41, 150):
            grad = math.nan
        rows.append(
            (
                step,
                {
                    GRAD: grad,
                    ACT_NONFINITE: 3.0 if step == 60 else 0.0,
                    LOSS: 1.0 / step,
                    "not_bnscope/tag": 1.0,  # ignored, as the reader ignores it
                },
            )
        )
    store = LiveSeriesStore(head=3, tail=10)
    for step, values in rows:
        store.add(step, values)
    expected = reference(
        [(s, {k: v for k, v in d.items() if k != "not_bnscope/tag"}) for s, d in rows],
        head=3,
        tail=10,
    )
    series = store.series()
    assert set(series) == set(expected)
    for tag, pairs in expected.items():
        got = as_pairs(series[tag])
        assert [s for s, _ in got] == [s for s, _ in pairs], tag
        np.testing.assert_array_equal(
            [v for _, v in got], [v for _, v in pairs], err_msg=tag
        )
    assert [s for s, _ in as_pairs(series[GRAD])][3] == 40  # the first NaN, pinned
    assert [s for s, _ in as_pairs(series[ACT_NONFINITE])][3] == 60
    assert store.dropped
    assert store.rows == 200


def test_reports_each_series_first_nonfinite_value_once():
    store = LiveSeriesStore()
    assert not store.add(1, {GRAD: 1.0, ACT_NONFINITE: 0.0})
    assert store.add(2, {GRAD: math.inf, ACT_NONFINITE: 0.0})
    assert not store.add(3, {GRAD: math.nan, ACT_NONFINITE: 0.0})  # already seen
    assert store.add(4, {GRAD: math.nan, ACT_NONFINITE: 2.0})  # a new series
    assert not store.add(5, {LOSS: 1.0})


def test_a_step_written_twice_keeps_the_later_write_across_blocks():
    store = LiveSeriesStore()
    store.add(1, {GRAD: 1.0, LOSS: 2.0})  # a probe
    store.add(2, {GRAD: 5.0})  # a training step (full mode)
    store.add(2, {GRAD: 6.0, LOSS: 3.0})  # the probe at the same step, later
    store.add(3, {GRAD: 7.0})
    series = store.series()
    assert as_pairs(series[GRAD]) == [(1, 1.0), (2, 6.0), (3, 7.0)]
    assert as_pairs(series[LOSS]) == [(1, 2.0), (2, 3.0)]


def test_a_step_going_back_drops_what_followed_it():
    store = LiveSeriesStore(head=2, tail=3)
    for step in range(1, 8):
        store.add(step, {GRAD: float(step)})
    store.add(5, {GRAD: 50.0})  # 3 and 4 had already fallen out of the ring
    assert as_pairs(store.series()[GRAD]) == [(1, 1.0), (2, 2.0), (5, 50.0)]


def test_memory_stays_flat():
    store = LiveSeriesStore(head=4, tail=16)
    values = {tags.ACT_STD.tag(f"layer_{i}"): 1.0 for i in range(50)}
    for step in range(10_000):
        store.add(step, values)
    (block,) = store._blocks.values()
    assert block.ring_values.shape == (16, 50)
    assert all(len(s) == 20 for s in store.series().values())


def test_rejects_empty_bounds():
    with pytest.raises(ValueError, match="Received: 0, 5"):
        LiveSeriesStore(head=0, tail=5)
