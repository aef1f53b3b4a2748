"""The one-line messages of live findings, and where they are printed.

Each line is built once as styled segments; a terminal gets it through rich
(colours, `NO_COLOR` honoured by rich), anything else as plain text. Lines go
where Keras' own progress bar goes: stdout, or absl logging when
`keras.config.disable_interactive_logging()` is in force, and they never break the
bar: when a `verbose=1` bar line is still open, a terminal line first clears
it (the bar redraws itself below) and plain output starts a new line, as
Keras' `ModelCheckpoint` messages do.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

import keras
from absl import logging
from rich.console import Console
from rich.text import Text

from bnscope.analysis.rules import Finding

# The colours of bnscope/cli/theme.py, which recording/ may not import (a test
# keeps the two equal).
STYLES = {
    "error": "bold red",
    "warning": "bold yellow",
    "info": "cyan",
    "rule": "bold magenta",
    "muted": "dim",
    "hint": "green",
    "ok": "bold green",
}
SEVERITY_LABEL = {"error": "ERROR", "warning": "WARN", "info": "INFO"}
PREFIX = "bnscope: "
# Clears a half-drawn `verbose=1` progress bar line in a terminal.
_CLEAR_LINE = "\r\x1b[K"

Segments = list[tuple[str, str | None]]


def _where(finding: Finding) -> str:
    return finding.layer if finding.layer is not None else "the model"


def _since(finding: Finding) -> str:
    return f" at step {finding.step}" if finding.step is not None else ""


def _labelled(finding: Finding) -> Segments:
    """`bnscope: WARN rule`."""
    return [
        (PREFIX, None),
        (SEVERITY_LABEL[finding.severity], finding.severity),
        (" ", None),
        (finding.rule, "rule"),
    ]


def finding_segments(finding: Finding) -> Segments:
    """`bnscope: WARN rule at step N: message → hint`."""
    return [
        *_labelled(finding),
        (f"{_since(finding)}: {finding.message}", None),
        (f" → {finding.hint}", "hint"),
    ]


def returns_segments(finding: Finding) -> Segments:
    """`bnscope: WARN rule returns at step N: message`."""
    return [
        *_labelled(finding),
        (f" returns{_since(finding)}: {finding.message}", None),
    ]


def cleared_segments(finding: Finding, step: int) -> Segments:
    """`bnscope: cleared rule in layer at step N (open since step M)`."""
    since = f" (open since step {finding.step})" if finding.step is not None else ""
    return [
        (PREFIX, None),
        ("cleared", "ok"),
        (" ", None),
        (finding.rule, "rule"),
        (f" in {_where(finding)} at step {step}{since}", "muted"),
    ]


def halt_reason(finding: Finding, step: int, halt_on: Iterable[str]) -> str:
    """`at step N: rule in layer since step M (halt_on=...)`."""
    since = f" since step {finding.step}" if finding.step is not None else ""
    return (
        f"at step {step}: {finding.rule} in {_where(finding)}{since} "
        f"(halt_on={', '.join(halt_on)})"
    )


def halt_segments(finding: Finding, step: int, halt_on: Iterable[str]) -> Segments:
    """`bnscope: stopping training at step N: rule in layer since step M (...)`."""
    return [
        (PREFIX, None),
        ("stopping training", "error"),
        (f" {halt_reason(finding, step, halt_on)}", None),
    ]


def plain(segments: Segments) -> str:
    return "".join(text for text, _ in segments)


def rich_text(segments: Segments) -> Text:
    return Text.assemble(*((text, STYLES.get(style, "")) for text, style in segments))


class LinePrinter:
    """Prints lines beside Keras' progress bar: rich in a terminal, plain otherwise.

    The stream is looked up at each line (`sys.stdout`, as Keras does), so
    redirected or captured output is honoured.
    """

    def __init__(self):
        self._consoles: dict[int, Console] = {}

    def print(self, segments: Segments, bar_open: bool = False) -> None:
        """Prints one line.

        Args:
            segments: The line, as built by the `*_segments` functions.
            bar_open: Whether a `verbose=1` progress-bar line is half drawn.
        """
        if not keras.config.is_interactive_logging_enabled():
            logging.info(plain(segments))
            return
        stream = sys.stdout
        console = self._console(stream)
        if console.is_terminal and not console.is_jupyter:
            if bar_open:
                stream.write(_CLEAR_LINE)
            console.print(rich_text(segments), soft_wrap=True)
        else:
            _write(stream, ("\n" if bar_open else "") + plain(segments) + "\n")
        stream.flush()

    def _console(self, stream) -> Console:
        key = id(stream)
        console = self._consoles.get(key)
        if console is None or console.file is not stream:
            console = self._consoles[key] = Console(file=stream, highlight=False)
        return console


def _write(stream, text: str) -> None:
    try:
        stream.write(text)
    except UnicodeEncodeError:  # e.g. an ASCII-only stdout
        ascii_text = text.replace("→", "->").replace("×", "x").replace("–", "-")
        encoding = getattr(stream, "encoding", None) or "utf-8"
        stream.write(ascii_text.encode(encoding, "replace").decode(encoding))
