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


def test_summarize_scale_quick(benchmarks_on_path, capsys):
    module = importlib.import_module("summarize_scale")
    results = module.main(["--quick"])
    assert "per 1k tags" in capsys.readouterr().out
    assert set(results) == {50, 100}
    assert results[100]["tags"] > results[50]["tags"] > 0
    assert all(
        math.isfinite(r["seconds"]) and r["seconds"] > 0 for r in results.values()
    )


def test_real_models_quick(benchmarks_on_path, capsys):
    module = importlib.import_module("real_models")
    results = module.main(["--quick"])
    out = capsys.readouterr().out
    assert "one-time" in out and "Keras' first step" in out
    (rows,) = results.values()
    assert set(rows) == {"plain", "bnscope"}
    assert rows["plain"]["probes"] == 0 and rows["bnscope"]["probes"] >= 1
    assert rows["bnscope"]["bit_identical"]  # observation never perturbs
    for row in rows.values():
        for key in ("steady_ratio", "total_ratio", "rss_ratio", "first_step_cpu"):
            assert math.isfinite(row[key]) and row[key] > 0


def test_probe_breakdown_quick(benchmarks_on_path, capsys):
    module = importlib.import_module("probe_breakdown")
    results = module.main(["--quick"])
    assert "trace+first" in capsys.readouterr().out
    assert set(results) == {
        "train step",
        "activation statistics",
        "variable statistics",
        "histograms",
        "whole probe",
        "whole probe, histograms",
    }
    for name, row in results.items():
        assert math.isfinite(row["steady"]) and row["steady"] > 0, name
    # The whole probe contains each part, so its graph is larger than any.
    parts = ("activation statistics", "variable statistics", "histograms")
    assert all(results["whole probe"]["ops"] > results[p]["ops"] > 0 for p in parts)
