"""Training under tf.distribute: MirroredStrategy in process, two real workers on 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import recomputed_test_accuracy
from test_datasets import write_ts
from training.distribute import Distribution
from training.train import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_ts(tmp_path_factory.mktemp("ts") / "Walk", "Walk", dims=3)


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_mirrored_on_one_cpu(ts_dir: Path, tmp_path: Path) -> None:
    run = train("test_rnn_gru", f"ucr:{ts_dir}", tmp_path / "run",
                TrainConfig(epochs=2, batch_size=4, distribute=Distribution.MIRRORED), progress=lambda m: None)
    card = json.loads((run / "model_card.json").read_text())
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["distribute"] == "mirrored"
    assert card["metrics"]["test_accuracy"] == pytest.approx(recomputed_test_accuracy(run), abs=1e-6)


def test_two_workers_train_and_only_the_chief_writes(ts_dir: Path, tmp_path: Path) -> None:
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    out = tmp_path / "runs" / "mw"
    procs = []
    for index in range(2):
        scratch = tmp_path / f"tmp{index}"
        scratch.mkdir()
        env = {
            **os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "TMPDIR": str(scratch),
            "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
        }
        cmd = [sys.executable, "-m", "edge", "train", "--model", "test_rnn_gru", "--dataset", f"ucr:{ts_dir}",
               "--epochs", "1", "--batch-size", "4", "--distribute", "multi-worker", "--out", str(out)]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    results = []
    try:
        results = [p.communicate(timeout=150) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (stdout, stderr) in zip(procs, results):
        assert p.returncode == 0, stderr[-2000:]
        assert "epoch 1/1" in stdout and "test accuracy" in stdout
    chief_out, worker_out = results[0][0], results[1][0]
    assert f"wrote {out}" in chief_out and "the chief writes" in worker_out and "wrote" not in worker_out
    # both replicas saw the same synchronised metrics
    assert chief_out.split("epoch 1/1:")[1].split("(")[0] == worker_out.split("epoch 1/1:")[1].split("(")[0]
    card = json.loads((out / "model_card.json").read_text())
    assert card["model"] == "test_rnn_gru"
    assert json.loads((out / "config.json").read_text())["train"]["distribute"] == "multi-worker"
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["mw"]
    assert not any((tmp_path / "tmp1").iterdir())  # the non-chief's scratch run dir is gone


def test_multi_worker_without_tf_config_is_one_line(ts_dir: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env.update(PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-m", "edge", "train", "--model", "test_rnn_gru", "--dataset", f"ucr:{ts_dir}",
                           "--distribute", "multi-worker", "--out", str(tmp_path / "run")], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2 and "needs TF_CONFIG" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()
