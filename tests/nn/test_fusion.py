"""Fusion starts as the identity: logits equal plain BERT's, bit for bit (torch.equal on CPU)."""

import copy

import pytest
import torch
from torch_geometric.data import Batch, Data
from transformers import BertConfig, BertForMaskedLM, BertForSequenceClassification, BertModel

from kgllm.util.errors import ConfigError
from kgllm.nn.fusion import KGFusedLayer
from kgllm.nn.graph_encoder import RelGATEncoder
from kgllm.nn.kgbert import KGBert, is_kg_parameter

CFG = dict(vocab_size=120, hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=64)


def _inputs():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 120, (2, 9), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    graph = Batch.from_data_list([
        Data(n_id=torch.tensor([1, 2, 3]), edge_index=torch.tensor([[0, 1], [1, 2]]), edge_type=torch.tensor([0, 2]),
             num_nodes=3),
        Data(n_id=torch.tensor([4]), edge_index=torch.empty(2, 0, dtype=torch.long),
             edge_type=torch.empty(0, dtype=torch.long), num_nodes=1)])
    token_node = torch.full((2, 9), -1)
    token_node[0, 1:3] = 0
    token_node[0, 4] = 2
    token_node[1, 3] = 3
    return ids, mask, graph, token_node


def _encoder():
    return RelGATEncoder(num_nodes=10, num_relations=3, hidden_channels=16, num_layers=2, heads=2)


@pytest.mark.parametrize("cls", [BertForMaskedLM, BertForSequenceClassification])
@pytest.mark.parametrize("fusion,layers", [("none", [-1]), ("gated", [0, -1]), ("gated", [1]), ("xattn", [0, 2]),
                                           ("xattn", [1]), ("interaction", [1, 2]), ("interaction", [0])])
def test_fused_model_equals_plain_bert(cls, fusion, layers):
    torch.manual_seed(0)
    plain = cls(BertConfig(**CFG)).eval()
    fused = KGBert(copy.deepcopy(plain), _encoder() if fusion != "none" else None, fusion, layers).eval()
    ids, mask, graph, token_node = _inputs()
    expected = plain(input_ids=ids, attention_mask=mask).logits
    got = fused(ids, mask, graph=graph, token_node=token_node).logits
    assert torch.equal(expected, got)


def test_encode_equals_plain_bert_model():
    torch.manual_seed(0)
    plain = BertModel(BertConfig(**CFG), add_pooling_layer=False).eval()
    fused = KGBert(copy.deepcopy(plain), _encoder(), "gated", [-1]).eval()
    ids, mask, graph, token_node = _inputs()
    assert torch.equal(plain(input_ids=ids, attention_mask=mask).last_hidden_state,
                       fused.encode(ids, mask, graph=graph, token_node=token_node))


def test_wrapper_and_parameter_naming():
    fused = KGBert(BertForMaskedLM(BertConfig(**CFG)), _encoder(), "gated", [0, -1])
    layers = fused.backbone.encoder.layer
    assert isinstance(layers[0], KGFusedLayer) and isinstance(layers[2], KGFusedLayer)
    assert not isinstance(layers[1], KGFusedLayer) and fused.fusion_layers == [0, 2]
    new = {n for n, _ in fused.named_parameters() if is_kg_parameter(n)}
    assert any(n.startswith("kg_encoder.") for n in new) and any(n.endswith("kg_gate") for n in new)
    assert all("kg_" in n for n in new)
    assert not any(is_kg_parameter(n) for n, _ in BertForMaskedLM(BertConfig(**CFG)).named_parameters())


@pytest.mark.parametrize("fusion", ["gated", "xattn", "interaction"])
def test_gradients_reach_gate_then_graph_encoder(fusion):
    torch.manual_seed(0)
    fused = KGBert(BertForMaskedLM(BertConfig(**CFG)), _encoder(), fusion, [1, -1])
    ids, mask, graph, token_node = _inputs()
    fused(ids, mask, graph=graph, token_node=token_node).logits.square().sum().backward()
    gates = [fused.backbone.encoder.layer[i].kg_gate for i in (1, 2)]
    assert all(g.grad.abs().sum() > 0 for g in gates)  # zero gates still learn
    with torch.no_grad():
        for g in gates:
            g.fill_(0.5)
    fused.zero_grad()
    out = fused(ids, mask, graph=graph, token_node=token_node).logits
    out.square().sum().backward()
    grad = fused.kg_encoder.node_emb.weight.grad
    assert grad[[1, 3]].abs().sum() > 0 and grad[[0, 5]].abs().sum() == 0  # nodes outside the batch get none
    missing = [n for n, p in fused.named_parameters() if "kg_" in n and p.grad is None]
    assert not missing
    plain_logits = KGBert(copy.deepcopy(fused.hf), None, "none")  # wrappers stay, no graph -> base layer
    assert not torch.equal(out, plain_logits(ids, mask).logits)


def test_parameter_matched_control_has_blocks_but_no_graph():
    torch.manual_seed(0)
    matched = KGBert(BertForMaskedLM(BertConfig(**CFG)), None, "gated", [-1], graph_input=False, node_dim=16)
    full = KGBert(BertForMaskedLM(BertConfig(**CFG)), _encoder(), "gated", [-1])
    blocks = lambda m: sum(p.numel() for n, p in m.named_parameters() if "kg_block" in n or "kg_gate" in n)  # noqa
    assert blocks(matched) == blocks(full) and matched.kg_encoder is None
    matched.eval()
    ids, mask, graph, token_node = _inputs()
    with torch.no_grad():
        matched.backbone.encoder.layer[-1].kg_gate.fill_(1.0)
    shuffled = graph.clone()
    shuffled.n_id = shuffled.n_id.flip(0)
    a = matched(ids, mask, graph=graph, token_node=token_node).logits
    b = matched(ids, mask, graph=shuffled, token_node=token_node).logits
    assert torch.equal(a, b)  # which nodes are linked cannot matter: the blocks see zeros


def test_invalid_fusion_settings():
    with pytest.raises(ValueError, match="unknown fusion"):
        KGBert(BertForMaskedLM(BertConfig(**CFG)), _encoder(), "magic", [0])
    with pytest.raises(ConfigError, match="invalid for a 3-layer"):
        KGBert(BertForMaskedLM(BertConfig(**CFG)), _encoder(), "gated", [3])
    with pytest.raises(ValueError, match="needs a graph encoder"):
        KGBert(BertForMaskedLM(BertConfig(**CFG)), None, "gated", [0])
