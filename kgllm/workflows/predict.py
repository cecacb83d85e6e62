"""``kgllm predict CKPT --input SOURCE --out preds.jsonl``: a fine-tuned classifier on new texts.

The input is any source ``dataset: hf`` reads (a CSV/TSV/JSON Lines/Parquet file, a folder, a
``save_to_disk`` folder); its columns are mapped as in training (the training ``columns`` without
the label, or ``--columns``). Texts are linked to
the checkpoint's KG and fed through the same fused model. One JSON line per input row:

* ``index`` (row of the split), ``text`` (and ``text_pair``), ``nodes``: the KG entities the text
  was linked to (what fusion could use), ``gold`` when the input has labels;
* ``seq_cls`` / ``seq_pair`` / ``rel_cls``: ``label`` (name) and ``probs`` (softmax, by name);
* ``multi_label``: ``labels`` (probability >= 0.5) and ``probs`` (sigmoid, by name);
* ``token_cls``: ``entities``: ``{start, end, text, type}`` spans decoded from the BIO tags;
* an example the model cannot read (its relation entity cut off by ``max_length``) gets ``skipped``.

    kgllm predict runs/sst2/best.ckpt --input headlines.csv --columns '{"text": "headline"}' --out preds.jsonl

(``kgllm predict --config X.yaml --ckpt_path CKPT`` is LightningCLI's predict instead.)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from kgllm.util.formatting import HelpFormatter
from kgllm.util.errors import ConfigError, KGLLMError

TASKS = ("seq_cls", "seq_pair", "multi_label", "rel_cls", "token_cls")


def load_classifier(ckpt: str, kg_dir: str | None = None, tasks: tuple | None = TASKS):
    """A ClassifierModule checkpoint (``weights_only``; ``init_from`` not re-run) in eval mode, its
    task, label names and datamodule settings; ``tasks``: the tasks accepted (``None``: any)."""
    from kgllm.lit.base import read_checkpoint, restore_module

    raw = read_checkpoint(ckpt)
    hp = raw.get("hyper_parameters", {})
    task = hp.get("task")
    if task is None or (tasks is not None and task not in tasks):
        tasks = tasks or ("a classification task",)
        hint = " (document-level RE: kgllm build-kg --extractor learned --re-model CKPT)" if task == "docre" else ""
        raise KGLLMError(f"{ckpt}: a {task or 'non-classification'} checkpoint; this command reads "
                         f"{', '.join(tasks)}{hint}")
    model = restore_module(ckpt, raw, kg_dir)
    labels = raw.get("label_names") or [str(i) for i in range(int(hp.get("num_labels") or 0))]
    return model, task, list(labels), dict(raw.get("datamodule_hyper_parameters") or {})


def _pick_split(source: str, split: str | None) -> str:
    from kgllm.data.hf import open_source

    names = list(open_source(source))
    if split:
        if split not in names:
            raise ConfigError(f"{source}: no split {split!r}; it has {names}")
        return split
    if len(names) == 1:
        return names[0]
    if "test" in names:
        return "test"
    raise ConfigError(f"{source}: several splits {names}; choose one with --split")


def _entities(text: str, tokenizer, max_length: int, tags: list[str]) -> list[dict]:
    """Character spans of the BIO tags predicted on each word's first wordpiece."""
    enc = tokenizer(text, return_offsets_mapping=True, truncation=True, max_length=max_length)
    words: dict[int, list] = {}
    for t, w in enumerate(enc.word_ids()):
        if w is None or t >= len(tags):
            continue
        s, e = enc["offset_mapping"][t]
        if w not in words:
            words[w] = [s, e, tags[t]]
        else:
            words[w][1] = e
    spans: list[list] = []
    for s, e, tag in (words[w] for w in sorted(words)):
        if tag == "O":
            spans.append(None)
            continue
        prefix, _, kind = tag.partition("-")
        last = spans[-1] if spans else None
        if prefix == "I" and last is not None and last[2] == kind:
            last[1] = e
        else:
            spans.append([s, e, kind])
    return [{"start": s, "end": e, "text": text[s:e], "type": k} for s, e, k in filter(None, spans)]


def _check_out(out: str, source: str) -> None:
    """``--out`` must be a file path that is not the input (nor inside an input folder)."""
    import os

    target, src = Path(os.path.realpath(out)), Path(os.path.realpath(os.path.expandvars(source)))
    if target.is_dir():
        raise ConfigError(f"--out {out}: is a folder; give the JSON Lines file to write")
    if target == src or src in target.parents:
        raise ConfigError(f"--out {out}: is (or is inside) the input {source}; it would be overwritten")
    for parent in target.parents:
        if parent.exists() and not parent.is_dir():
            raise ConfigError(f"--out {out}: cannot create it, {parent} is a file")


