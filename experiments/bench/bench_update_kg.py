"""Cost of ``update-kg`` against a full rebuild, and that both give the same KG.

The corpus (Re-DocRED dev documents, then LAMA T-REx evidence sentences, as
``bench_build_kg.py`` reads them, up to ``--max-words``, in a seeded random order) is split by
document: the first ``1 - f`` of it is built, the last ``f`` added with ``update_kg``; a full build of all of it is
the reference. For each ``f`` in ``--fractions`` (default 10%, 1%, 0.1%) the script reports the
update's seconds, its ratio to the full rebuild's, both memory peaks (each step runs in its own
process; peak resident set size), and checks with ``kg-diff`` that the updated KG equals the full
build (entity sources aside: they name the corpus file).

Run:  KGLLM_DATA=../shared/data .venv/bin/python experiments/bench/bench_update_kg.py \
          [--max-words 200000] [--fractions 0.1,0.01,0.001] [--json results/bench_update_kg.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

STEP = """
import json, resource, sys, time
from kgllm.kg.extraction.build import build_kg
from kgllm.kg.extraction.update import update_kg
kind, corpus, out = sys.argv[1:4]
start = time.perf_counter()
if kind == "build":
    build_kg(corpus, out, progress=False)
else:
    update_kg(out, corpus, progress=False)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def step(kind: str, corpus: Path, out: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", STEP, kind, str(corpus), str(out)], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{kind} {corpus} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def write(path: Path, texts: list[str], first: int = 0) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for i, text in enumerate(texts, first):
            fh.write(json.dumps({"id": f"doc{i}", "text": text}) + "\n")
    return path


def main(argv=None) -> int:
    sys.path.insert(0, str(HERE))
    from bench_build_kg import corpus_texts

    from kgllm.kg.graph.diff import diff_folders
    from kgllm.util.paths import data_root

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--max-words", type=int, default=200_000)
    p.add_argument("--fractions", default="0.1,0.01,0.001")
    p.add_argument("--shuffle-seed", type=int, default=0,
                   help="shuffle the documents with this seed before splitting (-1: corpus order)")
    p.add_argument("--json", default=None, help="also write the results here")
    a = p.parse_args(argv)
    texts = corpus_texts(Path(a.data_dir) if a.data_dir else data_root(), a.max_words)
    if a.shuffle_seed >= 0:  # the added part is then a sample of the corpus, not its (short-sentence) tail
        random.Random(a.shuffle_seed).shuffle(texts)
    words = sum(len(t.split()) for t in texts)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_update_") as tmp:
        tmp = Path(tmp)
        full = step("build", write(tmp / "all.jsonl", texts), tmp / "full")
        print(f"corpus: {len(texts):,} documents, {words:,} words; full build {full['seconds']:.1f} s, "
              f"peak {full['peak_mib']:.0f} MiB", flush=True)
        for f in (float(x) for x in a.fractions.split(",")):
            cut = len(texts) - max(1, round(f * len(texts)))
            base, new = write(tmp / "base.jsonl", texts[:cut]), write(tmp / "new.jsonl", texts[cut:], cut)
            kg = tmp / f"kg_{f}"
            step("build", base, kg)
            upd = step("update", new, kg)
            diff = diff_folders(kg, tmp / "full", ignore=("sources",))
            row = {"fraction": f, "documents_added": len(texts) - cut,
                   "words_added": sum(len(t.split()) for t in texts[cut:]), "update_seconds": round(upd["seconds"], 2),
                   "full_build_seconds": round(full["seconds"], 2),
                   "ratio": round(upd["seconds"] / full["seconds"], 3), "update_peak_mib": round(upd["peak_mib"]),
                   "build_peak_mib": round(full["peak_mib"]), "same_kg_as_full_build": not diff}
            rows.append(row)
            print(json.dumps(row), flush=True)
            if diff:
                print(f"  differences: {json.dumps(diff)[:500]}", flush=True)
    print("\n| update | documents | words | update s | full rebuild s | ratio | peak MiB update / build | same KG |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| +{r['fraction']:.1%} | {r['documents_added']:,} | {r['words_added']:,} | {r['update_seconds']:.1f} | "
              f"{r['full_build_seconds']:.1f} | {r['ratio']:.3f} | {r['update_peak_mib']} / {r['build_peak_mib']} | "
              f"{'yes' if r['same_kg_as_full_build'] else 'NO'} |")
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps({"documents": len(texts), "words": words, "rows": rows}, indent=2) + "\n")
    return 0 if all(r["same_kg_as_full_build"] for r in rows) else 1


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
