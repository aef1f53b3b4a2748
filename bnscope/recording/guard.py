"""Failure isolation: a diagnostic failure is reported once and training goes on."""

from __future__ import annotations

import warnings
from types import TracebackType


class Guard:
    """Makes context managers that catch bnscope's own failures.

    Each kind of failure (what was being done, and the exception type) is
    reported once as a `RuntimeWarning` naming what was skipped; later ones
    are only counted. With `strict=True` nothing is caught.

    Args:
        strict: Re-raise instead of warning. Defaults to `False`.

    Example:

    ```python
    guard = Guard()
    with guard("writing histograms (skipped at this step)"):
        ...
    ```
    """

    def __init__(self, strict: bool = False):
        self.strict = strict
        # "what: ExceptionType" -> how many times it failed.
        self.failures: dict[str, int] = {}

    def __call__(self, what: str) -> _Protected:
        return _Protected(self, what)

    def report(self, what: str, error: Exception) -> None:
        """Counts a failure and warns the first time this kind is seen."""
        key = f"{what}: {type(error).__name__}"
        self.failures[key] = self.failures.get(key, 0) + 1
        if self.failures[key] == 1:
            warnings.warn(
                f"bnscope: {what} failed with {type(error).__name__}: {error}. "
                "Training continues; this warning is shown once "
                "(pass strict=True to raise instead).",
                RuntimeWarning,
                stacklevel=3,
            )


class _Protected:
    """One guarded block."""

    def __init__(self, guard: Guard, what: str):
        self.guard = guard
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        # KeyboardInterrupt and SystemExit are the user's, never swallowed.
        if not isinstance(error, Exception) or self.guard.strict:
            return False
        self.guard.report(self.what, error)
        return True
