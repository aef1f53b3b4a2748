"""The bnscope tab in TensorBoard: a dynamic (iframed, ES module) plugin.

TensorBoard finds it through the `tensorboard_plugins` entry point, lists a
"bnscope" tab whenever the logdir holds a bnscope run, and loads
`/data/plugin_entry.html?name=bnscope`, which imports `./index.js` relative to
`/data/plugin/bnscope/`. Everything the page shows comes from the routes
below, which read the logdir through `context.data_provider` only, and from
bnscope's TensorFlow-free rules run in the TensorBoard process.

Routes (all under `/data/plugin/bnscope/`):

- `index.js`, `style.css`: the hand-written front end (package data).
- `runs`: the bnscope runs, with their size and finding counts.
- `run?run=R`: layers in depth order, the probe steps, one layer × step
  matrix per heatmap statistic, and the findings (`bnscope summarize --json`
  wording and fields).
- `findings?run=R`: the run's entry of `bnscope summarize --json`.
- `series?run=R&layer=L`: every scalar series of one layer, for the chart.

- `align?a=A&b=B`: the two runs' layers paired by class sequence (as
  `bnscope compare`).

The payload of `run` also carries the `bnscope/findings` Markdown summary
when the run holds one.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from typing import TYPE_CHECKING

from tensorboard import errors, plugin_util
from tensorboard.backend import http_util
from tensorboard.plugins import base_plugin
from werkzeug import wrappers

if TYPE_CHECKING:
    from bnscope.tensorboard.payload import AnalysedRun

logger = logging.getLogger(__name__)

# bnscope's analysis side is imported when TensorBoard constructs the plugin,
# not when it loads the entry point: TensorBoard does not guard the
# entry-point import, so a broken bnscope install (a missing dependency, a
# bad upgrade) would stop TensorBoard from starting at all, whereas an
# exception in the constructor only drops this tab (TensorBoard logs "Failed
# to load plugin ...; ignoring it"). This module itself imports only
# TensorBoard, werkzeug and the standard library.
adapter = None  # bnscope.tensorboard.adapter, once imported
payload = None  # bnscope.tensorboard.payload, once imported


def _import_analysis() -> None:
    global adapter, payload
    if adapter is None:
        from bnscope.tensorboard import adapter as _adapter
        from bnscope.tensorboard import payload as _payload

        adapter, payload = _adapter, _payload


# The plugin and its metadata tensor share the name `bnscope.tags.METADATA_PLUGIN`
# (a literal here, so that loading the entry point imports nothing of bnscope;
# tests/tensorboard/test_plugin.py checks they agree).
PLUGIN_NAME = "bnscope"
STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
_STATIC = {
    "/index.js": ("index.js", "text/javascript"),
    "/style.css": ("style.css", "text/css"),
}

# Runs kept analysed in memory (a 430-layer, 50-probe run: ~6 MB).
MAX_CACHED_RUNS = 8


class BNScopePlugin(base_plugin.TBPlugin):
    """bnscope's per-layer heatmaps and findings, as a TensorBoard tab."""

    plugin_name = PLUGIN_NAME

    def __init__(self, context):
        _import_analysis()  # may raise: TensorBoard then drops this tab only
        self._data_provider = context.data_provider
        hints = context.sampling_hints or {}
        self._reservoir = hints.get("scalars", adapter.DEFAULT_SCALAR_RESERVOIR)
        self._logdir = context.logdir
        self._cache: collections.OrderedDict[tuple[str, str], AnalysedRun] = (
            collections.OrderedDict()
        )
        self._lock = threading.Lock()
        self._run_locks: dict[tuple[str, str], threading.Lock] = {}

    # -- TensorBoard hooks -----------------------------------------------------------

    def get_plugin_apps(self):
        apps = {path: self._serve_static for path in _STATIC}
        apps.update(
            {
                "/runs": self._serve_runs,
                "/run": self._serve_run,
                "/findings": self._serve_findings,
                "/series": self._serve_series,
                "/align": self._serve_align,
            }
        )
        return apps

    def is_active(self):
        """True when some run holds bnscope scalars.

        TensorBoard first checks `data_plugin_names()` against the provider's
        `list_plugins`; this fallback covers runs whose metadata tensor the
        provider does not list (see `adapter`).
        """
        if self._data_provider is None:
            return False
        from tensorboard import context as tb_context

        try:
            return bool(
                adapter.list_runs(self._data_provider, tb_context.RequestContext(), "")
            )
        except Exception:  # never break the plugin listing
            logger.exception("bnscope: is_active failed")
            return False

    def frontend_metadata(self):
        return base_plugin.FrontendMetadata(
            es_module_path="/index.js", tab_name="bnscope"
        )

    def data_plugin_names(self):
        return (PLUGIN_NAME,)

    # -- Data ------------------------------------------------------------------------------

    def _cached(self, key, generation=None) -> AnalysedRun | None:
        """The cached build of `key`, if any (and of `generation`, if given)."""
        with self._lock:
            built = self._cache.get(key)
            if built is None or (
                generation is not None and built.generation != generation
            ):
                return None
            self._cache.move_to_end(key)
            return built

    def _built(self, ctx, experiment, run_name, index=None) -> AnalysedRun | None:
        """The analysed run, from the cache while TensorBoard has nothing new.

        Args:
            index: The run's `RunIndex` if the caller just listed it. Without
                it, freshness is checked on one series (`adapter.PROBE_TAG`)
                before anything is listed.
        """
        key = (experiment, run_name)
        if index is None:
            cached = self._cached(key)
            if cached is not None and cached.probe is not None:
                now = adapter.probe_generation(
                    self._data_provider, ctx, experiment, run_name, cached.probe[0]
                )
                if now == cached.probe:
                    return cached
            index = adapter.list_runs(
                self._data_provider, ctx, experiment, [run_name]
            ).get(run_name)
            if index is None:
                return None
        cached = self._cached(key, index.generation)
        if cached is not None:
            return cached
        with self._lock:
            run_lock = self._run_locks.setdefault(key, threading.Lock())
        with run_lock:  # one build per run at a time; others wait for it
            cached = self._cached(key, index.generation)
            if cached is not None:
                return cached
            provider_run = adapter.read_run(
                self._data_provider,
                ctx,
                experiment,
                index,
                reservoir=self._reservoir,
                data_location=self._logdir,
            )
            built = payload.AnalysedRun(provider_run, index.generation, index.probe)
            with self._lock:
                self._cache[key] = built
                self._cache.move_to_end(key)
                while len(self._cache) > MAX_CACHED_RUNS:
                    self._cache.popitem(last=False)
            return built

    @staticmethod
    def _request(request):
        return plugin_util.context(request.environ), plugin_util.experiment_id(
            request.environ
        )

    # -- Routes ------------------------------------------------------------------------------

    @wrappers.Request.application
    def _serve_static(self, request):
        name, mimetype = _STATIC[request.path[request.path.rindex("/") :]]
        with open(os.path.join(STATIC_DIR, name), "rb") as file:
            contents = file.read()
        return http_util.Respond(request, contents, mimetype)

    @wrappers.Request.application
    def _serve_runs(self, request):
        """The bnscope runs, cheaply: no run is read here. Finding counts are
        given for the runs already analysed (`counts: null` otherwise)."""
        ctx, experiment = self._request(request)
        start = time.perf_counter()
        indexes = adapter.list_runs(self._data_provider, ctx, experiment)
        runs = []
        for name, index in indexes.items():
            built = self._cached((experiment, name), index.generation)
            fresh = built is not None
            runs.append(
                {
                    "name": name,
                    "tags": len(index.scalar_tags),
                    "max_step": index.generation[1],
                    "metadata_listed": index.metadata_tag,
                    "counts": built.counts() if fresh else None,
                    "layers": len(built.run.layers) if fresh else None,
                }
            )
        body = {
            "runs": runs,
            "elapsed_ms": round(1000 * (time.perf_counter() - start), 1),
        }
        return http_util.Respond(request, payload.json_bytes(body), "application/json")

    def _require_run(self, request, param="run"):
        ctx, experiment = self._request(request)
        name = request.args.get(param)
        if not name:
            raise errors.InvalidArgumentError(f"missing ?{param}=")
        built = self._built(ctx, experiment, name)
        if built is None:
            raise errors.NotFoundError(f"no bnscope run {name!r}")
        return built

    @wrappers.Request.application
    def _serve_run(self, request):
        built = self._require_run(request)
        return http_util.Respond(request, built.payload(), "application/json")

    @wrappers.Request.application
    def _serve_findings(self, request):
        built = self._require_run(request)
        return http_util.Respond(
            request, payload.json_bytes(built.findings_json()), "application/json"
        )

    @wrappers.Request.application
    def _serve_series(self, request):
        built = self._require_run(request)
        body = built.series_json(request.args.get("layer", ""))
        return http_util.Respond(request, payload.json_bytes(body), "application/json")

    @wrappers.Request.application
    def _serve_align(self, request):
        a = self._require_run(request, "a")
        b = self._require_run(request, "b")
        body = payload.align_json(a.run, b.run)
        return http_util.Respond(request, payload.json_bytes(body), "application/json")
