"""Fine-tuning: sequence classification and relation classification with entity markers."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from kgllm.errors import KGLLMError
from kgllm.lit.base import KGLitModule
from kgllm.nn.backbone import load_hf_model
from kgllm.nn.fusion import HEAD_READS
from kgllm.nn.kgbert import EntityMarkerHead

TASKS = ("seq_cls", "rel_cls", "token_cls")


class ClassifierModule(KGLitModule):
    """Classification on the fused encoder.

    ``seq_cls`` uses ``BertForSequenceClassification`` as is (pooled ``[CLS]``);
    ``rel_cls`` concatenates the ``[E1]`` and ``[E2]`` marker states (:class:`EntityMarkerHead`);
    ``token_cls`` uses ``BertForTokenClassification`` (one label per wordpiece, -100 ignored).

    Args:
        task: ``seq_cls``, ``rel_cls`` or ``token_cls``; ``None`` takes it from the datamodule.
        num_labels: ``None`` takes it from the datamodule.
        vocab_size: tokenizer size (markers included); ``None`` takes it from the datamodule.
        head_dropout: dropout before the classifier.
        **kwargs: see :class:`~kgllm.lit.base.KGLitModule`.

    Metrics: ``{stage}/loss``, ``{stage}/acc`` (micro accuracy), ``{stage}/f1`` (macro F1).
    """

    def __init__(self, *args, task: str | None = None, num_labels: int | None = None,
                 vocab_size: int | None = None, head_dropout: float = 0.1, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.head: nn.Module | None = None

    def _resolve(self) -> None:
        hp, dm = self.hparams, self.datamodule()
        if hp.task is None or hp.num_labels is None or hp.vocab_size is None:
            if dm is None:
                raise KGLLMError("task, num_labels and vocab_size must be given when no datamodule is attached")
            hp.task = hp.task or dm.task
            hp.num_labels = hp.num_labels or dm.num_labels
            hp.vocab_size = hp.vocab_size or len(dm.tokenizer)
        if hp.task not in TASKS:
            raise KGLLMError(f"ClassifierModule handles {TASKS}, the data is {hp.task!r}")
        if dm is not None and (dm.task != hp.task or dm.num_labels != hp.num_labels):
            raise KGLLMError(f"model expects {hp.task} with {hp.num_labels} labels, data gives "
                             f"{dm.task} with {dm.num_labels}")

    def build_hf(self):
        from transformers import BertForSequenceClassification, BertModel

        from transformers import BertForTokenClassification

        self._resolve()
        hp = self.hparams
        if hp.task in ("seq_cls", "token_cls"):
            cls = BertForSequenceClassification if hp.task == "seq_cls" else BertForTokenClassification
            return load_hf_model(cls, hp.backbone, num_labels=hp.num_labels, classifier_dropout=hp.head_dropout,
                                 **self.hf_kwargs())
        return load_hf_model(BertModel, hp.backbone, add_pooling_layer=False, **self.hf_kwargs())

    def build_heads(self) -> None:
        hp = self.hparams
        if hp.task == "rel_cls":
            self.head = EntityMarkerHead(self.model.hf.config.hidden_size, hp.num_labels, hp.head_dropout)
        metrics = MetricCollection({"acc": MulticlassAccuracy(hp.num_labels, average="micro", ignore_index=-100),
                                    "f1": MulticlassF1Score(hp.num_labels, average="macro", ignore_index=-100)})
        for stage in ("train", "val", "test"):
            setattr(self, f"{stage}_metrics", metrics.clone(prefix=f"{stage}/"))
        # evaluation loss as a metric state: exact over ranks that hold different numbers of examples
        self.eval_loss = nn.ModuleDict({s: MeanMetric() for s in ("val", "test")})

    def head_reads(self) -> str:
        self._resolve()
        return HEAD_READS[self.hparams.task]

    def head_modules(self) -> list[nn.Module]:
        return [self.head] if self.head is not None else [self.model.hf.classifier]

    def after_init(self) -> None:
        if self.hparams.vocab_size > self.model.hf.get_input_embeddings().num_embeddings:
            self.model.hf.resize_token_embeddings(self.hparams.vocab_size)

    def forward(self, batch: dict) -> torch.Tensor:
        """Class logits :math:`(B, C)`."""
        if self.hparams.task in ("seq_cls", "token_cls"):
            return self.model(**self.fused_inputs(batch)).logits
        hidden = self.model.encode(**self.fused_inputs(batch))  # (B, T, H)
        return self.head(hidden, batch["head_pos"], batch["tail_pos"])

    def _step(self, batch: dict, stage: str) -> torch.Tensor:
        logits = self(batch)
        labels = batch["labels"]
        if self.hparams.task == "token_cls":  # (B, T, C) -> rows of wordpieces
            logits, labels = logits.reshape(-1, logits.size(-1)), labels.reshape(-1)
        loss = F.cross_entropy(logits, labels, ignore_index=-100)
        bs = batch["input_ids"].size(0)
        metrics = getattr(self, f"{stage}_metrics")
        metrics.update(logits.detach(), labels)
        if stage == "train":  # the mean over ranks: the global batch's loss under DDP
            self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=bs, sync_dist=True)
        else:
            n_valid = int((labels != -100).sum())  # 0 for a batch of DDP evaluation padding
            if n_valid:
                self.eval_loss[stage].update(loss.detach(), n_valid)
            self.log(f"{stage}/loss", self.eval_loss[stage], on_step=False, on_epoch=True, prog_bar=True)
        self.log_dict(metrics, on_step=False, on_epoch=True, prog_bar=stage != "train", batch_size=bs)
        return loss
