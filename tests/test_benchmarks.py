"""The benchmark scripts run: each `--quick` mode, end to end."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
    assert '"rows": 80' in done.stdout  # 40 layers, two runs side by side
