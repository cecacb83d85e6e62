"""A run killed with SIGKILL and restarted with ``--ckpt_path last`` ends like an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import FIXTURE_DATASET_ARGS

ROOT = Path(__file__).resolve().parents[2]
EPOCHS = 12


def _cmd(tmp: Path, name: str, kg_dir, data_dir, *extra: str) -> list[str]:
    logger = json.dumps([{"class_path": "lightning.pytorch.loggers.CSVLogger",
                          "init_args": {"save_dir": str(tmp), "name": name, "version": ""}}])
    return [sys.executable, "-m", "kgllm", "fit", "--config", str(ROOT / "experiments/pretrain_redocred.yaml"),
            "--data.kg_dir", str(kg_dir), "--data.backbone", "tiny", "--data.data_dir", str(data_dir),
            "--data.dataset_args", json.dumps(FIXTURE_DATASET_ARGS["redocred"]), "--data.batch_size", "4",
            "--model.fusion_layers", "[0]", "--trainer.accelerator", "cpu", "--trainer.max_epochs", str(EPOCHS),
            "--trainer.enable_progress_bar", "false", "--trainer.logger", logger,
            "--trainer.default_root_dir", str(tmp / name), *extra]


def _epoch_of(ckpt: Path) -> int:
    try:
        return int(torch.load(ckpt, map_location="cpu", weights_only=True)["epoch"])
    except Exception:  # not there yet
        return -1


@pytest.mark.slow
def test_sigkill_and_resume_matches_uninterrupted(tmp_path, kg_dir, data_dir):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    subprocess.run(_cmd(tmp_path, "full", kg_dir, data_dir), cwd=tmp_path, env=env, check=True, capture_output=True)

    cmd = _cmd(tmp_path, "killed", kg_dir, data_dir)
    last = tmp_path / "killed" / "checkpoints" / "last.ckpt"
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 900
    while time.time() < deadline and _epoch_of(last) < 2 and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = _epoch_of(last)
    assert proc.returncode == -signal.SIGKILL and 2 <= killed_at < EPOCHS - 1, "kill must land part-way"

    subprocess.run(cmd + ["--ckpt_path", "last"], cwd=tmp_path, env=env, check=True, capture_output=True)
    a = torch.load(tmp_path / "full" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    b = torch.load(last, map_location="cpu", weights_only=True)
    assert a["epoch"] == b["epoch"] == EPOCHS - 1 and a["global_step"] == b["global_step"]
    for key, value in a["state_dict"].items():
        assert torch.allclose(value, b["state_dict"][key], atol=1e-6), key
    metrics = lambda p: [line.split(",") for line in (p / "metrics.csv").read_text().splitlines()]  # noqa: E731
    final_a = [r for r in metrics(tmp_path / "full") if r[0] == str(EPOCHS - 1)]
    final_b = [r for r in metrics(tmp_path / "killed") if r[0] == str(EPOCHS - 1)]
    assert final_a == final_b and final_a
