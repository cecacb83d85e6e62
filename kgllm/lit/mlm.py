"""Masked-language-model pretraining with KG fusion."""

from __future__ import annotations

import torch
from torch.nn import functional as F
from torchmetrics import MeanMetric

from kgllm.util.errors import ConfigError, KGLLMError, check_fraction, check_positive
from kgllm.lit.base import KGLitModule
from kgllm.tasks.mlm import MaskedLM


class MLMModule(KGLitModule):
    """Knowledge-aware pretraining on the fused encoder.

    The loss is ``mlm_weight * MLM + entity_weight * entity prediction + linkpred_weight * link
    prediction``:

    * MLM logits are computed at masked positions only (the same ``cls`` head as
      ``BertForMaskedLM``, applied to fewer rows); the masking (:mod:`kgllm.tasks.mlm`) is the
      datamodule's ``masking`` and ``mlm_probability``;
    * entity prediction (ERNIE's dEA): each masked token that was linked predicts its KG node
      among all nodes linked in the batch, scored against their input embeddings;
    * link prediction (as in DRAGON): DistMult on the encoded batch subgraph, each edge against
      its tail corrupted to a random node of the batch (binary cross-entropy).

    With ``copy_head`` the MLM distribution at each masked position is the KG copy head's mixture
    (:class:`~kgllm.nn.copy_head.KGCopyHead`) of the vocabulary and the label wordpieces of the
    example's subgraph nodes, and the MLM loss is its negative log-likelihood, plus
    ``copy_gate_weight`` times a binary cross-entropy that teaches the gate where copying is right
    (the masked wordpiece is a candidate node's label piece at that offset); it works with
    ``fusion: none`` (the graph encoder is then built for the head alone) and with every fusion
    block. The probe reads the mixture with the KG on and the plain vocabulary with it off.

    Metrics: ``{stage}/loss`` (total), ``{stage}/mlm_loss`` (mean over masked tokens),
    ``{stage}/acc`` (masked-token accuracy), ``val/ppl``; ``{stage}/entity_loss`` and
    ``{stage}/linkpred_loss`` when weighted in.

    Args:
        mlm_weight: weight of the MLM loss (above).
        entity_weight: weight of the masked-entity loss (above).
        linkpred_weight: weight of the link-prediction loss (above).
        fresh_mlm_head: with ``backbone: minilm``, keep the randomly initialised MLM head instead of
            the one trained by ``kgllm prepare-backbone`` and shipped with kgllm (for comparison).
        copy_head: add the KG copy head (above).
        copy_gate_weight: weight of the copy gate's supervision (above).
        copy_fact_dropout: in training, the share of examples whose masked answer is removed from the
            copy head's candidates (as if the fact were missing from the graph): the gate learns to
            close, and the vocabulary to answer, when the graph lacks the fact (0 = off).
        copy_gate_relation: the copy gate also reads, apart, how well the best candidate's relation
            fits the masked state (``gate_reads_relation`` of the head), so a neighbour of the right
            type reached by another relation need not hold it open when the asked edge is missing.
        copy_counterfactual: in training, the share of masked answers that the graph also holds which
            are swapped, in the graph and in the target alike, for another answer of the same
            relation in the batch (:func:`kgllm.nn.copy_head.counterfactual_swap`): the model learns
            to trust the graph over what its weights remember, which edits of the graph need (0 = off).

    The options before ``mlm_weight`` (``backbone`` ... ``allow_other_kg``) are
    :class:`~kgllm.lit.base.KGLitModule`'s, documented there (a test keeps the signatures equal).
    """

    def __init__(self, backbone: str | None = None, kg_dir: str | None = None, fusion: str = "gated",
                 fusion_layers: list[int] = [-2], gnn_hidden: int = 128, gnn_layers: int = 2, gnn_heads: int = 4,
                 gnn_dropout: float = 0.1, fusion_dropout: float = 0.1, lr: float = 5e-5, kg_lr: float = 1e-3,
                 weight_decay: float = 0.01, warmup_ratio: float = 0.1, freeze_backbone: bool = False,
                 init_from: str | None = None, graph_encoder_from: str | None = None, graph_encoder: str = "gat",
                 node_embeddings_from: str | None = None, node_features: str = "id", graph_input: bool = True,
                 peft: str = "none", peft_r: int = 8,
                 lora_r: int = 0, lora_alpha: int = 16, backbone_dropout: float | None = None,
                 allow_other_kg: bool = False, *,
                 mlm_weight: float = 1.0, entity_weight: float = 0.0, linkpred_weight: float = 0.0,
                 fresh_mlm_head: bool = False, copy_head: bool = False, copy_gate_weight: float = 1.0,
                 copy_fact_dropout: float = 0.0, copy_gate_relation: bool = False,
                 copy_counterfactual: float = 0.0) -> None:
        super().__init__(backbone=backbone, kg_dir=kg_dir, fusion=fusion, fusion_layers=fusion_layers,
                         gnn_hidden=gnn_hidden, gnn_layers=gnn_layers, gnn_heads=gnn_heads, gnn_dropout=gnn_dropout,
                         fusion_dropout=fusion_dropout, lr=lr, kg_lr=kg_lr, weight_decay=weight_decay,
                         warmup_ratio=warmup_ratio, freeze_backbone=freeze_backbone, init_from=init_from,
                         graph_encoder_from=graph_encoder_from, graph_encoder=graph_encoder,
                         node_embeddings_from=node_embeddings_from, node_features=node_features,
                         graph_input=graph_input, peft=peft, peft_r=peft_r, lora_r=lora_r, lora_alpha=lora_alpha,
                         backbone_dropout=backbone_dropout, allow_other_kg=allow_other_kg)
        check_positive(allow_zero=True, copy_gate_weight=copy_gate_weight)
        check_fraction(copy_fact_dropout=copy_fact_dropout, copy_counterfactual=copy_counterfactual)
        if copy_fact_dropout and not copy_head:
            raise ConfigError("copy_fact_dropout needs copy_head: true")
        if copy_counterfactual and not copy_head:
            raise ConfigError("copy_counterfactual needs copy_head: true")
        if copy_gate_relation and not copy_head:
            raise ConfigError("copy_gate_relation needs copy_head: true")
        self.kg_copy_head: torch.nn.Module | None = None
        self.metrics = torch.nn.ModuleDict({f"{s}_{m}": MeanMetric() for s in ("train", "val", "test")
                                            for m in ("loss", "acc")})
        # evaluation total loss as a metric state (exact across DDP ranks); train logs the tensor
        self.metrics.update({f"{s}_total": MeanMetric() for s in ("val", "test")})
        self.kg_entity_head: torch.nn.Module | None = None
        self.kg_lp_rel: torch.nn.Module | None = None
        self.task_spec = MaskedLM(fresh_head=fresh_mlm_head)

    def reads_graph(self) -> bool:
        return bool(self.hparams.get("copy_head"))

    def build_heads(self) -> None:
        hp, enc = self.hparams, self.model.kg_encoder
        if hp.get("copy_head"):
            from kgllm.nn.copy_head import KGCopyHead

            if enc is None:
                raise KGLLMError("copy_head needs the graph (graph_input: true)")
            self.kg_copy_head = KGCopyHead(self.model.hf.config.hidden_size, enc.hidden_channels, enc.num_relations,
                                           gate_reads_relation=bool(hp.get("copy_gate_relation", False)))
            self.register_buffer("kg_label_pieces", self.label_piece_table(), persistent=False)
        if hp.entity_weight and enc is not None and hasattr(enc, "embed_nodes"):
            self.kg_entity_head = torch.nn.Linear(self.model.hf.config.hidden_size, enc.hidden_channels)
        if hp.linkpred_weight and enc is not None:
            self.kg_lp_rel = torch.nn.Embedding(max(enc.num_relations, 1), enc.hidden_channels)

    def build_hf(self):
        return self.task_spec.build_hf(self.hparams.backbone, hf_kwargs=self.hf_kwargs())

    def head_reads(self) -> str:
        return self.task_spec.head_reads

    def head_modules(self) -> list:
        return self.task_spec.head_modules(self.model.hf, None)

    def _entity_loss(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        sel = targets >= 0  # (B, T)
        if not sel.any():  # still touch the head, so no parameter goes unused in a step (DDP)
            return sum(p.sum() for p in self.kg_entity_head.parameters()) * 0.0
        candidates = torch.unique(targets[sel])  # (C,)
        keys = self.model.kg_encoder.embed_nodes(candidates)  # (C, D)
        logits = self.kg_entity_head(hidden[sel]) @ keys.t()  # (M, C)
        return F.cross_entropy(logits, torch.searchsorted(candidates, targets[sel]))

    def _linkpred_loss(self, graph) -> torch.Tensor:
        z = self.model.encoded_nodes  # (N, D)
        if z is None or graph.edge_index.size(1) == 0:
            return self.kg_lp_rel.weight.sum() * 0.0
        h, t = graph.edge_index
        rel = self.kg_lp_rel(graph.edge_type)
        corrupt = torch.randint(z.size(0), t.shape, device=t.device)
        pos = (z[h] * rel * z[t]).sum(-1)
        neg = (z[h] * rel * z[corrupt]).sum(-1)
        scores = torch.cat([pos, neg])
        target = torch.cat([torch.ones_like(pos), torch.zeros_like(neg)])
        return F.binary_cross_entropy_with_logits(scores, target)

    def _graph_views(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The batch graph's linked nodes :math:`(N,)` bool, each node's example :math:`(N,)` and its
        label pieces :math:`(N, P)` (the batch's own rows if its loader gathered them, else the table's)."""
        from kgllm.nn.kgbert import node_pieces_of

        graph, token_node = batch["graph"], batch["token_node"]
        linked = torch.zeros(graph.n_id.size(0), dtype=torch.bool, device=graph.n_id.device)
        linked[token_node[token_node >= 0]] = True
        node_batch = graph.batch if graph.batch is not None else torch.zeros_like(graph.n_id)
        pieces = node_pieces_of(graph)
        if pieces is None:
            pieces = self.kg_label_pieces[graph.n_id.clamp(max=self.kg_label_pieces.size(0) - 1)]  # (N, P)
        return linked, node_batch, pieces

    def _copy(self, hidden: torch.Tensor, sel: torch.Tensor, logits: torch.Tensor, batch: dict,
              target: torch.Tensor | None = None, hide: torch.Tensor | None = None):
        """Log-probabilities of the copy head's mixture at the ``sel`` positions, :math:`(M, V)` (with
        ``target``, also the gate's supervision loss)."""
        from kgllm.nn.copy_head import mask_offsets

        graph = batch["graph"]
        linked, node_batch, pieces = self._graph_views(batch)
        example = torch.arange(sel.size(0), device=sel.device).unsqueeze(1).expand_as(sel)[sel]  # (M,)
        return self.kg_copy_head(hidden[sel], logits, example, mask_offsets(sel)[sel], self.model.encoded_nodes,
                                 node_batch, pieces, linked, graph.edge_index, graph.edge_type, gate_target=target,
                                 hide_target=None if hide is None else hide[example])

    @torch.no_grad()
    def masked_token_logits(self, batch: dict, mask_token_id: int, use_kg: bool = True) -> torch.Tensor:
        """Vocabulary scores at every ``mask_token_id`` position of a collated batch, :math:`(M, V)`,
        with the KG fused (``use_kg``) or switched off at inference (the LAMA probe's two readings):
        logits, or with the copy head and the KG on, the mixture's log-probabilities."""
        inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        if use_kg:
            inputs.update(graph=batch["graph"], token_node=batch["token_node"])
        hidden = self.model.encode(**inputs)  # (B, T, H)
        sel = batch["input_ids"] == mask_token_id
        logits = self.model.hf.cls(hidden[sel])
        if use_kg and self.kg_copy_head is not None and self.model.encoded_nodes is not None:
            return self._copy(hidden, sel, logits, batch)
        return logits

    def _counterfactual(self, batch: dict) -> tuple[dict, torch.Tensor]:
        """The batch with counterfactual answers swapped in (``copy_counterfactual``), and which
        examples got one, :math:`(B,)`."""
        from kgllm.nn.copy_head import counterfactual_swap

        graph = batch["graph"]
        linked, node_batch, pieces = self._graph_views(batch)
        labels, pieces, swapped = counterfactual_swap(batch["labels"], pieces, node_batch, linked, graph.edge_index,
                                                      graph.edge_type, self.hparams.copy_counterfactual)
        graph.node_pieces = pieces  # read by the lm node inputs and by the copy head
        self.log("train/counterfactual_share", swapped.float().mean(), on_step=False, on_epoch=True,
                 batch_size=labels.size(0))
        return {**batch, "labels": labels}, swapped

    def _step(self, batch: dict, stage: str) -> torch.Tensor:
        hp = self.hparams
        swapped = None
        if stage == "train" and hp.get("copy_counterfactual", 0.0) and self.kg_copy_head is not None \
                and batch.get("graph") is not None:
            batch, swapped = self._counterfactual(batch)
        hidden = self.model.encode(**self.fused_inputs(batch))  # (B, T, H)
        labels = batch["labels"]
        sel = labels != -100  # (B, T)
        logits = self.model.hf.cls(hidden[sel])  # (M, V)
        target = labels[sel]
        gate = None
        if self.kg_copy_head is not None and self.model.encoded_nodes is not None:
            rate = hp.get("copy_fact_dropout", 0.0)
            hide = torch.rand(sel.size(0), device=sel.device) < rate if stage == "train" and rate else None  # (B,)
            if hide is not None and swapped is not None:
                hide = hide & ~swapped  # a swapped answer is only in the graph: never hidden from it
            logits, gate = self._copy(hidden, sel, logits, batch, target, hide)  # log-probabilities of the mixture
            mlm = F.nll_loss(logits, target) if target.numel() else hidden.sum() * 0.0 + logits.sum() * 0.0
        else:
            mlm = F.cross_entropy(logits, target) if target.numel() else hidden.sum() * 0.0
        loss = hp.mlm_weight * mlm
        n = max(int(target.numel()), 1)
        log = dict(batch_size=n, on_epoch=True, on_step=False, sync_dist=stage != "train")
        if self.kg_entity_head is not None:
            entity = self._entity_loss(hidden, batch["entity_targets"])
            loss = loss + hp.entity_weight * entity
            self.log(f"{stage}/entity_loss", entity, **log)
        if gate is not None and target.numel() and hp.get("copy_gate_weight", 0.0):
            loss = loss + hp.copy_gate_weight * gate
            self.log(f"{stage}/copy_gate_loss", gate, **log)
        if self.kg_lp_rel is not None:
            lp = self._linkpred_loss(batch["graph"])
            loss = loss + hp.linkpred_weight * lp
            self.log(f"{stage}/linkpred_loss", lp, **log)
        # micro accuracy as a count-weighted mean (MeanMetric): torchmetrics' MulticlassAccuracy would
        # need the vocabulary as its class count for the same number
        acc = (logits.argmax(-1) == target).float().mean() if target.numel() else mlm.detach()
        self.metrics[f"{stage}_loss"].update(mlm.detach(), n)
        self.metrics[f"{stage}_acc"].update(acc, n)
        if stage == "train":
            self.log("train/loss", loss, prog_bar=True, batch_size=n, on_step=True, on_epoch=True, sync_dist=True)
        else:  # a metric state: exact over ranks that hold different numbers of examples
            self.metrics[f"{stage}_total"].update(loss.detach(), n)
            self.log(f"{stage}/loss", self.metrics[f"{stage}_total"], prog_bar=True, on_step=False, on_epoch=True)
        self.log(f"{stage}/mlm_loss", self.metrics[f"{stage}_loss"], **log)
        self.log(f"{stage}/acc", self.metrics[f"{stage}_acc"], **log)
        return loss

    def on_validation_epoch_end(self) -> None:
        metric = self.trainer.callback_metrics.get("val/mlm_loss")
        if metric is not None:
            self.log("val/ppl", torch.exp(metric.detach()))
