"""The LAMA probe on a hand-made cloze set where the right answers are known."""

import torch

import pytest

from kgllm.workflows.knowledge.probe import default_source, load_cloze, probe


def test_cloze_items(data_dir, tokenizer):
    cloze = load_cloze(default_source(data_dir), tokenizer=tokenizer)
    assert set(cloze) == {"P19", "P36"}
    paris = next(it for it in cloze["P36"] if it["object"] == "Paris")
    assert paris["text"] == "The capital of France is [MASK] ."
    assert paris["text"][slice(*paris["subject"])] == "France" and paris["sub_key"] == "wd:Q142"
    assert all(len(tokenizer.tokenize(it["object"])) == 1 for items in cloze.values() for it in items)


def _paris_model(tmp_path, kg_dir, tokenizer):
    from kgllm.lit import MLMModule

    model = MLMModule(backbone="tiny", kg_dir=str(kg_dir), fusion="gated", fusion_layers=[0], gnn_hidden=16,
                      gnn_heads=2)
    model.configure_model()
    paris = tokenizer.convert_tokens_to_ids("paris")
    with torch.no_grad():
        model.model.hf.cls.predictions.bias.zero_()
        model.model.hf.cls.predictions.bias[paris] = 1e4
    ckpt = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
            "pytorch-lightning_version": "2.6.6"}
    model.on_save_checkpoint(ckpt)
    torch.save(ckpt, tmp_path / "m.ckpt")
    return str(tmp_path / "m.ckpt")


def test_p_at_1_with_a_model_that_always_says_paris(tmp_path, data_dir, tokenizer):
    from kgllm.kg.sources.imports import import_lama
    from kgllm.kg.sources.lama import read_lama

    kg_dir = tmp_path / "lama"
    import_lama(data_dir / "lama_trex", splits=None).save(kg_dir)  # train/dev facts too: the majority's counts
    ckpt = _paris_model(tmp_path, kg_dir, tokenizer)
    facts = read_lama(data_dir / "lama_trex", splits=("test",))
    france = [f for f in facts if f.sub_label == "France"]
    res = probe(ckpt, default_source(data_dir), groups={"france": france, "rest": [f for f in facts
                                                                                   if f not in france]})
    p36 = res["relations"]["P36"]
    n36 = p36["facts"]
    assert p36["with_kg"] == p36["without_kg"] == 1 / n36  # only France -> Paris
    assert res["relations"]["P19"]["with_kg"] == 0.0
    facts = res["with_kg"]["facts"]
    assert res["with_kg"]["p_at_1_micro"] == 1 / facts
    assert res["with_kg"]["p_at_1"] == (1 / n36 + 0) / 2
    assert res["linked"] == res["probed"] == facts  # every subject is a node of the imported KG
    france_hits = res["with_kg"]["groups"]["france"].pop("hits")
    assert res["with_kg"]["groups"]["france"] == {"p_at_1_micro": 1.0, "facts": 1,
                                                  "by_relation": {"P36": {"p_at_1": 1.0, "facts": 1}}}
    assert france_hits == {f"{france[0].sub_key}|P36|{france[0].obj_key}": 1}  # per fact, for item intervals
    rest = res["with_kg"]["groups"]["rest"]
    assert rest["p_at_1_micro"] == 0.0 and all(v["p_at_1"] == 0.0 for v in rest["by_relation"].values())
    assert sum(v["facts"] for v in rest["by_relation"].values()) == rest["facts"]
    assert sum(b["facts"] for b in res["with_kg"]["by_degree"].values()) == facts
    # the no-model baseline: each relation's most frequent KG object, the probed facts' own edges left out
    from collections import Counter

    from kgllm.kg.graph.store import KnowledgeGraph

    kg = KnowledgeGraph.load(kg_dir)
    probed = {(f.sub_key, f.relation, f.obj_key) for f in read_lama(data_dir / "lama_trex", splits=("test",))}
    assert res["majority"]["predicts"]  # train/dev edges give some relation a prior
    for pid, r in res["relations"].items():
        labels = Counter(kg.entities[t].label for (h, rel, t) in kg.edges if kg.relations[rel] == pid
                         and (kg.entities[h].key, pid, kg.entities[t].key) not in probed)
        top = next((lab for lab, _ in labels.most_common() if len(tokenizer.tokenize(lab)) == 1), None)
        assert res["majority"]["predicts"].get(pid) == (tokenizer.tokenize(top)[0] if top else None)
        tops = read_lama(data_dir / "lama_trex", splits=("test",))
        expect = [f.obj_label.lower() == (top or "").lower() for f in tops if f.relation == pid
                  and len(tokenizer.tokenize(f.obj_label)) == 1]
        assert r["majority"] == pytest.approx(sum(expect) / len(expect))


@pytest.mark.parametrize("name,linked", [("google_re_place_of_birth.jsonl", 2), ("conceptnet.jsonl", 2),
                                         ("squad.jsonl", 0)])
def test_every_lama_format_probes(tmp_path, data_dir, tokenizer, name, linked):
    """Each format's facts probe against a KG imported from them (subjects linked by id or label)."""
    from kgllm.kg.sources.imports import import_lama

    source = data_dir / "lama_formats" / name
    kg_dir = tmp_path / "kg"
    import_lama(source).save(kg_dir)
    res = probe(_paris_model(tmp_path, kg_dir, tokenizer), source)
    assert res["probed"] >= 1 and res["linked"] == min(linked, res["probed"])
    expected = 1.0 if name == "squad.jsonl" else 0.0  # only the SQuAD fact's answer is "paris"
    assert res["with_kg"]["p_at_1_micro"] == expected
