"""A bounded, in-memory copy of what bnscope wrote, readable as a `Run`.

The live findings (`bnscope.recording.live`) run the same rules as
`bnscope summarize`, on a `Run` built from this store instead of from the
event files. The store is fed every scalar row the observer writes and keeps,
of every series:

- its first `head` values, for good (the baselines some rules compare against:
  the first probes of the global gradient norm, the first EMA progress, the
  run's first step);
- its latest `tail` values (the trend rules judge the last 5 probes);
- the first non-finite value (or positive NaN/Inf count) of each series, so
  `nonfinite` names the same first step and layer however long training runs.

So memory and the cost of an evaluation stay flat however long training runs,
and while a series has at most `head + tail` values the `Run` holds exactly
the series `bnscope summarize` reads back from disk.

Rows are kept per *block*: the tuple of tags written together (one probe, one
training step in full mode), as a matrix, so adding a row is one NumPy copy.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from bnscope import tags
from bnscope.analysis.runs import Fit, Run, Series
from bnscope.schema import RunMetadata

# bnscope's choice: 8 first values hold every baseline a rule reads (the
# median of the first 3 finite global norms, the first EMA progress) with room
# for a few non-finite ones; 248 latest values are far more than the 5 probes
# a trend rule judges, and more than a 30-step epoch writes even in full mode,
# so an episode that starts between two evaluations is seen from its start.
HEAD = 8
TAIL = 248

# Counters of non-finite values: any positive count is a finding.
_COUNTER_METRICS = frozenset(
    metric.name
    for metric in (
        tags.ACT_NONFINITE,
        tags.GRAD_NONFINITE,
        tags.WEIGHT_NONFINITE,
        tags.LOSS_NONFINITE,
    )
)


def _is_scalar_tag(tag: str) -> bool:
    parsed = tags.parse_tag(tag)
    return parsed is not None and parsed[0].kind == tags.SCALAR


class _Block:
    """The rows of one tuple of tags: first `head` rows, and a ring of the latest."""

    def __init__(self, keys: tuple[str, ...], head: int, tail: int):
        self.keys = keys
        self.columns = [i for i, tag in enumerate(keys) if _is_scalar_tag(tag)]
        self.tags = [keys[i] for i in self.columns]
        width = len(self.tags)
        self.counters = np.array(
            [
                i
                for i, tag in enumerate(self.tags)
                if tag.split("/")[0] in _COUNTER_METRICS
            ],
            dtype=np.int64,
        )
        self.head_capacity, self.tail_capacity = head, tail
        self.head_steps = np.zeros(head, dtype=np.int64)
        self.head_sequence = np.zeros(head, dtype=np.int64)
        self.head_values = np.zeros((head, width))
        self.head_count = 0
        # The ring grows to `tail` rows, then wraps: row k lives at k % tail.
        self.ring_steps = np.zeros(0, dtype=np.int64)
        self.ring_sequence = np.zeros(0, dtype=np.int64)
        self.ring_values = np.zeros((0, width))
        self.ring_count = 0
        # column -> (step, sequence, value) of its first non-finite entry.
        self.pinned: dict[int, tuple[int, int, float]] = {}

    @property
    def dropped(self) -> bool:
        """Whether rows have fallen out between the head and the ring."""
        return self.ring_count > self.tail_capacity

    def last_step(self) -> int | None:
        if self.ring_count:
            return int(self.ring_steps[(self.ring_count - 1) % self.tail_capacity])
        if self.head_count:
            return int(self.head_steps[self.head_count - 1])
        return None

    def add(self, step: int, sequence: int, row: np.ndarray) -> np.ndarray:
        """Appends one row; returns the columns that hold a new non-finite value."""
        last = self.last_step()
        if last is not None and step <= last:
            self._drop_from(step)  # a step written again: the later write wins
        self._append(step, sequence, row)
        bad = ~np.isfinite(row)
        if len(self.counters):
            bad[self.counters] |= row[self.counters] > 0
        new = [c for c in np.flatnonzero(bad) if c not in self.pinned]
        for column in new:
            self.pinned[int(column)] = (step, sequence, float(row[column]))
        return np.asarray(new, dtype=np.int64)

    def _append(self, step: int, sequence: int, row: np.ndarray) -> None:
        if self.head_count < self.head_capacity:
            self.head_steps[self.head_count] = step
            self.head_sequence[self.head_count] = sequence
            self.head_values[self.head_count] = row
            self.head_count += 1
        else:
            self._ring_append(step, sequence, row)

    def _ring_append(self, step: int, sequence: int, row: np.ndarray) -> None:
        size = len(self.ring_steps)
        if self.ring_count == size and size < self.tail_capacity:
            grown = min(self.tail_capacity, max(16, 2 * size))
            self.ring_steps = np.resize(self.ring_steps, grown)
            self.ring_sequence = np.resize(self.ring_sequence, grown)
            values = np.zeros((grown, self.ring_values.shape[1]))
            values[:size] = self.ring_values
            self.ring_values = values
        slot = self.ring_count % self.tail_capacity
        self.ring_steps[slot] = step
        self.ring_sequence[slot] = sequence
        self.ring_values[slot] = row
        self.ring_count += 1

    def _drop_from(self, step: int) -> None:
        """Forgets rows at `step` and later (rewritten, or training went back)."""
        steps, sequence, values = self.ordered()
        keep = steps < step
        self.head_count = self.ring_count = 0
        self.ring_steps = self.ring_steps[:0]
        self.ring_sequence = self.ring_sequence[:0]
        self.ring_values = self.ring_values[:0]
        self.pinned = {c: p for c, p in self.pinned.items() if p[0] < step}
        for s, q, v in zip(steps[keep], sequence[keep], values[keep]):
            self._append(int(s), int(q), v)

    def ordered(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Steps, write sequence and values of the rows kept, oldest first."""
        n, capacity = self.ring_count, self.tail_capacity
        if n <= capacity:
            ring = slice(0, n)
            ring_steps, ring_seq = self.ring_steps[ring], self.ring_sequence[ring]
            ring_values = self.ring_values[ring]
        else:
            order = np.roll(np.arange(capacity), -(n % capacity))
            ring_steps, ring_seq = self.ring_steps[order], self.ring_sequence[order]
            ring_values = self.ring_values[order]
        h = self.head_count
        if not len(ring_steps):
            return self.head_steps[:h], self.head_sequence[:h], self.head_values[:h]
        return (
            np.concatenate((self.head_steps[:h], ring_steps)),
            np.concatenate((self.head_sequence[:h], ring_seq)),
            np.concatenate((self.head_values[:h], ring_values)),
        )

    def pinned_between(self, low: int, high: int) -> dict[int, tuple[int, int, float]]:
        """Pinned entries that fell out of both the head and the ring."""
        return {c: p for c, p in self.pinned.items() if low < p[0] < high}


