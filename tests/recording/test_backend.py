"""The TensorFlow-specific pieces: the probe's compiled function and its options."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2
from tensorflow.python.eager import context

from bnscope.recording import backend


def _rewrite_options():
    config = config_pb2.ConfigProto()
    config.ParseFromString(
        context.context().function_call_options.config_proto_serialized
    )
    return config.graph_options.rewrite_options


@pytest.mark.parametrize("optimize", [True, False])
def test_compiled_function_computes_what_the_python_one_does(monkeypatch, optimize):
    monkeypatch.setattr(backend, "PROBE_GRAPH_OPTIMIZATION", optimize)
    compiled = backend.compile_function(lambda x: tf.reduce_sum(tf.square(x)))
    x = tf.constant(np.arange(6, dtype="float32"))
    assert float(compiled(x)) == 55.0


def test_grappler_off_is_scoped_to_the_probe_call(monkeypatch):
    monkeypatch.setattr(backend, "PROBE_GRAPH_OPTIMIZATION", False)
    before = context.context().function_call_options.config_proto_serialized
    seen = {}

    def spy(x):
        seen["disabled"] = _rewrite_options().disable_meta_optimizer
        return x + 1

    compiled = backend.compile_function(spy)
    compiled(tf.constant(1.0))
    assert seen["disabled"]  # the probe is traced and called unoptimized
    # ...and what Keras compiles afterwards gets the context's own options.
    assert context.context().function_call_options.config_proto_serialized == before
    assert not _rewrite_options().disable_meta_optimizer


def test_options_are_restored_when_the_call_raises(monkeypatch):
    monkeypatch.setattr(backend, "PROBE_GRAPH_OPTIMIZATION", False)
    before = context.context().function_call_options.config_proto_serialized

    def broken(x):
        raise ValueError("statistic failed")

    with pytest.raises(ValueError, match="statistic failed"):
        backend.compile_function(broken)(tf.constant(1.0))
    assert context.context().function_call_options.config_proto_serialized == before


def test_by_default_the_probe_is_optimized_like_everything_else():
    seen = {}

    def spy(x):
        seen["disabled"] = _rewrite_options().disable_meta_optimizer
        return x

    backend.compile_function(spy)(tf.constant(1.0))
    assert seen == {"disabled": False}
