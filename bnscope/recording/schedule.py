"""When to probe: a pure-Python schedule, unit-tested without training.

Two policies:

- **fixed** (`every_n_steps=N`): probe whenever the step crosses a multiple of
  N, and at every epoch end;
- **budget** (`every_n_steps=None`): probe at the first step of each `fit` (a
  baseline), once more after `min_interval` steps to measure the probe's
  steady-state cost, then whenever the training CPU time since the last probe
  times `overhead_budget` covers that cost. No fixed interval can hold an
  overhead target across models whose probe-to-step cost ratio differs tenfold.
"""

from __future__ import annotations

# Never probe more often than this when spacing by budget: a very fast probe
# should not flood the logs.
MIN_AUTO_INTERVAL = 10


class ProbeSchedule:
    """Decides at which training steps the probe runs.

    Args:
        every_n_steps: Probe every this many steps, or `None` to space probes
            by cost.
        overhead_budget: With `every_n_steps=None`, the fraction of training
            CPU time probes may use.
        min_interval: Fewest steps between two budget-spaced probes. Defaults
            to `MIN_AUTO_INTERVAL`.

    Example:

    ```python
    schedule = ProbeSchedule(every_n_steps=None, overhead_budget=0.01)
    schedule.start_fit()
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
    ):
        self.every_n_steps = every_n_steps
        self.overhead_budget = overhead_budget
        self.min_interval = min_interval
        self.start_fit()

    def start_fit(self) -> None:
        """Forgets the previous `fit`: its first step is probed again."""
        self.last_probe_step = -1
        self.training_cpu = 0.0  # since the last probe
        self.probe_cpu: float | None = None  # steady-state cost of one probe

    def add_training_time(self, seconds: float) -> None:
        self.training_cpu += seconds

    def due(self, step: int) -> bool:
        """Whether to probe after training step `step`."""
        if step == self.last_probe_step:
            return False
        if self.last_probe_step < 0:
            return True  # first step of the fit: a baseline
        if self.every_n_steps is not None:
            n = self.every_n_steps
            return step // n != self.last_probe_step // n
        if step - self.last_probe_step < self.min_interval:
            return False
        if self.probe_cpu is None:
            return True  # measure the steady-state cost once
        return self.training_cpu * self.overhead_budget >= self.probe_cpu

    def due_at_epoch_end(self, step: int) -> bool:
        """Fixed schedules probe every epoch end; budgets only when affordable."""
        if step == self.last_probe_step:
            return False
        return self.every_n_steps is not None or self.due(step)

    def probed(self, step: int, cost: float, traced: bool) -> None:
        """Records a probe at `step` that took `cost` CPU seconds.

        Args:
            step: The step probed.
            cost: Its process CPU time.
            traced: Whether it compiled: a probe that traced is not
                representative, so the budget uses steady-state probes only.
        """
        if not traced:
            previous = self.probe_cpu
            self.probe_cpu = cost if previous is None else 0.5 * (previous + cost)
        self.last_probe_step = step
        self.training_cpu = 0.0
