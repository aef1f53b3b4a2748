"""The recording wing: needs TensorFlow.

The `BNScope` callback, the `Observer` engine behind it, the probe schedule,
failure isolation, the compiled probe with its layer hooks, the train-step
instruments (`train_tap`, `step_stats`, `exact_gradients`), `tf.distribute`
helpers, the run-metadata builder and the statistics (`stats/`).

`BNScope` and `Observer` are imported on first use, so the pure-Python parts
(`schedule`, `guard`, `arguments`) load without TensorFlow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["BNScope", "Observer"]

if TYPE_CHECKING:
    from bnscope.recording.callback import BNScope
    from bnscope.recording.observer import Observer


def __getattr__(name: str):
    if name == "BNScope":
        from bnscope.recording.callback import BNScope

        return BNScope
    if name == "Observer":
        from bnscope.recording.observer import Observer

        return Observer
    raise AttributeError(f"module 'bnscope.recording' has no attribute {name!r}")
