"""The fused training step over KGs of 10^5, 10^6 and 10^7 entities at a fixed batch: time and
peak memory, with node inputs that need no per-entity row (``lm``: the backbone's own word
embeddings of each entity's label) read from a memory-mapped graph
(:mod:`kgllm.data.mmap_graph`), against a dense id table (one trained row per entity) and a
sparse one (``nn.Embedding(sparse=True)`` with ``SparseAdam``) where it fits.

Each setting runs in its own process (its peak resident memory, ``VmHWM``, is its own): a MiniLM-sized
``BertForMaskedLM`` (fresh weights: time and memory do not depend on them) with ``xattn`` fusion
at layer 4 and a 2-layer relation-aware GAT; a batch of ``--batch`` sequences of 64 tokens, each
linking 4 mentions to random entities; their 1-hop subgraph with up to ``--fanout`` edges per
entity is read from the files every step; forward, MLM loss, backward and AdamW step (plus
SparseAdam for a sparse table), timed over ``--steps`` after 2 warm-up steps.

The synthetic graphs (``degree`` 10: 10^8 edges at 10^7 entities, about 0.9 GB on disk) are
written once under ``--graphs`` and reused.

Run:  python experiments/bench/bench_fusion_memory.py --graphs /tmp/kgllm-mmap [--sizes 1e5,1e6,1e7]
          [--inputs lm,id,sparse_id] [--json results/fusion_memory.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HIDDEN = 128


def status_mb(field: str = "VmHWM") -> float:
    """A memory figure of this process from ``/proc/self/status``, in MB: ``VmHWM`` its peak resident
    memory (reset by ``exec``, unlike ``ru_maxrss``, which would carry the parent's peak into the
    child), ``RssAnon`` / ``RssFile`` its resident anonymous memory and mapped file pages now."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status (Linux only)")