class LiveSeriesStore:
    """What the observer wrote, bounded per series, readable as a `Run`.

    Args:
        head: First values of each series kept for good. Defaults to `HEAD`.
        tail: Latest values of each series kept. Defaults to `TAIL`.

    Example:

    ```python
    store = LiveSeriesStore()
    store.add(1, {"loss/model": 2.3, "grad_norm/dense": 0.1}, metadata)
    store.add(11, {"loss/model": 2.1, "grad_norm/dense": 0.09})
    run = store.run("bnscope", "logs/bnscope")  # same rules as summarize
    ```
    """

    def __init__(self, head: int = HEAD, tail: int = TAIL):
        if head < 1 or tail < 1:
            raise ValueError(f"head and tail must be >= 1. Received: {head}, {tail}")
        self.head, self.tail = head, tail
        self.metadata: RunMetadata | None = None
        # Every metadata record with its step, as the reader keeps them.
        self.fits: list[Fit] = []
        self.rows = 0  # rows ever added
        self._blocks: dict[tuple[str, ...], _Block] = {}
        self._sequence = 0

    def add(
        self,
        step: int,
        values: Mapping[str, float],
        metadata: RunMetadata | None = None,
    ) -> bool:
        """Adds the scalars written at `step` (and the metadata, if written).

        Args:
            step: The step they were written at.
            values: `tag -> value`; tags that are not bnscope scalars are ignored.
            metadata: The run metadata written with them, if any.

        Returns:
            Whether a series received its first non-finite value (a NaN, an
            Inf, or a positive NaN/Inf count).
        """
        if metadata is not None:
            self.metadata = metadata
            self.fits.append(Fit(step=int(step), metadata=metadata))
        if not values:
            return False
        keys = tuple(values)
        block = self._blocks.get(keys)
        if block is None:
            block = self._blocks[keys] = _Block(keys, self.head, self.tail)
        if not block.columns:
            return False
        # Event files hold float32 (`simple_value`): round the same way, so the
        # rules compare exactly the numbers `bnscope summarize` reads back.
        row = np.fromiter(values.values(), dtype=np.float32, count=len(keys))
        row = row.astype(np.float64)
        if len(block.columns) != len(keys):
            row = row[block.columns]
        self._sequence += 1
        self.rows += 1
        return bool(len(block.add(int(step), self._sequence, row)))

    @property
    def dropped(self) -> bool:
        """Whether some series hold fewer values than were written."""
        return any(block.dropped for block in self._blocks.values())

    def series(self) -> dict[str, Series]:
        """Every series kept, sorted by step; a later write of a step wins."""
        pieces: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
        for block in self._blocks.values():
            if not block.columns:
                continue
            steps, sequence, values = block.ordered()
            if not len(steps):
                continue
            low = (
                int(block.head_steps[block.head_count - 1]) if block.head_count else -1
            )
            high = (
                int(steps[block.head_count]) if len(steps) > block.head_count else low
            )
            pinned = block.pinned_between(low, high) if block.dropped else {}
            for column, tag in enumerate(block.tags):
                piece = (steps, sequence, values[:, column])
                if column in pinned:
                    s, q, v = pinned[column]
                    h = block.head_count
                    piece = (
                        np.insert(steps, h, s),
                        np.insert(sequence, h, q),
                        np.insert(values[:, column], h, v),
                    )
                pieces.setdefault(tag, []).append(piece)
        return {tag: _merge(parts) for tag, parts in pieces.items()}

    def run(self, name: str, path: str) -> Run:
        """The kept series and the latest metadata as a `Run`, for the rules."""
        return Run(
            name=name,
            path=path,
            scalars=self.series(),
            metadata=self.metadata,
            fits=tuple(self.fits),
        )


def _merge(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> Series:
    """One sorted series from several blocks; among equal steps the later write wins."""
    if len(parts) == 1:
        steps, _, values = parts[0]
        return Series(steps=steps, values=values)
    steps = np.concatenate([p[0] for p in parts])
    sequence = np.concatenate([p[1] for p in parts])
    values = np.concatenate([p[2] for p in parts])
    order = np.lexsort((sequence, steps))
    steps, values = steps[order], values[order]
    last_of_step = np.append(steps[1:] != steps[:-1], True)
    return Series(steps=steps[last_of_step], values=values[last_of_step])
