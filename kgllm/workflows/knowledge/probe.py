"""``kgllm probe``: LAMA-style knowledge probe of an MLM checkpoint, with and without the KG.

Reads any LAMA file or folder (T-REx, Google-RE, ConceptNet, SQuAD; :mod:`kgllm.kg.sources.lama`). Each
fact becomes a cloze: its relation's template from ``relations.jsonl`` (``[X] was born in [Y] .``)
filled with the subject label and a ``[MASK]``, or, for a relation without a template, the
fact's own first masked sentence. Only facts whose object label is a single wordpiece are kept
(Petroni et al., 2019). The subject is linked to a KG node by its id key (``wd:Q76``) when the KG
has it, else by its normalised label or an alias; the result says how many were linked. P@1 is
the share of facts whose object is the model's top prediction at the mask (whole vocabulary),
per relation, averaged over relations (``p_at_1``, as LAMA reports) and over facts
(``p_at_1_micro``); also per fact group (``groups``: e.g. KG-only vs text facts) and by the
subject's degree in the KG (``by_degree``: 0 = unlinked or isolated, 1, 2-5, >5).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

from kgllm.util.formatting import HelpFormatter
from kgllm.util.lazy import no_grad
from kgllm.util.errors import KGLLMError
from kgllm.util.paths import dataset_file

DEGREE_BUCKETS = ("0", "1", "2-5", ">5")


def default_source(data_dir=None) -> Path:
    """The T-REx folder of ``$KGLLM_DATA`` (or ``data_dir``)."""
    return dataset_file("lama_trex", "relations.jsonl", root=data_dir).parent


def load_cloze(source=None, relations: Sequence[str] | None = None, max_facts: int | None = None,
               tokenizer=None, facts: list | None = None, splits: Sequence[str] | None = ("test",),
               templates: str | Path | None = None) -> dict[str, list[dict]]:
    """Cloze items per relation: ``text``, subject span (or ``None``), keys, object label and token id.

    ``source`` is a LAMA file or folder (default: ``$KGLLM_DATA/lama_trex``); ``facts`` (a list of
    :class:`~kgllm.kg.sources.lama.LamaFact`) replaces reading it. ``templates`` is a ``relations.jsonl``
    (default: the one beside the facts).
    """
    from kgllm.kg.sources.lama import MASK, read_lama, read_templates

    source = Path(source) if source is not None else default_source()
    folder = source if source.is_dir() else source.parent
    if facts is None:
        facts = read_lama(source, splits if source.is_dir() else None, relations, max_facts)
    templates = read_templates(templates or folder / "relations.jsonl")
    out: dict[str, list[dict]] = {}
    for fact in facts:
        ids = tokenizer(fact.obj_label, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            continue  # LAMA keeps single-token objects
        template = templates.get(fact.relation)
        if template is not None and "[X]" in template:
            start = template.index("[X]")
            text = template.replace("[X]", fact.sub_label).replace("[Y]", tokenizer.mask_token)
            subject = (start, start + len(fact.sub_label))
        elif fact.masked_sentences:
            text = fact.masked_sentences[0].replace(MASK, tokenizer.mask_token, 1)
            start = text.lower().find(fact.sub_label.lower()) if fact.sub_label else -1
            subject = (start, start + len(fact.sub_label)) if start >= 0 else None
        else:
            continue
        out.setdefault(fact.relation, []).append(
            {"text": text, "subject": subject, "sub_key": fact.sub_key, "sub_label": fact.sub_label,
             "object": fact.obj_label, "object_id": ids[0], "fact": fact})
    if not out:
        raise KGLLMError(f"{source}: no probe facts with single-token objects")
    return out


def subject_node(kg, item: dict, by_label: dict) -> int:
    """KG node of the item's subject: by id key, else by normalised label or alias; -1 if none."""
    from kgllm.kg.graph.normalize import normalize_label

    node = kg.key_to_id.get(item["sub_key"], -1)
    return node if node >= 0 else by_label.get(normalize_label(item["sub_label"]), -1)


def label_index(kg) -> dict[str, int]:
    """Normalised label and aliases -> entity id (the first entity wins on a clash)."""
    from kgllm.kg.graph.normalize import normalize_label

    index: dict[str, int] = {}
    for eid, e in enumerate(kg.entities):
        for name in (e.label, *sorted(e.aliases)):
            index.setdefault(normalize_label(name), eid)
    return index


def degree_bucket(degree: int) -> str:
    """A subject's KG degree as a bucket (0, 1, 2-5, >5) for P@1 by degree."""
    return "0" if degree <= 0 else "1" if degree == 1 else "2-5" if degree <= 5 else ">5"


