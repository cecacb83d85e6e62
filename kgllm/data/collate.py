"""Collate feature dicts into a text batch plus a PyG ``Batch`` of per-example subgraphs.

For MLM the collator also masks: 15% of the wordpieces by default, chosen as
whole units -- an entity mention's wordpieces together (``masking="entity"``),
a word's wordpieces together (``"word"``), or single wordpieces (``"token"``) --
then 80% ``[MASK]``, 10% a random token, 10% unchanged. Masked mention tokens
lose their KG link (``unlink_masked``), so the model cannot read a masked
entity's identity off its own node; its knowledge must come through the graph.
Validation batches are masked with a per-example seed, so every epoch and every
ablation arm sees the same masks.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch_geometric.data import Batch

from kgllm.data.subgraph import SubgraphSampler

MASKING = ("token", "word", "entity")


def mask_units(feat: dict, masking: str) -> list[int]:
    """Per-token masking unit id (tokens sharing an id are masked together); -1 for special tokens."""
    spans, words = feat["span"], feat["word"]
    n_spans = max(spans, default=-1) + 1
    units = []
    for i, (s, w) in enumerate(zip(spans, words)):
        if w < 0:
            units.append(-1)
        elif masking == "entity" and s >= 0:
            units.append(s)
        elif masking in ("entity", "word"):
            units.append(n_spans + w)
        else:
            units.append(n_spans + i)
    return units


def choose_masked(units: Sequence[int], probability: float, gen: torch.Generator) -> list[bool]:
    """Pick whole units in random order until ``probability`` of the maskable tokens are covered."""
    maskable = [u for u in units if u >= 0]
    if not maskable:
        return [False] * len(units)
    target = max(1, round(probability * len(maskable)))
    distinct = sorted(set(maskable))
    chosen, covered = set(), 0
    sizes = {u: maskable.count(u) for u in distinct}
    for k in torch.randperm(len(distinct), generator=gen).tolist():
        if covered >= target:
            break
        chosen.add(distinct[k])
        covered += sizes[distinct[k]]
    return [u in chosen for u in units]


class KGCollator:
    """Pad text, mask for MLM, cut subgraphs, and map token links to rows of the graph batch.

    Returns a dict with ``input_ids`` (B, T), ``attention_mask`` (B, T), ``token_node`` (B, T)
    (row in ``graph`` or -1), ``graph`` (PyG ``Batch``: ``n_id``, ``edge_index``, ``edge_type``),
    ``labels`` ((B, T) for MLM with -100 off the masks and for token classification; none for
    ``cloze``, the probe's fill-in-the-blank texts; (B,) otherwise), for MLM ``entity_targets`` (B, T), and for relation classification ``head_pos`` /
    ``tail_pos`` (B,).
    """

    def __init__(self, tokenizer, sampler: SubgraphSampler, task: str, mlm_probability: float = 0.15,
                 masking: str = "entity", unlink_masked: bool = True, eval_seed: int | None = None,
                 train_seed: int | None = None, epoch: Callable[[], int] | None = None) -> None:
        if masking not in MASKING:
            raise ValueError(f"masking must be one of {MASKING}, got {masking!r}")
        self.pad_id = tokenizer.pad_token_id
        self.mask_id = tokenizer.mask_token_id
        self.vocab_size = len(tokenizer)
        self.sampler = sampler
        self.task = task
        self.mlm_probability = mlm_probability
        self.masking = masking
        self.unlink_masked = unlink_masked
        self.eval_seed = eval_seed
        self.train_seed = train_seed
        self.epoch = epoch or (lambda: 0)

    def _generator(self, feat: dict, b: int) -> torch.Generator | None:
        """Masks depend only on the seed, the example and the epoch -- not on the model or on how a
        run was interrupted -- so every ablation arm and every resumed run sees the same masks
        (``None``: the global RNG)."""
        idx = int(feat.get("idx", b))
        if self.eval_seed is not None:
            return torch.Generator().manual_seed(self.eval_seed + idx)
        if self.train_seed is not None:
            return torch.Generator().manual_seed((self.train_seed * 1_000_003 + idx) * 7919 + self.epoch())
        return None

    def _mask(self, feat: dict, gen: torch.Generator | None) -> tuple[list[int], list[int], list[int], list[int]]:
        ids, nodes = list(feat["input_ids"]), list(feat["token_node"])
        labels = [-100] * len(ids)
        entity = [-1] * len(ids)
        chosen = choose_masked(mask_units(feat, self.masking), self.mlm_probability, gen)
        for i, m in enumerate(chosen):
            if not m:
                continue
            labels[i] = ids[i]
            entity[i] = nodes[i]
            if self.unlink_masked:
                nodes[i] = -1
            r = torch.rand((), generator=gen).item()
            if r < 0.8:
                ids[i] = self.mask_id
            elif r < 0.9:
                ids[i] = int(torch.randint(self.vocab_size, (), generator=gen))
        return ids, nodes, labels, entity

    def __call__(self, feats: list[dict]) -> dict:
        B, T = len(feats), max(len(f["input_ids"]) for f in feats)
        input_ids = torch.full((B, T), self.pad_id, dtype=torch.long)
        attention = torch.zeros(B, T, dtype=torch.long)
        token_node = torch.full((B, T), -1, dtype=torch.long)
        mlm_labels = torch.full((B, T), -100, dtype=torch.long)
        entity_targets = torch.full((B, T), -1, dtype=torch.long)
        graphs = []
        for b, f in enumerate(feats):
            ids, nodes = f["input_ids"], f["token_node"]
            if self.task == "mlm":
                ids, nodes, labels, entity = self._mask(f, self._generator(f, b))
                mlm_labels[b, :len(labels)] = torch.tensor(labels)
                entity_targets[b, :len(entity)] = torch.tensor(entity)
            n = len(ids)
            input_ids[b, :n] = torch.tensor(ids)
            attention[b, :n] = 1
            seeds = list(dict.fromkeys(v for v in nodes if v >= 0))
            g = self.sampler(seeds)
            graphs.append(g)
            local = {int(v): i for i, v in enumerate(g.n_id.tolist())}
            token_node[b, :n] = torch.tensor([local.get(v, -1) if v >= 0 else -1 for v in nodes])
        graph = Batch.from_data_list(graphs)
        offset = graph.ptr[:-1].unsqueeze(1).expand(B, T)  # (B, T)
        token_node = torch.where(token_node >= 0, token_node + offset, token_node)
        batch = {"input_ids": input_ids, "attention_mask": attention, "token_node": token_node, "graph": graph}
        if self.task == "mlm":
            batch["labels"] = mlm_labels
            batch["entity_targets"] = entity_targets  # global node id of masked linked tokens, else -1
        elif self.task == "cloze":  # fill-in-the-blank probing: the text keeps its own [MASK], no labels
            pass
        elif self.task == "token_cls":
            batch["labels"] = torch.full((B, T), -100, dtype=torch.long)
            for b, f in enumerate(feats):
                batch["labels"][b, :len(f["label"])] = torch.tensor(f["label"])
        else:
            batch["labels"] = torch.tensor([f["label"] for f in feats], dtype=torch.long)
        padding = torch.tensor([bool(f.get("padding")) for f in feats])
        if padding.any() and "labels" in batch:  # evaluation padding under DDP (data/sampler.py): scored by no metric
            batch["labels"][padding] = -100
            if "entity_targets" in batch:
                batch["entity_targets"][padding] = -1
        if self.task == "rel_cls":
            batch["head_pos"] = torch.tensor([f["head_pos"] for f in feats], dtype=torch.long)
            batch["tail_pos"] = torch.tensor([f["tail_pos"] for f in feats], dtype=torch.long)
        return batch

