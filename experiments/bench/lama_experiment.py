"""The LAMA knowledge-injection experiment on facts the model never read (KG-only facts).

1. The probed facts (the first ``max_facts`` T-REx test facts of each relation in
   ``pretrain_lama.yaml``) are split, seeded and disjoint, into *text facts* and *KG-only facts*
   (``kgllm.kg.lama.split_facts``): MLM trains on the text facts' evidence sentences only, and a
   KG-only draw whose pair or labels still occur in that text is excluded from probing.
2. Two KGs: ``lama_all`` holds every probed fact plus, as distractors, all T-REx train/dev facts of
   all 41 relations; ``lama_no_kgonly`` is the same without the KG-only facts' edges.
3. ``kgllm ablate`` trains each variant x seed on the same text, order and budget; ``none`` runs once.
   With ``--removed-kg``, fused variants also train on ``lama_no_kgonly`` (the knowledge must then
   vanish); copy variants are always also probed with the KG-only facts deleted after training.
4. ``kgllm probe`` of each best checkpoint: P@1 on KG-only facts (the headline) and on text facts,
   with the KG fused and with fusion switched off at inference, and by subject degree.

``results.md`` gives mean +- std and the 95% t-interval over seeds per arm, and the paired
difference against ``none`` (paired t-test, Holm-corrected over the arms). The logic lives in
:mod:`kgllm.workflows.knowledge` (``kgllm demo`` runs a small version of it).

Run:  KGLLM_DATA=../shared/data python experiments/bench/lama_experiment.py [--variants none,gated,xattn]
      [--seeds 0,1,2,3,4] [--node-features id|text|both] [--num-hops 1|2] [--out results/lama]
      [extra overrides for kgllm ablate, e.g. --trainer.max_epochs 2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "experiments" / "pretrain_lama.yaml"


def main(argv=None) -> int:
    from kgllm.workflows.knowledge import run_experiment, verdict

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", default="none,gated,xattn,interaction")
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--node-features", default="id", choices=("id", "text", "text_norm", "both", "lm"))
    p.add_argument("--split-seeds", default=None, help="text / KG-only splits to run (e.g. 0,1); default: the "
                   "config's split_seed")
    p.add_argument("--template-sentences", action="store_true",
                   help="every arm also trains on each text fact stated once in its relation's LAMA template "
                        "(the probe's wording; KG-only facts never)")
    p.add_argument("--distractors", type=int, default=None, metavar="SEED",
                   help="give every probed subject an edge of each other probed relation (seeded draws)")
    p.add_argument("--removed-kg", action="store_true",
                   help="also train the fused arms on the KG without the KG-only facts (the knowledge must vanish; "
                        "the 'deleted after training' arm of copy variants needs no retraining)")
    p.add_argument("--num-hops", type=int, default=1, help="subgraph depth at probe time")
    p.add_argument("--out", default="results/lama")
    p.add_argument("--graphs", default="graphs")
    p.add_argument("--data-dir", default=None)
    a, extra = p.parse_known_args(argv)
    extra = [x for x in extra if x != "--"]
    splits = [int(x) for x in a.split_seeds.split(",")] if a.split_seeds else [None]
    graphs_tag = a.node_features + ("" if a.distractors is None else f"-distractors{a.distractors}")
    tag = graphs_tag + ("-templates" if a.template_sentences else "")
    for split in splits:
        sub = "" if split is None else f"split{split}"
        table, report = run_experiment(CONFIG, a.variants.split(","), a.seeds, Path(a.out) / tag / sub,
                                       Path(a.graphs) / graphs_tag / sub if (sub or a.distractors is not None) else Path(a.graphs),
                                       a.data_dir, a.node_features, a.num_hops, removed_kg=a.removed_kg,
                                       extra=extra, split_seed=split,
                                       distractor_seed=a.distractors,
                                       dataset_args={"template_sentences": True} if a.template_sentences else None)
        print(report + "\n" + verdict(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
