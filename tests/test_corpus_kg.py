"""The corpus experiment (KG of a corpus vs reading it): its two parts, its KGs, its recall count,
its reading arm's data, and the whole experiment on fixtures."""

import json
import sys
from pathlib import Path

import pytest

from kgllm.util.errors import ConfigError, KGLLMError
from kgllm.kg.sources.lama import LamaFact, read_lama, split_facts
from kgllm.kg.graph.store import KnowledgeGraph
from kgllm.workflows.knowledge.corpus import build_corpus_kgs, corpus_documents, kg_recall, without_facts

ROOT = Path(__file__).resolve().parents[1]


def _split(data_dir, seed=0):
    return split_facts(read_lama(data_dir / "lama_trex", splits=("test",)), 0.5, seed=seed)


def test_parts_share_no_sentence_that_states_a_probed_fact(data_dir):
    """Part A (what every arm reads) never states a probed part-B fact and shares no sentence with part B;
    every probed fact's evidence is in part B."""
    split = _split(data_dir)
    docs = corpus_documents(split)
    part_a = [d["text"] for d in docs if d["id"].startswith("A")]
    part_b = [d["text"] for d in docs if d["id"].startswith("B")]
    assert split.kg_only and part_a and part_b and not set(part_a) & set(part_b)
    for f in split.kg_only:
        assert not any(f.sub_label.lower() in s.lower() and f.obj_label.lower() in s.lower() for s in part_a)
        assert all(s in part_b for s, _, _ in f.evidence() if s not in part_a)


def _hand_kg():
    kg = KnowledgeGraph({})
    ada, london, paris, byron = (kg.add_entity(f"PERSON:{x}", x, "PERSON") for x in ("Ada", "London", "Paris", "Byron"))
    kg.add_edge(ada, "born_in", london, ("doc", 0, 0, 3, 1.0))
    kg.add_edge(paris, "co_occurs_with", ada, ("doc", 1, 0, 3, 1.0))  # the other direction counts too
    kg.add_edge(byron, "father_of", ada, ("doc", 2, 0, 3, 1.0))
    return kg


def _fact(sub, rel, obj):
    return LamaFact(rel, f"wd:{sub}", sub, f"wd:{obj}", obj)


def test_recall_counts_what_the_kg_states():
    kg = _hand_kg()
    facts = [_fact("Ada", "P19", "London"), _fact("Ada", "P20", "Paris"), _fact("Ada", "P27", "Rome"),
             _fact("Eve", "P19", "London")]
    recall = kg_recall(kg, facts)
    assert recall["P19"] == {"facts": 2, "subject": 1, "object": 2, "pair": 1, "typed": 0}
    assert recall["P20"]["pair"] == 1 and recall["P27"] == {"facts": 1, "subject": 1, "object": 0, "pair": 0,
                                                            "typed": 0}
    assert recall["all"]["facts"] == 4 and recall["all"]["pair"] == 2 and list(recall)[-1] == "all"
    kg.add_edge(kg.key_to_id["PERSON:Ada"], "P19", kg.key_to_id["PERSON:London"], ("doc", 3, 0, 3, 1.0))
    assert kg_recall(kg, facts)["P19"]["typed"] == 1  # an edge of the fact's own relation


def test_without_facts_cuts_only_the_facts_edges_and_keeps_ids():
    kg = _hand_kg()
    held = without_facts(kg, [_fact("Ada", "P19", "London"), _fact("Ada", "P20", "Paris")])
    names = lambda g: {(g.entities[h].label, g.relations[r], g.entities[t].label) for h, r, t in g.edges}  # noqa
    assert names(held) == {("Byron", "father_of", "Ada")}
    assert held.key_to_id == kg.key_to_id and held.relations == kg.relations


