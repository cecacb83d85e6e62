"""Fine-tuning on the fused encoder for any classification task of the task registry."""

from __future__ import annotations

import logging

import torch
from torch import nn
from torchmetrics import CatMetric, MeanMetric
from torchmetrics.classification import MulticlassConfusionMatrix

from kgllm.util.errors import KGLLMError
from kgllm.lit.base import KGLitModule
from kgllm.tasks import Task, get_task, task_class

log = logging.getLogger(__name__)


class ClassifierModule(KGLitModule):
    """Classification on the fused encoder; the model, head, loss and metrics are the task's
    (:mod:`kgllm.tasks`): ``seq_cls`` (pooled ``[CLS]``), ``rel_cls`` (``[E1]``/``[E2]`` marker
    states), ``token_cls`` (one label per wordpiece, -100 ignored), or any registered task.

    Args:
        task: a task name; ``None`` takes it from the datamodule's :class:`~kgllm.tasks.DataSpec`.
        num_labels: ``None`` takes it from the datamodule.
        vocab_size: tokenizer size (markers included); ``None`` takes it from the datamodule.
        head_dropout: dropout before the classifier.
        task_args: options of the task's model side (e.g. ``docre``'s ``emb_size``, ``window``).

    The options before ``task`` (``backbone`` ... ``allow_other_kg``) are
    :class:`~kgllm.lit.base.KGLitModule`'s, documented there (a test keeps the signatures equal).

    Metrics: the task's, as ``{stage}/NAME`` (``acc``: micro accuracy, ``f1``: macro F1 by
    default), and ``{stage}/loss``.
    """

    #: the task when ``task`` is not given and no datamodule names one (subclasses fix theirs)
    default_task: str | None = None

    def __init__(self, backbone: str | None = None, kg_dir: str | None = None, fusion: str = "gated",
                 fusion_layers: list[int] = [-2], gnn_hidden: int = 128, gnn_layers: int = 2, gnn_heads: int = 4,
                 gnn_dropout: float = 0.1, fusion_dropout: float = 0.1, lr: float = 5e-5, kg_lr: float = 1e-3,
                 weight_decay: float = 0.01, warmup_ratio: float = 0.1, freeze_backbone: bool = False,
                 init_from: str | None = None, graph_encoder_from: str | None = None, graph_encoder: str = "gat",
                 node_embeddings_from: str | None = None, node_features: str = "id", graph_input: bool = True,
                 peft: str = "none", peft_r: int = 8,
                 lora_r: int = 0, lora_alpha: int = 16, backbone_dropout: float | None = None,
                 allow_other_kg: bool = False, *,
                 task: str | None = None, num_labels: int | None = None,
                 vocab_size: int | None = None, head_dropout: float = 0.1, task_args: dict | None = None) -> None:
        super().__init__(backbone=backbone, kg_dir=kg_dir, fusion=fusion, fusion_layers=fusion_layers,
                         gnn_hidden=gnn_hidden, gnn_layers=gnn_layers, gnn_heads=gnn_heads, gnn_dropout=gnn_dropout,
                         fusion_dropout=fusion_dropout, lr=lr, kg_lr=kg_lr, weight_decay=weight_decay,
                         warmup_ratio=warmup_ratio, freeze_backbone=freeze_backbone, init_from=init_from,
                         graph_encoder_from=graph_encoder_from, graph_encoder=graph_encoder,
                         node_embeddings_from=node_embeddings_from, node_features=node_features,
                         graph_input=graph_input, peft=peft, peft_r=peft_r, lora_r=lora_r, lora_alpha=lora_alpha,
                         backbone_dropout=backbone_dropout, allow_other_kg=allow_other_kg)
        self.head: nn.Module | None = None
        self.hparams.task = task or self.default_task  # a subclass's task (DocREModule: docre) when none is given
        self.task_spec: Task | None = None
        self.label_names: list[str] | None = None  # from the data; saved in checkpoints

    def _resolve(self) -> Task:
        if self.task_spec is not None:
            return self.task_spec
        hp, spec = self.hparams, self.data_spec()
        if hp.task is None or hp.num_labels is None or hp.vocab_size is None:
            if spec is None:
                raise KGLLMError("task, num_labels and vocab_size must be given when no datamodule is attached")
            hp.task = hp.task or spec.task
            hp.num_labels = hp.num_labels or spec.num_labels
            hp.vocab_size = hp.vocab_size or spec.vocab_size
        if hp.task == "mlm" or task_class(hp.task).build_hf is Task.build_hf:
            hint = " (use kgllm.lit.MLMModule)" if hp.task == "mlm" else ""
            raise KGLLMError(f"ClassifierModule trains classification tasks, the data is {hp.task!r}{hint}")
        if spec is not None:
            self._check_data(spec)
        self.task_spec = get_task(hp.task, **(hp.task_args or {}))
        return self.task_spec

    def _check_data(self, spec) -> None:
        """The data must be the model's task with the model's labels (also for a model restored from a
        checkpoint before any datamodule was attached)."""
        hp = self.hparams
        if spec.task != hp.task or spec.num_labels != hp.num_labels:
            raise KGLLMError(f"model expects {hp.task} with {hp.num_labels} labels, data gives "
                             f"{spec.task} with {spec.num_labels}")
        if self.label_names is not None and list(spec.label_names) != self.label_names:
            raise KGLLMError(f"the model was trained on other labels than the data has (first differences: "
                             f"{sorted(set(self.label_names) ^ set(spec.label_names))[:5]})")
        self.label_names = list(spec.label_names)

    def setup(self, stage: str) -> None:
        spec = self.data_spec()
        if spec is not None and self.task_spec is not None:
            self._check_data(spec)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        if self.label_names is not None:
            checkpoint["label_names"] = self.label_names

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        self.label_names = checkpoint.get("label_names", self.label_names)

    def build_hf(self):
        hp = self.hparams
        return self._resolve().build_hf(hp.backbone, hp.num_labels, hp.head_dropout, self.hf_kwargs())

    def build_heads(self) -> None:
        hp, task = self.hparams, self.task_spec
        self.head = task.build_head(self.model.hf.config.hidden_size, hp.num_labels, hp.head_dropout)
        metrics = task.metrics(hp.num_labels)
        for stage in ("train", "val", "test"):
            setattr(self, f"{stage}_metrics", metrics.clone(prefix=f"{stage}/"))
        # evaluation loss as a metric state: exact over ranks that hold different numbers of examples
        self.eval_loss = nn.ModuleDict({s: MeanMetric() for s in ("val", "test")})
        # test confusion matrix of single-label tasks (synced over ranks like the other metrics)
        self.test_confusion = MulticlassConfusionMatrix(hp.num_labels, ignore_index=-100)
        # each test example's correctness (single-label tasks), or its correct / predicted / gold
        # counts (tasks with ``item_counts``: document-level RE), for intervals over test items
        self.test_items = nn.ModuleDict({k: CatMetric() for k in ("idx", "correct", "predicted", "gold")})

    def head_reads(self) -> str:
        return self._resolve().head_reads

    def head_modules(self) -> list[nn.Module]:
        return self.task_spec.head_modules(self.model.hf, self.head)

    def after_init(self) -> None:
        if self.hparams.vocab_size > self.model.hf.get_input_embeddings().num_embeddings:
            self.model.hf.resize_token_embeddings(self.hparams.vocab_size)

    def forward(self, batch: dict) -> torch.Tensor:
        """The task's logits (``(B, C)`` for sequence and relation classification, ``(B, T, C)`` per token)."""
        return self.task_spec.logits(self.model, self.head, self.fused_inputs(batch), batch)

    def predict_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        """The task's logits as float32 on the CPU (``kgllm predict`` turns them into label names)."""
        return self(batch).float().cpu()

    def _step(self, batch: dict, stage: str) -> torch.Tensor:
        loss, logits, labels = self.task_spec.loss(self(batch), batch)
        bs = batch["input_ids"].size(0)
        metrics = getattr(self, f"{stage}_metrics")
        metrics.update(logits.detach(), labels)
        if stage == "test" and not labels.is_floating_point() and logits.dim() == labels.dim() + 1:
            self.test_confusion.update(logits.detach().argmax(-1), labels)
            per_example = batch.get("labels")
            if "idx" in batch and per_example is not None and per_example.dim() == 1 and labels.shape == batch["idx"].shape:
                valid = labels != -100  # DDP evaluation padding is no test item
                self.test_items["idx"].update(batch["idx"][valid].float())
                self.test_items["correct"].update((logits.detach().argmax(-1) == labels)[valid].float())
        if stage == "test" and "idx" in batch and hasattr(self.task_spec, "item_counts"):
            # updated on every batch, empty ones too: a rank whose documents are all DDP padding must
            # still join the gather in _test_item_rows (rank 0's gather failed when it skipped them)
            scored, counts = self.task_spec.item_counts(logits.detach(), labels, batch)
            self.test_items["idx"].update(batch["idx"][scored].float())
            for k, name in enumerate(("correct", "predicted", "gold")):
                self.test_items[name].update(counts[scored, k].float())
        if stage == "train":  # the mean over ranks: the global batch's loss under DDP
            self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=bs, sync_dist=True)
        else:
            n_valid = int((labels != -100).sum())  # 0 for a batch of DDP evaluation padding
            if n_valid:
                self.eval_loss[stage].update(loss.detach(), n_valid)
            self.log(f"{stage}/loss", self.eval_loss[stage], on_step=False, on_epoch=True, prog_bar=True)
        self.log_dict(metrics, on_step=False, on_epoch=True, prog_bar=stage != "train", batch_size=bs)
        return loss

    def on_test_epoch_end(self) -> None:
        """Per-class precision/recall/F1 and the confusion matrix of a single-label task's test, as
        ``per_class.csv``, ``confusion_matrix.csv`` and ``confusion_matrix.png`` in the run folder
        (the first logger's; rank 0), and its worst classes in one log line."""
        confusion = self.test_confusion
        cm = None
        if confusion.update_called:
            cm = confusion.compute().cpu()
            confusion.reset()
        items = self._test_item_rows()  # a collective under DDP: every rank computes it
        trainer = self.trainer
        loggers = trainer.loggers if trainer is not None else []
        log_dir = getattr(loggers[0], "log_dir", None) if loggers else None
        if trainer is None or not trainer.is_global_zero or not log_dir:
            return
        if items:
            from pathlib import Path

            from kgllm.util.io import atomic_write_text

            header = "idx,correct" if len(items[0]) == 2 else "idx,correct,predicted,gold"
            atomic_write_text(Path(log_dir) / "test_items.csv",
                              header + "\n" + "".join(",".join(map(str, row)) + "\n" for row in items))
        if cm is None:
            return
        from kgllm.lit.report import per_class, write_report

        labels = self.label_names or [str(i) for i in range(cm.size(0))]
        dataset = ((getattr(trainer, "datamodule", None) and trainer.datamodule.hparams.get("dataset")) or
                   "data")
        title = f"{self.hparams.task} on {dataset}: test confusion matrix (n = {int(cm.sum()):,})"
        paths = write_report(cm, labels, log_dir, title)
        rows = [r for r in per_class(cm, labels) if r["support"]]
        worst = ", ".join(f"{r['label']} {r['f1']:.2f}" for r in sorted(rows, key=lambda r: r["f1"])[:3])
        log.info("per-class test scores: %s (lowest F1: %s)", paths[0], worst)


    def _test_item_rows(self) -> list[tuple[int, ...]]:
        """Each test example's index and whether it was classified correctly (or, for tasks with
        ``item_counts``, its correct, predicted and gold counts), over all ranks (written as
        ``test_items.csv``: what ``kgllm ablate`` resamples for intervals over seeds and test items)."""
        items = self.test_items
        if not items["idx"].update_called:
            return []
        names = ["correct"] + (["predicted", "gold"] if items["predicted"].update_called else [])
        cols = [items[k].compute().flatten().tolist() for k in ["idx", *names]]
        for metric in items.values():
            metric.reset()
        by_idx = {int(row[0]): tuple(int(v) for v in row[1:]) for row in zip(*cols)}  # DDP duplicates collapse
        return [(i, *v) for i, v in sorted(by_idx.items())]


