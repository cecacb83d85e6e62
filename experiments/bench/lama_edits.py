"""Knowledge edits on LAMA, scored like model editing, with zero training steps
(:mod:`kgllm.workflows.knowledge_edit`): N probed facts get a new object in one ``kgllm kg-edit``
update of a copy of the KG; efficacy, paraphrase (``experiments/lama_paraphrases.jsonl``),
specificity and the time per edit, before and after. Then new subjects: T-REx test facts past the
probed ones whose subjects the KG does not hold, added to a copy of the KG by one update (with
relation distractors) and probed with no training step.

Run:  KGLLM_DATA=../shared/data python experiments/bench/lama_edits.py --ckpt RUN/checkpoints/best.ckpt \
          --kg graphs/id-distractors0/lama_all --n 200 --seeds 0,1 --out results/lama_edits
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "experiments" / "pretrain_lama.yaml"


def main(argv=None) -> int:
    import yaml

    from kgllm.data.datasets import lama_facts
    from kgllm.kg.lama import read_templates, split_facts
    from kgllm.workflows.knowledge_edit import load_paraphrases, run_edits, run_new_subjects
    from kgllm.workflows.probe import default_source

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", required=True, help="an MLMModule checkpoint trained on --kg")
    p.add_argument("--kg", required=True, help="the KG folder the checkpoint was trained on (copied, never changed)")
    p.add_argument("--n", type=int, default=200, help="facts edited in one batch")
    p.add_argument("--seeds", default="0", help="edit draws")
    p.add_argument("--paraphrases", default=str(ROOT / "experiments" / "lama_paraphrases.jsonl"))
    p.add_argument("--new-per-relation", type=int, default=100, help="T-REx test facts past the probed ones "
                   "tried as new subjects, per relation")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default="results/lama_edits")
    a = p.parse_args(argv)
    args = yaml.safe_load(CONFIG.read_text())["data"]["init_args"]["dataset_args"]
    facts = lama_facts(a.data_dir, args["relations"], args["max_facts"])
    templates = read_templates(default_source(a.data_dir) / "relations.jsonl")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in (int(s) for s in a.seeds.split(",")):
        res = run_edits(a.ckpt, a.kg, facts, load_paraphrases(a.paraphrases), templates, out / f"seed{seed}",
                        n=a.n, seed=seed)
        known = set(facts)
        more = [f for f in lama_facts(a.data_dir, args["relations"], args["max_facts"] + a.new_per_relation)
                if f not in known]
        text = split_facts(facts, args["kg_only_fraction"], args.get("split_seed", 0)).text
        res.update({f"new_{k}": v for k, v in run_new_subjects(a.ckpt, a.kg, more, templates, out / f"seed{seed}",
                                                               seed=seed, text_facts=text).items()})
        rows.append({"seed": seed, **res})
        print(json.dumps(rows[-1]), flush=True)
    (out / "edits.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
