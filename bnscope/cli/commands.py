"""`bnscope` command line: `summarize`, `compare`, `demo`.

A thin layer: parse arguments, read, apply rules, print. It never imports
TensorFlow or Keras (only `bnscope demo` does, lazily), and reports bad input
in one line on stderr with exit code 2.

Exit codes: 0 when no finding reaches `--fail-on` (default `error`), 1 when
one does, 2 when the input cannot be used.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import IO

from bnscope._version import __version__

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2


class UsageError(Exception):
    """Bad input: printed as one line, exit code 2."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bnscope",
        description=(
            "Per-layer training diagnostics for Keras: read what the BNScope "
            "callback recorded, without TensorFlow."
        ),
    )
    parser.add_argument("--version", action="version", version=f"bnscope {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    summarize = commands.add_parser(
        "summarize",
        help="report findings for every bnscope run below LOGDIR",
        description=(
            "Find every bnscope run below LOGDIR and report what looks wrong, "
            "layer by layer. Exit 0 if no finding reaches --fail-on, 1 if one "
            "does, 2 if the input cannot be used."
        ),
    )
    summarize.add_argument("logdir", metavar="LOGDIR", help="log directory to search")
    summarize.add_argument("--json", action="store_true", help="print JSON (version 1)")
    summarize.add_argument(
        "--fail-on",
        choices=("error", "warning", "info", "never"),
        default="error",
        help="exit 1 when a finding at or above this severity exists (default: error)",
    )
    summarize.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show everything: every layer of grouped findings, every hint, all layers",
    )

    compare = commands.add_parser(
        "compare",
        help="compare two runs side by side (e.g. without and with BN)",
        description=(
            "Align the layers of two runs by depth and show their gradient flow "
            "side by side, and the findings only one of them has."
        ),
    )
    compare.add_argument(
        "run_a", metavar="RUN_A", help="a run directory (or a logdir with one run)"
    )
    compare.add_argument("run_b", metavar="RUN_B", help="the run to compare against")
    compare.add_argument("--json", action="store_true", help="print JSON")

    demo = commands.add_parser(
        "demo",
        help="train two small models (without and with BN) and summarize them",
        description="Train a small model twice, without and with BatchNormalization "
        "(needs TensorFlow), and print the reports.",
    )
    demo.add_argument(
        "--out", default=None, help="log directory to write (default: ./bnscope-demo)"
    )
    return parser


def report_error(message: str, stream: IO[str]) -> None:
    """Writes one `bnscope: error: ...` line."""
    from bnscope.analysis.formatting import one_line  # on use: fast --help

    stream.write(f"bnscope: error: {one_line(message)}\n")


def _load_logdir(path: str):
    from bnscope.analysis.reader import read_logdir  # imported on use: fast --help

    logdir = read_logdir(path)
    if not logdir.runs:
        raise UsageError(_no_data_message(path, logdir))
    return logdir


def _no_data_message(path: str, logdir) -> str:
    if not logdir.other_runs:
        detail = "; ".join(logdir.notes[:2])
        message = f"no TensorBoard event files below {path}"
        return f"{message} ({detail})" if detail else message
    names = ", ".join(logdir.other_runs[:3]) + (
        ", ..." if len(logdir.other_runs) > 3 else ""
    )
    message = f"no bnscope data below {path} (runs without bnscope tags: {names}"
    reasons = [n.split(": ", 1)[-1] for n in logdir.notes[:2]]
    return message + (f"; {'; '.join(reasons)})" if reasons else ")")


def _notes_to_stderr(notes: Sequence[str], stream: IO[str]) -> None:
    from bnscope.analysis.formatting import one_line

    for note in notes:
        stream.write(f"bnscope: note: {one_line(note)}\n")


def _emit(stream: IO[str], write: Callable[[], object]) -> None:
    """Runs `write`; a reader that left (`| head`, `| true`) is not an error.

    The rest of the output goes to `/dev/null`, so the interpreter's final
    flush cannot fail either, and the exit code still reports the findings.
    """
    try:
        write()
        stream.flush()
    except BrokenPipeError:
        _discard_output(stream)


def _discard_output(stream: IO[str]) -> None:
    try:
        descriptor = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a real file: nothing will flush it at exit
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, descriptor)
    os.close(devnull)


def summarize_command(
    logdir: str,
    as_json: bool = False,
    fail_on: str = "error",
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
    width: int | None = None,
    verbose: bool = False,
) -> int:
    """Runs `bnscope summarize` and returns its exit code.

    Args:
        logdir: Directory to search for bnscope runs.
        as_json: Print JSON v1 instead of the rich report. Defaults to `False`.
        fail_on: `error`, `warning`, `info` or `never`. Defaults to `"error"`.
        stdout: Where the report goes. Defaults to `None` (`sys.stdout`).
        stderr: Where errors and notes go. Defaults to `None` (`sys.stderr`).
        width: Report width in columns. Defaults to `None` (the terminal's).
        verbose: Show every layer of grouped findings, every hint (also the
            repeated ones) and every layer in the table. Defaults to `False`.
    """
    from bnscope.analysis.reader import ReaderError

    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    try:
        loaded = _load_logdir(logdir)
    except (ReaderError, UsageError) as error:
        report_error(str(error), stderr)
        return EXIT_BAD_INPUT
    from bnscope.analysis import jsonv1
    from bnscope.analysis.summary import summarize

    reports = [summarize(run) for run in loaded.runs]
    _emit(stderr, lambda: _notes_to_stderr(loaded.notes, stderr))
    if as_json:
        text = json.dumps(jsonv1.summary(reports), indent=2) + "\n"
        _emit(stdout, lambda: stdout.write(text))
    else:
        from bnscope.cli.report import render_reports
        from bnscope.cli.theme import make_console

        console = make_console(stdout, width)
        _emit(stdout, lambda: console.print(render_reports(reports, verbose)))
    failed = any(report.fails(fail_on) for report in reports)
    return EXIT_FINDINGS if failed else EXIT_OK


