"""``dataset: hf``: any Hugging Face ``datasets`` source as a kgllm dataset, for every task.

A source is what :mod:`kgllm.kg.extraction.hf_sources` reads (a CSV/TSV/JSON Lines/Parquet file, a folder of split
files, a ``save_to_disk`` folder, a hub name when online). ``datasets`` does the reading, caching and
type inference; this module maps columns to :class:`~kgllm.data.examples.TextExample` fields and
labels to ids.

Columns (``columns`` maps these names to yours; defaults are the names themselves):

* ``seq_cls``: ``text``, ``label``;  ``seq_pair``: ``text``, ``text_pair``, ``label``;
* ``multi_label``: ``text``, ``label`` (a list of labels, or a string split at ``label_sep``);
* ``rel_cls``: ``text``, ``label`` and ``head`` / ``tail`` character spans (``[start, end]`` or
  ``{"start", "end"}``); without those columns the text marks them SemEval-style
  (``<e1>head</e1> ... <e2>tail</e2>``);
* ``token_cls``: ``tokens`` (a list of words) and ``tags`` (BIO tags, strings or ``ClassLabel`` ids);
* ``mlm``: ``text``.

Label names come from a ``ClassLabel`` feature, else from the sorted distinct values of the
training split (numbers sorted as numbers); they are saved in checkpoints, so predictions print names.
"""

from __future__ import annotations

import logging
import re

from kgllm.data.examples import SPLITS, TextExample
from kgllm.util.errors import ConfigError, CorpusError
from kgllm.kg.extraction.hf_sources import ROW, check_text, open_source, require_columns, resolve_splits

log = logging.getLogger(__name__)

#: task -> the columns it reads (``label``: optional when the label names are given, as for predictions)
TASK_COLUMNS = {"seq_cls": ("text", "label"), "seq_pair": ("text", "text_pair", "label"),
                "multi_label": ("text", "label"), "rel_cls": ("text", "label"), "token_cls": ("tokens", "tags"),
                "mlm": ("text",)}
HF_TASKS = tuple(TASK_COLUMNS)
MARKED = re.compile(r"<e([12])>(.*?)</e\1>", re.S)


def _class_names(feature) -> list[str] | None:
    """Names of a ``ClassLabel`` feature, or of the ``ClassLabel`` inside a list feature."""
    import datasets

    inner = getattr(feature, "feature", None)
    if isinstance(feature, datasets.ClassLabel):
        return list(feature.names)
    if isinstance(inner, datasets.ClassLabel):
        return list(inner.names)
    return None


def _sorted_values(values, where: str) -> list[str]:
    values = set(values)
    kinds = {type(v) for v in values}
    if values and kinds <= {int, float, bool}:
        return [str(v) for v in sorted(values)]
    if values and kinds != {str}:
        raise CorpusError(f"{where}: labels mix types {sorted(k.__name__ for k in kinds)}")
    return sorted(values)


def _label_list(value, sep: str | None, where: str) -> list:
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str) and sep:
        return [v.strip() for v in value.split(sep) if v.strip()]
    raise CorpusError(f"{where}: multi_label needs a list of labels (or label_sep for strings), got {value!r}")


def _bio_spans(tokens: list[str], tags: list[str], where: str) -> tuple[str, list[tuple[int, int, str]]]:
    """Words joined by spaces and the typed character spans of their BIO tags (``X`` alone counts as
    ``I-X``; an ``I-`` tag that continues nothing starts a span)."""
    if len(tokens) != len(tags):
        raise CorpusError(f"{where}: {len(tokens)} tokens but {len(tags)} tags")
    text, starts, spans = "", [], []
    for tok in tokens:
        if not isinstance(tok, str) or not tok:
            raise CorpusError(f"{where}: tokens must be non-empty strings, got {tok!r}")
        starts.append(len(text) + (1 if text else 0))
        text = f"{text} {tok}" if text else tok
    current = None  # [start, end, type]
    for i, tag in enumerate(tags):
        tag = str(tag)
        if tag == "O":
            current = None
            continue
        prefix, _, kind = tag.partition("-") if tag[:2] in ("B-", "I-") else ("I", "", tag)
        if prefix == "B" or current is None or current[2] != kind:
            current = [starts[i], starts[i] + len(tokens[i]), kind]
            spans.append(current)
        else:
            current[1] = starts[i] + len(tokens[i])
    return text, [tuple(s) for s in spans]


