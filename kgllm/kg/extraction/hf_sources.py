"""Reading Hugging Face ``datasets`` sources: a local file (``.csv``, ``.tsv``, ``.json``, ``.jsonl``,
``.parquet``), a folder of such files (one split per file, named by the file: ``train.csv``,
``validation.csv``, ...), a folder written by ``DatasetDict.save_to_disk``, or a hub name (online
machines only), with kgllm's train/val/test mapped onto the source's splits (missing ones carved
from training with a seed). ``dataset: hf`` (:mod:`kgllm.data.hf`) and ``build-kg --format hf``
read through here, so a KG can be built from exactly an experiment's training split.

No torch here: the KG builder imports this module.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from pathlib import Path
from typing import Any

from kgllm.util.errors import ConfigError, CorpusError

log = logging.getLogger(__name__)

#: file name ending -> (datasets builder, builder options)
EXTENSIONS: dict[str, tuple[str, dict]] = {
    ".csv": ("csv", {}),
    ".tsv": ("csv", {"sep": "\t", "quoting": csv.QUOTE_NONE}),  # TSV has no quoting
    ".json": ("json", {}),
    ".jsonl": ("json", {}),
    ".parquet": ("parquet", {}),
}
#: kgllm split -> the source split names tried, in order, when ``splits`` does not name one
DEFAULT_SPLITS = {"train": ("train",), "val": ("validation", "val", "valid", "dev"), "test": ("test",)}
#: each row's index in its source split, kept through carving so errors name the source row
ROW = "__kgllm_row__"


def _cause(exc: BaseException, kind: type) -> BaseException | None:
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, kind):
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def _read_error(where: str, exc: Exception) -> CorpusError:
    """One line naming the file and what ``datasets`` (pandas, pyarrow) found wrong."""
    bad = _cause(exc, UnicodeDecodeError)
    if bad is not None:
        return CorpusError(f"{where}: not UTF-8 text ({bad.reason} at byte {bad.start})")
    inner = exc
    while inner.__cause__ is not None or inner.__context__ is not None:
        inner = inner.__cause__ or inner.__context__
    text = " ".join(str(inner).split()) or type(inner).__name__
    return CorpusError(f"{where}: cannot be read as a table ({text[:300]})")


#: deepest JSON nesting handed to ``datasets`` (pyarrow's JSON reader crashes the process, exit 139,
#: on rows nested thousands deep; a table row never needs more than a few levels)
MAX_JSON_DEPTH = 64


def _depth(value) -> int:
    """Nesting depth of parsed JSON, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, d = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, d)
            stack.extend((v, d + 1) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


def check_json_rows(path: Path) -> None:
    """Refuse a JSON/JSON Lines table that pyarrow's reader would crash on (exit 139), naming the
    line: a row that is not a JSON object (``null`` rows crash it), or one nested deeper than
    :data:`MAX_JSON_DEPTH`. Other syntax errors are left to the reader's own message."""
    import json

    with open(path, encoding="utf-8", errors="replace") as fh:
        whole = fh.read()
    if path.suffix.lower() == ".json":
        try:
            doc = json.loads(whole)
        except RecursionError:
            raise CorpusError(f"{path}: JSON nested more than {MAX_JSON_DEPTH} levels deep") from None
        except ValueError:
            doc = None  # JSON Lines in a .json file: checked line by line below
        if doc is not None:
            rows = doc if isinstance(doc, list) else [doc]
            for i, row in enumerate(rows):
                _check_row(row, f"{path}: row {i}")
            return
    for lineno, text in enumerate(whole.splitlines(), 1):
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except RecursionError:
            raise CorpusError(f"{path}:{lineno}: JSON nested more than {MAX_JSON_DEPTH} levels deep") from None
        except ValueError:
            continue
        _check_row(row, f"{path}:{lineno}")


def _check_row(row, where: str) -> None:
    if not isinstance(row, dict):
        raise CorpusError(f"{where}: a row must be a JSON object, not {type(row).__name__ if row is not None else 'null'}")
    if _depth(row) > MAX_JSON_DEPTH:
        raise CorpusError(f"{where}: JSON nested more than {MAX_JSON_DEPTH} levels deep")


def _load_file(path: Path, split: str, cache: str):
    import datasets

    builder, options = EXTENSIONS[path.suffix.lower()]
    if builder == "json":
        check_json_rows(path)
    try:
        return datasets.load_dataset(builder, data_files={split: str(path)}, split=split, cache_dir=cache, **options)
    except Exception as exc:  # noqa: BLE001 - every reader failure becomes one line naming the file
        raise _read_error(str(path), exc) from exc


def open_source(source: str, name: str | None = None):
    """``source`` read with ``datasets``: a ``DatasetDict`` (a single file is one split, ``train``).
    Environment variables in ``source`` are expanded (``$KGLLM_DATA/sst2``)."""
    import datasets

    from kgllm.util.paths import cache_dir

    if not source:
        raise ConfigError("dataset 'hf' needs dataset_args.source: a file, a folder or a hub name")
    cache = str(cache_dir() / "hf-datasets")
    source = os.path.expandvars(source)  # configs may say $KGLLM_DATA/sst2
    path = Path(source).expanduser()
    if path.is_file():
        if path.suffix.lower() not in EXTENSIONS:
            raise CorpusError(f"{path}: cannot tell the format from the name; use one of {', '.join(EXTENSIONS)}")
        return datasets.DatasetDict({"train": _load_file(path, "train", cache)})
    if path.is_dir():
        if (path / "dataset_dict.json").is_file() or (path / "dataset_info.json").is_file():
            loaded = datasets.load_from_disk(str(path))
            return loaded if isinstance(loaded, datasets.DatasetDict) else datasets.DatasetDict({"train": loaded})
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS)
        if not files:
            raise CorpusError(f"{path}: folder holds no {', '.join(EXTENSIONS)} files")
        splits = {}
        for f in files:
            split = re.sub(r"\W", "_", f.stem)
            if split in splits:
                raise CorpusError(f"{path}: two files for split {split!r} ({splits[split][0].name}, {f.name})")
            splits[split] = (f, _load_file(f, split, cache))
        return datasets.DatasetDict({s: ds for s, (_, ds) in splits.items()})
    if source.startswith(("/", ".", "~")) or "\\" in source:
        raise CorpusError(f"{source}: no such file or folder")
    try:
        return datasets.load_dataset(source, name, cache_dir=cache)
    except Exception as exc:  # noqa: BLE001 - offline machines: say what to download
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ConfigError(f"{source}: not a local file or folder, and the Hugging Face hub could not provide it "
                          f"({type(exc).__name__}: {first}); on a machine without internet, download it elsewhere "
                          f"(datasets.load_dataset({source!r}).save_to_disk(DIR)) and pass DIR as the source") from exc


