import pytest

from kgllm.kg.extraction.config import ExtractConfig
from kgllm.kg.extraction.extract import COOCCURRENCE, extract_doc


def _triples(nlp, text, **cfg):
    ex = extract_doc(nlp(text), "d", ExtractConfig(**cfg))
    names = [e[0] for e in ex.entities]
    return ex, {(names[h], r, names[t]) for h, r, t, *_ in ex.triples}


@pytest.mark.parametrize("text,triple", [
    ("Barack Obama was born in Honolulu.", ("Barack Obama", "born_in", "Honolulu")),
    ("Paris is the capital of France.", ("Paris", "capital_of", "France")),
    ("Angela Merkel, the chancellor of Germany, met Emmanuel Macron.", ("Angela Merkel", "chancellor_of", "Germany")),
    ("Angela Merkel, the chancellor of Germany, met Emmanuel Macron.", ("Angela Merkel", "meet", "Emmanuel Macron")),
])
def test_dependency_patterns(nlp, text, triple):
    _, triples = _triples(nlp, text)
    assert triple in triples


def test_mentions_have_exact_spans_and_sentences(nlp):
    text = "Barack Obama was born in Honolulu. Obama was president."
    ex, _ = _triples(nlp, text)
    for ent, sent, start, end, surface, label in ex.mentions:
        assert text[start:end] == surface
    assert [m[1] for m in ex.mentions] == [0, 0, 1]
    assert ex.mentions[0][0] == ex.mentions[2][0]  # Obama -> Barack Obama


def test_triple_provenance_span_covers_both_mentions(nlp):
    text = "Barack Obama was born in Honolulu."
    ex, _ = _triples(nlp, text)
    h, r, t, sent, start, end, conf = ex.triples[0]
    assert text[start:end] == "Barack Obama was born in Honolulu" and 0 < conf <= 1


def test_cooccurrence_is_separate_and_optional(nlp):
    text = "Barack Obama visited Paris and Berlin."
    _, off = _triples(nlp, text)
    _, on = _triples(nlp, text, cooccurrence=True)
    assert not any(r == COOCCURRENCE for _, r, _ in off)
    assert {t for t in on if t[1] == COOCCURRENCE} and off <= on


def test_numbers_are_excluded_by_default(nlp):
    ex, _ = _triples(nlp, "Three people visited Paris.")
    assert [m[4] for m in ex.mentions] == ["Paris"]


def test_possessive_and_verb_object(nlp):
    _, triples = _triples(nlp, "Microsoft's founder Bill Gates lives in Seattle.")
    assert any({h, t} == {"Microsoft", "Bill Gates"} and r == "founder" for h, r, t in triples)
    assert ("Bill Gates", "live_in", "Seattle") in triples


def test_mentions_are_tidied(nlp):
    ex, _ = _triples(nlp, "The Soviet Union's army fought from 1941 to 1945. The following year was quiet.")
    surfaces = [m[4] for m in ex.mentions if m[5] != "PRON"]
    assert "Soviet Union" in surfaces and "1941" in surfaces and "1945" in surfaces
    assert not any("following year" in s or s.lower().startswith("the ") for s in surfaces)


def test_pronouns_link_sentences(nlp):
    text = "Angela Merkel studied physics. She was born in Hamburg."
    ex, triples = _triples(nlp, text)
    pron = [m for m in ex.mentions if m[5] == "PRON"]
    assert [text[m[2]:m[3]] for m in pron] == ["She"]
    assert ex.entities[pron[0][0]][0] == "Angela Merkel"
    assert ("Angela Merkel", "born_in", "Hamburg") in triples
    ex, triples = _triples(nlp, text, pronouns=False)
    assert not any(m[5] == "PRON" for m in ex.mentions) and not triples


def test_dates_pair_only_when_close(nlp):
    _, near = _triples(nlp, "Barack Obama was born in 1961.")
    assert ("Barack Obama", "born_in", "1961") in near
    _, none = _triples(nlp, "From 1990 to 1995 nothing happened.")
    assert not none  # two dates never form a relation


def test_extract_docs_equals_one_document_at_a_time(nlp, redocred_file):
    import json

    from kgllm.kg.extraction.config import ExtractConfig
    from kgllm.kg.extraction.extract import extract_doc, extract_docs

    texts = [" ".join(t for s in d["sents"] for t in s) for d in json.loads(redocred_file.read_text())[:3]]
    docs = [(nlp(t), f"d{i}") for i, t in enumerate(texts)]
    cfg = ExtractConfig(extractor="dependency+cooccurrence")
    together = [x.to_dict() for x in extract_docs(docs, cfg)]
    assert together == [extract_doc(doc, doc_id, cfg).to_dict() for doc, doc_id in docs]
    assert all(x["triples"] for x in together)
