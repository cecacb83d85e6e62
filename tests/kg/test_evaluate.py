"""kg-eval on a hand-made KG folder whose right answers are known."""

import json

import pytest

from kgllm.util.errors import KGFormatError
from kgllm.kg.extraction.corpus import read_corpus
from kgllm.kg.quality.evaluate import evaluate_redocred, prf


def _write(folder, redocred_file, mentions, provenance, relations=("born_in", "co_occurs_with")):
    import hashlib

    docs = list(read_corpus(redocred_file, "redocred", limit=1))
    h = hashlib.sha256()
    for d in docs:
        h.update(d.doc_id.encode() + b"\0" + d.text.encode() + b"\0")
    folder.mkdir()
    (folder / "meta.json").write_text(json.dumps({"corpus": {"documents": 1, "sha256": h.hexdigest()}}))
    (folder / "relations.tsv").write_text("id\tname\tcount\n" + "".join(f"{i}\t{r}\t1\n" for i, r in
                                                                      enumerate(relations)))
    (folder / "mentions.tsv").write_text("doc\tsentence\tstart\tend\tentity\tlabel\ttext\n" + "".join(
        f"{docs[0].doc_id}\t{s}\t{a}\t{b}\t{e}\t{lab}\tx\n" for s, a, b, e, lab in mentions))
    (folder / "provenance.tsv").write_text("head\trelation\ttail\tdoc\tsentence\tstart\tend\tconfidence\n" + "".join(
        f"{h_}\t{r}\t{t}\t{docs[0].doc_id}\t{s}\t{a}\t{b}\t1.0\n" for h_, r, t, s, a, b in provenance))
    return docs[0]


def test_known_answers(tmp_path, redocred_file):
    # doc 0: "Barack Obama was born in Honolulu , Hawaii . Obama served as president of the United States ..."
    # gold entities: 0 Barack Obama (0,12)+(45,50), 1 Honolulu (25,33), 2 Hawaii (36,42), 3 United States (78,91),
    # 4 2009; gold pairs: {0,1} {1,2} {0,3} {1,3}
    doc = _write(tmp_path / "kg", redocred_file,
                 mentions=[(0, 0, 12, 0, "PERSON"), (0, 25, 33, 1, "GPE"), (0, 36, 42, 2, "GPE"),
                           (1, 45, 50, 0, "PERSON"), (1, 51, 57, 9, "PERSON"), (1, 45, 50, 0, "PRON")],
                 provenance=[(0, 0, 1, 0, 0, 33), (1, 0, 2, 0, 25, 42), (0, 0, 2, 0, 0, 42), (0, 1, 1, 0, 0, 33)])
    assert doc.text[0:12] == "Barack Obama" and doc.text[45:50] == "Obama" and doc.text[78:91] == "United States"
    m = evaluate_redocred(tmp_path / "kg", redocred_file)
    assert m["mention_precision"] == pytest.approx(4 / 5)  # "served" is wrong; the PRON row is not counted
    assert m["mention_recall"] == pytest.approx(4 / 6)
    # extracted pairs {0,1} (gold), {1,2} (gold), {0,2} (not gold); the co-occurrence edge is ignored
    assert (m["pair_precision"], m["pair_recall"]) == (pytest.approx(2 / 3), pytest.approx(2 / 4))
    # baseline: sentence 0 -> {0,1} {0,2} {1,2}; sentence 1 -> Obama + unmapped "served": a false positive
    assert m["precision"] == "standard"
    assert (m["cooc_pair_precision"], m["cooc_pair_recall"]) == (pytest.approx(2 / 4), pytest.approx(2 / 4))
    lenient = evaluate_redocred(tmp_path / "kg", redocred_file, lenient=True)  # the old figure drops that pair
    assert lenient["precision"] == "lenient"
    assert (lenient["cooc_pair_precision"], lenient["pair_precision"]) == (pytest.approx(2 / 3), pytest.approx(2 / 3))


