"""``kgllm eval-re``: document-level relation extraction scores of a trained checkpoint, as the
DocRED literature reports them: micro precision, recall, F1 and Ign F1 over (head, tail, relation)
triples, given the gold entities of each document.

Ign F1 leaves out correct predictions of facts also annotated in the training documents (by
mention names); the training documents are the checkpoint's own (``--train-docs`` overrides).

    kgllm eval-re runs/docre_redocred/latest/checkpoints/best.ckpt \\
        --gold redocred:$KGLLM_DATA/redocred/dev_revised.json --docs 400:500 --json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kgllm.util.formatting import HelpFormatter
from kgllm.util.errors import ConfigError, KGLLMError

FORMATS = ("redocred",)


def parse_gold(spec: str) -> tuple[str, Path]:
    """``FORMAT:PATH`` of ``--gold`` as (format, path)."""
    fmt, sep, path = spec.partition(":")
    if not sep or fmt not in FORMATS:
        raise ConfigError(f"--gold {spec!r}: expected FORMAT:PATH with FORMAT one of {FORMATS} "
                          "(e.g. redocred:data/redocred/dev_revised.json)")
    if not Path(path).is_file():
        raise KGLLMError(f"{path}: gold file not found")
    return fmt, Path(path)


def evaluate(ckpt: str, gold: str, docs: str = "400:500", train_docs: str | None = None,
             batch_size: int = 4, progress: bool = True, margin: float = 0.0) -> dict:
    """Scores of ``ckpt`` on documents ``docs`` of the ``gold`` file (``FORMAT:PATH``); a relation is
    predicted when its logit is above the pair's threshold minus ``margin``."""
    import lightning as L

    from kgllm.data import KGDataModule

    _, path = parse_gold(gold)
    from kgllm.lit import DocREModule

    model, data_hp = DocREModule.from_checkpoint(ckpt)
    train_docs = train_docs or (data_hp.get("dataset_args") or {}).get("train_docs", "0:400")
    dm = KGDataModule("redocred_docre", model.hparams.kg_dir, backbone=model.hparams.backbone,
                      dataset_args={"path": str(path), "train_docs": train_docs, "val_docs": docs, "test_docs": docs},
                      eval_batch_size=batch_size)
    for metric in model.test_metrics.values():
        metric.margin = margin
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=progress,
                        enable_model_summary=False)
    (metrics,) = trainer.test(model, datamodule=dm, verbose=False)
    scores = {k.removeprefix("test/"): round(float(v), 4) for k, v in metrics.items()
              if k.removeprefix("test/") in ("f1", "ign_f1", "precision", "recall")}
    return {"checkpoint": ckpt, "gold": str(path), "docs": docs, "train_docs": train_docs, "entities": "gold",
            **({"margin": margin} if margin else {}),
            "documents": len(dm.features["test"]), **scores}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="kgllm eval-re", description=__doc__,
                                formatter_class=HelpFormatter)
    p.add_argument("ckpt", help="a DocREModule checkpoint (kgllm fit --config experiments/docre_redocred.yaml)")
    p.add_argument("--gold", required=True, help="FORMAT:PATH, e.g. redocred:data/redocred/dev_revised.json")
    p.add_argument("--docs", default="400:500", help="document range to score (start:end)")
    p.add_argument("--train-docs", default=None, help="training documents for Ign F1 (default: the checkpoint's)")
    p.add_argument("--batch-size", type=int, default=4, help="documents per forward pass")
    p.add_argument("--margin", type=float, default=0.0, help="predict a relation whose logit is above the pair's "
                   "threshold minus this (positive: more recall, less precision; default %(default)s, as trained)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    a = p.parse_args(argv)
    from kgllm.lit.quiet import quiet_third_party

    quiet_third_party(devices=True)
    result = evaluate(a.ckpt, a.gold, a.docs, a.train_docs, a.batch_size, progress=not a.json, margin=a.margin)
    if a.json:
        print(json.dumps(result))
    else:
        print(f"{result['documents']} documents ({a.docs}), gold entities: P {result['precision']:.4f}  "
              f"R {result['recall']:.4f}  F1 {result['f1']:.4f}  Ign F1 {result['ign_f1']:.4f}", file=sys.stdout)
    return 0
