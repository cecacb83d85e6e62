"""Document-level RE as a kgllm task: the Re-DocRED loader, mention markers, a model that learns a
small document set (fused, through the Lightning module), eval-re on its checkpoint, and the
learned extractor in build-kg."""

import json

import lightning as L
import pytest
import torch

from kgllm.data import KGDataModule
from kgllm.data.datasets import load_dataset
from kgllm.data.features import Featurizer
from kgllm.util.errors import ConfigError, CorpusError, KGLLMError
from kgllm.lit import DocREModule
from kgllm.workflows.eval_re import evaluate
from tests.conftest import FIXTURE_DATASET_ARGS

ARGS = FIXTURE_DATASET_ARGS["redocred_docre"]


def test_loader_gives_entities_triples_and_ign_flags(data_dir, redocred_file):
    from kgllm.data.datasets import redocred_schema

    splits, labels, task = load_dataset("redocred_docre", data_dir, **ARGS)
    raw = json.loads(redocred_file.read_text())
    assert task == "docre" and labels == sorted(redocred_schema()) and len(labels) == 96  # the schema, not the file
    assert {lab["r"] for d in raw for lab in d["labels"]} < set(labels)
    _, own, _ = load_dataset("redocred_docre", data_dir, **ARGS, schema="file")
    assert own == sorted({lab["r"] for d in raw for lab in d["labels"]})
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


def test_bad_documents_name_the_file_and_the_problem(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"sents": [["A", "b"]], "vertexSet": [[{"sent_id": 3, "pos": [0, 1]}]]}]))
    with pytest.raises(CorpusError, match=r"bad.json: document 0: vertexSet\[0\]: sent_id 3"):
        load_dataset("redocred_docre", None, path=str(bad))


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


def test_eval_re_and_the_learned_extractor_refuse_bad_input(tmp_path, redocred_file):
    from kgllm.cli import main
    from kgllm.kg.extraction.config import ExtractConfig
    from kgllm.kg.extraction.extractors import load_extractors

    torch.save({"state_dict": {}, "hyper_parameters": {"task": "seq_cls"}}, tmp_path / "sst2.ckpt")
    with pytest.raises(KGLLMError, match="a seq_cls checkpoint, not a document-level"):
        evaluate(str(tmp_path / "sst2.ckpt"), f"redocred:{redocred_file}")
    with pytest.raises(KGLLMError, match="checkpoint not found"):
        evaluate(str(tmp_path / "none.ckpt"), f"redocred:{redocred_file}")
    with pytest.raises(ConfigError, match="expected FORMAT:PATH"):
        evaluate(str(tmp_path / "sst2.ckpt"), f"docred:{redocred_file}")
    # without --re-model the shipped extractor is read (tests/lit/test_extractor_file.py); with none shipped, an error
    with pytest.raises(ConfigError, match="none.ckpt: --re-model checkpoint not found"):
        load_extractors(ExtractConfig(extractor="learned", re_model=str(tmp_path / "none.ckpt")))
    with pytest.raises(KGLLMError, match="a seq_cls checkpoint"):
        load_extractors(ExtractConfig(extractor="learned", re_model=str(tmp_path / "sst2.ckpt")))
    with pytest.raises(SystemExit):
        main(["build-kg", str(redocred_file), "--out", str(tmp_path / "kg"), "--re-model", "x.ckpt"])
    assert not (tmp_path / "kg").exists()


@pytest.fixture(scope="module")
def trained(kg_dir, data_dir, tmp_path_factory):
    """A tiny fused DocRE model fitted to the four fixture training documents, and its checkpoint."""
    L.seed_everything(0)
    dm = KGDataModule("redocred_docre", str(kg_dir), backbone="tiny", data_dir=str(data_dir), dataset_args=ARGS,
                      batch_size=2)
    model = DocREModule(fusion="gated", fusion_layers=[0], gnn_hidden=16, gnn_heads=2, lr=3e-3, kg_lr=3e-3,
                        warmup_ratio=0.0, backbone_dropout=0.0, head_dropout=0.0,
                        task_args={"emb_size": 32, "block_size": 8})
    trainer = L.Trainer(max_epochs=80, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=0)
    trainer.fit(model, datamodule=dm)
    ckpt = tmp_path_factory.mktemp("docre") / "docre.ckpt"
    trainer.save_checkpoint(ckpt)
    return trainer.callback_metrics, ckpt, dm.label_names


