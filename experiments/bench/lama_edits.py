"""Knowledge edits on LAMA, scored like model editing, with zero training steps
(:mod:`kgllm.workflows.knowledge_edit`): N probed facts get a new object in one ``kgllm kg-edit``
update of a copy of the KG; efficacy, paraphrase (``experiments/lama_paraphrases.jsonl``),
specificity and the time per edit, before and after. Then new subjects: T-REx test facts past the
probed ones whose subjects the KG does not hold, added to a copy of the KG by one update (with
relation distractors) and probed with no training step.

Every checkpoint (one per training seed: ``--ckpt`` repeated, or ``--runs`` = a LAMA experiment's
``lama_all`` folder with ``--variant``) is scored; ``results.md`` gives each metric's mean +- std and
95% t-interval over the checkpoints, beside the issue's targets.

Run:  KGLLM_DATA=../shared/data python experiments/bench/lama_edits.py \
          --runs results/lama/id-distractors0-templates/split0/lama_all --variant none+copy \
          --kg graphs/id-distractors0/split0/lama_all --split-seed 0 --n 200 --out results/lama_edits/split0
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
    from kgllm.io import atomic_write_json, atomic_write_text
    from kgllm.workflows.knowledge_edit import edit_report, load_paraphrases, run_edits, run_new_subjects
    from kgllm.workflows.probe import default_source

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", action="append", default=[], help="an MLMModule checkpoint trained on --kg "
                   "(repeat for several training seeds)")
    p.add_argument("--runs", default=None, help="a kgllm ablate output folder (results.csv): every seed's best "
                   "checkpoint of --variant")
    p.add_argument("--variant", default="none+copy")
    p.add_argument("--split-seed", type=int, default=None, help="the text / KG-only split the checkpoints were "
                   "trained on (default: the config's)")
    p.add_argument("--kg", required=True, help="the KG folder the checkpoint was trained on (copied, never changed)")
    p.add_argument("--n", type=int, default=200, help="facts edited in one batch")
    p.add_argument("--seeds", default="0", help="edit draws per checkpoint")
    p.add_argument("--paraphrases", default=str(ROOT / "experiments" / "lama_paraphrases.jsonl"))
    p.add_argument("--new-per-relation", type=int, default=100, help="T-REx test facts past the probed ones "
                   "tried as new subjects, per relation")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default="results/lama_edits")
    a = p.parse_args(argv)
    ckpts = [(None, c) for c in a.ckpt]
    if a.runs:
        from kgllm.workflows.ablate import read_rows

        rows = [r for r in read_rows(Path(a.runs) / "results.csv") if r["variant"] == a.variant]
        if not rows:
            p.error(f"{a.runs}/results.csv: no runs of variant {a.variant}")
        ckpts += [(r["seed"], str(r["best_ckpt"])) for r in rows]
    if not ckpts:
        p.error("give --ckpt or --runs")
    args = yaml.safe_load(CONFIG.read_text())["data"]["init_args"]["dataset_args"]
    split_seed = args.get("split_seed", 0) if a.split_seed is None else a.split_seed
    facts = lama_facts(a.data_dir, args["relations"], args["max_facts"])
    text = split_facts(facts, args["kg_only_fraction"], split_seed).text
    known = set(facts)
    more = [f for f in lama_facts(a.data_dir, args["relations"], args["max_facts"] + a.new_per_relation)
            if f not in known]
    templates = read_templates(default_source(a.data_dir) / "relations.jsonl")
    paraphrases = load_paraphrases(a.paraphrases)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (train_seed, ckpt) in enumerate(ckpts):
        for seed in (int(s) for s in a.seeds.split(",")):
            work = out / f"ckpt{i}-seed{seed}"
            res = run_edits(ckpt, a.kg, facts, paraphrases, templates, work, n=a.n, seed=seed)
            res.update({f"new_{k}": v for k, v in run_new_subjects(ckpt, a.kg, more, templates, work, seed=seed,
                                                                   text_facts=text).items()})
            rows.append({"ckpt": ckpt, "train_seed": train_seed, "edit_seed": seed, "split_seed": split_seed, **res})
            print(json.dumps(rows[-1]), flush=True)
    atomic_write_json(out / "edits.json", rows)
    atomic_write_text(out / "results.md", edit_report(rows))
    print(edit_report(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
