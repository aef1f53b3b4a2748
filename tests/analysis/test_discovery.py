"""Finding runs below LOGDIR: recursion, names, and one-line errors for bad paths."""

from __future__ import annotations

import os

import pytest

from bnscope.analysis import discovery
from bnscope.analysis.reader import ReaderError, read_logdir
from tests.support.synthetic_runs import mlp_bn, write_tensorboard_only


def test_runs_found_recursively_with_relative_names(tmp_path):
    mlp_bn().write(tmp_path / "exp1" / "bnscope")
    mlp_bn().write(tmp_path / "exp2" / "deeper" / "bnscope")
    write_tensorboard_only(tmp_path / "exp1" / "train")
    os.symlink(tmp_path, tmp_path / "exp1" / "loop")  # must not hang
    logdir = read_logdir(str(tmp_path))
    assert [run.name for run in logdir.runs] == ["exp1/bnscope", "exp2/deeper/bnscope"]
    assert logdir.other_runs == ("exp1/train",)


def test_logdir_that_is_a_run_is_named_after_itself(healthy):
    _, run_dir, _ = healthy
    assert [run.name for run in read_logdir(run_dir).runs] == ["bnscope"]


def test_bad_logdirs_raise_one_line_errors(tmp_path, monkeypatch):
    with pytest.raises(ReaderError, match="no such directory"):
        read_logdir(str(tmp_path / "missing"))
    file_path = tmp_path / "file.txt"
    file_path.write_text("x")
    with pytest.raises(ReaderError, match="not a directory"):
        read_logdir(str(file_path))

    def denied(path):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(discovery, "_list_dir", denied)
    with pytest.raises(ReaderError, match="permission denied"):
        read_logdir(str(tmp_path))


def test_logdir_run_and_a_bnscope_subfolder_get_distinct_names(tmp_path):
    """Issue 14: both were named `bnscope` (seen failing)."""
    top = tmp_path / "bnscope"
    mlp_bn().write(top)
    inner = mlp_bn()
    inner.model_name = "inner"
    inner.write(top / "bnscope")
    logdir = read_logdir(str(top))
    assert [run.name for run in logdir.runs] == [".", "bnscope"]
    assert logdir.run("bnscope").model_name == "inner"
    assert logdir.run(".").model_name == "mlp_bn"
