"""Tests for `bnscope summarize` and the CLI: report text, JSON, exit codes, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bnscope import __version__
from bnscope.analysis import discovery, reader
from bnscope.cli import commands as cli
from tests.support.cli import assert_one_line_error, run_cli
from tests.support.synthetic_runs import SICK_RUNS, mlp_bn, write_tensorboard_only

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


def test_json_v1(logs):
    code, out, _ = run_cli("summarize", str(logs), "--json")
    assert code == 1
    data = json.loads(out)
    assert data["version"] == 1
    assert [run["run"] for run in data["runs"]] == ["healthy/bnscope", "sick/bnscope"]
    healthy, sick = data["runs"]
    assert set(healthy) >= {"run", "steps", "layers", "findings", "notes"}
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
        # Added within version 1: per-layer detail, fits, the likely cause.
        "layers": [
            {
                "layer": "dense_1",
                "step": 600,
                "last_step": 1000,
                "value": 64.0,
                "message": finding["message"],
            }
        ],
        "segments": [],
        "caused_by": None,
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

    monkeypatch.setattr(discovery, "_list_dir", denied)
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

    monkeypatch.setattr("bnscope.analysis.summary.evaluate", broken)
    monkeypatch.delenv("BNSCOPE_DEBUG", raising=False)
    assert cli.main(["summarize", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "RuntimeError: boom" in err
