"""``KGDataModule``: a dataset, its KG links and subgraphs, for any task."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader

from kgllm.data.subgraph import SubgraphConfig
from kgllm.data.collate import KGCollator
from kgllm.data.datasets import SPLITS, dataset_task, load_dataset
from kgllm.data.features import FeatureStats, Featurizer, class_counts, detect_mentions
from kgllm.data.sampler import EpochSampler, Padded, ShardSampler, mark_padding
from kgllm.data.subgraph import SubgraphSampler
from kgllm.util.errors import ConfigError, KGLLMError, check_fraction, check_positive
from kgllm.tasks import DataSpec, task_class
from kgllm.tasks.mlm import MASKING

log = logging.getLogger(__name__)
CONTROLS = ("none", "shuffled_links", "random_graph", "no_edges")
#: the splits each Lightning stage reads
STAGE_SPLITS = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}


def shuffle_links(feats: list[dict], num_nodes: int, seed: int) -> None:
    """Point every link at another node through one seeded random bijection of node ids (in place)."""
    perm = torch.randperm(num_nodes, generator=torch.Generator().manual_seed(seed)).tolist()
    for f in feats:
        f["token_node"] = [perm[v] if v >= 0 else -1 for v in f["token_node"]]


def rewire(graph, seed: int):
    """The same edges with their tails permuted at random: every node keeps its in- and out-degree
    and every edge its relation type, but who is connected to whom is random."""
    g = graph.clone()
    perm = torch.randperm(g.edge_index.size(1), generator=torch.Generator().manual_seed(seed))
    g.edge_index = torch.stack([g.edge_index[0], g.edge_index[1][perm]])
    return g


def without_edges(graph):
    """The same nodes (ids, rows, labels) and no edge: what entity ids alone give a fused model."""
    g = graph.clone()
    g.edge_index = g.edge_index[:, :0]
    g.edge_type = g.edge_type[:0]
    if getattr(g, "edge_weight", None) is not None:
        g.edge_weight = g.edge_weight[:0]
    return g


class KGDataModule(L.LightningDataModule):
    """Loads a dataset, links its mentions to the KG at ``kg_dir`` and serves fused-model batches.

    Args:
        dataset: a name from :data:`kgllm.data.datasets.DATASETS` (``redocred``, ``text``, ``lama_mlm``:
            task ``mlm``; ``redocred_rc``, ``fewrel``: ``rel_cls``; ``sst2``: ``seq_cls``; ``redocred_ner``:
            ``token_cls``; ``redocred_docre``: ``docre``); the dataset fixes the task, except ``hf`` (any
            Hugging Face ``datasets`` source, :mod:`kgllm.data.hf`), whose ``task`` option names it.
        kg_dir: KG folder written by ``kgllm build-kg``; ``None`` for no graph (a model that fuses none,
            such as the extractor ``kgllm prepare-extractor`` trains).
        backbone: ``minilm``, ``tiny``, or a local HF BERT folder (its tokenizer is used).
        data_dir: dataset root; ``None`` reads ``$KGLLM_DATA``.
        dataset_args: loader options (document ranges, ``path``/``format`` for ``text``, ``source``/``task``/
            ``columns`` for ``hf``, ...), checked against the loader's typed signature.
        max_length: wordpieces per example (markers and special tokens included).
        batch_size: training batch size; ``eval_batch_size`` defaults to it.
        max_train: use at most this many training examples (first N); ``max_eval`` likewise for val/test.
        mlm_probability: share of wordpieces masked for MLM (:mod:`kgllm.tasks.mlm`).
        masking: MLM masking unit: ``entity`` (whole mentions, else whole words), ``word`` or ``token``.
        subgraph: which part of the KG each example sees (:class:`~kgllm.data.subgraph.SubgraphConfig`:
            ``num_hops``, ``max_neighbors``, ``max_nodes``, ``edges``, ``sample``), e.g.
            ``--data.subgraph.num_hops 2``.
        eval_seed: seed of the fixed validation/test masks.
        spacy_model: spaCy pipeline for mention detection (``None``: the default pipeline).
        num_workers: DataLoader workers.
        control: ``none``, ``shuffled_links`` (every linked mention points at a fixed random other
            node: a seeded bijection of node ids), ``random_graph`` (the KG's edges rewired at
            random, keeping every node's in- and out-degree) or ``no_edges`` (entity ids and links
            kept, every edge dropped).
        data_seed: seed of the training order, the training masks and the controls; ``None`` takes
            the run's ``seed_everything`` seed, so every ablation arm of a seed sees the same data.
    """

    def __init__(self, dataset: str, kg_dir: str | None, backbone: str = "minilm", data_dir: str | None = None,
                 dataset_args: dict | None = None, max_length: int = 128, batch_size: int = 16,
                 eval_batch_size: int | None = None, max_train: int | None = None, max_eval: int | None = None,
                 mlm_probability: float = 0.15, masking: str = "entity", subgraph: SubgraphConfig | None = None,
                 eval_seed: int = 1234,
                 spacy_model: str | None = None, num_workers: int = 0, control: str = "none",
                 data_seed: int | None = None) -> None:
        super().__init__()
        if masking not in MASKING:
            raise ConfigError(f"--data.masking {masking!r} is not a masking unit; choose one of {', '.join(MASKING)}")
        if control not in CONTROLS:
            raise ConfigError(f"--data.control {control!r} is not a control; choose one of {', '.join(CONTROLS)}")
        check_positive(max_length=max_length, batch_size=batch_size, eval_batch_size=eval_batch_size,
                       max_train=max_train, max_eval=max_eval)
        check_positive(allow_zero=True, num_workers=num_workers)
        check_fraction(below_one=True, mlm_probability=mlm_probability)
        self.subgraph = subgraph or SubgraphConfig()
        self.save_hyperparameters(ignore=["subgraph"])
        self.progress = True  # progress bars while reading (not a hyper-parameter: kgllm predict turns it off)
        self.hparams["subgraph"] = self.subgraph.to_dict()  # a plain dict: checkpoints load with weights_only
        self.task = dataset_task(dataset, dataset_args)
        self.tokenizer = None
        self.kg = None
        self.label_names: list[str] = []
        self.features: dict[str, list[dict]] = {}
        self.split_stats: dict[str, FeatureStats] = {}  # examples, truncation, linked mentions per split

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def setup(self, stage: str | None = None) -> None:
        """Load the KG, tokenizer and dataset once; featurise the splits ``stage`` needs (``fit``:
        train and val, ``validate``: val, ``test``/``predict``: test, ``None``: all) that are not yet."""
        wanted = STAGE_SPLITS.get(stage, SPLITS)
        if all(split in self.features for split in wanted):
            return
        if self.tokenizer is None:
            self._load()
        hp = self.hparams
        for split in wanted:
            examples = self.splits[split]
            if split in self.features:
                continue
            if not examples:
                raise KGLLMError(f"dataset {hp.dataset}: split '{split}' is empty")
            found = detect_mentions([e.full_text for e in examples], hp.spacy_model, progress=self.progress)
            self.featurizer.stats = FeatureStats()  # per split, summed below
            feats = []
            for n, (ex, spans) in enumerate(zip(examples, found)):
                for f in self.featurizer(ex, spans):
                    f["example"] = n  # the example a feature (window) comes from
                    feats.append(f)
            for i, f in enumerate(feats):
                f["idx"] = i
            if hp.control == "shuffled_links":
                shuffle_links(feats, self.kg.num_entities, self.seed)
            self.features[split] = feats
            self.split_stats[split] = self.featurizer.stats
            log.info("%s %s: %s%s", hp.dataset, split, self.featurizer.stats.summary(),
                     class_counts(feats, self.label_names))
        self.feature_stats = sum(self.split_stats.values(), FeatureStats())

    def _load(self) -> None:
        from kgllm.kg.graph.store import KnowledgeGraph
        from kgllm.kg.graph.to_pyg import to_pyg
        from kgllm.linking import EntityLinker
        from kgllm.nn.backbone import load_tokenizer

        hp = self.hparams
        self.kg = KnowledgeGraph.load(hp.kg_dir) if hp.kg_dir else KnowledgeGraph()  # None: no graph at all
        tokenizer = load_tokenizer(hp.backbone)
        limit = getattr(tokenizer, "model_max_length", 512)
        if hp.max_length > min(limit, 512):
            raise KGLLMError(f"max_length {hp.max_length} exceeds the backbone's limit of {min(limit, 512)} tokens")
        self.splits, self.label_names, _ = load_dataset(hp.dataset, hp.data_dir, hp.max_train, hp.max_eval,
                                                        **(hp.dataset_args or {}))
        self.task_spec = task_class(self.task).for_data(hp, self.label_names)
        self.task_spec.prepare_tokenizer(tokenizer)
        graph = to_pyg(self.kg)
        if hp.control == "random_graph":
            graph = rewire(graph, self.seed)
        elif hp.control == "no_edges":
            graph = without_edges(graph)
        self.sampler = SubgraphSampler(graph, self.subgraph)
        self.featurizer = Featurizer(tokenizer, EntityLinker.from_kg(self.kg), self.task_spec, hp.max_length)
        self.tokenizer = tokenizer

    @property
    def seed(self) -> int:
        if self.hparams.data_seed is not None:
            return int(self.hparams.data_seed)
        return int(os.environ.get("PL_GLOBAL_SEED", 0))

    def current_epoch(self) -> int:
        trainer = self.trainer
        return int(trainer.current_epoch) if trainer is not None else 0

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        hp = self.hparams
        collate = KGCollator(self.tokenizer, self.sampler, self.task_spec,
                             eval_seed=None if shuffle else hp.eval_seed, train_seed=self.seed,
                             epoch=self.current_epoch)
        n = len(self.features[split])
        sampler = EpochSampler(n, self.seed, self.current_epoch) if shuffle else ShardSampler(n)
        data = self.features[split] if shuffle else Padded(self.features[split], mark_padding)
        return DataLoader(data, batch_size=hp.batch_size if shuffle else
                          (hp.eval_batch_size or hp.batch_size), sampler=sampler, collate_fn=collate,
                          num_workers=hp.num_workers, persistent_workers=hp.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        """The test split, in order (``kgllm predict`` points the test split at the input)."""
        return self._loader("test", shuffle=False)

    def spec(self) -> DataSpec:
        """What the model reads from this datamodule (after ``setup``): the data <-> model contract."""
        if self.tokenizer is None:
            raise KGLLMError("KGDataModule.spec() is available after setup()")
        return DataSpec(task=self.task, label_names=list(self.label_names), vocab_size=len(self.tokenizer),
                        backbone=self.hparams.backbone, kg_dir=self.hparams.kg_dir)

    def kg_meta(self) -> dict:
        return dict(self.kg.meta) if self.kg is not None else {}

    @property
    def kg_path(self) -> Path | None:
        return Path(self.hparams.kg_dir) if self.hparams.kg_dir else None
