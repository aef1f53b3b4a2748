"""Tests for `bnscope summarize` and the CLI: report text, JSON, exit codes, bad input."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


# -- Malformed metadata (issue 14) --------------------------------------------------


def _with_metadata(tmp_path, edit, synthetic=None) -> str:
    synthetic = synthetic or mlp_bn()
    data = synthetic.metadata().to_json()
    edit(data)
    synthetic.write(tmp_path / "bnscope", metadata_text=json.dumps(data))
    return str(tmp_path)


def test_metadata_with_a_wrong_type_is_summarized_with_a_note(tmp_path):
    """Issue 14: `inputs_from: 5` failed the whole summarize with a TypeError.

    Fixed on main, before this test, by the field-by-field parsing of
    `bnscope/schema.py`: the reader it replaced ran
    `tuple(str(n) for n in inputs_from)`. What remained (deeply nested JSON)
    is the next test.
    """

    def edit(data):
        data["layers"][1]["inputs_from"] = 5

    code, out, err = run_cli("summarize", _with_metadata(tmp_path, edit), "--json")
    assert code == 0 and err == ""
    (run,) = json.loads(out)["runs"]
    assert run["layers"][1] == "batch_normalization"
    assert run["notes"] == [
        "malformed metadata ignored: metadata.layers[1].inputs_from=5"
    ]


def _paths(value, path=()):
    """Every path into a JSON tree, containers included."""
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*path, index))


_WRONG = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
_RUNS = sorted(SICK_RUNS)


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_any_metadata_field_of_any_type_never_fails_a_summary(tmp_path_factory, data):
    """Every rule reads the metadata: any field replaced by any JSON value."""
    synthetic = SICK_RUNS[data.draw(st.sampled_from(_RUNS))]()
    tree = synthetic.metadata().to_json()
    paths = [p for p in _paths(tree) if p]
    edits = data.draw(
        st.lists(st.tuples(st.sampled_from(paths), _WRONG), min_size=1, max_size=3)
    )

    def edit(tree):
        for path, value in edits:
            # An earlier edit may have replaced a parent of this path.
            with contextlib.suppress(KeyError, IndexError, TypeError):
                node = tree
                for key in path[:-1]:
                    node = node[key]
                node[path[-1]] = value

    logdir = _with_metadata(tmp_path_factory.mktemp("meta"), edit, synthetic)
    code, out, err = run_cli("summarize", logdir, "--json", "--fail-on", "never")
    assert code == 0 and err == ""
    assert json.loads(out)["runs"][0]["steps"] == [0, 1000]


@pytest.mark.parametrize(
    ("text", "note"),
    [
        ("[" * 100_000 + "]" * 100_000, "not valid JSON"),  # RecursionError
        ('"a string"', "not a JSON object"),
        ("{", "not valid JSON"),
    ],
)
def test_metadata_that_is_not_an_object_is_a_note(tmp_path, text, note):
    """Deeply nested JSON raised RecursionError out of summarize (seen failing)."""
    mlp_bn().write(tmp_path / "bnscope", metadata_text=text)
    code, out, err = run_cli("summarize", str(tmp_path), "--json")
    assert code == 0 and err == ""
    assert note in json.loads(out)["runs"][0]["notes"][0]


# -- Hostile environments: pipes, widths, encodings, paths (issue 14) ---------------


def _bnscope(*args, env=None, **popen) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bnscope", *args],
        capture_output=True,
        env=environment,
        timeout=120,
        **popen,
    )


@pytest.fixture(scope="module")
def warn_logs(tmp_path_factory):
    """A run with a `dead_relu` warning, layers named in several scripts."""
    root = tmp_path_factory.mktemp("warn")
    synthetic = mlp_bn(names=UNICODE_NAMES)
    synthetic.set_late("act_dead_frac", "activación", 0.9, start=0.3)
    synthetic.write(root / "bnscope")
    return root


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (("--fail-on", "warning"), 1),
        (("--fail-on", "never"), 0),
        (("--json", "--fail-on", "warning"), 1),
    ],
)
def test_a_closed_pipe_keeps_the_exit_code_and_says_nothing(warn_logs, extra, expected):
    """Issue 14: `summarize ... --fail-on never | true` exited 1 in silence.

    rich's `Console.on_broken_pipe` raised `SystemExit(1)` first (seen
    failing). The reader of the pipe is gone before bnscope writes: its end
    is closed right after the start.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "bnscope", "summarize", str(warn_logs), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    process.stdout.close()
    _, err = process.communicate(timeout=120)
    assert (process.returncode, err.decode()) == (expected, "")