def _span(value, text: str, where: str, column: str) -> tuple[int, int]:
    if isinstance(value, dict):
        value = (value.get("start"), value.get("end"))
    ok = isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) for v in value)
    if not ok or not 0 <= value[0] < value[1] <= len(text):
        raise CorpusError(f"{where}: column '{column}' must be a [start, end] character span inside the text, "
                          f"got {value!r}")
    return int(value[0]), int(value[1])


def _unmark(text: str, where: str) -> tuple[str, tuple[int, int], tuple[int, int]]:
    """Text with SemEval-style ``<e1>``/``<e2>`` markers removed, and the two marked spans."""
    found: dict[str, tuple[int, int]] = {}
    out, last = [], 0
    length = 0
    for m in MARKED.finditer(text):
        out.append(text[last:m.start()])
        length += m.start() - last
        found[m.group(1)] = (length, length + len(m.group(2)))
        out.append(m.group(2))
        length += len(m.group(2))
        last = m.end()
    out.append(text[last:])
    if set(found) != {"1", "2"}:
        raise CorpusError(f"{where}: rel_cls needs head/tail columns or <e1>...</e1> and <e2>...</e2> in the text")
    return "".join(out), found["1"], found["2"]


def load_hf(data_dir=None, source: str = "", task: str = "seq_cls", columns: dict[str, str] | None = None,
            splits: dict[str, str | None] | None = None, split_fraction: float = 0.1, split_seed: int = 0,
            label_names: list[str] | None = None, label_sep: str | None = None, config_name: str | None = None) -> tuple:
    """Any ``datasets`` source as ``(splits, label_names)`` for ``task`` (see the module docstring).

    Args:
        source: a file, a folder of split files, a ``save_to_disk`` folder, or a hub name.
        task: ``seq_cls``, ``seq_pair``, ``multi_label``, ``rel_cls``, ``token_cls`` or ``mlm``.
        columns: your column names for ``text``, ``text_pair``, ``label``, ``head``, ``tail``,
            ``tokens``, ``tags``.
        splits: kgllm split -> source split (``None``: no such split); see :func:`resolve_splits`.
        split_fraction, split_seed: how a missing val/test split is carved from training.
        label_names: a fixed label set (a trained model's, for predictions): the label column may then
            be absent, and labels are matched by name.
        label_sep: ``multi_label`` labels given as one string, split at this separator.
        config_name: the configuration of a hub dataset (``datasets.load_dataset(source, config_name)``).
    """
    if task not in TASK_COLUMNS:
        raise ConfigError(f"dataset 'hf': task must be one of {HF_TASKS}, got {task!r}")
    cols = {c: c for c in ("text", "text_pair", "label", "head", "tail", "tokens", "tags")}
    unknown = sorted(set(columns or {}) - set(cols))
    if unknown:
        raise ConfigError(f"dataset 'hf': columns has unknown key(s) {unknown}; use {sorted(cols)}")
    cols.update(columns or {})
    dsd = open_source(source, config_name)
    parts, origin = resolve_splits(dsd, source, splits, split_fraction, split_seed)
    if parts["train"] is None and label_names is None and task != "mlm":
        raise ConfigError(f"{source}: no training split to take label names from (it has {list(dsd)})")
    needed = [cols[c] for c in TASK_COLUMNS[task] if not (c == "label" and label_names is not None)]
    for split, ds in parts.items():
        if ds is not None:
            require_columns(ds, source, origin[split], needed)
    label_col = cols["tags"] if task == "token_cls" else cols["label"]

    def values(split: str) -> list:
        ds = parts[split]
        if ds is None or label_col not in ds.column_names:
            return []
        raw = ds[label_col]
        names = _class_names(ds.features[label_col])
        if names is not None:  # ClassLabel ids -> names
            raw = [[names[v] for v in r] if isinstance(r, list) else None if r is None or r < 0 else names[r]
                   for r in raw]  # ClassLabel -1: no label
        return raw

    labels: list[str] = []
    if task != "mlm":
        if label_names is not None:
            labels = list(label_names)
        else:
            train_values = values("train")
            where = f"{source} [{origin['train'].split(' (')[0]}]"
            if task == "multi_label":
                train_rows = parts["train"][ROW]
                flat = [v for i, r in zip(train_rows, train_values) for v in _label_list(r, label_sep, f"{where} row {i}")]
                labels = _class_names(parts["train"].features[label_col]) or _sorted_values(flat, where)
            elif task == "token_cls":
                tokens = parts["train"][cols["tokens"]]
                kinds = {s[2] for i, tk, tg in zip(parts["train"][ROW], tokens, train_values)
                         for s in _bio_spans(tk, [str(t) for t in tg], f"{where} row {i}")[1]}
                labels = ["O"] + [f"{p}-{k}" for k in sorted(kinds) for p in ("B", "I")]
            else:
                names = _class_names(parts["train"].features[label_col])
                labels = names or _sorted_values((v for v in train_values if v is not None), where)
            if not labels or (task != "token_cls" and len(labels) < 2):
                raise CorpusError(f"{where}: column '{label_col}' holds {len(labels)} distinct label(s); "
                                  "classification needs at least 2")
    index = {name: i for i, name in enumerate(labels)}

    def label_id(value, where: str) -> int:
        key = str(value)
        if key not in index:
            raise CorpusError(f"{where}: label {value!r} does not occur in the training split "
                              f"(labels: {labels[:20]}{' ...' if len(labels) > 20 else ''})")
        return index[key]

    out: dict[str, list] = {}
    for split in SPLITS:
        ds = parts[split]
        if ds is None:
            out[split] = []
            continue
        rows, lab = [], values(split)
        data = {c: ds[c] for c in set(needed) | ({cols["head"], cols["tail"]} & set(ds.column_names))}
        base, row_of = origin[split].split(" (")[0], ds[ROW]
        for i in range(len(ds)):
            where = f"{source} [{base}] row {row_of[i]}"
            gold = lab[i] if lab and lab[i] is not None else None
            if gold is None and label_names is None and task not in ("mlm", "token_cls"):
                raise CorpusError(f"{where}: column '{label_col}' is empty")
            if task == "token_cls":
                tokens = data[cols["tokens"]][i]
                tags = [str(t) for t in lab[i]] if lab else ["O"] * len(tokens)
                text, spans = _bio_spans(tokens, tags, where)
                for s in spans:
                    label_id(f"B-{s[2]}", where)
                rows.append(TextExample(text, spans=spans))
                continue
            text = check_text(data[cols["text"]][i], source, base, row_of[i], cols["text"])
            if task == "mlm":
                rows.append(TextExample(text))
                continue
            if task == "multi_label":
                y = [] if gold is None else sorted({label_id(v, where) for v in _label_list(gold, label_sep, where)})
            else:
                y = -1 if gold is None else label_id(gold, where)
            ex = TextExample(text, y)
            if task == "seq_pair":
                ex.text_pair = check_text(data[cols["text_pair"]][i], source, base, row_of[i], cols["text_pair"])
            elif task == "rel_cls":
                if cols["head"] in data and cols["tail"] in data:
                    h = _span(data[cols["head"]][i], text, where, cols["head"])
                    t = _span(data[cols["tail"]][i], text, where, cols["tail"])
                else:
                    ex.text, h, t = _unmark(text, where)
                if h[0] < t[1] and t[0] < h[1]:
                    raise CorpusError(f"{where}: head {h} and tail {t} overlap")
                ex.head, ex.tail, ex.spans = h, t, sorted([(*h, "MISC"), (*t, "MISC")])
            rows.append(ex)
        out[split] = rows
    log.info("hf %s: %s", source, ", ".join(f"{s} {len(out[s])} from {origin.get(s, '-')}" for s in SPLITS))
    return out, labels
