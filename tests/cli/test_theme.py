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


def test_console_is_never_laid_out_narrower_than_the_minimum(monkeypatch):
    from bnscope.cli.theme import MIN_WIDTH, make_console

    assert make_console(io.StringIO(), width=12).width == MIN_WIDTH
    monkeypatch.setenv("COLUMNS", "0")  # as if unset
    assert make_console(io.StringIO()).width == 80
    assert make_console(io.StringIO(), width=100).width == 100


def test_glyphs_an_encoding_cannot_hold_become_ascii():
    from bnscope.cli.theme import make_console

    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii")
    console = make_console(stream, width=60)
    console.print("✓ healthy · steps 0–9 → ▁▄█ плотный")
    stream.flush()
    assert (
        raw.getvalue().decode("ascii").strip() == "+ healthy | steps 0-9 > _=@ ???????"
    )


def test_latin1_keeps_the_glyphs_it_can_encode():
    from bnscope.cli.theme import make_console

    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="latin-1")
    make_console(stream, width=60).print("✓ 0–9 · dense_é")
    stream.flush()
    assert raw.getvalue().decode("latin-1").strip() == "+ 0-9 · dense_é"


def test_a_closed_pipe_raises_broken_pipe_instead_of_exiting():
    from bnscope.cli.theme import make_console

    class ClosedPipe(io.StringIO):
        def write(self, text):
            raise BrokenPipeError

    console = make_console(ClosedPipe(), width=60)
    try:
        console.print("report")
    except BrokenPipeError:
        pass
    else:
        raise AssertionError("no BrokenPipeError")
    assert console.quiet
