"""Task datasets read from ``$KGLLM_DATA`` (or ``data_dir``) into :class:`TextExample` lists.

Every loader returns ``(splits, label_names)`` where ``splits`` maps ``train``,
``val`` and ``test`` to example lists. Splits are fixed and documented:

* ``redocred`` (MLM): documents ``train_docs`` / ``val_docs`` (``"start:end"`` ranges of
  ``redocred/dev_revised.json``, several joined by commas; default 0:90 and 90:100), text as in
  ``build-kg``.
* ``redocred_rc`` (relation classification): every gold (head, tail, relation) whose
  entities are mentioned in one sentence becomes a sentence example, first label
  per pair; documents ``train_docs`` / ``val_docs`` / ``test_docs`` (default 0:70, 70:85, 85:100);
  labels are the relations with at least ``min_count`` training examples.
* ``fewrel``: ``fewrel/val_wiki.json`` (16 relations x 700); per relation, in file order,
  the first 500 examples train, the next 100 val, the last 100 test; ``train_per_relation``
  keeps only the first N training examples of each relation (smaller runs, same val/test).
* ``sst2``: ``sst2/train.tsv`` / ``dev.tsv`` (val) / ``test.tsv`` (the labelled GLUE dev set).
* ``text`` (MLM): any corpus ``build-kg`` reads (``path``, ``format``), split by ``val_fraction``.
* ``redocred_ner`` (token classification): Re-DocRED sentences with BIO tags of the gold
  mention types (PER, ORG, LOC, TIME, NUM, MISC); documents as for ``redocred_rc``.
* ``redocred_docre`` (document-level relation extraction): whole documents with their gold
  entities and triples; documents ``train_docs`` / ``val_docs`` / ``test_docs`` (default 0:400,
  400:500, 400:500: only Re-DocRED's dev file is available here, so validation and test share
  documents 400-499 and every reported number is on them).
* ``lama_mlm`` (MLM): LAMA T-REx evidence sentences (object restored) of the relations in
  ``relations`` (default: all with test facts), at most ``max_facts`` facts each, with the
  subject and object mentions linked to ``wd:<QID>`` KG nodes; every 20th sentence is validation.
  ``kg_only_fraction`` keeps only the *text facts* of a seeded split (``split_seed``): the other
  facts are KG-only and their sentences are never seen (``kgllm.kg.sources.lama.split_facts``);
  ``link: label`` links mentions by label (a KG built from text), ``read_held`` also trains on the
  held-out facts' sentences (the corpus experiment's reading arm).

* ``hf``: any Hugging Face ``datasets`` source (CSV, TSV, JSON Lines, Parquet, a folder of split
  files, a ``save_to_disk`` folder, a hub name when online) for the task its ``task`` option names,
  with a column mapping (:mod:`kgllm.data.hf`).

``max_train`` / ``max_eval`` cap the number of examples (first N, fixed order). Loader options are
checked against the loader's typed signature (:func:`check_options`).
"""

from __future__ import annotations

import inspect
import json
from collections import Counter
from pathlib import Path
from typing import Callable

from kgllm.data.examples import SPLITS, TextExample  # noqa: F401 - re-exported for loaders' callers
from kgllm.data.hf import load_hf
from kgllm.util.errors import ConfigError, CorpusError
from kgllm.kg.extraction.corpus import read_corpus, read_text_file, redocred_problem, redocred_text
from kgllm.util.paths import dataset_file

def parse_range(spec: str) -> slice:
    """``"start:end"`` (either side may be empty) as a slice of documents."""
    try:
        start, end = (int(x) if x else None for x in spec.split(":"))
    except ValueError as exc:
        raise ValueError(f"bad document range {spec!r}; expected 'start:end'") from exc
    return slice(start, end)


def doc_indices(spec: str, n: int) -> list[int]:
    """The document indices of ``spec`` among ``n`` documents: ``"start:end"`` ranges joined by commas
    (``"0:100,200:350"``: every fold but one, for cross-fitting), in the order given, none twice."""
    out: list[int] = []
    for part in spec.split(","):
        out += range(n)[parse_range(part.strip())]
    if len(set(out)) != len(out):
        raise ValueError(f"bad document range {spec!r}: its ranges overlap")
    return out


