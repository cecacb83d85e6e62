"""Sequence classification: one label per text, read from the pooled ``[CLS]`` state
(``BertForSequenceClassification`` as is)."""

from __future__ import annotations

from kgllm.nn.backbone import load_hf_model
from kgllm.tasks.base import Task


class SequenceClassification(Task):
    """One label per text from the pooled ``[CLS]`` state."""

    name = "seq_cls"
    head_reads = "cls"

    def build_hf(self, backbone, num_labels, dropout, hf_kwargs):
        from transformers import BertForSequenceClassification

        return load_hf_model(BertForSequenceClassification, backbone, num_labels=num_labels,
                             classifier_dropout=dropout, **hf_kwargs)