class DocREModule(ClassifierModule):
    """Document-level relation extraction (:mod:`kgllm.tasks.docre`): :class:`ClassifierModule` with
    ``task="docre"``; ``task_args`` sets the head (``emb_size``, ``block_size``), the encoder windows
    (``window``, ``overlap``) and ``top_k``."""

    #: the task when none is given (so the signature is ClassifierModule's)
    default_task = "docre"

    @classmethod
    def from_checkpoint(cls, path: str) -> tuple["DocREModule", dict]:
        """The model of a checkpoint (``weights_only`` load, ``init_from`` not re-run) or of a compact
        extractor file (``.safetensors``, :mod:`kgllm.lit.extractor_file`), in eval mode, and the
        hyper-parameters of the datamodule it was trained with; other tasks are refused."""
        from kgllm.lit.base import read_checkpoint, restore_module
        from kgllm.lit.extractor_file import is_extractor_file, load_extractor_file, read_extractor_meta

        if is_extractor_file(path):  # a compact extractor file (kgllm prepare-extractor)
            return load_extractor_file(path, cls), dict(read_extractor_meta(path)["made_from"].get("datamodule") or {})
        raw = read_checkpoint(path)
        task = raw.get("hyper_parameters", {}).get("task")
        if task != "docre":
            raise KGLLMError(f"{path}: a {task or 'non-classification'} checkpoint, not a document-level relation "
                             "extraction one (task docre)")
        return restore_module(path, raw), dict(raw.get("datamodule_hyper_parameters") or {})
