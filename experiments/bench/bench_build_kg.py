"""Throughput of ``build-kg``: spaCy ``nlp.pipe`` alone vs the whole build, in one run.

Corpus: Re-DocRED dev documents plus LAMA T-REx evidence sentences (object restored),
written once to a temporary JSONL file and read by both measurements. Reports words/s for

  (a) spaCy ``nlp.pipe`` alone (same pipeline, batch size and process count as build-kg),
  (b) the whole ``build_kg`` (read, spaCy, extraction, assembly, TSV + RDF writing),

with 1 and 2 processes, the ratio (b)/(a) and the 1 -> 2 process speed-up.

With ``--engine ray`` also Ray with 1 and 2 workers (a local Ray instance per build), the merge
step (assembly + writing, single process) at three corpus sizes, and a projection for a cluster.

Run:  KGLLM_DATA=../shared/data .venv/bin/python experiments/bench/bench_build_kg.py [--max-words 200000]
          [--engine ray]
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
    from kgllm.kg.extraction.corpus import read_corpus

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
    from kgllm.kg.extraction.extract import load_pipeline

    nlp = load_pipeline()
    start = time.perf_counter()
    for _ in nlp.pipe(texts, batch_size=batch_size, n_process=n_process):
        pass
    return time.perf_counter() - start


def whole_build(path: Path, out: Path, n_process: int, batch_size: int, engine: str = "local") -> float:
    """Seconds of one build: ``n_process`` spaCy processes (local) or Ray workers (``engine="ray"``,
    on the running Ray instance, else one started and stopped inside and counted)."""
    from kgllm.kg.extraction.config import ExtractConfig
    from kgllm.kg.extraction.build import BuildSettings, run_build

    cfg = ExtractConfig(n_process=n_process if engine == "local" else 1, batch_size=batch_size)
    start = time.perf_counter()
    run_build(BuildSettings(path, out, "jsonl", extract=cfg, progress=False, overwrite=True, engine=engine,
                            ray={"num_workers": n_process} if engine == "ray" else {}))
    return time.perf_counter() - start


def merge_seconds(kg_dir: Path) -> float:
    """The single-process merge step of a build (assembly of every shard's records in shard order,
    TSV and RDF writing): the part of a build that more workers do not shorten."""
    from kgllm.kg.extraction.assemble import Assembler, Batch, batch_files, update_dir
    from kgllm.kg.graph.folder import read_meta

    out = Path(tempfile.mkdtemp(prefix="kgllm-merge-"))
    try:
        start = time.perf_counter()
        asm = Assembler(read_meta(kg_dir), mentions_out=out / "mentions.tsv")
        asm.add_batches([Batch(batch_files(update_dir(kg_dir, 0)), "corpus", 0)])
        asm.finish().write_files(out)
        return time.perf_counter() - start
    finally:
        shutil.rmtree(out, ignore_errors=True)


def ray_rows(corpus: Path, tmp: Path, words: int, texts: list[str], batch_size: int, local: list[dict]) -> dict:
    """Ray with 1 and 2 workers against local processes, the merge step at three corpus sizes, and
    a projection for a cluster."""
    import ray

    rows = []
    for n in (1, 2):  # a running instance, as on a cluster: its start-up is reported, not counted
        start = time.perf_counter()
        ray.init(num_cpus=n, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
        up = time.perf_counter() - start
        try:
            t = whole_build(corpus, tmp / f"ray{n}", n, batch_size, "ray")
        finally:
            ray.shutdown()
        rows.append({"engine": "ray", "workers": n, "build_words_per_s": words / t, "build_s": t, "startup_s": up})
    merges = []
    for frac in (0.25, 0.5, 1.0):
        part = texts[: max(1, int(len(texts) * frac))]
        path = tmp / f"part{frac}.jsonl"
        with open(path, "w", encoding="utf-8") as fh:
            for i, t in enumerate(part):
                fh.write(json.dumps({"id": f"d{i}", "text": t}) + "\n")
        kg = tmp / "ray2" if frac == 1.0 else tmp / f"part{frac}"
        if frac != 1.0:
            whole_build(path, kg, 2, batch_size)
        merges.append({"words": sum(len(t.split()) for t in part), "merge_s": merge_seconds(kg)})
    local2 = next((r for r in local if r["processes"] == 2), None)
    return {"ray": rows, "merge": merges,
            "ray2_over_local2": rows[1]["build_words_per_s"] / local2["build_words_per_s"] if local2 else None}


def projection(ray: dict, targets=(1e8, 3e9), workers=(1, 16, 128, 1024)) -> str:
    """Hours for a corpus of ``targets`` words on ``workers`` Ray workers: extraction at the measured
    words/s of one worker (minus its share of the merge) divided by the workers, plus the merge
    step, extrapolated linearly in words from the three measured sizes."""
    one = ray["ray"][0]
    merge_per_word = ray["merge"][-1]["merge_s"] / ray["merge"][-1]["words"]
    words = ray["merge"][-1]["words"]
    extract_wps = words / max(one["build_s"] - ray["merge"][-1]["merge_s"], 1e-9)
    lines = ["| words | " + " | ".join(f"{w} workers" for w in workers) + " |", "|---|" + "---|" * len(workers)]
    for total in targets:
        cells = [f"{(total / (extract_wps * w) + total * merge_per_word) / 3600:.1f} h" for w in workers]
        lines.append(f"| {total:.0e} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    from kgllm.util.paths import data_root

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--max-words", type=int, default=200_000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--processes", default="1,2")
    p.add_argument("--engine", default="local", choices=("local", "ray"),
                   help="ray: also Ray with 1 and 2 workers, the merge step at 3 sizes and a cluster projection")
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
        ray = ray_rows(corpus, tmp, words, texts, a.batch_size, rows) if a.engine == "ray" else None
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
    if ray:
        result["ray"] = ray
        print("\n| engine | workers/processes | build-kg words/s |\n|---|---|---|")
        for r in rows:
            print(f"| local | {r['processes']} | {r['build_words_per_s']:.0f} |")
        for r in ray["ray"]:
            print(f"| ray (local instance; its start-up, {r['startup_s']:.1f} s, not counted) | {r['workers']} | "
                  f"{r['build_words_per_s']:.0f} |")
        if ray["ray2_over_local2"] is not None:
            print(f"Ray 2 workers / local 2 processes: {ray['ray2_over_local2']:.2f}x")
        print("\nmerge step (single process):", ", ".join(f"{m['words']:,} words {m['merge_s']:.2f} s"
                                                       for m in ray["merge"]))
        result["projection"] = projection(ray)
        print("\nprojected hours on a cluster (this machine's per-worker speed):\n" + result["projection"])
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
