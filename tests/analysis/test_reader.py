"""Tests for `bnscope.analysis.reader`: decoding, merging, damage tolerance, discovery."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np

from bnscope import tags
from bnscope.analysis import reader
from bnscope.analysis.reader import read_run
from bnscope.events.writer import EventFileWriter, scalars_summary
from tests.support.synthetic_runs import mlp_bn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_values_roundtrip_as_float32(healthy):
    synthetic, run_dir, _ = healthy
    run = read_run(run_dir)
    assert set(run.scalars) == set(synthetic.values)
    for tag, values in synthetic.values.items():
        series = run.scalars[tag]
        np.testing.assert_array_equal(series.steps, synthetic.steps)
        np.testing.assert_array_equal(series.values, values.astype(np.float32))
    assert run.stats.scalars == len(synthetic.values) * len(synthetic.steps)
    assert run.notes == ()


def test_metadata_and_layers_in_depth_order(healthy):
    synthetic, run_dir, _ = healthy
    run = read_run(run_dir)
    assert run.metadata.batch_size == 128
    assert [layer.name for layer in run.layers] == [
        layer.name for layer in synthetic.layers
    ]
    bn = run.layer("batch_normalization")
    assert bn.is_batch_norm and bn.normalization.momentum == 0.99
    assert bn.inputs_from == ("dense",)
    assert run.model_name == "mlp_bn"
    assert run.steps == (0, 1000)


def test_latest_metadata_wins(tmp_path):
    writer = EventFileWriter(str(tmp_path))
    from bnscope.events.writer import metadata_summary
    from bnscope.schema import RunMetadata

    writer.add_summary(metadata_summary(RunMetadata(batch_size=8)), 0)
    writer.add_summary(scalars_summary({"loss/model": 1.0}), 0)
    writer.add_summary(metadata_summary(RunMetadata(batch_size=64)), 10)
    writer.close()
    assert read_run(str(tmp_path)).metadata.batch_size == 64


def test_layers_from_tags_without_metadata(tmp_path):
    synthetic = mlp_bn()
    synthetic.write(tmp_path, metadata=False)
    run = read_run(str(tmp_path))
    assert run.metadata is None
    assert [layer.name for layer in run.layers][:2] == ["dense", "batch_normalization"]


def _eventaccumulator_scalars(path: str) -> dict:
    """TensorBoard's own loader, in a subprocess with TensorFlow hidden.

    Hiding TensorFlow makes TensorBoard use its pure-Python stub (same record
    and proto parsing) and keeps this test fast; `benchmarks/reader.py` times
    the real TensorFlow-backed path.
    """
    script = textwrap.dedent(
        f"""
        import json, sys
        sys.modules["tensorflow"] = None
        from tensorboard.backend.event_processing.event_accumulator import (
            EventAccumulator,
        )
        acc = EventAccumulator({path!r}, size_guidance={{"scalars": 0, "tensors": 0}})
        acc.Reload()
        out = {{}}
        for tag in acc.Tags()["scalars"]:
            out[tag] = [[e.step, e.value] for e in acc.Scalars(tag)]
        print(json.dumps(out))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def test_agrees_with_tensorboard_eventaccumulator(healthy):
    _, run_dir, paths = healthy
    expected = _eventaccumulator_scalars(paths[0])
    run = read_run(run_dir)
    assert set(expected) == set(run.scalars)
    for tag, events in expected.items():
        series = run.scalars[tag]
        steps = [step for step, _ in events]
        values = np.array([value for _, value in events], dtype=np.float64)
        assert series.steps.tolist() == steps, tag
        np.testing.assert_array_equal(series.values, values, err_msg=tag)


def _flip_byte(path: str, fraction: float = 0.5) -> None:
    with open(path, "r+b") as file:
        data = bytearray(file.read())
        data[int(len(data) * fraction)] ^= 0xFF
        file.seek(0)
        file.write(data)


def test_flipped_byte_costs_one_record(healthy):
    synthetic, run_dir, paths = healthy
    _flip_byte(paths[0])
    run = read_run(run_dir)
    assert run.stats.corrupt_records == 1
    probes = len(run.probe_steps)
    assert probes == len(synthetic.steps) - 1
    assert any("corrupt record" in note for note in run.notes)


def test_truncated_tail_is_tolerated(healthy):
    synthetic, run_dir, paths = healthy
    size = os.path.getsize(paths[0])
    with open(paths[0], "r+b") as file:
        file.truncate(size - 10)
    run = read_run(run_dir)
    assert run.stats.truncated_files == (os.path.basename(paths[0]),)
    assert run.steps == (0, synthetic.steps[-2])
    assert any("still being written" in note for note in run.notes)


