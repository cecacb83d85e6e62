"""Fusion starts as the identity: logits equal plain BERT's, bit for bit (torch.equal on CPU)."""

import copy

import pytest
import torch
from torch_geometric.data import Batch, Data
from transformers import BertConfig, BertForMaskedLM, BertForSequenceClassification, BertModel

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
@pytest.mark.parametrize("fusion,layers", [("none", [-1]), ("gated", [0, -1]), ("gated", [1])])
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


def test_gradients_reach_gate_then_graph_encoder():
    torch.manual_seed(0)
    fused = KGBert(BertForMaskedLM(BertConfig(**CFG)), _encoder(), "gated", [-1])
    ids, mask, graph, token_node = _inputs()
    fused(ids, mask, graph=graph, token_node=token_node).logits.square().sum().backward()
    gate = fused.backbone.encoder.layer[-1].kg_gate
    assert gate.grad.abs().sum() > 0  # zero gate still learns
    with torch.no_grad():
        gate.fill_(0.5)
    fused.zero_grad()
    out = fused(ids, mask, graph=graph, token_node=token_node).logits
    out.square().sum().backward()
    assert fused.kg_encoder.node_emb.weight.grad[[1, 3, 4]].abs().sum() > 0
    assert fused.kg_encoder.node_emb.weight.grad[[0, 5]].abs().sum() == 0  # nodes not in the batch
    plain_logits = KGBert(copy.deepcopy(fused.hf), None, "none")  # wrappers stay, no graph -> base layer
    assert not torch.equal(out, plain_logits(ids, mask).logits)


def test_invalid_fusion_settings():
    with pytest.raises(ValueError, match="unknown fusion"):
        KGBert(BertForMaskedLM(BertConfig(**CFG)), _encoder(), "magic", [0])
    with pytest.raises(ValueError, match="invalid for a 3-layer"):
        KGBert(BertForMaskedLM(BertConfig(**CFG)), _encoder(), "gated", [3])
    with pytest.raises(ValueError, match="needs a graph encoder"):
        KGBert(BertForMaskedLM(BertConfig(**CFG)), None, "gated", [0])