def one_run(graph_dir: str, inputs: str, batch: int, fanout: int, steps: int) -> dict:
    import numpy as np
    import torch
    from torch_geometric.data import Batch, Data
    from transformers import BertConfig, BertForMaskedLM

    from kgllm.data.mmap_graph import MmapGraph
    from kgllm.nn.graph_encoder import RelGATEncoder
    from kgllm.nn.kgbert import KGBert

    torch.manual_seed(0)
    torch.set_num_threads(2)
    rss0 = status_mb()
    g = MmapGraph(graph_dir)
    n_rel = int(g.relations[: min(g.num_edges, 1_000_000)].max()) + 1
    cfg = BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                     intermediate_size=1536, max_position_embeddings=512)
    hf = BertForMaskedLM(cfg)
    node_features = "lm" if inputs == "lm" else "id"
    enc = RelGATEncoder(g.num_nodes, n_rel, HIDDEN, 2, 4, 0.1, node_features=node_features,
                       text_dim=384 if inputs == "lm" else None, sparse_ids=inputs == "sparse_id")
    if inputs == "lm":
        enc.set_word_embeddings(hf.get_input_embeddings())
    model = KGBert(hf, enc, "xattn", [4], 0.1)
    sparse = [p for n, p in model.named_parameters() if n.endswith("node_emb.weight") and inputs == "sparse_id"]
    dense = [p for p in model.parameters() if all(p is not q for q in sparse)]
    opts = [torch.optim.AdamW(dense, lr=1e-4)] + ([torch.optim.SparseAdam(sparse, lr=1e-3)] if sparse else [])
    rng = np.random.default_rng(0)
    T, M = 64, 4
    times, sample_times = [], []
    for step in range(2 + steps):
        start = time.perf_counter()
        seeds = rng.integers(0, g.num_nodes, (batch, M))
        datas, token_node, offset = [], torch.full((batch, T), -1, dtype=torch.long), 0
        for b in range(batch):
            sub = g.subgraph(seeds[b], fanout, rng)
            data = Data(n_id=torch.from_numpy(sub.n_id), edge_index=torch.from_numpy(sub.edge_index),
                        edge_type=torch.from_numpy(sub.edge_type), node_pieces=torch.from_numpy(sub.node_pieces),
                        num_nodes=len(sub.n_id))
            datas.append(data)
            local = {v: i for i, v in enumerate(sub.n_id.tolist())}
            for m, s in enumerate(seeds[b]):
                token_node[b, 1 + 3 * m: 3 + 3 * m] = offset + local[int(s)]
            offset += len(sub.n_id)
        graph = Batch.from_data_list(datas)
        if inputs != "lm":
            del graph.node_pieces
        ids = torch.randint(1000, 30000, (batch, T))
        labels = torch.where(torch.rand(batch, T) < 0.15, ids, torch.full_like(ids, -100))
        sampled = time.perf_counter()
        out = model(ids, torch.ones_like(ids), graph=graph, token_node=token_node, labels=labels)
        out.loss.backward()
        for opt in opts:
            opt.step()
            opt.zero_grad()
        if step >= 2:
            times.append(time.perf_counter() - start)
            sample_times.append(sampled - start)
    peak, anon, files = status_mb(), status_mb("RssAnon"), status_mb("RssFile")
    return {"entities": g.num_nodes, "edges": g.num_edges, "inputs": inputs, "batch": batch,
            "nodes_per_batch": int(graph.num_nodes), "step_s": float(np.median(times)),
            "sample_s": float(np.median(sample_times)), "peak_rss_mb": peak, "start_rss_mb": rss0,
            "anon_rss_mb": anon, "file_rss_mb": files,
            "params_m": sum(p.numel() for p in model.parameters()) / 1e6}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--graphs", default=None, help="folder for the synthetic memory-mapped graphs (reused; required)")
    p.add_argument("--sizes", default="1e5,1e6,1e7")
    p.add_argument("--inputs", default="lm,id,sparse_id")
    p.add_argument("--max-id-entities", type=float, default=1e6,
                   help="largest KG given an id table (10^7 x 128 floats and AdamW's two states: 15 GB)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--fanout", type=int, default=10)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--json", default=None)
    p.add_argument("--one", nargs=2, metavar=("GRAPH", "INPUTS"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.one:
        print(json.dumps(one_run(a.one[0], a.one[1], a.batch, a.fanout, a.steps)))
        return 0
    if not a.graphs:
        p.error("--graphs is required")
    from kgllm.data.mmap_graph import MmapGraph, write_synthetic

    rows = []
    for size in (int(float(x)) for x in a.sizes.split(",")):
        folder = Path(a.graphs) / f"n{size}"
        try:
            MmapGraph(folder)
        except (FileNotFoundError, ValueError):
            start = time.perf_counter()
            write_synthetic(folder, size)
            print(f"wrote {folder} in {time.perf_counter() - start:.1f} s", flush=True)
        for inputs in a.inputs.split(","):
            if inputs != "lm" and size > a.max_id_entities:
                continue
            res = subprocess.run([sys.executable, __file__, "--one", str(folder), inputs, "--batch", str(a.batch),
                                  "--fanout", str(a.fanout), "--steps", str(a.steps)], capture_output=True, text=True)
            if res.returncode:
                raise SystemExit(f"{inputs} at {size}: failed\n{res.stderr[-2000:]}")
            rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    print(f"\nbatch {a.batch} x 64 tokens, 4 linked mentions each, fan-out {a.fanout}; MiniLM-sized BERT, xattn at "
          "layer 4, 2-layer GAT (128)")
    print("| entities | edges | node inputs | nodes / batch | step (s) | of which subgraph reading (s) | "
          "peak RSS (MB) | after: anonymous / mapped file (MB) | parameters (M) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['entities']:.0e} | {r['edges']:.0e} | {r['inputs']} | {r['nodes_per_batch']} | {r['step_s']:.3f} | "
              f"{r['sample_s']:.3f} | {r['peak_rss_mb']:,.0f} | {r['anon_rss_mb']:,.0f} / {r['file_rss_mb']:,.0f} | "
              f"{r['params_m']:.1f} |")
    lm = {r["entities"]: r for r in rows if r["inputs"] == "lm"}
    if len(lm) > 1:
        small, large = min(lm), max(lm)
        print(f"\nlm inputs: peak memory at {large:.0e} / at {small:.0e} = "
              f"{lm[large]['peak_rss_mb'] / lm[small]['peak_rss_mb']:.2f}x; step time "
              f"{lm[large]['step_s'] / lm[small]['step_s']:.2f}x")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
