"""Tasks by name: everything that differs between tasks lives in one file per task.

The datamodule (featurising, collating) and the Lightning modules (model, head, loss, metrics)
look a task up here by name; the contract every task keeps is :class:`~kgllm.tasks.base.Task`.
To add a task: a new file in this package with a ``Task`` subclass and one line in
:data:`TASKS` (or :func:`register_task` from your own package); a dataset then names it (:func:`kgllm.data.datasets.register_dataset`).
"""

from __future__ import annotations

import importlib

from kgllm.util.errors import ConfigError
from kgllm.tasks.base import DataSpec, Task

__all__ = ["TASKS", "DataSpec", "Task", "get_task", "register_task", "task_class"]

#: task name -> "module:Class" (imported on first use)
TASKS: dict[str, str] = {
    "mlm": "kgllm.tasks.mlm:MaskedLM",
    "seq_cls": "kgllm.tasks.seq_cls:SequenceClassification",
    "seq_pair": "kgllm.tasks.seq_pair:SequencePairClassification",
    "multi_label": "kgllm.tasks.multi_label:MultiLabelClassification",
    "rel_cls": "kgllm.tasks.rel_cls:RelationClassification",
    "token_cls": "kgllm.tasks.token_cls:TokenClassification",
    "docre": "kgllm.tasks.docre:DocRelationExtraction",
    "cloze": "kgllm.tasks.cloze:Cloze",
}


def register_task(name: str, target: str) -> None:
    """Make ``"module:Class"`` available as task ``name``."""
    if name in TASKS:
        raise ValueError(f"task {name!r} is already registered")
    TASKS[name] = target


def task_class(name: str) -> type[Task]:
    """The registered task class of ``name`` (imported on first use)."""
    if name not in TASKS:
        raise ConfigError(f"unknown task {name!r}; choose from {sorted(TASKS)}")
    module, _, cls = TASKS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def get_task(name: str | Task, **options) -> Task:
    """The task called ``name`` built with its ``options`` (a :class:`Task` is returned as is)."""
    return name if isinstance(name, Task) else task_class(name)(**options)
