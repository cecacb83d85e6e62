"""Fusion block contracts: what each block may change, per-example independence, the null node,
typed options, the registry, and activation checkpointing (layers re-run in backward)."""

import pytest
import torch
from transformers import BertConfig, BertForMaskedLM

from kgllm.nn.fusion import (FUSION_BLOCKS, CrossAttentionFusion, FusionBlock, FusionContext, GatedFusion,
                             build_block, fusion_names, register_fusion)
from kgllm.nn.kgbert import KGBert
from tests.nn.test_fusion import CFG, _encoder, _inputs

H, D = 32, 16


def _ctx(seed: int = 0) -> FusionContext:
    g = torch.Generator().manual_seed(seed)
    token_node = torch.full((2, 6), -1)
    token_node[0, 1], token_node[0, 3], token_node[1, 2] = 0, 1, 3
    return FusionContext(node_states=torch.randn(5, D, generator=g), token_node=token_node,
                         node_batch=torch.tensor([0, 0, 0, 1, 1]), edge_index=torch.tensor([[0, 1, 3], [1, 2, 4]]),
                         edge_type=torch.tensor([0, 1, 0]))


def test_gated_changes_linked_tokens_only():
    torch.manual_seed(0)
    block = GatedFusion(H, D).eval()
    hidden = torch.randn(2, 6, H)
    update, _ = block(hidden, _ctx())
    linked = _ctx().token_node >= 0
    assert update[~linked].abs().max() == 0 and (update[linked].abs().sum(-1) > 0).all()


@pytest.mark.parametrize("name", sorted(FUSION_BLOCKS))
def test_examples_in_a_batch_do_not_see_each_other(name):
    """Changing example 1's nodes and text must leave example 0's update unchanged."""
    torch.manual_seed(0)
    block = build_block(name, H, D, num_relations=2).eval()
    hidden, ctx = torch.randn(2, 6, H), _ctx()
    update, _ = block(hidden, ctx)
    other, ctx2 = hidden.clone(), _ctx()
    other[1] = torch.randn(6, H)
    ctx2.node_states[3:] = torch.randn(2, D)  # example 1's nodes
    update2, _ = block(other, ctx2)
    assert torch.allclose(update[0], update2[0], atol=1e-6)
    assert not torch.allclose(update[1], update2[1])


def test_cross_attention_null_node():
    """An example without nodes attends to the learned null node alone: its update is the same for
    every token whatever the other examples' nodes, and moves with the null vector."""
    torch.manual_seed(0)
    block = CrossAttentionFusion(H, D, heads=2).eval()
    ctx = _ctx()
    ctx.node_batch = torch.zeros(5, dtype=torch.long)  # every node belongs to example 0
    update, _ = block(torch.randn(2, 6, H), ctx)
    assert torch.allclose(update[1], update[1, :1].expand(6, H), atol=1e-6)
    with torch.no_grad():
        block.null.add_(1.0)
    moved, _ = block(torch.randn(2, 6, H), ctx)
    assert not torch.allclose(update[1], moved[1])


def test_options_are_typed_and_misspellings_refused():
    assert build_block("gated", H, D, dropout=0.2, num_relations=3).dropout.p == 0.2  # options it lacks are fine
    with pytest.raises(TypeError, match="unknown fusion option"):
        build_block("xattn", H, D, head=2)
    with pytest.raises(TypeError):
        GatedFusion(H, D, heads=4)  # no **kwargs swallowing


def test_a_registered_block_is_a_variant_everywhere():
    from kgllm.workflows.ablate import variant_overrides

    @register_fusion("test_zero")
    class Zero(FusionBlock):
        writes = "all"

        def __init__(self, hidden_size: int, node_dim: int) -> None:
            super().__init__(hidden_size, node_dim)
            self.scale = torch.nn.Parameter(torch.ones(1))

        def reset_parameters(self) -> None:
            torch.nn.init.ones_(self.scale)

        def forward(self, hidden, ctx, carry=None):
            return hidden * self.scale, carry

    try:
        assert "test_zero" in fusion_names()
        assert variant_overrides("test_zero") == ["--model.fusion", "test_zero"]
        model = KGBert(BertForMaskedLM(BertConfig(**CFG)), _encoder(), "test_zero", [0])
        assert repr(model.backbone.encoder.layer[0].kg_block) == "Zero(hidden=32, node_dim=16)"
    finally:
        del FUSION_BLOCKS["test_zero"]


@pytest.mark.parametrize("fusion", ["gated", "xattn", "interaction"])
def test_activation_checkpointing_recomputes_the_same_fusion(fusion):
    """Every fused layer is wrapped in torch.utils.checkpoint, so it runs again in backward; the
    gradients must equal the plain run's (the context must still hold what the forward pass read)."""
    from torch.utils.checkpoint import checkpoint

    grads = []
    for checkpointed in (False, True):
        torch.manual_seed(0)
        model = KGBert(BertForMaskedLM(BertConfig(**CFG)), _encoder(), fusion, [0, 1]).train()
        for p in model.parameters():  # open the gates
            if p.dim() == 1 and p.abs().sum() == 0:
                torch.nn.init.normal_(p, std=0.5)
        layers = model.backbone.encoder.layer
        if checkpointed:
            for i in model.fusion_layers:
                fused = layers[i]
                plain_forward = fused.forward
                fused.forward = (lambda f: lambda h, *a, **k: checkpoint(f, h, *a, use_reentrant=False, **k))(
                    plain_forward)
        ids, mask, graph, token_node = _inputs()
        torch.manual_seed(1)
        model(ids, mask, graph=graph, token_node=token_node).logits.square().mean().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    plain, ckpt = grads
    assert plain.keys() == ckpt.keys() and any("kg_block" in n for n in plain)
    for name in plain:
        assert torch.allclose(plain[name], ckpt[name], atol=1e-6), name


def test_context_carries_per_layer():
    ctx = FusionContext()
    ctx.carry[1] = "a"
    ctx.carry[3] = "b"
    assert ctx.carry_into(0) is None and ctx.carry_into(2) == "a" and ctx.carry_into(4) == "b"
    ctx.reset()
    assert ctx.carry == {} and ctx.node_states is None
