"""Named styles of bnscope's terminal output; colours live here and nowhere else."""

from __future__ import annotations

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


def make_console(file: IO[str] | None = None, width: int | None = None) -> Console:
    """A console with bnscope's theme.

    Rich already honours `NO_COLOR`, `TERM=dumb` and non-TTY output (no colour
    codes when piped); `width` fixes the layout, e.g. for tests.

    Args:
        file: Where to write. Defaults to `None` (stdout).
        width: Columns to lay out for. Defaults to `None` (the terminal's, or
            80 when not a terminal).
    """
    return Console(file=file, width=width, theme=THEME, highlight=False)
