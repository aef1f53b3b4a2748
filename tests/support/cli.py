"""The CLI commands run in-process at width 100, for tests of their output."""

from __future__ import annotations

import io

from bnscope.cli import commands as cli


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
