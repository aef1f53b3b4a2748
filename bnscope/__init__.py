"""bnscope: per-layer training diagnostics for Keras, in TensorBoard.

The recording wing (`BNScope`, `Observer`) needs TensorFlow; the reading wing
(`load`, `bnscope summarize`) never imports it. Names are imported on first
use, so `import bnscope` alone costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bnscope._version import __version__

__all__ = ["BNScope", "Observer", "__version__", "findings", "load", "load_run"]

if TYPE_CHECKING:
    from bnscope.analysis.api import findings, load, load_run
    from bnscope.recording.callback import BNScope
    from bnscope.recording.observer import Observer

_LAZY = {
    "BNScope": "bnscope.recording.callback",
    "Observer": "bnscope.recording.observer",
    "findings": "bnscope.analysis.api",
    "load": "bnscope.analysis.api",
    "load_run": "bnscope.analysis.api",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'bnscope' has no attribute {name!r}")
