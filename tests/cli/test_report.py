"""The rich report of `bnscope summarize`: layout, order, sparklines."""

from __future__ import annotations

import io

from bnscope.cli.report import sparkline
from tests.support.cli import run_cli
from tests.support.synthetic_runs import mlp_bn


def test_report_text_at_width_100(logs):
    code, out, err = run_cli("summarize", str(logs))
    assert code == 1 and err == ""
    assert "run healthy/bnscope" in out and "✓ healthy" in out
    assert "run sick/bnscope" in out and "✗ 1 error" in out
    assert "ERROR" in out and "nonfinite" in out and "600–1000" in out
    assert "→ lower the learning rate" in out
    assert "batch_normalization_1" in out  # layer table
    assert any(char in out for char in "▁▂▃▄▅▆▇█")
    assert "!" in out  # the NaN gradient shows in its sparkline
    assert max(len(line) for line in out.splitlines()) <= 100
    assert "\x1b[" not in out  # not a terminal: no escape codes


def test_findings_come_before_layers_and_by_severity(tmp_path):
    synthetic = mlp_bn(bias_before_bn=True)
    synthetic.set_late("grad_nonfinite", "dense_1", 3.0, start=0.8)
    synthetic.write(tmp_path / "bnscope")
    _, out, _ = run_cli("summarize", str(tmp_path))
    assert out.index("ERROR") < out.index("INFO") < out.index("Layers")


def test_sparkline():
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert sparkline([1, 1, 1]) == "▁▁▁"
    assert sparkline([1e-6, 1e-3, 1.0], log=True) == "▁▅█"
    assert sparkline([1.0, float("nan")]) == "▁!"
    assert len(sparkline(range(100), width=10)) == 10
    assert sparkline([]) == ""


def test_narrow_console_stacks_findings_and_drops_whole_columns(tmp_path):
    synthetic = mlp_bn()
    synthetic.set_late("act_dead_frac", "activation", 0.9, start=0.3)
    synthetic.write(tmp_path / "bnscope")
    from bnscope.analysis.reader import read_logdir
    from bnscope.analysis.summary import summarize
    from bnscope.cli.report import render_reports
    from bnscope.cli.theme import make_console

    out = io.StringIO()
    reports = [summarize(run) for run in read_logdir(str(tmp_path)).runs]
    make_console(out, width=40).print(render_reports(reports))
    text = out.getvalue()
    assert "WARN  dead_relu  activation" in text  # one line, nothing cut
    assert "  → lower the learning rate" in text
    assert "(too narrow for: dead/sat, BN drift)" in text
    layers = text.split("Layers")[1].split("(too narrow")[0]
    assert "grad norm" in layers and "act std" in layers
    assert "…" not in layers.replace("batch_norma…", "")  # names shorten, not values
    assert max(len(line) for line in text.splitlines()) <= 40
