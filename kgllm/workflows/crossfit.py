"""``kgllm cross-fit-kg``: a KG of a labelled document set whose edges no extractor trained on.

A fused document-level extractor reads a KG that the learned extractor built. If that KG's edges
on the training documents come from a model trained on those documents, they are near-gold labels
given as input, while test documents only get the edges of a model that never saw them: the fused
model learns a shortcut that is missing at test. Cross-fitting removes the asymmetry (as
cross-fitting does for nuisance models in double machine learning, and as stacking does for
out-of-fold predictions):

1. the training documents are cut into ``--folds`` contiguous folds;
2. for each fold, an extractor (the config's model, fusion off) is trained on the other folds, and
   ``build-kg --extractor learned`` writes that fold's KG from its raw text with it (spaCy mentions,
   no labels); the fold model is also scored on its held-out fold (gold entities), so the quality
   of every fold's edges is on record;
3. one extractor trained on every training document writes the KG of the evaluation documents
   (validation and test, raw text only: no labels are read); with ``--eval-extractor fold0``, fold
   0's extractor writes it instead (it never read them either), so every part's edges come from
   extractors trained on the same number of documents, and one fit is saved;
4. the parts merge by label into ``OUT/kg``, and an audit reads every edge's provenance and every
   extractor checkpoint's own training documents and refuses a KG where an edge of a document comes
   from a model trained on it (``OUT/crossfit.json``).

    kgllm cross-fit-kg --config experiments/docre_redocred.yaml --train-docs 0:350 --val-docs 350:400 \\
        --eval-docs 350:500 --folds 2 --out graphs/docre_crossfit --trainer.max_epochs 4

Options after the known ones are config overrides for every extractor fit (as for ``kgllm fit``).
A finished step is kept: run the same command again to resume; another plan in ``OUT`` is refused.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Sequence

from kgllm.util.errors import ConfigError, KGLLMError
from kgllm.util.io import OutputError
from kgllm.util.formatting import HelpFormatter

PLAN = "plan.json"


def folds_of(spec: str, n_docs: int, k: int) -> list[list[int]]:
    """The ``k`` contiguous folds (sizes differing by at most one) of the documents ``spec`` names."""
    from kgllm.data.datasets import doc_indices

    docs = doc_indices(spec, n_docs)
    if k < 2 or k > len(docs):
        raise ConfigError(f"--folds {k}: need 2 to {len(docs)} folds for {len(docs)} training documents ({spec})")
    size, extra = divmod(len(docs), k)
    out, start = [], 0
    for i in range(k):
        end = start + size + (i < extra)
        out.append(docs[start:end])
        start = end
    return out


def doc_id(index: int) -> str:
    """The corpus id of document ``index`` of the gold file (provenance rows carry it)."""
    return f"doc{index}"


def _index_of(doc: str) -> int:
    if not doc.startswith("doc") or not doc[3:].isdigit():
        raise KGLLMError(f"provenance document {doc!r} is not one cross-fit-kg wrote (doc<N>)")
    return int(doc[3:])


def trained_docs(ckpt: str | Path, n_docs: int) -> list[int]:
    """The training documents an extractor checkpoint records (its data module's ``train_docs``)."""
    from kgllm.data.datasets import doc_indices
    from kgllm.nn.checkpoints import load_checkpoint

    hp = load_checkpoint(ckpt).get("datamodule_hyper_parameters") or {}
    spec = (hp.get("dataset_args") or {}).get("train_docs")
    if hp.get("dataset") != "redocred_docre" or spec is None:
        raise KGLLMError(f"{ckpt}: not a redocred_docre checkpoint with train_docs on record")
    return doc_indices(spec, n_docs)


def audit(kg_dir: str | Path, parts: list[dict], n_docs: int) -> dict:
    """Check that no edge of ``kg_dir`` was read from a document by a model trained on it.

    ``parts``: ``{"docs": [...], "checkpoint": path}`` per part; every provenance row's document
    must be in exactly one part, and not among that part's checkpoint's training documents.
    Returns the edge occurrences per part; raises :class:`KGLLMError` naming the first violation."""
    from kgllm.kg.graph.store import KnowledgeGraph

    owner, trained = {}, []
    for i, part in enumerate(parts):
        for d in part["docs"]:
            if d in owner:
                raise KGLLMError(f"document {d} is in two parts ({owner[d]} and {i})")
            owner[d] = i
        trained.append(set(trained_docs(part["checkpoint"], n_docs)))
    kg = KnowledgeGraph.load(kg_dir, provenance=True)
    counts = [0] * len(parts)
    for (h, r, t), edge in kg.edges.items():
        what = f"edge ({kg.entities[h].label!r}, {kg.relations[r]}, {kg.entities[t].label!r})"
        for row in edge.provenance:
            d = _index_of(row[0])
            if d not in owner:
                raise KGLLMError(f"{kg_dir}: {what} was read from document {d}, "
                                 "which no part holds")
            if d in trained[owner[d]]:
                raise KGLLMError(f"{kg_dir}: {what} of document {d} comes from "
                                 f"{parts[owner[d]]['checkpoint']}, which was trained on that document")
            counts[owner[d]] += 1
    return {"edge_occurrences": counts, "edges": len(kg.edges), "entities": len(kg.entities)}


def _fit(config: str, extra: Sequence[str], dataset_args: dict, seed: int, folder: Path) -> dict:
    """Fit one extractor (fusion off, no KG folder) on ``dataset_args``' training documents and test it
    on its test documents, as one ``kgllm ablate`` run of variant ``none`` (``FOLDER/runs/none-seedS``)."""
    from kgllm.workflows.ablate import run_one

    row = run_one([config], "none", seed, folder, ["--data.init_args.kg_dir", "null", *extra,
                                                   "--data.dataset_args", json.dumps(dataset_args)])
    if not row["best_ckpt"]:
        raise ConfigError(f"{config}: the fit saved no checkpoint (add a checkpoint callback)")
    return {"checkpoint": row["best_ckpt"], "test": {k.removeprefix("test/"): round(v, 4)
                                                     for k, v in row.items() if k.startswith("test/")}}


def run(config: str, out: str | Path, train_docs: str, val_docs: str, eval_docs: str, folds: int = 2,
        seed: int = 0, extra: Sequence[str] = (), margin: float = 0.0, progress: bool = True,
        data_dir: str | None = None, eval_extractor: str = "all") -> dict:
    """Build the cross-fitted KG (module docstring); returns the record written to ``OUT/crossfit.json``."""
    import yaml

    from kgllm.data.datasets import _load_json, doc_indices, range_spec
    from kgllm.kg.extraction.build import build_kg
    from kgllm.kg.extraction.config import ExtractConfig
    from kgllm.kg.extraction.corpus import redocred_text
    from kgllm.util.io import atomic_write_json, atomic_write_text
    from kgllm.util.paths import dataset_file

    out = Path(out)
    data_cfg = (yaml.safe_load(Path(config).read_text(encoding="utf-8")) or {}).get("data", {}).get("init_args", {})
    if data_cfg.get("dataset") != "redocred_docre":
        raise ConfigError(f"{config}: cross-fit-kg trains document-level extractors (dataset: redocred_docre), "
                          f"not {data_cfg.get('dataset')!r}")
    base_args = dict(data_cfg.get("dataset_args") or {})
    gold = Path(base_args["path"]) if base_args.get("path") else dataset_file("redocred", "dev_revised.json",
                                                                                root=data_dir)
    if data_dir:
        extra = [*extra, "--data.data_dir", str(data_dir)]
    data = _load_json(gold)
    n = len(data)
    parts_docs = folds_of(train_docs, n, folds)
    train = [d for f in parts_docs for d in f]
    evals = doc_indices(eval_docs, n)
    if set(evals) & set(train) or set(doc_indices(val_docs, n)) & set(train):
        raise ConfigError(f"--eval-docs {eval_docs} and --val-docs {val_docs} must not share documents with "
                          f"--train-docs {train_docs}")
    if eval_extractor not in ("all", "fold0"):
        raise ConfigError(f"--eval-extractor {eval_extractor!r}: expected 'all' or 'fold0'")
    plan = {"config": str(config), "gold": str(gold), "train_docs": train_docs, "val_docs": val_docs,
            "eval_docs": eval_docs, "folds": folds, "seed": seed, "overrides": list(extra), "margin": margin,
            "eval_extractor": eval_extractor}
    if out.exists() and any(out.iterdir()):
        if not (out / PLAN).is_file():
            raise OutputError(f"{out}: exists and is not a cross-fit-kg folder ({PLAN} missing); nothing was changed")
        if json.loads((out / PLAN).read_text()) != plan:
            raise OutputError(f"{out}: holds another cross-fit plan ({out / PLAN}); use another --out")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / PLAN, plan)

    parts = [{"name": f"fold{i}", "docs": docs, "train": [d for d in train if d not in set(docs)]}
             for i, docs in enumerate(parts_docs)]
    parts.append({"name": "eval", "docs": evals, "train": parts[0]["train"] if eval_extractor == "fold0" else train})
    for part in parts:
        folder = out / part["name"]
        folder.mkdir(exist_ok=True)
        done = folder / "extractor.json"
        if part["name"] == "eval" and eval_extractor == "fold0":
            part["checkpoint"] = parts[0]["checkpoint"]
            part["test"] = {}  # fold 0's extractor is scored on fold 0 (its evaluation documents are the task's)
        elif not done.is_file():
            args = {**base_args, "train_docs": range_spec(part["train"]), "val_docs": val_docs,
                    "test_docs": range_spec(part["docs"])}
            atomic_write_json(done, _fit(config, extra, args, seed, folder))
        if "checkpoint" not in part:
            part.update(json.loads(done.read_text()))
        kg = folder / "kg"
        if not kg.exists():
            corpus = folder / "corpus.jsonl"
            atomic_write_text(corpus, "".join(json.dumps({"id": doc_id(d), "text": redocred_text(data[d]["sents"])[0]},
                                                         ensure_ascii=False) + "\n" for d in part["docs"]))
            build_kg(corpus, kg, fmt="jsonl", progress=progress,
                     cfg=ExtractConfig(extractor="learned", re_model=part["checkpoint"], re_margin=margin))
        part["kg"] = str(kg)
    merged = out / "kg"
    if not merged.exists():
        _merge([Path(p["kg"]) for p in parts], merged, out / "merging")
    record = {**plan, "kg": str(merged),
              "parts": [{"name": p["name"], "docs": range_spec(p["docs"]), "extractor_trained_on": range_spec(p["train"]),
                         "checkpoint": p["checkpoint"], "kg": p["kg"], "held_out_scores": p["test"]} for p in parts]}
    record["audit"] = audit(merged, [{"docs": p["docs"], "checkpoint": p["checkpoint"]} for p in parts], n)
    atomic_write_json(out / "crossfit.json", record)
    return record


