"""Benchmark and long fuzz run: the reader on damaged event files.

Runs the fuzz cases of `tests/analysis/test_reader_fuzz.py` (same mutations,
same seeds from 0 up, same assertions) for as many cases as asked, and
compares every `--compare-every`-th case with TensorBoard's
`EventAccumulator`. Then times the resync scan over a run of zeros against
the byte-by-byte search it replaced. Prints ratios; exits 1 if any case broke
a guarantee.

Usage:

```
python benchmarks/fuzz_reader.py [--cases 100000] [--compare-every 10] [--quick]
```

Times are process CPU time (`time.process_time()`); wall time on a shared
machine varies by ±20% or more.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bnscope.events import tfrecord  # noqa: E402
from tests.support import mutations  # noqa: E402


def fuzz(cases: int, compare_every: int, traced_every: int) -> int:
    """Runs `cases` cases; returns the number that broke a guarantee."""
    broken = 0
    ours_total = theirs_total = 0
    worst = (0.0, None)
    worst_alloc = 0.0
    with tempfile.TemporaryDirectory() as root:
        bases = mutations.base_files(root)
        compared: dict[str, int] = {}
        start = time.process_time()
        for seed in range(cases):
            data, what = mutations.mutate(bases[seed % len(bases)], seed)
            run_dir = os.path.join(root, f"case{seed}")
            os.makedirs(run_dir)
            path = os.path.join(run_dir, "events.out.tfevents.1700000000.fuzz")
            with open(path, "wb") as file:
                file.write(data)
            traced = seed % traced_every == 0
            try:
                result = mutations.read_case(run_dir, traced=traced)
            except Exception as error:
                print(f"BROKEN seed {seed} ({what}): {error!r}")
                broken += 1
                continue
            if result.seconds > worst[0]:
                worst = (result.seconds, f"seed {seed}, {what}, {len(data)} bytes")
            if traced:
                bound = mutations.allocation_bound(len(data))
                worst_alloc = max(worst_alloc, result.peak_bytes / bound)
                if result.peak_bytes > bound:
                    print(f"BROKEN seed {seed} ({what}): allocated {result.peak_bytes}")
                    broken += 1
            if seed % compare_every == 0:
                compared[path] = result.scalars
            else:
                os.remove(path)
                os.rmdir(run_dir)
        elapsed = time.process_time() - start
        theirs = mutations.accumulator_scalars(list(compared))
        for path, ours in compared.items():
            ours_total += ours
            theirs_total += theirs[path]
            if ours < theirs[path]:
                print(f"BROKEN {path}: {ours} scalars, EventAccumulator {theirs[path]}")
                broken += 1
    print(f"cases                 {cases} ({cases / elapsed:.0f}/s CPU, reads only)")
    print(f"slowest read          {worst[0] * 1e3:.1f} ms CPU ({worst[1]})")
    print(f"peak allocation       {worst_alloc:.2f} of the bound, at most")
    print(
        f"scalars recovered     {ours_total} vs EventAccumulator {theirs_total} "
        f"on {len(compared)} files: {ours_total / max(theirs_total, 1):.2f}x"
    )
    print(f"broken guarantees     {broken}")
    return broken


def _byte_by_byte(buffer: bytes, offset: int) -> int:
    """The search the scan replaced (`_resync` before issue 14): one header
    check, with its CRC, per byte."""
    position = offset + 1
    while position <= len(buffer) - 12:
        if tfrecord._valid_header_at(buffer, position) is not None:
            return position
        position += 1
    return len(buffer)


def resync(fast_bytes: int, slow_bytes: int) -> None:
    """CPU seconds per MB to skip zeros, scan vs byte-by-byte."""
    after = tfrecord.encode_record(b"next")
    rows = []
    for label, search, size in (
        ("scan", tfrecord._next_header, fast_bytes),
        ("byte by byte", _byte_by_byte, slow_bytes),
    ):
        buffer = bytes(size) + after
        start = time.process_time()
        assert search(buffer, 0) == size
        rows.append((label, (time.process_time() - start) / (size / 2**20), size))
    for label, per_mb, size in rows:
        print(
            f"resync over zeros     {label:13} {per_mb:.3f} s/MB ({size / 2**20:.1f} MB)"
        )
    print(f"resync speed-up       {rows[1][1] / rows[0][1]:.0f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--compare-every", type=int, default=10)
    parser.add_argument("--traced-every", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="a few cases, for tests")
    args = parser.parse_args(argv)
    if args.quick:
        broken = fuzz(60, compare_every=5, traced_every=4)
        resync(1 << 20, 1 << 16)
    else:
        broken = fuzz(args.cases, args.compare_every, args.traced_every)
        resync(10 << 20, 1 << 20)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
