"""Every benchmark with a `--quick` mode runs, and prints what it measures.

Speed is never asserted here (see benchmarks/); only that each measurement is
taken and is a positive, finite number of seconds.
"""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(autouse=True)
def benchmarks_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))


def test_live_findings_quick(capsys):
    module = importlib.import_module("live_findings")
    results = module.main(["--quick"])
    out = capsys.readouterr().out
    assert "plain epoch" in out and "growth 1000/10 epochs" in out
    costs = [results["plain_epoch"], results["real"]]
    for by_length in results["synthetic"].values():
        assert set(by_length) == set(module.TRAINING_LENGTHS)
        costs += by_length.values()
    assert set(results["synthetic"]) == set(module.DENSITIES)
    assert all(math.isfinite(c) and c > 0 for c in costs)
