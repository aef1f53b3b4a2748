"""`bnscope demo`: trains the sick and the healthy model and explains both."""

from __future__ import annotations

import io
import json
import sys

import pytest

from bnscope import demo
from bnscope.cli import commands as cli


def findings(logdir) -> dict[str, list[dict]]:
    out = io.StringIO()
    assert cli.summarize_command(str(logdir), True, "never", out, io.StringIO()) == 0
    runs = json.loads(out.getvalue())["runs"]
    return {run["run"].split("/")[0]: run["findings"] for run in runs}


def test_quick_demo_explains_the_sick_model(tmp_path):
    # What a previous demo into the same directory left: replaced, not merged.
    for variant in ("sick", "healthy"):
        stale = tmp_path / variant / "bnscope" / "events.out.tfevents.1.previous"
        stale.parent.mkdir(parents=True)
        stale.write_bytes(b"")
    out = io.StringIO()
    code = cli.demo_command(str(tmp_path), quick=True, stdout=out, width=100)
    assert code == 0  # findings in the sick model do not fail the demo
    for variant in ("sick", "healthy"):
        event_files = list((tmp_path / variant / "bnscope").glob("events.out.*"))
        assert len(event_files) == 1
        assert not event_files[0].name.endswith(".previous")
    text = out.getvalue()
    assert f"$ bnscope summarize {tmp_path}" in text
    assert "$ bnscope compare" in text
    assert f"tensorboard --logdir {tmp_path}" in text
    by_run = findings(tmp_path)
    assert set(by_run) == {"sick", "healthy"}
    sick_rules = {f["rule"] for f in by_run["sick"]}
    assert {"vanishing_gradient", "saturation"} <= sick_rules
    # The healthy run may still note its BN warm-up (info) after 3 epochs.
    assert all(f["severity"] == "info" for f in by_run["healthy"]), by_run["healthy"]
    assert "vanishing_gradient" in text


def test_cli_dispatches_to_the_demo(monkeypatch):
    calls = []

    def fake_run(out, **kwargs):
        calls.append(out)
        raise SystemExit(0)  # stop before training: only the dispatch is tested

    monkeypatch.setattr(demo, "run", fake_run)
    for argv in (["demo", "--out", "somewhere"], ["demo"]):
        with pytest.raises(SystemExit):
            cli.main(argv)
    assert calls == ["somewhere", demo.DEFAULT_OUT]


def test_missing_scikit_learn_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    out, err = io.StringIO(), io.StringIO()
    code = cli.demo_command(str(tmp_path), stdout=out, stderr=err)
    assert code == cli.EXIT_BAD_INPUT
    assert err.getvalue() == (
        "bnscope: error: the demo needs sklearn: pip install 'bnscope[cpu,demo]'\n"
    )
    assert out.getvalue() == ""
    assert not any(tmp_path.iterdir())
