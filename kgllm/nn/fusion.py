"""Fusion blocks and the wrapper that sits around a ``BertLayer`` (no copy of modeling_bert).

A :class:`KGFusedLayer` keeps the original layer as ``base_layer``, calls it, and adds
``kg_gate * kg_block(hidden, context)``. The gate starts at zero, so a freshly fused model
computes exactly what the plain model computes. All new parameters carry the ``kg_`` prefix,
so "freeze the backbone" is one rule.

Blocks are chosen by name from :data:`FUSION_BLOCKS` (``"none"`` installs nothing); to add
one, subclass :class:`FusionBlock` in this file (or your own module) with
``@register_fusion("name")``: ``kgllm ablate`` and the configs find it by that name.

* ``gated`` -- ERNIE-style: each token linked to a node is mixed with that node's embedding;
* ``xattn`` -- every token cross-attends to the node embeddings of its example's subgraph;
* ``interaction`` -- GreaseLM-style: a GNN layer runs beside the BERT layer on the subgraph
  plus one context node per example, and the ``[CLS]`` state and the context node exchange
  information after each layer.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.nn import GATv2Conv
from torch_geometric.utils import scatter, to_dense_batch

from kgllm.util.errors import ConfigError


@dataclass
class FusionContext:
    """What the wrapped layers read during one forward pass: the graph inputs, which no block
    changes, and ``carry``, what each fused layer passed on (``carry[i]``: layer ``i``'s output
    state, e.g. the interaction blocks' node and context states). A layer reads the carry of the
    fused layer below it, so a layer re-run in backward (activation checkpointing) reads exactly
    what it read in the forward pass. The context is reset when the next forward pass starts,
    not when one ends, for the same reason.

    Attributes:
        node_states: embeddings of the batch's subgraph nodes, :math:`(N, D_g)`.
        token_node: per token, the row of ``node_states`` it is linked to, or -1: :math:`(B, T)`.
        node_batch: example of each node, :math:`(N,)`.
        edge_index, edge_type: the batch's subgraph edges, :math:`(2, E)` and :math:`(E,)`.
        carry: fused layer index -> the state it passes to the next fused layer.
    """

    node_states: Tensor | None = None
    token_node: Tensor | None = None
    node_batch: Tensor | None = None
    edge_index: Tensor | None = None
    edge_type: Tensor | None = None
    carry: dict[int, Any] = field(default_factory=dict)

    def __deepcopy__(self, memo: dict) -> "FusionContext":
        # a copied model (EMA, SWA, tests) gets an empty context of its own, shared by its layers,
        # not the last forward pass's tensors (non-leaf tensors cannot be deep-copied)
        return FusionContext()

    def reset(self) -> None:
        for name in ("node_states", "token_node", "node_batch", "edge_index", "edge_type"):
            setattr(self, name, None)
        self.carry = {}

    def carry_into(self, layer: int) -> Any:
        """The carry of the nearest fused layer below ``layer`` (``None`` for the first one)."""
        below = [i for i in self.carry if i < layer]
        return self.carry[max(below)] if below else None


_WRITES_REACH = {"all": {"cls", "markers", "tokens", "masked"}, "linked": {"tokens"}, "cls": {"cls"}}
_READS_TEXT = {"cls": "the [CLS] state", "markers": "the entity-marker states", "tokens": "every token",
               "masked": "the masked tokens (which are never linked)"}
#: the positions of the last layer's output a task head can read (a task's ``head_reads``)
HEAD_POSITIONS = tuple(_READS_TEXT)


def check_fusion_reaches(name: str, layers: list[int], num_layers: int, reads: str) -> None:
    """Refuse a fusion layer that cannot change what the head reads.

    A block changes the positions given by its ``writes`` attribute (``linked`` tokens, ``cls``
    or ``all``); below the last layer, self-attention carries that change to every position, but
    at the last layer only the written positions change. A fused last layer whose positions the
    head does not read (``reads``: one of :data:`HEAD_POSITIONS`) would get no gradient and
    change nothing: an error, not a variant.
    """
    if name == "none" or num_layers - 1 not in layers:
        return
    writes = FUSION_BLOCKS[name].writes
    if reads not in _WRITES_REACH[writes]:
        raise ValueError(
            f"fusion {name!r} at layer {num_layers - 1} (the last of {num_layers}) cannot change what the head "
            f"reads ({_READS_TEXT[reads]}): {name!r} changes {writes} positions only, and no later layer carries "
            f"the change; fuse at earlier layers (e.g. fusion_layers: [{max(num_layers - 3, 0)}, {num_layers - 2}]) "
            "or use xattn")


class FusionBlock(nn.Module):
    """Base class of fusion blocks (the contract every block keeps).

    A block is built with the BERT width ``hidden_size`` and the graph width ``node_dim`` plus its
    own typed options, and returns, for the hidden states after its BERT layer, an update of the
    same shape (the wrapper adds ``kg_gate * update``) and the state it carries to the next fused
    layer. It reads the graph from the :class:`FusionContext` and never changes it.

    Attributes:
        writes: which positions the update can change: ``linked`` tokens, ``cls`` or ``all``
            (checked against what the task head reads by :func:`check_fusion_reaches`).
    """

    writes: str = "all"

    def __init__(self, hidden_size: int, node_dim: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.node_dim = node_dim

    def reset_parameters(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, hidden: Tensor, ctx: FusionContext, carry: Any = None) -> tuple[Tensor, Any]:
        """``hidden`` :math:`(B, T, H)` -> (update :math:`(B, T, H)`, carry for the next fused layer)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def node_weights(self, hidden: Tensor, ctx: FusionContext) -> tuple[Tensor, Tensor] | None:
        """For blocks that attend over nodes: each token's attention weights over its example's nodes,
        ``(weights (B, T, M), node rows (B, M), -1 padding)``, for ``kgllm inspect``; ``None`` for the
        others."""
        return None

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(hidden={self.hidden_size}, node_dim={self.node_dim})"


#: fusion name -> block class; ``register_fusion`` adds to it
FUSION_BLOCKS: dict[str, type[FusionBlock]] = {}


def register_fusion(name: str):
    """Class decorator: make a :class:`FusionBlock` available as ``fusion: NAME``."""
    def add(cls: type[FusionBlock]) -> type[FusionBlock]:
        if name in FUSION_BLOCKS or name == "none":
            raise ValueError(f"fusion {name!r} is already registered")
        FUSION_BLOCKS[name] = cls
        return cls
    return add


def fusion_names() -> tuple[str, ...]:
    """``none`` and every registered block, in registration order."""
    return ("none", *FUSION_BLOCKS)


def build_block(name: str, hidden_size: int, node_dim: int, **options: Any) -> FusionBlock:
    """Build block ``name`` with the ``options`` its constructor takes; an option that no
    registered block takes is an error (a misspelt option is never ignored)."""
    cls = FUSION_BLOCKS[name]
    known = {p for c in FUSION_BLOCKS.values() for p in inspect.signature(c.__init__).parameters}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"unknown fusion option(s) {unknown}; blocks take {sorted(known - {'self'})}")
    own = inspect.signature(cls.__init__).parameters
    return cls(hidden_size, node_dim, **{k: v for k, v in options.items() if k in own})


