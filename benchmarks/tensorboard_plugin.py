"""Benchmark: the bnscope tab on a 430-layer model, server and page.

Writes two synthetic 430-layer runs as the observer writes them (`deep`: dead
ReLUs, a drifting BN and a train/inference gap planted; `deep_healthy`),
starts TensorBoard (`--load_fast=true`: the Rust data server, TensorBoard's
default; `false`: the Python multiplexer), and times:

- every plugin route cold (first request after TensorBoard loaded the run)
  and warm (cached), in wall time, with TensorBoard's CPU time (its process
  group, from /proc) for the cold `run` route;
- `bnscope summarize --json` on the same logdir, and checks the `findings`
  route equals it;
- the page in headless Chromium: first render, a statistic switch (repaint
  of both 430-row heatmaps), hover per mouse move, a finding click, a row
  click (two `series` fetches and the line charts).

Wall times on a shared 2-core machine move by ±20% or more between runs;
the ratios printed at the end are what to compare.

Usage:

```
python benchmarks/tensorboard_plugin.py [--layers 430] [--probes 50] [--modes true,false]
python benchmarks/tensorboard_plugin.py --quick      # 40 layers, 8 probes, Rust loader only
```
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.support import tensorboard_harness as harness  # noqa: E402
from tests.support.synthetic_runs import deep_run  # noqa: E402
from tests.support.tensorboard_logs import write_as_observer  # noqa: E402


def group_cpu_seconds(pid: int) -> float:
    """User + system CPU time of every process in `pid`'s process group."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as file:
                fields = file.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pid:  # pgrp
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def timed_get(url: str, repeat: int = 1) -> tuple[float, bytes]:
    times, body = [], b""
    for _ in range(repeat):
        start = time.perf_counter()
        body = harness.get(url, timeout=600)
        times.append(time.perf_counter() - start)
    return statistics.median(times), body


def ms(seconds: float) -> float:
    return round(1000 * seconds, 1)


def routes(tb, expected: dict) -> dict:
    base = tb.url + "/data/plugin/bnscope"
    q = urllib.parse.urlencode
    out: dict = {}
    out["runs_listing_ms"] = ms(timed_get(f"{base}/runs")[0])
    cpu = group_cpu_seconds(tb.pid)
    seconds, body = timed_get(f"{base}/run?{q({'run': 'deep/bnscope'})}")
    out["run_cold_ms"] = ms(seconds)
    out["run_cold_tensorboard_cpu_ms"] = ms(group_cpu_seconds(tb.pid) - cpu)
    out["run_cold_breakdown_ms"] = json.loads(body)["timings_ms"]
    out["run_payload_kb"] = round(len(body) / 1024)
    out["run_warm_ms"] = ms(timed_get(f"{base}/run?{q({'run': 'deep/bnscope'})}", 5)[0])
    seconds, body = timed_get(f"{base}/findings?{q({'run': 'deep/bnscope'})}", 5)
    out["findings_warm_ms"] = ms(seconds)
    out["findings_equal_summarize"] = json.loads(body) == expected["deep/bnscope"]
    layer = "conv_10"
    out["series_warm_ms"] = ms(
        timed_get(f"{base}/series?{q({'run': 'deep/bnscope', 'layer': layer})}", 5)[0]
    )
    align = q({"a": "deep/bnscope", "b": "deep_healthy/bnscope"})
    out["align_ms"] = ms(timed_get(f"{base}/align?{align}", 5)[0])
    return out


PAGE_SCRIPT = """
const out = {};
const switches = [];
for (const stat of ['act_std', 'act_dead_frac', 'bn_mean_shift', 'grad_norm', 'update_ratio']) {
  const t = performance.now();
  document.querySelector(`.bn-stat[data-stat="${stat}"]`).click();
  document.body.offsetHeight;  // force layout
  switches.push(performance.now() - t);
}
out.stat_switch_ms = switches;
const c = document.querySelector('.bn-overlay[data-side="a"]');
const r = c.getBoundingClientRect();
let t = performance.now();
for (let i = 0; i < 500; i++) {
  const x = r.left + (i * 7) % r.width, y = r.top + Math.min(r.height - 1, (i * 13) % 900);
  c.dispatchEvent(new MouseEvent('mousemove', {clientX: x, clientY: y, bubbles: true}));
}
out.hover_per_event_ms = (performance.now() - t) / 500;
const item = [...document.querySelectorAll('.bn-findings[data-side="a"] .bn-finding.bn-linked')].at(-1);
t = performance.now();
if (item) { item.click(); document.body.offsetHeight; }
out.finding_click_ms = item ? performance.now() - t : null;
return out;
"""

