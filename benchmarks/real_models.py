"""What BNScope costs on real networks: keras.applications models, interleaved.

For each model (weights=None, no download; random 64×64 images, batch 16),
trains one `fit` per configuration, each in a fresh process so compile caches
and peak memory are its own, in the interleaved order plain, BNScope(), full
mode, Keras' TensorBoard(histogram_freq=1), repeated `--repeats` times:

- **one-time cost**: the extra process CPU time up to the end of the first
  step (Keras' own train-step compile in plain `fit`; plus bnscope's setup,
  probe trace and first probe), as a ratio to plain `fit`'s first step;
- **steady state**: median CPU of steps 2..N, ratio to plain (probe steps
  included, so this is what a long run pays per step);
- **total**: the whole fit's CPU, ratio to plain; wall-clock total beside it;
- **peak RSS**: the process' high-water mark after the fit, ratio to plain;
- **probes**: how many probes the fit got, and whether the final weights are
  bit-identical to plain `fit`'s (observation must not perturb).

Usage:
    python benchmarks/real_models.py [--models MobileNetV2 ResNet50 DenseNet121]
        [--steps 40] [--repeats 1] [--configs plain bnscope full tensorboard]
    python benchmarks/real_models.py --quick   # smallest model, 6 steps

Process CPU time is steady here (about ±4%); wall time is not (±20%).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

BATCH = 16
IMAGE = 64
MODELS = ("MobileNetV2", "ResNet50", "DenseNet121")
CONFIGS = ("plain", "bnscope", "full", "tensorboard")
# Ablations:
# - bnscope_in_step: BNScope(in_step=True), the probe compiled into Keras'
#   train step (bnscope/recording/in_step.py);
# - bnscope_in_step_optimized: the same with grappler on for the probe's body
#   (bnscope.recording.backend.IN_STEP_GRAPH_OPTIMIZATION);
# - bnscope_grappler_off: the separate probe with grappler off at its call
#   (bnscope.recording.backend.PROBE_GRAPH_OPTIMIZATION);
# - plain_prebuilt: plain fit with the optimizer built before the first step,
#   as the in-step probe builds it (Keras then traces its step once, not
#   twice): the baseline that isolates that probe's own one-time cost.
ABLATIONS = (
    "bnscope_in_step",
    "bnscope_in_step_optimized",
    "bnscope_grappler_off",
    "plain_prebuilt",
)
# The smallest stock application: MobileNetV3Small's minimalistic variant
# (no squeeze-excite, no hard-swish) compiles in seconds.
QUICK = {"model": "MobileNetV3Small:minimalistic", "image": 32, "steps": 6}


def child(
    model_name: str, config: str, steps: int, image: int, deterministic: bool
) -> dict:
    """One fit in this process; returns its measurements."""
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    if deterministic:
        # Without it, multi-threaded CPU kernels (DenseNet's concatenations
        # and reductions) may sum in a different order from run to run, and
        # two plain fits already differ in the last bits.
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    name, _, variant = model_name.partition(":")
    build = getattr(keras.applications, name)
    options = {variant: True} if variant else {}
    model = build(weights=None, input_shape=(image, image, 3), classes=10, **options)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (steps * BATCH, image, image, 3)).astype("float32")
    y = rng.integers(0, 10, steps * BATCH)

    with tempfile.TemporaryDirectory(prefix=f"bnscope-real-{config}-") as log_dir:
        return _fit_and_measure(model, x, y, config, log_dir)


def _fit_and_measure(model, x, y, config: str, log_dir: str) -> dict:
    import keras
    import numpy as np

    from bnscope import BNScope
    from bnscope.recording import backend

    if config == "bnscope_grappler_off":
        backend.PROBE_GRAPH_OPTIMIZATION = False
    if config == "bnscope_in_step_optimized":
        backend.IN_STEP_GRAPH_OPTIMIZATION = True
    callbacks = {
        "plain": [],
        "plain_prebuilt": [],
        "bnscope": [BNScope(log_dir=log_dir)],
        "bnscope_in_step": [BNScope(log_dir=log_dir, in_step=True)],
        "bnscope_in_step_optimized": [BNScope(log_dir=log_dir, in_step=True)],
        "bnscope_grappler_off": [BNScope(log_dir=log_dir)],
        "full": [BNScope(log_dir=log_dir, every_n_steps=1)],
        "tensorboard": [keras.callbacks.TensorBoard(log_dir, histogram_freq=1)],
    }[config]
    clock = _step_clock(keras)
    start = time.process_time()
    wall = time.perf_counter()
    if config == "plain_prebuilt":
        model.optimizer.build(model.trainable_variables)
    # The clock goes last: each step's time includes bnscope's probe.
    model.fit(
        x, y, batch_size=BATCH, epochs=1, verbose=0, callbacks=[*callbacks, clock]
    )
    fit_cpu = time.process_time() - start
    fit_wall = time.perf_counter() - wall
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.asarray(weight.numpy()).tobytes())
    probes = 0
    if config.startswith("bnscope") or config == "full":
        import bnscope

        run = bnscope.load(log_dir).runs[0]
        probes = len(run.probe_steps)
    return {
        "first_step_cpu": clock.ends[0] - start,
        "step_cpus": [b - a for a, b in zip(clock.ends, clock.ends[1:])],
        "fit_cpu": fit_cpu,
        "fit_wall": fit_wall,
        # ru_maxrss is in KiB on Linux.
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "probes": probes,
        "digest": digest.hexdigest()[:16],
    }


def _step_clock(keras):
    """A callback noting the process CPU time at the end of every step."""

    class StepClock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.ends: list[float] = []

        def on_train_batch_end(self, batch, logs=None):
            self.ends.append(time.process_time())

    return StepClock()


def measure(
    model: str, config: str, steps: int, image: int, deterministic: bool
) -> dict:
    """Runs `child` in a fresh interpreter and returns what it printed."""
    arguments = [model, config, str(steps), str(image), str(int(deterministic))]
    done = subprocess.run(
        [sys.executable, __file__, "--child", *arguments],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{model}/{config} failed:\n{done.stderr[-3000:]}")
    line = [row for row in done.stdout.splitlines() if row.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])


def summarize_model(runs: dict[str, list[dict]], reference: dict) -> dict[str, dict]:
    """Median ratios of every configuration to plain `fit`.

    `reference` is one more plain fit, untimed: when two plain fits already
    end with different weights (DenseNet121 on CPU does, even with op
    determinism on), "same weights" cannot be judged and is `None`.
    """
    plain_digests = {r["digest"] for r in [*runs["plain"], reference]}
    deterministic = len(plain_digests) == 1

    def median(config: str, key) -> float:
        return statistics.median(key(r) for r in runs[config])

    def steady(run: dict) -> float:
        return statistics.mean(run["step_cpus"]) if run["step_cpus"] else float("nan")

    first = median("plain", lambda r: r["first_step_cpu"])
    rows = {}
    for config in runs:
        rows[config] = {
            "first_step_cpu": median(config, lambda r: r["first_step_cpu"]),
            "one_time_ratio": (median(config, lambda r: r["first_step_cpu"]) - first)
            / first,
            "steady_ratio": median(config, steady) / median("plain", steady),
            "total_ratio": median(config, lambda r: r["fit_cpu"])
            / median("plain", lambda r: r["fit_cpu"]),
            "wall_ratio": median(config, lambda r: r["fit_wall"])
            / median("plain", lambda r: r["fit_wall"]),
            "rss_ratio": median(config, lambda r: r["peak_rss_mb"])
            / median("plain", lambda r: r["peak_rss_mb"]),
            "peak_rss_mb": median(config, lambda r: r["peak_rss_mb"]),
            "probes": median(config, lambda r: r["probes"]),
            "bit_identical": all(r["digest"] in plain_digests for r in runs[config])
            if deterministic
            else None,
        }
    return rows


def print_table(model: str, steps: int, rows: dict[str, dict]) -> None:
    plain = rows["plain"]
    print(
        f"\n{model} ({steps} steps, batch {BATCH}): Keras' first step "
        f"{plain['first_step_cpu']:.1f} s CPU, peak RSS {plain['peak_rss_mb']:.0f} MB"
    )
    print(
        f"{'config':<20} {'one-time':>9} {'steady':>7} {'total':>7} {'wall':>7} "
        f"{'RSS':>6} {'probes':>6}  same weights"
    )
    for config, row in rows.items():
        print(
            f"{config:<20} {row['one_time_ratio']:>8.2f}× {row['steady_ratio']:>6.2f}× "
            f"{row['total_ratio']:>6.2f}× {row['wall_ratio']:>6.2f}× "
            f"{row['rss_ratio']:>5.2f}× {row['probes']:>6.0f}  "
            f"{_same_weights(row['bit_identical'])}"
        )


def _same_weights(verdict: bool | None) -> str:
    return "n/a (two plain fits differ)" if verdict is None else str(verdict)


def main(argv: list[str] | None = None) -> dict[str, dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument(
        "--configs", nargs="+", default=list(CONFIGS), choices=CONFIGS + ABLATIONS
    )
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--image", type=int, default=IMAGE)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help=f"run {QUICK}")
    parser.add_argument(
        "--nondeterministic",
        action="store_true",
        help="leave op determinism off (faster; weights may then differ in the "
        "last bits between any two fits, so 'same weights' means nothing)",
    )
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        model, config, steps, image, deterministic = args.child
        result = child(model, config, int(steps), int(image), deterministic == "1")
        print("RESULT " + json.dumps(result))
        return {}
    if args.quick:
        args.models, args.steps, args.image = (
            [QUICK["model"]],
            QUICK["steps"],
            QUICK["image"],
        )
        args.configs = ["plain", "bnscope"]
    configs = ["plain", *[c for c in args.configs if c != "plain"]]
    print(
        "ratios to plain fit, medians of interleaved runs; one-time = extra CPU to "
        "the end of step 1 / Keras' own first step"
    )
    settings = (args.steps, args.image, not args.nondeterministic)
    results = {}
    for model in args.models:
        runs: dict[str, list[dict]] = {config: [] for config in configs}
        for _ in range(args.repeats):
            for config in configs:
                runs[config].append(measure(model, config, *settings))
        reference = measure(model, "plain", *settings)
        results[model] = summarize_model(runs, reference)
        print_table(model, args.steps, results[model])
    return results


if __name__ == "__main__":
    main()
