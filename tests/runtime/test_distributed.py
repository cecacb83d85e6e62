"""Two-process DDP on CPU (gloo) follows the single-process loss curve; configs are saved once;
a seed reproduces a run."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FIXTURE_DATASET_ARGS

ROOT = Path(__file__).resolve().parents[2]


def fit(tmp: Path, name: str, kg_dir, data_dir, *extra: str, timeout: int = 900, launcher: tuple = (),
        config: str = "finetune_redocred_rc.yaml", dataset_args: dict = FIXTURE_DATASET_ARGS["redocred_rc"]) -> Path:
    """Run ``kgllm fit`` in a subprocess (DDP re-launches the same command; ``launcher``, e.g. torchrun,
    starts the processes itself); return the log folder."""
    logger = json.dumps([{"class_path": "lightning.pytorch.loggers.CSVLogger",
                          "init_args": {"save_dir": str(tmp), "name": name, "version": ""}}])
    cmd = [*(launcher or (sys.executable,)), "-m", "kgllm", "fit", "--config", str(ROOT / "experiments" / config),
           "--data.kg_dir", str(kg_dir), "--data.backbone", "tiny", "--data.data_dir", str(data_dir),
           "--data.dataset_args", json.dumps(dataset_args), "--model.fusion_layers", "[0]",
           "--model.backbone_dropout", "0.0", "--model.fusion_dropout", "0.0", "--model.gnn_dropout", "0.0",
           "--model.head_dropout", "0.0", "--trainer.accelerator", "cpu", "--trainer.log_every_n_steps", "1",
           "--trainer.enable_progress_bar", "false", "--trainer.logger", logger,
           "--trainer.default_root_dir", str(tmp / name), *extra]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    out = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return tmp / name


def losses(folder: Path) -> list[float]:
    rows = list(csv.DictReader(open(folder / "metrics.csv")))
    return [float(r["train/loss_step"]) for r in rows if r.get("train/loss_step")]


def val_metrics(folder: Path) -> list[dict]:
    rows = list(csv.DictReader(open(folder / "metrics.csv")))
    return [{k: float(v) for k, v in r.items() if k.startswith("val/") and v} for r in rows if r.get("val/loss")]


@pytest.mark.slow
def test_ddp_matches_single_process_and_saves_config_once(tmp_path, kg_dir, data_dir):
    # 3 validation examples: two ranks hold 2 and 1; each must be scored exactly once
    odd = ("--data.max_eval", "3")
    single = fit(tmp_path, "single", kg_dir, data_dir, "--data.batch_size", "4", "--trainer.max_epochs", "2", *odd)
    ddp = fit(tmp_path, "ddp", kg_dir, data_dir, "--data.batch_size", "2", "--trainer.max_epochs", "2",
              "--trainer.strategy", "ddp", "--trainer.devices", "2", *odd)
    a, b = losses(single), losses(ddp)
    assert len(a) == len(b) >= 4
    for x, y in zip(a, b):
        assert abs(x - y) < 1e-4 * max(1.0, abs(x))
    va, vb = val_metrics(single), val_metrics(ddp)
    assert len(va) == len(vb) == 2 and va[0].keys() == vb[0].keys() >= {"val/loss", "val/acc", "val/f1"}
    for x, y in zip(va, vb):
        assert all(abs(x[k] - y[k]) < 1e-5 * max(1.0, abs(x[k])) for k in x), (x, y)
    configs = [p for p in tmp_path.rglob("config.yaml") if p.is_relative_to(ddp)]
    assert configs == [ddp / "config.yaml"]  # rank 0 only
    assert (ddp / "kg_meta.json").is_file()
    spawn = fit(tmp_path, "spawn", kg_dir, data_dir, "--data.batch_size", "2", "--trainer.max_epochs", "2",
                "--trainer.strategy", "ddp_spawn", "--trainer.devices", "2")
    assert all(abs(x - y) < 1e-4 * max(1.0, abs(x)) for x, y in zip(a, losses(spawn)))


@pytest.mark.slow
def test_same_seed_reproduces(tmp_path, kg_dir, data_dir):
    a = fit(tmp_path, "a", kg_dir, data_dir, "--trainer.max_epochs", "2", "--model.backbone_dropout", "0.1")
    b = fit(tmp_path, "b", kg_dir, data_dir, "--trainer.max_epochs", "2", "--model.backbone_dropout", "0.1")
    assert losses(a) == losses(b) and (a / "metrics.csv").read_text() == (b / "metrics.csv").read_text()


@pytest.mark.slow
def test_two_nodes_on_localhost(tmp_path, kg_dir, data_dir):
    """Two "nodes" of one process each, started by hand with the variables a cluster launcher sets
    (MASTER_ADDR, MASTER_PORT, NODE_RANK, WORLD_SIZE): same loss curve as one 2-device node."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    logger = json.dumps([{"class_path": "lightning.pytorch.loggers.CSVLogger",
                          "init_args": {"save_dir": str(tmp_path), "name": "nodes", "version": ""}}])
    base = [sys.executable, "-m", "kgllm", "fit", "--config", str(ROOT / "experiments/finetune_redocred_rc.yaml"),
            "--data.kg_dir", str(kg_dir), "--data.backbone", "tiny", "--data.data_dir", str(data_dir),
            "--data.dataset_args", json.dumps(FIXTURE_DATASET_ARGS["redocred_rc"]), "--model.fusion_layers", "[0]",
            "--model.backbone_dropout", "0.0", "--model.fusion_dropout", "0.0", "--model.gnn_dropout", "0.0",
            "--model.head_dropout", "0.0", "--trainer.accelerator", "cpu", "--trainer.log_every_n_steps", "1",
            "--trainer.enable_progress_bar", "false", "--trainer.logger", logger, "--data.batch_size", "2",
            "--trainer.max_epochs", "2", "--trainer.strategy", "ddp", "--trainer.devices", "1",
            "--trainer.num_nodes", "2", "--trainer.default_root_dir", str(tmp_path / "nodes")]
    procs = []
    for node in (0, 1):
        env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "NODE_RANK": str(node),
               "WORLD_SIZE": "2", "LOCAL_RANK": "0", "PYTHONUNBUFFERED": "1"}
        procs.append(subprocess.Popen(base, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True))
    outs = [p.communicate(timeout=900)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs[0][-2000:] + outs[1][-2000:]
    single = fit(tmp_path, "single", kg_dir, data_dir, "--data.batch_size", "4", "--trainer.max_epochs", "2")
    a, b = losses(single), losses(tmp_path / "nodes")
    assert len(a) == len(b) and all(abs(x - y) < 1e-4 * max(1.0, abs(x)) for x, y in zip(a, b))


@pytest.mark.slow
def test_torchrun_two_processes_match_one(tmp_path, kg_dir, data_dir):
    """The README's multi-node recipe at its smallest: torchrun starts 2 CPU processes (gloo) and
    Lightning joins them (TorchElasticEnvironment) instead of launching its own."""
    torchrun = Path(sys.executable).parent / "torchrun"
    run = fit(tmp_path, "torchrun", kg_dir, data_dir, "--data.batch_size", "2", "--trainer.max_epochs", "2",
              "--trainer.strategy", "ddp", "--trainer.devices", "2",
              launcher=(str(torchrun), "--standalone", "--nnodes", "1", "--nproc-per-node", "2"))
    single = fit(tmp_path, "single", kg_dir, data_dir, "--data.batch_size", "4", "--trainer.max_epochs", "2")
    a, b = losses(single), losses(run)
    assert len(a) == len(b) > 0 and all(abs(x - y) < 1e-4 * max(1.0, abs(x)) for x, y in zip(a, b))


@pytest.mark.slow
def test_ddp_docre_test_with_fewer_documents_than_ranks(tmp_path, kg_dir, data_dir):
    """One test document on two ranks: the second rank holds only evaluation padding (no pairs) and
    must still join the gather of ``test_items.csv`` (rank 0's gather failed when it skipped them)."""
    fit(tmp_path, "docre", kg_dir, data_dir, "--model.task_args", json.dumps({"emb_size": 32, "block_size": 8}),
        "--data.batch_size", "1", "--data.eval_batch_size", "1", "--trainer.max_epochs", "1",
        "--trainer.strategy", "ddp", "--trainer.devices", "2", timeout=600, config="docre_redocred.yaml",
        dataset_args={"train_docs": "0:2", "val_docs": "2:3", "test_docs": "5:6"})
    rows = (tmp_path / "docre" / "test_items.csv").read_text().splitlines()
    assert rows[0] == "idx,correct,predicted,gold" and [r.split(",")[0] for r in rows[1:]] == ["0"]
    metrics = list(csv.DictReader(open(tmp_path / "docre" / "metrics.csv")))
    f1 = [float(r["test/f1"]) for r in metrics if r.get("test/f1")]
    from kgllm.util.stats import micro_f1

    assert len(f1) == 1 and micro_f1([int(v) for v in rows[1].split(",")[1:]]) == pytest.approx(f1[0], abs=1e-4)
