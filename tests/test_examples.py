"""Every example in `examples/` runs with `--quick`, and its findings are the expected ones.

The findings come from real training on scikit-learn's digits with fixed seeds;
healthy variants must come out without any finding.
"""

from __future__ import annotations

import importlib
import io
import json
import runpy
import sys
from pathlib import Path

import pytest

from bnscope.cli import commands as cli

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# Variant -> rules that must be found; `None` means no finding at all.
EXPECTED: dict[str, dict[str, set[str] | None]] = {
    "deep_sigmoid": {
        "plain_lr0.001": {"vanishing_gradient"},
        "plain_lr0.01": {"vanishing_gradient", "saturation"},
        "bn_lr0.001": None,
        "bn_lr0.01": None,
    },
    "lenet": {"plain": {"unnormalized_input"}, "bn": None},
    "tiny_batches": {
        "bn_batch4": {"small_batch_bn", "bn_train_inference_gap"},
        "ln_batch4": None,
    },
    "rnn_layernorm": {"rnn": {"unnormalized_input", "saturation"}, "rnn_ln": None},
    "worked_numbers": {"batch_norm": {"small_batch_bn"}, "layer_norm": None},
}


@pytest.fixture(autouse=True)
def examples_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))


def run_example(name: str, logdir: Path):
    module = importlib.import_module(name)
    return module.main(["--quick", "--logdir", str(logdir)])


def findings_by_variant(logdir: Path) -> dict[str, list[dict]]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.summarize_command(str(logdir), True, "never", out, err)
    assert code == 0, err.getvalue()
    runs = json.loads(out.getvalue())["runs"]
    return {run["run"].split("/")[0]: run["findings"] for run in runs}


def assert_expected(name: str, logdir: Path) -> dict[str, list[dict]]:
    findings = findings_by_variant(logdir)
    assert set(findings) == set(EXPECTED[name])
    for variant, expected in EXPECTED[name].items():
        rules = {finding["rule"] for finding in findings[variant]}
        if expected is None:
            assert not findings[variant], (variant, findings[variant])
        else:
            assert expected <= rules, (variant, rules)
    return findings


def test_every_example_is_tested():
    scripts = {p.stem for p in EXAMPLES.glob("*.py") if not p.stem.startswith("_")}
    assert scripts == set(EXPECTED)


def test_deep_sigmoid(tmp_path):
    results = run_example("deep_sigmoid", tmp_path)
    findings = assert_expected("deep_sigmoid", tmp_path)
    # Without BN the first layer's gradient is a vanishing fraction of the last's.
    ratio = next(
        f for f in findings["plain_lr0.01"] if f["rule"] == "vanishing_gradient"
    )
    assert ratio["value"] < ratio["threshold"]
    # The classic result: without BN nothing is learned; with BN both rates learn.
    assert results["plain_lr0.01"]["test accuracy"] < 0.2
    assert results["bn_lr0.01"]["test accuracy"] > 0.8
    assert results["bn_lr0.001"]["test accuracy"] > 0.8


def test_lenet(tmp_path, capsys):
    results = run_example("lenet", tmp_path)
    assert_expected("lenet", tmp_path)
    # BN converges faster: far ahead after one epoch, and better at the end.
    bn, plain = results["bn"], results["plain"]
    assert bn["train accuracy epoch 1"] > plain["train accuracy epoch 1"] + 0.2
    assert bn["test accuracy"] > 0.9
    assert bn["test accuracy"] > plain["test accuracy"]
    printed = capsys.readouterr().out
    assert "$ bnscope compare" in printed
    assert "Gradient flow" in printed


def test_lenet_mnist_without_cache_exits_with_a_message(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    lenet = importlib.import_module("lenet")
    with pytest.raises(SystemExit, match="not in the Keras cache"):
        lenet.main(["--data", "mnist", "--quick", "--logdir", str(tmp_path)])


def test_tiny_batches(tmp_path):
    results = run_example("tiny_batches", tmp_path)
    findings = assert_expected("tiny_batches", tmp_path)
    gaps = [f for f in findings["bn_batch4"] if f["rule"] == "bn_train_inference_gap"]
    assert gaps
    for gap in gaps:  # beyond its limit: a gap above it, an agreement below
        agreement = "agree" in gap["message"]
        assert (gap["value"] < gap["threshold"]) == agreement, gap
    # LN does not depend on the batch: it learns better at batch size 4.
    assert results["ln_batch4"]["test accuracy"] > results["bn_batch4"]["test accuracy"]


def test_rnn_layernorm(tmp_path):
    results = run_example("rnn_layernorm", tmp_path)
    assert_expected("rnn_layernorm", tmp_path)
    assert results["rnn_ln"]["test accuracy"] > 0.8


def test_worked_numbers_as_a_script(tmp_path, monkeypatch, capsys):
    # As `python examples/worked_numbers.py`: it asserts its own agreement.
    monkeypatch.setattr(sys, "argv", ["worked_numbers.py", "--logdir", str(tmp_path)])
    runpy.run_path(str(EXAMPLES / "worked_numbers.py"), run_name="__main__")
    assert_expected("worked_numbers", tmp_path)
    printed = capsys.readouterr().out
    assert printed.count("agrees with the hand computation") == 8
    assert "$ bnscope summarize" in printed
