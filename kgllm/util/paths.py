"""Where datasets, models and caches live; clear errors when they are missing."""

from __future__ import annotations

import os
from pathlib import Path

from kgllm.util.errors import DatasetNotFoundError

DATA_ENV = "KGLLM_DATA"
CACHE_ENV = "KGLLM_CACHE"

#: how to obtain each dataset, shown when it is missing
DATASET_SOURCES = {
    "redocred": "Re-DocRED dev_revised.json from https://github.com/tonytan48/Re-DocRED (data/)",
    "fewrel": "FewRel 1.0 val_wiki.json and pid2name.json from https://github.com/thunlp/FewRel (data/)",
    "lama_trex": "LAMA T-REx jsonl files from https://github.com/ucinlp/autoprompt (data/TREx_all/)",
    "sst2": "SST-2 train/dev/test .tsv (GLUE) e.g. from https://github.com/forest-snow/alps (data/SST-2/)",
    "kg": "link-prediction benchmarks from https://github.com/thunlp/OpenKE and pykeen/pykeen",
}


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data folder: ``root`` if given, else ``$KGLLM_DATA``."""
    if root is None:
        root = os.environ.get(DATA_ENV)
        if not root:
            raise DatasetNotFoundError(
                f"no data folder: set {DATA_ENV} to the folder holding the datasets "
                f"(e.g. export {DATA_ENV}=../shared/data) or pass data_dir"
            )
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DatasetNotFoundError(f"{path}: data folder does not exist (set {DATA_ENV} or data_dir)")
    return path


def dataset_file(name: str, *parts: str, root: str | os.PathLike | None = None) -> Path:
    """Path of ``root/name/*parts``; raise a clear error naming the path and its source if missing."""
    path = data_root(root).joinpath(name, *parts)
    if not path.exists():
        how = DATASET_SOURCES.get(name, "see ../shared/data/README.md")
        raise DatasetNotFoundError(f"{path}: dataset file not found. Obtain it from {how}, "
                                   f"and point {DATA_ENV} at the folder holding '{name}/'.")
    return path


def cache_dir() -> Path:
    """kgllm's cache folder (``$KGLLM_CACHE``, default ``~/.cache/kgllm``), created if missing."""
    path = Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "kgllm"))
    path.mkdir(parents=True, exist_ok=True)
    return path
