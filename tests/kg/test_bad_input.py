"""Bad corpora: clear errors naming the file, nothing half-written, or --skip-bad with a report."""

import json

import pytest

from kgllm.cli import main
from kgllm.util.errors import CorpusError
from kgllm.kg.extraction.build import build_kg, work_dir_for


def _jsonl(path, texts):
    path.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(texts)))
    return path


def test_ten_megabyte_line_is_a_clear_error(tmp_path):
    corpus = _jsonl(tmp_path / "big.jsonl", ["Paris is in France.", "word " * 2_000_000])
    with pytest.raises(CorpusError) as err:
        build_kg(corpus, tmp_path / "kg", progress=False)
    msg = str(err.value)
    assert "big.jsonl:2" in msg and "10,000,000 characters" in msg and "spaCy's limit" in msg
    assert not (tmp_path / "kg").exists() and not work_dir_for(tmp_path / "kg").exists()


def test_skip_bad_builds_the_rest_and_reports(tmp_path, capsys):
    corpus = tmp_path / "mixed.jsonl"
    corpus.write_bytes(b'{"text": "Barack Obama was born in Honolulu."}\n'
                       b'{"text": broken\n'
                       b'{"text": "caf\xe9"}\n'
                       b'{"text": "' + b"word " * 250_000 + b'"}\n'
                       b'{"body": "no text field"}\n'
                       b'{"text": "Paris is the capital of France."}\n')
    assert main(["build-kg", str(corpus), "--out", str(tmp_path / "kg"), "--skip-bad", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert "skipped 4 bad documents" in out
    meta = json.loads((tmp_path / "kg" / "meta.json").read_text())
    assert meta["skipped"]["count"] == 4 and meta["corpus"]["documents"] == 2
    joined = "\n".join(meta["skipped"]["errors"])
    assert "mixed.jsonl:2: malformed JSON" in joined and "mixed.jsonl:3: not valid UTF-8" in joined
    assert "mixed.jsonl:5: expected an object" in joined and "1,250,000 characters" in joined
    with pytest.raises(CorpusError):
        build_kg(corpus, tmp_path / "strict", progress=False)


def test_skip_bad_in_a_folder(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "good.txt").write_text("Paris is the capital of France.")
    (folder / "empty.txt").write_text("")
    (folder / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    kg = build_kg(folder, tmp_path / "kg", skip_bad=True, progress=False)
    assert kg.meta["corpus"]["documents"] == 1 and kg.meta["skipped"]["count"] == 2
    assert any("binary content" in e for e in kg.meta["skipped"]["errors"])


def test_all_documents_bad(tmp_path):
    corpus = tmp_path / "bad.jsonl"
    corpus.write_text("{nope\n")
    with pytest.raises(CorpusError, match="no usable documents"):
        build_kg(corpus, tmp_path / "kg", skip_bad=True, progress=False)