@register_fusion("gated")
class GatedFusion(FusionBlock):
    r"""ERNIE-style token/entity fusion for tokens linked to a KG node.

    .. math::
        \Delta_t = m_t \cdot \mathbf{W}_o\, \mathrm{GELU}(\mathbf{W}_h \mathbf{h}_t + \mathbf{W}_e \mathbf{e}_{n(t)})

    where :math:`m_t = 1` if token :math:`t` is linked to node :math:`n(t)`, else 0.

    Args:
        hidden_size (int): BERT hidden width :math:`H`.
        node_dim (int): graph embedding width :math:`D_g`.
        dropout (float, optional): dropout on the fused state. (default: ``0.1``)

    Shapes:
        - **input:** hidden :math:`(B, T, H)`, context (node states :math:`(N, D_g)`, token_node :math:`(B, T)`)
        - **output:** :math:`(B, T, H)` (zero where no link)
    """

    writes = "linked"

    def __init__(self, hidden_size: int, node_dim: int, dropout: float = 0.1) -> None:
        super().__init__(hidden_size, node_dim)
        self.proj_token = nn.Linear(hidden_size, hidden_size)
        self.proj_node = nn.Linear(node_dim, hidden_size, bias=False)
        self.out = nn.Linear(hidden_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for lin in (self.proj_token, self.proj_node, self.out):
            lin.reset_parameters()

    def forward(self, hidden: Tensor, ctx: FusionContext, carry: Any = None) -> tuple[Tensor, Any]:
        linked = ctx.token_node >= 0  # (B, T)
        node = ctx.node_states.new_zeros(*linked.shape, self.node_dim)  # (B, T, D_g)
        node[linked] = ctx.node_states[ctx.token_node[linked]]
        fused = nn.functional.gelu(self.proj_token(hidden) + self.proj_node(node))  # (B, T, H)
        return self.out(self.dropout(fused)) * linked.unsqueeze(-1).to(hidden.dtype), carry


@register_fusion("xattn")
class CrossAttentionFusion(FusionBlock):
    r"""Tokens attend to the nodes of their example's subgraph (plus a learned null node, so an
    example without nodes attends to it alone).

    .. math::
        \Delta_t = \mathbf{W}_o \,\mathrm{MHA}(\mathbf{h}_t,\; [\mathbf{n}_\varnothing; \mathbf{E}_b],\;
        [\mathbf{n}_\varnothing; \mathbf{E}_b])

    Args:
        hidden_size (int): BERT hidden width :math:`H`.
        node_dim (int): graph embedding width :math:`D_g`.
        heads (int, optional): attention heads (must divide :math:`H`). (default: ``4``)
        dropout (float, optional): attention dropout. (default: ``0.1``)

    Shapes:
        - **input:** hidden :math:`(B, T, H)`, context (node states :math:`(N, D_g)`, node_batch :math:`(N,)`)
        - **output:** :math:`(B, T, H)`
    """

    writes = "all"

    def __init__(self, hidden_size: int, node_dim: int, heads: int = 4, dropout: float = 0.1) -> None:
        super().__init__(hidden_size, node_dim)
        self.null = nn.Parameter(torch.zeros(node_dim))
        self.attn = nn.MultiheadAttention(hidden_size, heads, dropout=dropout, kdim=node_dim, vdim=node_dim,
                                          batch_first=True)
        self.out = nn.Linear(hidden_size, hidden_size)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.null, std=0.02)
        self.attn._reset_parameters()
        self.out.reset_parameters()

    def forward(self, hidden: Tensor, ctx: FusionContext, carry: Any = None) -> tuple[Tensor, Any]:
        B = hidden.size(0)
        nodes, mask = to_dense_batch(ctx.node_states, ctx.node_batch, batch_size=B)  # (B, M, D_g), (B, M)
        nodes = torch.cat([self.null.expand(B, 1, -1), nodes], dim=1)  # (B, 1 + M, D_g)
        mask = torch.cat([mask.new_ones(B, 1), mask], dim=1)
        attended, _ = self.attn(hidden, nodes, nodes, key_padding_mask=~mask, need_weights=False)  # (B, T, H)
        return self.out(attended), carry

    def node_weights(self, hidden: Tensor, ctx: FusionContext) -> tuple[Tensor, Tensor]:
        """Head-averaged attention over the example's nodes (the null node's share left out)."""
        B = hidden.size(0)
        rows = torch.arange(ctx.node_states.size(0), device=hidden.device)
        nodes, mask = to_dense_batch(ctx.node_states, ctx.node_batch, batch_size=B)
        row_ids, _ = to_dense_batch(rows, ctx.node_batch, batch_size=B, fill_value=-1)  # (B, M)
        nodes = torch.cat([self.null.expand(B, 1, -1), nodes], dim=1)
        mask = torch.cat([mask.new_ones(B, 1), mask], dim=1)
        _, weights = self.attn(hidden, nodes, nodes, key_padding_mask=~mask, need_weights=True,
                               average_attn_weights=True)  # (B, T, 1 + M)
        return weights[..., 1:], row_ids


