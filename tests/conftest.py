"""Shared test setup: quiet TensorFlow logs first, then fixtures of runs on disk."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest

from tests.support.synthetic_runs import SICK_RUNS, mlp_bn, plain_mlp


@pytest.fixture
def healthy(tmp_path):
    """A healthy synthetic run on disk: `(synthetic, run_dir, paths)`."""
    run = mlp_bn()
    run_dir = tmp_path / "logs" / "bnscope"
    paths = run.write(run_dir)
    return run, str(run_dir), paths


@pytest.fixture
def logs(tmp_path):
    """A logdir with a healthy and a sick (`nonfinite`) run."""
    mlp_bn().write(tmp_path / "healthy" / "bnscope")
    SICK_RUNS["nonfinite"]().write(tmp_path / "sick" / "bnscope")
    return tmp_path


@pytest.fixture
def two_runs(tmp_path):
    """A logdir with a plain MLP (`no_bn`) and one with BN (`with_bn`)."""
    plain_mlp().write(tmp_path / "no_bn" / "bnscope")
    mlp_bn().write(tmp_path / "with_bn" / "bnscope")
    return tmp_path
