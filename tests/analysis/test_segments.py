"""Per-fit segments: each fit's findings survive the next fit."""

from __future__ import annotations

import dataclasses

from bnscope.analysis.reader import read_run
from bnscope.analysis.rules import evaluate
from bnscope.analysis.segments import evaluate_segments, split, sub_run
from tests.support.synthetic_runs import fine_tuning, mlp_bn


def test_a_fit_that_changes_the_setup_starts_a_segment(tmp_path):
    fine_tuning(split=10).write(tmp_path)
    run = read_run(str(tmp_path))
    assert [fit.step for fit in run.fits] == [0, 500]
    first, second = split(run)
    assert (first.first_step, first.last_step) == (0, 499)
    assert (second.first_step, second.last_step) == (500, 1000)
    assert first.label == "fit 1 (steps 0–499)"
    assert first.metadata.layer("batch_normalization").trainable is False
    assert second.metadata.layer("batch_normalization").trainable is True
    assert run.metadata == second.metadata  # the latest, as before


def test_sub_run_holds_only_its_steps_and_metadata(tmp_path):
    fine_tuning(split=10).write(tmp_path)
    run = read_run(str(tmp_path))
    first = sub_run(run, split(run)[0])
    assert first.steps == (0, 450)
    assert first.metadata.optimizer.learning_rate == 0.001
    assert len(first.series("loss", "model")) == 10


def test_each_finding_is_labelled_with_its_fit(tmp_path):
    fine_tuning(split=10).write(tmp_path)
    run = read_run(str(tmp_path))
    # The latest metadata alone says the BN layers learn: the frozen phase's
    # drift disappears from the whole-run view.
    assert "bn_stat_drift" not in {f.rule for f in evaluate(run)}
    found, segments = evaluate_segments(run, evaluate)
    assert len(segments) == 2
    labelled = {(f.rule, f.layer): f.segments for f in found}
    assert labelled[("bn_stat_drift", "batch_normalization")] == (1,)
    assert labelled[("bn_mode_override", "batch_normalization_1")] == (2,)


def test_fits_with_the_same_setup_are_one_segment(tmp_path):
    synthetic = mlp_bn()
    synthetic.refits[10] = lambda metadata: dataclasses.replace(metadata, epochs=5)
    synthetic.write(tmp_path)
    run = read_run(str(tmp_path))
    assert len(run.fits) == 2
    (segment,) = split(run)
    assert segment.fits == 2 and segment.label == "fits 1–2 (steps 0–1000)"
    found, _ = evaluate_segments(run, evaluate)
    assert found == evaluate(run) == ()


def test_a_finding_of_every_segment_is_reported_once(tmp_path):
    synthetic = fine_tuning(split=10)
    synthetic.set("act_dead_frac", "activation", 0.9)  # dead in both fits
    synthetic.write(tmp_path)
    found, _ = evaluate_segments(read_run(str(tmp_path)), evaluate)
    (dead,) = [f for f in found if f.rule == "dead_relu"]
    assert dead.segments == (1, 2)


def test_a_run_without_metadata_has_no_segments(tmp_path):
    mlp_bn().write(tmp_path, metadata=False)
    run = read_run(str(tmp_path))
    assert split(run) == ()
    assert evaluate_segments(run, evaluate) == (evaluate(run), ())
