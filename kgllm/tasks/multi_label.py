"""Multi-label sequence classification: any number of labels per text, one sigmoid per label
(binary cross-entropy) on the pooled ``[CLS]`` state (``BertForSequenceClassification``).

Metrics: micro and macro F1 at a 0.5 probability cut-off, and ``exact`` (the share of texts whose
whole label set is right)."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from kgllm.tasks.seq_cls import SequenceClassification


class MultiLabelClassification(SequenceClassification):
    """Args:
        num_labels: the size of the label set (only the data side needs it, for the multi-hot rows).
    """

    name = "multi_label"

    def __init__(self, num_labels: int = 0) -> None:
        self.num_labels = num_labels

    @classmethod
    def for_data(cls, hparams, label_names):
        return cls(len(label_names))

    def finish(self, feat, example, mentions):
        if not isinstance(example.label, list):
            raise ValueError(f"task multi_label needs a list of labels per text, got {example.label!r}")
        return feat

    def collate(self, batch, feats):
        """Multi-hot labels :math:`(B, C)`."""
        labels = torch.zeros(len(feats), self.num_labels, dtype=torch.long)
        for b, f in enumerate(feats):
            labels[b, f["label"]] = 1
        batch["labels"] = labels

    def loss(self, logits, batch):
        labels = batch["labels"]
        keep = labels[:, 0] != -100  # DDP evaluation padding rows are -100 throughout
        loss = (F.binary_cross_entropy_with_logits(logits[keep], labels[keep].float()) if keep.any()
                else logits.sum() * 0.0)
        return loss, logits, labels

    def metrics(self, num_labels):
        from torchmetrics import MetricCollection
        from torchmetrics.classification import MultilabelExactMatch, MultilabelF1Score

        return MetricCollection({
            "micro_f1": MultilabelF1Score(num_labels, average="micro", ignore_index=-100),
            "macro_f1": MultilabelF1Score(num_labels, average="macro", ignore_index=-100),
            "exact": MultilabelExactMatch(num_labels, ignore_index=-100)})