def predict(ckpt: str, source: str, out: str, split: str | None = None, columns: dict | None = None,
            dataset_args: dict | None = None, kg_dir: str | None = None, batch_size: int = 32,
            limit: int | None = None, accelerator: str = "auto", progress: bool = True) -> int:
    """Write one JSON line per row of ``source``'s ``split`` to ``out``; returns the number of rows."""
    from kgllm.util.io import atomic_write_text

    _check_out(out, source)
    clf = KGClassifier.from_checkpoint(ckpt, kg_dir)
    rows = clf.predict_source(source, split, columns, dataset_args, batch_size, limit, accelerator, progress)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    return len(rows)


class KGClassifier:
    """A fine-tuned kgllm classifier and its KG, for use from Python::

        from kgllm import KGClassifier
        clf = KGClassifier.from_checkpoint("runs/sst2/version_0/checkpoints/best.ckpt")
        clf.predict(["Angela Merkel speaks in Paris", "Quiet day"])
        # [{"index": 0, "text": ..., "nodes": [{"key": ..., "label": "Angela Merkel"}, ...],
        #   "label": "world", "probs": {"world": 0.81, ...}}, ...]

    Each result is the JSON line ``kgllm predict`` writes (see this module's docstring): the texts
    are linked to the KG and read by the same fused model as in training.
    """

    def __init__(self, model, task: str, labels: list[str], datamodule_hparams: dict,
                 kg_dir: str | None = None) -> None:
        self.model, self.task, self.labels = model, task, labels
        self.datamodule_hparams, self.kg_dir = datamodule_hparams, kg_dir

    @classmethod
    def from_checkpoint(cls, path: str, kg_dir: str | None = None) -> "KGClassifier":
        """Load a ClassifierModule checkpoint (``weights_only``); ``kg_dir``: another KG folder than
        the one it was trained with (the same KG identity)."""
        return cls(*load_classifier(path, kg_dir), kg_dir=kg_dir)

    def predict(self, texts: "Sequence[str | tuple[str, str] | dict]", batch_size: int = 32,
                accelerator: str = "cpu") -> list[dict]:
        """Predictions for ``texts``: strings, ``(text, text_pair)`` pairs (``seq_pair``) or dicts
        with the training columns (``rel_cls``: ``text``, ``head``, ``tail`` as in training)."""
        import tempfile

        if isinstance(texts, str):
            raise TypeError("predict takes a list of texts, not one string")
        rows = []
        for i, item in enumerate(texts):
            if isinstance(item, str):
                rows.append({"text": item})
            elif isinstance(item, tuple) and len(item) == 2 and all(isinstance(x, str) for x in item):
                rows.append({"text": item[0], "text_pair": item[1]})
            elif isinstance(item, dict):
                rows.append(item)
            else:
                raise TypeError(f"texts[{i}]: expected a string, a (text, text_pair) pair or a dict, "
                                f"got {type(item).__name__}")
        if not rows:
            return []
        with tempfile.TemporaryDirectory(prefix="kgllm-predict-") as tmp:
            source = Path(tmp) / "texts.jsonl"
            source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
            own = {"text": "text", **({"text_pair": "text_pair"} if any("text_pair" in r for r in rows) else {})}
            columns = None if any(isinstance(item, dict) for item in texts) else own  # dicts: training columns
            return self.predict_source(str(source), columns=columns, batch_size=batch_size, accelerator=accelerator,
                                       progress=False)

    def predict_source(self, source: str, split: str | None = None, columns: dict | None = None,
                       dataset_args: dict | None = None, batch_size: int = 32, limit: int | None = None,
                       accelerator: str = "auto", progress: bool = True) -> list[dict]:
        """Predictions for every row of ``source`` (any input of ``dataset: hf``), one dict each."""
        import datasets

        was_on = datasets.is_progress_bar_enabled()
        if not progress:  # datasets' "Generating split" bars too
            datasets.disable_progress_bars()
        try:
            return self._predict_source(source, split, columns, dataset_args, batch_size, limit, accelerator,
                                        progress)
        finally:
            if was_on and not progress:
                datasets.enable_progress_bars()

    def _predict_source(self, source, split, columns, dataset_args, batch_size, limit, accelerator,
                        progress) -> list[dict]:
        import lightning as L
        import torch

        from kgllm.data.subgraph import SubgraphConfig
        from kgllm.data import KGDataModule

        model, task, labels, dm_hp = self.model, self.task, self.labels, self.datamodule_hparams
        split = _pick_split(source, split)
        args = {**(dataset_args or {}), "source": source, "task": task, "label_names": labels,
                "splits": {"train": None, "val": None, "test": split}}
        if columns is None:  # the training columns (a CSV's "headline" stays "headline"), labels optional
            trained = ((dm_hp.get("dataset_args") or {}).get("columns") or {}) if dm_hp.get("dataset") == "hf" else {}
            columns = {k: v for k, v in trained.items() if k not in ("label", "labels", "tags")} or None
        if columns:
            args["columns"] = columns
        dm = KGDataModule("hf", self.kg_dir or dm_hp.get("kg_dir") or model.hparams.kg_dir,
                          backbone=dm_hp.get("backbone") or model.hparams.backbone,
                          max_length=dm_hp.get("max_length", 128), batch_size=batch_size,
                          eval_batch_size=batch_size, max_eval=limit,
                          subgraph=SubgraphConfig(**(dm_hp.get("subgraph") or {})),
                          spacy_model=dm_hp.get("spacy_model"), dataset_args=args)
        dm.progress = progress
        trainer = L.Trainer(accelerator=accelerator, devices=1, logger=False, enable_checkpointing=False,
                            enable_progress_bar=progress, enable_model_summary=False)
        batches = trainer.predict(model, datamodule=dm)
        outputs = [r for b in batches for r in b]
        feats, examples = dm.features["test"], dm.splits["test"]
        by_example = {f["example"]: (f, r) for f, r in zip(feats, outputs)}
        keys = [(e.key, e.label) for e in dm.kg.entities]
        lines = []
        for i, ex in enumerate(examples):
            line: dict = {"index": i, "text": ex.text}
            if ex.text_pair is not None:
                line["text_pair"] = ex.text_pair
            if i not in by_example:
                lines.append({**line, "skipped": "an entity was cut off by max_length"})
                continue
            feat, logits = by_example[i]
            nodes = list(dict.fromkeys(n for n in feat["token_node"] if n >= 0))
            line["nodes"] = [{"key": keys[n][0], "label": keys[n][1]} for n in nodes]
            if task == "token_cls":
                n = len(feat["input_ids"])
                tags = [labels[k] for k in logits[:n].argmax(-1).tolist()]
                line["entities"] = _entities(ex.text, dm.tokenizer, dm.hparams.max_length, tags)
                if ex.spans:
                    line["gold"] = [{"start": s, "end": e, "text": ex.text[s:e], "type": k} for s, e, k in ex.spans]
            elif task == "multi_label":
                probs = torch.sigmoid(logits).tolist()
                line["labels"] = [labels[k] for k, p in enumerate(probs) if p >= 0.5]
                line["probs"] = {labels[k]: round(p, 6) for k, p in enumerate(probs)}
                if isinstance(ex.label, list) and ex.label:
                    line["gold"] = [labels[k] for k in ex.label]
            else:
                probs = torch.softmax(logits, -1).tolist()
                line["label"] = labels[max(range(len(probs)), key=probs.__getitem__)]
                line["probs"] = {labels[k]: round(p, 6) for k, p in enumerate(probs)}
                if task == "rel_cls":
                    line["head"], line["tail"] = ex.text[slice(*ex.head)], ex.text[slice(*ex.tail)]
                if isinstance(ex.label, int) and ex.label >= 0:
                    line["gold"] = labels[ex.label]
            lines.append(line)
        return lines


