"""Checkpoints: tensors only on every path (URLs too), clear errors, never another KG's rows."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from kgllm.cli import main
from tests.conftest import FIXTURE_DATASET_ARGS
from tests.security.servers import http_server, url

ROOT = Path(__file__).resolve().parents[2]


class Payload:
    """Unpickling this runs ``touch MARKER``: what a hostile checkpoint does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _fit_args(tmp: Path, kg_dir, data_dir, *extra: str) -> list[str]:
    logger = json.dumps([{"class_path": "lightning.pytorch.loggers.CSVLogger",
                          "init_args": {"save_dir": str(tmp), "name": "run", "version": ""}}])
    return ["fit", "--config", str(ROOT / "experiments/pretrain_redocred.yaml"), "--data.kg_dir", str(kg_dir),
            "--data.backbone", "tiny", "--data.data_dir", str(data_dir),
            "--data.dataset_args", json.dumps(FIXTURE_DATASET_ARGS["redocred"]), "--data.batch_size", "4",
            "--model.fusion_layers", "[0]", "--trainer.accelerator", "cpu", "--trainer.max_epochs", "1",
            "--trainer.limit_train_batches", "1", "--trainer.limit_val_batches", "1",
            "--trainer.enable_progress_bar", "false", "--trainer.logger", logger,
            "--trainer.default_root_dir", str(tmp), *extra]


@pytest.fixture
def evil(tmp_path) -> tuple[Path, Path]:
    marker = tmp_path / "pwned"
    path = tmp_path / "serve" / "evil.ckpt"
    path.parent.mkdir()
    torch.save({"state_dict": {}, "x": Payload(marker)}, path)
    return path, marker


def test_url_checkpoint_is_loaded_tensors_only(evil, tmp_path, kg_dir, data_dir, monkeypatch, capsys):
    from kgllm.nn.checkpoints import CheckpointError, load_checkpoint

    path, marker = evil
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # the hub cache of downloads
    with http_server(path.parent) as server:
        with pytest.raises(CheckpointError, match="refused"):
            load_checkpoint(url(server, "evil.ckpt"))
        code = main(_fit_args(tmp_path / "run", kg_dir, data_dir, "--ckpt_path", url(server, "evil.ckpt")))
    assert code == 1 and not marker.exists()
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "evil.ckpt" in err and "refused" in err


def test_local_checkpoint_and_weights_only_false(evil, tmp_path, kg_dir, data_dir, capsys):
    path, marker = evil
    assert main(_fit_args(tmp_path / "run", kg_dir, data_dir, "--ckpt_path", str(path))) == 1
    assert not marker.exists()
    assert main(_fit_args(tmp_path / "run", kg_dir, data_dir, "--ckpt_path", str(path), "--weights_only", "false")) == 1
    assert "--weights_only false is refused" in capsys.readouterr().err
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04truncated"])
def test_garbage_checkpoint_is_one_clear_line(tmp_path, content, kg_dir, data_dir, capsys):
    from kgllm.nn.checkpoints import CheckpointError, load_checkpoint

    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(content)
    with pytest.raises(CheckpointError, match="bad.ckpt"):
        load_checkpoint(bad)
    assert main(_fit_args(tmp_path / "run", kg_dir, data_dir, "--ckpt_path", str(bad))) == 1
    err = capsys.readouterr().err
    assert "bad.ckpt" in err and "Traceback" not in err


def test_truncated_real_checkpoint(tmp_path):
    from kgllm.nn.checkpoints import CheckpointError, load_checkpoint

    good = tmp_path / "good.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1000)}}, good)
    blob = good.read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(CheckpointError, match="cut.ckpt: not a readable checkpoint"):
        load_checkpoint(tmp_path / "cut.ckpt")