@pytest.mark.slow
def test_fused_docre_model_learns_a_small_document_set(trained, redocred_file, tmp_path):
    metrics, ckpt, _ = trained
    assert float(metrics["train/loss"]) < 0.15  # 96 schema classes, most never positive
    assert float(metrics["train/f1"]) == pytest.approx(1.0)
    # eval-re reads the checkpoint back (weights_only) and scores it: on the training documents, with no
    # documents counted as "training" for Ign F1, it must find the same perfect fit
    result = evaluate(str(ckpt), f"redocred:{redocred_file}", docs="0:4", train_docs="0:0", progress=False)
    assert result["documents"] == 4 and result["f1"] == pytest.approx(1.0) == result["ign_f1"]
    # Ign F1 drops correct predictions of training facts: scored against its own training documents, none is left
    result = evaluate(str(ckpt), f"redocred:{redocred_file}", docs="0:4", progress=False)
    assert result["train_docs"] == "0:4" and result["f1"] == pytest.approx(1.0) and result["ign_f1"] == 0.0
    # another file of the schema that holds only some of its relations is scored (a real held-out file)
    docs = json.loads(redocred_file.read_text())
    kept = sorted({lab["r"] for d in docs for lab in d["labels"]})[:3]
    subset = [{**d, "labels": [lab for lab in d["labels"] if lab["r"] in kept]} for d in docs]
    (tmp_path / "subset.json").write_text(json.dumps(subset))
    result = evaluate(str(ckpt), f"redocred:{tmp_path / 'subset.json'}", docs="0:4", train_docs="0:0", progress=False)
    assert result["documents"] == 4 and 0.0 < result["recall"] <= 1.0
    # gold data with a relation outside the schema is refused, naming it, not scored with shifted label ids
    docs[0]["labels"].append({"h": 0, "t": 1, "r": "P0000", "evidence": []})
    other = tmp_path / "other_schema.json"
    other.write_text(json.dumps(docs))
    with pytest.raises(KGLLMError, match="other_schema.json: document 0: relation 'P0000' is not in the Re-DocRED schema"):
        evaluate(str(ckpt), f"redocred:{other}", docs="0:4", progress=False)


@pytest.mark.slow
def test_learned_extractor_builds_a_typed_kg_that_merges_by_relation_id(trained, redocred_file, tmp_path):
    from kgllm.kg.extraction.config import ExtractConfig
    from kgllm.kg.extraction.build import build_kg
    from kgllm.kg.sources.imports import import_tsv, merge
    from kgllm.kg.graph.store import KnowledgeGraph

    _, ckpt, labels = trained
    kg = build_kg(redocred_file, tmp_path / "learned", "redocred", limit=4, progress=False,
                  cfg=ExtractConfig(extractor="learned", re_model=str(ckpt)))
    meta = json.loads((tmp_path / "learned" / "meta.json").read_text())
    assert meta["extractor"]["version"].startswith("learned-docre:")
    assert meta["extractor"]["model"]["relations"] == labels and len(meta["extractor"]["model"]["sha256"]) == 64
    assert set(meta["relation_labels"]) == set(labels)
    relations = set(kg.relations)
    assert relations and relations <= set(labels)  # every edge is typed by the model's schema
    # the extractor contract on one parsed document (as tests/kg/test_extractors.py checks the others)
    from kgllm.kg.extraction.extract import extract_doc, load_pipeline

    text = json.loads(redocred_file.read_text())[0]
    text = " ".join(tok for sent in text["sents"] for tok in sent)
    ex = extract_doc(load_pipeline()(text), "d", ExtractConfig(extractor="learned", re_model=str(ckpt)))
    assert ex.triples
    for h, rel, t, sent, start, end, conf in ex.triples:
        assert 0 <= h < len(ex.entities) and 0 <= t < len(ex.entities) and h != t and rel in labels
        assert 0 < conf <= 1 and 0 <= start < end <= len(text) and isinstance(sent, int)
    assert all(0 < e.confidence <= 1 and e.provenance for e in kg.edges.values())
    # an imported Wikidata-keyed KG joins on the shared relation id
    shared = sorted(relations)[0]
    (tmp_path / "wd.tsv").write_text(f"Q1\t{shared}\tQ2\nQ2\tP9999\tQ3\n")
    merged = merge(KnowledgeGraph.load(tmp_path / "learned"), import_tsv(tmp_path / "wd.tsv"), by="id")
    assert merged.relations.count(shared) == 1 and "P9999" in merged.relations
    assert merged.relation_counts[merged.relations.index(shared)] == kg.relation_counts[kg.relations.index(shared)] + 1
    # a document with a single entity gives no edge and no error
    one = tmp_path / "one.jsonl"
    one.write_text(json.dumps({"id": "a", "text": "Paris is nice in spring."}) + "\n"
                   + json.dumps({"id": "b", "text": "it rained all day and nobody came."}) + "\n")
    single = build_kg(one, tmp_path / "single", "jsonl", progress=False,
                      cfg=ExtractConfig(extractor="learned", re_model=str(ckpt)))
    assert len(single.edges) == 0


