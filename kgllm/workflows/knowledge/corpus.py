"""Is a KG built from a corpus worth more than reading that corpus? (the corpus experiment)

Protocol (LAMA T-REx evidence, :mod:`kgllm.kg.sources.lama`): the probed facts are split, seeded and
disjoint, into *part A* facts and *part B* facts (:func:`~kgllm.kg.sources.lama.split_facts`; a part-B
fact whose pair or labels occur in part A's text is not probed). Part A's text is the text facts'
evidence sentences (and, with ``template_sentences``, each stated once in its relation's
template); part B's text is the other facts' evidence (:meth:`~kgllm.kg.sources.lama.FactSplit.held_sentences`).

* One KG is built by ``build-kg`` (spaCy mentions and clusters, the chosen extractor, entities
  keyed by label as for any corpus) from parts A and B together: part A's edges are what teaches a
  model to read the graph, part B's edges are the only way part-B facts reach a model that does not
  read part B. Nothing is keyed by Wikidata id: training text and probes link by label.
* The same KG without any edge between a probed part-B fact's subject and object (same ids):
  the "B facts deleted" arm.
* Arms (``kgllm ablate``, the same seeds, validation sentences and schedule): ``none`` (reads A),
  ``none + reading B`` (reads A and B), ``none+copy`` with the KG (reads A), ``none+copy + reading
  B``, and ``none+copy`` with B's facts deleted from its KG after training; plus the
  relation-majority baseline (no model).
* The KG's recall of the probed part-B facts, per relation, beside P@1: an arm can only read what
  was extracted.

Used by ``experiments/bench/corpus_experiment.py`` (the README table).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

#: arms of the corpus experiment: (ablate folder, dataset option read_held, variant) -> arm name
ARMS = {("read_a", False, "none"): "none",
        ("read_ab", True, "none"): "none + reading B",
        ("read_a", False, "none+copy"): "none+copy + KG(A+B)",
        ("read_ab", True, "none+copy"): "none+copy + KG(A+B) + reading B"}
DELETED_ARM = "none+copy, B facts deleted from the KG after training"


def corpus_documents(split, templates: dict[str, str] | None = None) -> list[dict]:
    """The experiment's corpus as ``build-kg`` JSONL rows: part A (the text facts' evidence and, with
    ``templates``, each text fact stated in its relation's template: what the model reads) and part
    B (:meth:`~kgllm.kg.sources.lama.FactSplit.held_sentences`). Ids say the part (``A12``, ``B3``)."""
    part_a = split.training_sentences()
    for f in split.text if templates else ():
        template = templates.get(f.relation)
        if template and "[X]" in template and "[Y]" in template:
            part_a.append(template.replace("[X]", f.sub_label).replace("[Y]", f.obj_label))
    part_a = list(dict.fromkeys(part_a))
    return ([{"id": f"A{i}", "text": s} for i, s in enumerate(part_a)]
            + [{"id": f"B{i}", "text": s} for i, s in enumerate(split.held_sentences())])


def label_nodes(kg) -> dict[str, set[int]]:
    """Normalised label or alias -> every entity id carrying it (a corpus KG may split one name)."""
    from kgllm.kg.graph.normalize import normalize_label

    index: dict[str, set[int]] = {}
    for i, e in enumerate(kg.entities):
        if i in kg.retired:
            continue
        for name in (e.label, *e.aliases):
            index.setdefault(normalize_label(name), set()).add(i)
    return index


def fact_edges(kg, facts: list) -> dict:
    """For each fact (by :func:`~kgllm.workflows.knowledge.probe.fact_key`): the relations of the KG's edges
    between a node of its subject's label and a node of its object's label (either direction), and
    whether each end has a node at all."""
    from kgllm.kg.graph.normalize import normalize_label
    from kgllm.workflows.knowledge.probe import fact_key

    index = label_nodes(kg)
    pair_rels: dict[tuple[int, int], set[str]] = {}
    for (h, r, t) in kg.edges:
        pair_rels.setdefault((h, t), set()).add(kg.relations[r])
        pair_rels.setdefault((t, h), set()).add(kg.relations[r])
    out = {}
    for f in facts:
        subs = index.get(normalize_label(f.sub_label), set())
        objs = index.get(normalize_label(f.obj_label), set())
        rels = set().union(*(pair_rels.get((s, o), set()) for s in subs for o in objs))
        out[fact_key(f)] = {"subject": bool(subs), "object": bool(objs), "relations": sorted(rels)}
    return out


def kg_recall(kg, facts: list, found: dict | None = None) -> dict[str, dict]:
    """Per relation (and ``all``): how many facts the KG states. ``subject`` / ``object``: a node
    carries the label; ``pair``: an edge of any relation joins them; ``typed``: an edge of the
    fact's own relation does (only an extractor that writes Wikidata relation ids can)."""
    from kgllm.workflows.knowledge.probe import fact_key

    found = found if found is not None else fact_edges(kg, facts)  # ``found``: fact_edges(kg, facts), if at hand
    table: dict[str, dict] = {}
    for f in facts:
        e = found[fact_key(f)]
        for rel in (f.relation, "all"):
            c = table.setdefault(rel, {"facts": 0, "subject": 0, "object": 0, "pair": 0, "typed": 0})
            c["facts"] += 1
            c["subject"] += e["subject"]
            c["object"] += e["object"]
            c["pair"] += bool(e["relations"])
            c["typed"] += f.relation in e["relations"]
    return dict(sorted(table.items(), key=lambda kv: (kv[0] == "all", kv[0])))


