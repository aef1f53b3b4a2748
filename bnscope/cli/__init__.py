"""The `bnscope` console script: rich views over `bnscope.analysis`."""

from bnscope.cli.commands import main

__all__ = ["main"]
