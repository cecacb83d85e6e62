"""Masked-language-model pretraining with KG fusion."""

from __future__ import annotations

import torch
from torch.nn import functional as F
from torchmetrics import MeanMetric

from kgllm.lit.base import KGLitModule
from kgllm.nn.backbone import load_hf_model


class MLMModule(KGLitModule):
    """MLM on the fused encoder. Logits are computed at masked positions only (the same
    ``cls`` head as ``BertForMaskedLM``, applied to fewer rows).

    Metrics: ``{stage}/loss`` (mean over masked tokens), ``{stage}/acc`` (masked-token accuracy),
    ``val/ppl``. All arguments are those of :class:`~kgllm.lit.base.KGLitModule`.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.metrics = torch.nn.ModuleDict({f"{s}_{m}": MeanMetric() for s in ("train", "val", "test")
                                            for m in ("loss", "acc")})

    def build_hf(self):
        from transformers import BertForMaskedLM

        return load_hf_model(BertForMaskedLM, self.hparams.backbone)

    def head_modules(self) -> list:
        return [self.model.hf.cls]

    def _step(self, batch: dict, stage: str) -> torch.Tensor:
        hidden = self.model.encode(**self.fused_inputs(batch))  # (B, T, H)
        labels = batch["labels"]
        sel = labels != -100  # (B, T)
        logits = self.model.hf.cls(hidden[sel])  # (M, V)
        target = labels[sel]
        loss = F.cross_entropy(logits, target) if target.numel() else hidden.sum() * 0.0
        n = max(int(target.numel()), 1)
        acc = (logits.argmax(-1) == target).float().mean() if target.numel() else loss.detach()
        self.metrics[f"{stage}_loss"].update(loss.detach(), n)
        self.metrics[f"{stage}_acc"].update(acc, n)
        on_step = stage == "train"
        self.log(f"{stage}/loss", self.metrics[f"{stage}_loss"], on_step=on_step, on_epoch=True,
                 prog_bar=True, batch_size=n)
        self.log(f"{stage}/acc", self.metrics[f"{stage}_acc"], on_step=False, on_epoch=True, batch_size=n)
        return loss

    def on_validation_epoch_end(self) -> None:
        metric = self.trainer.callback_metrics.get("val/loss")
        if metric is not None:
            self.log("val/ppl", torch.exp(metric.detach()))