@pytest.mark.parametrize("columns", ["0", "1", "20", "39", "-5", "abc", "300"])
def test_any_columns_gives_a_readable_report(warn_logs, columns):
    """Issue 14: `COLUMNS=0` printed nothing; at 20, `WARN` became `…`.

    The message and hint column disappeared too (both seen failing).
    """
    done = _bnscope(
        "summarize", str(warn_logs), "--fail-on", "never", env={"COLUMNS": columns}
    )
    out = done.stdout.decode()
    assert done.returncode == 0 and done.stderr == b""
    assert "WARN" in out and "dead_relu" in out
    words = " ".join(out.split())  # the text may wrap anywhere
    assert "dead ReLUs" in words and "lower the learning rate" in words
    # Not a positive number: as if unset (80 without a terminal); never < 40.
    width = max(int(columns) if columns.isdigit() and columns != "0" else 80, 40)
    assert max(len(line) for line in out.splitlines()) <= width


@pytest.mark.parametrize("encoding", ["ascii", "latin-1", "cp1252", "utf-8"])
def test_any_output_encoding_prints_the_report(warn_logs, encoding):
    """Issue 14: `PYTHONIOENCODING=ascii` gave "unexpected UnicodeEncodeError".

    bnscope's glyphs degrade to ASCII and names the encoding cannot hold to
    "?" (seen failing for ascii and latin-1).
    """
    done = _bnscope(
        "summarize",
        str(warn_logs),
        "--fail-on",
        "warning",
        env={"PYTHONIOENCODING": encoding},
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr == b""
    out = done.stdout.decode(encoding)
    assert "WARN" in out and "dead_relu" in out and "lower the learning rate" in out
    if encoding == "ascii":
        assert "activaci?n" in out and "> lower the learning rate" in out
        assert "steps 0-1000 | 21 probes" in out
    if encoding == "utf-8":
        assert "activación" in out and "→ lower" in out
    json_out = _bnscope(
        "summarize", str(warn_logs), "--json", env={"PYTHONIOENCODING": encoding}
    )
    data = json.loads(json_out.stdout)
    assert data["runs"][0]["layers"] == list(UNICODE_NAMES)


@pytest.mark.parametrize(
    "env",
    [
        {"LC_ALL": "C", "LANG": "C"},
        {"NO_COLOR": "1"},
        {"TERM": "dumb"},
        {"FORCE_COLOR": "1"},
    ],
)
def test_terminal_variables(warn_logs, env):
    done = _bnscope("summarize", str(warn_logs), "--fail-on", "never", env=env)
    assert done.returncode == 0 and done.stderr == b""
    assert b"dead_relu" in done.stdout
    colour = b"\x1b[" in done.stdout
    assert colour == ("FORCE_COLOR" in env)


def test_names_with_control_characters_and_bytes_that_are_not_utf8(tmp_path):
    # Directory and file names are bytes on POSIX: a newline, an escape code
    # and invalid UTF-8 must neither split a one-line error nor crash.
    root = os.fsencode(tmp_path)
    odd = root + b"/run \n\x1b[31m\xff"
    os.makedirs(odd)
    with open(odd + b"/events.out.tfevents.1.\n\xfe", "wb") as file:
        file.write(b"not a record" * 10)
    done = _bnscope("summarize", tmp_path)
    err = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 2 and err.count("\n") == 1, err
    assert err.startswith("bnscope: error: no bnscope data below")
    assert "\\x0a" in err and "\x1b" not in err
    mlp_bn().write(os.fsdecode(odd))
    done = _bnscope("summarize", tmp_path, "--fail-on", "never")
    assert done.returncode == 0 and done.stderr == b""
    assert b"\x1b" not in done.stdout and b"note: no readable records" in done.stdout
    data = json.loads(_bnscope("summarize", tmp_path, "--json").stdout)
    assert data["runs"][0]["run"] == os.fsdecode(b"run \n\x1b[31m\xff")


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("/dev/null", "not a directory"),
        ("/nonexistent/" + "x" * 5000, "no such directory"),
        ("", "no such directory"),
    ],
)
def test_unusable_logdir_paths(path, fragment):
    done = _bnscope("summarize", path)
    err = done.stderr.decode()
    assert done.returncode == 2 and err.count("\n") == 1 and fragment in err, err


def test_a_logdir_named_like_an_option(tmp_path, warn_logs):
    os.symlink(warn_logs, tmp_path / "-logs")
    done = _bnscope("summarize", "--fail-on", "never", "--", "-logs", cwd=tmp_path)
    assert done.returncode == 0 and b"dead_relu" in done.stdout
