"""Masked language modelling: long texts become consecutive windows; at collate time
``probability`` of each window's wordpieces are masked as whole units -- an entity mention's
wordpieces together (``masking="entity"``), a word's wordpieces together (``"word"``), or single
wordpieces (``"token"``) -- then 80% ``[MASK]``, 10% a random token, 10% unchanged. Masked
mention tokens lose their KG link (``unlink_masked``), so the model cannot read a masked entity's
identity off its own node; its knowledge must come through the graph. The model is
``BertForMaskedLM``; with ``backbone: minilm`` it gets the MLM head shipped with kgllm
(``kgllm prepare-backbone``) unless ``fresh_head``.

Batch keys: ``labels`` (B, T) (the original token at masked positions, else -100) and
``entity_targets`` (B, T) (the KG node of a masked linked token, else -1).
"""

from __future__ import annotations

import logging
from typing import Sequence

import torch

from kgllm.nn.backbone import load_hf_model
from kgllm.tasks.base import Task

log = logging.getLogger(__name__)
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


class MaskedLM(Task):
    """Args:
        probability: share of wordpieces masked.
        masking: the masking unit (``entity``, ``word`` or ``token``).
        unlink_masked: masked mention tokens lose their KG link.
        fresh_head: keep a randomly initialised MLM head instead of the shipped one (``minilm``).
    """

    name = "mlm"
    head_reads = "masked"
    windows = True
    token_fill = {"labels": -100, "entity_targets": -1}

    def __init__(self, probability: float = 0.15, masking: str = "entity", unlink_masked: bool = True,
                 fresh_head: bool = False) -> None:
        if masking not in MASKING:
            raise ValueError(f"masking must be one of {MASKING}, got {masking!r}")
        self.probability = probability
        self.masking = masking
        self.unlink_masked = unlink_masked
        self.fresh_head = fresh_head

    @classmethod
    def for_data(cls, hparams, label_names) -> "MaskedLM":
        return cls(hparams.mlm_probability, hparams.masking)

    def setup(self, tokenizer) -> "MaskedLM":
        self.mask_id = tokenizer.mask_token_id
        self.vocab_size = len(tokenizer)
        return self

    def transform(self, feat, gen):
        ids, nodes = list(feat["input_ids"]), list(feat["token_node"])
        labels = [-100] * len(ids)
        entity = [-1] * len(ids)
        chosen = choose_masked(mask_units(feat, self.masking), self.probability, gen)
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
        return ids, nodes, {"labels": labels, "entity_targets": entity}

    def collate(self, batch, feats):
        """Labels are per token (:meth:`transform`)."""

    def ignore(self, batch, padding):
        super().ignore(batch, padding)
        batch["entity_targets"][padding] = -1

    def build_hf(self, backbone, num_labels=None, dropout=None, hf_kwargs=None):
        from transformers import BertForMaskedLM

        from kgllm.nn.mlm_head import load_head

        model = load_hf_model(BertForMaskedLM, backbone, **(hf_kwargs or {}))
        if backbone == "minilm" and not self.fresh_head:
            if load_head(model):
                log.info("MLM head: the one trained by `kgllm prepare-backbone` (fresh_mlm_head: false)")
            else:
                log.warning("MLM head: none shipped with this installation; starting from a random head")
        return model

    def head_modules(self, hf, head):
        return [hf.cls]
