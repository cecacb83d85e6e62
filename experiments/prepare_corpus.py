"""Write an experiment's training texts as a JSONL corpus for ``kgllm build-kg``.

The KG of a downstream experiment is built from exactly the texts its classifier trains on
(the training split after the config's ``dataset_args`` and ``max_train``), so the fused arm sees
no text that the baseline does not, and validation/test sentences contribute nothing:

    python experiments/prepare_corpus.py --config experiments/finetune_fewrel.yaml --out graphs/fewrel_corpus.jsonl
    kgllm build-kg graphs/fewrel_corpus.jsonl --out graphs/fewrel

or by dataset name: ``python experiments/prepare_corpus.py fewrel --dataset-args '{"train_per_relation": 100}' ...``.
"""

from __future__ import annotations

import argparse
import json
import sys


def training_texts(dataset: str, data_dir=None, dataset_args: dict | None = None, max_train: int | None = None):
    from kgllm.data.datasets import load_dataset

    splits, _, _ = load_dataset(dataset, data_dir, max_train=max_train, **(dataset_args or {}))
    return splits["train"]


def main(argv=None) -> int:
    import yaml

    from kgllm.util.io import atomic_open

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", nargs="?", help="a kgllm dataset name (fewrel, sst2, redocred_rc, ...)")
    p.add_argument("--config", help="an experiment YAML: its data.init_args pick the dataset and training split")
    p.add_argument("--dataset-args", default=None, help="JSON loader options (with a dataset name)")
    p.add_argument("--out", required=True)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--max-train", type=int, default=None)
    a = p.parse_args(argv)
    if bool(a.dataset) == bool(a.config):
        p.error("give a dataset name or --config, not both")
    if a.config:
        data = yaml.safe_load(open(a.config, encoding="utf-8"))["data"]["init_args"]
        name, args, max_train = data["dataset"], data.get("dataset_args") or {}, data.get("max_train")
    else:
        name, args, max_train = a.dataset, json.loads(a.dataset_args or "{}"), a.max_train
    texts = training_texts(name, a.data_dir, args, max_train if a.max_train is None else a.max_train)
    with atomic_open(a.out) as fh:
        for i, ex in enumerate(texts):
            fh.write(json.dumps({"id": f"{name}-train-{i}", "text": ex.text}, ensure_ascii=False) + "\n")
    print(f"{a.out}: {len(texts)} training texts of {name} {json.dumps(args)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
