"""Link-prediction table: each dataset's config with the GAT and without it (``ablations/no_gat.yaml``).

Every run goes through the same LightningCLI as ``kgllm fit`` (fit, then test of the best
checkpoint by validation MRR) and records filtered test MRR / Hits@10 and wall time.

Run:  KGLLM_DATA=../shared/data python experiments/bench/linkpred_table.py --datasets nations,umls
      [--epochs wn18rr=10,fb15k237=5] [--out results/linkpred]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(dataset: str, variant: str, extra: list[str], out: Path) -> dict:
    from kgllm.lit.runner import fit_and_test

    configs = ["--config", str(ROOT / f"experiments/linkpred_{dataset}.yaml")]
    if variant == "plain":
        configs += ["--config", str(ROOT / "experiments/ablations/no_gat.yaml")]
    seed = extra[extra.index("--seed_everything") + 1] if "--seed_everything" in extra else None
    name = f"{dataset}-{variant}" + (f"-seed{seed}" if seed is not None else "")  # one folder per run, never shared
    logger = json.dumps([{"class_path": "lightning.pytorch.loggers.CSVLogger",
                          "init_args": {"save_dir": str(out), "name": name, "version": ""}}])
    r = fit_and_test([*configs, "--trainer.logger", logger, "--trainer.enable_progress_bar", "false", *extra])
    val = r["best_score"] if r["best_score"] is not None else float("nan")
    return {"dataset": dataset, "variant": variant, "epochs": r["epochs"], "fit_seconds": r["fit_seconds"],
            "val/mrr": val, **r["metrics"]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default="nations,umls")
    p.add_argument("--variants", default="gat,plain")
    p.add_argument("--epochs", default="", help="per-dataset max_epochs overrides, e.g. wn18rr=10")
    p.add_argument("--out", default="results/linkpred")
    a = p.parse_args()
    epochs = dict(kv.split("=") for kv in a.epochs.split(",") if kv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for ds in a.datasets.split(","):
        extra = ["--trainer.max_epochs", epochs[ds]] if ds in epochs else []
        for variant in a.variants.split(","):
            rows.append(run(ds, variant, extra, out))
            print(json.dumps(rows[-1]), flush=True)
    hw = f"{platform.processor() or platform.machine()}, {__import__('os').cpu_count()} cores, CPU"
    lines = ["| dataset | encoder | epochs | test MRR | Hits@1 | Hits@10 | fit time (s) |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['dataset']} | {'GAT + DistMult' if r['variant'] == 'gat' else 'DistMult (no GAT)'} | "
              f"{r['epochs']} | {r['test/mrr']:.3f} | {r['test/hits@1']:.3f} | {r['test/hits@10']:.3f} | "
              f"{r['fit_seconds']:.0f} |" for r in rows]
    table = "\n".join(lines) + f"\n\nhardware: {hw}\n"
    (out / "table.md").write_text(table)
    (out / "results.json").write_text(json.dumps(rows, indent=2))
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