def select_docs(data: list, spec: str) -> list:
    """The documents of ``data`` that ``spec`` names (:func:`doc_indices`)."""
    return [data[i] for i in doc_indices(spec, len(data))]


def range_spec(indices) -> str:
    """Sorted document indices as the shortest ``"start:end,..."`` spec (``[0, 1, 2, 5]`` -> ``"0:3,5:6"``)."""
    parts, run = [], None
    for i in sorted(set(indices)):
        if run and i == run[1]:
            run[1] = i + 1
        else:
            if run:
                parts.append(run)
            run = [i, i + 1]
    if run:
        parts.append(run)
    return ",".join(f"{a}:{b}" for a, b in parts) or "0:0"


def _cap(splits: dict, max_train: int | None, max_eval: int | None) -> dict:
    return {k: v[: (max_train if k == "train" else max_eval)] if (max_train if k == "train" else max_eval)
            else v for k, v in splits.items()}


def _load_json(path: Path):
    try:
        return json.loads(read_text_file(path))
    except json.JSONDecodeError as exc:
        raise CorpusError(f"{path}: malformed JSON ({exc.msg} at line {exc.lineno})") from exc


def load_redocred_mlm(data_dir=None, train_docs: str = "0:90", val_docs: str = "90:100") -> tuple:
    """Re-DocRED documents as MLM text: ``train_docs`` and ``val_docs`` ranges (test = val); no labels."""
    path = dataset_file("redocred", "dev_revised.json", root=data_dir)
    docs = list(read_corpus(path, "redocred"))
    splits = {"train": select_docs(docs, train_docs), "val": select_docs(docs, val_docs)}
    splits["test"] = splits["val"]
    return {k: [TextExample(d.text) for d in v] for k, v in splits.items()}, []


def _redocred_pairs(doc: dict) -> list[tuple[str, str, tuple, tuple, str]]:
    """(sentence text, relation, head span, tail span) for gold pairs sharing a sentence."""
    out, seen = [], set()
    sents = doc["sents"]
    for lab in doc.get("labels", []):
        key = (lab["h"], lab["t"])
        if key in seen:
            continue
        heads, tails = doc["vertexSet"][lab["h"]], doc["vertexSet"][lab["t"]]
        for mh in heads:
            mt = next((m for m in tails if m["sent_id"] == mh["sent_id"]), None)
            if mt is None:
                continue
            text, offsets = redocred_text([sents[mh["sent_id"]]])
            tok = offsets[0]
            h = (tok[mh["pos"][0]][0], tok[mh["pos"][1] - 1][1])
            t = (tok[mt["pos"][0]][0], tok[mt["pos"][1] - 1][1])
            if h[0] < t[1] and t[0] < h[1]:
                continue  # overlapping mentions cannot carry separate markers
            seen.add(key)
            out.append((text, lab["r"], h, t, mh["type"], mt["type"]))
            break
    return out


def load_redocred_rc(data_dir=None, train_docs: str = "0:70", val_docs: str = "70:85", test_docs: str = "85:100",
                     min_count: int = 10) -> tuple:
    """Re-DocRED sentence pairs for relation classification (entity markers), relations with at least ``min_count`` training pairs; document ranges per split."""
    path = dataset_file("redocred", "dev_revised.json", root=data_dir)
    data = _load_json(path)
    raw = {s: [p for doc in select_docs(data, r) for p in _redocred_pairs(doc)]
           for s, r in zip(SPLITS, (train_docs, val_docs, test_docs))}
    counts = Counter(p[1] for p in raw["train"])
    labels = sorted(r for r, n in counts.items() if n >= min_count)
    if not labels:
        raise CorpusError(f"{path}: no relation has {min_count} training examples in docs {train_docs}")
    index = {r: i for i, r in enumerate(labels)}
    splits = {s: [TextExample(text, index[r], h, t, [(*h, ht), (*t, tt)])
                  for text, r, h, t, ht, tt in v if r in index] for s, v in raw.items()}
    return splits, labels


