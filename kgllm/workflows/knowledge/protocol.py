"""The knowledge-injection experiment: does a fused KG teach facts the training text never states?

Protocol (LAMA T-REx, :mod:`kgllm.kg.sources.lama`): the probed facts are split, seeded and disjoint, into
*text facts* (their evidence sentences are the MLM training text) and *KG-only facts* (in the KG,
never in a training sentence). Every arm trains on the same sentences, order and budget
(``kgllm ablate``); ``kgllm probe`` then measures P@1 on both groups, with the KG fused and with
fusion switched off at inference, and by the subject's degree. A fused arm also runs on the KG
without the KG-only facts' edges: the knowledge must then vanish.

Used by ``experiments/bench/lama.py experiment`` (the README table) and ``kgllm demo``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence


def relation_objects(kg) -> dict[str, list[int]]:
    """Each relation's distinct object ids in ``kg``, sorted (the pools distractors and edits draw from)."""
    objects: dict[str, set[int]] = {}
    for (h, r, t) in kg.edges:
        objects.setdefault(kg.relations[r], set()).add(t)
    return {name: sorted(ts) for name, ts in objects.items()}


#: how :func:`relation_distractors` draws objects (recorded in a LAMA KG's meta.json)
DISTRACTOR_DRAW = "object per edge"


def edge_objects(kg) -> dict[str, list[int]]:
    """Each relation's object ids once per edge (a draw from it picks an object as often as the KG
    uses it): the pool relation distractors are drawn from."""
    objects: dict[str, list[int]] = {}
    for (h, r, t) in kg.edges:
        objects.setdefault(kg.relations[r], []).append(t)
    return objects


def draw_object(rng, pool: list[int], exclude) -> int | None:
    """One object from ``pool`` (once per edge) that is not in ``exclude``, or ``None`` if 100 draws
    all hit it (rejection: the pools hold thousands of edges, the exclusions a few objects)."""
    for _ in range(100 if pool else 0):
        o = pool[rng.randrange(len(pool))]
        if o not in exclude:
            return o
    return None


def relation_distractors(kg, probed: list, seed: int = 0) -> list[tuple[int, str, int]]:
    """Edges that make copying the subject's only neighbour fail: every probed subject that has no
    edge of a probed relation (neither a probed fact nor a T-REx fact) gets one, to an object drawn
    (seeded) from that relation's edges in the KG, so each object is drawn as often as the KG uses
    it: distractors look like answers ("French", "Paris", "Islam" as often as real facts name them),
    and a model cannot tell the answer from a distractor by how familiar its entity is (a uniform
    draw over distinct objects gives mostly rare entities, never seen in training, which a copy head
    learns to pass over). A distractor is never a probed fact: its relation is one the subject has
    no probed fact of, and its object is none of the subject's probed objects. Returns
    ``(head id, relation, tail id)`` edges, not yet added."""
    import random

    rng = random.Random(seed)
    relations = sorted({f.relation for f in probed})
    pools = edge_objects(kg)
    objects = {r: pools.get(r, []) for r in relations}
    has: dict[int, set[str]] = {}
    for (h, r, t) in kg.edges:
        has.setdefault(h, set()).add(kg.relations[r])
    truth: dict[int, set[int]] = {}
    for f in probed:
        truth.setdefault(kg.key_to_id[f.sub_key], set()).add(kg.key_to_id[f.obj_key])
    out = []
    for subject in sorted(truth):
        for rel in relations:
            if rel in has.get(subject, set()) or not objects[rel]:
                continue  # a real edge of this relation exists (a probed fact or a T-REx fact)
            o = draw_object(rng, objects[rel], truth[subject] | {subject})
            if o is not None:
                out.append((subject, rel, o))
    return out


def without_edges(kg, drop):
    """A copy of ``kg`` with the same entity and relation ids (one KG identity, so a model of one
    reads the other) and every edge ``(h, r, t)`` for which ``drop(h, r, t)`` is false."""
    from kgllm.kg.graph.store import KnowledgeGraph

    held = KnowledgeGraph(dict(kg.meta))
    for e in kg.entities:
        held.add_entity(e.key, e.label, e.etype, e.aliases, e.count, e.sources)
    for name in kg.relations:
        held.relation_id(name)
    for (h, r, t), edge in kg.edges.items():
        if not drop(h, r, t):
            for prov in edge.provenance:
                held.add_edge(h, kg.relations[r], t, prov, prov[4])
    return held