def _json_arg(text: str | None, flag: str) -> dict | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{flag}: not JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{flag}: expected a JSON object")
    return value


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="kgllm predict", description=__doc__,
                                formatter_class=HelpFormatter)
    p.add_argument("checkpoint", help="a ClassifierModule checkpoint (kgllm fit of a classification config)")
    p.add_argument("--input", required=True, help="file, folder or save_to_disk folder (see dataset: hf)")
    p.add_argument("--out", required=True, help="JSON Lines file to write")
    p.add_argument("--split", default=None, help="split of the input (default: its only split, else test)")
    p.add_argument("--columns", default=None, help='JSON column mapping, e.g. \'{"text": "headline"}\' (default: the '
                   "training columns, label optional)")
    p.add_argument("--dataset-args", default=None, help="other JSON options of dataset: hf (e.g. label_sep)")
    p.add_argument("--kg-dir", default=None, help="another KG folder than the checkpoint's (same KG identity)")
    p.add_argument("--batch-size", type=int, default=32, help="texts per forward pass")
    p.add_argument("--limit", type=int, default=None, help="only the first N rows")
    p.add_argument("--accelerator", default="auto", help="Lightning accelerator: auto, cpu, gpu")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    a = p.parse_args(argv)
    from kgllm.lit.quiet import quiet_third_party

    quiet_third_party(devices=True)
    n = predict(a.checkpoint, a.input, a.out, a.split, _json_arg(a.columns, "--columns"),
                _json_arg(a.dataset_args, "--dataset-args"), a.kg_dir, a.batch_size, a.limit, a.accelerator,
                not a.no_progress)
    print(f"{a.out}: {n} predictions", file=sys.stderr)
    return 0
