"""Reference normalization layers that expose the statistics they compute."""

from bnscope.layers.batch_normalization import BatchNormalization
from bnscope.layers.layer_normalization import LayerNormalization

__all__ = ["BatchNormalization", "LayerNormalization"]
