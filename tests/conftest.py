"""Shared fixtures: tiny corpora and datasets under tests/fixtures, a KG built from them once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
DATA = FIXTURES / "data"

#: dataset options that fit the fixture datasets (the real configs use larger ranges)
FIXTURE_DATASET_ARGS = {
    "redocred": {"train_docs": "0:4", "val_docs": "4:6"},
    "redocred_rc": {"train_docs": "0:4", "val_docs": "4:5", "test_docs": "5:6", "min_count": 1},
    "fewrel": {"n_train": 3, "n_val": 1},
    "sst2": {},
    "redocred_ner": {"train_docs": "0:4", "val_docs": "4:5", "test_docs": "5:6"},
    "lama_mlm": {"max_facts": 5},
    "redocred_docre": {"train_docs": "0:4", "val_docs": "4:6", "test_docs": "4:6"},
    "hf": {"source": "$KGLLM_DATA/sst2", "task": "seq_cls", "columns": {"text": "sentence"}},
}


@pytest.fixture(scope="session", autouse=True)
def _isolated_env(tmp_path_factory):
    """Point caches and KGLLM_DATA at test-owned folders for the whole session."""
    old = {k: os.environ.get(k) for k in ("KGLLM_CACHE", "KGLLM_DATA", "HF_HUB_OFFLINE")}
    os.environ["KGLLM_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    os.environ["KGLLM_DATA"] = str(DATA)
    os.environ["HF_HUB_OFFLINE"] = "1"  # tests never wait on network retries
    yield
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def redocred_file() -> Path:
    return DATA / "redocred" / "dev_revised.json"


@pytest.fixture(scope="session")
def kg_dir(tmp_path_factory, redocred_file) -> Path:
    """A KG folder built from the six fixture Re-DocRED documents."""
    from kgllm.kg.extraction.build import build_kg

    out = tmp_path_factory.mktemp("kg") / "tiny"
    build_kg(redocred_file, out, "redocred", progress=False)
    return out


@pytest.fixture(scope="session")
def kg(kg_dir):
    from kgllm.kg.graph.store import KnowledgeGraph

    return KnowledgeGraph.load(kg_dir, provenance=True)


@pytest.fixture(scope="session")
def nlp():
    from kgllm.kg.extraction.extract import load_pipeline

    return load_pipeline()


@pytest.fixture(scope="session")
def tokenizer():
    from kgllm.nn.backbone import load_tokenizer

    return load_tokenizer("tiny")
