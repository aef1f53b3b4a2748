"""Where one probe's cost goes, part by part, on a keras.applications model.

In one process (weights=None, no download; random images, batch 16):

- **train step**: Keras' own compiled step, median CPU (the unit below);
- **activation statistics**: `layer_activation_stats` of every hooked
  training-mode layer output, compiled alone;
- **variable statistics**: gradient and weight statistics of every layer
  (`stats.gradients`, as `Probe` builds them), compiled alone;
- **histograms**: `grouped_histograms` of every layer output;
- **whole probe**: `Probe` as the callback runs it, without and with
  histograms.

For each: the CPU of its trace and first call (tracing, grappler,
instantiation: the one-time cost), the median CPU of a call after that (in
train steps), and the ops of its graph. Usage:

    python benchmarks/probe_breakdown.py [--model MobileNetV2] [--image 64]
    python benchmarks/probe_breakdown.py --quick   # smallest model, 32x32
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

BATCH = 16
CALLS = 8  # steady-state calls timed per part (median taken)
QUICK = {"model": "MobileNetV3Small:minimalistic", "image": 32}


def build(model_name: str, image: int):
    """The compiled model, one batch, and Keras' step having run once."""
    import keras
    import numpy as np
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    name, _, variant = model_name.partition(":")
    kwargs = {"minimalistic": True} if variant == "minimalistic" else {}
    model = getattr(keras.applications, name)(
        weights=None, input_shape=(image, image, 3), classes=10, **kwargs
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = tf.constant(rng.random((BATCH, image, image, 3), dtype="float32"))
    y = tf.constant(rng.integers(0, 10, BATCH))
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    return model, x, y


def cpu_of(call, calls: int = CALLS) -> float:
    """Median process CPU seconds of `call()`, which fetches its results."""
    seconds = []
    for _ in range(calls):
        start = time.process_time()
        call()
        seconds.append(time.process_time() - start)
    return statistics.median(seconds)


def fetched(function, *args):
    """`function(*args)` with every tensor of the result copied to the host."""
    import tensorflow as tf

    return tf.nest.map_structure(lambda t: t.numpy(), function(*args))


def measure_function(function, *args) -> dict:
    """One-time CPU, steady CPU and graph ops of `tf.function(function)(*args)`."""
    import tensorflow as tf

    compiled = tf.function(function, autograph=False)
    start = time.process_time()
    concrete = compiled.get_concrete_function(*args)
    fetched(compiled, *args)
    first = time.process_time() - start
    return {
        "first": first,
        "steady": cpu_of(lambda: fetched(compiled, *args)),
        "ops": graph_ops(concrete),
    }


def graph_ops(concrete) -> int:
    """Ops of a concrete function, those of the functions it calls included."""
    graph = concrete.graph.as_graph_def()
    return len(graph.node) + sum(len(f.node_def) for f in graph.library.function)


def parts(model, x, y) -> dict[str, dict]:
    """Each part's one-time cost, steady cost and graph size."""
    import tensorflow as tf

    from bnscope.recording import layer_info
    from bnscope.recording.hooks import LayerHooks
    from bnscope.recording.probe import Probe
    from bnscope.recording.stats import activations, gradients

    hooks = LayerHooks(model)
    calls = []

    @tf.function(autograph=False)
    def layer_outputs(x):
        with hooks.recording() as recording:
            model(x, training=True)
        calls[:] = [c for c in recording.calls if c.outputs is not None]
        return [c.outputs for c in calls]

    outputs = layer_outputs(x)

    names = [layer_info.activation_name(call.layer) for call in calls]

    def activation_statistics(outputs):
        stats = activations.grouped_activation_stats(list(outputs), names)
        return tf.stack([value for layer in stats for value in layer.values()])

    variables = model.trainable_variables
    grads = [tf.convert_to_tensor(v) for v in variables]  # stand-ins, same shapes
    snapshots = [tf.Variable(v) for v in variables]

    def variable_statistics(grads):
        # Built as the probe builds them: every layer's variables at once.
        by_layer: dict[str, list[int]] = {}
        for index, variable in enumerate(variables):
            owner = variable.path.rsplit("/", 1)[0]
            by_layer.setdefault(owner, []).append(index)
        stats = gradients.variable_stats(
            [
                gradients.LayerVariables.of(
                    [grads[i] for i in indices],
                    [variables[i].value for i in indices],
                    [snapshots[i] for i in indices],
                )
                for indices in by_layer.values()
            ]
        )
        flat = [v for layer in stats.layers for v in layer.values()]
        flat += [n for norms in stats.variable_norms for n in norms]
        return tf.stack([*flat, stats.global_norm])

    def histograms(outputs):
        return activations.grouped_histograms(list(outputs))

    result = {
        "activation statistics": measure_function(activation_statistics, outputs),
        "variable statistics": measure_function(variable_statistics, grads),
        "histograms": measure_function(histograms, outputs),
    }
    probe = Probe(model, hooks)
    start = time.process_time()
    probe(x, y)
    first = time.process_time() - start
    concrete = tf.function(probe.measure, autograph=False).get_concrete_function(
        x, y, None, tf.constant(False)
    )
    result["whole probe"] = {
        "first": first,
        "steady": cpu_of(lambda: probe(x, y)),
        "ops": graph_ops(concrete),
    }
    result["whole probe, histograms"] = {
        "first": 0.0,  # the same trace
        "steady": cpu_of(lambda: probe(x, y, with_histograms=True)),
        "ops": result["whole probe"]["ops"],
    }
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="MobileNetV2")
    parser.add_argument("--image", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help=f"run {QUICK}")
    args = parser.parse_args(argv)
    if args.quick:
        args.model, args.image = QUICK["model"], QUICK["image"]
    model, x, y = build(args.model, args.image)
    step = cpu_of(lambda: fetched(model.train_function, iter([(x, y)])))
    results = {"train step": {"first": 0.0, "steady": step, "ops": 0}}
    results.update(parts(model, x, y))
    print(
        f"{args.model} ({args.image}x{args.image}, batch {BATCH}): "
        f"train step {step:.3f} s CPU"
    )
    print(
        f"{'part':26s} {'trace+first':>12s} {'steady':>8s} {'in steps':>9s} {'ops':>7s}"
    )
    for name, row in results.items():
        print(
            f"{name:26s} {row['first']:11.1f}s {row['steady']:7.3f}s "
            f"{row['steady'] / step:8.2f}× {row['ops']:7d}"
        )
    return results


if __name__ == "__main__":
    main()
