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
