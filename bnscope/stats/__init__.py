"""Statistics: small pure functions from tensors to flat `dict[str, tensor]`.

They run inside bnscope's compiled probe, so they use `keras.ops` (which maps
onto TensorFlow ops there) and never log, write or touch layer state. Their
keys are tag metric names from `bnscope.tags`.
"""