def test_not_a_lightning_checkpoint(tmp_path):
    from kgllm.nn.checkpoints import CheckpointError, check_lightning_checkpoint

    torch.save([torch.zeros(2)], tmp_path / "list.ckpt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "dict.ckpt")
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        check_lightning_checkpoint(tmp_path / "list.ckpt")
    with pytest.raises(CheckpointError, match="no state_dict"):
        check_lightning_checkpoint(tmp_path / "dict.ckpt")


def test_two_kgs_without_corpus_hash_are_told_apart():
    """The old check compared corpus hashes; two imported KGs both have none, and None == None passed."""
    from kgllm.nn.checkpoints import CheckpointError, check_same_kg

    with pytest.raises(CheckpointError, match="allow_other_kg"):
        check_same_kg({"kg_meta": {"identity": "aaa"}}, {"identity": "bbb"}, "x.ckpt", allow_other_kg=False)
    with pytest.raises(CheckpointError, match="unrecorded"):
        check_same_kg({"kg_meta": {}}, {"identity": "bbb"}, "x.ckpt", allow_other_kg=False)
    assert check_same_kg({"kg_meta": {"identity": "aaa"}}, {"identity": "aaa"}, "x.ckpt", allow_other_kg=False)


def test_remap_moves_rows_by_key_not_by_position():
    from kgllm.nn.checkpoints import remap_kg_rows

    src = {"entities": ["a", "b", "c"], "relations": ["r", "s"]}
    dst = {"entities": ["c", "a", "new"], "relations": ["s", "r"]}
    node = torch.arange(3.0).view(3, 1).repeat(1, 2)  # row i holds i
    rel = torch.arange(4.0).view(4, 1)  # relations + their inverses: r, s, r^-1, s^-1
    state = {"enc.node_emb.weight": node, "enc.rel_emb.weight": rel}
    own = {"enc.node_emb.weight": torch.full((3, 2), -1.0), "enc.rel_emb.weight": torch.full((4, 1), -1.0)}
    counts = remap_kg_rows(state, own, src, dst)
    assert counts == {"entities": 2, "relations": 2}
    assert state["enc.node_emb.weight"][:, 0].tolist() == [2.0, 0.0, 1.0]  # c, a, mean of the known rows
    assert state["enc.rel_emb.weight"][:, 0].tolist() == [1.0, 0.0, 3.0, 2.0]
    state = {"enc.node_emb.weight": node.clone(), "enc.rel_emb.weight": rel.clone()}
    remap_kg_rows(state, own, src, dst, edges=torch.tensor([[2], [0]]))  # new -> c: starts as c's row
    assert state["enc.node_emb.weight"][:, 0].tolist() == [2.0, 0.0, 2.0]


def _shuffled_kg(kg_dir: Path, out: Path) -> Path:
    """The same entities under other ids: same shapes, another identity."""
    from kgllm.kg.graph.store import KnowledgeGraph

    kg = KnowledgeGraph.load(kg_dir, provenance=True)
    order = list(reversed(range(kg.num_entities)))
    new = KnowledgeGraph(dict(kg.meta))
    for i in order:
        e = kg.entities[i]
        new.add_entity(e.key, e.label, e.etype, e.aliases, e.count, e.sources)
    pos = {old: k for k, old in enumerate(order)}
    for (h, r, t), edge in kg.edges.items():
        for prov in edge.provenance:
            new.add_edge(pos[h], kg.relations[r], pos[t], prov, edge.confidence)
    return new.save(out)


@pytest.mark.slow
def test_init_from_another_kg_is_refused_then_remapped_by_key(tmp_path, kg_dir, data_dir, capsys):
    from kgllm.lit.runner import run_cli

    assert main(_fit_args(tmp_path / "a", kg_dir, data_dir)) == 0
    ckpt = next((tmp_path / "a").rglob("best.ckpt"))
    other = _shuffled_kg(kg_dir, tmp_path / "other")
    assert main(_fit_args(tmp_path / "b", other, data_dir, "--model.init_args.init_from", str(ckpt))) == 1
    assert "allow_other_kg" in capsys.readouterr().err
    cli = run_cli(_fit_args(tmp_path / "c", other, data_dir, "--model.init_args.init_from", str(ckpt),
                            "--model.init_args.allow_other_kg", "true", "--trainer.max_epochs", "0"))
    src = torch.load(ckpt, map_location="cpu", weights_only=True)
    name = next(k for k in src["state_dict"] if k.endswith("node_emb.weight"))
    keys = src["kg_keys"]["entities"]
    n = len(keys)
    mine = dict(cli.model.named_parameters())[name].detach()
    for new_id in (0, n // 2, n - 1):  # this KG's entity new_id is the source's entity n-1-new_id
        assert keys[n - 1 - new_id] == _shuffled_keys(other)[new_id]
        assert torch.equal(mine[new_id], src["state_dict"][name][n - 1 - new_id])


def _shuffled_keys(folder: Path) -> list[str]:
    from kgllm.nn.checkpoints import kg_keys

    return kg_keys(folder)["entities"]


@pytest.mark.slow
def test_checkpoint_follows_an_updated_kg(tmp_path, redocred_file, data_dir, capsys):
    """A checkpoint of the KG of documents A loads onto the KG updated with B without allow_other_kg:
    old rows bit for bit, new entities from their neighbours' rows."""
    from kgllm.lit.runner import run_cli
    from kgllm.kg.extraction.build import build_kg
    from kgllm.kg.extraction.corpus import read_corpus
    from kgllm.kg.graph.store import KnowledgeGraph
    from kgllm.kg.extraction.update import update_kg

    docs = list(read_corpus(redocred_file, "redocred"))
    (tmp_path / "a.jsonl").write_text("".join(json.dumps({"id": d.doc_id, "text": d.text}) + "\n" for d in docs))
    (tmp_path / "b.jsonl").write_text(json.dumps({"id": "new", "text": "Barack Obama was born in Zanzibar. "
                                                  "Zanzibar is a city in Tanzania."}) + "\n")
    kg = tmp_path / "kg"
    build_kg(tmp_path / "a.jsonl", kg, progress=False)
    assert main(_fit_args(tmp_path / "fit", kg, data_dir, "--keep_last", "true")) == 0
    ckpt = next((tmp_path / "fit").rglob("last.ckpt"))
    update_kg(kg, tmp_path / "b.jsonl", progress=False)
    cli = run_cli(_fit_args(tmp_path / "grown", kg, data_dir, "--model.init_args.init_from", str(ckpt),
                            "--trainer.max_epochs", "0"))
    src = torch.load(ckpt, map_location="cpu", weights_only=True)
    name = next(k for k in src["state_dict"] if k.endswith("node_emb.weight"))
    old, new = src["state_dict"][name], dict(cli.model.named_parameters())[name].detach()
    n = old.size(0)
    grown = KnowledgeGraph.load(kg)
    assert new.size(0) == grown.num_entities > n
    assert torch.equal(new[:n], old)  # every old row, bit for bit
    fresh = [i for i in range(n, grown.num_entities)]
    linked = {(t if h in fresh else h): (h if h in fresh else t) for h, _, t in grown.edges
              if (h in fresh) != (t in fresh)}  # old neighbour -> new entity
    assert linked, "the fixture update should connect a new entity to an old one"
    for old_id, new_id in linked.items():
        neighbours = {a if b == new_id else b for a, _, b in grown.edges if new_id in (a, b)} - set(fresh)
        assert torch.allclose(new[new_id], old[sorted(neighbours)].mean(0), atol=1e-6)
    # resuming training (--ckpt_path) on the grown KG is refused: the optimiser state has the old sizes
    assert main(_fit_args(tmp_path / "resume", kg, data_dir, "--ckpt_path", str(ckpt),
                          "--trainer.max_epochs", "2")) == 1
    assert "init_from" in capsys.readouterr().err


@pytest.mark.slow
def test_restoring_a_checkpoint_does_not_reread_init_from(tmp_path, kg_dir, data_dir, capsys):
    """A fine-tuned checkpoint is self-contained: test/--ckpt_path works after its init_from source is gone."""
    assert main(_fit_args(tmp_path / "pre", kg_dir, data_dir)) == 0
    pre = next((tmp_path / "pre").rglob("best.ckpt"))
    assert main(_fit_args(tmp_path / "ft", kg_dir, data_dir, "--model.init_args.init_from", str(pre))) == 0
    ft = next((tmp_path / "ft").rglob("best.ckpt"))
    pre.rename(tmp_path / "moved.ckpt")
    args = _fit_args(tmp_path / "test", kg_dir, data_dir, "--model.init_args.init_from", str(pre), "--ckpt_path", str(ft))
    assert main(["test", *args[1:]]) == 0
    out = capsys.readouterr()
    assert "litlogger" not in out.out + out.err and "LeafSpec" not in out.out + out.err  # the CLI is quiet


def test_a_checkpoint_from_before_identities_gets_its_folders_identity_only_if_the_meta_matches(kg_dir):
    from kgllm.lit.base import kg_meta, legacy_identity

    meta = {k: v for k, v in kg_meta(str(kg_dir)).items() if k != "identity"}
    old = {"kg_meta": dict(meta), "hyper_parameters": {"kg_dir": str(kg_dir)}}
    assert legacy_identity(old)["kg_meta"]["identity"] == kg_meta(str(kg_dir))["identity"]
    changed = {"kg_meta": {**meta, "counts": {"entities": 1}}, "hyper_parameters": {"kg_dir": str(kg_dir)}}
    assert "identity" not in legacy_identity(changed)["kg_meta"]  # the folder changed since: still refused
    assert "identity" not in legacy_identity({"kg_meta": meta, "hyper_parameters": {}})["kg_meta"]