def _mention_names(doc: dict, e: int) -> set[str]:
    return {m["name"] for m in doc["vertexSet"][e]}


def _squash(text: str) -> str:
    """Lower-case text without whitespace: Re-DocRED's space-joined tokens and raw sentences compare."""
    return "".join(text.lower().split())


def _distant_examples(source: str, data_dir, index: dict[str, int]) -> list[TextExample]:
    """One-sentence documents with two entities and the relation their source gives, where that
    relation is in the schema: FewRel sentences (``fewrel/val_wiki.json``) or LAMA T-REx evidence
    sentences (object restored)."""
    out: list[TextExample] = []
    if source == "fewrel":
        for rel, examples in _load_json(dataset_file("fewrel", "val_wiki.json", root=data_dir)).items():
            if rel not in index:
                continue
            for ex in examples:
                text, offsets = redocred_text([ex["tokens"]])
                tok = offsets[0]
                ents = [[(tok[p[0]][0], tok[p[-1]][1]) for p in end[2]] for end in (ex["h"], ex["t"])]
                out.append(TextExample(text, spans=[(s, e, "MISC") for ent in ents for s, e in ent], entities=ents,
                                       triples=[(0, 1, index[rel], False)]))
    elif source == "lama":
        for fact in lama_facts(data_dir, None, None):
            if fact.relation not in index:
                continue
            for text, sub, obj in fact.evidence():
                a, b = text.find(sub), text.find(obj)
                if a < 0 or b < 0 or not sub or not obj or (a < b + len(obj) and b < a + len(sub)):
                    continue
                ents = [[(a, a + len(sub))], [(b, b + len(obj))]]
                out.append(TextExample(text, spans=[(*ents[0][0], "MISC"), (*ents[1][0], "MISC")], entities=ents,
                                       triples=[(0, 1, index[fact.relation], False)]))
    else:
        raise ConfigError(f"unknown distant supervision source {source!r}; choose from fewrel, lama")
    return out


def _spacy_entities(examples: list[TextExample], spacy_model: str | None = None) -> list[TextExample]:
    """The same documents with the entities ``build-kg`` would find (spaCy mentions, kgllm's entity
    clusters; resolved pronouns left out) instead of the gold ones. A predicted entity takes the gold
    entity most of its mentions match exactly; gold triples carry over to every pair of predicted
    entities matched to their ends, and a predicted entity matched to none is in no triple."""
    from kgllm.kg.extraction.config import ExtractConfig
    from kgllm.kg.extraction.extract import extract_doc, load_pipeline

    nlp = load_pipeline(spacy_model)
    cfg = ExtractConfig(spacy_model=spacy_model, extractor="cooccurrence")
    out = []
    for i, (ex, doc) in enumerate(zip(examples, nlp.pipe([e.text for e in examples], batch_size=16))):
        found = extract_doc(doc, str(i), cfg, extractors=[])
        clusters: dict[int, list[tuple[int, int]]] = {}
        labels: dict[tuple[int, int], str] = {}
        for m in found.mentions:
            if m.label != "PRON":
                clusters.setdefault(m.entity, []).append((m.start, m.end))
                labels[(m.start, m.end)] = m.label
        gold_of_span = {span: e for e, spans in enumerate(ex.entities) for span in spans}
        entities, gold = [], []
        for spans in clusters.values():
            votes = Counter(gold_of_span[sp] for sp in spans if sp in gold_of_span)
            entities.append(sorted(spans))
            gold.append(votes.most_common(1)[0][0] if votes else None)
        triples = sorted({(ph, pt, r, in_train) for h, t, r, in_train in ex.triples
                          for ph, gh in enumerate(gold) if gh == h for pt, gt in enumerate(gold) if gt == t and ph != pt})
        out.append(TextExample(ex.text, spans=sorted((s, e, labels[(s, e)]) for spans in entities for s, e in spans),
                               entities=entities, triples=triples))
    return out


def redocred_schema() -> dict[str, str]:
    """DocRED's and Re-DocRED's relation types: Wikidata property id -> label (96; shipped as
    ``kgllm/resources/redocred_relations.json``)."""
    from importlib.resources import files

    return json.loads((files("kgllm") / "resources" / "redocred_relations.json").read_text(encoding="utf-8"))["relations"]


