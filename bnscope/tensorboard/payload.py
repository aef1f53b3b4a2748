"""One bnscope run as the tab shows it: findings, layers and heatmap matrices.

`AnalysedRun` is computed once per data generation of a run (the plugin
caches it) from the `Run` the adapter built: the rules run here, in the
TensorBoard process, exactly as `bnscope summarize` runs them, and the JSON
the page fetches is assembled once.
"""

from __future__ import annotations

import json
import math
import threading
import time
from typing import Any

import numpy as np

from bnscope import tags
from bnscope.analysis import jsonv1
from bnscope.analysis.compare import align_layers
from bnscope.analysis.runs import Run
from bnscope.analysis.summary import summarize
from bnscope.schema import LayerMeta
from bnscope.tensorboard.adapter import ProviderRun

# The heatmap statistics, in tab order: (metric, label, colour scale). Norms,
# ratios, spreads and drifts span decades: log colour. Fractions: 0 to 1.
HEATMAP_STATS: tuple[tuple[tags.Metric, str, str], ...] = (
    (tags.GRAD_NORM, "gradient norm", "log"),
    (tags.UPDATE_RATIO, "update ratio", "log"),
    (tags.ACT_STD, "activation std", "log"),
    (tags.ACT_DEAD_FRAC, "dead fraction", "linear"),
    (tags.ACT_SATURATED_FRAC, "saturated fraction", "linear"),
    (tags.BN_MEAN_SHIFT, "BN drift", "log"),
    (tags.BN_GAP, "train/inference gap", "log"),
)


def json_bytes(payload: Any) -> bytes:
    """Compact JSON; NaN/Inf must have been replaced (JSON has none)."""
    return json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()


def row_json(values: np.ndarray, known: np.ndarray) -> str:
    """One heatmap row as JSON text.

    7 significant digits (float32 precision), `null` where the layer has no
    value at a step, and `"nan"`/`"inf"`/`"-inf"` strings for non-finite
    values (JSON has no NaN).
    """
    finite = np.isfinite(values)
    text = np.char.mod("%.7g", np.where(finite, values, 0.0)).astype(object)
    for i in np.flatnonzero(~finite & known):
        text[i] = json.dumps(value_json(float(values[i])))
    text[~known] = "null"
    return "[" + ",".join(text) + "]"


def value_json(value: float) -> float | str:
    """A float for JSON: itself if finite, else `"nan"`, `"inf"` or `"-inf"`."""
    if math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def layer_view(layer: LayerMeta) -> dict[str, Any]:
    """What the page shows beside a layer's row."""
    norm = layer.normalization
    return {
        "name": layer.name,
        "depth": layer.depth,
        "class": layer.class_name,
        "activation": layer.activation,
        "params": layer.params,
        "norm": layer.normalization_kind,
        "training_mode": None if norm is None else norm.training_mode,
    }


class AnalysedRun:
    """One run's findings and page payload, for one data generation.

    Args:
        provider_run: The run as the adapter read it.
        generation: What the provider listed for it (changes with new data).
        probe: The cheap freshness key (`adapter.probe_generation`).
    """

    def __init__(self, provider_run: ProviderRun, generation, probe=None):
        start = time.perf_counter()
        self.generation = generation
        self.probe = probe
        self.provider_run = provider_run
        self.run = provider_run.run
        # Exactly what `bnscope summarize` reports: per fit, grouped by cause.
        self.report = summarize(self.run)
        self.findings = self.report.findings
        self.timings = dict(provider_run.timings)
        self.timings["rules"] = time.perf_counter() - start
        self._payload: bytes | None = None
        self.lock = threading.Lock()

    def counts(self) -> dict[str, int]:
        counts = {"error": 0, "warning": 0, "info": 0}
        for finding in self.findings:
            counts[finding.severity] = counts.get(finding.severity, 0) + 1
        return counts

    def summary(self) -> dict[str, Any]:
        run = self.run
        steps = run.steps
        return {
            "name": run.name,
            "model": run.model_name,
            "model_class": run.model_class,
            "layers": len(run.layers),
            "steps": list(steps) if steps else None,
            "probes": len(run.probe_steps),
            "counts": self.counts(),
            "metadata": self.provider_run.metadata_source,
            "possibly_sampled": self.provider_run.possibly_sampled,
        }

    def findings_json(self) -> dict[str, Any]:
        """The run's entry of `bnscope summarize --json`."""
        return jsonv1.run_summary(self.report)

    def series_json(self, layer: str) -> dict[str, Any]:
        """Every series of one layer (and of its variables), for the line charts."""
        result = {}
        variable_prefix = layer + tags.VARIABLE_SEPARATOR
        for tag, series in self.run.scalars.items():
            metric, _, subject = tag.partition("/")
            if subject != layer and not subject.startswith(variable_prefix):
                continue
            result[tag] = {
                "metric": metric,
                "subject": subject,
                "steps": series.steps.tolist(),
                "values": [value_json(v) for v in series.values.tolist()],
            }
        return {"run": self.run.name, "layer": layer, "series": result}

    def payload(self) -> bytes:
        """The page's `run` route: built once, then served from memory."""
        with self.lock:
            if self._payload is None:
                self._payload = self._build_payload()
            return self._payload

    def _build_payload(self) -> bytes:
        start = time.perf_counter()
        run = self.run
        steps = run.probe_steps
        column = {int(step): i for i, step in enumerate(steps)}
        stats_text = []
        for metric, label, scale in HEATMAP_STATS:
            rows = []
            present = 0
            for layer in run.layers:
                series = run.series(metric, layer.name)
                if series is None or len(series) == 0:
                    rows.append("null")
                    continue
                present += 1
                index = np.fromiter(
                    (column[int(s)] for s in series.steps),
                    dtype=np.int64,
                    count=len(series),
                )
                values = np.zeros(len(steps))
                values[index] = series.values
                known = np.zeros(len(steps), bool)
                known[index] = True
                rows.append(row_json(values, known))
            stats_text.append(
                f'{json.dumps(metric.name)}:{{"label":{json.dumps(label)},'
                f'"scale":"{scale}","description":{json.dumps(metric.description)},'
                f'"present":{present},"rows":[{",".join(rows)}]}}'
            )
        self.timings["payload"] = time.perf_counter() - start
        head = self.summary()
        head["layer_info"] = [layer_view(layer) for layer in run.layers]
        head["probe_steps"] = [int(s) for s in steps]
        head["findings"] = [jsonv1.finding(f) for f in self.findings]
        head["findings_markdown"] = self.provider_run.findings_markdown
        head["notes"] = list(run.notes)
        head["timings_ms"] = {k: round(1000 * v, 1) for k, v in self.timings.items()}
        head_text = json.dumps(head, separators=(",", ":"), allow_nan=False)
        return (head_text[:-1] + ',"stats":{' + ",".join(stats_text) + "}}").encode()


def align_json(a: Run, b: Run) -> dict[str, Any]:
    """Row pairs `[index in a | None, index in b | None]`, as `bnscope compare`
    pairs layers (by class sequence; inserted layers pair with nothing)."""
    index_a = {layer.name: i for i, layer in enumerate(a.layers)}
    index_b = {layer.name: i for i, layer in enumerate(b.layers)}
    pairs = [
        [
            None if pair.a is None else index_a[pair.a.name],
            None if pair.b is None else index_b[pair.b.name],
        ]
        for pair in align_layers(a.layers, b.layers)
    ]
    return {"pairs": pairs}
