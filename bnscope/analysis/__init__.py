"""The reading wing: TensorFlow-free and rich-free.

Discovery and decoding of event files, the `Run` dataclasses, the rules, the
summary and the comparison. The CLI, the TensorBoard plugin and the callback's
live findings all build on this package; it never imports TensorFlow, Keras,
rich, `bnscope.recording` or `bnscope.layers` (a test checks).
"""

from bnscope.analysis.api import findings, load, load_run
from bnscope.analysis.discovery import ReaderError
from bnscope.analysis.runs import Logdir, ReadStats, Run, Series

__all__ = [
    "Logdir",
    "ReadStats",
    "ReaderError",
    "Run",
    "Series",
    "findings",
    "load",
    "load_run",
]