def load_redocred_docre(data_dir=None, train_docs: str = "0:400", val_docs: str = "400:500",
                        test_docs: str = "400:500", path: str | None = None, train_entities: str = "gold",
                        distant: list[str] | None = None, distant_max: int | None = None,
                        spacy_model: str | None = None, schema: str = "redocred") -> tuple:
    """Whole Re-DocRED documents with their gold entities and relation triples (document-level RE).

    Labels are the relation schema's ids, sorted: ``schema: redocred`` is DocRED's and Re-DocRED's
    96 relation types (:func:`redocred_schema`), so a model trained on one file scores any other
    file of the schema, and a file with a relation outside it is refused, naming the relation;
    ``schema: file`` takes the relation ids annotated anywhere in the file (models trained before
    the schema was fixed). A
    val/test triple is ``in_train`` when some pair of its entities' mention names holds the same
    relation in the training documents (DocRED's definition behind Ign F1). ``path``: another
    Re-DocRED/DocRED-format file instead of ``redocred/dev_revised.json``.

    ``train_entities``: ``gold``, ``spacy`` (the training documents with the entities ``build-kg``
    finds, labels carried over where a predicted entity matches a gold one) or ``both``; validation
    and test always use the gold entities. ``distant``: add one-sentence training documents from
    ``fewrel`` and/or ``lama`` whose relation is in the schema (at most ``distant_max`` per source),
    leaving out any sentence that occurs in a validation or test document.
    """
    if train_entities not in ("gold", "spacy", "both"):
        raise ConfigError(f"train_entities must be gold, spacy or both, got {train_entities!r}")
    path = Path(path) if path else dataset_file("redocred", "dev_revised.json", root=data_dir)
    data = _load_json(path)
    if not isinstance(data, list):
        raise CorpusError(f"{path}: expected a JSON list of Re-DocRED documents")
    for i, doc in enumerate(data):
        sents = doc.get("sents") if isinstance(doc, dict) else None
        if not (isinstance(sents, list) and all(isinstance(x, list) for x in sents)):
            raise CorpusError(f"{path}: document {i}: 'sents' must be a list of token lists")
        problem = redocred_problem(doc, sents)
        if problem:
            raise CorpusError(f"{path}: document {i}: {problem}")
    used = {lab["r"] for doc in data for lab in doc.get("labels", [])}
    if schema == "file":
        labels = sorted(used)
    elif schema == "redocred":
        labels = sorted(redocred_schema())
        outside = sorted(used - set(labels))
        if outside:
            doc = next(i for i, d in enumerate(data) if any(lab["r"] == outside[0] for lab in d.get("labels", [])))
            raise CorpusError(f"{path}: document {doc}: relation {outside[0]!r} is not in the Re-DocRED schema "
                              f"(96 relation types){f'; {len(outside) - 1} more outside it' if len(outside) > 1 else ''}")
    else:
        raise ConfigError(f"schema must be redocred or file, got {schema!r}")
    index = {r: i for i, r in enumerate(labels)}
    train_facts = {(a, b, lab["r"]) for doc in select_docs(data, train_docs) for lab in doc.get("labels", [])
                   for a in _mention_names(doc, lab["h"]) for b in _mention_names(doc, lab["t"])}
    splits = {}
    for split, spec in zip(SPLITS, (train_docs, val_docs, test_docs)):
        examples = []
        for doc in select_docs(data, spec):
            text, offsets = redocred_text(doc["sents"])
            entities = [[(offsets[m["sent_id"]][m["pos"][0]][0], offsets[m["sent_id"]][m["pos"][1] - 1][1])
                         for m in ent] for ent in doc["vertexSet"]]
            types = [(s, e, ent[0]["type"]) for spans, ent in zip(entities, doc["vertexSet"]) for s, e in spans]
            triples = sorted({(lab["h"], lab["t"], index[lab["r"]],
                               split != "train" and any((a, b, lab["r"]) in train_facts for a in _mention_names(doc, lab["h"])
                                   for b in _mention_names(doc, lab["t"])))
                              for lab in doc.get("labels", []) if lab["h"] != lab["t"]})
            examples.append(TextExample(text, spans=sorted(set(types)), entities=entities, triples=triples))
        splits[split] = examples
    if train_entities != "gold":
        predicted = _spacy_entities(splits["train"], spacy_model)
        splits["train"] = predicted if train_entities == "spacy" else splits["train"] + predicted
    held_out = "\n".join(_squash(ex.text) for split in ("val", "test") for ex in splits[split])
    for source in distant or ():
        extra = [ex for ex in _distant_examples(source, data_dir, index) if _squash(ex.text) not in held_out]
        splits["train"] = splits["train"] + extra[:distant_max]
    return splits, labels


