"""Benchmark: `bnscope summarize` against TensorBoard's `EventAccumulator`.

Builds a logdir of at least 1M scalars with bnscope's own event writer
(60 layers x 20 metrics per probe, like a mid-sized CNN), then times, in this
one process:

- `bnscope.analysis.reader.read_logdir` (decode and merge),
- the full `bnscope summarize` (read, rules, render),
- `EventAccumulator` with `size_guidance` set to keep every value,

and the CLI start-up (`python -m bnscope --help`, and `bnscope summarize` on
a small logdir) in subprocesses. Targets (docs/cli.md): >= 1M scalars/s, >= 10x
EventAccumulator, start-up < 0.5 s.

Usage:

```
python benchmarks/reader.py [--probes 850] [--keep DIR]
```
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from bnscope import tags
from bnscope.analysis.reader import read_logdir
from bnscope.cli.commands import summarize_command
from bnscope.events.writer import EventFileWriter, metadata_summary, scalars_summary

LAYERS = 60
LAYER_METRICS = [
    m.name
    for m in tags.ALL_METRICS
    if m.subject == tags.LAYER and m is not tags.ACT_HIST
][:20]
HEALTHY = {
    "act_std": 1.0,
    "act_zero_frac": 0.5,
    "act_dead_frac": 0.02,
    "act_saturated_frac": 0.05,
    "act_nonfinite": 0.0,
    "grad_norm": 0.3,
    "grad_nonfinite": 0.0,
    "weight_nonfinite": 0.0,
    "weight_norm": 5.0,
}


def build_logdir(root: str, probes: int, every: int = 50) -> int:
    """Writes one bnscope run with `probes` probes; returns the scalar count."""
    run_dir = os.path.join(root, "bnscope")
    names = [
        f"conv2d_{i}" if i % 2 == 0 else f"batch_normalization_{i}"
        for i in range(LAYERS)
    ]
    metadata = {
        "schema": 1,
        "model": {"name": "bench", "class": "Functional"},
        "batch_size": 128,
        "layers": [
            {"name": n, "class": "Conv2D", "depth": d, "activation": "relu"}
            for d, n in enumerate(names)
        ],
    }
    tag_list = [f"{metric}/{name}" for name in names for metric in LAYER_METRICS]
    # Healthy levels with 5% noise, so the report is a realistic one.
    base = np.array([HEALTHY.get(tag.split("/")[0], 0.1) for tag in tag_list])
    rng = np.random.default_rng(0)
    writer = EventFileWriter(run_dir)
    writer.add_summary(metadata_summary(metadata, ""), 0)
    for probe in range(probes):
        noise = 1.0 + 0.05 * rng.standard_normal(len(tag_list))
        values = (base * noise).astype(np.float32).tolist()
        writer.add_summary(scalars_summary(dict(zip(tag_list, values))), probe * every)
    writer.close()
    return len(tag_list) * probes


def best_of(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def cli_start(args: list[str], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(args, check=False, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_event_accumulator(logdir: str) -> tuple[float, float, int]:
    """Returns (TensorFlow import seconds, Reload seconds, scalars kept)."""
    start = time.perf_counter()
    from tensorboard.backend.event_processing import event_accumulator as ea
    from tensorboard.compat import tf

    _ = tf.io.gfile  # TensorBoard imports TensorFlow lazily when installed
    imported = time.perf_counter() - start
    keep_all = {
        ea.COMPRESSED_HISTOGRAMS: 0,
        ea.IMAGES: 0,
        ea.AUDIO: 0,
        ea.SCALARS: 0,
        ea.HISTOGRAMS: 0,
        ea.TENSORS: 0,
    }
    accumulator = ea.EventAccumulator(
        os.path.join(logdir, "bnscope"), size_guidance=keep_all
    )
    start = time.perf_counter()
    accumulator.Reload()
    seconds = time.perf_counter() - start
    kept = sum(len(accumulator.Scalars(t)) for t in accumulator.Tags()["scalars"])
    return imported, seconds, kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=850, help="probes to write")
    parser.add_argument(
        "--keep", default=None, help="write the logdir here and keep it"
    )
    args = parser.parse_args()

    root = args.keep or tempfile.mkdtemp(prefix="bnscope-bench-")
    try:
        start = time.perf_counter()
        scalars = build_logdir(root, args.probes)
        size = sum(
            os.path.getsize(os.path.join(d, f))
            for d, _, fs in os.walk(root)
            for f in fs
        )
        print(
            f"logdir: {scalars:,} scalars, {size / 1e6:.1f} MB, "
            f"written in {time.perf_counter() - start:.1f} s"
        )

        read_seconds = best_of(lambda: read_logdir(root), 3)
        read = read_logdir(root)
        assert read.runs[0].stats.scalars == scalars, read.runs[0].stats
        summarize_seconds = best_of(
            lambda: summarize_command(
                root, stdout=io.StringIO(), stderr=io.StringIO(), width=100
            ),
            3,
        )
        tf_import, ea_seconds, ea_kept = time_event_accumulator(root)
        assert ea_kept == scalars, (ea_kept, scalars)

        small = os.path.join(root, "small")
        build_logdir(small, 20)
        python = sys.executable
        bnscope = shutil.which("bnscope", path=os.path.dirname(python)) or "bnscope"
        start_help = cli_start([python, "-m", "bnscope", "--help"])
        start_small = cli_start([bnscope, "summarize", small])

        print(
            f"bnscope reader:      {read_seconds:6.3f} s  {scalars / read_seconds / 1e6:5.2f} M scalars/s"
        )
        print(
            f"bnscope summarize:   {summarize_seconds:6.3f} s  {scalars / summarize_seconds / 1e6:5.2f} M scalars/s"
        )
        print(
            f"EventAccumulator:    {ea_seconds:6.3f} s  {scalars / ea_seconds / 1e6:5.2f} M scalars/s "
            f"(+ {tf_import:.1f} s importing TensorFlow)"
        )
        print(
            f"speed-up vs EventAccumulator: reader {ea_seconds / read_seconds:.1f}x, "
            f"summarize {ea_seconds / summarize_seconds:.1f}x "
            f"({(ea_seconds + tf_import) / summarize_seconds:.1f}x with its TF import)"
        )
        print(
            f"CLI start: `python -m bnscope --help` {start_help:.3f} s, "
            f"`bnscope summarize` (small logdir) {start_small:.3f} s"
        )
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
