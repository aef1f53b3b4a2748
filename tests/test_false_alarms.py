"""`benchmarks/false_alarms.py --quick`: the smallest stock model stays quiet.

The full script trains six `keras.applications` models (minutes each on 2
cores); `--quick` trains the keras.io Transformer block, whose
MultiHeadAttention key bias used to be reported as a vanishing gradient.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bnscope.analysis.reader import read_logdir
from bnscope.analysis.summary import summarize

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "false_alarms.py"


def test_quick_run_has_no_false_alarm(tmp_path):
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--logdir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    assert "OK: 0 finding(s) beyond an honest bn_ema_not_converged" in done.stdout
    (run,) = read_logdir(str(tmp_path)).runs
    key = next(layer for layer in run.layers if layer.role == "attention_key")
    assert run.series("grad_var_norm", f"{key.name}:bias").values.max() < 1e-6
    assert summarize(run).findings == ()
