"""Tests for `bnscope summarize` and the CLI: report text, JSON, exit codes, bad input."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest
from rich.console import Console

from bnscope import __version__, cli, reader
from bnscope.report import render_reports, sparkline, summarize
from bnscope.theme import THEME
from tests.synthetic_runs import SICK_RUNS, mlp_bn, write_tensorboard_only

BNSCOPE = os.path.join(os.path.dirname(sys.executable), "bnscope")
UNICODE_NAMES = (
    "плотный",
    "批量归一化",
    "activación",
    "dense_é",
    "bn_β",
    "act_β",
    "dropout_ü",
    "出力",
)


def run_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    command, *rest = args
    if command == "summarize":
        as_json = "--json" in rest
        fail_on = rest[rest.index("--fail-on") + 1] if "--fail-on" in rest else "error"
        code = cli.summarize_command(rest[0], as_json, fail_on, out, err, width=100)
    else:
        code = cli.compare_command(rest[0], rest[1], "--json" in rest, out, err, 100)
    return code, out.getvalue(), err.getvalue()


def assert_one_line_error(code: int, err: str, fragment: str) -> None:
    assert code == 2
    assert err.startswith("bnscope: error: ")
    assert err.count("\n") == 1, err
    assert fragment in err
    assert "Traceback" not in err


@pytest.fixture
def logs(tmp_path):
    mlp_bn().write(tmp_path / "healthy" / "bnscope")
    SICK_RUNS["nonfinite"]().write(tmp_path / "sick" / "bnscope")
    return tmp_path


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


def test_no_color_terminal_has_no_colour_codes(logs, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    buffer = io.StringIO()
    console = Console(file=buffer, width=100, force_terminal=True, theme=THEME)
    reports = [summarize(run) for run in reader.read_logdir(str(logs)).runs]
    console.print(render_reports(reports))
    text = buffer.getvalue()
    assert "\x1b[31" not in text and "\x1b[33" not in text  # no red, no yellow
    assert "ERROR" in text  # severity still readable without colour


def test_colour_terminal_uses_theme(logs, monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=100,
        force_terminal=True,
        color_system="standard",
        theme=THEME,
    )
    reports = [summarize(run) for run in reader.read_logdir(str(logs)).runs]
    console.print(render_reports(reports))
    assert "\x1b[1;31m" in buffer.getvalue()  # bnscope.error is bold red


def test_json_v1(logs):
    code, out, _ = run_cli("summarize", str(logs), "--json")
    assert code == 1
    data = json.loads(out)
    assert data["version"] == 1
    assert [run["run"] for run in data["runs"]] == ["healthy/bnscope", "sick/bnscope"]
    healthy, sick = data["runs"]
    assert set(healthy) == {"run", "steps", "layers", "findings", "notes"}
    assert healthy["steps"] == [0, 1000] and healthy["findings"] == []
    assert healthy["layers"][0] == "dense"
    (finding,) = sick["findings"]
    assert finding == {
        "rule": "nonfinite",
        "severity": "error",
        "layer": "dense_1",
        "step": 600,
        "last_step": 1000,
        "value": 64.0,
        "threshold": 0.0,
        "message": finding["message"],
        "hint": finding["hint"],
    }


@pytest.mark.parametrize(
    ("sick", "fail_on", "expected"),
    [
        (None, "error", 0),
        ("nonfinite", "error", 1),
        ("nonfinite", "never", 0),
        ("dead_relu", "error", 0),
        ("dead_relu", "warning", 1),
        ("bias_before_bn", "warning", 0),
        ("bias_before_bn", "info", 1),
    ],
)
def test_fail_on_levels(tmp_path, sick, fail_on, expected):
    (SICK_RUNS[sick]() if sick else mlp_bn()).write(tmp_path / "bnscope")
    code, _, _ = run_cli("summarize", str(tmp_path), "--fail-on", fail_on)
    assert code == expected


def test_console_script_exit_codes(logs, tmp_path):
    done = subprocess.run(
        [BNSCOPE, "summarize", str(logs / "healthy")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "✓ healthy" in done.stdout and "\x1b[" not in done.stdout
    done = subprocess.run(
        [BNSCOPE, "summarize", str(logs)], capture_output=True, text=True
    )
    assert done.returncode == 1
    done = subprocess.run(
        [BNSCOPE, "summarize", str(tmp_path / "nope")], capture_output=True, text=True
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == f"bnscope: error: no such directory: {tmp_path / 'nope'}\n"
    done = subprocess.run(
        [sys.executable, "-m", "bnscope", "--version"], capture_output=True, text=True
    )
    assert done.stdout.strip() == f"bnscope {__version__}"


# -- Bad input: one clear line, no traceback, exit 2 when nothing usable remains ----


def test_nonexistent_path(tmp_path):
    assert_one_line_error(
        *run_cli("summarize", str(tmp_path / "missing"))[::2], "no such directory"
    )


def test_file_instead_of_directory(tmp_path):
    path = tmp_path / "events.out.tfevents.1"
    path.write_bytes(b"")
    assert_one_line_error(*run_cli("summarize", str(path))[::2], "not a directory")


def test_empty_directory(tmp_path):
    assert_one_line_error(
        *run_cli("summarize", str(tmp_path))[::2], "no TensorBoard event files"
    )


def test_tensorboard_logs_without_bnscope_data(tmp_path):
    write_tensorboard_only(tmp_path / "train")
    write_tensorboard_only(tmp_path / "validation")
    code, _, err = run_cli("summarize", str(tmp_path))
    assert_one_line_error(code, err, "no bnscope data below")
    assert "train, validation" in err


def test_permission_denied(tmp_path, monkeypatch):
    def denied(path):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(reader, "_list_dir", denied)
    assert_one_line_error(
        *run_cli("summarize", str(tmp_path))[::2], "permission denied"
    )


def test_unreadable_event_file_alone(tmp_path, monkeypatch):
    mlp_bn().write(tmp_path / "bnscope")

    def denied(path):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(reader, "_read_bytes", denied)
    code, _, err = run_cli("summarize", str(tmp_path))
    assert_one_line_error(code, err, "permission denied")


def test_zero_length_file_alone(tmp_path):
    (tmp_path / "events.out.tfevents.1700000000.host").write_bytes(b"")
    assert_one_line_error(*run_cli("summarize", str(tmp_path))[::2], "no bnscope data")


def test_garbage_file_named_like_an_event_file(tmp_path):
    (tmp_path / "events.out.tfevents.1700000000.host").write_bytes(
        b"not a record" * 100
    )
    code, _, err = run_cli("summarize", str(tmp_path))
    assert_one_line_error(code, err, "no readable records")


def test_flipped_byte_is_summarized_with_a_note(tmp_path):
    (path,) = mlp_bn().write(tmp_path / "bnscope")
    with open(path, "r+b") as file:
        data = bytearray(file.read())
        data[len(data) // 2] ^= 0x55
        file.seek(0)
        file.write(data)
    code, out, err = run_cli("summarize", str(tmp_path))
    assert code == 0 and err == ""
    assert "note: skipped 1 corrupt record" in out
    data = json.loads(run_cli("summarize", str(tmp_path), "--json")[1])
    assert "skipped 1 corrupt record" in data["runs"][0]["notes"][0]


def test_truncated_file_is_summarized_with_a_note(tmp_path):
    (path,) = mlp_bn().write(tmp_path / "bnscope")
    os.truncate(path, os.path.getsize(path) - 7)
    code, out, _ = run_cli("summarize", str(tmp_path))
    assert code == 0
    assert "incomplete last record" in out and "steps 0–950" in out


def test_zero_length_file_beside_data_is_a_note(tmp_path):
    mlp_bn().write(tmp_path / "bnscope")
    (tmp_path / "bnscope" / "events.out.tfevents.1800000000.host").write_bytes(b"")
    code, out, _ = run_cli("summarize", str(tmp_path))
    assert code == 0 and "note: empty file" in out


def test_unicode_layer_names(tmp_path):
    synthetic = mlp_bn(names=UNICODE_NAMES)
    synthetic.set_late("act_dead_frac", "activación", 0.9, start=0.3)
    synthetic.write(tmp_path / "bnscope")
    code, out, err = run_cli("summarize", str(tmp_path), "--fail-on", "warning")
    assert code == 1 and err == ""
    assert "批量归一化" in out and "activación" in out
    data = json.loads(run_cli("summarize", str(tmp_path), "--json")[1])
    assert data["runs"][0]["layers"] == list(UNICODE_NAMES)
    assert data["runs"][0]["findings"][0]["layer"] == "activación"


def test_unexpected_errors_are_one_line(tmp_path, monkeypatch, capsys):
    mlp_bn().write(tmp_path / "bnscope")

    def broken(run):
        raise RuntimeError("boom")

    monkeypatch.setattr("bnscope.report.evaluate", broken)
    monkeypatch.delenv("BNSCOPE_DEBUG", raising=False)
    assert cli.main(["summarize", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "RuntimeError: boom" in err


def test_sparkline():
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert sparkline([1, 1, 1]) == "▁▁▁"
    assert sparkline([1e-6, 1e-3, 1.0], log=True) == "▁▅█"
    assert sparkline([1.0, float("nan")]) == "▁!"
    assert len(sparkline(range(100), width=10)) == 10
    assert sparkline([]) == ""
