"""Throughput of ``build-kg``: spaCy ``nlp.pipe`` alone vs the whole build, in one run.

Corpus: Re-DocRED dev documents plus LAMA T-REx evidence sentences (object restored),
written once to a temporary JSONL file and read by both measurements. Reports words/s for

  (a) spaCy ``nlp.pipe`` alone (same pipeline, batch size and process count as build-kg),
  (b) the whole ``build_kg`` (read, spaCy, extraction, assembly, TSV + RDF writing),

with 1 and 2 processes, the ratio (b)/(a) and the 1 -> 2 process speed-up.

Run:  KGLLM_DATA=../shared/data .venv/bin/python experiments/bench/bench_build_kg.py [--max-words 200000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path


def corpus_texts(root: Path, max_words: int) -> list[str]:
    from kgllm.kg.corpus import read_corpus

    texts, words = [], 0
    for doc in read_corpus(root / "redocred" / "dev_revised.json", "redocred"):
        texts.append(doc.text)
        words += len(doc.text.split())
    for path in sorted((root / "lama_trex").glob("P*.test.jsonl")):
        seen = set()
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                for ev in json.loads(line).get("evidences", []):
                    sent = ev["masked_sentence"].replace("[MASK]", ev.get("obj_surface", ""))
                    if sent not in seen:
                        seen.add(sent)
                        texts.append(sent)
                        words += len(sent.split())
                if words >= max_words:
                    return texts
    return texts


def spacy_alone(texts: list[str], n_process: int, batch_size: int) -> float:
    from kgllm.kg.extract import load_pipeline

    nlp = load_pipeline()
    start = time.perf_counter()
    for _ in nlp.pipe(texts, batch_size=batch_size, n_process=n_process):
        pass
    return time.perf_counter() - start


def whole_build(path: Path, out: Path, n_process: int, batch_size: int) -> float:
    from kgllm.config import ExtractConfig
    from kgllm.kg.build import build_kg

    start = time.perf_counter()
    build_kg(path, out, "jsonl", cfg=ExtractConfig(n_process=n_process, batch_size=batch_size), progress=False,
             overwrite=True)
    return time.perf_counter() - start


def main() -> int:
    from kgllm.paths import data_root

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--max-words", type=int, default=200_000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--processes", default="1,2")
    p.add_argument("--json", default=None, help="also write the results here")
    a = p.parse_args()
    texts = corpus_texts(data_root(a.data_dir), a.max_words)
    words = sum(len(t.split()) for t in texts)
    tmp = Path(tempfile.mkdtemp(prefix="kgllm-bench-"))
    try:
        corpus = tmp / "corpus.jsonl"
        with open(corpus, "w", encoding="utf-8") as fh:
            for i, t in enumerate(texts):
                fh.write(json.dumps({"id": f"d{i}", "text": t}) + "\n")
        spacy_alone(texts[:50], 1, a.batch_size)  # warm-up: model load, caches
        rows = []
        for n in (int(x) for x in a.processes.split(",")):
            t_a = spacy_alone(texts, n, a.batch_size)
            t_b = whole_build(corpus, tmp / f"kg{n}", n, a.batch_size)
            rows.append({"processes": n, "spacy_words_per_s": words / t_a, "build_words_per_s": words / t_b,
                         "ratio_build_over_spacy": t_a / t_b, "spacy_s": t_a, "build_s": t_b})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result = {"documents": len(texts), "words": words, "rows": rows}
    if len(rows) > 1:
        result["speedup_build_1_to_2"] = rows[0]["build_s"] / rows[1]["build_s"]
        result["speedup_spacy_1_to_2"] = rows[0]["spacy_s"] / rows[1]["spacy_s"]
    print(f"{len(texts)} documents, {words} words")
    print("| processes | (a) spaCy words/s | (b) build-kg words/s | (b)/(a) |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['processes']} | {r['spacy_words_per_s']:.0f} | {r['build_words_per_s']:.0f} | "
              f"{r['ratio_build_over_spacy']:.3f} |")
    if "speedup_build_1_to_2" in result:
        print(f"speed-up 1 -> 2 processes: build-kg {result['speedup_build_1_to_2']:.2f}x, "
              f"spaCy {result['speedup_spacy_1_to_2']:.2f}x")
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
