"""The LAMA experiment's KGs: the KG-only edges are removed, and a KG of another split is never reused."""

import pytest

from kgllm.errors import KGLLMError
from kgllm.kg.lama import read_lama, split_facts
from kgllm.kg.store import KnowledgeGraph
from kgllm.workflows.knowledge import build_kgs


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
