"""Finding runs below LOGDIR, the way TensorBoard does, without TensorFlow.

A run is any directory that directly holds `*tfevents*` files, named by its
path relative to LOGDIR. When LOGDIR itself holds event files, that run is
named after LOGDIR's basename, or `.` (as TensorBoard names it) when a run
below already has that name: `bnscope summarize logs/bnscope` on a directory
holding event files and a `bnscope/` subfolder shows `.` and `bnscope`.
"""

from __future__ import annotations

import os
import re


class ReaderError(Exception):
    """The input cannot be used at all; the message is one line for the user."""


EVENT_FILE_MARKER = "tfevents"
_FILE_TIMESTAMP = re.compile(r"tfevents\.(\d+)")


def _list_dir(path: str) -> list[os.DirEntry]:
    """`os.scandir` as a list; a seam tests use to simulate permission errors."""
    with os.scandir(path) as entries:
        return list(entries)


def _check_directory(path: str) -> None:
    if not os.path.exists(path):
        raise ReaderError(f"no such directory: {path}")
    if not os.path.isdir(path):
        raise ReaderError(f"not a directory: {path} (pass the log directory)")


def find_run_dirs(logdir: str) -> tuple[list[str], list[str]]:
    """Lists every directory below `logdir` that directly holds event files.

    Args:
        logdir: The directory to search recursively. Symbolic links to
            directories are not followed, so a link loop cannot hang the scan.

    Returns:
        `(run_dirs, notes)`: the run directories sorted by path, and one note
        per subdirectory that could not be listed.

    Raises:
        ReaderError: If `logdir` does not exist, is not a directory, or cannot
            be listed.
    """
    _check_directory(logdir)
    try:
        top = _list_dir(logdir)
    except OSError as error:
        raise ReaderError(f"cannot read {logdir}: {reason(error)}") from None
    run_dirs: list[str] = []
    notes: list[str] = []
    pending: list[tuple[str, list[os.DirEntry]]] = [(logdir, top)]
    while pending:
        directory, entries = pending.pop()
        if any(_is_event_file(entry) for entry in entries):
            run_dirs.append(directory)
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                try:
                    pending.append((entry.path, _list_dir(entry.path)))
                except OSError as error:
                    notes.append(f"skipped {entry.path}: {reason(error)}")
    return sorted(run_dirs), notes


def _is_event_file(entry: os.DirEntry) -> bool:
    return EVENT_FILE_MARKER in entry.name and not entry.is_dir(follow_symlinks=False)


def event_files(run_dir: str) -> list[str]:
    """Event files of one run, oldest first (by the timestamp in the name)."""
    names = [e.name for e in _list_dir(run_dir) if _is_event_file(e)]
    return [os.path.join(run_dir, n) for n in sorted(names, key=_file_order)]


def _file_order(name: str) -> tuple[int, str]:
    match = _FILE_TIMESTAMP.search(name)
    return (int(match.group(1)) if match else 0, name)


def run_name(logdir: str, run_dir: str) -> str:
    """`run_dir` relative to `logdir`, with `/` separators; LOGDIR's own basename."""
    relative = os.path.relpath(run_dir, logdir)
    if relative == os.curdir:
        return os.path.basename(os.path.abspath(logdir)) or relative
    return relative.replace(os.sep, "/")


def run_names(logdir: str, run_dirs: list[str]) -> list[str]:
    """`run_name` of each of `run_dirs`, made unique.

    Relative paths never collide with each other; only LOGDIR's own basename
    can equal one of them, and then LOGDIR's run is named `.`.
    """
    names = [run_name(logdir, run_dir) for run_dir in run_dirs]
    for index, run_dir in enumerate(run_dirs):
        top = os.path.relpath(run_dir, logdir) == os.curdir
        if top and names.count(names[index]) > 1:
            names[index] = os.curdir
    return names


def reason(error: OSError) -> str:
    """A short reason for an `OSError`, for one-line notes."""
    if isinstance(error, PermissionError):
        return "permission denied"
    return error.strerror or type(error).__name__
