"""TensorFlow-specific pieces of the recording wing, behind small functions.

The rest of `recording/` speaks Keras. A JAX or torch port of the probe
replaces what is here: how a Python function becomes a compiled one, and
which graph optimizations its calls get.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import tensorflow as tf
from tensorflow.core.protobuf import config_pb2
from tensorflow.python.eager import context

# Whether grappler (TensorFlow's graph optimizer) optimizes the probe. It
# stays on: measured on MobileNetV2, ResNet50 and DenseNet121
# (docs/performance.md), turning it off at the probe's call site cuts the
# one-time cost by 0.4x Keras' first step but raises peak memory by 15-36%
# (the unoptimized graph keeps more intermediates alive), a worse trade for
# a tool that must never be what makes training run out of memory.
# `benchmarks/real_models.py` measures both (config `bnscope_grappler_off`).
PROBE_GRAPH_OPTIMIZATION = True


def compile_function(function: Callable) -> Callable:
    """`function` compiled once per input signature.

    Args:
        function: A Python function of tensors with no tensor-dependent
            Python control flow (AutoGraph is off: converting Keras
            internals would dominate the trace).

    Returns:
        A callable with the same arguments, called with grappler on or off
        as `PROBE_GRAPH_OPTIMIZATION` says when it is called.
    """
    compiled = tf.function(function, autograph=False, reduce_retracing=True)

    def call(*args):
        with _call_options(optimize=PROBE_GRAPH_OPTIMIZATION):
            return compiled(*args)

    return call


# Whether grappler optimizes the statistics compiled into Keras' train step
# (`in_step.py`). Off: that function is forward passes and reductions, which
# without a backward pass keep nothing alive, and it is built at the first
# probe step rather than with Keras' step; optimized, it would cost about as
# much as Keras' own compile (docs/performance.md).
IN_STEP_GRAPH_OPTIMIZATION = False


def nested_function(function: Callable, optimize: bool) -> Callable:
    """`function` as a separate function called from inside a compiled one.

    It is not inlined into its caller, so grappler's passes over the caller
    (Keras' train step) do not see, optimize or fuse across its body: the
    train step's own graph, and so its results, stay what they were. The
    body is instantiated at its first run, with the graph options in force
    where the call was traced.

    Args:
        function: As for `compile_function`.
        optimize: Whether grappler optimizes the body.
    """
    compiled = tf.function(
        function,
        autograph=False,
        reduce_retracing=True,
        experimental_attributes={"_noinline": True},
    )

    def call(*args):
        with _call_options(optimize=optimize):
            return compiled(*args)

    return call


def run_if(predicate, function: Callable) -> None:
    """Runs `function()` (for its side effects) where `predicate` holds."""

    def run():
        function()
        return tf.constant(True)

    tf.cond(predicate, run, lambda: tf.constant(False))


@contextlib.contextmanager
def _call_options(optimize: bool) -> Iterator[None]:
    """Calls made in this block use grappler, or not; nothing else changes.

    A function call reads `function_call_options` where it is made: eagerly,
    for that call; while tracing, into the call op (its `config_proto`), for
    every run of it. So this scopes the choice to the functions called here:
    what Keras compiles is optimized as always.
    """
    if optimize:
        yield
        return
    ctx = context.context()
    previous = ctx.function_call_options
    config = config_pb2.ConfigProto()
    config.CopyFrom(ctx.config)
    config.graph_options.rewrite_options.disable_meta_optimizer = True
    ctx.function_call_options = context.FunctionCallOptions(
        executor_type=previous.executor_type, config_proto=config
    )
    try:
        yield
    finally:
        ctx.function_call_options = previous