@no_grad
def predict(model, tokenizer, items: list[dict], sampler, use_kg: bool, batch_size: int = 64) -> list[int]:
    """Top-1 token id at the mask for each cloze item."""
    from kgllm.data.collate import KGCollator
    from kgllm.linking import align_spans

    collate = KGCollator(tokenizer, sampler, "cloze")
    preds = []
    for i in range(0, len(items), batch_size):
        feats = []
        for it in items[i:i + batch_size]:
            enc = tokenizer(it["text"], return_offsets_mapping=True)
            node = it["node"]
            span = align_spans(enc["offset_mapping"], [it["subject"]] if it["subject"] is not None else [])
            feats.append({"input_ids": enc["input_ids"], "token_node": [node if j == 0 else -1 for j in span]})
        batch = collate(feats)
        preds += model.masked_token_logits(batch, tokenizer.mask_token_id, use_kg).argmax(-1).tolist()
    return preds


def fact_key(fact) -> str:
    """A probed fact's name in per-item results (``subject|relation|object`` keys)."""
    return f"{fact.sub_key}|{fact.relation}|{fact.obj_key}"


def _p_at_1(hits: list[tuple[bool, dict]], by_relation: bool = False) -> dict:
    out = {"p_at_1_micro": sum(h for h, _ in hits) / len(hits) if hits else 0.0, "facts": len(hits)}
    if by_relation:  # a group: also each fact's hit, for intervals over test items
        out["hits"] = {fact_key(it["fact"]): int(h) for h, it in hits}
        rels: dict[str, list] = {}
        for h, it in hits:
            rels.setdefault(it["fact"].relation, []).append(h)
        out["by_relation"] = {r: {"p_at_1": sum(v) / len(v), "facts": len(v)} for r, v in sorted(rels.items())}
    return out


def kg_prior(kg, probed: list, tokenizer) -> dict[str, int]:
    """Each relation's most frequent single-wordpiece object label among the KG's edges, the probed
    facts' own edges left out (so the baseline cannot read the answers): ``relation -> token id``."""
    from collections import Counter

    skip = {(f.sub_key, f.relation, f.obj_key) for f in probed}
    counts: dict[str, Counter] = {}
    for (h, r, t) in kg.edges:
        rel, obj = kg.relations[r], kg.entities[t]
        if (kg.entities[h].key, rel, obj.key) not in skip:
            counts.setdefault(rel, Counter())[obj.label] += 1
    out = {}
    for rel, c in counts.items():
        for label, _ in c.most_common():
            ids = tokenizer(label, add_special_tokens=False)["input_ids"]
            if len(ids) == 1:
                out[rel] = ids[0]
                break
    return out