@register_fusion("interaction")
class InteractionFusion(FusionBlock):
    r"""GreaseLM-style modality interaction beside one BERT layer.

    A GATv2 layer updates the subgraph nodes and one context node per example (joined to every
    node of its example by two extra relation types); then the ``[CLS]`` state and the context
    node are mixed by an MLP and each receives its share:

    .. math::
        [\Delta_{\mathrm{cls}}; \Delta_{c}] = \mathrm{MLP}([\mathbf{h}_{\mathrm{cls}}; \mathbf{c}']),\quad
        \mathbf{c} \leftarrow \mathbf{c}' + \Delta_c

    The returned update touches the ``[CLS]`` position only; node and context states are carried
    to the next interaction layer (the block's ``carry``).

    Args:
        hidden_size (int): BERT hidden width :math:`H`.
        node_dim (int): graph embedding width :math:`D_g`.
        num_relations (int): KG relation types :math:`R` (the block embeds :math:`2R + 2` edge types).
        heads (int, optional): GATv2 heads. (default: ``4``)
        dropout (float, optional): dropout. (default: ``0.1``)
    """

    writes = "cls"

    def __init__(self, hidden_size: int, node_dim: int, num_relations: int = 1, heads: int = 4,
                 dropout: float = 0.1) -> None:
        super().__init__(hidden_size, node_dim)
        self.num_relations = num_relations
        self.rel = nn.Embedding(2 * num_relations + 2, node_dim)
        self.gnn = GATv2Conv(node_dim, node_dim // heads, heads=heads, edge_dim=node_dim, dropout=dropout,
                             add_self_loops=True, fill_value="mean")
        self.norm = nn.LayerNorm(node_dim)
        self.context_init = nn.Parameter(torch.zeros(node_dim))
        self.mix = nn.Sequential(nn.Linear(hidden_size + node_dim, hidden_size + node_dim), nn.GELU(),
                                 nn.Dropout(dropout), nn.Linear(hidden_size + node_dim, hidden_size + node_dim))
        self.dropout = nn.Dropout(dropout)
        # the submodules initialise themselves (re-initialising here would shift the random stream
        # that earlier results were produced with); reset_parameters() re-initialises on request

    def reset_parameters(self) -> None:
        self.rel.reset_parameters()
        self.gnn.reset_parameters()
        self.norm.reset_parameters()
        nn.init.zeros_(self.context_init)
        for lin in (self.mix[0], self.mix[3]):
            lin.reset_parameters()

    def forward(self, hidden: Tensor, ctx: FusionContext, carry: Any = None) -> tuple[Tensor, Any]:
        B, N, R = hidden.size(0), ctx.node_states.size(0), self.num_relations
        if carry is None:  # first interaction layer: the encoder's nodes, context = mean of the example's nodes
            carry = (ctx.node_states, scatter(ctx.node_states, ctx.node_batch, 0, dim_size=B, reduce="mean"))
        node_states, context_states = carry
        x = torch.cat([node_states, context_states + self.context_init])  # (N + B, D_g)
        nodes = torch.arange(N, device=x.device)
        ctx_id = N + ctx.node_batch
        edge_index = torch.cat([ctx.edge_index, ctx.edge_index.flip(0), torch.stack([ctx_id, nodes]),
                                torch.stack([nodes, ctx_id])], dim=1)  # (2, 2E + 2N)
        edge_type = torch.cat([ctx.edge_type, ctx.edge_type + R, torch.full_like(nodes, 2 * R),
                               torch.full_like(nodes, 2 * R + 1)])
        h = nn.functional.elu(self.gnn(x, edge_index, self.rel(edge_type)))
        x = self.norm(x + self.dropout(h))
        mixed = self.mix(torch.cat([hidden[:, 0], x[N:]], dim=-1))  # (B, H + D_g)
        delta = torch.zeros_like(hidden)
        delta[:, 0] = mixed[:, :self.hidden_size]
        return delta, (x[:N], x[N:] + mixed[:, self.hidden_size:])


