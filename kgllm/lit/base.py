"""Shared LightningModule logic: build the fused model lazily, optimisers, checkpoint metadata."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import lightning as L
import torch
from torch import nn

from kgllm.util.errors import ConfigError, KGFormatError, KGLLMError, check_fraction, check_positive
from kgllm.lit.builders import PEFT_MARKERS, PEFT_METHODS, apply_peft, build_graph_encoder
from kgllm.nn.kgbert import KGBert, is_kg_parameter

if TYPE_CHECKING:  # pragma: no cover
    from kgllm.tasks import DataSpec

log = logging.getLogger(__name__)


def kg_meta(kg_dir: str | None) -> dict:
    """The KG folder's ``meta.json``, with its ``identity`` computed for KGs written before it was stored."""
    from kgllm.nn.checkpoints import kg_keys
    from kgllm.kg.graph.folder import kg_identity, read_meta

    if not kg_dir:
        return {}
    path = Path(kg_dir) / "meta.json"
    if not path.is_file():
        raise KGFormatError(f"{path}: missing; build the KG first with `kgllm build-kg`")
    meta = read_meta(Path(kg_dir))
    if "identity" not in meta:
        keys = kg_keys(kg_dir)
        meta["identity"] = kg_identity(keys["entities"], keys["relations"])
    return meta


def legacy_identity(ckpt: dict) -> dict:
    """A checkpoint written before KG identities were recorded gets the identity of the KG folder it
    names (``hyper_parameters.kg_dir``), if that folder's ``meta.json`` still says, field for field,
    what the checkpoint recorded of it; otherwise it stays unrecorded (and is refused as before)."""
    recorded = ckpt.get("kg_meta") or {}
    if recorded.get("identity") or not recorded:
        return ckpt
    folder = (ckpt.get("hyper_parameters") or {}).get("kg_dir") or \
        (ckpt.get("datamodule_hyper_parameters") or {}).get("kg_dir")
    if not folder or not (Path(folder) / "meta.json").is_file():
        return ckpt
    now = kg_meta(folder)
    if any(now.get(k) != v for k, v in recorded.items()):
        return ckpt
    log.info("checkpoint without a recorded KG identity: %s's meta.json matches it, so it is that KG", folder)
    return {**ckpt, "kg_meta": {**recorded, "identity": now["identity"]}}


def read_checkpoint(path: str) -> dict:
    """A checkpoint's contents, loaded tensors-only; a missing file or one that is not a readable
    Lightning checkpoint is a one-line error."""
    from kgllm.nn.checkpoints import check_lightning_checkpoint, is_url

    if not is_url(path) and not Path(path).is_file():
        raise KGLLMError(f"{path}: checkpoint not found")
    return check_lightning_checkpoint(path)


def restore_module(path: str, raw: dict, kg_dir: str | None = None) -> "KGLitModule":
    """The module a fused checkpoint (``raw``: its :func:`read_checkpoint` contents) was saved from,
    by its recorded task (``MLMModule``, ``ClassifierModule``, ``DocREModule``), in eval mode: weights
    only, ``init_from``/``graph_encoder_from`` not read again; ``kg_dir`` fuses another KG."""
    from kgllm.nn.checkpoints import local_checkpoint
    from kgllm.lit import ClassifierModule, DocREModule, MLMModule

    path = local_checkpoint(path)  # a URL's copy, downloaded once by read_checkpoint
    task = (raw.get("hyper_parameters") or {}).get("task")
    cls = MLMModule if task is None else DocREModule if task == "docre" else ClassifierModule
    extra = {"kg_dir": str(kg_dir)} if kg_dir else {}
    return cls.load_from_checkpoint(path, map_location="cpu", weights_only=True, init_from=None,
                                    graph_encoder_from=None, **extra).eval()


def canonical_key(key: str) -> str:
    """State-dict key independent of the head class and of fusion wrappers:
    ``model.hf.bert.encoder.layer.3.base_layer.output.dense.weight`` -> ``encoder.layer.3.output.dense.weight``."""
    key = key.removeprefix("model.")
    if key.startswith("hf."):
        key = key[3:]
        key = key.removeprefix("bert.")
    return key.replace(".base_layer.", ".")


