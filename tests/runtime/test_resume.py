"""A run killed with SIGKILL and restarted with ``--ckpt_path last`` ends like an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from tests.conftest import FIXTURE_DATASET_ARGS

ROOT = Path(__file__).resolve().parents[2]
EPOCHS = 12
KILL_AT_EPOCH = 3


class KillAtEpoch(pl.Callback):
    """SIGKILLs its own process as epoch ``epoch`` starts (after the previous epoch's checkpoint is on disk).

    A kill from inside the run lands at a known point on any machine; a kill from a polling parent
    raced the 12 tiny epochs under CI load and once landed after the last one.
    """

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            os.kill(os.getpid(), signal.SIGKILL)


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
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    subprocess.run(_cmd(tmp_path, "full", kg_dir, data_dir) + ["--keep_last", "true"], cwd=tmp_path, env=env,
                   check=True, capture_output=True)

    cmd = _cmd(tmp_path, "killed", kg_dir, data_dir)
    last = tmp_path / "killed" / "checkpoints" / "last.ckpt"
    kill = json.dumps([{"class_path": f"{__name__}.KillAtEpoch", "init_args": {"epoch": KILL_AT_EPOCH}}])
    proc = subprocess.run(cmd + ["--trainer.callbacks+", kill], cwd=tmp_path, env=env, capture_output=True, timeout=900)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert _epoch_of(last) == KILL_AT_EPOCH - 1, "the kill lands part-way, after a checkpoint"

    subprocess.run(cmd + ["--ckpt_path", "last", "--keep_last", "true"], cwd=tmp_path, env=env, check=True,
                   capture_output=True)
    a = torch.load(tmp_path / "full" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert a["optimizer_states"]  # --keep_last keeps a finished run's full state
    b = torch.load(last, map_location="cpu", weights_only=True)
    assert a["epoch"] == b["epoch"] == EPOCHS - 1 and a["global_step"] == b["global_step"]
    for key, value in a["state_dict"].items():
        assert torch.allclose(value, b["state_dict"][key], atol=1e-6), key
    metrics = lambda p: [line.split(",") for line in (p / "metrics.csv").read_text().splitlines()]  # noqa: E731
    final_a = [r for r in metrics(tmp_path / "full") if r[0] == str(EPOCHS - 1)]
    final_b = [r for r in metrics(tmp_path / "killed") if r[0] == str(EPOCHS - 1)]
    assert final_a == final_b and final_a


@pytest.mark.slow
def test_ckpt_path_last_resumes_the_run_folder_that_holds_it(tmp_path, kg_dir, data_dir, monkeypatch, capsys):
    """With the shipped configs each fit gets its own run folder, so ``--ckpt_path last`` looks for
    the newest run of the same variant and seed that kept ``last.ckpt`` and continues there (its
    metrics so far kept beside the new ones); with none, an error, never a silent fresh start."""
    import csv

    from kgllm.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KGLLM_RUN_VERSION", raising=False)
    args = ["fit", "--config", str(ROOT / "experiments/pretrain_redocred.yaml"), "--data.kg_dir", str(kg_dir),
            "--data.backbone", "tiny", "--data.data_dir", str(data_dir), "--data.batch_size", "4",
            "--data.dataset_args", json.dumps(FIXTURE_DATASET_ARGS["redocred"]), "--model.fusion_layers", "[0]",
            "--trainer.enable_progress_bar", "false"]
    assert main([*args, "--trainer.max_epochs", "1", "--ckpt_path", "last"]) == 2  # nothing to resume yet
    assert "--ckpt_path last: no run '*-gated-seed0'" in capsys.readouterr().err
    assert main([*args, "--trainer.max_epochs", "1", "--keep_last", "true"]) == 0
    monkeypatch.delenv("KGLLM_RUN_VERSION", raising=False)
    assert main([*args, "--trainer.max_epochs", "2", "--ckpt_path", "last"]) == 0
    root = tmp_path / "runs" / "pretrain_redocred"
    assert sorted(p.name for p in root.iterdir() if not p.is_symlink()) == ["v000-gated-seed0"]  # no new folder
    run = root / "v000-gated-seed0"
    (before,) = run.glob("metrics-until-*.csv")
    epochs = lambda path: {r["epoch"] for r in csv.DictReader(open(path)) if r.get("train/loss_epoch")}  # noqa: E731
    assert epochs(before) == {"0"} and epochs(run / "metrics.csv") == {"1"}  # continued at epoch 1, curve kept
    assert not (run / "checkpoints" / "last.ckpt").exists()  # finished: removed again