def build_kgs(data_dir, probed: list, kg_only: list, out: Path, distractor_seed: int | None = None) -> tuple[Path, Path]:
    """The KG with every probed fact and the distractors, and the same without the KG-only facts.
    With ``distractor_seed``, every probed subject also gets relation distractors
    (:func:`relation_distractors`), recorded in ``meta.json`` (``probe_facts.distractors``)."""
    from kgllm.kg.sources.imports import import_lama
    from kgllm.util.paths import dataset_file

    folder = dataset_file("lama_trex", "relations.jsonl", root=data_dir).parent
    from kgllm.util.errors import KGLLMError
    from kgllm.util.io import stable_hash
    from kgllm.kg.graph.folder import read_meta

    full_dir, held_dir = out / "lama_all", out / "lama_no_kgonly"
    split = {"probed": len(probed), "kg_only": len(kg_only),
             "hash": stable_hash(sorted((f.sub_key, f.relation, f.obj_key) for f in kg_only))}
    if distractor_seed is not None:
        split["distractor_seed"] = distractor_seed
        split["distractor_draw"] = DISTRACTOR_DRAW
    existing = [d for d in (full_dir, held_dir) if d.exists()]
    for d in existing:  # a KG of another split would silently mix protocols
        if {k: v for k, v in (read_meta(d).get("probe_facts") or {}).items() if k != "distractors"} != split:
            raise KGLLMError(f"{d}: built for another probe split (relations, max_facts, kg_only_fraction, "
                             "split_seed or distractors differ); remove it or pass another graphs folder")
    if len(existing) == 2:
        return full_dir, held_dir
    kg = import_lama(folder, splits=("train", "dev"))
    for f in probed:
        h = kg.add_entity(f.sub_key, f.sub_label, "ENT", sources=("wd",))
        t = kg.add_entity(f.obj_key, f.obj_label, "ENT", sources=("wd",))
        kg.add_edge(h, f.relation, t, (*f.source, -1, -1, 1.0))
    if distractor_seed is not None:
        added = relation_distractors(kg, probed, distractor_seed)
        for i, (h, rel, t) in enumerate(added):
            kg.add_edge(h, rel, t, (f"distractor:seed{distractor_seed}", i, -1, -1, 1.0))
        split["distractors"] = {"edges": len(added),
                                "hash": stable_hash([(kg.entities[h].key, r, kg.entities[t].key) for h, r, t in added])}
    kg.meta["probe_facts"] = split
    removed = {(f.sub_key, f.relation, f.obj_key) for f in kg_only}
    held = without_edges(kg, lambda h, r, t: (kg.entities[h].key, kg.relations[r], kg.entities[t].key) in removed)
    for folder_, graph in ((full_dir, kg), (held_dir, held)):
        if not folder_.exists():
            graph.save(folder_)
    return full_dir, held_dir


def majority_hits(text: list, probed: list, tokenizer=None) -> dict[str, int]:
    """For each fact of ``probed`` (by :func:`~kgllm.workflows.knowledge.probe.fact_key`), whether its relation's
    most frequent object label among the ``text`` facts is its object (the baseline that needs no
    model; ties go to the label first seen). With a ``tokenizer`` only single-wordpiece objects
    count, as the probe keeps them."""
    from collections import Counter

    from kgllm.workflows.knowledge.probe import fact_key

    def single(f) -> bool:
        return tokenizer is None or len(tokenizer(f.obj_label, add_special_tokens=False)["input_ids"]) == 1

    counts: dict[str, Counter] = {}
    for f in text:
        counts.setdefault(f.relation, Counter())[f.obj_label] += 1
    return {fact_key(f): int(f.relation in counts and counts[f.relation].most_common(1)[0][0] == f.obj_label)
            for f in probed if single(f)}


def majority_baseline(text: list, probed: list, tokenizer=None) -> float:
    """P@1 of the relation-majority baseline (:func:`majority_hits`) over ``probed``."""
    hits = majority_hits(text, probed, tokenizer)
    return sum(hits.values()) / len(hits) if hits else 0.0


