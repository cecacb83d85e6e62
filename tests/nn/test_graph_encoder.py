import pytest
import torch

from kgllm.nn.graph_encoder import RelGATEncoder


def test_shapes_and_gradients():
    enc = RelGATEncoder(num_nodes=20, num_relations=4, hidden_channels=24, num_layers=3, heads=3)
    n_id = torch.tensor([3, 7, 11, 19])
    ei = torch.tensor([[0, 1, 2], [1, 2, 3]])
    out = enc(n_id, ei, torch.tensor([0, 3, 1]))
    assert out.shape == (4, 24) and torch.isfinite(out).all()
    out.sum().backward()
    assert enc.rel_emb.weight.grad[[0, 1, 3, 4, 5, 7]].abs().sum() > 0  # forward and inverse types used
    assert enc.node_emb.weight.grad[n_id].abs().sum() > 0


def test_relation_types_change_the_output():
    torch.manual_seed(0)
    enc = RelGATEncoder(5, 2, 16, 1, 2, dropout=0.0).eval()
    ei, n_id = torch.tensor([[0], [1]]), torch.tensor([0, 1])
    a = enc(n_id, ei, torch.tensor([0]))
    b = enc(n_id, ei, torch.tensor([1]))
    assert not torch.allclose(a, b)


def test_edgeless_and_empty_graphs():
    enc = RelGATEncoder(5, 2, 16, 2, 2).eval()
    none = torch.empty(2, 0, dtype=torch.long)
    assert torch.isfinite(enc(torch.tensor([1, 2]), none, torch.empty(0, dtype=torch.long))).all()
    assert enc(torch.empty(0, dtype=torch.long), none, torch.empty(0, dtype=torch.long)).shape == (0, 16)


def test_heads_must_divide_width():
    with pytest.raises(ValueError, match="divisible"):
        RelGATEncoder(5, 2, 10, heads=3)


def test_text_norm_features_are_layer_normalised_and_trained():
    """``text_norm``: the text projection is layer-normalised (unit variance per node, whatever the
    features' scale), and the projection and norm get gradients through the GAT."""
    torch.manual_seed(0)
    enc = RelGATEncoder(5, 2, hidden_channels=8, heads=2, dropout=0.0, node_features="text_norm", text_dim=6)
    enc.set_text_features(torch.nn.functional.normalize(torch.randn(5, 6), dim=1) * 0.01)  # tiny, like L2-normed
    x = enc.embed_nodes(torch.arange(5))
    torch.testing.assert_close(x.var(1, unbiased=False), torch.ones(5), atol=1e-2, rtol=0)
    plain = RelGATEncoder(5, 2, hidden_channels=8, heads=2, node_features="text", text_dim=6)
    plain.set_text_features(enc.text_features)
    assert plain.embed_nodes(torch.arange(5)).var(1).mean() < 0.5 * x.var(1).mean()  # what the norm fixes
    enc(torch.arange(5), torch.tensor([[0, 1, 2], [1, 2, 3]]), torch.tensor([0, 1, 0])).sum().backward()
    for name in ("text_proj.weight", "text_norm.weight", "text_norm.bias"):
        assert dict(enc.named_parameters())[name].grad.abs().sum() > 0, name
