"""kgllm's GAT against PyKEEN's models, PyKEEN in its best regime, over several seeds.

Regimes (``--regimes``):

* ``tuned`` (the fair comparison): PyKEEN with kgllm's training regime -- LCWA (1-vs-all) with
  softmax cross-entropy and label smoothing 0.1, inverse triples (``create_inverse_triples``;
  R-GCN adds its own inverse edges, so not for it), kgllm's embedding size and batch size, and the
  weights of the best validation MRR tested, as kgllm does -- plus what kgllm does not get: up to
  ``--pykeen-epochs`` epochs (default 5x kgllm's) with early stopping, and the learning rate chosen
  per dataset and model from ``--lrs`` by validation MRR on the first seed (``hpo.jsonl``);
* ``unconstrained`` (DistMult only): the tuned regime with DistMult's own defaults switched off --
  its entity constrainer (unit-norm entity embeddings after every step) and its L_p regulariser --
  so the model is the same as kgllm's plain DistMult; its learning rate is chosen the same way;
* ``default``: PyKEEN's pipeline defaults (sLCWA, one negative, no inverse triples, last epoch,
  kgllm's epochs), for ``--default-models``, kept beside it because that is how PyKEEN is first run.

Models: DistMult, RotatE and the graph encoders R-GCN and CompGCN. kgllm: its config (GAT +
DistMult) and the same decoder on plain embeddings. Every cell is mean ± std [95% t-interval]
over ``--seeds``; "val MRR" is the best validation MRR (what early stopping selects on), so a
PyKEEN row whose val MRR stays below kgllm's never reached kgllm's level within its budget.
Wall time is the fit (PyKEEN: training with its periodic validation).

Run:  KGLLM_DATA=../shared/data python experiments/bench/compare_pykeen.py --datasets umls,nations,kinships
      --seeds 0,1,2,3,4      (needs pip install -e '.[bench]'; resumable: finished rows are skipped)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
ROOT = Path(__file__).resolve().parents[2]


def _no_inference_mode() -> None:
    """PyKEEN 1.11 validates under ``torch.inference_mode`` and a tensor it caches there breaks the next
    training epoch under torch 2.13 ("Inference tensors cannot be saved for backward"); its
    decorators are applied at import, so ``no_grad`` is put in place before PyKEEN is imported."""
    import torch

    class NoGrad(torch.no_grad):
        def __init__(self, mode: bool = True) -> None:
            super().__init__()

    torch.inference_mode = NoGrad


def kgllm_settings(dataset: str) -> dict:
    cfg = yaml.safe_load((ROOT / f"experiments/linkpred_{dataset}.yaml").read_text())
    return {"dim": cfg["model"]["init_args"]["dim"], "lr": cfg["model"]["init_args"]["lr"],
            "epochs": cfg["trainer"]["max_epochs"], "every": cfg["trainer"].get("check_val_every_n_epoch", 1),
            "batch_size": cfg["data"]["init_args"]["batch_size"]}


#: model kwargs that switch a PyKEEN model's own defaults off (the ``unconstrained`` regime)
UNCONSTRAINED = {"DistMult": {"entity_constrainer": None, "regularizer": None}}


def pykeen_run(folder: Path, model: str, regime: str, seed: int, s: dict) -> dict:
    import torch
    from pykeen.evaluation import RankBasedEvaluator
    from pykeen.pipeline import pipeline
    from pykeen.triples import TriplesFactory

    if regime == "unconstrained" and model not in UNCONSTRAINED:
        raise SystemExit(f"compare_pykeen: the unconstrained regime is defined for {sorted(UNCONSTRAINED)}, not {model}")
    inverse = regime in ("tuned", "unconstrained") and model.lower() != "rgcn"
    train = TriplesFactory.from_path(folder / "train.txt", create_inverse_triples=inverse)
    kw = dict(entity_to_id=train.entity_to_id, relation_to_id=train.relation_to_id, create_inverse_triples=inverse)
    valid, test = (TriplesFactory.from_path(folder / f"{x}.txt", **kw) for x in ("valid", "test"))
    args = dict(training=train, validation=valid, testing=test, model=model, random_seed=seed, device="cpu",
                model_kwargs={"embedding_dim": s["dim"], **(UNCONSTRAINED[model] if regime == "unconstrained" else {})},
                evaluation_kwargs={"use_tqdm": False})
    if regime in ("tuned", "unconstrained"):
        args.update(training_loop="lcwa", loss="crossentropy", optimizer="Adam", optimizer_kwargs={"lr": s["lr"]},
                    training_kwargs={"num_epochs": s["epochs"], "batch_size": s["batch_size"],
                                     "label_smoothing": 0.1, "use_tqdm": False},
                    stopper="early", stopper_kwargs={"frequency": s["every"], "patience": s["patience"],
                                                     "relative_delta": 0.002,
                                                     "metric": "inverse_harmonic_mean_rank",
                                                     "clean_up_checkpoint": False})
    else:
        args.update(training_kwargs={"num_epochs": s["epochs"], "use_tqdm": False})
    start = time.perf_counter()
    result = pipeline(**args)
    seconds = time.perf_counter() - start
    stopper = getattr(result, "stopper", None)
    val = getattr(stopper, "best_metric", None)
    path = getattr(stopper, "best_model_path", None)
    if path is not None and Path(path).is_file():  # test the best validation epoch's weights
        result.model.load_state_dict(torch.load(path, weights_only=True))
        Path(path).unlink()
    metrics = RankBasedEvaluator().evaluate(result.model, test.mapped_triples, use_tqdm=False,
                                            additional_filter_triples=[train.mapped_triples, valid.mapped_triples])
    return {"system": f"PyKEEN {model} ({regime})", "seed": seed, "seconds": seconds,
            "lr": s["lr"] if regime != "default" else None,
            "epochs": len(result.losses), "val/mrr": float(val) if val is not None else float("nan"),
            "test/mrr": float(metrics.get_metric("both.realistic.inverse_harmonic_mean_rank")),
            "test/hits@10": float(metrics.get_metric("both.realistic.hits_at_10"))}


def table(rows: list[dict]) -> str:
    """One row per dataset and system; ``vs GAT``: the kgllm GAT's mean minus this system's, with the
    Welch 95% interval (the seeds of two systems are independent runs, not pairs)."""
    from kgllm.util.stats import fmt_ci, fmt_p, mean_ci, welch

    import math

    lines = ["| dataset | system | seeds | test MRR (mean ± std [95% CI]) | GAT minus this [95% CI], p | Hits@10 "
             "| val MRR | epochs | lr | wall time (s) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for key in dict.fromkeys((r["dataset"], r["system"]) for r in rows):
        rs = [r for r in rows if (r["dataset"], r["system"]) == key]
        mrr, h10, sec = (mean_ci([r[k] for r in rs]) for k in ("test/mrr", "test/hits@10", "seconds"))
        val = [r.get("val/mrr", math.nan) for r in rs]
        val_s = "" if any(map(math.isnan, val)) else f"{sum(val) / len(val):.3f}"
        epochs = f"{sum(r.get('epochs', 0) for r in rs) / len(rs):.0f}"
        lr = f"{rs[0]['lr']:g}" if rs[0].get("lr") else "default"
        gat = [r["test/mrr"] for r in rows if (r["dataset"], r["system"]) == (key[0], "kgllm GAT + DistMult")]
        vs = "–"
        if key[1] != "kgllm GAT + DistMult" and len(gat) > 1 and len(rs) > 1:
            w = welch(gat, [r["test/mrr"] for r in rs])
            vs = f"{w['diff']:+.3f} {fmt_ci(w['ci'], 3)}, {fmt_p(w['p'])}"
        lines.append(f"| {key[0]} | {key[1]} | {len(rs)} | {mrr['mean']:.3f} ± {mrr['std']:.3f} "
                     f"{fmt_ci(mrr['ci'], 3)} | {vs} | {h10['mean']:.3f} | {val_s} | {epochs} | {lr} | "
                     f"{sec['mean']:.0f} |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> Path:
    """Test MRR per system, one panel per dataset: each seed as a dot, the mean with its 95% interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kgllm.util.stats import mean_ci

    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 4), squeeze=False)
    for ax, ds in zip(axes[0], datasets):
        systems = list(dict.fromkeys(r["system"] for r in rows if r["dataset"] == ds))
        for y, system in enumerate(systems):
            values = [r["test/mrr"] for r in rows if (r["dataset"], r["system"]) == (ds, system)]
            stats = mean_ci(values)
            colour = "tab:red" if system.startswith("kgllm GAT") else "tab:blue" if system.startswith("kgllm") \
                else "tab:grey"
            ax.scatter(values, [y] * len(values), s=12, alpha=0.6, color=colour)
            if stats["ci"] is not None:
                ax.errorbar(stats["mean"], y, xerr=[[stats["mean"] - stats["ci"][0]], [stats["ci"][1] - stats["mean"]]],
                            fmt="|", color="black", capsize=4)
        ax.set_yticks(range(len(systems)), systems, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(f"{ds}: filtered test MRR (dots: seeds; bar: 95% CI)", fontsize=9)
        ax.set_xlabel("MRR")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default="umls,nations,kinships")
    p.add_argument("--pykeen-models", default="DistMult,RotatE,RGCN,CompGCN")
    p.add_argument("--regimes", default="tuned,default", help="tuned, unconstrained (DistMult without its "
                   "constrainer and regulariser), default")
    p.add_argument("--default-models", default="DistMult", help="models also run on PyKEEN's defaults")
    p.add_argument("--lrs", default="0.001,0.01", help="learning rates tried for the tuned regime (seed 0)")
    p.add_argument("--pykeen-epochs", type=int, default=0, help="tuned epoch budget (0: 5x kgllm's)")
    p.add_argument("--patience", type=int, default=4, help="validations without improvement before stopping")
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--kgllm", default="gat,plain", help="kgllm variants (gat, plain); empty for none")
    p.add_argument("--out", default="results/compare_pykeen")
    p.add_argument("--table-only", action="store_true",
                   help="print the table (and write mrr.png) of the rows already in --out (and --also)")
    p.add_argument("--also", default="", help="comma-separated further output folders whose rows join the table")
    a = p.parse_args(argv)
    if a.table_only:
        rows = [json.loads(line) for folder in [a.out, *filter(None, a.also.split(","))]
                for line in (Path(folder) / "rows.jsonl").read_text().splitlines()]
        print(table(rows))
        print(f"wrote {plot(rows, Path(a.out) / 'mrr.png')}", file=sys.stderr)
        return 0
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    # PyKEEN writes checkpoints under PYKEEN_HOME; keep them in a folder this run owns
    os.environ["PYKEEN_HOME"] = tempfile.mkdtemp(prefix="pykeen-", dir=out)
    _no_inference_mode()
    from kgllm.util.paths import data_root
    from linkpred_table import run

    done = out / "rows.jsonl"
    rows = [json.loads(line) for line in done.read_text().splitlines()] if done.is_file() else []
    have = {(r["dataset"], r["system"], r["seed"]) for r in rows}  # a restarted comparison skips these

    def record(row: dict) -> None:
        rows.append(row)
        with open(done, "a", encoding="utf-8") as fh:  # a restarted comparison skips finished runs
            fh.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)

    hpo_file = out / "hpo.jsonl"
    hpo = [json.loads(line) for line in hpo_file.read_text().splitlines()] if hpo_file.is_file() else []
    seeds = [int(x) for x in a.seeds.split(",")]

    def tuned_lr(ds: str, model: str, folder: Path, s: dict, regime: str = "tuned") -> float:
        """The learning rate of the best validation MRR on the first seed (its runs are kept)."""
        system = f"PyKEEN {model} ({regime})"
        for lr in (float(x) for x in a.lrs.split(",")):
            if not any((h["dataset"], h["system"], h["lr"]) == (ds, system, lr) for h in hpo):
                h = {"dataset": ds, "model": model, **pykeen_run(folder, model, regime, seeds[0], dict(s, lr=lr))}
                hpo.append(h)
                with open(hpo_file, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(h) + "\n")
        best = max((h for h in hpo if (h["dataset"], h["system"]) == (ds, system)), key=lambda h: h["val/mrr"])
        if (ds, best["system"], seeds[0]) not in have:
            record({k: v for k, v in best.items() if k != "model"})  # the selected run is the first seed's row
            have.add((ds, best["system"], seeds[0]))
        return best["lr"]

    for ds in a.datasets.split(","):
        s, folder = kgllm_settings(ds), data_root() / "kg" / ds
        tuned = dict(s, epochs=a.pykeen_epochs or 5 * s["epochs"], patience=a.patience)
        for variant in filter(None, a.kgllm.split(",")):
            system = "kgllm GAT + DistMult" if variant == "gat" else "kgllm DistMult (no GAT)"
            for seed in seeds:
                if (ds, system, seed) not in have:
                    r = run(ds, variant, ["--seed_everything", str(seed)], out / "kgllm")
                    record({"dataset": ds, "system": system, "seed": seed, "seconds": r["fit_seconds"],
                            "lr": s["lr"], "epochs": r["epochs"], "val/mrr": r["val/mrr"],
                            "test/mrr": r["test/mrr"], "test/hits@10": r["test/hits@10"]})
        for regime in a.regimes.split(","):
            models = {"tuned": a.pykeen_models, "unconstrained": ",".join(UNCONSTRAINED)}.get(regime, a.default_models)
            for model in filter(None, models.split(",")):
                settings = dict(tuned, lr=tuned_lr(ds, model, folder, tuned, regime)) if regime != "default" else s
                for seed in seeds:
                    if (ds, f"PyKEEN {model} ({regime})", seed) not in have:
                        record({"dataset": ds, **pykeen_run(folder, model, regime, seed, settings)})
    import shutil

    shutil.rmtree(os.environ["PYKEEN_HOME"], ignore_errors=True)  # created above, by this run
    report = table(rows)
    (out / "table.md").write_text(report + "\n")
    plot(rows, out / "mrr.png")
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
