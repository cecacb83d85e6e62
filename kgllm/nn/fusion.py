"""Fusion blocks and the wrapper that sits around a ``BertLayer`` (no copy of modeling_bert).

A :class:`KGFusedLayer` keeps the original layer as ``base_layer``, calls it, and
adds ``kg_gate * kg_block(hidden, context)``. The gate starts at zero, so a
freshly fused model computes exactly what the plain model computes. All new
parameters carry the ``kg_`` prefix, so "freeze the backbone" is one rule.

Blocks are chosen by name from :data:`FUSION_BLOCKS`; ``"none"`` installs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor, nn


@dataclass
class FusionContext:
    """What the wrapped layers read during one forward pass.

    Attributes:
        node_states: embeddings of the batch's subgraph nodes, :math:`(N, D_g)`.
        token_node: per token, the row of ``node_states`` it is linked to, or -1: :math:`(B, T)`.
    """

    node_states: Tensor | None = None
    token_node: Tensor | None = None

    def clear(self) -> None:
        self.node_states = None
        self.token_node = None


class GatedFusion(nn.Module):
    r"""ERNIE-style token/entity fusion for tokens linked to a KG node.

    .. math::
        \Delta_t = m_t \cdot \mathbf{W}_o\, \mathrm{GELU}(\mathbf{W}_h \mathbf{h}_t + \mathbf{W}_e \mathbf{e}_{n(t)})

    where :math:`m_t = 1` if token :math:`t` is linked to node :math:`n(t)`, else 0.

    Args:
        hidden_size (int): BERT hidden width :math:`H`.
        node_dim (int): graph embedding width :math:`D_g`.
        dropout (float, optional): dropout on the fused state. (default: ``0.1``)

    Shapes:
        - **input:** hidden :math:`(B, T, H)`, context with node states :math:`(N, D_g)`
          and token_node :math:`(B, T)`
        - **output:** :math:`(B, T, H)` (zero where no link)
    """

    def __init__(self, hidden_size: int, node_dim: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.node_dim = node_dim
        self.proj_token = nn.Linear(hidden_size, hidden_size)
        self.proj_node = nn.Linear(node_dim, hidden_size, bias=False)
        self.out = nn.Linear(hidden_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for lin in (self.proj_token, self.proj_node, self.out):
            lin.reset_parameters()

    def forward(self, hidden: Tensor, ctx: FusionContext) -> Tensor:
        linked = ctx.token_node >= 0  # (B, T)
        node = ctx.node_states.new_zeros(*linked.shape, self.node_dim)  # (B, T, D_g)
        node[linked] = ctx.node_states[ctx.token_node[linked]]
        fused = nn.functional.gelu(self.proj_token(hidden) + self.proj_node(node))  # (B, T, H)
        return self.out(self.dropout(fused)) * linked.unsqueeze(-1).to(hidden.dtype)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(hidden={self.hidden_size}, node_dim={self.node_dim})"


FUSION_BLOCKS: dict[str, Callable[..., nn.Module]] = {"gated": GatedFusion}


class KGFusedLayer(nn.Module):
    """Wraps one ``BertLayer``: ``out = base_layer(...); out + kg_gate * kg_block(out, ctx)``.

    When the context holds no graph (``ctx.node_states is None``) the wrapper is
    exactly the base layer.
    """

    def __init__(self, base_layer: nn.Module, block: nn.Module, ctx: FusionContext, hidden_size: int) -> None:
        super().__init__()
        self.base_layer = base_layer
        self.kg_block = block
        self.kg_gate = nn.Parameter(torch.zeros(hidden_size))
        self._ctx = ctx

    def forward(self, hidden_states: Tensor, *args, **kwargs):
        out = self.base_layer(hidden_states, *args, **kwargs)
        if self._ctx.node_states is None:
            return out
        hidden = out[0] if isinstance(out, tuple) else out  # transformers 5 returns a tensor
        fused = hidden + self.kg_gate * self.kg_block(hidden, self._ctx)
        return (fused, *out[1:]) if isinstance(out, tuple) else fused


def install_fusion(layers: nn.ModuleList, indices: list[int], name: str, ctx: FusionContext,
                   hidden_size: int, node_dim: int, **block_kwargs) -> list[int]:
    """Replace ``layers[i]`` for ``i`` in ``indices`` (negative allowed) by fused wrappers.

    Returns the normalised (non-negative, sorted) indices.
    """
    if name == "none":
        return []
    if name not in FUSION_BLOCKS:
        raise ValueError(f"unknown fusion {name!r}; choose one of {['none', *FUSION_BLOCKS]}")
    bad = [i for i in indices if not -len(layers) <= i < len(layers)]
    if bad or not indices:
        raise ValueError(f"fusion layers {list(indices)} invalid for a {len(layers)}-layer encoder")
    chosen = sorted({i % len(layers) for i in indices})
    for i in chosen:
        if isinstance(layers[i], KGFusedLayer):
            raise ValueError(f"layer {i} is already fused")
        block = FUSION_BLOCKS[name](hidden_size, node_dim, **block_kwargs)
        layers[i] = KGFusedLayer(layers[i], block, ctx, hidden_size)
    return chosen
