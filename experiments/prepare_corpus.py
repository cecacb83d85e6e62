"""Write a dataset's training texts as a JSONL corpus for ``kgllm build-kg``.

The KG of a downstream experiment is built from the *training* texts only, so test sentences
contribute nothing to the graph:

    python experiments/prepare_corpus.py fewrel --out graphs/fewrel_corpus.jsonl
    kgllm build-kg graphs/fewrel_corpus.jsonl --out graphs/fewrel
"""

from __future__ import annotations

import argparse
import json
import sys


def main() -> int:
    from kgllm.data.datasets import load_dataset
    from kgllm.io import atomic_open

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", help="a kgllm dataset name (fewrel, sst2, redocred_rc, ...)")
    p.add_argument("--out", required=True)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--max-train", type=int, default=None)
    a = p.parse_args()
    splits, _, _ = load_dataset(a.dataset, a.data_dir, max_train=a.max_train)
    with atomic_open(a.out) as fh:
        for i, ex in enumerate(splits["train"]):
            fh.write(json.dumps({"id": f"{a.dataset}-train-{i}", "text": ex.text}, ensure_ascii=False) + "\n")
    print(f"{a.out}: {len(splits['train'])} training texts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
