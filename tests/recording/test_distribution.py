"""bnscope under `tf.distribute`: MirroredStrategy and MultiWorkerMirroredStrategy.

Each training runs in its own process (tests/distributed_fit.py): logical
devices and TF_CONFIG must be set before TensorFlow initializes, and the main
test process must stay a single-device one.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bnscope import tags
from tests.support import eventdata

SCRIPT = str(Path(__file__).resolve().parents[1] / "support" / "distributed_fit.py")
TIMEOUT = 240
RUN = tags.RUN_DIRNAME


def _launch(args: list[str], env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, SCRIPT, *args],
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_all(processes: list[subprocess.Popen]) -> None:
    """Waits for every process; kills them all if one fails or hangs."""
    try:
        for process in processes:
            output, _ = process.communicate(timeout=TIMEOUT)
            assert process.returncode == 0, output[-3000:]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def _result(path: Path) -> tuple[list[np.ndarray], list[str], dict]:
    with np.load(path) as data:
        weights = [
            data[f"arr_{i}"]
            for i in range(sum(k.startswith("arr_") for k in data.files))
        ]
        warnings = json.loads(str(data["warnings"]))
        extra = {k: data[k] for k in data.files if not k.startswith("arr_")}
    return weights, warnings, extra


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _assert_one_clean_run(run: Path, probe_steps: list[int]) -> list[str]:
    files = sorted(os.listdir(run))
    assert len(files) == 1, files
    for tag, series in eventdata.scalars(str(run)).items():
        steps = [step for step, _ in series]
        assert steps == sorted(set(steps)), tag  # no duplicate events
    loss_steps = [step for step, _ in eventdata.scalars(str(run))[tags.LOSS.tag()]]
    assert loss_steps == probe_steps
    meta = eventdata.metadata(str(run))
    names = {layer["name"] for layer in meta["layers"]}
    assert eventdata.tags_of(str(run), tags.ACT_STD) == names
    assert eventdata.tags_of(str(run), tags.GRAD_NORM) == {
        "dense",
        "batch_normalization",
        "dense_1",
    }
    modes = {
        layer["name"]: layer["normalization"]["training_mode"]
        for layer in meta["layers"]
        if layer["normalization"]
    }
    assert modes == {"batch_normalization": True}
    # Two replicas of 8: each BN normalizes over 8 samples, not the global 16.
    assert meta["replicas"] == 2 and meta["batch_size"] == 8
    return files


def test_mirrored_strategy_fit_is_observed_without_changing_training(tmp_path):
    plain = _launch(["mirrored", str(tmp_path / "unused"), str(tmp_path / "plain.npz")])
    observed = _launch(
        [
            "mirrored",
            str(tmp_path / "logs"),
            str(tmp_path / "observed.npz"),
            "--bnscope",
        ]
    )
    _wait_all([plain, observed])
    plain_weights, _, _ = _result(tmp_path / "plain.npz")
    observed_weights, warnings, extra = _result(tmp_path / "observed.npz")
    assert int(extra["replicas"]) == 2
    assert warnings == []
    for a, b in zip(plain_weights, observed_weights, strict=True):
        np.testing.assert_array_equal(a, b)
    # Every 2 steps and at the end of each 3-step epoch.
    _assert_one_clean_run(tmp_path / "logs" / RUN, [1, 2, 3, 4, 6])


def test_mirrored_exact_gradients_are_the_mean_of_replica_norms(tmp_path):
    # SGD(0) and one step: the weights stay put, so the subprocess can compute
    # each replica's gradient by hand afterwards.
    process = _launch(
        [
            "mirrored",
            str(tmp_path / "logs"),
            str(tmp_path / "out.npz"),
            "--bnscope",
            "--exact",
            "--frozen-weights",
        ]
    )
    _wait_all([process])
    _, warnings, extra = _result(tmp_path / "out.npz")
    assert warnings == []
    by_hand = extra["replica_grad_norms"]
    assert len(by_hand) == 2 and by_hand[0] != pytest.approx(by_hand[1])
    scalars = eventdata.scalars(str(tmp_path / "logs" / RUN))
    (recorded,) = scalars[tags.STEP_GRAD_GLOBAL_NORM.tag()]
    assert recorded == (1, pytest.approx(by_hand.mean(), rel=1e-5))


def test_multi_worker_only_the_chief_writes(tmp_path):
    def workers(log_dir: Path, name: str, observe: bool) -> list[subprocess.Popen]:
        ports = _free_ports(2)
        cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
        processes = []
        for index in range(2):
            config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
            args = ["multiworker", str(log_dir), str(tmp_path / f"{name}{index}.npz")]
            processes.append(
                _launch(
                    args + (["--bnscope"] if observe else []),
                    env={"TF_CONFIG": json.dumps(config)},
                )
            )
        return processes

    observed = workers(tmp_path / "logs", "observed", observe=True)
    plain = workers(tmp_path / "unused", "plain", observe=False)
    _wait_all(observed + plain)

    files = _assert_one_clean_run(tmp_path / "logs" / RUN, [1, 2, 4, 6])
    chief_pid = observed[0].pid
    assert files[0].split(".")[5] == str(chief_pid)  # events.out.tfevents.T.host.PID
    for index in range(2):
        plain_weights, _, _ = _result(tmp_path / f"plain{index}.npz")
        observed_weights, warnings, _ = _result(tmp_path / f"observed{index}.npz")
        assert warnings == []
        for a, b in zip(plain_weights, observed_weights, strict=True):
            np.testing.assert_array_equal(a, b)
