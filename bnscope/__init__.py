"""bnscope: per-layer training diagnostics for Keras, in TensorBoard.

`BNScope` and `Observer` need TensorFlow; they are imported on first use so
that `bnscope summarize` and the reader work without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["BNScope", "Observer", "__version__"]

if TYPE_CHECKING:
    from bnscope.callback import BNScope
    from bnscope.observer import Observer


def __getattr__(name: str):
    if name == "BNScope":
        from bnscope.callback import BNScope

        return BNScope
    if name == "Observer":
        from bnscope.observer import Observer

        return Observer
    raise AttributeError(f"module 'bnscope' has no attribute {name!r}")
