"""The sharded merge of ``build-kg --engine ray`` against the local merge, and a projection.

Input: the extraction records of a KG folder written by ``build-kg`` (``DIR/extractions/00000``),
copied ``--copies`` times into a larger corpus (copy ``c`` renames its documents and entity labels,
so each copy adds new entities as a larger corpus would: the hard case for reducer memory).
Reports, on the running machine:

* the merge time of the local engine (assembly + every file, one process) and of the sharded
  merge on 1 worker with 1 reducer and on 2 workers with 2 reducers (a local Ray instance of that
  many CPUs, started before and not counted, as on a cluster), and the speed-up; every KG is
  checked byte-identical to the local one;
* each reducer's peak traced Python memory (tracemalloc) when the corpus and the reducers double
  together (copies x1/R=1, x2/R=2, x4/R=4);
* the projection table: hours for 1e8 and 3e9 words at 16, 128 and 1,024 workers, from the
  measured words/s of one extraction worker (``--extract-wps``, from ``bench_build_kg.py``), the
  sharded merge's words/s per reducer (1 reducer), its 1 -> 2 reducer efficiency, and the driver
  receiving and appending every part (the KG's bytes per word at ``--driver-mbps``: the driver's
  disk or network, not parallel); the merge's share of the build is given per cell.
  ``--from-json`` recomputes the projection from an earlier run for other rates.

Run:  python experiments/bench/bench_ray_merge.py --kg graphs/corpus/kg_a_b --copies 8 --extract-wps 5000
          [--driver-mbps 500] [--json results/ray_merge.json]
      python experiments/bench/bench_ray_merge.py --from-json results/ray_merge.json --extract-wps 1597
"""

from __future__ import annotations

import argparse
import filecmp
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path


def copy_records(kg: Path, out: Path, copies: int) -> tuple[list[Path], int]:
    """Shard files of ``copies`` renamed copies of ``kg``'s build records; returns them and the words."""
    from kgllm.kg.extraction.assemble import batch_files, update_dir

    src = batch_files(update_dir(kg, 0))
    if not src:
        raise SystemExit(f"{kg}: no build records (extractions/00000/*.jsonl); build it with `kgllm build-kg`")
    words = json.loads((kg / "meta.json").read_text())["corpus"]["words"]
    out.mkdir(parents=True)
    files, k = [], 0
    for c in range(copies):
        for path in src:
            target = out / f"shard-{k:05d}.jsonl"
            with open(path, encoding="utf-8") as fh, open(target, "w", encoding="utf-8") as oh:
                for line in fh:
                    r = json.loads(line)
                    if c:
                        r["doc_id"] = f"{r['doc_id']}#{c}"
                        r["entities"] = [[f"{label} {c}", t, [f"{a} {c}" for a in aliases]]
                                         for label, t, aliases in r["entities"]]
                    oh.write(json.dumps(r, ensure_ascii=False) + "\n")
            files.append(target)
            k += 1
    return files, words * copies


def local_merge(files: list[Path], out: Path, meta: dict) -> float:
    from kgllm.kg.extraction.build import assemble

    out.mkdir()
    start = time.perf_counter()
    kg = assemble(files, json.loads(json.dumps(meta)), out / "mentions.tsv", "corpus")
    kg.meta["updates"][0]["counts"] = kg.counts()
    kg.write_files(out)
    return time.perf_counter() - start


def ray_merge(files: list[Path], out: Path, meta: dict, reducers: int, trace: bool = False) -> tuple[float, dict]:
    from kgllm.kg.extraction.assemble import Batch
    from kgllm.kg.extraction.sharded import sharded_merge, write_meta

    out.mkdir()
    start = time.perf_counter()
    meta = json.loads(json.dumps(meta))
    res = sharded_merge([Batch(files, "corpus", 0)], out, meta, reducers=reducers, trace_memory=trace)
    meta["updates"][0]["counts"] = dict(res["counts"])
    write_meta(out, meta, res, "turtle", "memory")
    return time.perf_counter() - start, res


def same(a: Path, b: Path) -> bool:
    return all(filecmp.cmp(a / f, b / f, shallow=False) for f in
               ("entities.tsv", "relations.tsv", "triples.tsv", "provenance.tsv", "mentions.tsv", "graph.ttl",
                "documents.tsv"))


def kg_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file() and p.name != "meta.json")