def without_facts(kg, facts: list):
    """A copy of ``kg`` (same entity and relation ids) without any edge between a node of a fact's
    subject label and a node of its object label, either direction."""
    from kgllm.kg.graph.normalize import normalize_label
    from kgllm.workflows.knowledge.protocol import without_edges

    index = label_nodes(kg)
    cut = set()
    for f in facts:
        for s in index.get(normalize_label(f.sub_label), ()):
            for o in index.get(normalize_label(f.obj_label), ()):
                cut |= {(s, o), (o, s)}
    return without_edges(kg, lambda h, r, t: (h, t) in cut)


def build_corpus_kgs(split, graphs: Path, extractor: str = "dependency", re_model: str | None = None,
                     templates: dict[str, str] | None = None, progress: bool = True) -> tuple[Path, Path]:
    """``build-kg`` of parts A and B (``graphs/kg_a_b``) and the same KG without the probed part-B
    facts' edges (``graphs/kg_a_b_no_b_facts``). ``graphs/corpus_experiment.json`` records what they
    were built from; a folder built from anything else is refused, never overwritten."""
    from kgllm.kg.extraction.config import ExtractConfig
    from kgllm.util.errors import KGLLMError
    from kgllm.util.io import atomic_write_json, stable_hash
    from kgllm.kg.extraction.build import build_kg
    from kgllm.kg.graph.store import KnowledgeGraph

    docs = corpus_documents(split, templates)
    record = {"corpus": stable_hash([d["text"] for d in docs]), "extractor": extractor,
              "re_model": str(re_model) if re_model else None,
              "probed": stable_hash(sorted((f.sub_key, f.relation, f.obj_key) for f in split.kg_only)),
              "documents": {"A": sum(d["id"][0] == "A" for d in docs), "B": sum(d["id"][0] == "B" for d in docs)}}
    graphs = Path(graphs)
    full, held, rec = graphs / "kg_a_b", graphs / "kg_a_b_no_b_facts", graphs / "corpus_experiment.json"
    if rec.is_file():
        if json.loads(rec.read_text()) != record:
            raise KGLLMError(f"{rec}: the KGs there were built from another split, corpus or extractor; "
                             "pass another graphs folder")
        if full.is_dir() and held.is_dir():
            return full, held
    elif full.exists() or held.exists():
        raise KGLLMError(f"{graphs}: holds KG folders this experiment did not record; pass another graphs folder")
    graphs.mkdir(parents=True, exist_ok=True)
    atomic_write_json(rec, record)
    corpus = graphs / "corpus_a_b.jsonl"
    corpus.write_text("".join(json.dumps(d) + "\n" for d in docs))
    if not full.is_dir():
        build_kg(corpus, full, fmt="jsonl", cfg=ExtractConfig(extractor=extractor, re_model=re_model), progress=progress)
    if not held.is_dir():
        without_facts(KnowledgeGraph.load(full), split.kg_only).save(held)
    return full, held


