"""The LAMA knowledge experiments, one front end (the logic: :mod:`kgllm.workflows.knowledge`).

    python experiments/bench/lama.py experiment [...]   # KG-only facts: arms x seeds x split seeds, tables
    python experiments/bench/lama.py update [...]       # add the KG-only facts to a trained model's KG
    python experiments/bench/lama.py edits [...]        # knowledge edits and new subjects, zero training steps

``python experiments/bench/lama.py SUBCOMMAND --help`` describes each.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "experiments" / "pretrain_lama.yaml"
#: each subcommand's description (``--help``)
DOCS = {
    'experiment': "The LAMA knowledge-injection experiment on facts the model never read (KG-only facts).\n\n1. The probed facts (the first ``max_facts`` T-REx test facts of each relation in\n   ``pretrain_lama.yaml``) are split, seeded and disjoint, into *text facts* and *KG-only facts*\n   (``kgllm.kg.sources.lama.split_facts``): MLM trains on the text facts' evidence sentences only, and a\n   KG-only draw whose pair or labels still occur in that text is excluded from probing.\n2. Two KGs: ``lama_all`` holds every probed fact plus, as distractors, all T-REx train/dev facts of\n   all 41 relations; ``lama_no_kgonly`` is the same without the KG-only facts' edges.\n3. ``kgllm ablate`` trains each variant x seed on the same text, order and budget; ``none`` runs once.\n   With ``--removed-kg``, fused variants also train on ``lama_no_kgonly`` (the knowledge must then\n   vanish); copy variants are always also probed with the KG-only facts deleted after training.\n4. ``kgllm probe`` of each best checkpoint: P@1 on KG-only facts (the headline) and on text facts,\n   with the KG fused and with fusion switched off at inference, and by subject degree.\n\n``results.md`` gives mean +- std and the 95% t-interval over seeds per arm, and the paired\ndifference against ``none`` (paired t-test, Holm-corrected over the arms). The logic lives in\n:mod:`kgllm.workflows.knowledge.protocol` (``kgllm demo`` runs a small version of it).\n\nRun:  KGLLM_DATA=../shared/data python experiments/bench/lama.py experiment [--variants none,gated,xattn]\n      [--seeds 0,1,2,3,4] [--node-features id|text|both] [--num-hops 1|2] [--out results/lama]\n      [extra overrides for kgllm ablate, e.g. --trainer.max_epochs 2]",
    'update': "Dynamic knowledge on LAMA: add the KG-only facts to a trained model's KG with an update and probe\nbefore and after, with no retraining and after a short continued pretraining\n(:mod:`kgllm.workflows.knowledge.update`).\n\nRun:  KGLLM_DATA=../shared/data python experiments/bench/lama.py update --seeds 0,1,2,3,4 \\\n          --runs results/lama/id --out results/lama_update --trainer.enable_progress_bar false\n      (--runs: an earlier lama.py experiment folder whose runs are reused; missing runs are trained)",
    'edits': "Knowledge edits on LAMA, scored like model editing, with zero training steps\n(:mod:`kgllm.workflows.knowledge.edit`): N probed facts get a new object in one ``kgllm kg-edit``\nupdate of a copy of the KG; efficacy, paraphrase (``experiments/lama_paraphrases.jsonl``),\nspecificity and the time per edit, before and after. Then new subjects: T-REx test facts past the\nprobed ones whose subjects the KG does not hold, added to a copy of the KG by one update (with\nrelation distractors) and probed with no training step.\n\nEvery checkpoint (one per training seed: ``--ckpt`` repeated, or ``--runs`` = a LAMA experiment's\n``lama_all`` folder with ``--variant``) is scored; ``results.md`` gives each metric's mean +- std and\n95% t-interval over the checkpoints, beside the issue's targets.\n\nRun:  KGLLM_DATA=../shared/data python experiments/bench/lama.py edits \\\n          --runs results/lama/id-distractors0-templates/split0/lama_all --variant none+copy \\\n          --kg graphs/id-distractors0/split0/lama_all --split-seed 0 --n 200 --out results/lama_edits/split0",
}


def experiment(argv=None) -> int:
    """The LAMA knowledge-injection experiment on facts the model never read (KG-only facts)."""
    from kgllm.workflows.knowledge.protocol import run_experiment, verdict

    p = argparse.ArgumentParser(prog="lama.py experiment", description=DOCS['experiment'], formatter_class=argparse.RawDescriptionHelpFormatter)
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


def update(argv=None) -> int:
    """Dynamic knowledge on LAMA: add the KG-only facts to a trained model's KG with an update and probe"""
    from kgllm.workflows.knowledge.update import run_update_experiment

    p = argparse.ArgumentParser(prog="lama.py update", description=DOCS['update'], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variant", default="xattn")
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--node-features", default="id", choices=("id", "text", "both"))
    p.add_argument("--continue-epochs", type=int, default=1)
    p.add_argument("--runs", default=None, help="folder of earlier runs (lama.py experiment --out X: X/id)")
    p.add_argument("--out", default="results/lama_update")
    p.add_argument("--graphs", default="graphs")
    p.add_argument("--data-dir", default=None)
    a, extra = p.parse_known_args(argv)
    _, report = run_update_experiment(CONFIG, a.seeds, Path(a.out), Path(a.graphs), a.data_dir, a.variant,
                                      a.node_features, Path(a.runs) if a.runs else None, a.continue_epochs,
                                      [x for x in extra if x != "--"])
    print(report)
    return 0


def edits(argv=None) -> int:
    """Knowledge edits on LAMA, scored like model editing, with zero training steps"""
    import yaml

    from kgllm.data.datasets import lama_facts
    from kgllm.kg.sources.lama import read_templates, split_facts
    from kgllm.util.io import atomic_write_json, atomic_write_text
    from kgllm.workflows.knowledge.edit import edit_report, load_paraphrases, run_edits, run_new_subjects
    from kgllm.workflows.knowledge.probe import default_source

    p = argparse.ArgumentParser(prog="lama.py edits", description=DOCS['edits'], formatter_class=argparse.RawDescriptionHelpFormatter)
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


COMMANDS = {"experiment": experiment, "update": update, "edits": edits}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(__doc__, file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    from kgllm.lit.quiet import quiet_third_party

    quiet_third_party(devices=True)  # no weight-loading bars or device lines per probed checkpoint
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
