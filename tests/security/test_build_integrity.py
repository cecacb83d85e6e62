"""build-kg, kg-import, kg-merge: one writer per output, resume only onto the same corpus content,
--overwrite only over a KG folder kgllm wrote, numeric options checked."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kgllm.cli import main
from kgllm.kg.extraction.build import build_kg, work_dir_for
from kgllm.kg.graph.store import KnowledgeGraph

DOCS = ["Angela Merkel was born in Hamburg.", "Paris is the capital of France.",
        "Barack Obama was born in Honolulu.", "Berlin is in Germany."]


def _corpus(path: Path, texts=DOCS) -> Path:
    path.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(texts)))
    return path


def _labels(out: Path) -> set[str]:
    return {e.label for e in KnowledgeGraph.load(out).entities}


def test_second_writer_fails_clearly_while_the_first_holds_the_output(tmp_path):
    from kgllm.util.io import OutputError, locked

    corpus, out = _corpus(tmp_path / "c.jsonl"), tmp_path / "kg"
    with locked(out):
        with pytest.raises(OutputError, match="another kgllm process"):
            build_kg(corpus, out, progress=False)
    assert not out.exists() and not work_dir_for(out).exists()
    build_kg(corpus, out, progress=False)  # released: the next build runs
    assert not (tmp_path / ".kg.lock").exists()


def _kill_after_first_shard(monkeypatch):
    import kgllm.kg.extraction.extract as extract  # where the extraction of each document starts

    real, seen = extract.prepare_doc, []

    def dying(doc, doc_id, *args):
        seen.append(doc_id)
        if len(seen) > 1:
            raise KeyboardInterrupt  # killed while the second shard runs
        return real(doc, doc_id, *args)

    monkeypatch.setattr(extract, "prepare_doc", dying)


@pytest.mark.parametrize("keep_stat", [False, True], ids=["edited", "edited-same-size-and-mtime"])
def test_resume_after_the_corpus_changed_reextracts(tmp_path, monkeypatch, keep_stat):
    from kgllm.kg.extraction.config import ExtractConfig

    corpus, out = _corpus(tmp_path / "c.jsonl"), tmp_path / "kg"
    cfg = ExtractConfig(shard_size=1, batch_size=1)
    with monkeypatch.context() as m:
        _kill_after_first_shard(m)
        with pytest.raises(KeyboardInterrupt):
            build_kg(corpus, out, cfg=cfg, progress=False)
    assert (work_dir_for(out) / "shard-00000.jsonl").exists()
    stat = corpus.stat()
    edited = ["Angela Merkel was born in Hanover."] + DOCS[1:]  # same length as the first document
    assert len(edited[0]) == len(DOCS[0])
    _corpus(corpus, edited)
    if keep_stat:
        os.utime(corpus, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        assert corpus.stat().st_size == stat.st_size
    build_kg(corpus, out, cfg=cfg, progress=False)
    assert "Hanover" in _labels(out) and "Hamburg" not in _labels(out)


def test_two_builds_with_different_settings_never_mix(tmp_path):
    corpus, out = _corpus(tmp_path / "c.jsonl"), tmp_path / "kg"
    build_kg(corpus, out, progress=False)
    with pytest.raises(FileExistsError):
        build_kg(corpus, out, progress=False)
    from kgllm.kg.extraction.config import ExtractConfig

    kg = build_kg(corpus, out, cfg=ExtractConfig(cooccurrence=True), overwrite=True, progress=False)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["extractor"]["cooccurrence"] is True and meta["counts"] == kg.counts()


def test_overwrite_only_replaces_a_kg_folder(tmp_path, capsys):
    corpus = _corpus(tmp_path / "c.jsonl")
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    assert main(["build-kg", str(corpus), "--out", str(precious), "--overwrite", "--no-progress"]) == 1
    assert (precious / "thesis.tex").read_text() == "years of work"
    assert "nothing was deleted" in capsys.readouterr().err
    # a KG folder that holds the corpus itself
    kg = tmp_path / "kg"
    build_kg(corpus, kg, progress=False)
    inner = _corpus(kg / "inner.jsonl")
    assert main(["build-kg", str(inner), "--out", str(kg), "--overwrite", "--no-progress"]) == 1
    assert inner.exists()
    assert main(["kg-import", "tsv", str(kg), "--out", str(kg), "--overwrite"]) == 1
    assert inner.exists()


def test_out_under_a_file(tmp_path, capsys):
    corpus = _corpus(tmp_path / "c.jsonl")
    assert main(["build-kg", str(corpus), "--out", str(corpus / "kg"), "--no-progress"]) == 1
    assert "is a file" in capsys.readouterr().err


@pytest.mark.parametrize("option", [["--n-process", "0"], ["--shard-size", "-3"], ["--shard-size", "0"],
                                    ["--batch-size", "0"], ["--limit", "0"], ["--max-path-len", "x"]])
def test_numeric_options_are_checked(tmp_path, option, capsys):
    corpus = _corpus(tmp_path / "c.jsonl")
    with pytest.raises(SystemExit) as exc:
        main(["build-kg", str(corpus), "--out", str(tmp_path / "kg"), *option])
    assert exc.value.code == 2 and option[0] in capsys.readouterr().err
    assert not (tmp_path / "kg").exists()


def test_duplicate_document_ids(tmp_path, capsys):
    from kgllm.util.errors import CorpusError

    corpus = tmp_path / "dup.jsonl"
    corpus.write_text(json.dumps({"id": "a", "text": DOCS[0]}) + "\n" + json.dumps({"id": "a", "text": DOCS[2]}) + "\n")
    with pytest.raises(CorpusError, match="dup.jsonl:2: duplicate document id 'a'"):
        build_kg(corpus, tmp_path / "kg", progress=False)
    assert not (tmp_path / "kg").exists() and not work_dir_for(tmp_path / "kg").exists()
    build_kg(corpus, tmp_path / "kg", progress=False, skip_bad=True)
    docs = {row[3] for row in (line.split("\t") for line in
                               (tmp_path / "kg" / "provenance.tsv").read_text().splitlines()[1:])}
    assert docs <= {"a", "a#2"}
    meta = json.loads((tmp_path / "kg" / "meta.json").read_text())
    assert meta["corpus"]["renamed_duplicate_ids"] == 1


def test_merging_a_kg_with_itself_is_refused(kg_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["kg-merge", str(kg_dir), str(kg_dir), "--out", str(tmp_path / "m")])
    assert exc.value.code == 2
    import shutil

    shutil.copytree(kg_dir, tmp_path / "copy")
    assert main(["kg-merge", str(kg_dir), str(tmp_path / "copy"), "--out", str(tmp_path / "m")]) == 1
    assert "double" in capsys.readouterr().err and not (tmp_path / "m").exists()
