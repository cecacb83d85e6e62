"""The task registry: every task keeps the contract, unknown names fail clearly, and a new task is
one file (written here to a temporary module, registered, featurised, collated and trained)."""

import textwrap

import pytest
import torch

from kgllm.util.errors import ConfigError
from kgllm.nn.fusion import HEAD_POSITIONS
from kgllm.tasks import TASKS, Task, get_task, register_task, task_class


def test_every_registered_task_keeps_the_contract():
    for name in TASKS:
        cls = task_class(name)
        assert issubclass(cls, Task) and cls.name == name
        assert cls.head_reads in HEAD_POSITIONS


def test_unknown_task_names_the_choices():
    with pytest.raises(ConfigError, match="unknown task 'regression'.*seq_cls"):
        get_task("regression")
    with pytest.raises(ValueError, match="already registered"):
        register_task("mlm", "x:Y")


NEW_TASK = '''
"""Classify a text by its first word's state (reads every token position)."""
from torch import nn

from kgllm.nn.backbone import load_hf_model
from kgllm.tasks.base import Task


class FirstWord(Task):
    name = "first_word"
    head_reads = "tokens"

    def build_hf(self, backbone, num_labels, dropout, hf_kwargs):
        from transformers import BertModel

        return load_hf_model(BertModel, backbone, add_pooling_layer=False, **hf_kwargs)

    def build_head(self, hidden_size, num_labels, dropout):
        return nn.Linear(hidden_size, num_labels)

    def logits(self, model, head, inputs, batch):
        return head(model.encode(**inputs)[:, 1])
'''


def test_a_new_task_is_one_file(tmp_path, monkeypatch, kg_dir, kg, tokenizer):
    from kgllm.data.collate import KGCollator
    from kgllm.data.datasets import TextExample
    from kgllm.data.features import Featurizer
    from kgllm.data.subgraph import SubgraphSampler
    from kgllm.kg.graph.to_pyg import to_pyg
    from kgllm.linking import EntityLinker
    from kgllm.lit import ClassifierModule

    (tmp_path / "first_word_task.py").write_text(textwrap.dedent(NEW_TASK))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(TASKS, "first_word", "first_word_task:FirstWord")

    examples = [TextExample("Paris is a city in France.", label=0), TextExample("Berlin is big.", label=1)]
    featurize = Featurizer(tokenizer, EntityLinker.from_kg(kg), "first_word", 32)
    feats = [f for ex in examples for f in featurize(ex, [])]
    batch = KGCollator(tokenizer, SubgraphSampler(to_pyg(kg)), "first_word")(feats)
    assert batch["labels"].tolist() == [0, 1]

    torch.manual_seed(0)
    model = ClassifierModule(backbone="tiny", kg_dir=str(kg_dir), fusion="gated", fusion_layers=[0], gnn_hidden=16,
                             gnn_heads=2, task="first_word", num_labels=2, vocab_size=len(tokenizer),
                             backbone_dropout=0.0, head_dropout=0.0)
    model.configure_model()
    assert isinstance(model.head, torch.nn.Linear) and model.head_modules() == [model.head]
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(30):
        loss, _, _ = model.task_spec.loss(model(batch), batch)
        first = float(loss) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < 0.05 < first  # the new task's head and loss train the model


def test_a_dataset_registered_from_user_code_loads_with_its_typed_options(monkeypatch):
    import pytest

    from kgllm.data import datasets
    from kgllm.data.datasets import TextExample, dataset_options, load_dataset, register_dataset
    from kgllm.util.errors import ConfigError

    monkeypatch.setattr(datasets, "DATASETS", dict(datasets.DATASETS))

    def load_pairs(data_dir=None, n: int = 2):
        rows = [TextExample(f"text {i}", i % 2) for i in range(3 * n)]
        return {"train": rows[:n], "val": rows[n:2 * n], "test": rows[2 * n:]}, ["even", "odd"]

    register_dataset("pairs", "seq_cls", load_pairs)
    splits, labels, task = load_dataset("pairs", n=3)
    assert task == "seq_cls" and labels == ["even", "odd"] and [len(splits[s]) for s in ("train", "val", "test")] == [3] * 3
    assert dataset_options("pairs") == "n: int = 2"
    with pytest.raises(ConfigError):
        load_dataset("pairs", m=1)  # an option the loader does not take
    with pytest.raises(ValueError, match="already registered"):
        register_dataset("pairs", "seq_cls", load_pairs)
    with pytest.raises(ValueError, match="task 'nope' is not registered"):
        register_dataset("other", "nope", load_pairs)
