"""Cloze texts for probing (``kgllm probe``): each text keeps its own ``[MASK]``, there are no
labels, and the model is the MLM one (:meth:`~kgllm.lit.mlm.MLMModule.masked_token_logits`)."""

from __future__ import annotations

from kgllm.tasks.base import Task


class Cloze(Task):
    """The probe's cloze texts: one masked object per example, scored at the masked positions."""

    name = "cloze"
    head_reads = "masked"

    def collate(self, batch, feats):
        """No labels: the answers are scored by the probe."""
