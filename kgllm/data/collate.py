"""Collate feature dicts into a text batch plus a PyG ``Batch`` of per-example subgraphs.

What differs between tasks -- MLM masking, per-token or per-example labels, marker positions --
is the task's (:mod:`kgllm.tasks`, e.g. :mod:`kgllm.tasks.mlm` for the masking scheme). Each
example's random choices come from a generator seeded by the example and the epoch: validation
batches are masked with a per-example seed, so every epoch and every ablation arm sees the same
masks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import torch
from torch_geometric.data import Batch

from kgllm.data.subgraph import SubgraphSampler

if TYPE_CHECKING:  # pragma: no cover
    from kgllm.tasks import Task


class KGCollator:
    """Pad text, apply the task's per-example step (MLM masking), cut subgraphs, and map token
    links to rows of the graph batch.

    Args:
        tokenizer: the tokenizer the features were made with.
        sampler: cuts each example's subgraph around its linked nodes.
        task: a :class:`~kgllm.tasks.base.Task` or a task name.
        eval_seed: with a value, example ``i`` uses the generator seeded ``eval_seed + i`` (fixed
            validation masks); else ``train_seed`` seeds it with the example and ``epoch()``.

    Returns a dict with ``input_ids`` (B, T), ``attention_mask`` (B, T), ``token_node`` (B, T)
    (row in ``graph`` or -1), ``graph`` (PyG ``Batch``: ``n_id``, ``edge_index``, ``edge_type``)
    and the task's keys: ``labels`` ((B, T) for MLM with -100 off the masks and for token
    classification; (B,) for sequence and relation classification; none for ``cloze``), MLM's
    ``entity_targets`` (B, T), relation classification's ``head_pos`` / ``tail_pos`` (B,).
    """

    def __init__(self, tokenizer, sampler: SubgraphSampler, task: "Task | str", eval_seed: int | None = None,
                 train_seed: int | None = None, epoch: Callable[[], int] | None = None) -> None:
        from kgllm.tasks import get_task

        self.pad_id = tokenizer.pad_token_id
        self.sampler = sampler
        self.task = get_task(task).setup(tokenizer)
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

    def __call__(self, feats: list[dict]) -> dict:
        B, T = len(feats), max(len(f["input_ids"]) for f in feats)
        input_ids = torch.full((B, T), self.pad_id, dtype=torch.long)
        attention = torch.zeros(B, T, dtype=torch.long)
        token_node = torch.full((B, T), -1, dtype=torch.long)
        targets = {k: torch.full((B, T), fill, dtype=torch.long) for k, fill in self.task.token_fill.items()}
        graphs = []
        for b, f in enumerate(feats):
            ids, nodes, per_token = self.task.transform(f, self._generator(f, b))
            for k, values in per_token.items():
                targets[k][b, :len(values)] = torch.tensor(values)
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
        batch = {"input_ids": input_ids, "attention_mask": attention, "token_node": token_node, "graph": graph,
                 "idx": torch.tensor([int(f.get("idx", b)) for b, f in enumerate(feats)], dtype=torch.long),
                 **targets}
        self.task.collate(batch, feats)
        padding = torch.tensor([bool(f.get("padding")) for f in feats])
        if padding.any():  # evaluation padding under DDP (data/sampler.py): scored by no metric
            self.task.ignore(batch, padding)
        return batch
