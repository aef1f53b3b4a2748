"""`bnscope.load`: read bnscope runs in a notebook or script, without TensorFlow.

```python
import bnscope

logdir = bnscope.load("logs")
run = logdir.runs[0]
for layer in run.layers:                      # depth order
    grad = run.series("grad_norm", layer.name)  # Series(steps, values) or None
    print(layer.depth, layer.name, layer.class_name, layer.activation,
          grad.last if grad else None)
for finding in bnscope.findings(run):         # what `bnscope summarize` reports
    print(finding.severity, finding.rule, finding.message)
frame = logdir.to_pandas()                    # run, step, metric, layer, value
```

See docs/api.md.
"""

from __future__ import annotations

import os

from bnscope.analysis.reader import read_logdir, read_run
from bnscope.analysis.rules import Finding
from bnscope.analysis.runs import Logdir, Run
from bnscope.analysis.summary import summarize

__all__ = ["findings", "load", "load_run"]


def load(logdir: str | os.PathLike) -> Logdir:
    """Reads every bnscope run below `logdir`.

    Args:
        logdir: The log directory, e.g. the `log_dir` given to `BNScope`
            (its runs are found recursively, as TensorBoard finds them).

    Returns:
        A `Logdir` whose `runs` hold each run's layers, series and findings.

    Raises:
        ReaderError: If `logdir` does not exist, is not a directory, or
            cannot be listed.
    """
    return read_logdir(os.fspath(logdir))


def load_run(run_dir: str | os.PathLike) -> Run:
    """Reads one run directory (one that directly holds event files)."""
    return read_run(os.fspath(run_dir))


def findings(run: Run) -> tuple[Finding, ...]:
    """What bnscope's rules find in `run`: the findings `bnscope summarize` shows.

    One finding per cause (its `layers` name every layer concerned), per fit
    segment where fits changed the setup, ordered as the report orders them:
    each root cause (most severe first), then its likely consequences
    (`caused_by` names the cause's rule).
    """
    return summarize(run).findings