class KGLitModule(L.LightningModule):
    """Base class of the fused-BERT LightningModules.

    Args:
        backbone: ``minilm``, ``tiny`` or a local HF BERT folder; ``None`` takes the datamodule's.
        kg_dir: KG folder (sizes the node-embedding table); ``None`` takes the datamodule's.
        fusion: ``none`` or a block name (``gated``).
        fusion_layers: BERT layers to fuse at (negative counts from the top); the default, the one
            below the last, reaches every head (a block at the last layer changes only the positions
            it writes, which a ``[CLS]`` head may not read).
        gnn_hidden: the GAT encoder's width.
        gnn_layers: its number of layers.
        gnn_heads: its attention heads.
        gnn_dropout: its dropout.
        fusion_dropout: dropout inside fusion blocks.
        lr: learning rate of the pretrained BERT backbone.
        kg_lr: learning rate of new parameters: the ``kg_`` graph encoder and fusion blocks, freshly
            initialised task heads, and the parameters a PEFT method adds.
        weight_decay: AdamW weight decay (not on biases and norms).
        warmup_ratio: share of steps with linear warm-up, then linear decay.
        freeze_backbone: train only the ``kg_`` parameters and the task head.
        init_from: a Lightning checkpoint (e.g. from MLM pretraining) whose backbone, graph encoder
            and fusion weights initialise this model where names and shapes match.
        graph_encoder_from: a folder exported by link-prediction training (``ExportEncoder``) on the
            same KG; its GAT weights initialise the graph encoder.
        graph_encoder: ``gat`` (end to end on the batch subgraphs) or ``precomputed`` (fixed node
            embeddings from ``node_embeddings_from``, an exported folder, through a trainable projection).
        node_features: GAT inputs: ``id`` embeddings, ``text`` (entity labels/descriptions encoded once
            by MiniLM; the "text-only node features" control), ``text_norm`` (the same, projection
            layer-normalised), ``both``, or ``lm`` (the backbone's word embeddings of each label).
        graph_input: ``False`` is the parameter-matched control: fusion blocks without graph input.
        peft: parameter-efficient fine-tuning (:data:`~kgllm.lit.builders.PEFT_METHODS`): ``lora`` (peft,
            query/value, rank ``peft_r``, scale ``lora_alpha``), ``ia3`` (peft: keys, values, FFN
            activations) or ``adapter`` (Houlsby bottleneck adapters of size ``peft_r``); the rest of the
            backbone stays frozen, fusion blocks and task heads train. Combines with any fusion.
        peft_r: LoRA rank / adapter bottleneck size.
        lora_r: with ``> 0``, the same as ``peft="lora", peft_r=lora_r`` (kept for older configs).
        backbone_dropout: override BERT's hidden and attention dropout (``None``: the backbone's own).
        allow_other_kg: load graph weights (``init_from``, ``--ckpt_path``) trained on another KG by
            remapping entity and relation rows by key; without it such a checkpoint is an error.
    """

    def __init__(self, backbone: str | None = None, kg_dir: str | None = None, fusion: str = "gated",
                 fusion_layers: list[int] = [-2], gnn_hidden: int = 128, gnn_layers: int = 2, gnn_heads: int = 4,
                 gnn_dropout: float = 0.1, fusion_dropout: float = 0.1, lr: float = 5e-5, kg_lr: float = 1e-3,
                 weight_decay: float = 0.01, warmup_ratio: float = 0.1, freeze_backbone: bool = False,
                 init_from: str | None = None, graph_encoder_from: str | None = None, graph_encoder: str = "gat",
                 node_embeddings_from: str | None = None, node_features: str = "id", graph_input: bool = True,
                 peft: str = "none", peft_r: int = 8,
                 lora_r: int = 0, lora_alpha: int = 16, backbone_dropout: float | None = None,
                 allow_other_kg: bool = False) -> None:
        super().__init__()
        check_positive(lr=lr, kg_lr=kg_lr, gnn_hidden=gnn_hidden, gnn_layers=gnn_layers, gnn_heads=gnn_heads)
        if peft not in PEFT_METHODS:
            raise ConfigError(f"--model.peft {peft!r} is not a PEFT method; choose one of {', '.join(PEFT_METHODS)}")
        from kgllm.nn.fusion import fusion_names

        if fusion not in fusion_names():  # before any data is read, as a usage error
            raise ConfigError(f"--model.fusion {fusion!r} is not a fusion block; choose one of "
                              f"{', '.join(fusion_names())} (or register one with register_fusion)")
        if node_features not in ("id", "text", "text_norm", "both", "lm"):
            raise ConfigError(f"--model.node_features must be id, text, text_norm, both or lm, got {node_features!r}")
        if graph_encoder not in ("gat", "precomputed"):
            raise ConfigError(f"--model.graph_encoder must be gat or precomputed, got {graph_encoder!r}")
        if lora_r and peft not in ("none", "lora"):
            raise ConfigError(f"lora_r is LoRA's rank; with peft={peft!r} set peft_r")
        check_positive(peft_r=peft_r)
        check_positive(allow_zero=True, weight_decay=weight_decay, lora_r=lora_r)
        check_fraction(warmup_ratio=warmup_ratio)
        check_fraction(below_one=True, gnn_dropout=gnn_dropout, fusion_dropout=fusion_dropout,
                       backbone_dropout=backbone_dropout)
        # the datamodule's hparams carry kg_dir/backbone; saving None here would clash when Lightning
        # merges both for logging, so they enter self.hparams only once resolved (configure_model)
        self.save_hyperparameters(ignore=["kg_dir", "backbone"])
        self._data_args = {"kg_dir": kg_dir, "backbone": backbone}
        self.model: KGBert | None = None
        self.kg_meta: dict = {}

    # -- building ----------------------------------------------------------
    def build_hf(self) -> nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError

    def hf_kwargs(self) -> dict:
        """Config overrides for ``from_pretrained`` / the tiny config."""
        p = self.hparams.backbone_dropout
        return {} if p is None else {"hidden_dropout_prob": p, "attention_probs_dropout_prob": p}

    def build_heads(self) -> None:
        """Extra heads outside the HF model (none by default)."""

    def head_reads(self) -> str:  # pragma: no cover - abstract
        """Which positions of the encoder's output the task head reads (the task's ``head_reads``)."""
        raise NotImplementedError

    def head_modules(self) -> list[nn.Module]:
        return []

    def data_spec(self) -> "DataSpec | None":
        """The attached datamodule's :class:`~kgllm.tasks.DataSpec` (its ``spec()``): the only thing a
        model reads from its data; ``None`` when no datamodule with a spec is attached."""
        trainer = self._trainer
        dm = getattr(trainer, "datamodule", None) if trainer is not None else None
        return dm.spec() if hasattr(dm, "spec") else None

    def _resolve_data(self) -> None:
        """Fill ``backbone`` and ``kg_dir`` from the datamodule when the config left them unset."""
        hp, spec = self.hparams, self.data_spec()
        hp.backbone = self._data_args["backbone"] or (spec.backbone if spec else None) or "minilm"
        hp.kg_dir = self._data_args["kg_dir"] or (spec.kg_dir if spec else None)
        reads = (hp.fusion != "none" or self.reads_graph()) and hp.graph_input
        if reads and not hp.kg_dir:
            raise ConfigError(f"fusion {hp.fusion!r} reads a graph, but no KG folder is set (--data.kg_dir)")
        if not reads and spec is None and hp.kg_dir and not (Path(hp.kg_dir) / "meta.json").is_file():
            # a restored model that reads no graph (fusion none) needs no KG folder: the one it trained
            # beside may have moved or gone (an extractor checkpoint used from another folder)
            log.info("%s: no KG folder there; this model reads no graph, so it loads without one", hp.kg_dir)
            self.kg_meta = {}
            return
        self.kg_meta = kg_meta(hp.kg_dir)

    def configure_model(self) -> None:
        if self.model is not None:
            return
        self._resolve_data()
        hp = self.hparams
        wants_graph = (hp.fusion != "none" or self.reads_graph()) and hp.graph_input
        # the encoder before the HF model, as always (the same random draws, so seeded runs stay put);
        # lm node inputs need the backbone's width, so they come after it
        encoder = build_graph_encoder(hp, self.kg_meta) if wants_graph and hp.node_features != "lm" else None
        hf = self.build_hf()
        if wants_graph and hp.node_features == "lm":
            encoder = build_graph_encoder(hp, self.kg_meta, hf.config.hidden_size)
        counts = self.kg_meta.get("counts", {})
        self.model = KGBert(hf, encoder, hp.fusion, hp.fusion_layers, hp.fusion_dropout,
                            graph_input=hp.graph_input, node_dim=hp.gnn_hidden,
                            num_relations=max(counts.get("relations", 1), 1), head_reads=self.head_reads(),
                            keep_encoder=self.reads_graph())
        if hp.node_features == "lm" and self.model.kg_encoder is not None:
            self.model.kg_encoder.set_label_pieces(self.label_piece_table(), hf.get_input_embeddings())
        self.build_heads()
        self._load_exported_extras()
        if hp.init_from:
            self.load_init(hp.init_from)
        self.after_init()
        method, rank = self.peft_method()
        apply_peft(self.model.backbone, method, rank, hp.lora_alpha)
        if hp.freeze_backbone or method != "none":
            heads = {id(p) for m in self.head_modules() for p in m.parameters()}
            for name, p in self.model.named_parameters():
                p.requires_grad_(is_kg_parameter(name) or id(p) in heads or any(m in name for m in PEFT_MARKERS))
        self.train(self.training)  # from_pretrained leaves HF modules in eval mode

    def reads_graph(self) -> bool:
        """Whether a head reads the encoded graph itself (not only through fused layers), so the graph
        encoder is built even with ``fusion: none`` (the MLM copy head)."""
        return False

    def label_piece_table(self) -> torch.Tensor:
        """Wordpiece ids of every KG entity's label, :math:`(|\\mathcal{V}|, P)` (``-1`` padded), from the
        KG folder this model is built on: entities added after training are included."""
        if getattr(self, "_label_pieces", None) is None:
            from kgllm.lit.builders import entity_labels
            from kgllm.nn.backbone import load_tokenizer
            from kgllm.nn.copy_head import label_pieces

            self._label_pieces = label_pieces(entity_labels(self.hparams.kg_dir), load_tokenizer(self.hparams.backbone))
        return self._label_pieces

    def peft_method(self) -> tuple[str, int]:
        """The PEFT method and its rank/size (``lora_r > 0`` is LoRA of that rank)."""
        hp = self.hparams
        if hp.get("lora_r"):
            return "lora", hp.lora_r
        return hp.get("peft", "none"), hp.get("peft_r", 8)

    def after_init(self) -> None:
        """Hook after ``init_from`` (e.g. resize embeddings for marker tokens)."""

    def _load_exported_extras(self) -> None:
        """A ``backbone`` folder written by ``kgllm export`` brings its graph encoder, fusion blocks
        and outside-HF task head (``kgllm_extra.safetensors``) too."""
        from kgllm.nn.checkpoints import read_export_extras

        backbone = self.hparams.backbone
        extras = read_export_extras(backbone) if backbone and Path(backbone).is_dir() else None
        if extras and extras["state_dict"]:
            self.load_state(extras, f"backbone {backbone}")

    def load_init(self, path: str) -> None:
        """Copy matching weights (by canonical name and shape) from a Lightning checkpoint; graph
        weights only from a checkpoint of the same KG (or remapped by key with ``allow_other_kg``)."""
        from kgllm.nn.checkpoints import check_lightning_checkpoint

        self.load_state(check_lightning_checkpoint(path), f"init_from {path}")

    def load_state(self, ckpt: dict, where: str) -> None:
        """:meth:`load_init` from a checkpoint-like dict (``state_dict``, ``kg_meta``, ``kg_keys``)."""
        own = self.state_dict()
        self._check_kg(ckpt, where, own)
        source = {canonical_key(k): v for k, v in ckpt["state_dict"].items()}
        loaded, skipped = {}, []
        for key, value in own.items():
            src = source.get(canonical_key(key))
            if src is None or src.shape != value.shape:
                skipped.append(key)
                continue
            loaded[key] = src
        self.load_state_dict(loaded, strict=False)
        log.info("%s: loaded %d tensors, kept %d fresh", where, len(loaded), len(skipped))
        self.init_report = {"loaded": len(loaded), "fresh": skipped}

    def _graph_tables(self, state_dict: dict) -> bool:
        return any(k.endswith(("node_emb.weight", "rel_emb.weight")) for k in state_dict)

    def _check_kg(self, ckpt: dict, where: str, own: dict) -> None:
        """Refuse (or remap by key, with ``allow_other_kg``) graph weights trained on another KG."""
        from kgllm.nn.checkpoints import check_same_kg, kg_keys, remap_kg_rows

        if not (self._graph_tables(ckpt["state_dict"]) and self._graph_tables(own)):
            return  # nothing indexed by entity id is loaded
        ckpt = legacy_identity(ckpt)
        if check_same_kg(ckpt, self.kg_meta, where, self.hparams.allow_other_kg):
            return
        own_by_canonical = {canonical_key(k): v for k, v in own.items()}
        state = ckpt["state_dict"]  # remapped in place; its names may differ from ours (init_from)
        own_for = {k: own_by_canonical[canonical_key(k)] for k in state if canonical_key(k) in own_by_canonical}
        matched = remap_kg_rows(state, own_for, ckpt["kg_keys"], kg_keys(self.hparams.kg_dir), self._kg_edges())
        grown = (ckpt.get("kg_meta") or {}).get("identity") in (self.kg_meta.get("lineage") or [])
        log.warning("%s: graph weights %s remapped by key (%d entities, %d relations matched; new entities start "
                    "from their neighbours' rows)", where, "of an earlier version of this KG" if grown else
                    "of another KG", matched["entities"], matched["relations"])

    def _kg_edges(self) -> torch.Tensor:
        from kgllm.kg.graph.store import KnowledgeGraph

        kg = KnowledgeGraph.load(self.hparams.kg_dir)
        return torch.tensor([[h for h, _, _ in kg.edges], [t for _, _, t in kg.edges]], dtype=torch.long).reshape(2, -1)
    # -- optimisation --------------------------------------------------------
    def configure_optimizers(self):
        from transformers import get_linear_schedule_with_warmup

        hp = self.hparams
        backbone = {id(p) for p in self.model.backbone.parameters()}
        fresh = {id(p) for m in self.head_modules() for p in m.parameters() if id(p) not in backbone}
        groups: dict[tuple[bool, bool], list] = {}
        for name, p in self.named_parameters():
            if not p.requires_grad:
                continue
            no_decay = p.ndim < 2 or "norm" in name.lower()
            new = is_kg_parameter(name) or id(p) in fresh or any(m in name for m in PEFT_MARKERS)
            groups.setdefault((new, no_decay), []).append(p)
        params = [{"params": ps, "lr": hp.kg_lr if kg else hp.lr, "weight_decay": 0.0 if nd else hp.weight_decay}
                  for (kg, nd), ps in sorted(groups.items())]
        opt = torch.optim.AdamW(params)
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        sched = get_linear_schedule_with_warmup(opt, int(hp.warmup_ratio * total), total)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # -- checkpoints ---------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        from kgllm.nn.checkpoints import kg_keys

        from kgllm.lit.runtime import checkpoint_metadata

        checkpoint["kg_meta"] = self.kg_meta
        checkpoint["kgllm"] = checkpoint_metadata(self._trainer, self)
        if self.hparams.get("kg_dir") and self._graph_tables(checkpoint["state_dict"]):
            if getattr(self, "_kg_keys", None) is None:  # lets allow_other_kg remap this checkpoint by key
                self._kg_keys = kg_keys(self.hparams.kg_dir)
            checkpoint["kg_keys"] = self._kg_keys

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """``--ckpt_path``: the checkpoint must come from this KG (or be remapped by key; resuming
        training then needs ``init_from``, since the optimiser's state has the old table sizes)."""
        from kgllm.nn.checkpoints import CheckpointError

        src = (checkpoint.get("kg_meta") or {}).get("identity")
        trainer = self._trainer
        if (src and src != self.kg_meta.get("identity") and trainer is not None and trainer.state.fn == "fit"
                and self._graph_tables(checkpoint["state_dict"])):
            raise CheckpointError("--ckpt_path resumes training on the KG it was trained on only; for a KG that "
                                  "changed since (update-kg) start from it with --model.init_args.init_from CKPT")
        self._check_kg(checkpoint, "checkpoint", self.state_dict())

    # -- steps ---------------------------------------------------------------
    def _step(self, batch: dict, stage: str) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        if self.model.fusion_layers:  # gate norms and linked share, every log_every_n_steps
            stats = self.model.fusion_stats(batch["token_node"], batch["attention_mask"])
            self.log_dict(stats, on_step=True, on_epoch=False, batch_size=batch["input_ids"].size(0))
        return self._step(batch, "train")

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._step(batch, "test")

    def fused_inputs(self, batch: dict) -> dict:
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"],
                "graph": batch["graph"], "token_node": batch["token_node"]}
