"""`bnscope summarize` on deep models: is it linear in the number of tags?

Writes synthetic runs as the observer writes them — (Conv, BN, ReLU) blocks
and a softmax head, `--probes` probes, trouble planted in a few layers — at
several depths (430 layers is DenseNet121's count of leaf layers), and times
the whole `bnscope summarize` (read, index, rules, render) in this process,
median of `--repeats`. Seconds per 1,000 tags should stay flat as depth
grows; the targets (docs/performance.md) are ≤ 0.5 s at 430 layers and ≤ 1 s
at 1,000.

Usage:
    python benchmarks/summarize_scale.py [--layers 100 430 1000] [--probes 50]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bnscope.analysis.reader import read_logdir  # noqa: E402
from bnscope.cli.commands import summarize_command  # noqa: E402
from tests.support.synthetic_runs import deep_run  # noqa: E402
from tests.support.tensorboard_logs import write_as_observer  # noqa: E402


def time_summarize(logdir: str, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        summarize_command(logdir, False, "never", io.StringIO(), io.StringIO(), 100)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> dict[int, dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, nargs="+", default=[100, 430, 1000])
    parser.add_argument("--probes", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="50 and 100 layers")
    args = parser.parse_args(argv)
    if args.quick:
        args.layers, args.probes, args.repeats = [50, 100], 10, 1
    print(f"{'layers':>6} {'tags':>7} {'summarize':>10} {'per 1k tags':>12}")
    results = {}
    for layers in args.layers:
        with tempfile.TemporaryDirectory() as logdir:
            write_as_observer(deep_run(layers, args.probes, sick=True), logdir)
            tags = len(read_logdir(logdir).runs[0].scalars)
            seconds = time_summarize(logdir, args.repeats)
        results[layers] = {"tags": tags, "seconds": seconds}
        print(f"{layers:>6} {tags:>7} {seconds:>9.3f}s {1000 * seconds / tags:>11.4f}s")
    return results


if __name__ == "__main__":
    main()
