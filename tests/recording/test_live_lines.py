"""The one-line live messages: their words, and how a terminal or a pipe gets them."""

from __future__ import annotations

import io
import re

import keras

from bnscope.analysis.rules import Finding
from bnscope.cli.theme import SEVERITY_LABEL, SEVERITY_STYLE, THEME
from bnscope.recording import live_lines

VANISHING = Finding(
    rule="vanishing_gradient",
    severity="warning",
    layer="dense",
    step=120,
    last_step=900,
    value=3e-6,
    threshold=1e-3,
    message="gradient of first layer dense is 3e-06x that of last layer dense_4",
    hint="add BatchNormalization before the activations",
)
NAN = Finding(
    "nonfinite", "error", None, 57, 57, None, 0.0, "NaN/Inf in the loss", "clip"
)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_words_of_each_line():
    plain = live_lines.plain
    assert plain(live_lines.finding_segments(VANISHING)) == (
        "bnscope: WARN vanishing_gradient at step 120: gradient of first layer dense "
        "is 3e-06x that of last layer dense_4 → add BatchNormalization before the "
        "activations"
    )
    assert plain(live_lines.returns_segments(VANISHING)) == (
        "bnscope: WARN vanishing_gradient returns at step 120: gradient of first "
        "layer dense is 3e-06x that of last layer dense_4"
    )
    assert plain(live_lines.cleared_segments(VANISHING, 300)) == (
        "bnscope: cleared vanishing_gradient in dense at step 300 (open since step 120)"
    )
    assert plain(live_lines.halt_segments(NAN, 58, ("nonfinite", "error"))) == (
        "bnscope: stopping training at step 58: nonfinite in the model since step 57 "
        "(halt_on=nonfinite, error)"
    )
    assert "\n" not in plain(live_lines.finding_segments(NAN))


def test_styles_are_the_cli_theme():
    for name, style in live_lines.STYLES.items():
        assert str(THEME.styles[f"bnscope.{name}"]) == style, name
    for severity, style in SEVERITY_STYLE.items():
        assert live_lines.STYLES[severity] == str(THEME.styles[style])
    assert live_lines.SEVERITY_LABEL == SEVERITY_LABEL


def test_plain_when_not_a_terminal(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr("sys.stdout", stream)
    printer = live_lines.LinePrinter()
    printer.print(live_lines.finding_segments(VANISHING))
    printer.print(live_lines.cleared_segments(VANISHING, 300), bar_open=True)
    text = stream.getvalue()
    assert "\x1b" not in text
    first, second = text.split("\n\n")  # an open bar line is ended first
    assert first == live_lines.plain(live_lines.finding_segments(VANISHING))
    assert (
        second == live_lines.plain(live_lines.cleared_segments(VANISHING, 300)) + "\n"
    )


def test_rich_in_a_terminal_clearing_an_open_progress_bar(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("TERM", raising=False)
    stream = Terminal()
    monkeypatch.setattr("sys.stdout", stream)
    live_lines.LinePrinter().print(live_lines.finding_segments(NAN), bar_open=True)
    text = stream.getvalue()
    assert text.startswith("\r\x1b[K")  # the half-drawn bar line is cleared
    assert "\x1b[1;31mERROR\x1b[0m" in text  # bold red, as the CLI shows errors
    assert text.endswith("\n") and text.count("\n") == 1


def test_no_color_in_a_terminal(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    stream = Terminal()
    monkeypatch.setattr("sys.stdout", stream)
    live_lines.LinePrinter().print(live_lines.finding_segments(NAN))
    text = stream.getvalue()
    assert "\x1b[31m" not in text and "\x1b[1;31m" not in text  # no colour...
    assert "bnscope: ERROR nonfinite at step 57" in _strip(text)  # ...same words


def test_an_ascii_only_stream_gets_ascii_arrows(monkeypatch):
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii")
    monkeypatch.setattr("sys.stdout", stream)
    live_lines.LinePrinter().print(live_lines.finding_segments(VANISHING))
    stream.flush()
    assert b" -> add BatchNormalization" in raw.getvalue()


def test_absl_logging_when_keras_interactive_logging_is_off(monkeypatch):
    logged = []
    monkeypatch.setattr(live_lines.logging, "info", logged.append)
    stream = io.StringIO()
    monkeypatch.setattr("sys.stdout", stream)
    keras.config.disable_interactive_logging()
    try:
        live_lines.LinePrinter().print(live_lines.finding_segments(NAN))
    finally:
        keras.config.enable_interactive_logging()
    assert logged == [live_lines.plain(live_lines.finding_segments(NAN))]
    assert stream.getvalue() == ""


def _strip(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)
