"""Token classification: a BIO tag per wordpiece from the gold type of each mention
(``BertForTokenClassification``; special tokens -100). Labels are the dataset's tag names
(``O``, ``B-TYPE``, ``I-TYPE``)."""

from __future__ import annotations

from typing import Sequence

from torch.nn import functional as F

from kgllm.nn.backbone import load_hf_model
from kgllm.tasks.base import Task


class TokenClassification(Task):
    """Args:
        label_names: the tag names; a mention's tags are ``B-``/``I-`` + its gold type (only the
            data side needs them: the model reads ``num_labels``).
    """

    name = "token_cls"
    head_reads = "tokens"
    token_fill = {"labels": -100}

    def __init__(self, label_names: Sequence[str] = ()) -> None:
        self.index = {name: i for i, name in enumerate(label_names)}

    @classmethod
    def for_data(cls, hparams, label_names):
        return cls(label_names)

    def finish(self, feat: dict, example, mentions) -> dict:
        gold = {(a, b): lab for a, b, lab in example.spans}
        return {**feat, "label": self.bio(feat["span"], feat["word"],
                                          [gold.get((m.start, m.end)) for m in mentions])}

    def bio(self, span_of: list[int], words: list[int], gold_types: list[str | None]) -> list[int]:
        """BIO tag ids per wordpiece from the gold type of each mention (``None``: not gold);
        -100 on special tokens (``words`` -1)."""
        out, previous = [], -1
        for j, w in zip(span_of, words):
            if w < 0:
                out.append(-100)
            elif j < 0 or gold_types[j] is None:
                out.append(0)
            else:
                tag = ("I-" if j == previous else "B-") + gold_types[j]
                if tag not in self.index:
                    raise KeyError(f"token_cls: tag {tag!r} is not among the labels {sorted(self.index)}")
                out.append(self.index[tag])
            previous = j
        return out

    def transform(self, feat, gen):
        return feat["input_ids"], feat["token_node"], {"labels": feat["label"]}

    def collate(self, batch, feats):
        """Labels are per token (:meth:`transform`)."""

    def build_hf(self, backbone, num_labels, dropout, hf_kwargs):
        from transformers import BertForTokenClassification

        return load_hf_model(BertForTokenClassification, backbone, num_labels=num_labels,
                             classifier_dropout=dropout, **hf_kwargs)

    def loss(self, logits, batch):
        """Over rows of wordpieces: :math:`(B, T, C)` -> :math:`(B T, C)`."""
        logits, labels = logits.reshape(-1, logits.size(-1)), batch["labels"].reshape(-1)
        return F.cross_entropy(logits, labels, ignore_index=-100), logits, labels
