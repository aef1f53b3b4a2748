"""`bnscope summarize --json` run in-process, for tests that check findings."""

from __future__ import annotations

import io
import json
import os

from bnscope.cli import commands as cli


def summarize_json(logdir: str | os.PathLike) -> tuple[int, dict | None, str]:
    """Exit code, parsed JSON report (or `None`) and stderr of `summarize --json`."""
    out, err = io.StringIO(), io.StringIO()
    code = cli.summarize_command(
        os.fspath(logdir), as_json=True, stdout=out, stderr=err
    )
    text = out.getvalue()
    return code, json.loads(text) if text else None, err.getvalue()


def rules_found(report: dict) -> set[str]:
    """Rule ids of every finding in every run of a JSON report."""
    return {f["rule"] for run in report["runs"] for f in run["findings"]}
