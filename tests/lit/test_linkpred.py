import lightning as L
import pytest
import torch

from kgllm.data.linkpred import LinkPredDataModule, hold_out_entities, known_answers, load_benchmark, reciprocal
from kgllm.lit.linkpred import LinkPredModule, ranks_from_scores
from kgllm.nn.exported import load_exported


def test_filtered_ranks_with_ties():
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.5],
                           [0.7, 0.7, 0.7, 0.0]])
    target = torch.tensor([2, 1])
    no_filter = torch.empty(2, 0, dtype=torch.long)
    assert ranks_from_scores(scores, target, no_filter).tolist() == [2.5, 2.0]  # ties count half
    filt = torch.tensor([[0], [1]])  # (row 0, entity 1): another known answer, ignored
    assert ranks_from_scores(scores, target, filt).tolist() == [1.5, 2.0]


def test_splits_and_filters(data_dir):
    s = load_benchmark("tiny_tsv", data_dir)
    assert (len(s.train), len(s.valid), len(s.test)) == (8, 1, 1) and s.num_entities == 4
    f = known_answers(s)
    usa, uk, rel = s.entities.index("tiny_tsv:usa"), s.entities.index("tiny_tsv:uk"), s.relations.index("treaties")
    assert uk in f[(usa, rel)] and usa in f[(uk, rel + s.num_relations)]
    assert reciprocal(s.train, s.num_relations).shape == (16, 3)


def _fit(dm, epochs=30, **kw):
    L.seed_everything(0)
    model = LinkPredModule(dim=16, gnn_heads=2, **kw)
    trainer = L.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, check_val_every_n_epoch=100)
    trainer.fit(model, dm)
    return model, trainer.test(model, dm, verbose=False)[0]


def _twins(root, n: int = 40) -> str:
    """A graph whose test answers follow from training: ``a twin b`` is in training for every pair,
    ``b twin a`` for all but the test and validation pairs (a symmetric relation), plus noise edges.
    40 entities: a model that learnt nothing ranks the answer about 20th (MRR about 0.1)."""
    import random

    rng = random.Random(0)
    half = n // 2
    pairs = [(f"e{i}", f"e{i + half}") for i in range(half)]
    train = [(a, "twin", b) for a, b in pairs] + [(b, "twin", a) for a, b in pairs[6:]]
    train += [(f"e{rng.randrange(n)}", "noise", f"e{rng.randrange(n)}") for _ in range(30)]
    folder = root / "kg" / "twins"
    folder.mkdir(parents=True)
    for name, rows in (("train", train), ("valid", [(b, "twin", a) for a, b in pairs[:2]]),
                       ("test", [(b, "twin", a) for a, b in pairs[2:6]])):
        (folder / f"{name}.txt").write_text("".join("\t".join(r) + "\n" for r in rows))
    return "twins"


@pytest.mark.slow
@pytest.mark.parametrize("encoder,sampled", [("gat", False), ("none", False), ("gat", True)])
def test_learns_a_graph_where_the_answer_is_known(tmp_path, encoder, sampled):
    name = _twins(tmp_path)
    dm = LinkPredDataModule(name, str(tmp_path), batch_size=16)
    extra = {"sampled": True, "num_negatives": 8} if sampled else {}
    _, untrained = _fit(dm, epochs=0, encoder=encoder, **extra)
    _, res = _fit(LinkPredDataModule(name, str(tmp_path), batch_size=16), epochs=40, encoder=encoder, lr=0.02,
                  **extra)
    assert set(res) >= {"test/mrr_tail", "test/mrr_head", "test/hits@1", "test/hits@3"}
    assert untrained["test/mrr"] < 0.3 < 0.6 < res["test/mrr"], (untrained["test/mrr"], res["test/mrr"])


