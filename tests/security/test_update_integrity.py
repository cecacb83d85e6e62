"""Round two, updates: one lock per real folder (symlinks too), the user's files in a KG folder are
never deleted, and a reader never mixes two versions of a folder that an update swaps."""

from __future__ import annotations

import shutil

import pytest

from kgllm.cli import main
from kgllm.util.io import OutputError, locked
from kgllm.kg.sources.imports import import_tsv
from kgllm.kg.graph.store import KnowledgeGraph
from kgllm.kg.extraction.update import import_into


@pytest.fixture
def kg_copy(kg_dir, tmp_path):
    dst = tmp_path / "kgU"
    shutil.copytree(kg_dir, dst)
    return dst


def _facts(tmp_path, n: int = 1):
    facts = tmp_path / f"facts{n}.tsv"
    facts.write_text("".join(f"Person_{i}\tborn_in\tCity_{i}\n" for i in range(n)))
    return import_tsv(facts, name=f"f{n}")


def test_a_symlink_takes_the_folders_own_lock_and_stays_a_link(kg_copy, tmp_path):
    link = tmp_path / "kgU-link"
    link.symlink_to(kg_copy)
    with locked(kg_copy):  # a writer holds the folder under its real name
        with pytest.raises(OutputError, match="another kgllm process"):
            import_into(link, _facts(tmp_path), "f")
    import_into(link, _facts(tmp_path), "f")
    assert link.is_symlink()
    assert "import:f" in KnowledgeGraph.load(kg_copy).documents


def test_update_keeps_files_kgllm_did_not_write(kg_copy, tmp_path, capsys):
    (kg_copy / "NOTES.txt").write_text("mine")
    (kg_copy / "mydata").mkdir()
    (kg_copy / "mydata" / "x.csv").write_text("1,2\n")
    (kg_copy / "corpus.jsonl").write_text('{"id": "d", "text": "Ann lives in Paris."}\n')
    assert main(["kg-stats", str(kg_copy), "--plot-dir", str(kg_copy / "plots")]) == 0
    plots = sorted(p.name for p in (kg_copy / "plots").iterdir())
    assert plots
    facts = tmp_path / "facts.tsv"
    facts.write_text("Person_0\tborn_in\tCity_0\n")
    assert main(["kg-import", "tsv", str(facts), "--into", str(kg_copy), "--name", "cur"]) == 0
    assert (kg_copy / "NOTES.txt").read_text() == "mine"
    assert (kg_copy / "mydata" / "x.csv").read_text() == "1,2\n"
    assert (kg_copy / "corpus.jsonl").exists()
    assert sorted(p.name for p in (kg_copy / "plots").iterdir()) == plots
    assert "import:cur" in KnowledgeGraph.load(kg_copy).documents


def test_a_kill_between_moving_user_files_and_the_swap_loses_nothing(kg_copy, tmp_path, monkeypatch):
    from kgllm.kg.extraction import update

    (kg_copy / "NOTES.txt").write_text("mine")

    def killed(new, current):
        raise KeyboardInterrupt

    monkeypatch.setattr(update, "exchange_dirs", killed)
    with pytest.raises(KeyboardInterrupt):
        import_into(kg_copy, _facts(tmp_path), "f")
    assert not (kg_copy / "NOTES.txt").exists()  # moved into the unfinished new folder
    monkeypatch.undo()
    import_into(kg_copy, _facts(tmp_path, 2), "g")  # the next update puts it back first
    assert (kg_copy / "NOTES.txt").read_text() == "mine"


def test_build_overwrite_refuses_a_kg_folder_holding_user_files(kg_copy, redocred_file, capsys):
    (kg_copy / "NOTES.txt").write_text("mine")
    code = main(["build-kg", str(redocred_file), "--format", "redocred", "--out", str(kg_copy), "--overwrite",
                 "--no-progress"])
    assert code == 1 and (kg_copy / "NOTES.txt").read_text() == "mine"
    assert "NOTES.txt" in capsys.readouterr().err


def test_a_reader_never_mixes_two_versions(kg_copy, tmp_path, monkeypatch):
    """An update swaps the folder after the reader read entities.tsv and before triples.tsv: the
    reader must return one whole version (here, read again: the new one)."""
    from kgllm.kg.graph import store

    small = KnowledgeGraph.load(kg_copy)
    grown = tmp_path / "grown"
    shutil.copytree(kg_copy, grown)
    import_into(grown, _facts(tmp_path, 40), "many")  # 80 more entities, triples with ids past the old ones
    real = store.read_tsv
    swapped = []

    def read_tsv(path, *args, **kwargs):
        if path.name == "triples.tsv" and not swapped:
            from kgllm.util.io import exchange_dirs

            exchange_dirs(grown, kg_copy)  # what update-kg does, at the worst moment
            swapped.append(True)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(store, "read_tsv", read_tsv)
    kg = KnowledgeGraph.load(kg_copy)
    assert swapped and kg.num_entities > small.num_entities
    assert kg.identity() == kg.meta["identity"]
    assert len(kg.edges) == len(KnowledgeGraph.load(kg_copy).edges)