def probe(ckpt: str, source=None, relations: Sequence[str] | None = None, max_facts: int | None = None,
          kg_dir: str | None = None, facts: list | None = None, groups: dict[str, list] | None = None,
          num_hops: int = 1, splits: Sequence[str] | None = ("test",)) -> dict:
    """P@1 per relation and overall, with the KG fused in and without it.

    ``groups`` maps a name to facts (e.g. ``{"kg_only": [...], "text": [...]}``): P@1 is also
    reported over the probed facts of each group. ``num_hops``: the subgraph around the subject.
    """
    from kgllm.data.subgraph import SubgraphConfig
    from kgllm.data.subgraph import SubgraphSampler
    from kgllm.kg.graph.store import KnowledgeGraph
    from kgllm.kg.graph.to_pyg import to_pyg
    from kgllm.lit.base import read_checkpoint, restore_module
    from kgllm.nn.backbone import load_tokenizer

    raw = read_checkpoint(ckpt)
    task = (raw.get("hyper_parameters") or {}).get("task")
    if task is not None or "fusion" not in (raw.get("hyper_parameters") or {}):
        raise KGLLMError(f"{ckpt}: a {task or 'non-MLM'} checkpoint; kgllm probe reads MLM pretraining checkpoints")
    # another KG (e.g. this one after update-kg): the model is built for it and its graph rows remapped by key
    model = restore_module(ckpt, raw, kg_dir)
    kg_dir = kg_dir or model.hparams.kg_dir
    tokenizer = load_tokenizer(model.hparams.backbone)
    kg = KnowledgeGraph.load(kg_dir)
    graph = to_pyg(kg)
    sampler = SubgraphSampler(graph, SubgraphConfig(num_hops=num_hops))
    import torch

    degree = torch.bincount(graph.edge_index.flatten(), minlength=kg.num_entities).tolist()
    cloze = load_cloze(source, relations, max_facts, tokenizer, facts=facts, splits=splits)
    by_label = label_index(kg)
    items = [it for its in cloze.values() for it in its]
    for it in items:  # a subject absent from the cloze text cannot be linked
        it["node"] = subject_node(kg, it, by_label) if it["subject"] is not None else -1
    group_of = {name: set(fs) for name, fs in (groups or {}).items()}
    result = {"checkpoint": ckpt, "kg_dir": str(kg_dir), "fusion": model.hparams.fusion, "relations": {},
              "linked": sum(it["node"] >= 0 for it in items), "probed": len(items)}
    prior = kg_prior(kg, [it["fact"] for it in items if it.get("fact") is not None], tokenizer)
    for pid, its in cloze.items():  # the no-model baseline: the relation's most frequent object in the KG
        hit = [prior.get(pid) is not None and prior[pid] == it["object_id"] for it in its]
        result["relations"].setdefault(pid, {"facts": len(its)})["majority"] = sum(hit) / len(its)
    result["majority"] = {"p_at_1": sum(r["majority"] for r in result["relations"].values()) / max(len(cloze), 1),
                          "predicts": {pid: tokenizer.convert_ids_to_tokens(t) for pid, t in prior.items()}}
    for use_kg in (True, False):
        tag = "with_kg" if use_kg else "without_kg"
        hits = []
        for pid, its in cloze.items():
            preds = predict(model, tokenizer, its, sampler, use_kg)
            ok = [(p == it["object_id"], it) for p, it in zip(preds, its)]
            result["relations"].setdefault(pid, {"facts": len(its)})[tag] = sum(h for h, _ in ok) / len(its)
            hits += ok
        rels = result["relations"].values()
        result[tag] = {"p_at_1": sum(r[tag] for r in rels) / len(cloze), **_p_at_1(hits),
                       "hits": [int(h) for h, _ in hits]}  # per cloze item, in a fixed order (forgetting)
        result[tag]["groups"] = {name: _p_at_1([(h, it) for h, it in hits if it["fact"] in fs], by_relation=True)
                                 for name, fs in group_of.items()}
        result[tag]["by_degree"] = {
            b: _p_at_1([(h, it) for h, it in hits if degree_bucket(degree[it["node"]] if it["node"] >= 0 else 0) == b])
            for b in DEGREE_BUCKETS}
    return result


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="kgllm probe", description=__doc__,
                                formatter_class=HelpFormatter)
    p.add_argument("ckpt", help="an MLMModule checkpoint")
    p.add_argument("--facts", default=None,
                   help="a LAMA file or folder of any format: T-REx, Google-RE, ConceptNet, SQuAD "
                        "(default: $KGLLM_DATA/lama_trex, its *.test.jsonl files)")
    p.add_argument("--data-dir", default=None, help="dataset root for the default --facts (default: $KGLLM_DATA)")
    p.add_argument("--num-hops", type=int, default=1, help="subgraph depth around the subject")
    p.add_argument("--kg-dir", default=None, help="KG to fuse (default: the checkpoint's)")
    p.add_argument("--relations", default=None, help="comma-separated relation ids (default: all with test facts)")
    p.add_argument("--max-facts", type=int, default=None, help="first N facts per relation")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    a = p.parse_args(argv)
    from kgllm.lit.quiet import quiet_third_party

    quiet_third_party(devices=True)
    if a.num_hops < 1 or (a.max_facts is not None and a.max_facts < 1):
        p.error("--num-hops and --max-facts must be positive")
    source = a.facts or default_source(a.data_dir)
    res = probe(a.ckpt, source, a.relations.split(",") if a.relations else None, a.max_facts, a.kg_dir,
                num_hops=a.num_hops)
    if a.json:
        print(json.dumps(res, indent=2))
        return 0
    print(f"{'relation':<10}{'facts':>7}{'P@1 with KG':>14}{'P@1 without':>14}{'majority':>10}  (KG prior)")
    for pid, r in res["relations"].items():
        said = res["majority"]["predicts"].get(pid, "-")
        print(f"{pid:<10}{r['facts']:>7}{r['with_kg']:>14.3f}{r['without_kg']:>14.3f}{r['majority']:>10.3f}  {said}")
    print(f"{'mean':<10}{res['with_kg']['facts']:>7}{res['with_kg']['p_at_1']:>14.3f}"
          f"{res['without_kg']['p_at_1']:>14.3f}{res['majority']['p_at_1']:>10.3f}")
    print(f"subjects linked to the KG: {res['linked']} of {res['probed']}")
    for b, r in res["with_kg"]["by_degree"].items():
        print(f"degree {b:<5}{r['facts']:>8} facts   P@1 with KG {r['p_at_1_micro']:.3f}   "
              f"without {res['without_kg']['by_degree'][b]['p_at_1_micro']:.3f}")
    return 0
