"""The corpus experiment: is a KG built from a corpus worth more than reading that corpus?

LAMA T-REx facts are split in two (``kgllm.kg.sources.lama.split_facts``). Every arm reads part A (the
text facts' evidence, and with ``--template-sentences`` each stated once in its template). A KG is
built by ``build-kg`` from parts A and B (labels, no Wikidata ids). The probe asks the part-B facts
that no part-A sentence states. Arms: ``none``; ``none + reading B`` (MLM on A and B); ``none+copy``
with the KG; ``none+copy`` + reading B; ``none+copy`` with the probed facts' edges deleted after
training; and the relation-majority baseline. ``results.md`` also gives how many probed facts the
KG states, per relation. The logic lives in :mod:`kgllm.workflows.knowledge.corpus`.

Run:  KGLLM_DATA=../shared/data python experiments/bench/corpus_experiment.py [--seeds 0,1,2,3,4]
      [--extractor dependency|dependency+cooccurrence|learned --re-model CKPT] [--split-seed 0]
      [--out results/corpus] [--graphs graphs/corpus] [--template-sentences]
      [--max-facts 100] [extra overrides for kgllm ablate, e.g. --trainer.max_epochs 4]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "experiments" / "pretrain_lama.yaml"


def main(argv=None) -> int:
    from kgllm.workflows.knowledge.corpus import run_corpus_experiment

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--extractor", default="dependency", help="build-kg's relation extractor(s), e.g. "
                   "dependency, dependency+cooccurrence, learned (with --re-model)")
    p.add_argument("--re-model", default=None, help="checkpoint of the learned extractor")
    p.add_argument("--split-seed", type=int, default=None)
    p.add_argument("--max-facts", type=int, default=None, help="probed facts per relation (default: the config's)")
    p.add_argument("--template-sentences", action="store_true",
                   help="part A also states each of its facts once in its relation's template (never part B)")
    p.add_argument("--arms", default=None, help="comma-separated arm names to train (default: all four; "
                   "see kgllm.workflows.knowledge.corpus.ARMS)")
    p.add_argument("--num-hops", type=int, default=1)
    p.add_argument("--out", default="results/corpus")
    p.add_argument("--graphs", default="graphs/corpus")
    p.add_argument("--data-dir", default=None)
    a, extra = p.parse_known_args(argv)
    args = {"template_sentences": a.template_sentences}
    if a.max_facts:
        args["max_facts"] = a.max_facts
    table, report = run_corpus_experiment(CONFIG, a.seeds, Path(a.out), Path(a.graphs), a.data_dir, a.extractor,
                                          a.re_model, a.num_hops, [x for x in extra if x != "--"], a.split_seed,
                                          args, progress=False,
                                          arms=a.arms.split(",") if a.arms else None)
    print(report)
    print(json.dumps({"rows": len(table)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
