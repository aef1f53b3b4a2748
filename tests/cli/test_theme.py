"""Colours come from the theme, and none without a terminal or with NO_COLOR."""

from __future__ import annotations

import io

from rich.console import Console

from bnscope.analysis import reader
from bnscope.analysis.summary import summarize
from bnscope.cli.report import render_reports
from bnscope.cli.theme import THEME


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
