"""Failure isolation: warn once per kind, count the rest, re-raise in strict mode."""

from __future__ import annotations

import warnings

import pytest

from bnscope.recording.guard import Guard


def fail(guard: Guard, what: str, error: Exception) -> None:
    with guard(what):
        raise error


def test_each_kind_warns_once_and_is_counted():
    guard = Guard()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            fail(guard, "writing histograms", ValueError("bad"))
        fail(guard, "writing histograms", KeyError("other"))
        fail(guard, "reading norms", ValueError("bad"))
    messages = [str(w.message) for w in caught]
    assert len(messages) == 3
    assert messages[0].startswith(
        "bnscope: writing histograms failed with ValueError: bad"
    )
    assert "Training continues" in messages[0]
    assert guard.failures == {
        "writing histograms: ValueError": 3,
        "writing histograms: KeyError": 1,
        "reading norms: ValueError": 1,
    }


def test_strict_mode_raises():
    with pytest.raises(ValueError, match="bad"):
        fail(Guard(strict=True), "anything", ValueError("bad"))


def test_keyboard_interrupt_is_never_swallowed():
    with pytest.raises(KeyboardInterrupt):
        fail(Guard(), "anything", KeyboardInterrupt())  # type: ignore[arg-type]


def test_a_block_that_succeeds_is_untouched():
    guard = Guard()
    with guard("fine"):
        value = 1
    assert value == 1 and guard.failures == {}
