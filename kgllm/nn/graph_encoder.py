"""Relation-aware GAT encoder on PyG's ``GATv2Conv``."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.nn import GATv2Conv

NODE_FEATURES = ("id", "text", "text_norm", "both", "lm")


class RelGATEncoder(nn.Module):
    r"""A stack of GATv2 layers whose attention sees relation embeddings as edge features.

    .. math::
        \mathbf{x}^{(0)}_v = \mathbf{E}[v] \;\text{(id)}, \quad \mathbf{W}_x \mathbf{f}_v \;\text{(text)},
        \quad \text{their sum (both)}, \quad \mathrm{LN}\big(\mathbf{W}_w \tfrac{1}{|P_v|}
        \textstyle\sum_{p \in P_v} \mathbf{E}^{\text{word}}[p]\big) \;\text{(lm)}

        \mathbf{x}^{(l+1)}_v = \mathrm{LN}\Big(\mathbf{x}^{(l)}_v + \mathrm{Dropout}\big(\mathrm{ELU}(
            \textstyle\sum_{u \in \mathcal{N}(v) \cup \{v\}} \alpha_{vu}^{(l)} \mathbf{W}^{(l)} \mathbf{x}^{(l)}_u)\big)\Big)

    with GATv2 attention :math:`\alpha_{vu} = \mathrm{softmax}_u(\mathbf{a}^\top \mathrm{LeakyReLU}(
    \mathbf{W}_s \mathbf{x}_v + \mathbf{W}_t \mathbf{x}_u + \mathbf{W}_e \mathbf{R}[r_{uv}]))` and heads
    concatenated. Each edge ``(h, r, t)`` also runs backwards as ``(t, r + R, h)`` when
    ``add_inverse`` is set, so information flows both ways with its direction known.
    :math:`\mathbf{f}_v` are fixed text features of the entity (its label/description encoded
    once by the BERT backbone); with ``node_features="text"`` the encoder is inductive: an
    entity never seen in training is embedded from its text and its neighbours. With
    ``node_features="lm"`` a node is the mean of the backbone's own input word embeddings
    :math:`\mathbf{E}^{\text{word}}` over its label's wordpieces :math:`P_v` (shared with the
    backbone, set with :meth:`set_label_pieces`), projected and layer-normalised: no entity has
    a trained row of its own, so an entity added after training is embedded at once.

    Args:
        num_nodes (int): size of the node-id embedding table (KG entities).
        num_relations (int): number of KG relation types.
        hidden_channels (int, optional): node embedding width. (default: ``128``)
        num_layers (int, optional): GATv2 layers; ``0`` gives the input embeddings unchanged. (default: ``2``)
        heads (int, optional): attention heads; must divide ``hidden_channels``. (default: ``4``)
        dropout (float, optional): dropout on features and attention. (default: ``0.1``)
        add_inverse (bool, optional): add inverse edges with their own relation types. (default: ``True``)
        node_features (str, optional): ``id``, ``text``, ``text_norm`` (the text projection
            layer-normalised: unit-variance inputs, the scale of the id rows' trained updates),
            ``both`` or ``lm``. (default: ``"id"``)
        text_dim (int, optional): width of the text features (``text``/``text_norm``/``both``) or of the
            backbone's word embeddings (``lm``).
        sparse_ids (bool, optional): the id table gives sparse gradients (``nn.Embedding(sparse=True)``):
            with a sparse optimiser (``torch.optim.SparseAdam``) a step reads and updates only the
            batch's rows. (default: ``False``)

    Shapes:
        - **input:** node ids ``n_id`` :math:`(N,)`, ``edge_index`` :math:`(2, E)` local to ``n_id``,
          ``edge_type`` :math:`(E,)`; text features are read from the ``text_features`` buffer
          (:math:`(|\mathcal{V}|, F)`, set with :meth:`set_text_features`); ``lm`` inputs from
          ``node_pieces`` :math:`(N, P)` when given (the batch's own rows, e.g. gathered from a
          memory-mapped table of a KG too large for memory), else from the ``label_pieces`` buffer
        - **output:** node embeddings :math:`(N, \text{hidden\_channels})`
    """

    def __init__(self, num_nodes: int, num_relations: int, hidden_channels: int = 128, num_layers: int = 2,
                 heads: int = 4, dropout: float = 0.1, add_inverse: bool = True, node_features: str = "id",
                 text_dim: int | None = None, sparse_ids: bool = False) -> None:
        super().__init__()
        if hidden_channels % heads:
            raise ValueError(f"hidden_channels ({hidden_channels}) must be divisible by heads ({heads})")
        if node_features not in NODE_FEATURES:
            raise ValueError(f"node_features must be one of {NODE_FEATURES}, got {node_features!r}")
        if node_features != "id" and not text_dim:
            raise ValueError(f"node_features={node_features!r} needs text_dim")
        self.num_nodes = num_nodes
        self.num_relations = num_relations
        self.hidden_channels = hidden_channels
        self.num_layers = num_layers
        self.heads = heads
        self.dropout = dropout
        self.add_inverse = add_inverse
        self.node_features = node_features
        self.node_emb = (nn.Embedding(max(num_nodes, 1), hidden_channels, sparse=sparse_ids)
                         if node_features in ("id", "both") else None)
        self.text_proj = (nn.Linear(text_dim, hidden_channels) if node_features in ("text", "text_norm", "both")
                          else None)
        self.text_norm = nn.LayerNorm(hidden_channels) if node_features == "text_norm" else None
        self.lm_proj = nn.Linear(text_dim, hidden_channels) if node_features == "lm" else None
        self.lm_norm = nn.LayerNorm(hidden_channels) if node_features == "lm" else None
        # no row per node until set_label_pieces (a KG read batch by batch never sets it)
        self.register_buffer("label_pieces", torch.full((1, 1), -1, dtype=torch.long), persistent=False)
        self._word_embeddings: list[nn.Embedding] = []  # the backbone's, not registered here (shared)
        text_rows = max(num_nodes, 1) if self.text_proj is not None else 1  # lm inputs: no row per node
        self.register_buffer("text_features", torch.zeros(text_rows, text_dim if self.text_proj is not None else 0),
                             persistent=False)
        self.rel_emb = nn.Embedding(max(num_relations * (2 if add_inverse else 1), 1), hidden_channels)
        self.convs = nn.ModuleList(
            GATv2Conv(hidden_channels, hidden_channels // heads, heads=heads, edge_dim=hidden_channels,
                      dropout=dropout, add_self_loops=True, fill_value="mean")
            for _ in range(num_layers))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden_channels) for _ in range(num_layers))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.node_emb is not None:
            nn.init.normal_(self.node_emb.weight, std=0.1)
        if self.text_proj is not None:
            self.text_proj.reset_parameters()
        if self.text_norm is not None:
            self.text_norm.reset_parameters()
        if self.lm_proj is not None:
            self.lm_proj.reset_parameters()
            self.lm_norm.reset_parameters()
        nn.init.normal_(self.rel_emb.weight, std=0.1)
        for conv, norm in zip(self.convs, self.norms):
            conv.reset_parameters()
            norm.reset_parameters()

    def set_text_features(self, features: Tensor) -> None:
        """Fixed text features for every node, :math:`(|\\mathcal{V}|, F)` (new nodes may be appended)."""
        if self.text_proj is None:
            raise ValueError("this encoder uses id features only")
        if features.size(1) != self.text_proj.in_features:
            raise ValueError(f"text features have width {features.size(1)}, expected {self.text_proj.in_features}")
        self.text_features = features.to(self.text_proj.weight.device, self.text_proj.weight.dtype)

    def set_label_pieces(self, pieces: Tensor, word_embeddings: nn.Embedding) -> None:
        """``lm`` node inputs: each node's label wordpieces :math:`(|\\mathcal{V}|, P)` (``-1`` padded;
        rebuilt from the KG, so nodes added after training are included) and the backbone's input
        word embeddings, read at every forward pass (kept outside this module's parameters)."""
        if self.lm_proj is None:
            raise ValueError("set_label_pieces is for node_features='lm'")
        self.set_word_embeddings(word_embeddings)
        self.label_pieces = pieces.to(self.lm_proj.weight.device)

    def set_word_embeddings(self, word_embeddings: nn.Embedding) -> None:
        """``lm`` node inputs: the backbone's input word embeddings alone, for callers that pass each
        batch's ``node_pieces`` to :meth:`forward` (no table of every node's pieces is kept)."""
        if self.lm_proj is None:
            raise ValueError("set_word_embeddings is for node_features='lm'")
        if word_embeddings.embedding_dim != self.lm_proj.in_features:
            raise ValueError(f"word embeddings have width {word_embeddings.embedding_dim}, expected "
                             f"{self.lm_proj.in_features}")
        self._word_embeddings = [word_embeddings]

    def _lm_inputs(self, n_id: Tensor, pieces: Tensor | None = None) -> Tensor:
        if not self._word_embeddings:
            raise RuntimeError("node_features='lm' needs set_label_pieces(...) before the first forward pass")
        if pieces is None:
            pieces = self.label_pieces[n_id.clamp(max=self.label_pieces.size(0) - 1)]  # (N, P)
        known = (pieces >= 0).unsqueeze(-1)  # (N, P, 1)
        words = self._word_embeddings[0](pieces.clamp(min=0)) * known  # (N, P, H)
        mean = words.sum(1) / known.sum(1).clamp(min=1)  # (N, H)
        return self.lm_norm(self.lm_proj(mean))

    def embed_nodes(self, n_id: Tensor, node_pieces: Tensor | None = None) -> Tensor:
        """Input features :math:`\\mathbf{x}^{(0)}` of the nodes ``n_id``, :math:`(N, D)`."""
        if self.lm_proj is not None:
            return self._lm_inputs(n_id, node_pieces)
        x = None
        if self.node_emb is not None:
            x = self.node_emb(n_id.clamp(max=self.node_emb.num_embeddings - 1))
        if self.text_proj is not None:
            t = self.text_proj(self.text_features[n_id])
            if self.text_norm is not None:
                t = self.text_norm(t)
            x = t if x is None else x + t
        return x

    def forward(self, n_id: Tensor, edge_index: Tensor, edge_type: Tensor, node_pieces: Tensor | None = None) -> Tensor:
        x = self.embed_nodes(n_id, node_pieces)  # (N, D)
        if not self.num_layers:
            return x
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
                f"hidden={self.hidden_channels}, layers={self.num_layers}, heads={self.heads}, "
                f"features={self.node_features})")


class PrecomputedEncoder(nn.Module):
    r"""Node states from fixed, precomputed embeddings (e.g. exported by link-prediction training)
    through a trainable projection: the "graph encoder" option that needs no message passing.

    Shapes:
        - **input:** ``n_id`` :math:`(N,)` (``edge_index``/``edge_type`` are accepted and ignored)
        - **output:** :math:`(N, \text{hidden\_channels})`
    """

    def __init__(self, embeddings: Tensor, hidden_channels: int, num_relations: int) -> None:
        super().__init__()
        self.register_buffer("embeddings", embeddings.float(), persistent=False)
        self.hidden_channels = hidden_channels
        self.num_relations = num_relations
        self.proj = nn.Linear(embeddings.size(1), hidden_channels)

    def forward(self, n_id: Tensor, edge_index: Tensor | None = None, edge_type: Tensor | None = None) -> Tensor:
        return self.proj(self.embeddings[n_id])

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(nodes={self.embeddings.size(0)}, dim={self.embeddings.size(1)})"
