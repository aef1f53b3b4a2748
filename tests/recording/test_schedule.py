"""The probe schedule, driven step by step without training."""

from __future__ import annotations

import itertools

from bnscope.recording.schedule import (
    MIN_AUTO_INTERVAL,
    MIN_PROBES_PER_FIT,
    ProbeSchedule,
)


def drive(schedule: ProbeSchedule, steps: int, step_cpu: float, probe_cpu: float):
    probed = []
    for step in range(1, steps + 1):
        schedule.add_training_time(step_cpu)
        if schedule.due(step):
            probed.append(step)
            schedule.probed(step, probe_cpu, traced=len(probed) == 1)
    return probed


def test_fixed_interval_probes_each_multiple_and_the_first_step():
    schedule = ProbeSchedule(every_n_steps=10, overhead_budget=0.01)
    assert drive(schedule, 35, 1.0, 100.0) == [1, 10, 20, 30]


def test_budget_spaces_probes_by_their_cost():
    # A probe costs 5 steps of CPU; a 1% budget allows one per 500 steps.
    schedule = ProbeSchedule(every_n_steps=None, overhead_budget=0.01)
    probed = drive(schedule, 2000, 1.0, 5.0)
    assert probed[:2] == [1, 1 + MIN_AUTO_INTERVAL]  # baseline, then cost measured
    gaps = {b - a for a, b in itertools.pairwise(probed[2:])}
    assert gaps == {500}


def test_cheap_probes_are_capped_by_the_minimum_interval():
    schedule = ProbeSchedule(every_n_steps=None, overhead_budget=0.5)
    probed = drive(schedule, 100, 1.0, 0.001)
    assert all(b - a >= MIN_AUTO_INTERVAL for a, b in itertools.pairwise(probed))


def test_a_new_fit_starts_with_a_baseline_again():
    schedule = ProbeSchedule(every_n_steps=None, overhead_budget=0.01)
    drive(schedule, 50, 1.0, 5.0)
    schedule.start_fit()
    assert schedule.due(51)


def test_epoch_end_probes_fixed_schedules_only_when_not_just_probed():
    fixed = ProbeSchedule(every_n_steps=100, overhead_budget=0.01)
    fixed.probed(1, 1.0, traced=True)
    assert fixed.due_at_epoch_end(30)
    fixed.probed(30, 1.0, traced=False)
    assert not fixed.due_at_epoch_end(30)
    budget = ProbeSchedule(every_n_steps=None, overhead_budget=0.01)
    budget.probed(1, 1.0, traced=True)
    budget.probed(11, 50.0, traced=False)
    budget.add_training_time(100.0)  # 1 s of budget: not enough for a 50 s probe
    assert not budget.due_at_epoch_end(30)


def test_traced_probes_do_not_set_the_cost():
    schedule = ProbeSchedule(every_n_steps=None, overhead_budget=0.01)
    schedule.probed(1, 1000.0, traced=True)
    assert schedule.probe_cpu is None
    schedule.probed(11, 2.0, traced=False)
    schedule.probed(21, 4.0, traced=False)
    assert schedule.probe_cpu == 3.0


def test_a_fit_of_known_length_gets_evenly_spread_probes_even_when_costly():
    # A probe costing 100 steps: the 1% budget alone would allow one per
    # 10,000 steps, i.e. only the baseline and the cost measurement.
    schedule = ProbeSchedule(every_n_steps=None, overhead_budget=0.01)
    schedule.start_fit(first_step=1, total_steps=40)
    probed = drive(schedule, 40, 1.0, 100.0)
    assert len(probed) >= MIN_PROBES_PER_FIT
    assert probed[0] == 1 and probed[-1] == 40
    assert {b - a for a, b in itertools.pairwise(probed[1:])} == {4}


def test_the_spread_counts_from_the_fit_start_not_from_step_zero():
    schedule = ProbeSchedule(every_n_steps=None, overhead_budget=0.01)
    schedule.start_fit(first_step=1001, total_steps=100)
    probed = []
    for step in range(1001, 1101):
        if schedule.due(step):
            probed.append(step)
            schedule.probed(step, 1e6, traced=False)
    assert probed == [1001, *range(1010, 1101, 10)]


def test_every_epoch_without_a_probe_gets_one_at_its_end():
    schedule = ProbeSchedule(every_n_steps=None, overhead_budget=0.01)
    schedule.start_fit(first_step=1, total_steps=None)  # unknown length
    schedule.probed(1, 1.0, traced=True)
    schedule.probed(11, 1e6, traced=False)  # never affordable again
    schedule.start_epoch()
    assert not schedule.due(25)
    assert schedule.due_at_epoch_end(30)
    schedule.probed(30, 1e6, traced=False)
    schedule.start_epoch()
    schedule.probed(35, 1e6, traced=False)
    assert not schedule.due_at_epoch_end(60)  # this epoch was seen at 35


def test_fixed_schedules_ignore_the_spread():
    schedule = ProbeSchedule(every_n_steps=25, overhead_budget=0.01)
    schedule.start_fit(first_step=1, total_steps=40)
    assert drive(schedule, 40, 1.0, 1.0) == [1, 25]


def test_without_the_spread_a_costly_probe_runs_on_the_budget_only():
    # Full mode: training-step statistics give every step, so the probe is
    # not spread; a probe costing 100 steps gets the baseline and the cost
    # measurement in a 40-step fit, as the 1% budget allows.
    schedule = ProbeSchedule(every_n_steps=None, overhead_budget=0.01, spread=False)
    schedule.start_fit(first_step=1, total_steps=40)
    assert drive(schedule, 40, 1.0, 100.0) == [1, 1 + MIN_AUTO_INTERVAL]