def load_fewrel(data_dir=None, n_train: int = 500, n_val: int = 100, train_per_relation: int | None = None) -> tuple:
    """FewRel ``val_wiki.json`` sentences: ``n_train``/``n_val`` per relation (or ``train_per_relation``), relation names from ``pid2name.json``."""
    path = dataset_file("fewrel", "val_wiki.json", root=data_dir)
    data = _load_json(path)
    names_path = dataset_file("fewrel", "pid2name.json", root=data_dir)
    names = _load_json(names_path)
    labels = sorted(data)
    splits: dict[str, list] = {s: [] for s in SPLITS}
    for li, rel in enumerate(labels):
        for n, ex in enumerate(data[rel]):
            text, offsets = redocred_text([ex["tokens"]])
            tok = offsets[0]
            hp, tp = ex["h"][2][0], ex["t"][2][0]
            h, t = (tok[hp[0]][0], tok[hp[-1]][1]), (tok[tp[0]][0], tok[tp[-1]][1])
            split = "train" if n < n_train else "val" if n < n_train + n_val else "test"
            if split == "train" and train_per_relation is not None and n >= train_per_relation:
                continue
            splits[split].append(TextExample(text, li, h, t, [(*h, "MISC"), (*t, "MISC")]))
    return splits, [f"{r}:{names.get(r, [r])[0]}" for r in labels]


def read_tsv(path: Path) -> list[TextExample]:
    """A GLUE-style ``sentence<TAB>label`` file (header skipped) as examples; a bad line names the file and line."""
    lines = read_text_file(path).splitlines()
    out = []
    for lineno, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        parts = line.rsplit("\t", 1)
        if len(parts) != 2 or parts[1].strip() not in {"0", "1"}:
            raise CorpusError(f"{path}:{lineno}: expected 'sentence<TAB>0|1'")
        out.append(TextExample(parts[0].strip(), int(parts[1])))
    return out


def load_sst2(data_dir=None) -> tuple:
    """SST-2: ``train.tsv``, ``dev.tsv`` (validation) and ``test.tsv`` (the labelled GLUE dev set)."""
    files = {"train": "train.tsv", "val": "dev.tsv", "test": "test.tsv"}
    return {s: read_tsv(dataset_file("sst2", f, root=data_dir)) for s, f in files.items()}, ["negative", "positive"]


def load_text(data_dir=None, path: str = "", format: str = "auto", val_fraction: float = 0.1) -> tuple:
    """Any corpus ``build-kg`` reads, as MLM text; the last ``val_fraction`` of documents validates."""
    if not path:
        raise ValueError("dataset 'text' needs dataset_args.path")
    docs = [TextExample(d.text) for d in read_corpus(path, format)]
    n_val = max(1, int(len(docs) * val_fraction)) if len(docs) > 1 else 0
    train, val = docs[: len(docs) - n_val], docs[len(docs) - n_val:] or docs
    return {"train": train, "val": val, "test": val}, []


NER_TYPES = ("PER", "ORG", "LOC", "TIME", "NUM", "MISC")
NER_LABELS = ["O"] + [f"{p}-{t}" for t in NER_TYPES for p in ("B", "I")]