def recall_table(recall: dict[str, dict]) -> str:
    """The corpus KG's recall of the probed part-B facts per relation, as Markdown."""
    lines = ["| relation | probed part-B facts | subject in KG | object in KG | pair stated (any relation) | "
             "typed (the fact's relation) |", "|---|---|---|---|---|---|"]
    for rel, c in recall.items():
        n = max(c["facts"], 1)
        lines.append(f"| {rel} | {c['facts']} | {c['subject'] / n:.2f} | {c['object'] / n:.2f} | "
                     f"{c['pair']} ({c['pair'] / n:.2f}) | {c['typed']} ({c['typed'] / n:.2f}) |")
    return "\n".join(lines)


def run_corpus_experiment(config: Path, seeds: str, out: Path, graphs: Path, data_dir=None,
                          extractor: str = "dependency", re_model: str | None = None, num_hops: int = 1,
                          extra: Sequence[str] = (), split_seed: int | None = None,
                          dataset_args: dict | None = None, progress: bool = True,
                          arms: Sequence[str] | None = None) -> tuple[list[dict], str]:
    """Build the corpus KGs, train every arm (``arms``: names from :data:`ARMS`, default all) seed by seed (both text settings of one seed before the
    next seed, so an interrupted run leaves whole seeds), probe, and write ``results.md``,
    ``probe.json``, ``recall.json`` and ``results.png`` under ``out``."""
    import yaml

    from kgllm.data.datasets import lama_facts
    from kgllm.util.errors import ConfigError
    from kgllm.util.io import atomic_write_json, atomic_write_text
    from kgllm.kg.sources.lama import read_templates, split_facts
    from kgllm.kg.graph.store import KnowledgeGraph
    from kgllm.nn.backbone import load_tokenizer
    from kgllm.util.paths import dataset_file
    from kgllm.workflows.ablate import main as ablate, read_rows
    from kgllm.workflows.knowledge.protocol import (majority_hits, plot, probe_readings, seen_groups, summary_table,
                                           table_row)
    from kgllm.workflows.knowledge.probe import fact_key

    unknown = sorted(set(arms or ()) - set(ARMS.values()))
    if unknown:
        raise ConfigError(f"unknown corpus-experiment arm(s) {unknown}; choose from {list(ARMS.values())}")
    chosen = {k: v for k, v in ARMS.items() if arms is None or v in arms}
    cfg = yaml.safe_load(Path(config).read_text())
    args = {**cfg["data"]["init_args"]["dataset_args"], **(dataset_args or {}), "link": "label"}
    if split_seed is not None:
        args["split_seed"] = split_seed
    facts = lama_facts(data_dir, args["relations"], args["max_facts"])
    split = split_facts(facts, args["kg_only_fraction"], args.get("split_seed", 0))
    templates = (read_templates(dataset_file("lama_trex", "relations.jsonl", root=data_dir))
                 if args.get("template_sentences") else None)
    full, held = build_corpus_kgs(split, graphs, extractor, re_model, templates, progress)
    kg = KnowledgeGraph.load(full)
    found = fact_edges(kg, split.kg_only)
    recall = kg_recall(kg, split.kg_only, found)
    stated = [f for f in split.kg_only if found[fact_key(f)]["relations"]]
    groups = {"kg_only": split.kg_only, "text": split.text, **seen_groups(split, split.kg_only),
              "kg_only_stated": stated, "kg_only_not_stated": [f for f in split.kg_only if f not in set(stated)]}
    tokenizer = load_tokenizer(cfg["data"]["init_args"].get("backbone", "minilm"))
    majority_items = majority_hits(split.text, split.kg_only, tokenizer)
    majority = sum(majority_items.values()) / len(majority_items) if majority_items else 0.0
    common = ["--data.kg_dir", str(full), *(["--data.data_dir", str(data_dir)] if data_dir else []), *extra]
    for seed in seeds.split(","):
        for folder, read in dict.fromkeys((f, r) for f, r, _ in chosen):
            variants = ",".join(v for f, r, v in chosen if f == folder)
            ablate(["--config", str(config), "--variants", variants, "--seeds", seed, "--out", str(out / folder),
                    "--data.dataset_args", json.dumps({**args, "read_held": read}), *common])
    table = []
    for folder in dict.fromkeys(f for f, _, _ in chosen):
        for row in read_rows(out / folder / "results.csv"):
            key = next(((f, r, v) for f, r, v in chosen if f == folder and v == row["variant"]), None)
            if key is None or str(row["seed"]) not in seeds.split(","):
                continue
            for reading, res in probe_readings(row, full, held if folder == "read_a" else None, out / folder,
                                               data_dir, split.text + split.kg_only, groups, num_hops):
                if reading == "without_kg" and row["variant"] == "none":
                    continue
                arm = ARMS[key] + (", fusion off at inference" if reading == "without_kg" else "")
                r = table_row(DELETED_ARM if reading == "deleted" else arm, row["seed"], res)
                g = res["groups"]
                for name in ("kg_only_stated", "kg_only_not_stated"):
                    r[name + "_p_at_1"] = g[name]["p_at_1_micro"] if g[name]["facts"] else float("nan")
                table.append(r)
    for s in sorted({r["seed"] for r in table}):
        table.append({"arm": "majority (no model)", "seed": s, "kg_only_p_at_1": majority, "text_p_at_1": float("nan"),
                      "kg_only_seen_p_at_1": float("nan"), "kg_only_unseen_p_at_1": float("nan"),
                      "kg_only_hits": majority_items})
    for base in ("none", "none + reading B"):  # the paired comparisons: against none and against reading
        ref = {r["seed"]: r for r in table if r["arm"] == base}
        for r in table:
            for k in ("kg_only_p_at_1", "text_p_at_1"):
                r[("none_" if base == "none" else "reading_") + k] = ref[r["seed"]][k] if r["seed"] in ref else float("nan")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "probe.json", table)
    atomic_write_json(out / "recall.json", recall)
    keys = ["kg_only_p_at_1", "kg_only_stated_p_at_1", "kg_only_not_stated_p_at_1", "text_p_at_1"]
    n_probed = next((r["kg_only_facts"] for r in table if "kg_only_facts" in r), 0)
    report = (f"# Corpus experiment: a KG built from part B vs reading part B\n\n"
              f"relations {', '.join(args['relations'])}; first {args['max_facts']} T-REx test facts each; split seed "
              f"{args.get('split_seed', 0)}: part A = {len(split.text)} facts' evidence"
              f"{' and templates' if templates else ''} (every arm reads it), part B = "
              f"{len(split.held_sentences())} evidence sentences of {len(split.kg_only) + len(split.excluded)} "
              f"facts; probed: the {len(split.kg_only)} part-B facts no part-A sentence states ({n_probed} with a "
              f"single-wordpiece object). KG: `build-kg --extractor {extractor}` of parts A and B, linked by label "
              f"(no Wikidata ids). Relation-majority baseline: {majority:.3f}.\n\n"
              f"## What the KG states of the probed part-B facts\n\n{recall_table(recall)}\n\n"
              f"## P@1, paired against `none` (reads part A only)\n\n"
              + summary_table(table, keys) +
              "\n\n## P@1, paired against `none + reading B` (the baseline a KG of part B must beat)\n\n"
              + summary_table(table, keys, base="none + reading B", base_prefix="reading_") + "\n")
    atomic_write_text(out / "results.md", report)
    if table:
        plot(table, out / "results.png", title="KG of a corpus vs reading it", facts="probed part-B")
    return table, report
