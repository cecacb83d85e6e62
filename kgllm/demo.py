"""``kgllm demo``: the whole path once, small but real.

1. build a KG from the first ``--docs`` Re-DocRED documents (``build-kg``);
2. MLM-pretrain MiniLM with gated KG fusion on those documents
   (``experiments/pretrain_redocred.yaml``);
3. fine-tune relation classification from that checkpoint with fusion on and with
   fusion off (``experiments/finetune_redocred_rc.yaml`` [+ ``ablations/no_fusion.yaml``]),
   for each seed, and test the best checkpoint of each run;
4. print and save a results table (``results.md``, ``results.csv`` in ``--out``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import time
from pathlib import Path
from typing import Sequence

from kgllm.io import atomic_write_text
from kgllm.paths import data_root, dataset_file


def experiments_dir() -> Path:
    here = Path(__file__).resolve().parents[1] / "experiments"
    return here if here.is_dir() else Path.cwd() / "experiments"


def _loggers(out: Path, name: str) -> str:
    shutil.rmtree(out / name, ignore_errors=True)  # a rerun replaces the run folder, never mixes into it
    return json.dumps([{"class_path": f"lightning.pytorch.loggers.{cls}",
                        "init_args": {"save_dir": str(out), "name": name, "version": ""}}
                       for cls in ("CSVLogger", "TensorBoardLogger")])


def run_fit(configs: list[Path], overrides: list[str], test: bool) -> dict:
    """Fit through the same LightningCLI as ``kgllm fit``; optionally test the best checkpoint."""
    from kgllm.lightning_cli import run_cli

    args = ["fit"] + [a for c in configs for a in ("--config", str(c))] + overrides
    cli = run_cli(args[1:], run=False)
    start = time.perf_counter()
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    ckpt = cli.trainer.checkpoint_callback
    result = {"fit_seconds": time.perf_counter() - start, "best_ckpt": ckpt.best_model_path,
              f"best {ckpt.monitor}": float(ckpt.best_model_score) if ckpt.best_model_score is not None else None,
              "last_ckpt": ckpt.last_model_path,
              **{k: float(v) for k, v in cli.trainer.callback_metrics.items() if k.startswith("val/")}}
    if test:
        best = "best" if result["best_ckpt"] else None
        (metrics,) = cli.trainer.test(cli.model, datamodule=cli.datamodule, ckpt_path=best, weights_only=True)
        result.update({k: float(v) for k, v in metrics.items()})
    return result


def summarise(rows: list[dict], metrics: Sequence[str]) -> list[dict]:
    out = []
    for variant in dict.fromkeys(r["variant"] for r in rows):
        sel = [r for r in rows if r["variant"] == variant]
        entry = {"variant": variant, "runs": len(sel)}
        for m in metrics:
            vals = [r[m] for r in sel]
            entry[m] = (statistics.mean(vals), statistics.stdev(vals) if len(vals) > 1 else 0.0)
        out.append(entry)
    return out


def format_table(summary: list[dict], metrics: Sequence[str]) -> str:
    head = "| variant | runs | " + " | ".join(metrics) + " |"
    lines = [head, "|" + "---|" * (2 + len(metrics))]
    for e in summary:
        cells = [f"{e[m][0]:.4f} ± {e[m][1]:.4f}" if e["runs"] > 1 else f"{e[m][0]:.4f}" for m in metrics]
        lines.append(f"| {e['variant']} | {e['runs']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="kgllm demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=None, help="dataset root (default: $KGLLM_DATA)")
    p.add_argument("--docs", type=int, default=100, help="Re-DocRED documents in the KG and the text")
    p.add_argument("--kg", default=None, help="KG folder (default graphs/demo-redocred<docs>; built if missing)")
    p.add_argument("--out", default="runs/demo", help="run folder for checkpoints, logs and the table")
    p.add_argument("--backbone", default="minilm", help="minilm, tiny, or a local HF BERT folder")
    p.add_argument("--seeds", default="0", help="comma-separated fine-tuning seeds")
    p.add_argument("--pretrain-epochs", type=int, default=3)
    p.add_argument("--finetune-epochs", type=int, default=4)
    p.add_argument("--limit-batches", type=int, default=None,
                   help="cap train/val/test batches per epoch (smoke tests)")
    p.add_argument("--min-count", type=int, default=10, help="relations need this many training pairs")
    p.add_argument("--fusion-layers", default=None, help="e.g. '[-1]' (default: the configs' layers)")
    a = p.parse_args(argv)
    start = time.perf_counter()
    root = data_root(a.data_dir)
    os.environ["KGLLM_DATA"] = str(root)
    corpus = dataset_file("redocred", "dev_revised.json", root=root)
    kg = Path(a.kg or f"graphs/demo-redocred{a.docs}")
    out = Path(a.out)
    if not kg.exists():
        from kgllm.kg.build import build_kg

        print(f"[demo] building KG {kg} from the first {a.docs} documents of {corpus}")
        build_kg(corpus, kg, "redocred", a.docs)
    n_train = int(a.docs * 0.9)
    exp = experiments_dir()
    common = ["--data.kg_dir", str(kg), "--data.backbone", a.backbone]
    if a.limit_batches:
        common += [f"--trainer.limit_{s}_batches={a.limit_batches}" for s in ("train", "val", "test")]
    if a.fusion_layers:
        common += ["--model.init_args.fusion_layers", a.fusion_layers]
    print("[demo] MLM pretraining with gated fusion")
    pre = run_fit([exp / "pretrain_redocred.yaml"], common + [
        "--data.dataset_args", json.dumps({"train_docs": f"0:{n_train}", "val_docs": f"{n_train}:{a.docs}"}),
        "--trainer.max_epochs", str(a.pretrain_epochs), "--trainer.logger", _loggers(out, "pretrain")], test=False)
    ckpt = pre["best_ckpt"] or pre["last_ckpt"]
    rc_docs = {"train_docs": f"0:{int(a.docs * .7)}", "val_docs": f"{int(a.docs * .7)}:{int(a.docs * .85)}",
               "test_docs": f"{int(a.docs * .85)}:{a.docs}", "min_count": a.min_count}
    rows = []
    for seed in [int(s) for s in a.seeds.split(",")]:
        for variant, extra in (("gated", []), ("none", [exp / "ablations" / "no_fusion.yaml"])):
            print(f"[demo] fine-tuning relation classification, fusion={variant}, seed={seed}")
            res = run_fit([exp / "finetune_redocred_rc.yaml", *extra], common + [
                "--seed_everything", str(seed), "--model.init_args.init_from", ckpt,
                "--data.dataset_args", json.dumps(rc_docs), "--trainer.max_epochs", str(a.finetune_epochs),
                "--trainer.logger", _loggers(out, f"finetune-{variant}-seed{seed}")], test=True)
            rows.append({"variant": variant, "seed": seed, **res})
    metrics = ["best val/f1", "test/acc", "test/f1", "fit_seconds"]
    table = format_table(summarise(rows, metrics), metrics)
    wall = time.perf_counter() - start
    report = (f"# kgllm demo\n\nKG: {kg} ({a.docs} Re-DocRED documents); pretraining: val/loss "
              f"{pre.get('val/loss', float('nan')):.4f}, val/acc {pre.get('val/acc', float('nan')):.4f}; "
              f"backbone {a.backbone}; seeds {a.seeds}; wall time {wall:.0f} s\n\n{table}\n")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "results.md", report)
    with open(out / "results.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=sorted({k for r in rows for k in r}))
        writer.writeheader()
        writer.writerows(rows)
    print("\n" + report)
    return 0
