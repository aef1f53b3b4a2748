"""Statistics: small pure functions from tensors to flat `dict[str, tensor]`.

They run inside bnscope's compiled probe, so they are written with TensorFlow
ops (which also accept numpy arrays, as the tests pass), never import Keras,
never log, write or touch layer state. Their keys are tag metric names from
`bnscope.tags`. `joint.py` gathers the ones built as vectors across all
layers at once (gradient and weight statistics, BN drift), filling each
layer's tags in place.
"""
