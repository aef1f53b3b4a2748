"""The `bnscope compare` view and its JSON."""

from __future__ import annotations

import io
import json

from bnscope.cli import commands as cli


def test_compare_cli_text_and_json(two_runs):
    out, err = io.StringIO(), io.StringIO()
    code = cli.compare_command(
        str(two_runs / "no_bn"), str(two_runs / "with_bn"), False, out, err, 100
    )
    text = out.getvalue()
    assert code == 0 and err.getvalue() == ""
    assert "Gradient flow" in text and "batch_normalization_1" in text
    assert "Only in A" in text and "vanishing_gradient" in text
    assert max(len(line) for line in text.splitlines()) <= 100

    out = io.StringIO()
    cli.compare_command(
        str(two_runs / "no_bn"), str(two_runs / "with_bn"), True, out, err
    )
    data = json.loads(out.getvalue())["compare"]
    assert [f["rule"] for f in data["only_in_a"]] == ["vanishing_gradient"]
    assert data["only_in_b"] == []
    assert data["layers"][0] == {
        "a": "dense",
        "b": "dense",
        "grad_norm_a": data["layers"][0]["grad_norm_a"],
        "grad_norm_b": data["layers"][0]["grad_norm_b"],
    }
    assert data["grad_ratio"]["a"] < 1e-3
