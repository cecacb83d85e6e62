import json

import pytest

from kgllm.util.errors import CorpusError
from kgllm.kg.extraction.corpus import corpus_hash, read_corpus, redocred_text

FIX = __import__("tests.conftest", fromlist=["FIXTURES"]).FIXTURES


def test_text_folder_yields_each_file_in_order():
    docs = list(read_corpus(FIX / "corpus"))
    assert [d.doc_id for d in docs] == ["obama.txt", "paris.txt"]
    assert docs[0].text.startswith("Barack Obama")


def test_jsonl_uses_id_and_text_fields():
    docs = list(read_corpus(FIX / "corpus.jsonl"))
    assert [d.doc_id for d in docs] == ["d1", "d2"]
    assert "Merkel" in docs[0].text


def test_redocred_text_keeps_token_offsets(redocred_file):
    doc = next(read_corpus(redocred_file, "redocred"))
    offsets = doc.meta["token_offsets"]
    first = doc.meta["vertexSet"][0][0]
    s, e = offsets[first["sent_id"]][first["pos"][0]][0], offsets[first["sent_id"]][first["pos"][1] - 1][1]
    assert doc.text[s:e] == first["name"]


def test_redocred_text_joins_sentences():
    text, offsets = redocred_text([["a", "b"], ["c"]])
    assert text == "a b c" and offsets == [[(0, 1), (2, 3)], [(4, 5)]]


def test_limit_and_hash_are_stable(redocred_file):
    a = list(read_corpus(redocred_file, "redocred", limit=2))
    b = list(read_corpus(redocred_file, "redocred", limit=2))
    assert len(a) == 2 and corpus_hash(a) == corpus_hash(b)
    assert corpus_hash(a) != corpus_hash(list(read_corpus(redocred_file, "redocred", limit=3)))


@pytest.mark.parametrize("name,content,problem", [
    ("empty.txt", b"  \n", "empty"),
    ("latin1.txt", "caf\xe9".encode("latin-1"), "not valid UTF-8"),
    ("bad.jsonl", b'{"text": "ok"}\n{"text": broken}\n', "malformed JSON"),
    ("notext.jsonl", b'{"body": "x"}\n', "string field 'text'"),
    ("bad.json", b'[{"sents": [["a"]]}, ', "malformed JSON"),
    ("wrong.json", b'{"sents": []}', "JSON list"),
])
def test_bad_input_names_file_and_problem(tmp_path, name, content, problem):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(CorpusError) as err:
        list(read_corpus(path))
    assert str(path) in str(err.value) and problem in str(err.value)


def test_missing_path_and_unknown_format(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        list(read_corpus(tmp_path / "nope.txt"))
    (tmp_path / "x.csv").write_text("a")
    with pytest.raises(CorpusError, match="--format"):
        list(read_corpus(tmp_path / "x.csv"))


def test_jsonl_line_number_in_error(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"text": "fine"}) + "\n\n" + "{oops\n")
    with pytest.raises(CorpusError, match=r"c.jsonl:3"):
        list(read_corpus(path))