@pytest.mark.slow
def test_extraction_table_scores_every_extractor(trained, data_dir, tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "experiments" / "bench"))
    import extraction_table

    _, ckpt, _ = trained
    out = tmp_path / "extraction"
    assert extraction_table.main(["--re-model", str(ckpt), "--docs", "0:4", "--data-dir", str(data_dir),
                                  "--extractors", "dependency,cooccurrence,learned", "--out", str(out)]) == 0
    rows = {r["extractor"]: r for r in json.loads((out / "extraction_table.json").read_text())}
    assert set(rows) == {"dependency", "cooccurrence", "learned"}
    assert rows["cooccurrence"]["pair_f1"] == rows["dependency"]["cooc_pair_f1"] > 0  # the same baseline
    assert rows["learned"]["model_share"] > 0 and rows["dependency"]["model_share"] == 0
    assert rows["learned"]["typed_f1"] > 0 and rows["dependency"]["typed_f1"] == 0  # only it speaks the schema
    assert "| learned |" in (out / "results.md").read_text()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "mine.txt").write_text("x")
    assert extraction_table.main(["--docs", "0:4", "--data-dir", str(data_dir), "--extractors", "dependency",
                                  "--out", str(tmp_path / "other")]) == 2  # a folder it did not create


def test_spacy_entities_carry_gold_labels_over_by_matching_mentions():
    from kgllm.data.datasets import TextExample, _spacy_entities

    text = "Barack Obama visited Berlin in May. Obama liked Berlin and the quiet zorblax."
    gold = TextExample(text, entities=[[(0, 12), (36, 41)], [(21, 27), (48, 54)], [(69, 76)]],
                       triples=[(0, 1, 3, False), (0, 2, 4, False)])
    (pred,) = _spacy_entities([gold])
    names = [{text[s:e] for s, e in spans} for spans in pred.entities]
    obama = next(i for i, n in enumerate(names) if "Barack Obama" in n)
    berlin = next(i for i, n in enumerate(names) if "Berlin" in n)
    assert (obama, berlin, 3, False) in pred.triples  # matched ends keep their relation
    assert not any(r == 4 for *_, r, _ in pred.triples)  # "zorblax" is no spaCy entity: its fact is lost
    assert all(sp in {(s, e) for s, e, _ in pred.spans} for spans in pred.entities for sp in spans)


def test_distant_supervision_adds_schema_sentences_but_never_held_out_text(data_dir, monkeypatch):
    import kgllm.data.datasets as ds

    splits, labels, _ = load_dataset("redocred_docre", data_dir, **ARGS)
    plus, _, _ = load_dataset("redocred_docre", data_dir, **ARGS, distant=["fewrel", "lama"], distant_max=3)
    extra = plus["train"][len(splits["train"]):]
    assert 0 < len(extra) <= 6 and plus["val"] == splits["val"]
    for ex in extra:
        assert len(ex.entities) == 2 and len(ex.triples) == 1 and ex.triples[0][:2] == (0, 1)
        assert all(ex.text[s:e] for ent in ex.entities for s, e in ent)
    held_out = splits["val"][0].text
    leak = ds.TextExample("  ".join(held_out.split(" ")).upper(), entities=[[(0, 1)], [(2, 3)]],
                          triples=[(0, 1, 0, False)])
    monkeypatch.setattr(ds, "_distant_examples", lambda *a: [leak, extra[0]])
    plus, _, _ = load_dataset("redocred_docre", data_dir, **ARGS, distant=["fewrel"])
    assert plus["train"][len(splits["train"]):] == [extra[0]]  # the validation document's text is left out
    with pytest.raises(ConfigError, match="train_entities"):
        load_dataset("redocred_docre", data_dir, **ARGS, train_entities="silver")


