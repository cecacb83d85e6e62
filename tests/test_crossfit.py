"""kgllm cross-fit-kg: every edge of a document comes from an extractor that never trained on it."""

import json
from pathlib import Path

import pytest

from kgllm.data.datasets import doc_indices
from kgllm.util.errors import ConfigError, KGLLMError
from kgllm.util.io import OutputError
from kgllm.workflows.crossfit import audit, folds_of, main, trained_docs

CONFIG = Path(__file__).resolve().parents[1] / "experiments" / "docre_redocred.yaml"


def test_folds_are_contiguous_disjoint_and_cover_the_documents():
    assert folds_of("0:7", 10, 3) == [[0, 1, 2], [3, 4], [5, 6]]
    assert folds_of("2:4,6:8", 10, 2) == [[2, 3], [6, 7]]
    with pytest.raises(ConfigError, match="need 2 to 4 folds"):
        folds_of("0:4", 10, 5)


@pytest.mark.slow
def test_the_cross_fitted_kg_holds_no_edge_from_a_model_trained_on_its_document(tmp_path, data_dir, capsys):
    tiny = ["--data.backbone", "tiny", "--model.fusion_layers", "[0]",
            "--model.task_args", json.dumps({"emb_size": 32, "block_size": 8}), "--data.batch_size", "2",
            "--data.eval_batch_size", "2", "--trainer.max_epochs", "1", "--trainer.accelerator", "cpu",
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
    # a margin this large keeps every relation of every pair, so each part's KG has edges to audit
    argv = ["--config", str(CONFIG), "--out", str(tmp_path / "cf"), "--train-docs", "0:4", "--val-docs", "4:6",
            "--eval-docs", "4:6", "--folds", "2", "--data-dir", str(data_dir), "--re-margin", "1000",
            "--no-progress", *tiny]
    assert main(argv) == 0
    record = json.loads((tmp_path / "cf" / "crossfit.json").read_text())
    parts = record["parts"]
    assert [(p["name"], p["docs"], p["extractor_trained_on"]) for p in parts] == [
        ("fold0", "0:2", "2:4"), ("fold1", "2:4", "0:2"), ("eval", "4:6", "0:4")]
    for part in parts:  # what each checkpoint itself records, not only what the plan says
        assert trained_docs(part["checkpoint"], 6) == doc_indices(part["extractor_trained_on"], 6)
        assert "f1" in part["held_out_scores"]
    # each fold's test wrote per-document (correct, predicted, gold) counts whose micro F1 is its test F1
    from kgllm.util.stats import micro_f1
    from kgllm.workflows.ablate import read_test_items

    counts = read_test_items(tmp_path / "cf" / "fold0" / "runs" / "none-seed0")
    assert sorted(counts) == [0, 1] and sum(c[2] for c in counts.values()) > 0
    assert micro_f1([sum(c[k] for c in counts.values()) for k in range(3)]) == pytest.approx(
        parts[0]["held_out_scores"]["f1"], abs=1e-4)
    assert all(n > 0 for n in record["audit"]["edge_occurrences"])
    from kgllm.kg.graph.store import KnowledgeGraph

    kg = KnowledgeGraph.load(tmp_path / "cf" / "kg", provenance=True)
    docs = {row[0] for e in kg.edges.values() for row in e.provenance}
    assert docs == {f"doc{i}" for i in range(6)}  # every document's edges reached the merged KG
    assert "audit passed" in capsys.readouterr().out
    # the audit fails when a part's edges came from a model trained on them
    swapped = [{"docs": doc_indices(p["docs"], 6), "checkpoint": parts[2]["checkpoint"] if i == 0 else p["checkpoint"]}
               for i, p in enumerate(parts)]
    with pytest.raises(KGLLMError, match="which was trained on that document"):
        audit(tmp_path / "cf" / "kg", swapped, 6)
    # the same command resumes (nothing refitted); another plan in the folder is refused
    assert main(argv) == 0
    assert not (tmp_path / "cf" / "fold0" / "run2").exists()
    assert [x.name for x in (tmp_path / "cf" / "fold0" / "runs").iterdir()] == ["none-seed0"]  # no refit
    with pytest.raises(OutputError, match="another cross-fit plan"):
        main([*argv[:8], "--folds", "3", *argv[10:]])
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="not a cross-fit-kg folder"):
        main([argv[0], argv[1], "--out", str(tmp_path / "other"), *argv[4:]])
    # --eval-extractor fold0: fold 0's extractor (trained on 2:4) writes the evaluation documents' KG; no third fit
    assert main([*argv[:2], "--out", str(tmp_path / "cf0"), *argv[4:], "--eval-extractor", "fold0"]) == 0
    parts = json.loads((tmp_path / "cf0" / "crossfit.json").read_text())["parts"]
    assert parts[2]["extractor_trained_on"] == "2:4" and parts[2]["checkpoint"] == parts[0]["checkpoint"]
    assert not (tmp_path / "cf0" / "eval" / "runs").exists()


def test_a_config_of_another_task_is_refused(tmp_path):
    config = Path(__file__).resolve().parents[1] / "experiments" / "finetune_fewrel.yaml"
    with pytest.raises(ConfigError, match="finetune_fewrel.yaml: cross-fit-kg trains document-level extractors"):
        main(["--config", str(config), "--out", str(tmp_path / "cf")])
    assert not (tmp_path / "cf").exists()
