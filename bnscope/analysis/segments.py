"""Per-fit segments of a run: successive `fit` calls analysed one by one.

A run that several `fit` calls wrote to (the Keras fine-tuning recipe trains a
frozen base, then unfreezes it and fits again into the same log directory)
holds one metadata record per fit. Fits that leave the model's setup as it
was (the same trainable flags, BN modes, optimizer and batch size: training
resumed, or `fit` called in a loop) form one segment; a fit that changes the
setup starts a new one. Each segment is analysed with its own metadata on its
own steps, and the run as a whole with the latest, so what a phase showed is
not erased by the next.

Example:

```python
run = bnscope.load("logs").runs[0]
for segment in split(run):
    print(segment.index, segment.first_step, segment.last_step)
```
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from bnscope.analysis.rules import Finding
from bnscope.analysis.runs import Fit, Run, Series
from bnscope.schema import RunMetadata


@dataclass(frozen=True)
class Segment:
    """Consecutive fits of one run with the same setup.

    Args:
        index: 1-based position in the run.
        first_step: The first step of its first fit.
        last_step: The last step before the next segment (or the run's last).
        metadata: The metadata of its last fit.
        first_fit: 1-based number of its first fit in the run.
        fits: How many fits it spans.
    """

    index: int
    first_step: int
    last_step: int
    metadata: RunMetadata
    first_fit: int = 1
    fits: int = 1

    @property
    def label(self) -> str:
        """`fit 2 (steps 301–600)`, or `fits 2–4 (...)` for several fits."""
        fits = (
            f"fit {self.first_fit}"
            if self.fits == 1
            else f"fits {self.first_fit}–{self.first_fit + self.fits - 1}"
        )
        return f"{fits} (steps {self.first_step}–{self.last_step})"


def setup(metadata: RunMetadata) -> tuple:
    """What must stay equal for two fits to be one segment.

    The model, its layers (trainable flags, BN modes, `training=` requests),
    the optimizer and the batch size; not the per-fit `epochs`,
    `steps_per_epoch` or bnscope's own settings.
    """
    return (
        metadata.model,
        metadata.batch_size,
        metadata.replicas,
        metadata.optimizer,
        metadata.layers,
    )


def split(run: Run) -> tuple[Segment, ...]:
    """The run's segments in training order; one segment for a single fit."""
    steps = run.steps
    if not run.fits or steps is None:
        return ()
    groups: list[list[Fit]] = []
    for fit in run.fits:
        if groups and setup(groups[-1][-1].metadata) == setup(fit.metadata):
            groups[-1].append(fit)
        else:
            groups.append([fit])
    segments = []
    first_fit = 1
    for index, group in enumerate(groups):
        first = steps[0] if index == 0 else group[0].step
        last = groups[index + 1][0].step - 1 if index + 1 < len(groups) else steps[1]
        segments.append(
            Segment(
                index=index + 1,
                first_step=int(first),
                last_step=int(last),
                metadata=group[-1].metadata,
                first_fit=first_fit,
                fits=len(group),
            )
        )
        first_fit += len(group)
    return tuple(segments)


def sub_run(run: Run, segment: Segment) -> Run:
    """The part of `run` inside `segment`, with that segment's metadata."""
    scalars = {}
    for tag, series in run.scalars.items():
        start = np.searchsorted(series.steps, segment.first_step, side="left")
        stop = np.searchsorted(series.steps, segment.last_step, side="right")
        if stop > start:
            scalars[tag] = Series(series.steps[start:stop], series.values[start:stop])
    fits = tuple(
        fit for fit in run.fits if segment.first_step <= fit.step <= segment.last_step
    )
    return Run(
        name=run.name,
        path=run.path,
        scalars=scalars,
        metadata=segment.metadata,
        stats=run.stats,
        notes=run.notes,
        fits=fits,
    )


def _key(finding: Finding) -> tuple:
    return (finding.rule, finding.layer, finding.what or finding.message)


def _overlapping(finding: Finding, segments: Sequence[Segment]) -> tuple[int, ...]:
    if finding.step is None:
        return tuple(segment.index for segment in segments)
    last = finding.last_step if finding.last_step is not None else finding.step
    return tuple(
        segment.index
        for segment in segments
        if segment.first_step <= last and finding.step <= segment.last_step
    )


def evaluate_segments(
    run: Run, evaluate: Callable[[Run], tuple[Finding, ...]]
) -> tuple[tuple[Finding, ...], tuple[Segment, ...]]:
    """Findings of every segment and of the whole run, each labelled once.

    A finding of one segment is labelled with it; one several segments share
    is kept as the latest segment saw it, labelled with all of them; one only
    the whole run shows (a trend across fits) is labelled with the segments
    its steps overlap. A run with one segment is evaluated as it is.

    Args:
        run: The run.
        evaluate: `run -> findings`, e.g. `bnscope.analysis.rules.evaluate`.

    Returns:
        `(findings, segments)`.
    """
    segments = split(run)
    if len(segments) <= 1:
        return evaluate(run), segments
    by_key: dict[tuple, tuple[Finding, list[int]]] = {}
    for segment in segments:
        for finding in evaluate(sub_run(run, segment)):
            key = _key(finding)
            seen = by_key.get(key, (finding, []))[1]
            by_key[key] = (finding, [*seen, segment.index])
    findings = [
        dataclasses.replace(finding, segments=tuple(indices))
        for finding, indices in by_key.values()
    ]
    for finding in evaluate(run):
        if _key(finding) not in by_key:
            findings.append(
                dataclasses.replace(finding, segments=_overlapping(finding, segments))
            )
    return tuple(findings), segments
