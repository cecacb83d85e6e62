"""PyKEEN and kgllm on the same split, in one run: filtered test MRR and wall time side by side.

PyKEEN (pip install pykeen==1.11.1) trains RotatE and DistMult with the settings quoted in
the kgllm issue tracker (100 epochs, dim 200, Adam lr 0.005, seed 0, its default sLCWA
training); kgllm trains its experiment config (GAT + DistMult) and the same decoder on plain
embeddings. Both read the files in ``$KGLLM_DATA/kg/<dataset>``.

Run:  KGLLM_DATA=../shared/data python experiments/bench/compare_pykeen.py --datasets umls,nations
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def pykeen_run(folder: Path, model: str, epochs: int) -> dict:
    from pykeen.pipeline import pipeline
    from pykeen.triples import TriplesFactory

    train = TriplesFactory.from_path(folder / "train.txt")
    valid = TriplesFactory.from_path(folder / "valid.txt", entity_to_id=train.entity_to_id,
                                     relation_to_id=train.relation_to_id)
    test = TriplesFactory.from_path(folder / "test.txt", entity_to_id=train.entity_to_id,
                                    relation_to_id=train.relation_to_id)
    start = time.perf_counter()
    result = pipeline(training=train, validation=valid, testing=test, model=model, random_seed=0,
                      model_kwargs={"embedding_dim": 200}, optimizer="Adam", optimizer_kwargs={"lr": 0.005},
                      training_kwargs={"num_epochs": epochs, "use_tqdm": False},
                      evaluation_kwargs={"use_tqdm": False}, device="cpu")
    seconds = time.perf_counter() - start
    return {"system": f"PyKEEN {model}", "test/mrr": float(result.get_metric("both.realistic.inverse_harmonic_mean_rank")),
            "test/hits@10": float(result.get_metric("both.realistic.hits_at_10")), "seconds": seconds}


def main() -> int:
    from kgllm.paths import data_root
    from linkpred_table import run

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default="umls,nations")
    p.add_argument("--pykeen-models", default="RotatE,DistMult")
    p.add_argument("--pykeen-epochs", type=int, default=100)
    p.add_argument("--out", default="results/compare_pykeen")
    a = p.parse_args()
    out = Path(a.out)
    rows = []
    for ds in a.datasets.split(","):
        folder = data_root() / "kg" / ds
        for model in a.pykeen_models.split(","):
            rows.append({"dataset": ds, **pykeen_run(folder, model, a.pykeen_epochs)})
            print(json.dumps(rows[-1]), flush=True)
        for variant in ("gat", "plain"):
            r = run(ds, variant, [], out)
            rows.append({"dataset": ds, "system": f"kgllm {'GAT + DistMult' if variant == 'gat' else 'DistMult'}",
                         "test/mrr": r["test/mrr"], "test/hits@10": r["test/hits@10"], "seconds": r["fit_seconds"]})
            print(json.dumps(rows[-1]), flush=True)
    lines = ["| dataset | system | test MRR | Hits@10 | wall time (s) |", "|---|---|---|---|---|"]
    lines += [f"| {r['dataset']} | {r['system']} | {r['test/mrr']:.3f} | {r['test/hits@10']:.3f} | {r['seconds']:.0f} |"
              for r in rows]
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
