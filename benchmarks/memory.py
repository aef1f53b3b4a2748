"""Process memory over a long training with BNScope attached.

Trains a small MLP with BatchNormalization for 20 000 steps (batch 32),
probing every 50 steps with histograms every 10th probe, and samples the
resident set size (VmRSS) every 1000 steps. Each configuration runs in its
own process, so one cannot inherit the other's heap. Prints first, last and
maximum RSS and the least-squares slope after warm-up, for plain `fit` and
with BNScope; memory is flat when BNScope's slope matches plain `fit`'s.

Usage:
    python benchmarks/memory.py [--steps 20000] [--every 50]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

BATCH = 32
SAMPLE_EVERY = 1000
WARMUP_SAMPLES = 2  # tracing, allocator pools and caches settle first


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def train(steps: int, every: int | None, log_dir: str) -> list[tuple[int, float]]:
    """Runs in a child process: returns `(step, rss_mb)` samples."""
    import keras
    import numpy as np

    from bnscope import BNScope

    L = keras.layers
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((32,)),
            L.Dense(64, use_bias=False),
            L.BatchNormalization(),
            L.Activation("relu"),
            L.Dense(64, use_bias=False),
            L.BatchNormalization(),
            L.Activation("relu"),
            L.Dense(10, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCH * SAMPLE_EVERY, 32)).astype("float32")
    y = rng.integers(0, 10, size=len(x))

    samples: list[tuple[int, float]] = []

    class Sampler(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            samples.append(((epoch + 1) * SAMPLE_EVERY, rss_mb()))

    callbacks = [Sampler()]
    if every is not None:
        callbacks.insert(0, BNScope(log_dir=log_dir, every_n_steps=every))
    samples.append((0, rss_mb()))
    model.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=steps // SAMPLE_EVERY,
        callbacks=callbacks,
        verbose=0,
    )
    return samples


def slope_per_10k(samples: list[tuple[int, float]]) -> float:
    import numpy as np

    steps, rss = np.array(samples[WARMUP_SAMPLES:]).T
    return float(np.polyfit(steps, rss, 1)[0] * 10_000)


def report(name: str, samples: list[tuple[int, float]]) -> dict:
    rss = [value for _, value in samples]
    settled = rss[WARMUP_SAMPLES:]
    return {
        "config": name,
        "first_mb": round(rss[0], 1),
        "after_warmup_mb": round(settled[0], 1),
        "last_mb": round(rss[-1], 1),
        "max_mb": round(max(rss), 1),
        "growth_after_warmup_mb": round(rss[-1] - settled[0], 1),
        "slope_mb_per_10k_steps": round(slope_per_10k(samples), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--child", choices=("plain", "bnscope"), help=argparse.SUPPRESS)
    parser.add_argument("--log-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        every = args.every if args.child == "bnscope" else None
        print(json.dumps(train(args.steps, every, args.log_dir)))
        return

    rows = []
    with tempfile.TemporaryDirectory() as log_dir:
        for name in ("plain", "bnscope"):
            output = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    *("--child", name, "--log-dir", log_dir),
                    *("--steps", str(args.steps), "--every", str(args.every)),
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            samples = [tuple(s) for s in json.loads(output.strip().splitlines()[-1])]
            rows.append(report(name, samples))
            print(
                f"{name}: " + " ".join(f"{s}:{r:.0f}" for s, r in samples), flush=True
            )
    print(f"\n{args.steps} steps, batch {BATCH}, probe every {args.every} steps")
    header = list(rows[0])
    print(" | ".join(header))
    for row in rows:
        print(" | ".join(str(row[key]) for key in header))


if __name__ == "__main__":
    main()
