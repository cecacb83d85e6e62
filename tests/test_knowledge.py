"""The LAMA experiment's KGs: the KG-only edges are removed, and a KG of another split is never reused."""

import pytest

from kgllm.util.errors import KGLLMError
from kgllm.kg.sources.lama import read_lama, split_facts
from kgllm.kg.graph.store import KnowledgeGraph
from kgllm.workflows.knowledge.protocol import build_kgs


def test_kgs_of_a_split_and_refusal_of_another(data_dir, tmp_path):
    facts = read_lama(data_dir / "lama_trex", splits=("test",))
    split = split_facts(facts, 0.5, seed=0)
    full, held = build_kgs(data_dir, facts, split.kg_only, tmp_path)
    a, b = KnowledgeGraph.load(full), KnowledgeGraph.load(held)
    triples = lambda kg: {(kg.entities[h].key, kg.relations[r], kg.entities[t].key) for h, r, t in kg.edges}  # noqa
    removed = {(f.sub_key, f.relation, f.obj_key) for f in split.kg_only}
    assert split.kg_only and removed <= triples(a) and not removed & triples(b)
    assert triples(a) - triples(b) == removed and a.key_to_id == b.key_to_id
    assert build_kgs(data_dir, facts, split.kg_only, tmp_path) == (full, held)  # same split: reused
    other = split_facts(facts, 0.5, seed=1).kg_only
    with pytest.raises(KGLLMError, match="built for another probe split"):
        build_kgs(data_dir, facts, other, tmp_path)


def test_relation_distractors_never_hold_a_probed_fact(data_dir, tmp_path):
    """Every probed subject gets an edge of each probed relation; the added edges are of relations the
    subject has no probed fact of, to none of its probed objects, and are recorded in meta.json."""
    facts = read_lama(data_dir / "lama_trex", splits=("test",))
    split = split_facts(facts, 0.5, seed=0)
    full, held = build_kgs(data_dir, facts, split.kg_only, tmp_path, distractor_seed=0)
    kg = KnowledgeGraph.load(full, provenance=True)
    relations = {f.relation for f in facts}
    probed = {(f.sub_key, f.relation, f.obj_key) for f in facts}
    added = [(kg.entities[h].key, kg.relations[r], kg.entities[t].key) for (h, r, t), e in kg.edges.items()
             if any(str(p[0]).startswith("distractor:") for p in e.provenance)]
    assert added and not set(added) & probed
    for sub, rel, obj in added:
        assert rel not in {f.relation for f in facts if f.sub_key == sub}
        assert obj not in {f.obj_key for f in facts if f.sub_key == sub}
    for f in facts:  # copying "the only neighbour" no longer works: one edge per probed relation
        out = {kg.relations[r] for (h, r, t) in kg.edges if h == kg.key_to_id[f.sub_key]}
        assert relations <= out
    meta = kg.meta["probe_facts"]
    assert meta["distractor_seed"] == 0 and meta["distractors"]["edges"] == len(added)
    again = build_kgs(data_dir, facts, split.kg_only, tmp_path / "again", distractor_seed=0)
    assert KnowledgeGraph.load(again[0]).meta["probe_facts"] == meta  # seeded: the same draws
    with pytest.raises(KGLLMError, match="another probe split"):
        build_kgs(data_dir, facts, split.kg_only, tmp_path, distractor_seed=1)


def test_majority_baseline_and_seen_groups():
    from kgllm.kg.sources.lama import LamaFact
    from kgllm.workflows.knowledge.protocol import majority_baseline

    def fact(rel, sub, obj):
        return LamaFact(rel, f"wd:{sub}", sub, f"wd:{obj}", obj)

    text = [fact("P103", "a", "French"), fact("P103", "b", "French"), fact("P103", "c", "English"),
            fact("P19", "d", "Paris")]
    probed = [fact("P103", "x", "French"), fact("P103", "y", "German"), fact("P19", "z", "Rome"),
              fact("P20", "w", "Oslo")]
    assert majority_baseline(text, probed) == pytest.approx(1 / 4)
    assert majority_baseline(text, []) == 0.0
    from types import SimpleNamespace

    from kgllm.workflows.knowledge.protocol import seen_groups

    split = SimpleNamespace(training_sentences=lambda: ["Jean speaks French at home ."])
    groups = seen_groups(split, probed)
    assert groups["kg_only_object_seen"] == [probed[0]] and groups["kg_only_object_unseen"] == probed[1:]


def test_template_sentences_state_only_text_facts(data_dir):
    from kgllm.data.datasets import load_lama_mlm
    from kgllm.kg.sources.lama import read_templates

    plain, _ = load_lama_mlm(data_dir, max_facts=150, kg_only_fraction=0.5)
    more, _ = load_lama_mlm(data_dir, max_facts=150, kg_only_fraction=0.5, template_sentences=True)
    facts = read_lama(data_dir / "lama_trex", splits=("test",))
    split = split_facts(facts, 0.5, seed=0)
    templates = read_templates(data_dir / "lama_trex" / "relations.jsonl")
    texts = {e.text for part in more.values() for e in part}
    stated = {templates[f.relation].replace("[X]", f.sub_label).replace("[Y]", f.obj_label) for f in split.text}
    never = {templates[f.relation].replace("[X]", f.sub_label).replace("[Y]", f.obj_label) for f in split.kg_only}
    assert stated <= texts and not never & texts
    assert sum(map(len, more.values())) > sum(map(len, plain.values()))
    example = next(e for part in more.values() for e in part if e.text in stated)
    assert len(example.links) == 2  # subject and object linked, as in evidence sentences