FUSIONS = fusion_names()  # the built-in names; fusion_names() also lists blocks registered later


class KGFusedLayer(nn.Module):
    """Wraps one ``BertLayer``: ``out = base_layer(...); out + kg_gate * kg_block(out, ctx)``.

    When the context holds no graph (``ctx.node_states is None``) the wrapper is exactly the base layer.
    """

    def __init__(self, base_layer: nn.Module, block: FusionBlock, ctx: FusionContext, hidden_size: int,
                 index: int = 0) -> None:
        super().__init__()
        self.base_layer = base_layer
        self.kg_block = block
        self.kg_gate = nn.Parameter(torch.zeros(hidden_size))
        self.index = index
        self._ctx = ctx

    def forward(self, hidden_states: Tensor, *args, **kwargs):
        out = self.base_layer(hidden_states, *args, **kwargs)
        ctx = self._ctx
        if ctx.node_states is None:
            return out
        hidden = out[0] if isinstance(out, tuple) else out  # transformers 5 returns a tensor
        update, ctx.carry[self.index] = self.kg_block(hidden, ctx, ctx.carry_into(self.index))
        fused = hidden + self.kg_gate * update
        return (fused, *out[1:]) if isinstance(out, tuple) else fused


def install_fusion(layers: nn.ModuleList, indices: list[int], name: str, ctx: FusionContext,
                   hidden_size: int, node_dim: int, **block_kwargs) -> list[int]:
    """Replace ``layers[i]`` for ``i`` in ``indices`` (negative allowed) by fused wrappers.

    Returns the normalised (non-negative, sorted) indices.
    """
    if name == "none":
        return []
    if name not in FUSION_BLOCKS:
        raise ValueError(f"unknown fusion {name!r}; choose one of {list(fusion_names())}")
    bad = [i for i in indices if not -len(layers) <= i < len(layers)]
    if bad or not indices:
        raise ConfigError(f"--model.fusion_layers {list(indices)}: invalid for a {len(layers)}-layer encoder "
                          f"(use 0..{len(layers) - 1}, or -1..-{len(layers)} counted from the top)")
    chosen = sorted({i % len(layers) for i in indices})
    for i in chosen:
        if isinstance(layers[i], KGFusedLayer):
            raise ValueError(f"layer {i} is already fused")
        block = build_block(name, hidden_size, node_dim, **block_kwargs)
        layers[i] = KGFusedLayer(layers[i], block, ctx, hidden_size, index=i)
    return chosen
