"""update-kg, kg-import --into, removals and kg-diff on the six fixture documents."""

import json
import os
import subprocess
import sys

import pytest

from kgllm.util.errors import ConfigError, KGFormatError
from kgllm.util.io import OutputError, locked
from kgllm.kg.extraction.build import build_kg
from kgllm.kg.extraction.corpus import read_corpus
from kgllm.kg.graph.diff import diff_folders
from kgllm.kg.sources.imports import import_tsv
from kgllm.kg.graph.store import KnowledgeGraph
from kgllm.kg.extraction.update import import_into, remove_docs, remove_fact, update_kg


def write_jsonl(path, docs):
    path.write_text("".join(json.dumps({"id": d.doc_id, "text": d.text}) + "\n" for d in docs))
    return path


@pytest.fixture(scope="module")
def docs(redocred_file):
    return list(read_corpus(redocred_file, "redocred"))


@pytest.fixture
def parts(tmp_path, docs):
    """Corpora A (documents 0-3), B (4-5) and A+B."""
    return (write_jsonl(tmp_path / "a.jsonl", docs[:4]), write_jsonl(tmp_path / "b.jsonl", docs[4:]),
            write_jsonl(tmp_path / "ab.jsonl", docs))


def keys(folder):
    return [line.split("\t")[1] for line in (folder / "entities.tsv").read_text().splitlines()[1:]]