def projection(extract_wps: float, merge_wps: float, efficiency: float, driver_s_per_word: float,
               targets=(1e8, 3e9), workers=(16, 128, 1024)) -> tuple[str, list[dict]]:
    """Hours per cell: extraction words / (extract_wps x W) + merge words / (merge_wps x W x
    efficiency) + the driver's file writing (words x driver_s_per_word, not parallel)."""
    lines = ["| words | " + " | ".join(f"{w} workers" for w in workers) + " |", "|---|" + "---|" * len(workers)]
    rows = []
    for total in targets:
        cells = []
        for w in workers:
            ext = total / (extract_wps * w)
            merge = total / (merge_wps * w * efficiency) + total * driver_s_per_word
            rows.append({"words": total, "workers": w, "extract_h": ext / 3600, "merge_h": merge / 3600,
                         "merge_share": merge / (ext + merge)})
            cells.append(f"{(ext + merge) / 3600:.2f} h (merge {100 * merge / (ext + merge):.0f}%)")
        lines.append(f"| {total:.0e} | " + " | ".join(cells) + " |")
    return "\n".join(lines), rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kg", default=None, help="a KG folder written by build-kg (its records are the corpus)")
    p.add_argument("--copies", type=int, default=8, help="copies of its records for the timing (default 8)")
    p.add_argument("--extract-wps", type=float, required=True,
                   help="words/s of one extraction worker (bench_build_kg.py or the extraction table)")
    p.add_argument("--repeat", type=int, default=2, help="timings per setting (the best is kept)")
    p.add_argument("--driver-mbps", type=float, default=500.0,
                   help="MB/s at which the driver receives and appends the parts (default 500: a fast disk or 10 GbE)")
    p.add_argument("--from-json", default=None, help="recompute the projection from an earlier run's --json")
    p.add_argument("--json", default=None, help="also write the results here")
    a = p.parse_args()
    if a.from_json:
        r = json.loads(Path(a.from_json).read_text())
        table, _ = projection(a.extract_wps, r["merge_wps_per_reducer"], r["speedup_1_to_2"] / 2,
                              r["kg_bytes"] / r["words"] / (a.driver_mbps * 1e6))
        print(f"projection (extraction {a.extract_wps:,.0f} words/s per worker, merge {r['merge_wps_per_reducer']:,.0f} "
              f"words/s per reducer at efficiency {r['speedup_1_to_2'] / 2:.2f}, driver {r['kg_bytes'] / r['words']:.0f} "
              f"bytes/word at {a.driver_mbps:g} MB/s):\n{table}")
        return 0
    if not a.kg:
        p.error("--kg is required (or --from-json)")
    import ray

    kg = Path(a.kg)
    meta = {"extractor": {"version": json.loads((kg / "meta.json").read_text())["extractor"]["version"]},
            "updates": [{"update": 0}]}
    tmp = Path(tempfile.mkdtemp(prefix="kgllm-merge-bench-"))
    try:
        files, words = copy_records(kg, tmp / "records", a.copies)
        t_local = min(local_merge(files, tmp / f"local{i}", meta) for i in range(a.repeat))
        timings = {}
        for r in (1, 2):  # r workers (Ray CPUs) and r reducers
            start = time.perf_counter()
            ray.init(num_cpus=r, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
            startup = time.perf_counter() - start
            runs = [ray_merge(files, tmp / f"ray{r}-{i}", meta, r) for i in range(a.repeat)]
            timings[r] = min(t for t, _ in runs)
            if not same(tmp / "local0", tmp / f"ray{r}-0"):
                raise SystemExit(f"the sharded merge with {r} reducers differs from the local merge")
            if r == 1:
                ray.shutdown()
        memory = []
        for scale in (1, 2, 4):
            f, w = copy_records(kg, tmp / f"mem{scale}", scale)
            _, res = ray_merge(f, tmp / f"memkg{scale}", meta, scale, trace=True)
            memory.append({"copies": scale, "reducers": scale, "words": w,
                           "peak_mb": [round(b / 2**20, 2) for b in res["reducer_peak_bytes"]]})
        ray.shutdown()
        out_bytes = kg_bytes(tmp / "local0")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    speedup = timings[1] / timings[2]
    merge_wps = words / timings[1]
    table, rows = projection(a.extract_wps, merge_wps, speedup / 2, out_bytes / words / (a.driver_mbps * 1e6))
    result = {"words": words, "shards": len(files), "local_merge_s": t_local, "ray_merge_s": timings,
              "ray_startup_s": startup, "speedup_1_to_2": speedup, "kg_bytes": out_bytes,
              "driver_mbps": a.driver_mbps, "memory": memory,
              "memory_ratio_x2": max(memory[1]["peak_mb"]) / max(memory[0]["peak_mb"]),
              "memory_ratio_x4": max(memory[2]["peak_mb"]) / max(memory[0]["peak_mb"]),
              "extract_wps": a.extract_wps, "merge_wps_per_reducer": merge_wps, "projection": rows}
    print(f"{words:,} words in {len(files)} shards; KG files {out_bytes / 2**20:.1f} MB (Ray start-up {startup:.1f} s, "
          "not counted)")
    print(f"local merge {t_local:.2f} s; sharded merge 1 worker / 1 reducer {timings[1]:.2f} s, 2 workers / 2 "
          f"reducers {timings[2]:.2f} s ({speedup:.2f}x); every KG byte-identical to the local one")
    print("peak reducer memory (MB), corpus and reducers doubling together: "
          + "; ".join(f"x{m['copies']}/R={m['reducers']}: max {max(m['peak_mb'])}" for m in memory)
          + f" (ratio x2 {result['memory_ratio_x2']:.2f}, x4 {result['memory_ratio_x4']:.2f})")
    print(f"\nprojection (extraction {a.extract_wps:,.0f} words/s per worker, merge {merge_wps:,.0f} words/s per "
          f"reducer at efficiency {speedup / 2:.2f}, driver {out_bytes / words:.0f} bytes/word at {a.driver_mbps:g} MB/s):"
          f"\n{table}")
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
