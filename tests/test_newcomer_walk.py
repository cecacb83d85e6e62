"""The README's first-hour commands, shortened with the documented overrides, in order: each run leaves
exactly one folder with its config, metrics, events, checkpoints and test report together."""

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import FIXTURE_DATASET_ARGS

ROOT = Path(__file__).resolve().parents[1]


def _small(dataset: str, kg: str, data_dir) -> list[str]:
    return ["--data.kg_dir", kg, "--data.backbone", "tiny", "--data.data_dir", str(data_dir),
            "--data.dataset_args", json.dumps(FIXTURE_DATASET_ARGS[dataset]), "--model.fusion_layers", "[0]",
            "--trainer.max_epochs", "2", "--trainer.enable_progress_bar", "false", "--trainer.log_every_n_steps", "1"]


def _scalars(run: Path, tag: str) -> list[float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    values = []
    for events in sorted(run.glob("events.out.tfevents*")):
        acc = EventAccumulator(str(events))
        acc.Reload()
        if tag in acc.Tags()["scalars"]:
            values += [e.value for e in acc.Scalars(tag)]
    return values


@pytest.mark.slow
def test_newcomer_walk(tmp_path, data_dir, monkeypatch, capsys):
    from kgllm.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KGLLM_RUN_VERSION", raising=False)
    pre, rc = str(ROOT / "experiments/pretrain_redocred.yaml"), str(ROOT / "experiments/finetune_redocred_rc.yaml")
    assert main(["build-kg", str(data_dir / "redocred" / "dev_revised.json"), "--format", "redocred",
                 "--out", "graphs/redocred100", "--no-progress"]) == 0
    assert main(["fit", "--config", pre, *_small("redocred", "graphs/redocred100", data_dir)]) == 0
    init = "runs/pretrain_redocred/latest/checkpoints/best.ckpt"
    small_rc = _small("redocred_rc", "graphs/redocred100", data_dir)
    assert main(["fit", "--config", rc, "--model.init_args.init_from", init, *small_rc]) == 0
    assert main(["fit", "--config", rc, "--config", str(ROOT / "experiments/ablations/no_fusion.yaml"), *small_rc]) == 0
    out = capsys.readouterr().out
    assert "epoch 1 step" in out and "run folder: runs/finetune_redocred_rc/v001-none-seed0" in out
    assert "litlogger" not in out and "FLOPs" not in out

    # the fine-tuned checkpoint is self-contained: its pretraining source can go
    best = Path("runs/finetune_redocred_rc/v000-gated-seed0/checkpoints/best.ckpt")
    shutil.rmtree("runs/pretrain_redocred/v000-gated-seed0")
    for sub in ("test", "validate"):
        assert main([sub, "--config", rc, "--model.init_args.init_from", init, *small_rc,
                     "--ckpt_path", str(best)]) == 0
    assert main(["inspect", str(best), "--text", "Barack Obama was born in Honolulu , Hawaii ."]) == 0
    assert "Barack Obama" in capsys.readouterr().out
    assert main(["plot", "runs/finetune_redocred_rc", "--out", "curves.png"]) == 0

    runs = Path("runs/finetune_redocred_rc")
    assert sorted(p.name for p in runs.iterdir()) == ["latest", "v000-gated-seed0", "v001-none-seed0"]
    assert sorted(p.name for p in Path("runs").iterdir()) == ["finetune_redocred_rc", "pretrain_redocred"]
    for run in runs.glob("v*"):
        files = {p.relative_to(run).as_posix() for p in run.rglob("*")}
        assert {"config.yaml", "hparams.yaml", "metrics.csv", "kg_meta.json", "checkpoints/best.ckpt",
                "per_class.csv", "confusion_matrix.png"} <= files, run
        assert "checkpoints/last.ckpt" not in files  # a finished run keeps best.ckpt only
        assert any(f.startswith("events.out.tfevents") for f in files)
        header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
        assert {"test/acc", "test/f1", "val/f1"} <= set(header)  # fit tested its best checkpoint here
        assert any(h.startswith("lr-") for h in header)  # a learning-rate monitor in every run
        fused = run.name.endswith(("gated-seed0",))
        assert ({"fusion/gate_norm_layer0", "fusion/linked_share"} <= set(header)) == fused
        hp = _scalars(run, "hp_metric")
        assert hp and hp[-1] != -1  # the monitored metric, not the placeholder
    reports = sorted(p.name.split("-")[0] for p in (runs / "v000-gated-seed0").iterdir()
                     if p.name.startswith(("test-", "validate-")))
    assert reports == ["test", "validate"]
    assert Path("curves.png").stat().st_size > 0

    # test from the checkpoint alone (its run's config is read; a new folder, the fit's files untouched)
    before = {p: p.read_bytes() for p in (runs / "v000-gated-seed0").iterdir() if p.is_file()}
    assert main(["test", "--ckpt_path", str(best)]) == 0
    assert {p: p.read_bytes() for p in before} == before
    assert len([p for p in (runs / "v000-gated-seed0").iterdir() if p.name.startswith("test-")]) == 2

    # from Python: the fine-tuned classifier on a new sentence, with the KG nodes it was linked to
    from kgllm import KGClassifier

    clf = KGClassifier.from_checkpoint(str(best))
    (pred,) = clf.predict([{"text": "<e1>Barack Obama</e1> was born in <e2>Honolulu</e2> ."}])
    assert pred["label"] in clf.labels and abs(sum(pred["probs"].values()) - 1) < 1e-4
    assert (pred["head"], pred["tail"]) == ("Barack Obama", "Honolulu")
    assert {"Barack Obama", "Honolulu"} <= {n["label"] for n in pred["nodes"]}

    # the shipped queries on the KG built above (an Oxigraph store in the cache, built once)
    capsys.readouterr()
    assert main(["kg-query", "graphs/redocred100", "--example", "neighbourhood", "--bind", "name=Honolulu",
                 "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert any(r["other"] == "Barack Obama" and r["doc"] for r in rows)
    assert main(["kg-stats", "graphs/redocred100", "--plot-dir", "plots", "--entity", "Honolulu"]) == 0

    # a typed KG out of the box: --extractor learned with no --re-model reads the extractor shipped
    # with kgllm (LoRA over the installed MiniLM); relations are Wikidata property ids of its schema
    from kgllm.lit.extractor_file import SHIPPED, read_extractor_meta

    capsys.readouterr()
    monkeypatch.delenv("KGLLM_DATA", raising=False)  # an extractor needs no dataset folder
    assert main(["build-kg", str(ROOT / "tests/fixtures/corpus"), "--out", "graphs/typed", "--extractor", "learned",
                 "--no-progress"]) == 0
    capsys.readouterr()
    meta = json.loads(Path("graphs/typed/meta.json").read_text())
    schema = read_extractor_meta(SHIPPED)["label_names"]
    assert meta["extractor"]["model"]["relations"] == schema and meta["relation_labels"]["P131"].startswith("located")
    assert main(["kg-query", "graphs/typed", "--example", "triples", "--json"]) == 0
    typed = json.loads(capsys.readouterr().out)
    assert typed and all(t["relation"] in schema for t in typed)
    assert {"head": "Louvre", "relation": "P131", "tail": "Paris"} in [{k: t[k] for k in ("head", "relation", "tail")}
                                                                     for t in typed]
