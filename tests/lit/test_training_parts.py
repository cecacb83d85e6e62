"""Parts of training that a wrong line would silently break: the data controls, the optimiser's
parameter groups, MLM's auxiliary losses, and filtered ranks against a brute-force reference."""

import types

import pytest
import torch
from torch_geometric.data import Data

from kgllm.data.datamodule import rewire, shuffle_links
from kgllm.lit.linkpred import ranks_from_scores
from tests.conftest import FIXTURE_DATASET_ARGS


def test_shuffle_links_is_one_seeded_bijection():
    feats = [{"token_node": [-1, 3, 3, 0, -1]}, {"token_node": [7, -1, 0]}]
    a = [dict(f, token_node=list(f["token_node"])) for f in feats]
    shuffle_links(a, 10, seed=1)
    mapping = {}
    for old, new in zip(feats, a):
        assert [v < 0 for v in old["token_node"]] == [v < 0 for v in new["token_node"]]  # links stay links
        for u, v in zip(old["token_node"], new["token_node"]):
            if u >= 0:
                assert mapping.setdefault(u, v) == v  # one node -> one node, everywhere
    assert len(set(mapping.values())) == len(mapping)
    b = [dict(f, token_node=list(f["token_node"])) for f in feats]
    shuffle_links(b, 10, seed=1)
    c = [dict(f, token_node=list(f["token_node"])) for f in feats]
    shuffle_links(c, 10, seed=2)
    assert a == b and a != c


def test_rewire_keeps_degrees_and_relation_types():
    g = torch.Generator().manual_seed(0)
    edge_index = torch.randint(0, 30, (2, 200), generator=g)
    edge_type = torch.randint(0, 5, (200,), generator=g)
    graph = Data(edge_index=edge_index, edge_type=edge_type, num_nodes=30)
    r = rewire(graph, seed=3)
    assert torch.equal(r.edge_index[0], edge_index[0]) and torch.equal(r.edge_type, edge_type)
    assert torch.equal(torch.bincount(r.edge_index[1], minlength=30), torch.bincount(edge_index[1], minlength=30))
    assert (r.edge_index[1] != edge_index[1]).float().mean() > 0.5  # who is connected to whom changed
    assert torch.equal(rewire(graph, seed=3).edge_index, r.edge_index)
    assert torch.equal(graph.edge_index, edge_index)  # the input graph is untouched


@pytest.fixture(scope="module")
def mlm_setup(kg_dir, data_dir):
    from kgllm.data import KGDataModule
    from kgllm.lit import MLMModule

    dm = KGDataModule("redocred", str(kg_dir), backbone="tiny", data_dir=str(data_dir), batch_size=4,
                      dataset_args=FIXTURE_DATASET_ARGS["redocred"], data_seed=0)
    dm.setup("fit")
    batch = next(b for b in dm.train_dataloader() if (b["entity_targets"] >= 0).any())
    model = MLMModule(backbone="tiny", kg_dir=str(kg_dir), fusion="gated", fusion_layers=[0], gnn_hidden=16,
                      gnn_heads=2, entity_weight=1.0, linkpred_weight=1.0, lr=1e-3, kg_lr=1e-2)
    model.configure_model()
    model._trainer = types.SimpleNamespace(estimated_stepping_batches=10)
    return model, batch


def test_optimiser_groups_cover_every_trainable_parameter_once(mlm_setup):
    model, _ = mlm_setup
    opt = model.configure_optimizers()["optimizer"]
    seen = [id(p) for g in opt.param_groups for p in g["params"]]
    assert len(seen) == len(set(seen)) == sum(p.requires_grad for p in model.parameters())
    by_id = {id(p): n for n, p in model.named_parameters()}
    for group in opt.param_groups:
        for p in group["params"]:
            name = by_id[id(p)]
            new = "kg_" in name or name.startswith("model.hf.cls")
            assert group["initial_lr"] == (1e-2 if new else 1e-3), name  # (lr is 0 at warm-up start)
            assert group["weight_decay"] == (0.0 if p.ndim < 2 or "norm" in name.lower() else 0.01), name


def test_entity_and_link_prediction_losses_train_their_parameters(mlm_setup):
    model, batch = mlm_setup
    hidden = model.model.encode(**model.fused_inputs(batch))
    entity = model._entity_loss(hidden, batch["entity_targets"])
    torch.manual_seed(0)
    lp = model._linkpred_loss(batch["graph"])
    assert entity > 0 and lp > 0
    (entity + lp).backward()
    for module in (model.kg_entity_head, model.kg_lp_rel, model.model.kg_encoder):
        grads = [p.grad for p in module.parameters() if p.requires_grad]
        assert grads and all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)
    model.zero_grad()
    # the entity loss is a real classification over the batch's nodes: right answers lower it
    targets = batch["entity_targets"]
    with torch.no_grad():
        cands = torch.unique(targets[targets >= 0])
        keys = model.model.kg_encoder.embed_nodes(cands)
        logits = model.kg_entity_head(hidden[targets >= 0]) @ keys.t()
    assert logits.shape == (int((targets >= 0).sum()), cands.numel())


def test_filtered_ranks_match_a_brute_force_reference():
    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 6, (20, 15), generator=g).float()  # many ties
    target = torch.randint(0, 15, (20,), generator=g)
    pairs = torch.randint(0, 15, (2, 40), generator=g)
    pairs[0] = torch.randint(0, 20, (40,), generator=g)
    keep = pairs[1] != target[pairs[0]]  # a filter never removes the answer itself
    filt = pairs[:, keep]
    got = ranks_from_scores(scores, target, filt)
    for row in range(20):
        removed = set(filt[1, filt[0] == row].tolist())
        others = [scores[row, e].item() for e in range(15) if e != target[row] and e not in removed]
        true = scores[row, target[row]].item()
        expected = 1 + sum(s > true for s in others) + sum(s == true for s in others) / 2
        assert got[row].item() == pytest.approx(expected), row
