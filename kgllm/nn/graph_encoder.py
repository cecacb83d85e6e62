"""Relation-aware GAT encoder on PyG's ``GATv2Conv``."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.nn import GATv2Conv


class RelGATEncoder(nn.Module):
    r"""A stack of GATv2 layers whose attention sees relation embeddings as edge features.

    .. math::
        \mathbf{x}^{(0)}_v = \mathbf{E}[v], \qquad
        \mathbf{x}^{(l+1)}_v = \mathrm{LN}\Big(\mathbf{x}^{(l)}_v + \mathrm{Dropout}\big(\mathrm{ELU}(
            \sum_{u \in \mathcal{N}(v) \cup \{v\}} \alpha_{vu}^{(l)} \mathbf{W}^{(l)} \mathbf{x}^{(l)}_u)\big)\Big)

    with GATv2 attention :math:`\alpha_{vu} = \mathrm{softmax}_u(\mathbf{a}^\top \mathrm{LeakyReLU}(
    \mathbf{W}_s \mathbf{x}_v + \mathbf{W}_t \mathbf{x}_u + \mathbf{W}_e \mathbf{R}[r_{uv}]))`, heads
    concatenated. Each edge ``(h, r, t)`` also runs backwards as ``(t, r + R, h)`` when
    ``add_inverse`` is set, so information flows both ways with its direction known.

    Args:
        num_nodes (int): size of the node-id embedding table (KG entities).
        num_relations (int): number of KG relation types.
        hidden_channels (int, optional): node embedding width. (default: ``128``)
        num_layers (int, optional): GATv2 layers. (default: ``2``)
        heads (int, optional): attention heads; must divide ``hidden_channels``. (default: ``4``)
        dropout (float, optional): dropout on features and attention. (default: ``0.1``)
        add_inverse (bool, optional): add inverse edges with their own relation types. (default: ``True``)

    Shapes:
        - **input:** node ids ``n_id`` :math:`(N,)`, ``edge_index`` :math:`(2, E)` local to ``n_id``,
          ``edge_type`` :math:`(E,)`
        - **output:** node embeddings :math:`(N, \text{hidden\_channels})`
    """

    def __init__(self, num_nodes: int, num_relations: int, hidden_channels: int = 128, num_layers: int = 2,
                 heads: int = 4, dropout: float = 0.1, add_inverse: bool = True) -> None:
        super().__init__()
        if hidden_channels % heads:
            raise ValueError(f"hidden_channels ({hidden_channels}) must be divisible by heads ({heads})")
        self.num_nodes = num_nodes
        self.num_relations = num_relations
        self.hidden_channels = hidden_channels
        self.num_layers = num_layers
        self.heads = heads
        self.dropout = dropout
        self.add_inverse = add_inverse
        self.node_emb = nn.Embedding(max(num_nodes, 1), hidden_channels)
        self.rel_emb = nn.Embedding(max(num_relations * (2 if add_inverse else 1), 1), hidden_channels)
        self.convs = nn.ModuleList(
            GATv2Conv(hidden_channels, hidden_channels // heads, heads=heads, edge_dim=hidden_channels,
                      dropout=dropout, add_self_loops=True, fill_value="mean")
            for _ in range(num_layers))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden_channels) for _ in range(num_layers))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.node_emb.weight, std=0.1)
        nn.init.normal_(self.rel_emb.weight, std=0.1)
        for conv, norm in zip(self.convs, self.norms):
            conv.reset_parameters()
            norm.reset_parameters()

    def forward(self, n_id: Tensor, edge_index: Tensor, edge_type: Tensor) -> Tensor:
        x = self.node_emb(n_id)  # (N, D)
        if self.add_inverse:
            edge_index = torch.cat([edge_index, edge_index.flip(0)], dim=1)  # (2, 2E)
            edge_type = torch.cat([edge_type, edge_type + self.num_relations])  # (2E,)
        edge_attr = self.rel_emb(edge_type)  # (E', D)
        for conv, norm in zip(self.convs, self.norms):
            h = conv(x, edge_index, edge_attr)  # (N, D)
            h = nn.functional.dropout(nn.functional.elu(h), self.dropout, self.training)
            x = norm(x + h)
        return x

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(nodes={self.num_nodes}, relations={self.num_relations}, "
                f"hidden={self.hidden_channels}, layers={self.num_layers}, heads={self.heads})")
