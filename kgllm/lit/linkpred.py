"""Self-supervised link prediction: GAT encoder (or plain embeddings) + decoder, filtered ranking."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import torch
from torch import Tensor
from torch.nn import functional as F
from torchmetrics.aggregation import CatMetric

from kgllm.util.errors import KGLLMError, check_fraction, check_positive
from kgllm.nn.decoders import build_decoder
from kgllm.nn.exported import save_exported
from kgllm.nn.graph_encoder import RelGATEncoder

log = logging.getLogger(__name__)
ENCODERS = ("gat", "none")


def ranks_from_scores(scores: Tensor, target: Tensor, filter_index: Tensor) -> Tensor:
    """Filtered rank of ``target`` in each row of ``scores`` :math:`(B, N)`; ties count half.

    ``filter_index`` :math:`(2, F)` lists (row, entity) pairs to ignore (other known answers).
    """
    scores = scores.clone()
    scores[filter_index[0], filter_index[1]] = float("-inf")
    true = scores.gather(1, target.view(-1, 1))  # (B, 1)
    greater = (scores > true).sum(1)
    equal = (scores == true).sum(1) - 1
    return 1 + greater + equal / 2


class LinkPredModule(L.LightningModule):
    """Link prediction with 1-vs-all cross-entropy over reciprocal queries.

    Args:
        encoder: ``gat`` (relation-aware GATv2 over the training graph) or ``none`` (plain entity
            embeddings: the decoder alone, trained the same way).
        decoder: ``distmult``, ``complex``, ``transe`` or ``rotate``.
        dim: entity embedding width.
        gnn_layers, gnn_heads, dropout: the GAT.
        node_features: ``id``, ``text`` (inductive) or ``both``; text needs ``data.text_backbone``.
        lr, weight_decay: AdamW.
        label_smoothing: on the 1-vs-all targets.
        entity_dropout: dropout on entity embeddings before scoring.
        num_negatives: with ``sampled=True``, candidates per batch (plus the batch's answers).
        sampled: bounded-memory training: the GAT runs on capped k-hop subgraphs around the batch's
            entities and candidates (``num_hops``, ``max_neighbors`` per node, ``max_nodes``, walked
            edges only) instead of the whole graph.

    Metrics: ``{val,test}/mrr``, ``hits@1``, ``hits@3``, ``hits@10`` (filtered, both directions), and
    ``mrr_tail`` / ``mrr_head`` per direction.
    """

    def __init__(self, encoder: str = "gat", decoder: str = "distmult", dim: int = 200, gnn_layers: int = 2,
                 gnn_heads: int = 4, dropout: float = 0.1, node_features: str = "id", lr: float = 1e-3,
                 weight_decay: float = 0.0, label_smoothing: float = 0.1, entity_dropout: float = 0.1,
                 sampled: bool = False, num_negatives: int = 1024, num_hops: int = 2, max_neighbors: int = 3,
                 max_nodes: int = 50_000,
                 num_entities: int | None = None, num_relations: int | None = None) -> None:
        super().__init__()
        if encoder not in ENCODERS:
            raise KGLLMError(f"encoder must be one of {ENCODERS}, got {encoder!r}")
        check_positive(dim=dim, gnn_layers=gnn_layers, gnn_heads=gnn_heads, lr=lr, num_negatives=num_negatives,
                       max_nodes=max_nodes)
        check_positive(allow_zero=True, weight_decay=weight_decay, num_hops=num_hops, max_neighbors=max_neighbors)
        check_fraction(below_one=True, dropout=dropout, entity_dropout=entity_dropout, label_smoothing=label_smoothing)
        self.save_hyperparameters()
        self.encoder: RelGATEncoder | None = None
        self.decoder = None
        self.ranks = torch.nn.ModuleDict({s: CatMetric() for s in ("val_tail", "val_head", "test_tail", "test_head")})
        self._z: Tensor | None = None

    # -- building --------------------------------------------------------------
    def configure_model(self) -> None:
        if self.encoder is not None:
            return
        hp = self.hparams
        dm = self._trainer.datamodule if self._trainer is not None else None
        hp.num_entities = hp.num_entities or dm.num_entities
        hp.num_relations = hp.num_relations or dm.num_relations
        text = getattr(dm, "text_features", None)
        if hp.node_features != "id" and text is None:
            if dm is None or getattr(dm, "splits", None) is None:
                raise KGLLMError(f"node_features={hp.node_features!r} needs entity texts: attach a datamodule "
                                 "(and set data.text_backbone to choose the encoder)")
            text = dm.entity_text_features()
        self.encoder = RelGATEncoder(hp.num_entities, hp.num_relations, hp.dim,
                                     hp.gnn_layers if hp.encoder == "gat" else 0, hp.gnn_heads, hp.dropout,
                                     node_features=hp.node_features,
                                     text_dim=text.size(1) if text is not None else None)
        if text is not None and hp.node_features != "id":
            self.encoder.set_text_features(text)
        self.decoder = build_decoder(hp.decoder, hp.num_relations, hp.dim)

    def setup(self, stage: str) -> None:
        self.setup_graph(self.trainer.datamodule)

    def setup_graph(self, dm) -> None:
        """Take the training (and inference) graph from ``dm`` and build the subgraph sampler."""
        self._graph = dm.graph()
        self._inference_graph = dm.graph(inference=True)
        if self.hparams.sampled:
            from torch_geometric.data import Data

            from kgllm.data.subgraph import SubgraphConfig
            from kgllm.data.subgraph import SubgraphSampler

            ei, et = self._graph
            cfg = SubgraphConfig(self.hparams.num_hops, self.hparams.max_neighbors, self.hparams.max_nodes,
                                 edges="sampled", sample="random")
            graph = Data(edge_index=ei, edge_type=et, num_nodes=self.hparams.num_entities)
            self.sampler = SubgraphSampler(graph, cfg, seed=int(torch.initial_seed()) % 2 ** 32)

    # -- encoding ----------------------------------------------------------------
    def encode_all(self, inference: bool = False) -> Tensor:
        """Embeddings of every entity, :math:`(N, D)`: one pass over the graph, or chunk by chunk over
        sampled subgraphs (bounded memory) when ``sampled``."""
        ei, et = self._inference_graph if inference else self._graph
        ei, et = ei.to(self.device), et.to(self.device)
        n = self.hparams.num_entities
        if not self.hparams.sampled or self.encoder.num_layers == 0:
            return self.encoder(torch.arange(n, device=self.device), ei, et)
        out = torch.empty(n, self.hparams.dim, device=self.device)
        for start in range(0, n, 1024):
            ids = torch.arange(start, min(start + 1024, n))
            z, pos = self.encode_subgraph(ids)
            out[ids] = z[pos]
        return out

    def encode_subgraph(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        """Embeddings of a capped k-hop subgraph around ``ids`` and the rows of ``ids`` in it."""
        sub = self.sampler(ids.tolist())
        z = self.encoder(sub.n_id.to(self.device), sub.edge_index.to(self.device), sub.edge_type.to(self.device))
        local = {v: i for i, v in enumerate(sub.n_id.tolist())}
        return z, torch.tensor([local[int(v)] for v in ids], device=self.device)

    # -- training ----------------------------------------------------------------
    def training_step(self, batch, batch_idx: int) -> Tensor:
        (queries,) = batch
        h, r, t = queries.t()
        if self.hparams.sampled:
            loss = self._sampled_loss(h, r, t)
        else:
            z = F.dropout(self.encode_all(), self.hparams.entity_dropout, self.training)
            logits = self.decoder.score(z[h], r, z)  # (B, N)
            loss = F.cross_entropy(logits, t, label_smoothing=self.hparams.label_smoothing)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(h))
        return loss

    def _sampled_loss(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        negatives = torch.randint(self.hparams.num_entities, (self.hparams.num_negatives,), device=h.device)
        candidates = torch.unique(torch.cat([t, negatives]))  # (C,)
        ids = torch.unique(torch.cat([h, candidates]))
        z, pos = self.encode_subgraph(ids)
        row = {int(v): i for i, v in enumerate(ids.tolist())}
        zc = z[pos[[row[int(v)] for v in candidates.tolist()]]]  # (C, D)
        zh = z[pos[[row[int(v)] for v in h.tolist()]]]  # (B, D)
        target = torch.searchsorted(candidates, t)
        logits = self.decoder.score(F.dropout(zh, self.hparams.entity_dropout, self.training), r, zc)
        return F.cross_entropy(logits, target, label_smoothing=self.hparams.label_smoothing)

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)

    # -- evaluation --------------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        self._z = self.encode_all()

    def on_test_epoch_start(self) -> None:
        self._z = self.encode_all(inference=True)

    def _eval_step(self, batch: dict, stage: str) -> None:
        h, r, t = batch["queries"].t()
        ranks = ranks_from_scores(self.decoder.score(self._z[h], r, self._z), t, batch["filter"])
        direction = batch["direction"]
        self.ranks[f"{stage}_tail"].update(ranks[direction == 0].float())
        self.ranks[f"{stage}_head"].update(ranks[direction == 1].float())

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def _log_ranks(self, stage: str) -> None:
        tail, head = (self.ranks[f"{stage}_{d}"].compute() for d in ("tail", "head"))
        tail, head = (torch.as_tensor(x, dtype=torch.float, device=self.device) for x in (tail, head))
        both = torch.cat([tail.view(-1), head.view(-1)])
        metrics = {f"{stage}/mrr": (1 / both).mean(), f"{stage}/mrr_tail": (1 / tail).mean(),
                   f"{stage}/mrr_head": (1 / head).mean()}
        metrics.update({f"{stage}/hits@{k}": (both <= k).float().mean() for k in (1, 3, 10)})
        self.log_dict(metrics, prog_bar=stage == "val")
        self.ranks[f"{stage}_tail"].reset()
        self.ranks[f"{stage}_head"].reset()
        self._z = None

    def on_validation_epoch_end(self) -> None:
        self._log_ranks("val")

    def on_test_epoch_end(self) -> None:
        self._log_ranks("test")

    # -- checkpoints -----------------------------------------------------------------
    def _kg_identity(self) -> str | None:
        from kgllm.kg.graph.folder import kg_identity

        dm = self._trainer.datamodule if self._trainer is not None else None
        splits = getattr(dm, "splits", None)
        return kg_identity(splits.entities, splits.relations) if splits is not None else None

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        from kgllm.lit.runtime import checkpoint_metadata

        checkpoint["kg_meta"] = {"identity": self._kg_identity()}
        checkpoint["kgllm"] = checkpoint_metadata(self._trainer, self)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Entity rows are only restored onto the graph they were trained on (no remapping here)."""
        from kgllm.nn.checkpoints import CheckpointError

        src, own = (checkpoint.get("kg_meta") or {}).get("identity"), self._kg_identity()
        if own is not None and src != own:
            raise CheckpointError(f"checkpoint: trained on {'an unrecorded graph' if src is None else f'graph {src}'}"
                                  f", but this run's graph is {own}; link-prediction checkpoints only load onto "
                                  "the graph they were trained on")

    # -- export --------------------------------------------------------------------
    def export(self, folder: str | Path, entities: list[str], relations: list[str], meta: dict | None = None) -> Path:
        """Save encoder, decoder and entity embeddings with the id maps (format: :mod:`kgllm.nn.exported`)."""
        was_training = self.training
        self.eval()
        with torch.no_grad():
            z = self.encode_all(inference=True).cpu()
        self.train(was_training)
        hp = self.hparams
        return save_exported(folder, dict(hp), self.encoder.state_dict(), self.decoder.state_dict(), z, entities,
                             relations, {**(meta or {}), "encoder": hp.encoder, "decoder": hp.decoder, "dim": hp.dim})


class ExportEncoder(L.Callback):
    """Export the trained encoder, decoder and embeddings with the id maps when fitting ends.

    Args:
        folder: output folder (replaced atomically); a fusion model can start from it with
            ``model.init_args.graph_encoder_from``.
    """

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def on_fit_end(self, trainer: L.Trainer, pl_module: LinkPredModule) -> None:
        if trainer.is_global_zero:
            dm = trainer.datamodule
            meta = {"dataset": dm.hparams.dataset, "kg_dir": dm.hparams.kg_dir}
            pl_module.export(self.folder, dm.splits.entities, dm.splits.relations, meta)
            log.info("exported encoder to %s", self.folder)
