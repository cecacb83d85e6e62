"""``kgllm demo``: the framework's core question, small enough for a laptop, with its uncertainty.

*Can a model read facts out of a knowledge graph that its training text never states?* The demo
runs the KG-only LAMA protocol (:mod:`kgllm.workflows.knowledge.protocol`) at a small size:

1. LAMA T-REx facts of six relations are split, seeded and disjoint, into *text facts* (their
   Wikipedia evidence sentences, and each stated once in its relation's LAMA template, are the
   MLM training text) and *KG-only facts* (only in the KG); the KG is imported from T-REx (every
   probed fact plus all train/dev facts), and every probed subject also gets an edge of each other
   probed relation (*relation distractors*), so copying the subject's only neighbour cannot pass;
2. MiniLM (with its shipped MLM head) is MLM-trained on that text, without the graph (``none``)
   and with the KG copy head (``none+copy``), once per seed, same data, order and budget;
3. every run is probed: P@1 on the KG-only facts (the question) and on the text facts, with the
   KG, with the KG switched off at inference, and with the KG-only facts deleted after training;
4. a table with mean ± std and 95% intervals, the relation-majority baseline (no model), the
   paired difference against ``none``, and one plain sentence saying whether the graph helped
   (``results.md`` in ``--out``).

``--variants none,xattn --distractors -1 --no-template-sentences --max-facts 150 --seeds 0,1,2``
is the earlier protocol (fusion into the layers, the subject's only KG edge is the answer).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Sequence

from kgllm.util.formatting import HelpFormatter
from kgllm.util.io import atomic_write_text
from kgllm.util.paths import data_root


def demo_config() -> Path:
    """The demo's config, shipped as package data (``kgllm/resources/pretrain_lama.yaml``, the same
    file as ``experiments/pretrain_lama.yaml``), so the demo also runs from an installed wheel."""
    from importlib.resources import files

    return Path(str(files("kgllm") / "resources" / "pretrain_lama.yaml"))


def main(argv: Sequence[str]) -> int:
    from kgllm.workflows.knowledge.protocol import run_experiment, verdict

    p = argparse.ArgumentParser(prog="kgllm demo", description=__doc__,
                                formatter_class=HelpFormatter)
    p.add_argument("--data-dir", default=None, help="dataset root (default: $KGLLM_DATA)")
    p.add_argument("--out", default="runs/demo", help="folder for runs, checkpoints, logs and the table")
    p.add_argument("--graphs", default="graphs", help="where the LAMA KGs are built (reused if present)")
    p.add_argument("--backbone", default="minilm", help="minilm, tiny, or a local HF BERT folder")
    p.add_argument("--variants", default="none,none+copy", help="arms; none is the baseline")
    p.add_argument("--seeds", default="0,1", help="comma-separated seeds (at least 2 for an interval)")
    p.add_argument("--epochs", type=int, default=4, help="MLM epochs per run")
    p.add_argument("--max-facts", type=int, default=100, help="probed LAMA test facts per relation (split into "
                   "text and KG-only facts)")
    p.add_argument("--template-sentences", action=argparse.BooleanOptionalAction, default=True,
                   help="every arm also trains on each text fact stated once in its relation's LAMA template "
                        "(the probe's wording; KG-only facts never)")
    p.add_argument("--removed-kg", action="store_true",
                   help="also train the fused arms on the KG without the KG-only facts (the knowledge must vanish)")
    p.add_argument("--limit-batches", type=int, default=None, help="cap batches per epoch (smoke tests)")
    p.add_argument("--fusion-layers", default=None, help="e.g. '[0]' for the tiny backbone (default: the config's)")
    p.add_argument("--distractors", type=int, default=0, metavar="SEED",
                   help="every probed subject gets an edge of each other probed relation, so copying its only "
                        "neighbour cannot pass (seeded); -1: without them (the earlier protocol)")
    a = p.parse_args(argv)
    if a.epochs < 1 or a.max_facts < 2 or (a.limit_batches is not None and a.limit_batches < 1):
        p.error("--epochs and --limit-batches must be positive, --max-facts at least 2")
    start = time.perf_counter()
    root = data_root(a.data_dir)
    os.environ["KGLLM_DATA"] = str(root)
    extra = ["--data.backbone", a.backbone, "--trainer.max_epochs", str(a.epochs),
             "--trainer.enable_progress_bar", "false"]
    if a.limit_batches:
        extra += [f"--trainer.limit_{s}_batches={a.limit_batches}" for s in ("train", "val", "test")]
    if a.fusion_layers:
        extra += ["--model.fusion_layers", a.fusion_layers]
    if a.backbone == "tiny":
        extra += ["--model.gnn_hidden", "16", "--model.gnn_heads", "2"]
    out = Path(a.out)
    print(f"[demo] MLM on text facts, probe on KG-only facts: arms {a.variants}, seeds {a.seeds}, "
          f"{a.epochs} epochs each, {a.max_facts} facts per relation (results in {out})", flush=True)
    distractors = None if a.distractors < 0 else a.distractors
    graphs = Path(a.graphs) / f"facts{a.max_facts}"
    graphs = graphs if distractors is None else graphs / f"distractors{distractors}"
    table, report = run_experiment(demo_config(), a.variants.split(","), a.seeds, out, graphs, str(root),
                                   removed_kg=a.removed_kg, extra=extra, distractor_seed=distractors,
                                   dataset_args={"max_facts": a.max_facts, "template_sentences": a.template_sentences})
    said = verdict(table)
    report += f"\n**Answer:** {said}\n\nwall time {time.perf_counter() - start:.0f} s\n"
    atomic_write_text(out / "results.md", report)
    print("\n" + report)
    return 0
