"""Damaged copies of event files, and TensorBoard's own count of what survives.

The reader's fuzz suite (`tests/analysis/test_reader_fuzz.py`) and its long
mode (`benchmarks/fuzz_reader.py`) share these: every case is drawn from a
seeded `random.Random`, so a failing case is reproduced by its seed alone.
"""

from __future__ import annotations

import json
import os
import random
import signal
import struct
import subprocess
import sys
import textwrap
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass

from bnscope.events.tfrecord import masked_crc32c

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def record_offsets(data: bytes) -> list[tuple[int, int]]:
    """`(start, end)` of every record of an intact event file."""
    spans, offset = [], 0
    while offset + 12 <= len(data):
        (length,) = struct.unpack_from("<Q", data, offset)
        end = offset + 16 + length
        spans.append((offset, end))
        offset = end
    return spans


def _flip_bits(data: bytearray, rng: random.Random) -> str:
    for _ in range(rng.randint(1, 8)):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return "bit flips"


def _truncate(data: bytearray, rng: random.Random) -> str:
    del data[rng.randrange(1, len(data)) :]
    return "truncation"


def _insert(data: bytearray, rng: random.Random) -> str:
    size = rng.choice([1, 7, 12, 100, 4096, 70_000])
    kind = rng.choice(["random", "zeros", "ones", "copy"])
    if kind == "random":
        garbage = rng.randbytes(size)
    elif kind == "zeros":
        garbage = bytes(size)
    elif kind == "ones":
        garbage = b"\xff" * size
    else:  # a piece of the file itself: valid-looking headers out of place
        start = rng.randrange(len(data))
        garbage = bytes(data[start : start + size])
    position = rng.randrange(len(data) + 1)
    data[position:position] = garbage
    return f"inserted {kind}"


def _delete(data: bytearray, rng: random.Random) -> str:
    start = rng.randrange(len(data))
    del data[start : start + rng.choice([1, 5, 13, 300])]
    return "deletion"


def _oversized_length(data: bytearray, rng: random.Random) -> str:
    spans = record_offsets(bytes(data))
    if not spans:
        return _flip_bits(data, rng)
    start, _ = rng.choice(spans)
    length = rng.choice([1 << 29, (1 << 30) - 1, 1 << 31, 1 << 60, (1 << 64) - 1])
    field = struct.pack("<Q", length)
    crc = masked_crc32c(field) if rng.random() < 0.7 else rng.getrandbits(32)
    data[start : start + 12] = field + struct.pack("<I", crc)
    return "oversized length"


def _shuffle_records(data: bytearray, rng: random.Random) -> str:
    spans = record_offsets(bytes(data))
    records = [bytes(data[a:b]) for a, b in spans]
    if rng.random() < 0.5:
        rng.shuffle(records)
        label = "shuffled records"
    else:  # duplicated and dropped records
        records = [r for r in records for _ in range(rng.choice([0, 1, 1, 2]))]
        label = "duplicated records"
    data[:] = b"".join(records)
    return label


# Mutations that keep record framing intact come first: applied to a file
# before the ones that break it, they still find its records.
MUTATIONS: tuple[Callable[[bytearray, random.Random], str], ...] = (
    _shuffle_records,
    _oversized_length,
    _flip_bits,
    _insert,
    _delete,
    _truncate,
)


def mutate(data: bytes, seed: int) -> tuple[bytes, str]:
    """A damaged copy of `data` and what was done to it, from `seed` alone."""
    rng = random.Random(seed)
    chosen = sorted(
        rng.sample(range(len(MUTATIONS)), rng.choice([1, 1, 2, 3])),
    )
    damaged = bytearray(data)
    labels = []
    for index in chosen:
        if not damaged:
            break
        labels.append(MUTATIONS[index](damaged, rng))
    return bytes(damaged), " + ".join(labels)


_ACCUMULATOR_SCRIPT = textwrap.dedent(
    """
    import json, sys
    # TensorBoard's pure-Python record reader: same CRC checks and proto
    # parsing as with TensorFlow, and no segfault on a 2^60 length.
    sys.modules["tensorflow"] = None
    from tensorboard.backend.event_processing.event_accumulator import (
        EventAccumulator,
    )
    from bnscope import tags

    counts = {}
    for path in json.load(sys.stdin):
        pairs = set()
        try:
            acc = EventAccumulator(path, size_guidance={"scalars": 0, "tensors": 0})
            acc.Reload()
            for tag in acc.Tags()["scalars"]:
                if tags.parse_tag(tag) is not None:
                    pairs.update((tag, e.step) for e in acc.Scalars(tag))
        except Exception:
            pass  # what it had read before failing is lost with it
        counts[path] = len(pairs)
    print(json.dumps(counts))
    """
)


def accumulator_scalars(paths: list[str]) -> dict[str, int]:
    """Distinct bnscope `(tag, step)` pairs TensorBoard's `EventAccumulator`
    (keeping every value) recovers from each file, in one subprocess."""
    done = subprocess.run(
        [sys.executable, "-c", _ACCUMULATOR_SCRIPT],
        input=json.dumps(paths),
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    return json.loads(done.stdout)


class CaseTimeout(Exception):
    """A case ran past its time bound: the reader hung."""


@dataclass(frozen=True)
class CaseResult:
    """What reading one damaged file gave."""

    scalars: int  # distinct (tag, step) pairs recovered
    peak_bytes: int | None  # peak traced allocation while reading, if traced
    seconds: float  # process CPU time of the read


# The allocation a read may make: the file itself and its decoded values
# (about 2x the file: a 4-byte float on disk is a row entry, then a float64),
# plus a fixed allowance for the decoder's tables and the resync scan's
# windows (bnscope's choice, measured: 0.2 MB for a 22 kB file, 1.2 MB for
# 566 kB). It never depends on a length field.
def allocation_bound(file_size: int) -> int:
    return 4 * file_size + (2 << 20)


def read_case(
    run_dir: str, traced: bool = False, time_limit: float = 30.0
) -> CaseResult:
    """Reads `run_dir` with `read_run`, bounded in time, optionally traced.

    Raises:
        CaseTimeout: If the read takes longer than `time_limit` seconds of
            wall time (a hang guard, thousands of times the usual cost).
    """
    from bnscope.analysis.reader import read_run

    def expire(signum, frame):
        raise CaseTimeout(f"reading {run_dir} took over {time_limit} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, time_limit)
    start = time.process_time()
    try:
        if traced:
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                run = read_run(run_dir)
                peak = tracemalloc.get_traced_memory()[1] - before
            finally:
                tracemalloc.stop()
        else:
            run, peak = read_run(run_dir), None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    return CaseResult(run.stats.scalars, peak, time.process_time() - start)


def base_files(directory: str) -> list[bytes]:
    """Intact event files to damage: with metadata and histograms, and without."""
    from tests.support.synthetic_runs import mlp_bn, plain_mlp

    with_everything = mlp_bn(steps=range(0, 501, 50))
    scalars_only = plain_mlp()
    scalars_only.steps = scalars_only.steps[:8]
    scalars_only.values = {t: v[:8] for t, v in scalars_only.values.items()}
    files = []
    for index, (run, histograms) in enumerate(
        [(with_everything, True), (scalars_only, False)]
    ):
        (path,) = run.write(
            os.path.join(directory, f"base{index}"), histograms=histograms
        )
        with open(path, "rb") as file:
            files.append(file.read())
    return files
