"""Document-level RE as a kgllm task: the Re-DocRED loader, mention markers, and a model that
learns a small document set (fused, through the Lightning module)."""

import json

import lightning as L
import pytest
import torch

from kgllm.data import KGDataModule
from kgllm.data.datasets import load_dataset
from kgllm.data.features import Featurizer
from kgllm.errors import ConfigError, CorpusError, KGLLMError
from kgllm.lit import DocREModule
from kgllm.workflows.eval_re import evaluate
from tests.conftest import FIXTURE_DATASET_ARGS

ARGS = FIXTURE_DATASET_ARGS["redocred_docre"]


def test_loader_gives_entities_triples_and_ign_flags(data_dir, redocred_file):
    splits, labels, task = load_dataset("redocred_docre", data_dir, **ARGS)
    raw = json.loads(redocred_file.read_text())
    assert task == "docre" and labels == sorted({lab["r"] for d in raw for lab in d["labels"]})
    ex, doc = splits["train"][0], raw[0]
    assert len(ex.entities) == len(doc["vertexSet"])
    for spans, ent in zip(ex.entities, doc["vertexSet"]):
        assert {ex.text[s:e] for s, e in spans} == {m["name"] for m in ent}
    assert {(h, t, labels[r]) for h, t, r, _ in ex.triples} == {(x["h"], x["t"], x["r"]) for x in doc["labels"]}
    train = {(a["name"], b["name"], x["r"]) for d in raw[:4] for x in d["labels"]
             for a in d["vertexSet"][x["h"]] for b in d["vertexSet"][x["t"]]}
    for ex, doc in zip(splits["val"], raw[4:6]):
        names = [{m["name"] for m in ent} for ent in doc["vertexSet"]]
        for h, t, r, in_train in ex.triples:
            assert in_train == any((a, b, labels[r]) in train for a in names[h] for b in names[t])
    assert not any(flag for ex in splits["train"] for *_, flag in ex.triples)


def test_markers_wrap_every_mention(data_dir, kg, tokenizer):
    from kgllm.linking import EntityLinker

    splits, labels, _ = load_dataset("redocred_docre", data_dir, **ARGS)
    ex = splits["train"][0]
    (f,) = Featurizer(tokenizer, EntityLinker.from_kg(kg), "docre", 512)(ex, [])
    toks = tokenizer.convert_ids_to_tokens(f["input_ids"])
    for spans, positions in zip(ex.entities, f["entity_pos"]):
        assert len(positions) == len(spans)
        for (s, e), pos in zip(sorted(spans), positions):
            assert toks[pos] == "*" and toks[pos + 1] == tokenizer.tokenize(ex.text[s:e])[0]
    assert toks.count("*") == 2 * sum(len(s) for s in ex.entities)


@pytest.mark.slow
def test_fused_docre_model_learns_a_small_document_set(kg_dir, data_dir, tmp_path, redocred_file):
    L.seed_everything(0)
    dm = KGDataModule("redocred_docre", str(kg_dir), backbone="tiny", data_dir=str(data_dir), dataset_args=ARGS,
                      batch_size=2)
    model = DocREModule(fusion="gated", fusion_layers=[0], gnn_hidden=16, gnn_heads=2, lr=3e-3, kg_lr=3e-3,
                        warmup_ratio=0.0, backbone_dropout=0.0, head_dropout=0.0,
                        task_args={"emb_size": 32, "block_size": 8})
    trainer = L.Trainer(max_epochs=80, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=0)
    trainer.fit(model, datamodule=dm)
    metrics = trainer.callback_metrics
    assert float(metrics["train/loss"]) < 0.05
    assert float(metrics["train/f1"]) == pytest.approx(1.0)

    # eval-re reads the checkpoint back (weights_only) and scores it: on the training documents, with no
    # documents counted as "training" for Ign F1, it must find the same perfect fit
    trainer.save_checkpoint(tmp_path / "docre.ckpt")
    result = evaluate(str(tmp_path / "docre.ckpt"), f"redocred:{redocred_file}", docs="0:4", train_docs="0:0",
                      progress=False)
    assert result["documents"] == 4 and result["f1"] == pytest.approx(1.0) == result["ign_f1"]
    # Ign F1 drops correct predictions of training facts: scored against its own training documents, none is left
    result = evaluate(str(tmp_path / "docre.ckpt"), f"redocred:{redocred_file}", docs="0:4", progress=False)
    assert result["train_docs"] == "0:4" and result["f1"] == pytest.approx(1.0) and result["ign_f1"] == 0.0


def test_eval_re_refuses_bad_input(tmp_path, redocred_file):
    torch.save({"state_dict": {}, "hyper_parameters": {"task": "seq_cls"}}, tmp_path / "sst2.ckpt")
    with pytest.raises(KGLLMError, match="a seq_cls checkpoint, not a document-level"):
        evaluate(str(tmp_path / "sst2.ckpt"), f"redocred:{redocred_file}")
    with pytest.raises(KGLLMError, match="checkpoint not found"):
        evaluate(str(tmp_path / "none.ckpt"), f"redocred:{redocred_file}")
    with pytest.raises(ConfigError, match="expected FORMAT:PATH"):
        evaluate(str(tmp_path / "sst2.ckpt"), f"docred:{redocred_file}")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"sents": [["A", "b"]], "vertexSet": [[{"sent_id": 3, "pos": [0, 1]}]]}]))
    with pytest.raises(CorpusError, match="bad.json: document 0: vertexSet.0.: sent_id 3"):
        load_dataset("redocred_docre", None, path=str(bad))