@pytest.mark.slow
def test_unfused_extractor_checkpoint_needs_no_kg_folder(kg_dir, data_dir, redocred_file, tmp_path, monkeypatch):
    """A DocRE model trained without fusion extracts from another working folder after the KG it
    trained beside is gone (a fused one still needs its KG: it links mentions to it)."""
    import shutil

    from kgllm.kg.extraction.config import ExtractConfig
    from kgllm.kg.extraction.extract import extract_doc, load_pipeline

    kg_copy = tmp_path / "graphs" / "docre"
    shutil.copytree(kg_dir, kg_copy)
    L.seed_everything(0)
    dm = KGDataModule("redocred_docre", str(kg_copy), backbone="tiny", data_dir=str(data_dir), dataset_args=ARGS,
                      batch_size=2)
    model = DocREModule(fusion="none", lr=3e-3, task_args={"emb_size": 32, "block_size": 8})
    trainer = L.Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=0)
    trainer.fit(model, datamodule=dm)
    ckpt = tmp_path / "extractor.ckpt"
    trainer.save_checkpoint(ckpt)
    shutil.rmtree(kg_copy)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    text = json.loads(redocred_file.read_text())[0]
    text = " ".join(tok for sent in text["sents"] for tok in sent)
    ex = extract_doc(load_pipeline()(text), "d", ExtractConfig(extractor="learned", re_model=str(ckpt)))
    assert ex.entities  # it ran: mentions found, pairs scored (an untrained model may keep no edge)


@pytest.mark.slow
def test_batched_learned_extraction_gives_the_same_kg(trained, redocred_file, tmp_path):
    """``--re-batch-size 4``: documents grouped by length into one forward pass; every KG file is
    byte-identical to extracting one document at a time."""
    from kgllm.kg.extraction.build import build_kg
    from kgllm.kg.extraction.config import ExtractConfig

    _, ckpt, _ = trained
    for size in (1, 4):
        build_kg(redocred_file, tmp_path / f"b{size}", "redocred", progress=False,
                 cfg=ExtractConfig(extractor="learned", re_model=str(ckpt), re_batch_size=size))
    for name in ("entities.tsv", "relations.tsv", "triples.tsv", "provenance.tsv", "mentions.tsv", "graph.ttl"):
        assert (tmp_path / "b1" / name).read_bytes() == (tmp_path / "b4" / name).read_bytes(), name
    assert (tmp_path / "b1" / "triples.tsv").read_text().count("\n") > 1  # edges were found


@pytest.mark.slow
def test_a_recall_margin_keeps_more_edges(trained, redocred_file, tmp_path):
    """``--re-margin``: the edges at margin 0 are kept, and more are added below the threshold."""
    from kgllm.kg.extraction.build import build_kg
    from kgllm.kg.extraction.config import ExtractConfig

    _, ckpt, _ = trained
    edges = {}
    for margin in (0.0, 4.0):
        kg = build_kg(redocred_file, tmp_path / f"m{margin}", "redocred", progress=False,
                      cfg=ExtractConfig(extractor="learned", re_model=str(ckpt), re_margin=margin))
        edges[margin] = {(kg.entities[h].key, kg.relations[r], kg.entities[t].key) for h, r, t in kg.edges}
    assert edges[0.0] < edges[4.0]


@pytest.mark.slow
def test_re_batch_benchmark_runs(trained, redocred_file, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    _, ckpt, _ = trained
    script = Path(__file__).resolve().parents[2] / "experiments" / "bench" / "bench_re_batch.py"
    subprocess.run([sys.executable, str(script), "--re-model", str(ckpt), "--corpus", f"redocred:{redocred_file}",
                    "--limit", "6", "--sizes", "1,3", "--repeat", "1", "--json", str(tmp_path / "r.json")],
                   check=True, capture_output=True, text=True)
    rows = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert [r["re_batch_size"] for r in rows] == [1, 3] and all(r["words_per_s"] > 0 for r in rows)
    assert rows[0]["max_abs_score_difference_vs_1"] == 0 and rows[1]["max_abs_score_difference_vs_1"] < 1e-3