ROW_SCRIPT = """
const done = arguments[arguments.length - 1];
const row = document.querySelector('.bn-heatmap[data-side="a"] .bn-row[data-layer]');
const t = performance.now();
row.click();
const wait = () => document.querySelectorAll('#bn-chart canvas.bn-line').length
  && !document.getElementById('bn-chart').hidden ? done(performance.now() - t) : setTimeout(wait, 5);
wait();
"""


def page(tb) -> dict:
    driver = harness.chromium(1600, 1000)
    out: dict = {}
    try:
        start = time.perf_counter()
        driver.get(harness.plugin_url(tb))
        assert harness.wait_ready(driver, 600) == "ready"
        out["page_ready_s"] = round(time.perf_counter() - start, 2)
        timings = driver.execute_script("return window.bnscope.timings")
        out["first_render_ms"] = round(timings["first_render_ms"], 1)
        out["draw_ms"] = round(timings["draw_ms"], 1)
        out["rows"] = driver.execute_script(
            "return document.querySelectorAll('.bn-row[data-layer]').length"
        )
        measured = driver.execute_script(PAGE_SCRIPT)
        switches = measured.pop("stat_switch_ms")
        out["stat_switch_ms"] = {
            "median": round(statistics.median(switches), 1),
            "max": round(max(switches), 1),
        }
        out["hover_per_event_ms"] = round(measured["hover_per_event_ms"], 3)
        out["finding_click_ms"] = measured["finding_click_ms"] and round(
            measured["finding_click_ms"], 1
        )
        out["row_click_chart_ms"] = round(driver.execute_async_script(ROW_SCRIPT), 1)
    finally:
        driver.quit()
        shutil.rmtree(driver.bnscope_profile, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=430)
    parser.add_argument("--probes", type=int, default=50)
    parser.add_argument("--modes", default="true,false")
    parser.add_argument("--quick", action="store_true", help="40 layers, 8 probes")
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.layers, args.probes, args.modes = 40, 8, "true"

    logdir = tempfile.mkdtemp(prefix="bnscope-tb-bench-")
    try:
        for name, sick in (("deep", True), ("deep_healthy", False)):
            run = deep_run(args.layers, args.probes, sick)
            write_as_observer(run, os.path.join(logdir, name, "bnscope"))
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "bnscope", "summarize", logdir, "--json"],
            capture_output=True,
            text=True,
            check=False,
        )
        summarize_s = time.perf_counter() - start
        expected = {r["run"]: r for r in json.loads(done.stdout)["runs"]}
        result: dict = {
            "layers": args.layers,
            "probes": args.probes,
            "scalar_tags_per_run": None,
            "bnscope_summarize_json_ms": ms(summarize_s),
        }
        for mode in args.modes.split(","):
            tb = harness.TensorBoard(logdir, load_fast=mode)
            try:

                def loaded(tb):
                    runs = harness.get_json(tb.url + "/data/plugin/bnscope/runs")[
                        "runs"
                    ]
                    return len(runs) == 2 and all(
                        r["max_step"] == expected[r["name"]]["steps"][1] for r in runs
                    )

                start = time.perf_counter()
                tb.wait(timeout=900, until=loaded)
                out = {"tensorboard_loaded_s": round(time.perf_counter() - start, 1)}
                listing = harness.get_json(tb.url + "/data/plugin/bnscope/runs")
                result["scalar_tags_per_run"] = listing["runs"][0]["tags"]
                out.update(routes(tb, expected))
                if not args.no_browser:
                    out["page"] = page(tb)
                result[f"load_fast={mode}"] = out
            finally:
                tb.stop()
    finally:
        shutil.rmtree(logdir, ignore_errors=True)

    print(json.dumps(result, indent=1))
    for mode in args.modes.split(","):
        out = result[f"load_fast={mode}"]
        print(
            f"load_fast={mode}: cold run route / bnscope summarize = "
            f"{out['run_cold_ms'] / result['bnscope_summarize_json_ms']:.2f}x, "
            f"warm / cold = {out['run_warm_ms'] / out['run_cold_ms']:.3f}x, "
            f"findings equal summarize: {out['findings_equal_summarize']}"
        )
    return result


if __name__ == "__main__":
    main()