def resolve_splits(dsd, source: str, splits: dict[str, str | None] | None = None, split_fraction: float = 0.1,
                   split_seed: int = 0) -> tuple[dict[str, Any], dict[str, str]]:
    """kgllm's train/val/test as ``datasets.Dataset`` objects (``None``: absent), and where each came from.

    ``splits`` maps kgllm split names to the source's (``None``: leave that split out); unnamed ones
    take the usual names (:data:`DEFAULT_SPLITS`); a source with one split uses it for training. A val
    or test split the source lacks is carved from the training split: ``split_fraction`` of it each,
    seeded by ``split_seed`` (the same rows on every run and in ``build-kg --split``).
    """
    splits = dict(splits or {})
    unknown = sorted(set(splits) - set(DEFAULT_SPLITS))
    if unknown:
        raise ConfigError(f"{source}: splits has unknown key(s) {unknown}; use train, val, test")
    if not 0 < split_fraction < 0.5:
        raise ConfigError(f"split_fraction must be in (0, 0.5), got {split_fraction}")
    names, out, origin = list(dsd), {}, {}
    dsd = {n: d if ROW in d.column_names else d.add_column(ROW, list(range(len(d)))) for n, d in dsd.items()}
    for split, candidates in DEFAULT_SPLITS.items():
        if split in splits:
            name = splits[split]
            if name is not None and name not in dsd:
                raise ConfigError(f"{source}: no split {name!r} (asked for {split}); it has {names}")
        else:
            name = next((n for n in candidates if n in dsd), None)
            if split == "train" and name is None and len(names) == 1 and names[0] not in splits.values():
                name = names[0]
        out[split] = None if name is None else dsd[name]
        if name is not None:
            origin[split] = name
    carve = [s for s in ("val", "test") if out[s] is None and s not in splits]
    if carve and out["train"] is not None:
        train = out["train"]
        if len(train) < len(carve) + 1:
            raise CorpusError(f"{source}: split {origin['train']!r} has {len(train)} rows, too few to carve "
                              f"{' and '.join(carve)} from")
        parts = train.train_test_split(test_size=split_fraction * len(carve), seed=split_seed, shuffle=True)
        out["train"], held = parts["train"], parts["test"]
        if len(carve) == 2:
            halves = held.train_test_split(test_size=0.5, seed=split_seed, shuffle=True)
            out["val"], out["test"] = halves["train"], halves["test"]
        else:
            out[carve[0]] = held
        base = origin["train"]
        origin["train"] = f"{base} (rest, seed {split_seed})"
        for s in carve:
            origin[s] = f"{base} ({split_fraction:.0%}, seed {split_seed})"
    return out, origin