def _merge(kgs: list[Path], out: Path, work: Path) -> None:
    """Merge KG folders by label, left to right, as ``kgllm kg-merge --by label`` does (A's ids kept)."""
    from kgllm.kg.sources.imports import merge_folders

    if work.exists():
        shutil.rmtree(work)  # our own scratch folder of an interrupted merge
    work.mkdir()
    acc = kgs[0]
    for i, other in enumerate(kgs[1:], 1):
        target = out if i == len(kgs) - 1 else work / f"step{i}"
        kg = merge_folders(acc, other, "label")
        kg.save(target, inputs=(acc, other))
        c = kg.meta["merge_counts"]
        print(f"{target}: {kg}; {c['joined']:,} of {other}'s {c['b_entities']:,} entities joined by label")
        acc = target
    shutil.rmtree(work)


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="kgllm cross-fit-kg", description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("--config", required=True, help="a document-level RE config (experiments/docre_redocred.yaml)")
    p.add_argument("--out", required=True, help="folder for the extractors, the parts' KGs, the merged KG (OUT/kg) "
                   "and crossfit.json")
    p.add_argument("--train-docs", default="0:350", help="the fine-tuning task's training documents (cut into folds)")
    p.add_argument("--val-docs", default="350:400", help="documents every extractor validates on (epoch choice)")
    p.add_argument("--eval-docs", default="350:500", help="documents whose KG the all-training-documents extractor "
                   "writes (validation and test; their labels are never read)")
    p.add_argument("--folds", type=int, default=2, help="folds of the training documents (one extractor each)")
    p.add_argument("--eval-extractor", choices=("all", "fold0"), default="all",
                   help="which extractor writes the evaluation documents' KG: one trained on every training "
                   "document, or fold 0's (every part's edges then come from extractors of the same training size)")
    p.add_argument("--seed", type=int, default=0, help="seed of every extractor fit")
    p.add_argument("--data-dir", default=None, help="dataset root (default: $KGLLM_DATA)")
    p.add_argument("--re-margin", type=float, default=0.0, help="as build-kg --re-margin")
    p.add_argument("--no-progress", action="store_true", help="no progress bars while building the KGs")
    a, extra = p.parse_known_args(argv)
    if any(not x.startswith("--") for x in extra[:1]):
        p.error(f"unexpected argument {extra[0]!r} (overrides are --key value pairs)")
    record = run(a.config, a.out, a.train_docs, a.val_docs, a.eval_docs, a.folds, a.seed, extra, a.re_margin,
                 progress=not a.no_progress, data_dir=a.data_dir, eval_extractor=a.eval_extractor)
    for part in record["parts"]:
        f1 = part["held_out_scores"].get("f1")
        scored = "" if f1 is None else f", F1 on these documents (gold entities) {f1:.3f}"
        print(f"{part['name']}: documents {part['docs']}, extractor trained on {part['extractor_trained_on']}{scored}")
    c = record["audit"]
    print(f"{record['kg']}: {c['entities']:,} entities, {c['edges']:,} edges; audit passed: no edge comes from a "
          f"model trained on its document (occurrences per part: {c['edge_occurrences']})")
    return 0
