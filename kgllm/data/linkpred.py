"""Link-prediction data: benchmark splits, reciprocal queries, filtered-ranking indices, DataModule.

Benchmarks live under ``$KGLLM_DATA/kg/<name>``: ``nations``, ``kinships``, ``umls``
(``head<TAB>relation<TAB>tail`` files) and ``wn18rr``, ``fb15k237`` (OpenKE id files with
entity texts). A KG folder written by kgllm can be split at random instead (``kg_dir``).

Training queries are ``(h, r, t)`` and their reciprocals ``(t, r + R, h)``; evaluation ranks
the true answer of both query directions against all entities, *filtered*: other entities
known to answer the same query in train, valid or test are ignored (Bordes et al. 2013).

``holdout_entities`` makes the split inductive: a seeded share of entities disappears from
training with all their triples; half of each held-out entity's triples are given at test time
as its neighbourhood (``support``) and the other half are the test queries.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from kgllm.data.sampler import EpochSampler, Padded, ShardSampler
from kgllm.util.errors import KGFormatError, check_positive
from kgllm.kg.graph.folder import entity_texts
from kgllm.util.paths import dataset_file

log = logging.getLogger(__name__)
TSV_BENCHMARKS = ("nations", "kinships", "umls")
OPENKE_BENCHMARKS = ("wn18rr", "fb15k237")


@dataclass
class TripleSplits:
    """Integer triples ``(h, r, t)`` per split, with the id maps and entity texts."""

    entities: list[str]
    relations: list[str]
    train: Tensor
    valid: Tensor
    test: Tensor
    texts: list[str] = field(default_factory=list)
    support: Tensor | None = None  # inductive: neighbourhood of held-out entities, given at test time
    held_out: Tensor | None = None  # inductive: ids of held-out entities

    @property
    def num_entities(self) -> int:
        return len(self.entities)

    @property
    def num_relations(self) -> int:
        return len(self.relations)


def _from_kg(kg, name: str) -> TripleSplits:
    splits: dict[str, list] = {"train": [], "valid": [], "test": []}
    for (h, r, t), edge in kg.edges.items():
        src = edge.provenance[0][0] if edge.provenance else ""
        split = next((s for s in ("valid", "test") if src.split("/")[-1].startswith(s)), "train")
        splits[split].append((h, r, t))
    texts = entity_texts(kg)
    as_tensor = {k: torch.tensor(v, dtype=torch.long).view(-1, 3) for k, v in splits.items()}
    if not len(as_tensor["test"]):
        raise KGFormatError(f"{name}: no test triples")
    return TripleSplits([e.key for e in kg.entities], list(kg.relations), as_tensor["train"], as_tensor["valid"],
                        as_tensor["test"], texts)


def load_benchmark(name: str, data_dir=None) -> TripleSplits:
    """A link-prediction benchmark ``$KGLLM_DATA/kg/<name>`` with its fixed train/valid/test split:
    ``train.txt`` etc. (``head<TAB>relation<TAB>tail``) or OpenKE ``train2id.txt`` etc."""
    from kgllm.kg.sources.imports import import_openke, import_tsv

    folder = dataset_file("kg", name, root=data_dir)
    if (folder / "train.txt").is_file():
        return _from_kg(import_tsv(folder, name=name), name)
    if (folder / "train2id.txt").is_file():
        return _from_kg(import_openke(folder, name=name), name)
    raise KGFormatError(f"{folder}: no train.txt (TSV triples) or train2id.txt (OpenKE); known benchmarks: "
                        f"{', '.join(TSV_BENCHMARKS + OPENKE_BENCHMARKS)}")


def random_split(kg_dir: str | Path, valid: float = 0.05, test: float = 0.05, seed: int = 0) -> TripleSplits:
    """Split a kgllm KG folder's edges at random (seeded)."""
    from kgllm.kg.graph.store import KnowledgeGraph

    kg = KnowledgeGraph.load(kg_dir)
    triples = torch.tensor(list(kg.edges), dtype=torch.long).view(-1, 3)
    perm = torch.randperm(len(triples), generator=torch.Generator().manual_seed(seed))
    n_va, n_te = int(len(triples) * valid), max(int(len(triples) * test), 1)
    te, va, tr = perm[:n_te], perm[n_te:n_te + n_va], perm[n_te + n_va:]
    texts = entity_texts(kg)
    return TripleSplits([e.key for e in kg.entities], list(kg.relations), triples[tr], triples[va], triples[te], texts)