def test_probe_cache_reuses_only_a_matching_result(tmp_path):
    import os

    from kgllm.kg.sources.lama import LamaFact
    from kgllm.workflows.knowledge.protocol import cached_probe

    ckpt, kg = tmp_path / "best.ckpt", tmp_path / "kg"
    ckpt.write_bytes(b"weights")
    kg.mkdir()
    (kg / "triples.tsv").write_text("a\tP19\tb\n")
    facts = [LamaFact("P19", "wd:Q1", "A", "wd:Q2", "B")]
    calls = []

    def probe_fn():
        calls.append(1)
        return {"with_kg": len(calls)}

    cache = tmp_path / "probes" / "none-seed0.json"
    first = cached_probe(cache, str(ckpt), kg, facts, {"kg_only": facts}, 1, probe_fn)
    assert cached_probe(cache, str(ckpt), kg, facts, {"kg_only": facts}, 1, probe_fn) == first and len(calls) == 1
    cached_probe(cache, str(ckpt), kg, facts, {"kg_only": facts}, 2, probe_fn)  # another depth: probed again
    (kg / "triples.tsv").write_text("a\tP19\tc\n")  # the KG changed
    cached_probe(cache, str(ckpt), kg, facts, {"kg_only": facts}, 2, probe_fn)
    ckpt.write_bytes(b"other weights")
    os.utime(ckpt, ns=(1, 1))  # the checkpoint changed
    cached_probe(cache, str(ckpt), kg, facts, {"kg_only": facts}, 2, probe_fn)
    cache.write_text("{not json")  # a damaged cache is probed again
    assert cached_probe(cache, str(ckpt), kg, facts, {"kg_only": facts}, 2, probe_fn) == {"with_kg": 5}
    assert len(calls) == 5


def test_distractor_objects_are_drawn_as_often_as_the_kg_uses_them():
    """"French" on 9 of 10 P103 edges is drawn about 9 times in 10, never a probed object of the subject."""
    import random

    from kgllm.workflows.knowledge.protocol import draw_object, edge_objects

    kg = KnowledgeGraph({})
    french, basque = kg.add_entity("wd:fr", "French", "ENT"), kg.add_entity("wd:eu", "Basque", "ENT")
    for i in range(10):
        kg.add_edge(kg.add_entity(f"wd:p{i}", f"P{i}", "ENT"), "P103", french if i < 9 else basque, ("t", i, -1, -1, 1.0))
    pool = edge_objects(kg)["P103"]
    rng = random.Random(0)
    draws = [draw_object(rng, pool, set()) for _ in range(2000)]
    assert 0.85 < draws.count(french) / len(draws) < 0.95
    assert {draw_object(rng, pool, {french}) for _ in range(50)} == {basque}
    assert draw_object(rng, pool, {french, basque}) is None and draw_object(rng, [], set()) is None


def test_verdict_corrects_for_picking_the_best_arm():
    from kgllm.util.stats import paired
    from kgllm.workflows.knowledge.protocol import verdict

    none = [0.30, 0.35, 0.32, 0.31, 0.36]
    arms = {"none": none, "a": [0.40, 0.47, 0.41, 0.45, 0.44], "b": [0.31, 0.34, 0.33, 0.30, 0.37],
            "a, KG-only facts deleted after training": [0.9] * 5, "majority (no model)": [0.99] * 5}
    table = [{"arm": arm, "seed": s, "kg_only_p_at_1": v, "none_kg_only_p_at_1": none[s]}
             for arm, vs in arms.items() for s, v in enumerate(vs)]
    said = verdict(table)
    raw = paired(arms["a"], none)["p"]
    assert said.startswith("a vs none") and "best of 2 arms" in said and "97.5% interval" in said
    assert f"Bonferroni p={min(1.0, 2 * raw):.3f}" in said or "p=<0.001" in said
    assert "ahead in 5 of 5 seeds" in said and "helped" in said
    one = verdict([r for r in table if r["arm"] in ("none", "b")])
    assert "paired t-test" in one and "did NOT clearly help" in one


def test_summary_table_intervals_over_seeds_and_items():
    from kgllm.workflows.knowledge.protocol import summary_table

    facts = [f"s{i}|P19|o" for i in range(40)]
    none = [{f: int(i % 4 == 0) for i, f in enumerate(facts)} for _ in range(3)]
    copy = [{f: int(i % 4 != 3) for i, f in enumerate(facts)} for _ in range(3)]
    table = []
    for seed in range(3):
        for arm, h in (("none", none[seed]), ("none+copy", copy[seed])):
            table.append({"arm": arm, "seed": seed, "kg_only_p_at_1": sum(h.values()) / 40, "kg_only_hits": h,
                          "none_kg_only_p_at_1": 0.25})
    md = summary_table(table, ["kg_only_p_at_1"])
    assert "kg_only_p_at_1 95% CI (seeds × items)" in md
    copy_line = next(x for x in md.splitlines() if x.startswith("| none+copy |"))
    cells = [c.strip() for c in copy_line.strip("|").split("|")]
    lo, hi = (float(x) for x in cells[-2].strip("[]").split(","))
    assert lo < 0.75 < hi  # its own interval over items (every seed alike)
    dlo, dhi = (float(x) for x in cells[-1].strip("[]").split(","))
    assert 0.3 < dlo < 0.5 < dhi < 0.7  # the paired difference, 0.5
    assert summary_table([{k: v for k, v in r.items() if k != "kg_only_hits"} for r in table],
                         ["kg_only_p_at_1"]).count("seeds × items") == 0  # without per-item hits: no such column