def split_texts(source: str, split: str = "train", text_column: str = "text", config_name: str | None = None,
                splits: dict[str, str | None] | None = None, split_fraction: float = 0.1,
                split_seed: int = 0) -> tuple[list[str], str]:
    """The texts of one split exactly as ``dataset: hf`` trains on them (``split``: ``train``, ``val``
    or ``test``, carved the same way, or a split name of the source), and where they came from."""
    dsd = open_source(source, config_name)
    if split in DEFAULT_SPLITS:
        parts, origin = resolve_splits(dsd, source, splits, split_fraction, split_seed)
        ds, where = parts[split], origin.get(split)
    elif split in dsd:
        ds, where = dsd[split], split
    else:
        raise ConfigError(f"{source}: no split {split!r}; it has {list(dsd)} (or use train, val, test)")
    if ds is None:
        raise ConfigError(f"{source}: no {split} split")
    require_columns(ds, source, where, [text_column])
    texts = ds[text_column]
    rows = ds[ROW] if ROW in ds.column_names else range(len(ds))
    for t, row in zip(texts, rows):
        check_text(t, source, where.split(" (")[0], row, text_column)
    return texts, where


def require_columns(ds, source: str, split: str, columns) -> None:
    """Refuse a split that lacks one of ``columns``, naming the source, split and the columns it has."""
    found = [c for c in ds.column_names if c != ROW]
    missing = [c for c in columns if c not in found]
    if missing:
        raise CorpusError(f"{source} [{split.split(' (')[0]}]: no column {', '.join(map(repr, missing))} (columns "
                          f"found: {found}); map yours with dataset_args.columns")


#: longest text of one row (spaCy's own default ``nlp.max_length``: its parser needs ~1 GB per 100k characters)
MAX_TEXT_CHARS = 1_000_000


def check_text(value, source: str, split: str, row: int, column: str) -> str:
    """A row's text value, refused (naming source, split, row and column) when empty, not text or too long."""
    if not isinstance(value, str) or not value.strip():
        what = "empty" if isinstance(value, str) or value is None else f"a {type(value).__name__}, not text"
        raise CorpusError(f"{source} [{split}] row {row}: column '{column}' is {what}")
    if len(value) > MAX_TEXT_CHARS:
        raise CorpusError(f"{source} [{split}] row {row}: column '{column}' holds {len(value):,} characters, over "
                          f"the {MAX_TEXT_CHARS:,} spaCy parses at once; split the text into several rows")
    return value
