"""The rich report of `bnscope summarize`: layout, order, sparklines."""

from __future__ import annotations

import io

from bnscope.cli import commands as cli
from bnscope.cli.report import sparkline
from tests.support.cli import run_cli
from tests.support.synthetic_runs import SICK_RUNS, fine_tuning, mlp_bn, plain_mlp


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
    assert "WARN  dead_relu activation" in text  # rule and layer stay whole
    assert "  → lower the learning rate" in text
    assert "(too narrow for: dead/sat, BN drift)" in text
    layers = text.split("Layers")[1].split("(too narrow")[0]
    assert "grad norm" in layers and "act std" in layers
    assert "…" not in layers.replace("batch_norma…", "")  # names shorten, not values
    assert max(len(line) for line in text.splitlines()) <= 40


def _report(tmp_path, synthetic, *flags, width=80):
    synthetic.write(tmp_path / "run" / "bnscope")
    out, err = io.StringIO(), io.StringIO()
    code = cli.summarize_command(
        str(tmp_path / "run"), False, "never", out, err, width, "--verbose" in flags
    )
    assert code == 0 and err.getvalue() == ""
    return out.getvalue()


def _cause_with_consequences():
    """Raw inputs, and the dead ReLUs and stalled loss they likely cause."""
    synthetic = SICK_RUNS["unnormalized_input"]()
    synthetic.set_late("act_dead_frac", "activation", 0.8, start=0.4)
    synthetic.set_late("act_dead_frac", "activation_1", 0.8, start=0.4)
    synthetic.set("loss", "model", 2.3026, noise=0.001)
    return synthetic


def test_verdict_then_causes_then_consequences_at_width_80(tmp_path):
    out = _report(tmp_path, _cause_with_consequences())
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert (
        lines[2] == "verdict: 1 root cause: unnormalized_input (2 likely consequences)"
    )
    cause = out.index("WARN  unnormalized_input")
    assert cause < out.index("↳ WARN  dead_relu") and cause < out.index(
        "↳ WARN  not_learning"
    )
    assert "2 ReLU layers (activation, activation_1; depth 2–5)" in out
    assert "80% of the units of activation output 0" not in out  # --verbose


def test_verbose_shows_every_layer_and_every_hint(tmp_path):
    synthetic = plain_mlp()  # the ratio and a near-zero gradient share a hint
    synthetic.set("grad_var_norm", "dense_1:bias", 1e-9)
    quiet = _report(tmp_path / "a", synthetic)
    loud = _report(tmp_path / "b", synthetic, "--verbose")
    hint = "→ add BatchNormalization before the activations"
    assert quiet.count(hint) == 1 and loud.count(hint) == 2
    out = _report(tmp_path / "c", _cause_with_consequences(), "--verbose")
    assert "80% of the units of activation output 0" in out


def test_each_finding_names_its_fit(tmp_path):
    out = _report(tmp_path, fine_tuning())
    assert "fits: fit 1 (steps 0–499) · fit 2 (steps 500–1000)" in out
    assert "bn_mode_override · fit 2 · steps 500–1000" in out
    assert "bn_stat_drift · fit 1 · steps 0–450" in out


def test_a_large_model_shows_only_the_layers_findings_name(tmp_path):
    synthetic = plain_mlp(depth=50, activation="relu")
    for layer in synthetic.layers:
        synthetic.set("grad_norm", layer.name, 0.3, noise=0.1)
        for variable in ("kernel", "bias"):
            synthetic.set("grad_var_norm", f"{layer.name}:{variable}", 0.2)
    synthetic.set_late("act_dead_frac", "dense_10", 0.9, start=0.5)
    out = _report(tmp_path, synthetic)
    assert "47 more layers not shown (--verbose shows every layer)" in out
    table = out[out.index("Layers (depth order") :]
    assert "dense_10" in table and "dense_25" not in table
    assert "dense_25" in _report(tmp_path / "v", synthetic, "--verbose")
