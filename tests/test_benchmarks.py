"""Every benchmark with a `--quick` mode runs, and prints what it measures.

Speed is never asserted here (see benchmarks/); only that each measurement is
taken and is a positive, finite number of seconds.
"""

from __future__ import annotations

import importlib
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"


@pytest.fixture
def benchmarks_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))


def test_live_findings_quick(benchmarks_on_path, capsys):
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


@pytest.mark.browser
@pytest.mark.tensorboard
def test_tensorboard_plugin_benchmark_quick():
    done = subprocess.run(
        [sys.executable, "benchmarks/tensorboard_plugin.py", "--quick"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "findings equal summarize: True" in done.stdout