def hold_out_entities(splits: TripleSplits, share: float, seed: int = 0) -> TripleSplits:
    """Inductive variant: remove a share of entities (and all their triples) from training."""
    g = torch.Generator().manual_seed(seed)
    everything = torch.cat([splits.train, splits.valid, splits.test])
    n = max(1, int(splits.num_entities * share))
    held = torch.randperm(splits.num_entities, generator=g)[:n]
    is_held = torch.zeros(splits.num_entities, dtype=torch.bool)
    is_held[held] = True
    touch = is_held[everything[:, 0]] | is_held[everything[:, 2]]
    both = is_held[everything[:, 0]] & is_held[everything[:, 2]]
    keep = everything[~touch]
    inductive = everything[touch & ~both]  # exactly one end unseen
    order = torch.randperm(len(inductive), generator=g)
    inductive = inductive[order]
    support, query = inductive[::2], inductive[1::2]
    n_valid = max(1, len(keep) // 20)
    perm = torch.randperm(len(keep), generator=g)
    return TripleSplits(splits.entities, splits.relations, keep[perm[n_valid:]], keep[perm[:n_valid]], query,
                        splits.texts, support=support, held_out=held)


def reciprocal(triples: Tensor, num_relations: int) -> Tensor:
    """Queries ``(h, r, t)`` and ``(t, r + R, h)``: :math:`(2n, 3)`."""
    inverse = torch.stack([triples[:, 2], triples[:, 1] + num_relations, triples[:, 0]], dim=1)
    return torch.cat([triples, inverse])


def known_answers(splits: TripleSplits) -> dict[tuple[int, int], list[int]]:
    """Every answer of every query ``(h, r)`` (reciprocal relations included) across all splits."""
    everything = [splits.train, splits.valid, splits.test] + ([splits.support] if splits.support is not None else [])
    out: dict[tuple[int, int], list[int]] = {}
    for h, r, t in reciprocal(torch.cat(everything), splits.num_relations).tolist():
        out.setdefault((h, r), []).append(t)
    return out


class LinkPredDataModule(L.LightningDataModule):
    """Training queries (with reciprocals), and evaluation queries with their filter lists.

    Args:
        dataset: a benchmark folder under ``$KGLLM_DATA/kg`` (``nations``, ``kinships``, ``umls``,
            ``wn18rr``, ``fb15k237``, or any folder in one of those formats), or ``kg`` to split the
            KG folder ``kg_dir`` at random.
        data_dir: dataset root (default ``$KGLLM_DATA``).
        kg_dir: KG folder for ``dataset: kg``.
        batch_size: training queries per batch; ``eval_batch_size`` for ranking.
        holdout_entities: share of entities held out for the inductive setting (0: transductive).
        text_backbone: encode each entity's text (label, description) once with this backbone
            (``minilm``, a local folder, ``tiny``) for text node features; ``None``: only when a
            model asks for them (:meth:`entity_text_features`), with ``minilm``.
        seed: seed of random splits and held-out entities.
    """

    def __init__(self, dataset: str = "umls", data_dir: str | None = None, kg_dir: str | None = None,
                 batch_size: int = 256, eval_batch_size: int = 512, holdout_entities: float = 0.0,
                 text_backbone: str | None = None, seed: int = 0, num_workers: int = 0) -> None:
        super().__init__()
        check_positive(batch_size=batch_size, eval_batch_size=eval_batch_size)
        check_positive(allow_zero=True, holdout_entities=holdout_entities, num_workers=num_workers)
        self.save_hyperparameters()
        self.splits: TripleSplits | None = None
        self.text_features: Tensor | None = None

    @property
    def seed(self) -> int:
        return int(os.environ.get("PL_GLOBAL_SEED", self.hparams.seed))

    def entity_text_features(self) -> Tensor:
        """The entities' text embeddings, :math:`(N, D_t)`: encoded at ``setup`` with ``text_backbone``,
        or now with ``minilm`` when the config named none (the datamodule owns them, not the model)."""
        if self.splits is None:
            raise KGFormatError("entity text features need the data: call setup() first")
        if self.text_features is None:
            from kgllm.nn.text_features import encode_texts

            self.text_features = encode_texts(self.splits.texts, self.hparams.text_backbone or "minilm")
        return self.text_features

    def setup(self, stage: str | None = None) -> None:
        if self.splits is not None:
            return
        hp = self.hparams
        splits = random_split(hp.kg_dir, seed=hp.seed) if hp.dataset == "kg" else load_benchmark(hp.dataset, hp.data_dir)
        if hp.holdout_entities:
            splits = hold_out_entities(splits, hp.holdout_entities, hp.seed)
        self.splits = splits
        self.filters = known_answers(splits)
        if hp.text_backbone:
            from kgllm.nn.text_features import encode_texts

            self.text_features = encode_texts(splits.texts, hp.text_backbone)
        log.info("%s: %d entities, %d relations, %d/%d/%d triples", hp.dataset, splits.num_entities,
                 splits.num_relations, len(splits.train), len(splits.valid), len(splits.test))

    @property
    def num_entities(self) -> int:
        return self.splits.num_entities

    @property
    def num_relations(self) -> int:
        return self.splits.num_relations

    def graph(self, inference: bool = False) -> tuple[Tensor, Tensor]:
        """``edge_index`` :math:`(2, E)` and ``edge_type`` :math:`(E,)` of the training graph; with
        ``inference`` the held-out entities' support triples are added (inductive test)."""
        triples = self.splits.train
        if inference and self.splits.support is not None:
            triples = torch.cat([triples, self.splits.support])
        return triples[:, [0, 2]].t().contiguous(), triples[:, 1].contiguous()

    def train_dataloader(self) -> DataLoader:
        queries = reciprocal(self.splits.train, self.num_relations)
        epoch = lambda: int(self.trainer.current_epoch) if self.trainer is not None else 0  # noqa: E731
        return DataLoader(TensorDataset(queries), batch_size=self.hparams.batch_size,
                          sampler=EpochSampler(len(queries), self.seed, epoch), num_workers=self.hparams.num_workers)

    def _eval_loader(self, triples: Tensor) -> DataLoader:
        queries = reciprocal(triples, self.num_relations)
        direction = torch.cat([torch.zeros(len(triples)), torch.ones(len(triples))]).long()  # 0 tail, 1 head
        # padding under DDP gets direction 2: counted in neither the tail nor the head ranks
        data = Padded(TensorDataset(queries, direction), lambda item: (item[0], torch.tensor(2)))
        return DataLoader(data, batch_size=self.hparams.eval_batch_size,
                          sampler=ShardSampler(len(queries)), collate_fn=self._collate_eval)

    def _collate_eval(self, items) -> dict:
        queries = torch.stack([q for q, _ in items])
        rows, cols = [], []
        for i, (h, r, t) in enumerate(queries.tolist()):
            others = [x for x in self.filters.get((h, r), ()) if x != t]
            rows += [i] * len(others)
            cols += others
        return {"queries": queries, "direction": torch.stack([d for _, d in items]),
                "filter": torch.tensor([rows, cols], dtype=torch.long).view(2, -1)}

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader(self.splits.valid)

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader(self.splits.test)
