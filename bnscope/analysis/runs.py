"""What a bnscope run holds, as read back: frozen dataclasses and their index.

`bnscope.analysis.reader` builds them from event files, the TensorBoard plugin
from TensorBoard's data provider, and the callback from what it holds in
memory; the rules, the views and `compare` read them. They hold no TensorFlow
objects.

A `Run` indexes its scalars once, by metric and subject, so looking up one
layer's series never scans every tag: the cost of a summary grows with the
number of tags, not with layers × tags.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from bnscope import tags
from bnscope.schema import LayerMeta, RunMetadata

if TYPE_CHECKING:
    import pandas


def natural_key(name: str) -> tuple:
    """A sort key comparing the digit runs of `name` as numbers: `x_2 < x_10`."""
    return tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part)
        for part in re.split(r"(\d+)", name)
        if part
    )


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
class Fit:
    """One `fit` (or one observer) that wrote to a run, and its metadata.

    Args:
        step: The step its metadata was written at (its first probe).
        metadata: The run metadata as that fit saw the model.
    """

    step: int
    metadata: RunMetadata


def fits_from_records(
    records: Iterable[tuple[int, str]], notes: list[str]
) -> tuple[Fit, ...]:
    """`Fit`s from `(step, metadata JSON text)` records, sorted by step.

    Identical texts (the same setup fitted again) are parsed once; a record
    that does not parse is left out with a note. The TensorBoard plugin builds
    its runs' fits with this too.
    """
    parsed: dict[str, RunMetadata | None] = {}
    fits: list[Fit] = []
    for step, text in records:
        if text not in parsed:
            parsed[text] = RunMetadata.loads(text, notes)
        if parsed[text] is not None:
            fits.append(Fit(step=int(step), metadata=parsed[text]))
    fits.sort(key=lambda fit: fit.step)
    return tuple(fits)


@dataclass(frozen=True)
class Run:
    """Everything bnscope recorded in one run.

    Args:
        name: Path relative to LOGDIR (`"bnscope"`, `"exp1/bnscope"`).
        path: The run directory.
        scalars: Tag to `Series`, for every bnscope scalar tag.
        metadata: The latest run metadata, or `None`.
        stats: Counts of what was read and skipped.
        notes: One line per problem met while reading, for the report.
        layers: Observed layers in depth (call) order. Defaults to the
            metadata's, or without metadata to the layers ordered by the
            first step they were recorded at, then by name (`natural_key`).
        fits: Every fit's metadata with its first step, in training order
            (`metadata` is the last one's); see `bnscope.analysis.segments`.

    Example:

    ```python
    run = bnscope.load("logs").runs[0]
    for layer in run.layers:
        series = run.series("grad_norm", layer.name)
        if series is not None:
            print(layer.depth, layer.name, series.last)
    ```
    """

    name: str
    path: str
    scalars: Mapping[str, Series]
    metadata: RunMetadata | None = None
    stats: ReadStats = field(default_factory=ReadStats)
    notes: tuple[str, ...] = ()
    layers: tuple[LayerMeta, ...] | None = None
    fits: tuple[Fit, ...] = ()
    _index: dict[str, dict[str, Series]] = field(init=False, repr=False, compare=False)
    _layers_by_name: dict[str, LayerMeta] = field(init=False, repr=False, compare=False)
    # VARIABLE metrics by layer: metric -> layer -> [(variable, series)].
    _variables: dict[str, dict[str, list[tuple[str, Series]]]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        index: dict[str, dict[str, Series]] = {}
        variables: dict[str, dict[str, list[tuple[str, Series]]]] = {}
        for tag, series in self.scalars.items():
            parsed = tags.parse_tag(tag)
            if parsed is None:
                continue
            metric, subject = parsed
            index.setdefault(metric.name, {})[subject] = series
            if metric.subject == tags.VARIABLE:
                layer, variable = tags.split_variable_subject(subject)
                per_layer = variables.setdefault(metric.name, {})
                per_layer.setdefault(layer, []).append((variable, series))
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_variables", variables)
        if self.layers is None:
            object.__setattr__(self, "layers", self._default_layers())
        object.__setattr__(
            self, "_layers_by_name", {layer.name: layer for layer in self.layers}
        )

    def _default_layers(self) -> tuple[LayerMeta, ...]:
        if self.metadata is not None and self.metadata.layers:
            return self.metadata.layers
        # Without metadata the depth is unknown. Order by the first step a
        # layer was recorded at, then by name with numbers compared as
        # numbers (Keras' auto names dense, dense_1, ..., dense_10 in creation
        # order): never by tag order, which differs between TensorBoard's
        # data providers and would make the depth-ratio rules arbitrary.
        first_step: dict[str, int] = {}
        for tag, series in self.scalars.items():
            parsed = tags.parse_tag(tag)
            if parsed is None or parsed[0].subject != tags.LAYER:
                continue
            step = int(series.steps[0]) if len(series) else 2**63 - 1
            name = parsed[1]
            first_step[name] = min(step, first_step.get(name, step))
        names = sorted(first_step, key=lambda n: (first_step[n], natural_key(n)))
        return tuple(LayerMeta(name=n, depth=i) for i, n in enumerate(names))

    # -- Lookups -----------------------------------------------------------------
    @property
    def is_bnscope(self) -> bool:
        return bool(self._index) or self.metadata is not None

    @property
    def steps(self) -> tuple[int, int] | None:
        """First and last step with a scalar, or `None` without scalars."""
        present = [s for s in self.scalars.values() if len(s)]
        if not present:
            return None
        return min(int(s.steps[0]) for s in present), max(
            int(s.steps[-1]) for s in present
        )

    @property
    def probe_steps(self) -> np.ndarray:
        """Every step at which any scalar was recorded."""
        if not self.scalars:
            return np.zeros(0, dtype=np.int64)
        return np.unique(np.concatenate([s.steps for s in self.scalars.values()]))

    def series(self, metric: tags.Metric | str, subject: str) -> Series | None:
        """The series of `metric` for `subject` (a layer, input, ...), if any.

        Args:
            metric: A `bnscope.tags` metric or its name, e.g. `"grad_norm"`.
            subject: A layer name, `<layer>:<variable>`, an input or output
                name, or `"model"`.

        Raises:
            UnknownMetricError: If `metric` names no registered metric.
        """
        return self._subjects_of(metric).get(subject)

    def subjects(self, metric: tags.Metric | str) -> list[str]:
        """Subjects that have a series of `metric`, in tag order."""
        return list(self._subjects_of(metric))

    def items(self, metric: tags.Metric | str) -> Iterator[tuple[str, Series]]:
        """`(subject, series)` of every series of `metric`, in tag order."""
        return iter(self._subjects_of(metric).items())

    def variables(
        self, metric: tags.Metric | str, layer: str
    ) -> list[tuple[str, Series]]:
        """`(variable, series)` of a per-variable metric for one layer."""
        self._subjects_of(metric)  # validates the name
        name = metric if isinstance(metric, str) else metric.name
        return list(self._variables.get(name, {}).get(layer, ()))

    def metrics(self) -> list[str]:
        """Names of the metrics this run recorded."""
        return list(self._index)

    def _subjects_of(self, metric: tags.Metric | str) -> dict[str, Series]:
        name = metric if isinstance(metric, str) else metric.name
        if name not in tags.METRICS_BY_NAME:
            tags.metric(name)  # raises UnknownMetricError with a clear message
        return self._index.get(name, {})

    def layer(self, name: str) -> LayerMeta | None:
        return self._layers_by_name.get(name)

    @property
    def model_name(self) -> str | None:
        return None if self.metadata is None else self.metadata.model.name

    @property
    def model_class(self) -> str | None:
        return None if self.metadata is None else self.metadata.model.class_name

    # -- Conveniences for notebooks -----------------------------------------------
    def to_pandas(self) -> pandas.DataFrame:
        """The scalars as a tidy frame: `run, step, metric, layer, value`.

        `layer` holds the subject (a layer, `<layer>:<variable>`, an input or
        output, or `model`). Needs pandas (`pip install pandas`).
        """
        return _frame([self])


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

    def run(self, name: str) -> Run:
        """The run called `name` (its path relative to LOGDIR).

        Raises:
            KeyError: If there is no such run; the message lists the runs.
        """
        for run in self.runs:
            if run.name == name:
                return run
        names = ", ".join(run.name for run in self.runs) or "none"
        raise KeyError(f"no run {name!r} in {self.path} (runs: {names})")

    def to_pandas(self) -> pandas.DataFrame:
        """Every run's scalars as one tidy frame: `run, step, metric, layer, value`."""
        return _frame(self.runs)


def _frame(runs: tuple[Run, ...] | list[Run]) -> pandas.DataFrame:
    try:
        import pandas
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "to_pandas() needs pandas: pip install pandas (or 'bnscope[pandas]')"
        ) from None
    columns: dict[str, list[Any]] = {k: [] for k in ("run", "metric", "layer")}
    steps, values = [], []
    for run in runs:
        for metric_name, by_subject in run._index.items():
            for subject, series in by_subject.items():
                count = len(series)
                columns["run"].append(np.repeat(run.name, count))
                columns["metric"].append(np.repeat(metric_name, count))
                columns["layer"].append(np.repeat(subject, count))
                steps.append(series.steps)
                values.append(series.values)
    if not steps:
        return pandas.DataFrame(
            {
                "run": pandas.Series(dtype=object),
                "step": pandas.Series(dtype="int64"),
                "metric": pandas.Series(dtype=object),
                "layer": pandas.Series(dtype=object),
                "value": pandas.Series(dtype="float64"),
            }
        )
    frame = pandas.DataFrame(
        {
            "run": np.concatenate(columns["run"]),
            "step": np.concatenate(steps).astype("int64"),
            "metric": np.concatenate(columns["metric"]),
            "layer": np.concatenate(columns["layer"]),
            "value": np.concatenate(values).astype("float64"),
        }
    )
    for name in ("run", "metric", "layer"):
        frame[name] = frame[name].astype("category")
    return frame