def seen_groups(split, facts: list) -> dict[str, list]:
    """KG-only facts split by whether the object's label occurs in the training text (where a model
    could have learnt a row or a word for it) or not."""
    sentences = [s.lower() for s in split.training_sentences()]
    seen = [f for f in facts if any(f.obj_label.lower() in s for s in sentences)]
    unseen = [f for f in facts if f not in set(seen)]
    return {"kg_only_object_seen": seen, "kg_only_object_unseen": unseen}


def summary_table(table: list[dict], keys: list[str], hits: str | None = "kg_only_hits", base: str = "none",
                  base_prefix: str = "none_") -> str:
    """Mean +- std [95% CI over seeds] per arm, paired difference against the ``base`` arm (its values
    in each row under ``base_prefix + key``) with Holm-corrected p;
    where rows carry per-fact ``hits`` (``fact -> 0/1``), also the first key's 95% interval by a
    bootstrap over seeds and test items, and the difference's, paired by seed and fact."""
    from kgllm.util.stats import fmt_ci, fmt_p, holm, item_intervals, mean_ci, paired

    arms = list(dict.fromkeys(r["arm"] for r in table))
    base_rows = {r["seed"]: r for r in table if r["arm"] == base}
    by_items = bool(hits) and any(r.get(hits) for r in table)
    extra = f" | {keys[0]} 95% CI (seeds × items) | Δ 95% CI (seeds × items)" if by_items else ""
    lines = ["| arm | seeds | " + " | ".join(keys) + f" | Δ {keys[0]} vs {base} (p, Holm p){extra} |",
             "|" + "---|" * (3 + len(keys) + (2 if by_items else 0))]
    rows, ps = [], []
    for arm in arms:
        rs = sorted((r for r in table if r["arm"] == arm), key=lambda r: r["seed"])
        cells = []
        for k in keys:
            values = [r[k] for r in rs if k in r and r[k] == r[k]]  # NaN: not measured for this arm
            if not values:
                cells.append("–")
                continue
            s = mean_ci(values)
            cells.append(f"{s['mean']:.3f} ± {s['std']:.3f} {fmt_ci(s['ci'], 3)}")
        common = [r for r in rs if r["seed"] in base_rows]
        cmp = (paired([r[keys[0]] for r in common], [r[base_prefix + keys[0]] for r in common])
               if arm != base and len(common) >= 2 else None)
        boot = ["–", "–"]
        if by_items:
            it = item_intervals({r["seed"]: r.get(hits) for r in rs},
                                {s: b.get(hits) for s, b in base_rows.items()} if arm != base else None)
            if it:
                boot = [fmt_ci(it["ci"], 3), fmt_ci(it.get("diff_ci"), 3)]
        rows.append((arm, len(rs), cells, cmp, boot))
        if cmp:
            ps.append(cmp["p"])
    adjusted = iter(holm(ps))
    for arm, n, cells, cmp, boot in rows:
        delta = (f"{cmp['diff']:+.3f} {fmt_ci(cmp['diff_ci'], 3)} (p={fmt_p(cmp['p'])}, Holm p={fmt_p(next(adjusted))})"
                 if cmp else "–")
        tail = f" | {boot[0]} | {boot[1]}" if by_items else ""
        lines.append(f"| {arm} | {n} | " + " | ".join(cells) + f" | {delta}{tail} |")
    return "\n".join(lines)


