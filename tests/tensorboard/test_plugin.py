"""The plugin in a real TensorBoard: its tab, its routes, and what it never breaks.

`--load_fast=true` is the Rust data server (TensorBoard's default whenever
`tensorboard-data-server` is installed, which `pip install tensorboard` does);
`--load_fast=false` the Python multiplexer. TensorFlow is unimportable in
every TensorBoard started here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.parse

import pytest

from bnscope import tags
from bnscope.tensorboard import plugin
from tests.support import tensorboard_logs
from tests.support.summarize import summarize_json
from tests.support.tensorboard_harness import TensorBoard, get_json, wait_until_loaded

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_literal_names_match_the_contract():
    assert plugin.PLUGIN_NAME == tags.METADATA_PLUGIN
    for name in ("index.js", "style.css"):
        assert os.path.getsize(os.path.join(plugin.STATIC_DIR, name)) > 1000


def test_loading_the_entry_point_imports_nothing_heavy():
    """TensorBoard imports the entry point unguarded: it must not be able to fail."""
    code = (
        "import sys\n"
        "from importlib.metadata import entry_points\n"
        "(ep,) = [e for e in entry_points(group='tensorboard_plugins') if e.name == 'bnscope']\n"
        "ep.load()\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow', 'keras', 'rich'))\n"
        "ours = sorted(m for m in sys.modules if m.startswith('bnscope.') and "
        "m not in ('bnscope._version', 'bnscope.tensorboard', 'bnscope.tensorboard.plugin'))\n"
        "assert not loaded and not ours, (loaded, ours)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def every_rule(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("every_rule")
    tensorboard_logs.write_every_rule(logdir)
    _, report, _ = summarize_json(logdir)
    return logdir, {run["run"]: run for run in report["runs"]}


@pytest.mark.tensorboard
@pytest.mark.parametrize("load_fast", ["true", "false"])
def test_findings_route_equals_summarize_json(every_rule, load_fast):
    logdir, expected = every_rule
    tb = TensorBoard(logdir, load_fast=load_fast)
    try:
        wait_until_loaded(tb, expected)
        listing = get_json(tb.url + "/data/plugins_listing")["bnscope"]
        assert listing["enabled"] and listing["tab_name"] == "bnscope"
        assert listing["loading_mechanism"] == {
            "type": "IFRAME",
            "module_path": "/data/plugin/bnscope/index.js",
        }
        for name, run in expected.items():
            query = urllib.parse.urlencode({"run": name})
            findings = get_json(f"{tb.url}/data/plugin/bnscope/findings?{query}")
            assert findings == run, name
            body = get_json(f"{tb.url}/data/plugin/bnscope/run?{query}")
            assert [layer["name"] for layer in body["layer_info"]] == run["layers"]
            assert body["findings"] == run["findings"]
            assert body["metadata"] == "tensor"
            for stat in body["stats"].values():
                assert len(stat["rows"]) == len(run["layers"])
        # The tag descriptions reach TensorBoard's own scalar dashboard.
        scalar_tags = get_json(tb.url + "/data/plugin/scalars/tags")
        described = scalar_tags["described/bnscope"]["act_std/dense"]
        assert tags.ACT_STD.description in described["description"]  # as HTML
    finally:
        tb.stop()
    assert tb.process.poll() is not None


@pytest.mark.tensorboard
def test_tab_is_inactive_without_bnscope_runs(tmp_path):
    """A logdir holding only Keras' own TensorBoard logs: no bnscope tab."""
    from tests.support.synthetic_runs import write_tensorboard_only

    write_tensorboard_only(tmp_path / "train")
    tb = TensorBoard(tmp_path)
    try:
        tb.wait(
            timeout=120,
            until=lambda tb: get_json(tb.url + "/data/plugins_listing")["scalars"][
                "enabled"
            ],
        )
        assert get_json(tb.url + "/data/plugins_listing")["bnscope"]["enabled"] is False
        assert get_json(tb.url + "/data/plugin/bnscope/runs")["runs"] == []
    finally:
        tb.stop()


@pytest.mark.tensorboard
def test_a_broken_bnscope_only_drops_the_tab(tmp_path):
    """bnscope's analysis side unimportable: TensorBoard runs, without the tab."""
    tensorboard_logs.write_pair(tmp_path)
    tb = TensorBoard(tmp_path, blocked=("tensorflow", "bnscope.analysis"))
    try:
        tb.wait(timeout=120)
        assert "bnscope" not in get_json(tb.url + "/data/plugins_listing")
        assert "Failed to load plugin" in tb.log()
    finally:
        tb.stop()
