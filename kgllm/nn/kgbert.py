"""A Hugging Face BERT (any head) with a graph encoder and fusion wrappers installed from outside."""

from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import torch
from torch import Tensor, nn

from kgllm.nn.fusion import FusionContext, check_fusion_reaches, install_fusion

KG_PREFIX = "kg_"


def node_pieces_of(graph) -> Tensor | None:
    """The batch's own ``lm`` label pieces (``graph.node_pieces``, :math:`(N, P)`) if its loader
    gathered them (a KG too large for a table of every entity's pieces), else ``None``."""
    return getattr(graph, "node_pieces", None)


def is_kg_parameter(name: str) -> bool:
    """True for parameters added by kgllm (graph encoder, fusion blocks, gates)."""
    return any(part.startswith(KG_PREFIX) for part in name.split("."))


class KGBert(nn.Module):
    """``hf_model`` (``BertModel`` / ``BertForMaskedLM`` / ``BertForSequenceClassification`` ...) fused
    with a KG encoder at ``fusion_layers``.

    With ``fusion="none"`` nothing is installed and ``forward`` is exactly ``hf_model.forward``.

    Args:
        hf_model: the transformers model; its ``base_model.encoder.layer`` list is wrapped in place.
        graph_encoder: the GAT encoder (ignored when ``fusion == "none"``).
        fusion: block name from :data:`kgllm.nn.fusion.FUSION_BLOCKS`, or ``"none"``.
        fusion_layers: indices of BERT layers to wrap (negative counts from the top).
        fusion_dropout: dropout inside the fusion blocks.
        graph_input: ``False`` is the parameter-matched control: the fusion blocks are installed
            but see all-zero node states (no graph encoder, no graph information).
        node_dim: graph width when there is no graph encoder.
        num_relations: relation count when there is no graph encoder.
        head_reads: which positions the task head reads (a value of
            :data:`kgllm.nn.fusion.HEAD_POSITIONS`); when given, a fused layer that cannot change them
            is refused (:func:`~kgllm.nn.fusion.check_fusion_reaches`).
        keep_encoder: keep and run ``graph_encoder`` even with no fused layer (a head that reads the
            encoded graph itself, e.g. the MLM copy head); its node states are ``encoded_nodes``.
    """

    def __init__(self, hf_model: nn.Module, graph_encoder: nn.Module | None = None, fusion: str = "none",
                 fusion_layers: Sequence[int] = (-2,), fusion_dropout: float = 0.1, graph_input: bool = True,
                 node_dim: int = 128, num_relations: int = 1, head_reads: str | None = None,
                 keep_encoder: bool = False) -> None:
        super().__init__()
        self.hf = hf_model
        self.fusion = fusion
        self.graph_input = graph_input
        self._ctx = FusionContext()
        if fusion != "none" and graph_input and graph_encoder is None:
            raise ValueError(f"fusion {fusion!r} needs a graph encoder")
        hidden = hf_model.config.hidden_size
        if graph_encoder is not None:
            node_dim, num_relations = graph_encoder.hidden_channels, graph_encoder.num_relations
        self.node_dim = node_dim
        layers = self.backbone.encoder.layer
        self.fusion_layers = install_fusion(layers, list(fusion_layers), fusion, self._ctx,
                                            hidden, node_dim, dropout=fusion_dropout, num_relations=num_relations)
        if head_reads is not None:
            check_fusion_reaches(fusion, self.fusion_layers, len(layers), head_reads)
        self.kg_encoder = graph_encoder if (self.fusion_layers or keep_encoder) and graph_input else None
        self.encoded_nodes: Tensor | None = None

    @property
    def backbone(self) -> nn.Module:
        """The ``BertModel`` inside ``hf`` (``hf`` itself when it is a ``BertModel``)."""
        return self.hf.base_model

    def fusion_stats(self, token_node: Tensor, attention_mask: Tensor) -> dict[str, Tensor]:
        """What shows whether fusion can act: the L2 norm of each fused layer's gate and the share of
        (non-padding) tokens linked to a KG node."""
        layers = self.backbone.encoder.layer
        stats = {f"fusion/gate_norm_layer{i}": layers[i].kg_gate.detach().norm() for i in self.fusion_layers}
        stats["fusion/linked_share"] = (token_node >= 0).sum() / attention_mask.sum().clamp(min=1)
        return stats

    @contextlib.contextmanager
    def graph_context(self, graph=None, token_node: Tensor | None = None) -> Iterator[None]:
        """Encode ``graph`` (a PyG ``Batch`` with ``n_id``, ``edge_index``, ``edge_type``) and expose it,
        with ``token_node`` (B, T), to the fused layers. The context is replaced when the next forward
        pass starts (not cleared when this one ends): layers re-run in backward by activation
        checkpointing read it again."""
        self._ctx.reset()
        self.encoded_nodes = None
        if (self.fusion_layers or self.kg_encoder is not None) and graph is not None and token_node is not None:
            ctx = self._ctx
            if self.kg_encoder is not None:
                ctx.node_states = self.kg_encoder(graph.n_id, graph.edge_index, graph.edge_type,
                                                  node_pieces_of(graph))  # (N, D_g)
            else:  # parameter-matched control: blocks without graph information
                ctx.node_states = torch.zeros(graph.n_id.size(0), self.node_dim, device=token_node.device)
            self.encoded_nodes = ctx.node_states  # kept for auxiliary losses (link prediction)
            ctx.token_node = token_node
            ctx.node_batch = graph.batch if graph.batch is not None else torch.zeros_like(graph.n_id)
            ctx.edge_index, ctx.edge_type = graph.edge_index, graph.edge_type
        yield

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None, graph=None,
                token_node: Tensor | None = None, **hf_kwargs):
        """Run ``hf_model`` with the graph fused in; returns the HF output object."""
        with self.graph_context(graph, token_node):
            return self.hf(input_ids=input_ids, attention_mask=attention_mask, **hf_kwargs)

    def encode(self, input_ids: Tensor, attention_mask: Tensor | None = None, graph=None,
               token_node: Tensor | None = None, **kwargs) -> Tensor:
        """Last hidden states of the backbone, :math:`(B, T, H)`."""
        with self.graph_context(graph, token_node):
            return self.backbone(input_ids=input_ids, attention_mask=attention_mask, **kwargs).last_hidden_state