def test_export_round_trip(data_dir, tmp_path):
    dm = LinkPredDataModule("tiny_tsv", data_dir, batch_size=4)
    model, _ = _fit(dm, encoder="gat", epochs=2)
    model.export(tmp_path / "enc", dm.splits.entities, dm.splits.relations, {"dataset": "tiny_tsv"})
    blob = load_exported(tmp_path / "enc")
    assert blob["entities"] == dm.splits.entities and blob["relations"] == dm.splits.relations
    assert blob["meta"]["dataset"] == "tiny_tsv" and blob["hparams"]["encoder"] == "gat"
    again = LinkPredModule(**{k: v for k, v in blob["hparams"].items()})
    again.configure_model()
    again.encoder.load_state_dict(blob["encoder"])
    again.decoder.load_state_dict(blob["decoder"])
    again.eval()
    model.eval()
    ei, et = dm.graph()
    n = torch.arange(dm.num_entities)
    assert torch.allclose(again.encoder(n, ei, et), blob["embeddings"], atol=1e-6)


def test_inductive_entities_are_embedded_from_text_and_neighbours(data_dir):
    s = hold_out_entities(load_benchmark("tiny_openke", data_dir), share=0.25, seed=1)
    held = set(s.held_out.tolist())
    assert not any(h in held or t in held for h, r, t in s.train.tolist())
    assert all((h in held) != (t in held) for h, r, t in s.test.tolist() + s.support.tolist())
    dm = LinkPredDataModule("tiny_openke", data_dir, batch_size=4, holdout_entities=0.25, seed=1,
                            text_backbone="tiny")
    model, res = _fit(dm, encoder="gat", node_features="text", epochs=3)
    assert 0 < res["test/mrr"] <= 1
    # a held-out entity's embedding changes with its neighbourhood (support edges) at inference time
    model.eval()
    with torch.no_grad():
        seen_only = model.encode_all(inference=False)
        with_support = model.encode_all(inference=True)
    supported = [h for h in dm.splits.held_out.tolist() if any(h in (a, b) for a, _, b in dm.splits.support.tolist())]
    assert supported, "the fixture must hold out an entity with support edges"
    assert not torch.allclose(seen_only[supported[0]], with_support[supported[0]])


def test_text_features_need_entity_texts():
    from kgllm.util.errors import KGLLMError

    model = LinkPredModule(dim=16, gnn_heads=2, node_features="text", num_entities=4, num_relations=2)
    with pytest.raises(KGLLMError, match="entity texts"):
        model.configure_model()


def test_fusion_encoder_starts_from_link_prediction(kg_dir, tmp_path):
    from kgllm.util.errors import KGFormatError
    from kgllm.lit import MLMModule
    from kgllm.lit.linkpred import ExportEncoder

    dm = LinkPredDataModule("kg", kg_dir=str(kg_dir), batch_size=8)
    L.seed_everything(0)
    lp = LinkPredModule(dim=16, gnn_heads=2)
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[ExportEncoder(str(tmp_path / "enc"))])
    trainer.fit(lp, dm)
    mlm = MLMModule(backbone="tiny", kg_dir=str(kg_dir), fusion="gated", fusion_layers=[0], gnn_hidden=16,
                    gnn_heads=2, graph_encoder_from=str(tmp_path / "enc"))
    mlm.configure_model()
    assert torch.equal(mlm.model.kg_encoder.node_emb.weight, lp.encoder.node_emb.weight)
    wrong = MLMModule(backbone="tiny", kg_dir=str(kg_dir), fusion="gated", fusion_layers=[0], gnn_hidden=32,
                      gnn_heads=2, graph_encoder_from=str(tmp_path / "enc"))
    with pytest.raises(KGFormatError, match="shapes differ"):
        wrong.configure_model()


def test_gat_training_is_deterministic_on_cpu(data_dir):
    """With Lightning's ``deterministic`` (as the linkpred configs set it) two runs of one seed agree bit for bit."""
    def fit_once():
        L.seed_everything(0)
        model = LinkPredModule(dim=16, gnn_heads=2, encoder="gat", lr=0.05)
        trainer = L.Trainer(max_epochs=5, logger=False, enable_checkpointing=False, deterministic=True,
                            enable_progress_bar=False, enable_model_summary=False, check_val_every_n_epoch=100)
        trainer.fit(model, LinkPredDataModule("tiny_tsv", data_dir, batch_size=4))
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    assert torch.equal(fit_once(), fit_once())
