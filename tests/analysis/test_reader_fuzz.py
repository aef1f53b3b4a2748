"""The reader on thousands of damaged event files: the fuzz suite of `reader.py`.

Each case damages an intact bnscope event file (`tests/support/mutations.py`:
bit flips, truncation, inserted garbage, zeros or pieces of the file itself,
deleted bytes, oversized length fields with and without a valid CRC, shuffled,
duplicated and dropped records; one to three of them) and asserts that
`read_run`

- never raises,
- never hangs (each read is bounded by a wall-clock hang guard of 30 s, about
  5000 times its usual cost: a guard, not a speed assertion),
- never allocates beyond `allocation_bound(file size)` (traced with
  `tracemalloc` on one case in four, which makes those reads 5x slower),
- recovers at least as many scalars as TensorBoard's `EventAccumulator`, with
  `size_guidance` keeping every value, on the same file (every fifth case:
  `EventAccumulator` reads in a subprocess, one per chunk).

CI runs `CASES` cases with fixed seeds (about 40 s of CPU on a 2-core
machine, spread over the chunks). `BNSCOPE_FUZZ_CASES=200000` runs more, and
`benchmarks/fuzz_reader.py` runs any number with a report. A failing case is
reproduced by its seed: `mutations.mutate(base, seed)`.
"""

from __future__ import annotations

import os

import pytest

from tests.support import mutations

CASES = int(os.environ.get("BNSCOPE_FUZZ_CASES", "3000"))
CHUNKS = 6
TRACED_EVERY = 4
COMPARED_EVERY = 5


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    return mutations.base_files(str(tmp_path_factory.mktemp("bases")))


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_damaged_files_never_break_the_reader(bases, tmp_path, chunk):
    compared: dict[str, tuple[int, int, str]] = {}
    for seed in range(chunk, CASES, CHUNKS):
        data, what = mutations.mutate(bases[seed % len(bases)], seed)
        run_dir = tmp_path / f"case{seed}"
        run_dir.mkdir()
        path = run_dir / "events.out.tfevents.1700000000.fuzz"
        path.write_bytes(data)
        traced = seed % TRACED_EVERY == 0
        try:
            result = mutations.read_case(str(run_dir), traced=traced)
        except Exception as error:
            raise AssertionError(f"seed {seed} ({what}): {error!r}") from error
        if traced:
            bound = mutations.allocation_bound(len(data))
            assert result.peak_bytes <= bound, (seed, what, result.peak_bytes)
        if seed % COMPARED_EVERY == 0:
            compared[str(path)] = (seed, result.scalars, what)
        else:
            path.unlink()
    theirs = mutations.accumulator_scalars(list(compared))
    fewer = [
        (seed, what, ours, theirs[path])
        for path, (seed, ours, what) in compared.items()
        if ours < theirs[path]
    ]
    assert not fewer, fewer
    # Not vacuous: TensorBoard recovered something from most files.
    assert sum(1 for path in compared if theirs[path] > 0) > len(compared) / 2


def test_intact_files_give_what_tensorboard_gives(bases, tmp_path):
    paths = []
    for index, data in enumerate(bases):
        run_dir = tmp_path / f"base{index}"
        run_dir.mkdir()
        (run_dir / "events.out.tfevents.1700000000.base").write_bytes(data)
        paths.append(str(run_dir / "events.out.tfevents.1700000000.base"))
    theirs = mutations.accumulator_scalars(paths)
    for path in paths:
        result = mutations.read_case(os.path.dirname(path))
        assert result.scalars == theirs[path] > 0


def test_every_mutation_is_drawn_and_damages(bases):
    kinds = set()
    for seed in range(300):
        data, what = mutations.mutate(bases[0], seed)
        kinds.update(what.split(" + "))
        assert data != bases[0] or what in ("shuffled records", "duplicated records")
    assert {"bit flips", "truncation", "oversized length", "deletion"} <= kinds
    assert {"shuffled records", "duplicated records", "inserted zeros"} <= kinds


def test_a_hang_is_caught_by_the_guard(tmp_path, monkeypatch):
    import time

    from bnscope.analysis import reader

    monkeypatch.setattr(reader, "read_run", lambda run_dir: time.sleep(5))
    with pytest.raises(mutations.CaseTimeout):
        mutations.read_case(str(tmp_path), time_limit=0.2)


def test_the_long_mode_benchmark_runs_quick():
    import subprocess
    import sys

    script = os.path.join(mutations.ROOT, "benchmarks", "fuzz_reader.py")
    done = subprocess.run(
        [sys.executable, script, "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "broken guarantees     0" in done.stdout
    assert "resync speed-up" in done.stdout
