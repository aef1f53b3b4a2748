"""When to probe: a pure-Python schedule, unit-tested without training.

Two policies:

- **fixed** (`every_n_steps=N`): probe whenever the step crosses a multiple of
  N, and at every epoch end;
- **spread + budget** (`every_n_steps=None`, the default): probe
  - at the first step of each `fit` (a baseline);
  - at `MIN_PROBES_PER_FIT` evenly spaced points of the fit, when its length
    is known (`steps_per_epoch × epochs`), so every finding has a trend over
    the whole fit and not only its first minutes (not in full mode, whose
    training-step statistics give every step already: `spread=False`);
  - at the end of any epoch that had no probe yet, so each epoch is seen;
  - and, in between, whenever the training CPU time since the last probe
    times `overhead_budget` covers a probe's steady-state cost. No fixed
    interval can hold an overhead target across models whose probe-to-step
    cost ratio differs tenfold.

The floor (spread and epochs) costs at most `MIN_PROBES_PER_FIT + epochs`
probes per fit whatever the budget says: on a long fit that is noise, on a
short one it is the price of seeing a trend at all. A probe that read only
the first step of each fit (what a pure budget gives a 40-step fit of a
network whose probe costs 2–3 steps) describes the model at initialization.
"""

from __future__ import annotations

# Never probe more often than this when spacing by budget: a very fast probe
# should not flood the logs.
MIN_AUTO_INTERVAL = 10

# Evenly spaced probes a fit of known length gets at least: ten points are
# enough for a sparkline and a slope (the report's trend column), and few
# enough that on real networks they cost a few percent of a 100-step fit.
MIN_PROBES_PER_FIT = 10


class ProbeSchedule:
    """Decides at which training steps the probe runs.

    Args:
        every_n_steps: Probe every this many steps, or `None` to spread
            probes over the fit and space the rest by cost.
        overhead_budget: With `every_n_steps=None`, the fraction of training
            CPU time budget-spaced probes may use.
        min_interval: Fewest steps between two budget-spaced probes. Defaults
            to `MIN_AUTO_INTERVAL`.
        spread: With `every_n_steps=None`, whether a fit of known length gets
            `MIN_PROBES_PER_FIT` evenly spaced probes whatever the budget.

    Example:

    ```python
    schedule = ProbeSchedule(every_n_steps=None, overhead_budget=0.01)
    schedule.start_fit(first_step=1, total_steps=200)
    if schedule.due(step):
        cost = run_probe()
        schedule.probed(step, cost, traced=False)
    ```
    """

    def __init__(
        self,
        every_n_steps: int | None,
        overhead_budget: float,
        min_interval: int = MIN_AUTO_INTERVAL,
        spread: bool = True,
    ):
        self.every_n_steps = every_n_steps
        self.overhead_budget = overhead_budget
        self.min_interval = min_interval
        self.spread = spread
        self.start_fit()

    def start_fit(self, first_step: int = 1, total_steps: int | None = None) -> None:
        """Forgets the previous `fit`: its first step is probed again.

        Args:
            first_step: The global step number of the fit's first step.
            total_steps: Steps the fit will run (`steps_per_epoch × epochs`),
                or `None` when unknown (a dataset of unknown length): then
                only the epoch floor and the budget apply.
        """
        self.last_probe_step = -1
        self.training_cpu = 0.0  # since the last probe
        self.probe_cpu: float | None = None  # steady-state cost of one probe
        self._origin = first_step - 1
        self._spread = None
        if total_steps and self.spread:
            self._spread = max(1, total_steps // MIN_PROBES_PER_FIT)
        self._probed_this_epoch = False

    def start_epoch(self) -> None:
        self._probed_this_epoch = False

    def add_training_time(self, seconds: float) -> None:
        self.training_cpu += seconds

    def due(self, step: int) -> bool:
        """Whether to probe after training step `step`."""
        if step == self.last_probe_step:
            return False
        if self.last_probe_step < 0:
            return True  # first step of the fit: a baseline
        if self.every_n_steps is not None:
            return self._crossed(step, self.every_n_steps, origin=0)
        if self._spread is not None and self._crossed(step, self._spread):
            return True
        if step - self.last_probe_step < self.min_interval:
            return False
        if self.probe_cpu is None:
            return True  # measure the steady-state cost once
        return self.training_cpu * self.overhead_budget >= self.probe_cpu

    def due_at_epoch_end(self, step: int) -> bool:
        """Fixed schedules probe every epoch end; spread ones each unseen epoch."""
        if step == self.last_probe_step:
            return False
        if self.every_n_steps is not None or not self._probed_this_epoch:
            return True
        return self.due(step)

    def probed(self, step: int, cost: float, traced: bool) -> None:
        """Records a probe at `step` that took `cost` CPU seconds.

        Args:
            step: The step probed.
            cost: Its process CPU time.
            traced: Whether it compiled: a probe that traced is not
                representative, so the budget uses steady-state probes only.
        """
        if not traced:
            self.probe_cpu = running_mean(self.probe_cpu, cost)
        self.last_probe_step = step
        self.training_cpu = 0.0
        self._probed_this_epoch = True

    def _crossed(self, step: int, interval: int, origin: int | None = None) -> bool:
        """Whether a multiple of `interval` lies in (last probe, step]."""
        origin = self._origin if origin is None else origin
        last = max(self.last_probe_step - origin, 0)
        return (step - origin) // interval != last // interval


def running_mean(previous: float | None, value: float) -> float:
    """A mean that follows drift: half the weight on the newest value."""
    return value if previous is None else 0.5 * (previous + value)