def _single_run(path: str):
    loaded = _load_logdir(path)
    if len(loaded.runs) > 1:
        names = ", ".join(run.name for run in loaded.runs[:3])
        raise UsageError(
            f"{path} holds {len(loaded.runs)} bnscope runs ({names}); pass one run directory"
        )
    return loaded.runs[0]


def compare_command(
    run_a: str,
    run_b: str,
    as_json: bool = False,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
    width: int | None = None,
) -> int:
    """Runs `bnscope compare` and returns its exit code (0, or 2 on bad input)."""
    from bnscope.analysis.reader import ReaderError

    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    try:
        first, second = _single_run(run_a), _single_run(run_b)
    except (ReaderError, UsageError) as error:
        report_error(str(error), stderr)
        return EXIT_BAD_INPUT
    from bnscope.analysis import jsonv1
    from bnscope.analysis.compare import compare
    from bnscope.analysis.summary import summarize

    comparison = compare(
        summarize(first), summarize(second), label_a=run_a, label_b=run_b
    )
    if as_json:
        text = json.dumps(jsonv1.comparison(comparison), indent=2) + "\n"
        _emit(stdout, lambda: stdout.write(text))
    else:
        from bnscope.cli.compare_view import render_comparison
        from bnscope.cli.theme import make_console

        console = make_console(stdout, width)
        _emit(stdout, lambda: console.print(render_comparison(comparison)))
    return EXIT_OK


def demo_command(
    out: str | None = None,
    quick: bool = False,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
    width: int | None = None,
) -> int:
    """Runs `bnscope demo` and returns its exit code.

    Args:
        out: Log directory to write. Defaults to `None` (`./bnscope-demo`).
        quick: Train 3 epochs instead of 10 (for tests). Defaults to `False`.
        stdout: Where the story goes. Defaults to `None` (`sys.stdout`).
        stderr: Where errors go. Defaults to `None` (`sys.stderr`).
        width: Report width in columns. Defaults to `None` (the terminal's).

    Returns:
        0 when the demo ran (findings in the sick model are expected: it is a
        demonstration, not a CI gate), 2 when a dependency is missing.
    """
    from bnscope import demo  # TensorFlow is imported only when it trains
    from bnscope.cli import demo_view
    from bnscope.cli.theme import make_console

    missing = demo.missing_dependency()
    if missing is not None:
        report_error(
            f"the demo needs {missing}: pip install 'bnscope[cpu,demo]'",
            stderr or sys.stderr,
        )
        return EXIT_BAD_INPUT
    out = out if out is not None else demo.DEFAULT_OUT
    console = make_console(stdout, width)
    epochs = demo.QUICK_EPOCHS if quick else demo.EPOCHS
    demo_view.print_intro(console, demo, out, epochs)
    on_start, on_done = demo_view.progress(console)
    sick, healthy = demo.run(out, quick=quick, on_start=on_start, on_done=on_done)
    demo_view.print_command(console, f"bnscope summarize {out}")
    summarize_command(out, fail_on="never", stdout=stdout, width=width)
    demo_view.print_command(
        console, f"bnscope compare {sick.run_dir} {healthy.run_dir}"
    )
    compare_command(sick.run_dir, healthy.run_dir, stdout=stdout, width=width)
    demo_view.print_outro(console, out)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `bnscope` console script."""
    for stream in (sys.stdout, sys.stderr):
        # `PYTHONIOENCODING=ascii`: a file or layer name the encoding cannot
        # hold is escaped rather than raising UnicodeEncodeError.
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "summarize":
            return summarize_command(
                args.logdir, args.json, args.fail_on, verbose=args.verbose
            )
        if args.command == "compare":
            return compare_command(args.run_a, args.run_b, args.json)
        if args.command == "demo":
            return demo_command(args.out)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # A pipe closed outside the report (`bnscope demo | head`): fine.
        _discard_output(sys.stdout)
        return EXIT_OK
    except Exception as error:
        if os.environ.get("BNSCOPE_DEBUG"):
            raise
        report_error(
            f"unexpected {type(error).__name__}: {error} "
            "(set BNSCOPE_DEBUG=1 for a traceback)",
            sys.stderr,
        )
        return EXIT_BAD_INPUT
    parser.print_help()
    return EXIT_BAD_INPUT
