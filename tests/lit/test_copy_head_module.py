"""The copy head inside ``MLMModule``: every new parameter gets a gradient from the real MLM loss on
a real batch, alone (``fusion: none``) and with fusion blocks, with id and ``lm`` node inputs; the
probe's reading with the KG switched off is the plain vocabulary."""

import pytest
import torch

from kgllm.data import KGDataModule
from kgllm.lit import MLMModule
from tests.conftest import FIXTURE_DATASET_ARGS


@pytest.fixture(scope="module")
def batch(kg_dir, data_dir):
    dm = KGDataModule("redocred", str(kg_dir), backbone="tiny", data_dir=str(data_dir), batch_size=4,
                      dataset_args=FIXTURE_DATASET_ARGS["redocred"], data_seed=0)
    dm.setup("fit")
    return next(b for b in dm.train_dataloader() if (b["token_node"] >= 0).any() and (b["labels"] != -100).any())


def _module(kg_dir, fusion, node_features, **kwargs):
    model = MLMModule(backbone="tiny", kg_dir=str(kg_dir), fusion=fusion, fusion_layers=[0], gnn_hidden=16,
                      gnn_heads=2, backbone_dropout=0.0, fusion_dropout=0.0, gnn_dropout=0.0, copy_head=True,
                      node_features=node_features, **kwargs)
    model.configure_model()
    return model


@pytest.mark.parametrize("fusion", ["none", "gated", "xattn"])
@pytest.mark.parametrize("node_features", ["id", "lm", "text_norm"])
def test_every_copy_head_parameter_gets_a_gradient_from_the_mlm_loss(batch, kg_dir, fusion, node_features):
    model = _module(kg_dir, fusion, node_features)
    model._step(batch, "val").backward()
    names = [n for n, _ in model.named_parameters() if "kg_copy_head" in n or "kg_encoder" in n]
    assert any("kg_copy_head" in n for n in names) and any("kg_encoder" in n for n in names)
    for name, p in model.named_parameters():
        if "kg_copy_head" in name or ("kg_encoder" in name and "rel_emb" not in name):
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{name} got no gradient"
    if node_features == "lm":
        assert model.model.kg_encoder.node_emb is None  # no trained row per entity


def test_the_relation_gate_gets_a_gradient_and_needs_the_copy_head(batch, kg_dir):
    from kgllm.util.errors import ConfigError

    with pytest.raises(ConfigError, match="copy_gate_relation needs copy_head"):
        MLMModule(backbone="tiny", kg_dir=str(kg_dir), copy_gate_relation=True)
    model = _module(kg_dir, "none", "id", copy_gate_relation=True)
    model._step(batch, "val").backward()
    grad = model.kg_copy_head.kg_copy_gate_rel_fit.grad
    assert grad is not None and grad.abs() > 0


def test_copy_head_changes_the_reading_only_with_the_kg(batch, kg_dir):
    model = _module(kg_dir, "none", "id").eval()
    mask_id = 103
    with torch.no_grad():
        masked = dict(batch, input_ids=torch.where(batch["labels"] != -100, mask_id, batch["input_ids"]))
        off = model.masked_token_logits(masked, mask_id, use_kg=False)
        on = model.masked_token_logits(masked, mask_id, use_kg=True)
        hidden = model.model.encode(masked["input_ids"], masked["attention_mask"])
        plain = model.model.hf.cls(hidden[masked["input_ids"] == mask_id])
    torch.testing.assert_close(off, plain)
    assert not torch.allclose(on, torch.log_softmax(plain, -1))


def test_copy_fact_dropout_acts_in_training_only(batch, kg_dir):
    from kgllm.util.errors import ConfigError

    with pytest.raises(ConfigError, match="copy_fact_dropout needs copy_head"):
        MLMModule(backbone="tiny", kg_dir=str(kg_dir), copy_fact_dropout=0.5)
    model = _module(kg_dir, "none", "id")
    model.hparams.copy_fact_dropout = 1.0
    torch.manual_seed(0)
    val = model._step(batch, "val")
    train = model._step(batch, "train")  # every answer hidden: the gate's target is 0 everywhere
    model.hparams.copy_fact_dropout = 0.0
    plain = model._step(batch, "train")
    torch.testing.assert_close(val, plain)
    assert not torch.allclose(train, plain)


def _answerable(model, batch):
    """The batch made answerable from the graph: for one relation, in two examples, a head node is
    linked (``token_node``), its tail is not, and a masked run holds the tail's label (the fixture
    text masks whole entities at random, so it rarely holds such a pair by itself)."""
    graph = batch["graph"]
    pieces = model.kg_label_pieces[graph.n_id]
    by_rel = {}
    for s, d, r in zip(*graph.edge_index.tolist(), graph.edge_type.tolist()):
        b = int(graph.batch[d])
        if s != d and int(graph.batch[s]) == b:
            by_rel.setdefault(r, {}).setdefault(b, (s, d))
    rel, pairs = max(by_rel.items(), key=lambda kv: len(kv[1]))
    assert len(pairs) >= 2, "the fixture batch has no two examples holding an edge of one relation"
    token_node = torch.full_like(batch["token_node"], -1)
    labels = torch.full_like(batch["labels"], -100)
    for b, (s, d) in pairs.items():
        token_node[b, 1] = s
        row = [x for x in pieces[d].tolist() if x >= 0]
        labels[b, 3:3 + len(row)] = torch.tensor(row)
    return dict(batch, labels=labels, token_node=token_node, graph=graph.clone())


def test_counterfactual_answers_are_swapped_in_training_only(batch, kg_dir):
    from kgllm.util.errors import ConfigError

    with pytest.raises(ConfigError, match="copy_counterfactual needs copy_head"):
        MLMModule(backbone="tiny", kg_dir=str(kg_dir), copy_counterfactual=0.5)
    model = _module(kg_dir, "none", "lm", copy_counterfactual=1.0)
    answerable = _answerable(model, batch)
    before = answerable["labels"].clone()
    torch.manual_seed(0)
    swapped_batch, swapped = model._counterfactual(dict(answerable, graph=answerable["graph"].clone()))
    assert swapped.sum() >= 2 and not torch.equal(swapped_batch["labels"], before)
    assert torch.equal(answerable["labels"], before)  # the caller's batch is left alone
    model._step(dict(answerable, graph=answerable["graph"].clone()), "train").backward()
    for name, p in model.named_parameters():
        if "kg_copy_head" in name:
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{name} got no gradient"
    val = model._step(dict(answerable, graph=answerable["graph"].clone()), "val")
    model.hparams.copy_counterfactual = 0.0
    torch.testing.assert_close(val, model._step(dict(answerable, graph=answerable["graph"].clone()), "val"))
