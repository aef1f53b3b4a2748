"""Cost of the live findings' epoch-end evaluation, against a 30-step LeNet-5 epoch.

Three measurements, all in process CPU time (`time.process_time()`, steady on
shared machines; wall time varies by about ±20% here):

1. one epoch of plain `fit` of LeNet-5 with BN (30 steps of batch 128): the
   median over the epochs after the first;
2. the epoch-end evaluation inside a real `BNScope` fit of the same model,
   probing every step (the most data per epoch): the median over its epochs;
3. the epoch-end evaluation after 10, 100 and 1000 epochs' worth of synthetic
   probes of the same model (its real tags and metadata, values jittered
   around a real probe's), probing every 10 steps and every step: the store
   keeps at most 256 values per series (`bnscope.recording.live_store`), so
   the cost stops growing once a series holds that many. The three are
   measured interleaved (one evaluation of each in turn), medians.

Prints each cost and its ratio to the plain epoch (target: at most 1%).

Usage:
    python benchmarks/live_findings.py [--quick] [--repeats 31] [--epochs 8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras
import numpy as np
from overhead import BATCH, STEPS_PER_EPOCH, lenet_bn

from bnscope import BNScope
from bnscope.recording.guard import Guard
from bnscope.recording.live import LiveFindings

TRAINING_LENGTHS = (10, 100, 1000)  # epochs' worth of probes in the store
DENSITIES = {"every 10 steps": 3, "every step": STEPS_PER_EPOCH}  # rows per epoch


class EpochCPU(keras.callbacks.Callback):
    """Process CPU time of each epoch."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.process_time() - self._start)

    def on_train_begin(self, logs=None):
        self.times: list[float] = []


class StandInObserver:
    """What `LiveFindings` uses of the observer, without a model or files."""

    def __init__(self):
        self.listeners = []
        self.guard = Guard(strict=True)
        self.run_dir = "bnscope"

    def write(self, step, values, metadata=None):
        for listener in self.listeners:
            listener(step, values, metadata)

    def write_text(self, step, tag, text):
        pass


def data():
    rng = np.random.default_rng(0)
    n = BATCH * STEPS_PER_EPOCH
    return rng.random((n, 28, 28, 1), dtype="float32"), rng.integers(0, 10, n)


def plain_epoch_cpu(x, y, epochs: int) -> float:
    keras.utils.set_random_seed(0)
    model = lenet_bn()
    model.compile("adam", "sparse_categorical_crossentropy")
    clock = EpochCPU()
    model.fit(x, y, batch_size=BATCH, epochs=epochs, verbose=0, callbacks=[clock])
    return statistics.median(clock.times[1:])


def real_fit(x, y, epochs: int, log_dir: str):
    """A BNScope fit probing every step; returns its epoch-end costs and a probe."""
    keras.utils.set_random_seed(0)
    model = lenet_bn()
    model.compile("adam", "sparse_categorical_crossentropy")
    callback = BNScope(log_dir=log_dir, every_n_steps=1, alerts=None)
    costs: list[float] = []
    end_epoch = callback.live.end_epoch

    def timed(step, logs):
        start = time.process_time()
        end_epoch(step, logs)
        costs.append(time.process_time() - start)

    callback.live.end_epoch = timed
    model.fit(x, y, batch_size=BATCH, epochs=epochs, verbose=0, callbacks=[callback])
    # A real probe row (the probe's block holds the most tags) and the metadata.
    store = callback.live.store
    block = max(store._blocks.values(), key=lambda b: len(b.tags))
    _, _, rows = block.ordered()
    probe = dict(zip(block.tags, rows[-1].tolist()))
    return costs[1:], probe, store.metadata


class SyntheticTraining:
    """A `LiveFindings` fed `per_epoch` jittered copies of a real probe per epoch."""

    def __init__(self, probe, metadata, per_epoch: int, epochs: int):
        self.live = LiveFindings(alerts=None)
        self.observer = StandInObserver()
        self.live.attach(self.observer)
        self.live.start_fit(None, {"verbose": 0})
        self.rng = np.random.default_rng(0)
        self.tags = list(probe)
        self.base = np.array([probe[t] for t in self.tags])
        self.metadata, self.per_epoch, self.step = metadata, per_epoch, 0
        for _ in range(epochs):
            self.one_epoch()

    def one_epoch(self) -> None:
        for _ in range(self.per_epoch):
            self.step += STEPS_PER_EPOCH // self.per_epoch
            jitter = np.exp(0.05 * self.rng.standard_normal(len(self.base)))
            values = dict(zip(self.tags, (self.base * jitter).tolist()))
            self.observer.write(self.step, values, self.metadata)

    def timed_epoch_end(self) -> float:
        """One more epoch of probes (so the evaluation runs), then its cost."""
        self.one_epoch()
        start = time.process_time()
        self.live.end_epoch(self.step, {})
        return time.process_time() - start


def synthetic_costs(probe, metadata, per_epoch: int, repeats: int) -> list[float]:
    """Median epoch-end cost after each of `TRAINING_LENGTHS` epochs, interleaved
    so that the load of a shared machine spreads over all of them alike."""
    runs = [SyntheticTraining(probe, metadata, per_epoch, n) for n in TRAINING_LENGTHS]
    costs: list[list[float]] = [[] for _ in runs]
    for _ in range(repeats):
        for run, samples in zip(runs, costs):
            samples.append(run.timed_epoch_end())
    return [statistics.median(samples) for samples in costs]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repeats (tests)")
    parser.add_argument("--repeats", type=int, default=31)
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args(argv)
    repeats = 3 if args.quick else args.repeats
    epochs = 3 if args.quick else args.epochs

    x, y = data()
    plain = plain_epoch_cpu(x, y, epochs)
    with tempfile.TemporaryDirectory() as log_dir:
        real_costs, probe, metadata = real_fit(x, y, epochs, log_dir)
    real = statistics.median(real_costs)
    print(
        f"LeNet-5 + BN, {STEPS_PER_EPOCH} steps of batch {BATCH}: plain epoch "
        f"{plain * 1e3:.0f} ms CPU (median of {epochs - 1} epochs)"
    )
    print(
        f"epoch-end evaluation in a real BNScope fit probing every step: "
        f"{real * 1e3:.2f} ms CPU = {100 * real / plain:.2f}% of the epoch"
    )
    results = {"plain_epoch": plain, "real": real, "synthetic": {}}
    print(f"\nepoch-end evaluation with N epochs of probes stored ({len(probe)} tags)")
    print(f"  {'probes':<15} " + " ".join(f"{n:>9} ep" for n in TRAINING_LENGTHS))
    for density, per_epoch in DENSITIES.items():
        costs = synthetic_costs(probe, metadata, per_epoch, repeats)
        results["synthetic"][density] = dict(zip(TRAINING_LENGTHS, costs))
        print(f"  {density:<15} " + " ".join(f"{c * 1e3:>9.2f} ms" for c in costs))
        print(
            f"  {'':<15} "
            + " ".join(f"{100 * c / plain:>10.2f}%" for c in costs)
            + f"   growth {TRAINING_LENGTHS[-1]}/{TRAINING_LENGTHS[0]} epochs: "
            f"{costs[-1] / costs[0]:.2f}x"
        )
    return results


if __name__ == "__main__":
    main()
