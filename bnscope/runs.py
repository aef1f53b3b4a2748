"""What a bnscope run holds, as read back: frozen dataclasses.

`bnscope.reader` builds them from event files; the rules, the report and
`compare` read them. They hold no TensorFlow objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from bnscope import tags


@dataclass(frozen=True)
class Series:
    """The values of one tag over training steps, sorted by step.

    Args:
        steps: Training steps, increasing, `int64`.
        values: The value at each step, `float64` (NaN/Inf kept as written).
    """

    steps: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def last(self) -> float:
        return float(self.values[-1])


@dataclass(frozen=True)
class LayerInfo:
    """One observed layer, as the callback's metadata describes it.

    Every field but `name` and `depth` may be `None` when the metadata is
    missing or comes from an older or newer writer.
    """

    name: str
    depth: int
    class_name: str | None = None
    activation: str | None = None
    params: int | None = None
    trainable: bool | None = None
    use_bias: bool | None = None
    inputs_from: tuple[str, ...] = ()
    normalization: Mapping[str, Any] | None = None

    @property
    def normalization_kind(self) -> str | None:
        return None if self.normalization is None else self.normalization.get("kind")

    @property
    def is_batch_norm(self) -> bool:
        return self.normalization_kind == "batch"


@dataclass(frozen=True)
class ReadStats:
    """What reading a run had to skip, so the report can say so."""

    files: int = 0
    records: int = 0
    scalars: int = 0
    corrupt_records: int = 0
    skipped_bytes: int = 0
    undecodable_events: int = 0
    truncated_files: tuple[str, ...] = ()
    empty_files: tuple[str, ...] = ()
    unreadable_files: tuple[str, ...] = ()
    garbage_files: tuple[str, ...] = ()


@dataclass(frozen=True)
class Run:
    """Everything bnscope recorded in one run directory.

    Args:
        name: Path relative to LOGDIR (`"bnscope"`, `"exp1/bnscope"`).
        path: The run directory.
        scalars: Tag to `Series`, for every bnscope scalar tag.
        metadata: The latest `bnscope/metadata` JSON, or `None`.
        layers: Observed layers in depth (call) order.
        stats: Counts of what was read and skipped.
        notes: One line per problem met while reading, for the report.
    """

    name: str
    path: str
    scalars: Mapping[str, Series]
    metadata: Mapping[str, Any] | None
    layers: tuple[LayerInfo, ...]
    stats: ReadStats
    notes: tuple[str, ...] = ()

    @property
    def is_bnscope(self) -> bool:
        return bool(self.scalars) or self.metadata is not None

    @property
    def steps(self) -> tuple[int, int] | None:
        """First and last step with a scalar, or `None` without scalars."""
        if not self.scalars:
            return None
        first = min(int(s.steps[0]) for s in self.scalars.values() if len(s))
        last = max(int(s.steps[-1]) for s in self.scalars.values() if len(s))
        return first, last

    @property
    def probe_steps(self) -> np.ndarray:
        """Every step at which any scalar was recorded."""
        if not self.scalars:
            return np.zeros(0, dtype=np.int64)
        return np.unique(np.concatenate([s.steps for s in self.scalars.values()]))

    def series(self, metric: tags.Metric | str, subject: str) -> Series | None:
        """The series of `metric` for `subject` (a layer, input, ...), if any."""
        name = metric if isinstance(metric, str) else metric.name
        return self.scalars.get(f"{name}/{subject}")

    def subjects(self, metric: tags.Metric | str) -> list[str]:
        """Subjects that have a series of `metric`, in tag order."""
        prefix = (metric if isinstance(metric, str) else metric.name) + "/"
        return [tag[len(prefix) :] for tag in self.scalars if tag.startswith(prefix)]

    def layer(self, name: str) -> LayerInfo | None:
        for layer in self.layers:
            if layer.name == name:
                return layer
        return None

    @property
    def model_name(self) -> str | None:
        model = (self.metadata or {}).get("model")
        return model.get("name") if isinstance(model, Mapping) else None

    @property
    def model_class(self) -> str | None:
        model = (self.metadata or {}).get("model")
        return model.get("class") if isinstance(model, Mapping) else None


@dataclass(frozen=True)
class Logdir:
    """The result of scanning LOGDIR.

    Args:
        path: LOGDIR as given.
        runs: bnscope runs, sorted by name.
        other_runs: Names of runs with event files but no bnscope data.
        notes: Problems met while scanning (e.g. unreadable directories).
    """

    path: str
    runs: tuple[Run, ...]
    other_runs: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


# -- Discovery ------------------------------------------------------------------