def test_empty_and_garbage_files_are_skipped_with_notes(healthy):
    _, run_dir, _ = healthy
    open(os.path.join(run_dir, "events.out.tfevents.1.empty"), "wb").close()
    with open(os.path.join(run_dir, "events.out.tfevents.2.garbage"), "wb") as file:
        file.write(os.urandom(4096))
    run = read_run(run_dir)
    assert run.stats.empty_files == ("events.out.tfevents.1.empty",)
    assert run.stats.garbage_files == ("events.out.tfevents.2.garbage",)
    assert len(run.probe_steps) == 21
    assert len(run.notes) == 2


def test_unreadable_file_is_a_note(healthy, monkeypatch):
    _, run_dir, paths = healthy
    denied = paths[0]
    real = reader._read_bytes

    def read_bytes(path):
        if path == denied:
            raise PermissionError(13, "Permission denied", path)
        return real(path)

    monkeypatch.setattr(reader, "_read_bytes", read_bytes)
    run = read_run(run_dir)
    assert run.stats.unreadable_files == (os.path.basename(denied),)
    assert "permission denied" in run.notes[0]


def _write_steps(run_dir, steps, value, stamp):
    writer = EventFileWriter(str(run_dir))
    for step in steps:
        writer.add_summary(scalars_summary({"loss/model": value}), step)
    writer.close()
    head, tail = writer.path.split("tfevents.", 1)
    os.replace(writer.path, f"{head}tfevents.{stamp:010d}{tail[10:]}")


def test_resumed_run_later_file_wins(tmp_path):
    _write_steps(tmp_path, range(0, 501, 50), 1.0, 1_700_000_000)
    # Resumed from a checkpoint at step 300: the old 300..500 are orphaned.
    _write_steps(tmp_path, range(300, 1001, 100), 2.0, 1_700_000_500)
    series = read_run(str(tmp_path)).series(tags.LOSS, "model")
    assert series.steps.tolist() == [0, 50, 100, 150, 200, 250, *range(300, 1001, 100)]
    assert series.values.tolist() == [1.0] * 6 + [2.0] * 8


def test_duplicate_steps_in_one_file_keep_the_last(tmp_path):
    writer = EventFileWriter(str(tmp_path))
    for step, value in [(0, 1.0), (10, 2.0), (10, 3.0), (20, 4.0)]:
        writer.add_summary(scalars_summary({"loss/model": value}), step)
    writer.close()
    series = read_run(str(tmp_path)).series(tags.LOSS, "model")
    assert series.steps.tolist() == [0, 10, 20]
    assert series.values.tolist() == [1.0, 3.0, 4.0]


def test_the_findings_text_record_is_ignored(healthy, tmp_path):
    from bnscope.events.writer import text_summary

    _, run_dir, _ = healthy
    before = read_run(run_dir)
    writer = EventFileWriter(run_dir)  # a second file, as the end of a fit writes
    writer.add_summary(
        text_summary(tags.FINDINGS_TAG, "**bnscope findings at step 1000**: 0 errors"),
        1000,
    )
    writer.close()
    after = read_run(run_dir)
    assert set(after.scalars) == set(before.scalars)
    for tag, series in before.scalars.items():
        np.testing.assert_array_equal(after.scalars[tag].steps, series.steps)
        np.testing.assert_array_equal(after.scalars[tag].values, series.values)
    assert after.metadata == before.metadata
    assert after.notes == () and after.stats.undecodable_events == 0


def test_tensor_scalars_are_read(tmp_path):
    from tensorboard.compat.proto import summary_pb2

    summary = summary_pb2.Summary()
    value = summary.value.add(tag="loss/model")
    value.tensor.dtype = 1
    value.tensor.float_val.append(0.25)
    writer = EventFileWriter(str(tmp_path))
    writer.add_summary(summary, 3)
    writer.close()
    series = read_run(str(tmp_path)).series(tags.LOSS, "model")
    assert series.steps.tolist() == [3] and series.values.tolist() == [0.25]


def test_reader_never_imports_tensorflow(healthy):
    _, run_dir, _ = healthy
    script = textwrap.dedent(
        f"""
        import sys
        from bnscope.cli.commands import main
        code = main(["summarize", {run_dir!r}, "--json"])
        assert code == 0, code
        assert "tensorflow" not in sys.modules
        assert "keras" not in sys.modules
        print("clean")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("clean")
