"""The task contract, and the data <-> model contract (:class:`DataSpec`).

A task is one file holding what differs between tasks, on both sides of a run:

Data side (:class:`~kgllm.data.features.Featurizer`, :class:`~kgllm.data.collate.KGCollator`)
    ``for_data(hparams, label_names)``
        the task built from the datamodule's hyper-parameters and the dataset's label names.
    ``windows``
        long texts become several consecutive windows (MLM) instead of one truncated example.
    ``truncation``
        ``False``: never truncate (the model handles any length itself, e.g. in windows).
    ``reserved``
        wordpieces kept free for tokens the task inserts (relation markers).
    ``prepare_tokenizer(tokenizer)``
        add the task's special tokens (the datamodule calls it once, before featurising).
    ``setup(tokenizer)``
        check the tokenizer and keep the ids the task needs (idempotent).
    ``finish(feat, example, mentions)``
        give a feature dict its label(s) or task keys; ``None`` drops the example.
    ``transform(feat, gen)``
        per-example change at collate time (MLM masking with the example's generator ``gen``):
        ``(input_ids, token_node, token_targets)``; ``token_targets`` maps batch keys to
        per-token lists, padded with :attr:`token_fill`.
    ``collate(batch, feats)``
        add per-example labels and task keys to the padded batch.
    ``ignore(batch, padding)``
        blank the targets of DDP evaluation padding (``padding``: a (B,) bool mask).

Model side (:class:`~kgllm.lit.classify.ClassifierModule`, :class:`~kgllm.lit.mlm.MLMModule`)
    ``head_reads``
        which positions of the last layer the head reads: ``cls``, ``markers``, ``tokens`` or
        ``masked`` (a fusion layer that cannot change them is refused).
    ``build_hf(backbone, num_labels, dropout, hf_kwargs)``
        the transformers model; ``build_head(hidden_size, num_labels, dropout)`` a head outside it.
    ``head_modules(hf, head)``
        the freshly initialised head modules (own learning rate; trained when the backbone is frozen).
    ``logits(model, head, inputs, batch)``, ``loss(logits, batch)``, ``metrics(num_labels)``
        the forward pass of the head, the loss with the rows the metrics score, the torchmetrics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

if TYPE_CHECKING:  # pragma: no cover
    from torchmetrics import MetricCollection


@dataclass(frozen=True)
class DataSpec:
    """What a datamodule tells the model it feeds (``KGDataModule.spec()``): the one place a model
    reads the data's task, label set, tokenizer size, backbone and KG."""

    task: str
    label_names: list[str] = field(default_factory=list)
    vocab_size: int | None = None
    backbone: str | None = None
    kg_dir: str | None = None

    @property
    def num_labels(self) -> int:
        return len(self.label_names)


#: the per-token lists of a feature dict (inserted tokens get -1 in all but ``input_ids``)
TOKEN_KEYS = ("input_ids", "span", "token_node", "word")


def insert_tokens(feat: dict, inserts: Sequence[tuple[int, bool, int]]) -> tuple[dict, list[int]]:
    """Insert tokens into a feature's per-token lists (:data:`TOKEN_KEYS`; other keys are copied).

    ``inserts`` holds ``(position, opening, token_id)``: the token goes before the wordpiece at
    ``position`` (``len(input_ids)``: at the end); at one position closing tokens come before opening
    ones, each group in the order given. Returns the new feature and the new position of each insert.
    """
    at: dict[int, list[int]] = {}
    for k in sorted(range(len(inserts)), key=lambda k: (inserts[k][0], inserts[k][1])):
        at.setdefault(inserts[k][0], []).append(k)
    out = {key: [] for key in TOKEN_KEYS}
    where = [0] * len(inserts)
    n = len(feat["input_ids"])
    for i in range(n + 1):
        for k in at.get(i, ()):
            where[k] = len(out["input_ids"])
            out["input_ids"].append(inserts[k][2])
            for key in TOKEN_KEYS[1:]:
                out[key].append(-1)
        if i < n:
            for key in TOKEN_KEYS:
                out[key].append(feat[key][i])
    return {**feat, **out}, where


class Task:
    """Base class: see the module docstring. Defaults: one truncated window per example, labels
    copied from the example, no special tokens, no head outside the HF model."""

    name: str = ""
    head_reads: str | None = None
    windows: bool = False
    truncation: bool = True
    reserved: int = 0
    #: per-token batch keys that :meth:`transform` fills, and their padding value
    token_fill: dict[str, int] = {}

    # -- data side -----------------------------------------------------------
    @classmethod
    def for_data(cls, hparams, label_names: Sequence[str]) -> "Task":
        """The task as a datamodule with these hyper-parameters and label names needs it."""
        return cls()

    def prepare_tokenizer(self, tokenizer) -> None:
        """Add the task's special tokens to ``tokenizer`` (in place)."""

    def setup(self, tokenizer) -> "Task":
        """Check ``tokenizer`` and keep the ids the task needs; returns ``self``."""
        return self

    def finish(self, feat: dict, example, mentions: Sequence) -> dict | None:
        return feat

    def transform(self, feat: dict, gen: torch.Generator | None) -> tuple[list[int], list[int], dict[str, list[int]]]:
        return feat["input_ids"], feat["token_node"], {}

    def collate(self, batch: dict, feats: list[dict]) -> None:
        """Per-example labels ``(B,)``."""
        batch["labels"] = torch.tensor([f["label"] for f in feats], dtype=torch.long)

    def ignore(self, batch: dict, padding: Tensor) -> None:
        if "labels" in batch:
            batch["labels"][padding] = -100

    # -- model side ----------------------------------------------------------
    def build_hf(self, backbone: str, num_labels: int, dropout: float, hf_kwargs: dict) -> nn.Module:
        raise NotImplementedError(f"task {self.name!r} has no model")

    def build_head(self, hidden_size: int, num_labels: int, dropout: float) -> nn.Module | None:
        return None

    def head_modules(self, hf: nn.Module, head: nn.Module | None) -> list[nn.Module]:
        return [head] if head is not None else [hf.classifier]

    def logits(self, model: nn.Module, head: nn.Module | None, inputs: dict, batch: dict) -> Tensor:
        """Class logits: ``(B, C)`` by default, from the HF model's own head."""
        return model(**inputs).logits

    def loss(self, logits: Tensor, batch: dict) -> tuple[Tensor, Tensor, Tensor]:
        """Cross-entropy (-100 ignored); returns ``(loss, logit rows, label rows)`` for the metrics."""
        labels = batch["labels"]
        return F.cross_entropy(logits, labels, ignore_index=-100), logits, labels

    def metrics(self, num_labels: int) -> "MetricCollection":
        """Micro accuracy (``acc``) and macro F1 (``f1``), -100 ignored."""
        from torchmetrics import MetricCollection
        from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

        return MetricCollection({"acc": MulticlassAccuracy(num_labels, average="micro", ignore_index=-100),
                                 "f1": MulticlassF1Score(num_labels, average="macro", ignore_index=-100)})
