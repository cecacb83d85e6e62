"""Words per second of the learned extractor against its batch size (``build-kg --re-batch-size``).

    python experiments/bench/bench_re_batch.py --re-model CKPT [--corpus redocred:PATH] [--limit 100]
        [--sizes 1,4,8,16] [--repeat 2]

The documents are parsed once by spaCy (not timed); then the extractor's scoring alone (every
entity pair of every document, ``LearnedExtractor.score_batch``: documents grouped by length into
one forward pass) is timed at each batch size, best of ``--repeat``, and its scores compared with
those of size 1 (the largest absolute difference is reported: float rounding only). On a GPU,
batching is what matters; on a CPU the forward pass is already matrix-bound, so expect little.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main(argv=None) -> int:
    import torch

    from kgllm.kg.extraction.config import ExtractConfig
    from kgllm.kg.extraction.corpus import read_corpus
    from kgllm.kg.extraction.extract import load_pipeline, prepare_doc
    from kgllm.lit.learned_extractor import LearnedExtractor

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--re-model", required=True)
    p.add_argument("--corpus", default="redocred:$KGLLM_DATA/redocred/dev_revised.json")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--sizes", default="1,4,8,16")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    import os

    fmt, _, path = a.corpus.partition(":")
    docs = list(read_corpus(os.path.expandvars(path), fmt, limit=a.limit))
    cfg = ExtractConfig(extractor="learned", re_model=a.re_model)
    nlp = load_pipeline(cfg.spacy_model)
    mdocs = [prepare_doc(doc, d.doc_id, cfg)[1] for doc, d in zip(nlp.pipe([d.text for d in docs]), docs)]
    words = sum(len(m.doc) for m in mdocs)
    rows, reference = [], None
    for size in (int(s) for s in a.sizes.split(",")):
        ext = LearnedExtractor(ExtractConfig(extractor="learned", re_model=a.re_model, re_batch_size=size))
        best = float("inf")
        for _ in range(a.repeat):
            start = time.perf_counter()
            with torch.inference_mode():
                scored = ext.score_batch(mdocs)
            best = min(best, time.perf_counter() - start)
        if reference is None:
            reference = scored
        diff = max(float((x[4] - y[4]).abs().max()) if x[4].numel() else 0.0 for x, y in zip(scored, reference))
        rows.append({"re_batch_size": size, "documents": len(mdocs), "words": words, "seconds": round(best, 2),
                     "words_per_s": round(words / best), "max_abs_score_difference_vs_1": diff})
        print(json.dumps(rows[-1]), flush=True)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"torch_threads": torch.get_num_threads(), "rows": rows}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
