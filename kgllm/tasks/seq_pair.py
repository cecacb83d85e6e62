"""Sequence-pair classification (NLI-style): ``[CLS] text [SEP] text_pair [SEP]`` with segment ids,
one label per pair read from the pooled ``[CLS]`` state (``BertForSequenceClassification``).

Mentions are found and linked in both texts (:attr:`~kgllm.data.datasets.TextExample.full_text`),
so the KG fuses into either side."""

from __future__ import annotations

import torch

from kgllm.tasks.seq_cls import SequenceClassification


class SequencePairClassification(SequenceClassification):
    """One label per text pair (NLI-style), with segment ids; mentions are linked in both texts."""

    name = "seq_pair"

    def finish(self, feat, example, mentions):
        if example.text_pair is None or "token_type" not in feat:
            raise ValueError("task seq_pair needs examples with a text_pair (dataset 'hf': columns.text_pair)")
        return feat

    def collate(self, batch, feats):
        super().collate(batch, feats)
        types = torch.zeros_like(batch["input_ids"])
        for b, f in enumerate(feats):
            types[b, :len(f["token_type"])] = torch.tensor(f["token_type"])
        batch["token_type_ids"] = types

    def logits(self, model, head, inputs, batch):
        return model(**inputs, token_type_ids=batch["token_type_ids"]).logits
