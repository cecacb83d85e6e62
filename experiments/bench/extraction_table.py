"""End-to-end extraction from raw text on Re-DocRED documents a model never trained on: each
relation extractor of ``build-kg`` builds a KG from the documents' text (spaCy mentions, kgllm's
entity clusters), and ``kg-eval`` scores it against the gold annotations with standard precision:

* untyped pairs (an entity pair joined by any extracted edge) and the sentence co-occurrence
  baseline computed from the same mentions (the ``cooccurrence`` row);
* typed triples (head, relation, tail) -- only an extractor that speaks the gold schema (the
  ``learned`` one, trained on Re-DocRED's Wikidata property ids) can score here;
* words/s of the whole build (read, spaCy, extraction, assembly, writing) and, for the learned
  extractor, the share of that time spent in the model.

Run:  KGLLM_DATA=../shared/data python experiments/bench/extraction_table.py --re-model CKPT \\
          [--docs 400:500] [--extractors dependency,cooccurrence,learned,learned+dependency] [--out results/extraction]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

MARKER = "extraction_table.json"


def timed_model(extractor_cls):
    """Wrap ``extract_batch`` (what the build calls for the learned extractor) to add up the
    seconds it takes (the model's share of a build)."""
    spent = [0.0]
    original = extractor_cls.extract_batch

    def extract_batch(self, mdocs):
        start = time.perf_counter()
        try:
            return original(self, mdocs)
        finally:
            spent[0] += time.perf_counter() - start
    extractor_cls.extract_batch = extract_batch
    return spent, lambda: setattr(extractor_cls, "extract_batch", original)


def main(argv=None) -> int:
    from kgllm.kg.extraction.config import ExtractConfig
    from kgllm.data.datasets import parse_range
    from kgllm.util.io import atomic_write_text
    from kgllm.kg.extraction.build import build_kg
    from kgllm.kg.quality.evaluate import evaluate_redocred
    from kgllm.lit.learned_extractor import LearnedExtractor
    from kgllm.util.paths import dataset_file

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--re-model", default=None, help="DocREModule checkpoint for the learned extractor")
    p.add_argument("--docs", default="400:500")
    p.add_argument("--extractors", default="dependency,cooccurrence,learned,learned+dependency")
    p.add_argument("--out", default="results/extraction")
    p.add_argument("--data-dir", default=None)
    a = p.parse_args(argv)
    out = Path(a.out)
    if out.exists() and not (out / MARKER).exists() and any(out.iterdir()):
        print(f"{out}: exists and was not written by this script; choose another --out", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    extractors = a.extractors.split(",")
    if any("learned" in e for e in extractors) and not a.re_model:
        p.error("the learned extractor needs --re-model")
    gold = out / f"gold_{a.docs.replace(':', '_')}.json"
    docs = json.loads(dataset_file("redocred", "dev_revised.json", root=a.data_dir).read_text())[parse_range(a.docs)]
    atomic_write_text(gold, json.dumps(docs))
    words = sum(len(tok) for d in docs for tok in d["sents"])
    rows = []
    for name in extractors:
        spent, restore = timed_model(LearnedExtractor)
        try:
            start = time.perf_counter()
            build_kg(gold, out / f"kg_{name.replace('+', '_')}", "redocred", overwrite=True, progress=False,
                     cfg=ExtractConfig(extractor=name, re_model=a.re_model if "learned" in name else None))
            seconds = time.perf_counter() - start
        finally:
            restore()
        m = evaluate_redocred(out / f"kg_{name.replace('+', '_')}", gold)
        key = "cooc_pair" if name == "cooccurrence" else "pair"
        rows.append({"extractor": name, "documents": len(docs), "words": words, "seconds": round(seconds, 1),
                     "words_per_s": round(words / seconds), "model_share": round(spent[0] / seconds, 3),
                     **{f"pair_{k}": round(m[f"{key}_{k}"], 4) for k in ("precision", "recall", "f1")},
                     **{f"typed_{k}": round(m[f"typed_{k}"], 4) for k in ("precision", "recall", "f1")},
                     "cooc_pair_f1": round(m["cooc_pair_f1"], 4)})
        print(json.dumps(rows[-1]), flush=True)
    lines = [f"# End-to-end extraction, Re-DocRED documents {a.docs} ({len(docs)} documents, {words:,} words)", "",
             "| extractor | pair P | pair R | pair F1 | typed P | typed R | typed F1 | words/s | model share |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        typed = "–" if r["extractor"] in ("dependency", "cooccurrence") else \
            f"{r['typed_precision']:.3f} | {r['typed_recall']:.3f} | {r['typed_f1']:.3f}"
        typed = typed if typed != "–" else "– | – | –"
        lines.append(f"| {r['extractor']} | {r['pair_precision']:.3f} | {r['pair_recall']:.3f} | {r['pair_f1']:.3f} | "
                     f"{typed} | {r['words_per_s']:,} | {r['model_share']:.0%} |")
    atomic_write_text(out / "results.md", "\n".join(lines) + "\n")
    atomic_write_text(out / MARKER, json.dumps(rows, indent=2))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