def load_redocred_ner(data_dir=None, train_docs: str = "0:70", val_docs: str = "70:85", test_docs: str = "85:100") -> tuple:
    """Re-DocRED documents as BIO-tagged tokens (entity types), document ranges per split."""
    path = dataset_file("redocred", "dev_revised.json", root=data_dir)
    data = _load_json(path)
    splits = {}
    for split, rng in zip(SPLITS, (train_docs, val_docs, test_docs)):
        out = []
        for doc in select_docs(data, rng):
            for sid, sent in enumerate(doc["sents"]):
                text, offsets = redocred_text([sent])
                spans = sorted({(offsets[0][m["pos"][0]][0], offsets[0][m["pos"][1] - 1][1], m["type"])
                                for ent in doc["vertexSet"] for m in ent if m["sent_id"] == sid})
                out.append(TextExample(text, spans=[s for i, s in enumerate(spans)
                                                    if i == 0 or s[0] >= spans[i - 1][1]]))
        splits[split] = out
    return splits, NER_LABELS


def lama_facts(data_dir=None, relations: list[str] | None = None, max_facts: int = 200) -> list:
    """The first ``max_facts`` T-REx test facts of each relation in ``relations`` (default: all)."""
    from kgllm.kg.sources.lama import read_lama

    root = dataset_file("lama_trex", "relations.jsonl", root=data_dir).parent
    return read_lama(root, splits=("test",), relations=relations, max_facts=max_facts)


def _linked_sentence(text: str, sub: str, obj: str, fact, link: str = "key") -> TextExample:
    """The sentence with its subject and object marked: linked by the facts' id keys (``link="key"``,
    the LAMA KG holds them) or as mentions the linker resolves by label (``"label"``: a KG built
    from text, whose keys are its own)."""
    links = []
    for surface, key in ((sub, fact.sub_key), (obj, fact.obj_key)):
        start = text.find(surface)
        if start >= 0 and all(start >= e or start + len(surface) <= s for s, e, _ in links):
            links.append((start, start + len(surface), key))
    if link == "label":
        return TextExample(text, spans=sorted((s, e, "ENT") for s, e, _ in links))
    return TextExample(text, links=sorted(links))


def load_lama_mlm(data_dir=None, relations: list[str] | None = None, max_facts: int = 200,
                  kg_only_fraction: float | None = None, split_seed: int = 0,
                  template_sentences: bool = False, link: str = "key", read_held: bool = False) -> tuple:
    """Evidence sentences of LAMA facts; with ``kg_only_fraction``, only those of the *text facts* of
    :func:`kgllm.kg.sources.lama.split_facts` (the KG-only facts' sentences are never trained on). With
    ``template_sentences``, each of these facts is also stated once in its relation's LAMA template
    (``[X] was born in [Y] .``): the probe's wording, learnt from the text facts only.

    ``link``: ``key`` links subject and object by their Wikidata keys, ``label`` by their labels (a
    KG built from a corpus). ``read_held``: the training split also holds the held-out facts'
    evidence (:meth:`~kgllm.kg.sources.lama.FactSplit.held_sentences`, the text a KG of them is built
    from): the arm that reads the corpus instead of (or as well as) its KG. Validation stays the
    text facts' sentences, so every arm is validated on the same sentences."""
    from kgllm.kg.sources.lama import read_templates, split_facts

    if link not in ("key", "label"):
        raise ConfigError(f"lama_mlm: link must be 'key' or 'label', got {link!r}")
    if read_held and kg_only_fraction is None:
        raise ConfigError("lama_mlm: read_held needs kg_only_fraction (there are no held-out facts without a split)")
    facts = lama_facts(data_dir, relations, max_facts)
    split = split_facts(facts, kg_only_fraction, split_seed) if kg_only_fraction is not None else None
    if split is not None:
        facts = split.text
    sents = [_linked_sentence(text, sub, obj, f, link) for f in facts for text, sub, obj in f.evidence()]
    if template_sentences:
        templates = read_templates(dataset_file("lama_trex", "relations.jsonl", root=data_dir))
        for f in facts:
            template = templates.get(f.relation)
            if template and "[X]" in template and "[Y]" in template:
                text = template.replace("[X]", f.sub_label).replace("[Y]", f.obj_label)
                sents.append(_linked_sentence(text, f.sub_label, f.obj_label, f, link))
    sents = list({e.text: e for e in sents}.values())  # one copy of repeated evidence sentences
    val = sents[::20]
    train = [s for i, s in enumerate(sents) if i % 20]
    if read_held:
        held = {}  # each held-out sentence once, marked as the first fact it states
        for f in split.kg_only + split.excluded:
            for text, sub, obj in f.evidence():
                held.setdefault(text, (sub, obj, f))
        train += [_linked_sentence(text, *held[text], link) for text in split.held_sentences()]
    return {"train": train, "val": val, "test": val}, []


