"""Every experiment config (alone and with every ablation override) survives a fast_dev_run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import FIXTURE_DATASET_ARGS

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
CONFIGS = sorted(p for p in EXPERIMENTS.glob("*.yaml"))
ABLATIONS = [None, *sorted((EXPERIMENTS / "ablations").glob("*.yaml"))]


def test_configs_exist_and_say_what_they_measure():
    assert CONFIGS and len(ABLATIONS) > 1
    for path in CONFIGS:
        text = path.read_text()
        assert "Measures:" in text and "Run:" in text, f"{path.name} must document what it measures and how to run"


def test_ablation_overrides_are_short():
    for path in ABLATIONS[1:]:
        lines = [ln for ln in path.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        assert 2 <= len(lines) <= 5, path.name


@pytest.mark.parametrize("ablation", ABLATIONS, ids=lambda p: "base" if p is None else p.stem)
@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_fast_dev_run(config, ablation, kg_dir, data_dir, tmp_path, monkeypatch):
    from kgllm.lightning_cli import run_cli

    monkeypatch.chdir(tmp_path)
    dataset = yaml.safe_load(config.read_text())["data"]["dataset"]
    args = ["fit", "--config", str(config)] + (["--config", str(ablation)] if ablation else []) + [
        "--data.kg_dir", str(kg_dir), "--data.backbone", "tiny", "--data.data_dir", str(data_dir),
        "--data.dataset_args", json.dumps(FIXTURE_DATASET_ARGS[dataset]), "--data.batch_size", "2",
        "--model.init_args.fusion_layers", "[-1]", "--trainer.fast_dev_run", "1", "--trainer.accelerator", "cpu"]
    cli = run_cli(args)
    assert cli.trainer.state.finished
    assert cli.trainer.global_step == 1
    assert cli.model.model is not None
    fused = bool(cli.model.model.fusion_layers)
    assert fused == (ablation is None or "no_fusion" not in ablation.name)
