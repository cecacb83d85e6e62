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


def _init_params(class_path: str) -> set[str]:
    import importlib
    import inspect

    module, name = class_path.rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    return {p for klass in cls.__mro__ if "__init__" in vars(klass)
            for p in inspect.signature(klass.__init__).parameters}


def _applies(ablation: Path, config: Path) -> bool:
    """An override applies to a config when every key it sets is an argument of the config's classes."""
    cfg, over = yaml.safe_load(config.read_text()), yaml.safe_load(ablation.read_text())
    return all(set(over.get(part, {}).get("init_args", {})) <= _init_params(cfg[part]["class_path"])
               for part in ("model", "data"))


CASES = [(c, a) for c in CONFIGS for a in ABLATIONS if a is None or _applies(a, c)]


def test_every_ablation_applies_somewhere():
    assert {a for _, a in CASES} == set(ABLATIONS)


# every config runs in the quick loop; its ablation variants only in the full suite (``slow``)
PARAMS = [pytest.param(c, a, marks=[pytest.mark.slow] if a is not None else [],
                       id=f"{c.stem}-{'base' if a is None else a.stem}") for c, a in CASES]


@pytest.mark.parametrize("config,ablation", PARAMS)
def test_fast_dev_run(config, ablation, kg_dir, data_dir, tmp_path, monkeypatch):
    from kgllm.lit.runner import run_cli

    monkeypatch.chdir(tmp_path)
    cfg = yaml.safe_load(config.read_text())
    data_cls = cfg["data"]["class_path"]
    args = ["fit", "--config", str(config)] + (["--config", str(ablation)] if ablation else []) + [
        "--data.data_dir", str(data_dir), "--trainer.fast_dev_run", "1", "--trainer.accelerator", "cpu"]
    if data_cls.endswith("KGDataModule"):
        dataset = cfg["data"]["init_args"]["dataset"]
        args += ["--data.kg_dir", str(kg_dir), "--data.backbone", "tiny", "--data.batch_size", "2",
                 "--data.dataset_args", json.dumps(FIXTURE_DATASET_ARGS[dataset]), "--model.fusion_layers", "[0]"]
    else:
        args += ["--data.dataset", "tiny_tsv", "--model.dim", "16", "--model.gnn_heads", "2"]
    cli = run_cli(args)
    assert cli.trainer.state.finished
    assert cli.trainer.global_step == 1
    if hasattr(cli.model, "model"):
        fused = bool(cli.model.model.fusion_layers)
        assert fused == (ablation is None or "no_fusion" not in ablation.name)
    else:
        assert cli.model.encoder.num_layers == (0 if ablation is not None and "no_gat" in ablation.name else 2)
