"""The bnscope tab in TensorBoard: a dynamic plugin, found by its entry point.

TensorBoard loads `bnscope.tensorboard.plugin:BNScopePlugin` (the
`tensorboard_plugins` entry point). This package imports nothing on its own,
so that loading the entry point never fails; see `plugin`.
"""

__all__: list[str] = []
