"""Knowledge edits scored like model editing (ROME/MEMIT's CounterFact metrics), done through the
product: ``kgllm kg-edit`` replaces the objects of N probed facts in one update, and the trained
model reads the edited KG with zero weights changed.

* **efficacy**: P@1 of the new object on the edited facts (the relation's LAMA template);
* **paraphrase**: the same on other templates of the relation, written once and kept in a file
  (``experiments/lama_paraphrases.jsonl``);
* **specificity**: clozes that were not edited keep the model's answer: the edited subjects'
  other relations (``same_subject``) and probed facts of other subjects (``other_subjects``);
* **time per edit**: the one update's wall time over N.

Used by ``experiments/bench/lama.py edits``.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from pathlib import Path


def load_paraphrases(path: str | Path) -> dict[str, list[str]]:
    """``relation -> [template, ...]`` from a JSON Lines file of ``{"relation", "templates"}``."""
    from kgllm.util.errors import KGFormatError

    out: dict[str, list[str]] = {}
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            templates = [str(t) for t in row["templates"]]
            out[str(row["relation"])] = templates
        except (ValueError, KeyError, TypeError) as exc:
            raise KGFormatError(f"{path}:{n}: expected {{\"relation\": ..., \"templates\": [...]}} ({exc!r})") from None
        if not all("[X]" in t and "[Y]" in t for t in templates):
            raise KGFormatError(f"{path}:{n}: every template needs [X] and [Y]")
    return out


def cloze(template: str, subject: str, node: int, tokenizer, answer_id: int) -> dict:
    """A cloze item for :func:`kgllm.workflows.knowledge.probe.predict`."""
    start = template.index("[X]")
    text = template.replace("[X]", subject).replace("[Y]", tokenizer.mask_token)
    return {"text": text, "subject": (start, start + len(subject)), "node": node, "object_id": answer_id}


def single_piece(label: str, tokenizer) -> int | None:
    """The wordpiece id of a one-wordpiece label, else ``None`` (the probe scores single-token objects)."""
    ids = tokenizer(label, add_special_tokens=False)["input_ids"]
    return ids[0] if len(ids) == 1 else None


def choose_edits(kg, facts: list, n: int, tokenizer, seed: int = 0) -> list[tuple]:
    """Up to ``n`` probed facts (subject and object in the KG, single-wordpiece objects) each with a
    new object: another single-wordpiece object of the same relation in the KG (seeded)."""
    from kgllm.workflows.knowledge.protocol import relation_objects

    rng = random.Random(seed)
    pool = {r: [t for t in ts if single_piece(kg.entities[t].label, tokenizer) is not None]
            for r, ts in relation_objects(kg).items()}
    usable = [f for f in facts if f.sub_key in kg.key_to_id and f.obj_key in kg.key_to_id
              and (kg.key_to_id[f.sub_key], kg.rel_to_id.get(f.relation, -1), kg.key_to_id[f.obj_key]) in kg.edges
              and single_piece(f.obj_label, tokenizer) is not None]
    usable = list({(f.sub_key, f.relation): f for f in usable}.values())  # one edit per subject and relation
    rng.shuffle(usable)
    out = []
    for f in usable:
        old = kg.key_to_id[f.obj_key]
        candidates = [t for t in pool.get(f.relation, []) if t != old and kg.entities[t].label != f.obj_label]
        if candidates:
            out.append((f, candidates[rng.randrange(len(candidates))]))
        if len(out) == n:
            break
    return out


def edit_scores(new_ids: list[int], after: list[int], paraphrase_new: list[int], paraphrase_after: list[int],
                spec_before: dict[str, list[int]], spec_after: dict[str, list[int]]) -> dict:
    """The edit metrics from predicted wordpiece ids (pure, tested on hand-made predictions)."""
    def share(xs: list[bool]) -> float:
        return sum(xs) / len(xs) if xs else float("nan")

    out = {"efficacy": share([a == b for a, b in zip(after, new_ids)]),
           "paraphrase": share([a == b for a, b in zip(paraphrase_after, paraphrase_new)])}
    for name in spec_before:
        out[f"specificity_{name}"] = share([a == b for a, b in zip(spec_before[name], spec_after[name])])
    return out


def share_by_relation(relations: list[str], hits: list[bool]) -> dict[str, float]:
    """The share of ``hits`` per relation (pure, tested)."""
    out: dict[str, list[bool]] = {}
    for r, h in zip(relations, hits):
        out.setdefault(r, []).append(bool(h))
    return {r: sum(v) / len(v) for r, v in sorted(out.items())}


def run_edits(ckpt: str, kg_dir: str | Path, facts: list, paraphrases: dict[str, list[str]], templates: dict[str, str],
              work: Path, n: int = 200, seed: int = 0, others: int = 200) -> dict:
    """Edit ``n`` probed facts of a copy of ``kg_dir`` in one ``kg-edit`` update and score the model of
    ``ckpt`` before and after (no training step). Returns the metrics, counts and the time per edit."""
    from kgllm.data.subgraph import SubgraphConfig
    from kgllm.data.subgraph import SubgraphSampler
    from kgllm.kg.graph.store import KnowledgeGraph
    from kgllm.kg.graph.to_pyg import to_pyg
    from kgllm.kg.extraction.update import edit_facts
    from kgllm.lit.base import read_checkpoint, restore_module
    from kgllm.nn.backbone import load_tokenizer
    from kgllm.workflows.knowledge.probe import predict

    raw = read_checkpoint(ckpt)
    kg = KnowledgeGraph.load(kg_dir)
    model = restore_module(ckpt, raw, str(kg_dir))
    tokenizer = load_tokenizer(model.hparams.backbone)
    chosen = choose_edits(kg, facts, n, tokenizer, seed)
    edited_keys = {(f.sub_key, f.relation) for f, _ in chosen}
    probed_rels = sorted({f.relation for f in facts} & set(templates))

    def items():
        main, para, same, other = [], [], [], []
        for f, new in chosen:
            node = kg.key_to_id[f.sub_key]
            new_id = single_piece(kg.entities[new].label, tokenizer)
            main.append(cloze(templates[f.relation], f.sub_label, node, tokenizer, new_id))
            para += [cloze(t, f.sub_label, node, tokenizer, new_id) for t in paraphrases.get(f.relation, [])]
            same += [cloze(templates[r], f.sub_label, node, tokenizer, -1) for r in probed_rels if r != f.relation]
        rest = [f for f in facts if (f.sub_key, f.relation) not in edited_keys and f.sub_key in kg.key_to_id
                and f.relation in templates and f.sub_key not in {g.sub_key for g, _ in chosen}]
        random.Random(seed + 1).shuffle(rest)
        for f in rest[:others]:
            other.append(cloze(templates[f.relation], f.sub_label, kg.key_to_id[f.sub_key], tokenizer,
                               single_piece(f.obj_label, tokenizer) or -1))
        return main, para, same, other

    main, para, same, other = items()

    def read_all(model_, kg_) -> list[list[int]]:
        sampler = SubgraphSampler(to_pyg(kg_), SubgraphConfig(num_hops=1))
        return [predict(model_, tokenizer, group, sampler, use_kg=True) if group else [] for group in
                (main, para, same, other)]

    before = read_all(model, kg)
    edited = Path(work) / "edited_kg"
    if edited.exists():
        shutil.rmtree(edited)
    shutil.copytree(kg_dir, edited)
    start = time.perf_counter()
    edit_facts(edited, [(f.sub_key, f.relation, f.obj_key, kg.entities[new].key) for f, new in chosen])
    seconds = time.perf_counter() - start
    kg_after = KnowledgeGraph.load(edited)
    model_after = restore_module(ckpt, raw, str(edited))
    after = read_all(model_after, kg_after)
    scores = edit_scores([it["object_id"] for it in main], after[0], [it["object_id"] for it in para], after[1],
                         {"same_subject": before[2], "other_subjects": before[3]},
                         {"same_subject": after[2], "other_subjects": after[3]})
    old_ids = [single_piece(f.obj_label, tokenizer) for f, _ in chosen]
    rels = [f.relation for f, _ in chosen]
    old_after = [a == o for a, o in zip(after[0], old_ids)]
    scores["efficacy_by_relation"] = share_by_relation(rels, [a == it["object_id"] for a, it in zip(after[0], main)])
    scores["old_object_after_by_relation"] = share_by_relation(rels, old_after)
    scores.update({
        "old_object_p_at_1_after": sum(old_after) / max(len(old_after), 1),
        "efficacy_before": edit_scores([it["object_id"] for it in main], before[0], [], [], {}, {})["efficacy"],
        "old_object_p_at_1_before": sum(p == o for p, o in zip(before[0], old_ids)) / max(len(old_ids), 1),
        "other_subjects_p_at_1_before": sum(p == it["object_id"] for p, it in zip(before[3], other)) / max(len(other), 1),
        "other_subjects_p_at_1_after": sum(p == it["object_id"] for p, it in zip(after[3], other)) / max(len(other), 1),
        "edits": len(chosen), "paraphrase_clozes": len(para), "same_subject_clozes": len(same),
        "other_subject_clozes": len(other), "seconds": seconds, "seconds_per_edit": seconds / max(len(chosen), 1),
        "training_steps": 0})
    return scores


def run_new_subjects(ckpt: str, kg_dir: str | Path, new_facts: list, templates: dict[str, str], work: Path,
                     seed: int = 0, text_facts: list | None = None) -> dict:
    """Facts about subjects the KG did not hold when ``ckpt`` was trained, added to a copy of
    ``kg_dir`` by one update (as ``kg-import --into`` does), each new subject with relation
    distractors like the probed ones; then P@1 of the model on them with no training step, with the
    KG off (the graph-removed control) and, given the training ``text_facts``, the relation-majority
    baseline on the same facts."""
    from kgllm.data.subgraph import SubgraphConfig
    from kgllm.data.subgraph import SubgraphSampler
    from kgllm.kg.graph.store import KnowledgeGraph
    from kgllm.kg.graph.to_pyg import to_pyg
    from kgllm.kg.extraction.update import import_into
    from kgllm.lit.base import read_checkpoint, restore_module
    from kgllm.nn.backbone import load_tokenizer

    raw = read_checkpoint(ckpt)
    kg = KnowledgeGraph.load(kg_dir)
    tokenizer = load_tokenizer((raw.get("hyper_parameters") or {}).get("backbone") or "minilm")
    rng = random.Random(seed)
    facts = [f for f in new_facts if f.sub_key not in kg.key_to_id and f.relation in templates
             and single_piece(f.obj_label, tokenizer) is not None]
    facts = list({f.sub_key: f for f in facts}.values())  # one probed fact per new subject
    from kgllm.workflows.knowledge.protocol import draw_object, edge_objects

    objects = edge_objects(kg)  # distractors drawn as the probed subjects' are (relation_distractors)
    relations = sorted({f.relation for f in facts})
    added = KnowledgeGraph({})
    for f in facts:
        h = added.add_entity(f.sub_key, f.sub_label, "ENT", sources=("new",))
        t = added.add_entity(f.obj_key, f.obj_label, "ENT", sources=("new",))
        added.add_edge(h, f.relation, t, (*f.source, -1, -1, 1.0))
        for rel in relations:  # distractors: an object of every other relation, as the probed subjects have
            o = None if rel == f.relation else draw_object(rng, objects.get(rel, []), {kg.key_to_id.get(f.obj_key)})
            if o is not None:
                o = kg.entities[o]
                d = added.add_entity(o.key, o.label, o.etype, sources=("new",))
                added.add_edge(h, rel, d, ("distractor:new", 0, -1, -1, 1.0))
    grown = Path(work) / "grown_kg"
    if grown.exists():
        shutil.rmtree(grown)
    shutil.copytree(kg_dir, grown)
    start = time.perf_counter()
    import_into(grown, added, "new-subjects")
    seconds = time.perf_counter() - start
    kg_after = KnowledgeGraph.load(grown)
    model = restore_module(ckpt, raw, str(grown))  # the grown KG's lineage holds the trained one
    from kgllm.workflows.knowledge.probe import predict

    items = [cloze(templates[f.relation], f.sub_label, kg_after.key_to_id[f.sub_key], tokenizer,
                   single_piece(f.obj_label, tokenizer)) for f in facts]
    sampler = SubgraphSampler(to_pyg(kg_after), SubgraphConfig(num_hops=1))
    with_kg = predict(model, tokenizer, items, sampler, use_kg=True) if items else []
    without = predict(model, tokenizer, items, sampler, use_kg=False) if items else []
    hits = [p == it["object_id"] for p, it in zip(with_kg, items)]
    from kgllm.workflows.knowledge.protocol import majority_baseline

    majority = majority_baseline(text_facts, facts) if text_facts is not None else float("nan")
    return {"new_subjects": len(facts), "p_at_1": sum(hits) / len(hits) if hits else float("nan"),
            "majority_p_at_1": majority,
            "p_at_1_without_kg": (sum(p == it["object_id"] for p, it in zip(without, items)) / len(items)
                                  if items else float("nan")),
            "update_seconds": seconds, "training_steps": 0}


#: the metrics of :func:`edit_report` with their targets ("–": reported, no target)
EDIT_METRICS = (("efficacy", "≥ 0.9"), ("paraphrase", "≥ 0.8"), ("specificity_same_subject", "≥ 0.95"),
                ("specificity_other_subjects", "≥ 0.95"), ("efficacy_before", "–"), ("seconds_per_edit", "< 1"),
                ("new_p_at_1", "≥ 0.5"), ("new_p_at_1_without_kg", "–"), ("new_majority_p_at_1", "–"))


def edit_report(rows: list[dict]) -> str:
    """A markdown table of each metric's mean +- std and 95% t-interval over ``rows`` (one per
    checkpoint and edit draw), with the target where there is one."""
    from kgllm.util.stats import fmt_ci, mean_ci

    lines = [f"# Knowledge edits and new subjects ({len(rows)} runs: "
             f"{len({r.get('ckpt') for r in rows})} checkpoints x {len({r.get('edit_seed') for r in rows})} edit draws; "
             f"{rows[0]['edits'] if rows else 0} edits per run in one update, 0 training steps)", "",
             "| metric | mean ± std [95% CI] | target |", "|---|---|---|"]
    for name, target in EDIT_METRICS:
        values = [float(r[name]) for r in rows if isinstance(r.get(name), (int, float))]
        if not values:
            continue
        m = mean_ci(values)
        lines.append(f"| {name} | {m['mean']:.3f} ± {m['std']:.3f} {fmt_ci(m['ci'], 3)} | {target} |")
    rels = sorted({r for row in rows for r in row.get("efficacy_by_relation", {})})
    if rels:  # where the edits are read back, and where the answer stays the old object
        lines += ["", "Per relation (mean over runs): efficacy, and the share still answered with the old object.",
                  "", "| | " + " | ".join(rels) + " |", "|---|" + "---|" * len(rels)]
        for key, name in (("efficacy_by_relation", "efficacy"), ("old_object_after_by_relation", "old object after")):
            cells = []
            for r in rels:
                v = [row[key][r] for row in rows if r in row.get(key, {})]
                cells.append(f"{sum(v) / len(v):.3f}" if v else "–")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