DATASETS: dict[str, tuple[str | None, Callable]] = {
    # name: (task, loader); ``None``: the task is the dataset's ``task`` option
    "hf": (None, load_hf),
    "redocred": ("mlm", load_redocred_mlm),
    "text": ("mlm", load_text),
    "redocred_rc": ("rel_cls", load_redocred_rc),
    "fewrel": ("rel_cls", load_fewrel),
    "sst2": ("seq_cls", load_sst2),
    "redocred_ner": ("token_cls", load_redocred_ner),
    "redocred_docre": ("docre", load_redocred_docre),
    "lama_mlm": ("mlm", load_lama_mlm),
}


def dataset_task(name: str, options: dict | None = None) -> str:
    """The task of dataset ``name`` (for ``hf``: its ``task`` option, ``seq_cls`` by default)."""
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    return DATASETS[name][0] or (options or {}).get("task", "seq_cls")


def register_dataset(name: str, task: str, loader: Callable) -> None:
    """Make ``loader`` available as ``dataset: NAME`` (from your own code, before the command line
    runs, as :func:`~kgllm.tasks.register_task` does for tasks). ``loader(data_dir=..., **options)``
    returns ``(splits, label_names)``: ``splits`` maps ``train``/``val``/``test`` to lists of
    :class:`TextExample`; its other parameters, typed, are the dataset's options
    (``--data.dataset_args``). ``task`` is a task name of :data:`kgllm.tasks.TASKS`."""
    from kgllm.tasks import TASKS

    if name in DATASETS:
        raise ValueError(f"dataset {name!r} is already registered")
    if task not in TASKS:
        raise ValueError(f"dataset {name!r}: task {task!r} is not registered; choose one of {sorted(TASKS)} "
                         "(or register_task first)")
    DATASETS[name] = (task, loader)


def dataset_options(name: str) -> str:
    """``name: type = default`` for each option of dataset ``name`` (its loader's typed signature)."""
    params = [p for p in inspect.signature(DATASETS[name][1]).parameters.values() if p.name != "data_dir"]
    return ", ".join(f"{p.name}: {getattr(p.annotation, '__name__', p.annotation)} = {p.default!r}"
                     for p in params) or "none"


def check_options(name: str, options: dict) -> dict:
    """``options`` checked against the loader's typed signature by jsonargparse: an unknown or
    misspelt key, or a value of the wrong type, is a :class:`ConfigError` naming the valid options."""
    from jsonargparse import ArgumentParser

    known = [p for p in inspect.signature(DATASETS[name][1]).parameters if p != "data_dir"]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(f"dataset {name!r} has no option {', '.join(map(repr, unknown))}; "
                          f"its options: {dataset_options(name)}")
    parser = ArgumentParser(exit_on_error=False)
    parser.add_function_arguments(DATASETS[name][1], skip={"data_dir"}, as_group=False)
    try:
        parsed = parser.parse_object(dict(options)).as_dict()
    except Exception as exc:  # noqa: BLE001 - jsonargparse's ArgumentError, as one line
        text = " ".join(str(exc).split())
        raise ConfigError(f"dataset {name!r}: {text[:300]}; its options: {dataset_options(name)}") from None
    return {k: parsed[k] for k in options}


def load_dataset(name: str, data_dir=None, max_train: int | None = None, max_eval: int | None = None,
                 **kwargs) -> tuple[dict[str, list[TextExample]], list[str], str]:
    """Return ``(splits, label_names, task)`` for a registered dataset."""
    task = dataset_task(name, kwargs)
    loader = DATASETS[name][1]
    splits, labels = loader(data_dir=data_dir, **check_options(name, kwargs))
    return _cap(splits, max_train, max_eval), labels, task