def plot(table: list[dict], path: Path, key: str = "kg_only_p_at_1", title: str = "LAMA probe",
         facts: str | None = None, ylabel: str | None = None, intervals: dict | None = None,
         reference: str = "none") -> None:
    """A score per arm, one grey line per seed (the comparison is paired), mean ± 95% interval in
    colour (``reference`` in grey). ``intervals``: arm -> (mean, (low, high)) to draw instead of the
    t-interval over seeds (e.g. a bootstrap over seeds and test items)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kgllm.util.stats import mean_ci

    arms = list(dict.fromkeys(r["arm"] for r in table))
    fig, ax = plt.subplots(figsize=(1.9 * len(arms) + 2, 4.2))
    for seed in sorted({r["seed"] for r in table}):
        pts = [(i, r[key]) for i, a in enumerate(arms) for r in table if r["arm"] == a and r["seed"] == seed]
        ax.plot(*zip(*pts), color="0.75", linewidth=1, marker="o", markersize=3, zorder=1)
    for i, a in enumerate(arms):
        s = mean_ci([r[key] for r in table if r["arm"] == a])
        mean, ci = intervals[a] if intervals else (s["mean"], s["ci"])
        err = [[mean - ci[0]], [ci[1] - mean]] if ci else None
        ax.errorbar(i, mean, yerr=err, fmt="D", color="tab:gray" if a == reference else "tab:blue", capsize=5,
                    markersize=7, zorder=2)
    ax.set_xticks(range(len(arms)), [a.replace(" (", "\n(").replace(", ", ",\n") for a in arms], fontsize=8)
    ax.set_xlabel("arm (grey lines join the runs of one seed)")
    ax.set_ylabel(ylabel or f"P@1 on {facts or ('KG-only' if key.startswith('kg_only') else 'text')} facts")
    ax.set_title(f"{title}, {key}: mean and 95% {'interval' if intervals else 't-interval over seeds'}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


#: bumped when what :func:`kgllm.workflows.knowledge.probe.probe` returns changes (older cached results are probed again)
PROBE_CACHE_VERSION = 2


def cached_probe(cache: Path, ckpt: str, kg_dir: Path, facts: list, groups: dict, num_hops: int, probe_fn) -> dict:
    """``probe_fn()`` once per checkpoint, KG and probed facts: the result is kept in ``cache`` (a JSON
    file) under a key of the checkpoint's path, size and mtime, the KG's files and the facts, and
    reused while the key matches (an experiment grown by an arm or a seed re-probes only the new runs)."""
    import hashlib

    from kgllm.util.io import atomic_write_json

    h = hashlib.sha256()
    st = Path(ckpt).stat()
    h.update(f"{PROBE_CACHE_VERSION}|{Path(ckpt).resolve()}|{st.st_size}|{st.st_mtime_ns}|{num_hops}".encode())
    for name in ("entities.tsv", "triples.tsv", "meta.json"):
        f = Path(kg_dir) / name
        h.update(f.read_bytes() if f.is_file() else b"-")
    h.update(json.dumps([[f.sub_key, f.relation, f.obj_key] for f in facts]).encode())
    h.update(json.dumps({k: [[f.sub_key, f.relation, f.obj_key] for f in v] for k, v in sorted(groups.items())}).encode())
    key = h.hexdigest()
    if cache.is_file():
        try:
            held = json.loads(cache.read_text())
            if held.get("key") == key:
                return held["result"]
        except (ValueError, KeyError, AttributeError):
            pass  # a damaged cache is probed again and rewritten
    result = probe_fn()
    cache.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(cache, {"key": key, "result": result})
    return result


def probe_readings(row: dict, kg: Path, deleted: Path | None, out: Path, data_dir, facts: list, groups: dict,
                   num_hops: int) -> list[tuple[str, dict]]:
    """Probe one trained run (a row of ``kgllm ablate``'s ``results.csv``) on ``kg``: its readings
    ``with_kg`` and ``without_kg`` (fusion off at inference) and, for a fused variant given a
    ``deleted`` KG (the same KG without the probed facts' edges), ``deleted``: the same model after
    the facts are deleted from its KG. Results are cached in ``out/probes``."""
    from kgllm.workflows.knowledge.probe import default_source, probe

    def probed(on: Path) -> dict:
        name = f"{row['variant']}-seed{row['seed']}-on-{on.name}.json"
        return cached_probe(out / "probes" / name, row["best_ckpt"], on, facts, groups, num_hops,
                            lambda: probe(row["best_ckpt"], default_source(data_dir), facts=facts,
                                          groups=groups, kg_dir=str(on), num_hops=num_hops))

    res = probed(kg)
    readings = [("with_kg", res["with_kg"]), ("without_kg", res["without_kg"])]
    if deleted is not None and row["variant"] != "none":
        readings.append(("deleted", probed(deleted)["with_kg"]))
    return readings


def table_row(arm: str, seed, res: dict) -> dict:
    """One row of a LAMA table from one probe reading (P@1 per fact group; NaN for an empty group)."""
    g = res["groups"]
    p1 = {name: v["p_at_1_micro"] if v["facts"] else float("nan") for name, v in g.items()}
    row = {"arm": arm, "seed": seed, "kg_only_p_at_1": p1["kg_only"],
           "text_p_at_1": p1["text"], "kg_only_seen_p_at_1": p1["kg_only_object_seen"],
           "kg_only_unseen_p_at_1": p1["kg_only_object_unseen"],
           "kg_only_by_relation": {r: v["p_at_1"] for r, v in g["kg_only"]["by_relation"].items()},
           "kg_only_hits": g["kg_only"].get("hits"),
           "by_degree": res["by_degree"], "kg_only_facts": g["kg_only"]["facts"],
           "kg_only_seen_facts": g["kg_only_object_seen"]["facts"],
           "text_facts": g["text"]["facts"]}
    print(json.dumps({k: v for k, v in row.items() if k not in ("by_degree", "kg_only_hits")}), flush=True)
    return row


def run_experiment(config: Path, variants: Sequence[str], seeds: str, out: Path, graphs: Path,
                   data_dir=None, node_features: str = "id", num_hops: int = 1, removed_kg: bool = True,
                   extra: Sequence[str] = (), split_seed: int | None = None,
                   distractor_seed: int | None = None, dataset_args: dict | None = None) -> tuple[list[dict], str]:
    """Train every arm (``kgllm ablate``), probe each best checkpoint; returns the rows and a report.

    ``split_seed`` overrides the config's text / KG-only split (each split gets its own KGs);
    ``distractor_seed`` gives every probed subject relation distractors (:func:`relation_distractors`);
    ``dataset_args`` overrides the config's ``lama_mlm`` options (e.g. ``template_sentences``).
    Every table carries the relation-majority baseline (no model) and P@1 on KG-only facts split by
    whether their object's label occurs in the training text."""
    import yaml

    from kgllm.util.io import atomic_write_text
    from kgllm.workflows.ablate import main as ablate, read_rows
    from kgllm.data.datasets import lama_facts
    from kgllm.kg.sources.lama import split_facts
    from kgllm.nn.backbone import load_tokenizer
    cfg = yaml.safe_load(Path(config).read_text())
    args = {**cfg["data"]["init_args"]["dataset_args"], **(dataset_args or {})}
    if split_seed is not None:
        args["split_seed"] = split_seed
    relations, max_facts = args["relations"], args["max_facts"]
    fraction, split_seed = args["kg_only_fraction"], args.get("split_seed", 0)
    facts = lama_facts(data_dir, relations, max_facts)
    split = split_facts(facts, fraction, split_seed)
    full, held = build_kgs(data_dir, facts, split.kg_only, Path(graphs), distractor_seed)
    common = ["--seeds", seeds, "--data.dataset_args", json.dumps(args), *extra]
    if node_features != cfg["model"]["init_args"].get("node_features", "id"):  # else a variant's lm_features decides
        common += ["--model.node_features", node_features]
    if data_dir:
        common += ["--data.data_dir", str(data_dir)]
    groups = {"kg_only": split.kg_only, "text": split.text, **seen_groups(split, split.kg_only)}
    majority_items = majority_hits(split.text, split.kg_only,
                                   load_tokenizer(cfg["data"]["init_args"].get("backbone", "minilm")))
    majority = sum(majority_items.values()) / len(majority_items) if majority_items else 0.0
    table = []
    for kg, tag in ((full, ""), (held, " (KG-only facts removed)")):
        runs = list(variants) if kg == full else [v for v in variants if v != "none"] if removed_kg else []
        if not runs:
            continue
        ablate(["--config", str(config), "--variants", ",".join(runs), "--out", str(out / kg.name),
                "--data.kg_dir", str(kg), *common])
        for row in read_rows(out / kg.name / "results.csv"):
            if row["variant"] not in runs or str(row["seed"]) not in seeds.split(","):
                continue
            for reading, res in probe_readings(row, kg, held if kg == full else None, out / kg.name, data_dir, facts,
                                               groups, num_hops):
                if row["variant"] == "none" and reading == "without_kg":
                    continue
                arm = row["variant"] + tag + (", fusion off at inference" if reading == "without_kg" else "")
                if reading == "deleted":
                    arm = row["variant"] + ", KG-only facts deleted after training"
                table.append(table_row(arm, row["seed"], res))
    for s in sorted({r["seed"] for r in table}):  # the no-model baseline beside every seed (it has no seed)
        table.append({"arm": "majority (no model)", "seed": s, "kg_only_p_at_1": majority, "text_p_at_1": float("nan"),
                      "kg_only_seen_p_at_1": float("nan"), "kg_only_unseen_p_at_1": float("nan"),
                      "kg_only_hits": majority_items})
    base = {r["seed"]: r for r in table if r["arm"] == "none"}
    for r in table:  # the baseline's values beside every row, for the paired comparison
        for k in ("kg_only_p_at_1", "text_p_at_1"):
            r["none_" + k] = base[r["seed"]][k] if r["seed"] in base else float("nan")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "probe.json", json.dumps(table, indent=2))
    first = next((r for r in table if "kg_only_facts" in r), {"kg_only_facts": 0, "text_facts": 0,
                                                              "kg_only_seen_facts": 0})
    distract = (f"; relation distractors (seed {distractor_seed}): every probed subject has an edge of each "
                f"probed relation" if distractor_seed is not None else "")
    report = (f"# LAMA probe on KG-only facts ({node_features} node features, {num_hops}-hop subgraphs)\n\n"
              f"relations {', '.join(relations)}; first {max_facts} test facts each; split seed {split_seed}: "
              f"{len(split.text)} text facts (their {len(split.training_sentences())} evidence sentences are the "
              f"MLM training text), {len(split.kg_only)} KG-only facts, {len(split.excluded)} excluded (pair or "
              f"labels in the training text){distract}"
              f"{'; the text facts are also stated once in their relation templates' if args.get('template_sentences') else ''}; probed (single-token objects): {first['kg_only_facts']} "
              f"KG-only ({first.get('kg_only_seen_facts', 0)} whose object label occurs in the training text), "
              f"{first['text_facts']} text. Every arm trains on the same sentences, order and budget. "
              f"Relation-majority baseline (each relation's most frequent text-fact object): {majority:.3f}.\n\n"
              + summary_table(table, ["kg_only_p_at_1", "text_p_at_1", "kg_only_seen_p_at_1", "kg_only_unseen_p_at_1"])
              + "\n")
    atomic_write_text(out / "results.md", report)
    if table:
        plot(table, out / "results.png")
    return table, report


def verdict(table: list[dict], key: str = "kg_only_p_at_1") -> str:
    """One plain sentence: did the best arm beat ``none`` on ``key``, by how much, how surely. The
    best of ``m`` arms is picked after seeing them, so its p-value is Bonferroni-adjusted (times
    ``m``) and its interval is the ``1 - 0.05 / m`` one."""
    from kgllm.util.stats import fmt_ci, fmt_p, paired

    arms = [a for a in dict.fromkeys(r["arm"] for r in table) if a != "none" and "removed" not in a
            and "fusion off" not in a and "deleted" not in a and not a.startswith("majority")]
    if not arms or not any(r["arm"] == "none" for r in table):
        return "no comparison with none was run"
    rows = {a: sorted((r for r in table if r["arm"] == a), key=lambda r: r["seed"]) for a in arms}
    best = max(arms, key=lambda a: sum(r[key] for r in rows[a]) / len(rows[a]))
    rs = rows[best]
    wins = sum(r[key] > r["none_" + key] for r in rs)
    if len(rs) < 2:
        d = rs[0][key] - rs[0]["none_" + key]
        return f"{best} vs none on {key}: {d:+.3f} (one seed: no uncertainty can be given)"
    m = len(arms)
    c = paired([r[key] for r in rs], [r["none_" + key] for r in rs], level=1 - 0.05 / m)
    p = min(1.0, c["p"] * m)
    helped = c["diff_ci"][0] > 0
    chosen = f"best of {m} arms: Bonferroni p={fmt_p(p)}, {100 * (1 - 0.05 / m):.1f}% interval" if m > 1 else \
        f"paired t-test p={fmt_p(p)}"
    return (f"{best} vs none on {key}: {c['diff']:+.3f} {fmt_ci(c['diff_ci'], 3)} ({chosen}; "
            f"ahead in {wins} of {len(rs)} seeds): the graph "
            + ("helped: the interval excludes 0." if helped else "did NOT clearly help here: the interval "
               "includes 0 or lies below it."))