def snapshot(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_update_equals_full_build_and_keeps_ids(tmp_path, parts):
    a, b, ab = parts
    build_kg(a, tmp_path / "kg", progress=False)
    before = keys(tmp_path / "kg")
    res = update_kg(tmp_path / "kg", b, progress=False)
    assert res.update == 1 and res.counts == {"added": 2, "replaced": 0, "skipped": 0}
    after = keys(tmp_path / "kg")
    assert after[:len(before)] == before and len(after) > len(before)  # old ids unchanged, new ones appended
    build_kg(ab, tmp_path / "full", progress=False)
    assert diff_folders(tmp_path / "kg", tmp_path / "full", ignore=("sources",)) == {}
    assert keys(tmp_path / "full") == after  # here even the ids agree: the same order of first appearance
    for name in ("triples.tsv", "provenance.tsv", "mentions.tsv"):
        assert (tmp_path / "kg" / name).read_text() == (tmp_path / "full" / name).read_text()
    meta = json.loads((tmp_path / "kg" / "meta.json").read_text())
    assert [u["kind"] for u in meta["updates"]] == ["build", "add"] and len(meta["lineage"]) == 1
    docs = KnowledgeGraph.load(tmp_path / "kg").documents
    assert [u for _, u in docs.values()] == [0, 0, 0, 0, 1, 1]  # each document's update, in documents.tsv
    ttl = (tmp_path / "kg" / "graph.ttl").read_text()
    from urllib.parse import quote

    assert "addedInUpdate" in ttl and quote(list(docs)[-1], safe="") in ttl


def test_skip_same_and_replace_changed_documents(tmp_path, parts, docs):
    a, _, _ = parts
    build_kg(a, tmp_path / "kg", progress=False)
    same = update_kg(tmp_path / "kg", a, progress=False)
    assert same.counts == {"added": 0, "replaced": 0, "skipped": 4}
    assert diff_folders(tmp_path / "kg", tmp_path / "kg") == {}
    changed = [docs[0].__class__(docs[1].doc_id, "Angela Merkel was born in Hamburg.", {})]
    res = update_kg(tmp_path / "kg", write_jsonl(tmp_path / "c.jsonl", changed), progress=False)
    assert res.counts["replaced"] == 1
    expected = write_jsonl(tmp_path / "e.jsonl", [docs[0], docs[2], docs[3], changed[0]])
    build_kg(expected, tmp_path / "full", progress=False)
    assert diff_folders(tmp_path / "kg", tmp_path / "full", ignore=("sources",)) == {}


def test_remove_after_add_gives_the_original(tmp_path, parts, docs):
    a, b, _ = parts
    build_kg(a, tmp_path / "a", progress=False)
    build_kg(a, tmp_path / "kg", progress=False)
    update_kg(tmp_path / "kg", b, progress=False)
    grown = keys(tmp_path / "kg")
    res = remove_docs(tmp_path / "kg", [d.doc_id for d in docs[4:]])
    assert res.counts == {"removed": 2}
    assert keys(tmp_path / "kg") == grown  # never renumbered
    assert diff_folders(tmp_path / "kg", tmp_path / "a") == {}
    kg = KnowledgeGraph.load(tmp_path / "kg")
    assert kg.retired and all(kg.entities[i].count == 0 for i in kg.retired)
    assert all(h not in kg.retired and t not in kg.retired for h, _, t in kg.edges)
    from kgllm.linking.linker import EntityLinker

    linker = EntityLinker.from_kg(kg)
    assert not set(linker.label_to_id.values()) & kg.retired and not set(linker.key_to_id.values()) & kg.retired


def test_curated_facts_import_retract_and_remove(tmp_path, parts):
    a, _, _ = parts
    build_kg(a, tmp_path / "kg", progress=False)
    facts = tmp_path / "facts.tsv"
    facts.write_text("Angela_Merkel\tborn_in\tHamburg\nHamburg\tlocated_in\tGermany\n")
    res = import_into(tmp_path / "kg", import_tsv(facts, name="cur"), "cur")
    kg = KnowledgeGraph.load(tmp_path / "kg", provenance=True)
    fact = (kg.key_to_id["cur:Angela_Merkel"], kg.rel_to_id["born_in"], kg.key_to_id["cur:Hamburg"])
    assert res.counts == {"added": 1} and fact in kg.edges
    assert kg.edges[fact].provenance[0][0].endswith("facts.tsv") and "import:cur" in kg.documents
    assert import_into(tmp_path / "kg", import_tsv(facts, name="cur"), "cur").counts == {"skipped": 1}
    remove_fact(tmp_path / "kg", "cur:Angela_Merkel", "born_in", "cur:Hamburg")
    kg = KnowledgeGraph.load(tmp_path / "kg")
    assert fact not in kg.edges and kg.meta["retracted"] == [["cur:Angela_Merkel", "born_in", "cur:Hamburg"]]
    with pytest.raises(KGFormatError, match="no fact"):
        remove_fact(tmp_path / "kg", "cur:Angela_Merkel", "born_in", "cur:Hamburg")
    remove_docs(tmp_path / "kg", ["import:cur"])
    build_kg(a, tmp_path / "a", progress=False)
    assert diff_folders(tmp_path / "kg", tmp_path / "a") == {}


def test_a_kg_without_records_is_adopted(tmp_path):
    facts = tmp_path / "f.tsv"
    facts.write_text("a\tr\tb\nb\tr\tc\n")
    import_tsv(facts, name="x").save(tmp_path / "kg")
    more = tmp_path / "g.tsv"
    more.write_text("c\tr\td\n")
    import_into(tmp_path / "kg", import_tsv(more, name="x"), "more")
    kg = KnowledgeGraph.load(tmp_path / "kg")
    assert [e.key for e in kg.entities] == ["x:a", "x:b", "x:c", "x:d"] and len(kg.edges) == 3
    assert [u["kind"] for u in kg.meta["updates"]] == ["snapshot", "import"]
    with pytest.raises(ConfigError, match="no extractor settings"):
        update_kg(tmp_path / "kg", facts, progress=False)


def test_failed_update_leaves_the_old_kg_and_reruns(tmp_path, parts, monkeypatch):
    a, b, ab = parts
    build_kg(a, tmp_path / "kg", progress=False)
    old = snapshot(tmp_path / "kg")
    monkeypatch.setattr(KnowledgeGraph, "write_files", lambda *args, **kw: (_ for _ in ()).throw(RuntimeError("kill")))
    with pytest.raises(RuntimeError):
        update_kg(tmp_path / "kg", b, progress=False)
    monkeypatch.undo()
    assert snapshot(tmp_path / "kg") == old  # untouched
    update_kg(tmp_path / "kg", b, progress=False)  # the partial folder is reused, then removed
    assert not any(p.name.startswith(".kg.partial") for p in tmp_path.iterdir())
    build_kg(ab, tmp_path / "full", progress=False)
    assert diff_folders(tmp_path / "kg", tmp_path / "full", ignore=("sources",)) == {}


def test_killed_update_process_resumes(tmp_path, parts):
    """SIGKILL an update while it extracts (a shard already written), then run it again."""
    a, b, ab = parts
    build_kg(a, tmp_path / "kg", progress=False)
    old = snapshot(tmp_path / "kg")
    code = ("import os, signal, sys\n"
            "import kgllm.kg.extraction.build as b\n"
            "real = b.extract_shards\n"
            "def killed(docs, work, cfg, *a, **k):\n"
            "    real(docs, work, cfg, *a, **k)\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n"
            "b.extract_shards = killed\n"
            "from kgllm.kg.extraction.update import update_kg\n"
            f"update_kg({str(tmp_path / 'kg')!r}, {str(b)!r}, progress=False, shard_size=1)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert proc.returncode == -9
    assert snapshot(tmp_path / "kg") == old
    assert (tmp_path / ".kg.partial" / "shard-00001.jsonl").exists()
    update_kg(tmp_path / "kg", b, progress=False, shard_size=1)
    build_kg(ab, tmp_path / "full", progress=False)
    assert diff_folders(tmp_path / "kg", tmp_path / "full", ignore=("sources",)) == {}


def test_bad_updates_are_refused(tmp_path, parts):
    a, b, _ = parts
    build_kg(a, tmp_path / "kg", progress=False)
    old = snapshot(tmp_path / "kg")
    with pytest.raises(ConfigError, match="extractor|settings"):
        update_kg(tmp_path / "kg", b, progress=False, extractor="cooccurrence")
    with pytest.raises(KGFormatError, match="no document 'nope'"):
        remove_docs(tmp_path / "kg", ["nope"])
    with locked(tmp_path / "kg"), pytest.raises(OutputError, match="another kgllm process"):
        update_kg(tmp_path / "kg", b, progress=False)
    assert snapshot(tmp_path / "kg") == old
    with pytest.raises(KGFormatError, match="not found"):
        update_kg(tmp_path / "missing", b, progress=False)
    lines = (tmp_path / "kg" / "entities.tsv").read_text().splitlines(keepends=True)
    (tmp_path / "kg" / "entities.tsv").write_text("".join(lines[:-1]))  # half-written
    with pytest.raises(KGFormatError, match="half-written or edited"):
        update_kg(tmp_path / "kg", b, progress=False)


def test_settings_change_allowed_on_request(tmp_path, parts):
    a, b, _ = parts
    build_kg(a, tmp_path / "kg", progress=False)
    res = update_kg(tmp_path / "kg", b, progress=False, extractor="cooccurrence", allow_settings_change=True)
    meta = json.loads((tmp_path / "kg" / "meta.json").read_text())
    assert meta["updates"][-1]["settings_changed"] and meta["extractor"]["extractor"] == "cooccurrence"
    assert "co_occurs_with" in res.kg.relations


def test_update_cli_and_kg_diff(tmp_path, parts):
    from kgllm.cli import main

    a, b, ab = parts
    build_kg(a, tmp_path / "kg", progress=False)
    build_kg(ab, tmp_path / "full", progress=False)
    assert main(["kg-diff", str(tmp_path / "kg"), str(tmp_path / "full")]) == 1
    assert main(["update-kg", str(tmp_path / "kg"), str(b), "--no-progress"]) == 0
    assert main(["kg-diff", str(tmp_path / "kg"), str(tmp_path / "full"), "--ignore", "sources"]) == 0
    assert main(["update-kg", str(tmp_path / "kg"), "--remove-doc", "nope"]) == 1
    with pytest.raises(SystemExit):
        main(["kg-import", "tsv", str(ab), "--into", str(tmp_path / "kg"), "--out", str(tmp_path / "x")])
    assert not (tmp_path / "x").exists()


def test_oxigraph_store_is_updated(tmp_path, parts):
    from kgllm.kg.sparql.local import query_folder

    a, b, _ = parts
    build_kg(a, tmp_path / "kg", progress=False, store="oxigraph")
    update_kg(tmp_path / "kg", b, progress=False)
    assert (tmp_path / "kg" / "oxigraph").is_dir()
    rows = query_folder(tmp_path / "kg", "SELECT (COUNT(?d) AS ?n) WHERE { ?d kgo:addedInUpdate 1 }", store="oxigraph")
    assert int(rows[0]["n"]) == 2
    assert os.path.isdir(tmp_path / "kg" / "extractions" / "00001")


def test_imported_folders_follow_the_umask(tmp_path):
    facts = tmp_path / "f.tsv"
    facts.write_text("a\tr\tb\n")
    old = os.umask(0o022)
    try:
        import_tsv(facts, name="x").save(tmp_path / "kg")
    finally:
        os.umask(old)
    assert (tmp_path / "kg").stat().st_mode & 0o777 == 0o755


def test_kg_edit_replaces_objects_in_one_update_and_keeps_the_identity(tmp_path, kg_dir, capsys):
    import shutil

    from kgllm.cli import main
    from kgllm.kg.extraction.update import edit_facts

    kg = tmp_path / "kg"
    shutil.copytree(kg_dir, kg)
    before = KnowledgeGraph.load(kg)
    (h, r, t) = next(iter(before.edges))
    head, rel, old = before.entities[h].key, before.relations[r], before.entities[t].key
    new = next(e.key for i, e in enumerate(before.entities) if i not in (h, t))
    res = edit_facts(kg, [(head, rel, old, new)])
    after = KnowledgeGraph.load(kg)
    ids = after.key_to_id
    assert (ids[head], after.rel_to_id[rel], ids[new]) in after.edges
    assert (ids[head], after.rel_to_id[rel], ids[old]) not in after.edges
    assert after.identity() == before.identity() and res.counts == {"edited": 1}
    assert [head, rel, old] in after.meta["retracted"] and f"edit:{res.update}" in after.documents
    edit_facts(kg, [(head, rel, new, old)])  # an edit back restores the fact
    again = KnowledgeGraph.load(kg)
    assert (ids[head], again.rel_to_id[rel], ids[old]) in again.edges
    assert (ids[head], again.rel_to_id[rel], ids[new]) not in again.edges
    assert [head, rel, old] not in again.meta["retracted"]
    with pytest.raises(KGFormatError, match="no fact"):
        edit_facts(kg, [(head, rel, new, old)])  # (head rel new) is gone now
    edits = tmp_path / "edits.tsv"
    edits.write_text(f"{head}\t{rel}\t{old}\t{new}\n")
    assert main(["kg-edit", str(kg), str(edits)]) == 0
    assert "ms per edit" in capsys.readouterr().out
    edits.write_text("only\tthree\tfields\n")
    assert main(["kg-edit", str(kg), str(edits)]) == 1
    assert "edits.tsv:1: expected head, relation, old object, new object" in capsys.readouterr().err
