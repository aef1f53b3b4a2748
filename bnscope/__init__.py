"""bnscope: per-layer training diagnostics for Keras, in TensorBoard."""

__version__ = "0.1.0"