def test_reading_arm_adds_part_b_to_training_only(data_dir):
    from kgllm.data.datasets import load_lama_mlm

    split = _split(data_dir)
    plain, _ = load_lama_mlm(data_dir, max_facts=150, kg_only_fraction=0.5, link="label")
    read, _ = load_lama_mlm(data_dir, max_facts=150, kg_only_fraction=0.5, link="label", read_held=True)
    assert [e.text for e in read["val"]] == [e.text for e in plain["val"]]  # every arm validates alike
    added = [e.text for e in read["train"]][len(plain["train"]):]
    assert [e.text for e in read["train"]][:len(plain["train"])] == [e.text for e in plain["train"]]
    assert added == split.held_sentences() and added
    assert all(e.spans and not e.links for e in read["train"])  # linked by label, no Wikidata keys
    with pytest.raises(ConfigError, match="read_held needs kg_only_fraction"):
        load_lama_mlm(data_dir, read_held=True)
    with pytest.raises(ConfigError, match="link must be"):
        load_lama_mlm(data_dir, kg_only_fraction=0.5, link="qid")


def test_corpus_kgs_are_reused_or_refused(data_dir, tmp_path):
    split = _split(data_dir)
    full, held = build_corpus_kgs(split, tmp_path, progress=False)
    a, b = KnowledgeGraph.load(full), KnowledgeGraph.load(held)
    assert not any(a.entities[e].key.startswith("wd:") for e in range(len(a.entities)))  # built from text
    assert len(b.edges) < len(a.edges) and a.key_to_id == b.key_to_id
    assert not any(c["pair"] for c in kg_recall(b, split.kg_only).values())
    assert build_corpus_kgs(split, tmp_path, progress=False) == (full, held)  # same inputs: reused
    with pytest.raises(KGLLMError, match="another split, corpus or extractor"):
        build_corpus_kgs(_split(data_dir, seed=3), tmp_path, progress=False)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "kg_a_b").mkdir()
    with pytest.raises(KGLLMError, match="did not record"):
        build_corpus_kgs(split, tmp_path / "other", progress=False)


@pytest.mark.slow
def test_corpus_experiment_end_to_end_on_fixtures(data_dir, tmp_path, monkeypatch):
    """Every arm trains and is probed, the table carries the baselines, the KG's recall and both
    comparisons (tiny BERT, 1 epoch)."""
    monkeypatch.syspath_prepend(str(ROOT / "experiments" / "bench"))
    import corpus_experiment

    monkeypatch.chdir(tmp_path)
    assert corpus_experiment.main(["--seeds", "0,1", "--out", str(tmp_path / "res"), "--graphs", str(tmp_path / "g"),
                                   "--data-dir", str(data_dir), "--template-sentences", "--data.backbone", "tiny",
                                   "--model.fusion_layers", "[0]", "--model.gnn_hidden", "16", "--model.gnn_heads",
                                   "2", "--trainer.max_epochs", "1", "--trainer.accelerator", "cpu",
                                   "--trainer.enable_progress_bar", "false"]) == 0
    table = json.loads((tmp_path / "res" / "probe.json").read_text())
    assert {r["arm"] for r in table} == {
        "none", "none + reading B", "none+copy + KG(A+B)", "none+copy + KG(A+B), fusion off at inference",
        "none+copy + KG(A+B) + reading B", "none+copy + KG(A+B) + reading B, fusion off at inference",
        "none+copy, B facts deleted from the KG after training", "majority (no model)"}
    assert {r["seed"] for r in table} == {0, 1}
    report = (tmp_path / "res" / "results.md").read_text()
    assert "What the KG states" in report and "vs none + reading B" in report and "Relation-majority" in report
    assert json.loads((tmp_path / "res" / "recall.json").read_text())["all"]["facts"] > 0
    with pytest.raises(ConfigError, match="unknown corpus-experiment arm"):
        corpus_experiment.main(["--arms", "kg only", "--data-dir", str(data_dir), "--out", str(tmp_path / "res"),
                                "--graphs", str(tmp_path / "g")])
