"""Named styles of bnscope's terminal output; colours live here and nowhere else."""

from __future__ import annotations

import shutil
import sys
from typing import IO

from rich.console import Console
from rich.theme import Theme

THEME = Theme(
    {
        "bnscope.error": "bold red",
        "bnscope.warning": "bold yellow",
        "bnscope.info": "cyan",
        "bnscope.ok": "bold green",
        "bnscope.title": "bold",
        "bnscope.rule": "bold magenta",
        "bnscope.layer": "bold",
        "bnscope.muted": "dim",
        "bnscope.hint": "green",
        "bnscope.spark": "blue",
        "bnscope.spark.bad": "red",
        "bnscope.note": "magenta",
        "bnscope.a": "cyan",
        "bnscope.b": "yellow",
    }
)

SEVERITY_STYLE = {
    "error": "bnscope.error",
    "warning": "bnscope.warning",
    "info": "bnscope.info",
}
# Labels readable without colour (NO_COLOR, pipes).
SEVERITY_LABEL = {"error": "ERROR", "warning": "WARN", "info": "INFO"}


# Below this many columns the report is still laid out for this many (the
# terminal wraps the lines): bnscope's choice, the narrowest width at which a
# finding's severity, rule id and layer fit on one line ("WARN  " plus the
# longest rule id, 22 characters, plus a layer name) and two metric columns
# of the layer table fit beside a layer name. `COLUMNS=0` is taken as unset.
MIN_WIDTH = 40

# The glyphs bnscope draws, and what they become on a stream that cannot
# encode them (`PYTHONIOENCODING=ascii`, `LANG=C`): one character for one, so
# tables stay aligned. Anything else unencodable (a layer named in Cyrillic,
# rich's own ellipsis) becomes "?"; `--json` output is always ASCII.
ASCII_GLYPHS = {
    "✓": "+",
    "✗": "x",
    "→": ">",
    "–": "-",
    "—": "-",
    "·": "|",
    "…": "~",
    "≈": "~",
    "▁": "_",
    "▂": ".",
    "▃": "-",
    "▄": "=",
    "▅": "+",
    "▆": "*",
    "▇": "#",
    "█": "@",
}


class _EncodingSafeFile:
    """Writes text a stream's encoding cannot hold as ASCII glyphs, then "?"."""

    def __init__(self, stream: IO[str], encoding: str):
        self._stream = stream
        self._encoding = encoding
        self._table = str.maketrans(
            {
                glyph: ascii_glyph
                for glyph, ascii_glyph in ASCII_GLYPHS.items()
                if not _encodes(glyph, encoding)
            }
        )

    def write(self, text: str) -> int:
        text = text.translate(self._table)
        text = text.encode(self._encoding, "replace").decode(self._encoding)
        return self._stream.write(text)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def _encodes(text: str, encoding: str) -> bool:
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


def _encoding_safe(stream: IO[str]) -> IO[str]:
    encoding = getattr(stream, "encoding", None)
    if not encoding:
        return stream  # in-memory text (io.StringIO): anything goes
    try:
        if _encodes("".join(ASCII_GLYPHS), encoding):
            return stream
    except LookupError:
        return stream
    return _EncodingSafeFile(stream, encoding)


class _Console(Console):
    def on_broken_pipe(self) -> None:
        # rich exits with status 1 here, before bnscope can answer: the reader
        # of a pipe leaving early (`| head`, `| true`) is bnscope's to handle,
        # and its exit code still reports the findings.
        self.quiet = True
        raise BrokenPipeError


def make_console(file: IO[str] | None = None, width: int | None = None) -> Console:
    """A console with bnscope's theme, safe for any terminal width and encoding.

    Rich already honours `NO_COLOR`, `TERM=dumb` and non-TTY output (no colour
    codes when piped). The layout is never narrower than `MIN_WIDTH`; glyphs
    the output encoding cannot hold are written as ASCII (`ASCII_GLYPHS`); a
    closed pipe raises `BrokenPipeError` instead of exiting.

    Args:
        file: Where to write. Defaults to `None` (stdout).
        width: Columns to lay out for. Defaults to `None` (the terminal's, or
            80 when not a terminal).
    """
    stream = _encoding_safe(file if file is not None else sys.stdout)
    console = _Console(file=stream, width=width, theme=THEME, highlight=False)
    if console.width <= 0:  # `COLUMNS=0`: as if unset (the terminal's, or 80)
        console.width = shutil.get_terminal_size().columns
    if console.width < MIN_WIDTH:
        console.width = MIN_WIDTH
    return console
