"""Dynamic knowledge on LAMA: add the KG-only facts to a trained model's KG with an update and probe
before and after, with no retraining and after a short continued pretraining
(:mod:`kgllm.workflows.knowledge_update`).

Run:  KGLLM_DATA=../shared/data python experiments/bench/lama_update.py --seeds 0,1,2,3,4 \
          --runs results/lama/id --out results/lama_update --trainer.enable_progress_bar false
      (--runs: an earlier lama_experiment.py folder whose runs are reused; missing runs are trained)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "experiments" / "pretrain_lama.yaml"


def main(argv=None) -> int:
    from kgllm.workflows.knowledge_update import run_update_experiment

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variant", default="xattn")
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--node-features", default="id", choices=("id", "text", "both"))
    p.add_argument("--continue-epochs", type=int, default=1)
    p.add_argument("--runs", default=None, help="folder of earlier runs (lama_experiment.py --out X: X/id)")
    p.add_argument("--out", default="results/lama_update")
    p.add_argument("--graphs", default="graphs")
    p.add_argument("--data-dir", default=None)
    a, extra = p.parse_known_args(argv)
    _, report = run_update_experiment(CONFIG, a.seeds, Path(a.out), Path(a.graphs), a.data_dir, a.variant,
                                      a.node_features, Path(a.runs) if a.runs else None, a.continue_epochs,
                                      [x for x in extra if x != "--"])
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
