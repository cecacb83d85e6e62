"""LAMA files of every format read, import and split into disjoint text / KG-only facts."""

import pytest

from kgllm.util.errors import KGFormatError
from kgllm.kg.sources.imports import import_lama
from kgllm.kg.sources.lama import read_lama, read_templates, split_facts


def test_every_format_reads(data_dir):
    formats = data_dir / "lama_formats"
    trex = read_lama(data_dir / "lama_trex", splits=("test",))
    obama = next(f for f in trex if f.sub_label == "Barack Obama")
    assert (obama.relation, obama.sub_key, obama.obj_key) == ("P19", "wd:Q76", "wd:Q18094")
    assert obama.evidence()[0] == ("Barack Obama was born in Honolulu , Hawaii .", "Barack Obama", "Honolulu")
    g = read_lama(formats / "google_re_place_of_birth.jsonl")
    assert [(f.relation, f.sub_key, f.obj_key) for f in g][0] == ("place_of_birth", "fb:/m/02mjmr", "fb:/m/02hrh0_")
    assert g[0].masked_sentences == ("Barack Obama was born in [MASK] , Hawaii .",)
    c = read_lama(formats / "conceptnet.jsonl")
    assert [(f.relation, f.sub_key, f.obj_key) for f in c] == [("CapableOf", "text:bird", "text:fly"),
                                                               ("HasProperty", "text:fire", "text:hot")]
    s = read_lama(formats / "squad.jsonl")
    assert (s[0].relation, s[0].obj_label, s[0].masked_sentences) == ("squad", "paris",
                                                                      ("The Eiffel Tower stands in [MASK] .",))
    assert read_templates(formats / "relations.jsonl") == {"place_of_birth": "[X] was born in [Y] ."}


@pytest.mark.parametrize("name", ["google_re_place_of_birth.jsonl", "conceptnet.jsonl", "squad.jsonl"])
def test_every_format_imports(data_dir, name):
    kg = import_lama(data_dir / "lama_formats" / name)
    facts = read_lama(data_dir / "lama_formats" / name)
    assert kg.num_entities >= 2 and len(kg.edges) == len(facts)
    assert all(f.sub_key in kg.key_to_id and f.obj_key in kg.key_to_id for f in facts)


def test_bad_lama_line_names_file_and_line(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"obj_label": "x", "masked_sentences": ["[MASK]"]}\n{"sub_label": 3}\n')
    with pytest.raises(KGFormatError, match=r"bad.jsonl:2: not a LAMA fact"):
        read_lama(tmp_path / "bad.jsonl")


def _facts(n_rel=3, n=40):
    from kgllm.kg.sources.lama import LamaFact

    return [LamaFact(f"P{r}", f"wd:S{r}_{i}", f"subject {r} {i}", f"wd:O{i % 7}", f"object{i % 7}",
                     (f"subject {r} {i} relates to [MASK] .",), source=("f", i)) for r in range(n_rel) for i in range(n)]


def test_split_is_disjoint_seeded_and_free_of_leaks():
    from kgllm.kg.sources.lama import LamaFact

    facts = _facts()
    # a fact whose pair also appears, under another relation, among the facts: must never be KG-only
    twin = LamaFact("P9", facts[0].sub_key, facts[0].sub_label, facts[0].obj_key, facts[0].obj_label,
                    ("x [MASK]",), source=("g", 0))
    facts.append(twin)
    a = split_facts(facts, 0.5, seed=1)
    assert split_facts(facts, 0.5, seed=1) == a and split_facts(facts, 0.5, seed=2) != a
    assert not set(a.text) & set(a.kg_only) and set(a.text) | set(a.kg_only) | set(a.excluded) == set(facts)
    assert 0.35 * len(facts) < len(a.kg_only) + len(a.excluded) < 0.65 * len(facts)
    text_pairs = {f.pair for f in a.text}
    sentences = [s.lower() for s in a.training_sentences()]
    for f in a.kg_only:  # no KG-only fact is taught by the training text
        assert f.pair not in text_pairs
        assert not any(f.sub_label.lower() in s and f.obj_label.lower() in s for s in sentences)
        assert not any(f.masked_sentences[0].replace("[MASK]", f.obj_label) == s for s in a.training_sentences())
    assert facts[0].pair in {f.pair for f in a.excluded} or facts[0] in a.text or twin in a.text


def test_split_rejects_bad_fraction():
    with pytest.raises(ValueError):
        split_facts(_facts(), 1.0)