def test_unmapped_or_self_pairs_are_false_positives(tmp_path, redocred_file):
    # edge 0 -> 9 ("served", no gold entity) and edge 0 -> 5, whose only mention is gold entity 0's span
    _write(tmp_path / "kg", redocred_file,
           mentions=[(0, 0, 12, 0, "PERSON"), (0, 25, 33, 1, "GPE"), (1, 45, 50, 5, "PERSON"),
                     (1, 51, 57, 9, "PERSON")],
           provenance=[(0, 0, 1, 0, 0, 33), (5, 0, 9, 1, 45, 57), (0, 0, 5, 0, 0, 50)])
    m = evaluate_redocred(tmp_path / "kg", redocred_file)
    assert m["pairs_predicted"] == 3 and m["pair_precision"] == pytest.approx(1 / 3)
    lenient = evaluate_redocred(tmp_path / "kg", redocred_file, lenient=True)
    assert lenient["pairs_predicted"] == 1 and lenient["pair_precision"] == 1.0


def test_pronouns_count_for_the_baseline_too(tmp_path, redocred_file):
    # sentence 1: a pronoun of entity 0 (Obama) and United States -> baseline pair {0,3} (gold)
    _write(tmp_path / "kg", redocred_file,
           mentions=[(0, 0, 12, 0, "PERSON"), (1, 60, 62, 0, "PRON"), (1, 78, 91, 3, "GPE")], provenance=[])
    assert evaluate_redocred(tmp_path / "kg", redocred_file)["cooc_pair_recall"] == pytest.approx(1 / 4)
    assert evaluate_redocred(tmp_path / "kg", redocred_file, lenient=True)["cooc_pair_recall"] == 0.0


def test_pronoun_end_maps_through_its_entity(tmp_path, redocred_file):
    _write(tmp_path / "kg", redocred_file,
           mentions=[(0, 0, 12, 0, "PERSON"), (1, 45, 50, 0, "PRON"), (1, 78, 91, 3, "GPE")],
           provenance=[(0, 0, 3, 1, 45, 91)])
    m = evaluate_redocred(tmp_path / "kg", redocred_file)
    assert m["pair_precision"] == 1.0 and m["pair_recall"] == pytest.approx(1 / 4)


def test_gold_must_be_the_built_corpus(tmp_path, redocred_file, kg_dir):
    _write(tmp_path / "kg", redocred_file, [], [])
    meta = json.loads((tmp_path / "kg" / "meta.json").read_text())
    meta["corpus"]["sha256"] = "0" * 64
    (tmp_path / "kg" / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(KGFormatError, match="not the corpus this KG was built from"):
        evaluate_redocred(tmp_path / "kg", redocred_file)


def test_fixture_kg_scores_are_sane(kg_dir, redocred_file):
    m = evaluate_redocred(kg_dir, redocred_file)
    assert m["documents"] == 6 and m["mention_f1"] > 0.6
    assert 0 < m["pair_precision"] <= 1 and 0 < m["cooc_pair_recall"] <= 1


def test_prf():
    assert prf(0, 0, 5) == (0.0, 0.0, 0.0)
    assert prf(2, 4, 8) == (0.5, 0.25, pytest.approx(1 / 3))


def test_typed_triples_need_the_relation_and_the_direction(tmp_path, redocred_file):
    # gold doc 0 holds (0 Barack Obama, P19, 1 Honolulu); edges: that triple (right), the same pair the other
    # way round (wrong direction), the same pair under another relation, and a pair to unmapped "served"
    docs = _write(tmp_path / "kg", redocred_file,
                  mentions=[(0, 0, 12, 0, "PERSON"), (0, 25, 33, 1, "GPE"), (1, 45, 50, 0, "PERSON"),
                            (1, 51, 57, 9, "PERSON")],
                  provenance=[(0, 0, 1, 0, 0, 33), (1, 0, 0, 0, 0, 33), (0, 1, 1, 0, 0, 33), (0, 0, 9, 1, 45, 57)],
                  relations=("P19", "P20"))
    gold = {(x["h"], x["r"], x["t"]) for x in docs.meta["labels"]}
    assert (0, "P19", 1) in gold and (1, "P19", 0) not in gold and (0, "P20", 1) not in gold
    m = evaluate_redocred(tmp_path / "kg", redocred_file)
    assert m["typed_predicted"] == 4 and m["gold_triples"] == len(gold)
    assert (m["typed_precision"], m["typed_recall"]) == (pytest.approx(1 / 4), pytest.approx(1 / len(gold)))
    assert m["pair_precision"] == pytest.approx(1 / 2)  # untyped: {0,1} (gold) and {0, served}
