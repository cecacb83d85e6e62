"""The sharded merge of ``build-kg --engine ray``: the KG assembled from its shards' records by Ray
tasks, with every reducer's memory bounded by its partition, and the files byte-identical to the
local engine's (:class:`kgllm.kg.extraction.assemble.Assembler` then
:meth:`~kgllm.kg.graph.store.KnowledgeGraph.write_files`).

Every item of a record gets a *position* ``(shard, record, item)``; the local engine assigns ids,
relation ids, and the order of every file by first position, so the merge is a sort on it:

1. **map** (one task per shard file): each entity occurrence, edge occurrence and mention goes to
   the reducer of its entity key (``crc32(key) % reducers``; the edge: its head's key); relation
   names with their first position and count, and the shard's ``documents.tsv`` rows, come back
   whole (a build has few relations, and a shard's documents are the shard's own).
2. **reduce** (one task per partition): the partition's entities (label and type of the first
   occurrence, counts and aliases summed) and edges (count, highest confidence, provenance in
   position order) are assembled; entities go to *buckets*, ranges of shards by first position.
3. **ids: a distributed sort on first appearance.** Each reducer sorts its entities of each
   bucket and reports the buckets' sizes; the driver adds them up into offsets (``reducers x
   buckets`` numbers), so entity ``k`` of bucket ``b`` gets id ``offset[b] + k``. Each bucket
   merges the reducers' sorted lists, writes its ``entities.tsv`` and RDF part and sends
   ``key -> id`` back to the key partitions. In an update, the previous version's entities keep
   their ids (buckets by id range; untouched ones are retired) and new ones come after them.
4. **joins**: each partition resolves its edges' heads and its mentions, sends the edges to their
   tails' partitions, which resolve the tails; edges and mentions are sorted by position per
   bucket, and the statement numbers of the RDF are offset by the earlier buckets' counts.
5. The driver writes the files by appending the parts in bucket order (one part in memory at a
   time): it never holds the KG (only the descriptions of imported entities, which the RDF file
   orders by first appearance, are gathered there).

A reducer killed mid-task is retried by Ray (``max_retries``) from its inputs in the object store;
resuming a killed *build* works as before, from the finished shards (the merge runs again).
``update-kg --engine ray`` merges the same way (every update's records, facts records of imports
included, the previous version's ids kept, retired entities, retracted facts); there the driver
also holds the previous version, as the local engine does. Hand-written: Ray Data's sort and
groupby would give the order but not the exact per-key folds (first label, alias unions,
provenance order) that byte identity needs, so the stages are plain Ray tasks with explicit
partitions.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import os
import zlib
from pathlib import Path
from typing import Iterable

from kgllm.kg.extraction.assemble import FACTS, iter_records
from kgllm.kg.extraction.extractors import MentionRow, TripleRow
from kgllm.kg.graph.folder import DOCUMENTS, RETIRED, TSV_FORMAT
from kgllm.kg.graph.normalize import entity_key
from kgllm.kg.graph.store import (DESCRIPTIONS_HEADER, DOCUMENTS_HEADER, ENTITIES_HEADER, MENTIONS_HEADER,
                                  PROVENANCE_HEADER, RELATIONS_HEADER, RETIRED_HEADER, TRIPLES_HEADER, Edge, Entity,
                                  description_line, document_line, entity_line, mention_line, provenance_lines,
                                  relation_line, triple_line)
from kgllm.util.errors import ConfigError

#: test hook: a marker file path; the first merge reducer to find it missing creates it and kills
#: itself (SIGKILL), so tests can check that Ray's retry gives the same KG
KILL_REDUCER_ONCE_ENV = "KGLLM_RAY_KILL_REDUCER_ONCE"


def partition_of(key: str, n: int) -> int:
    """The reducer of an entity key (crc32: the same in every process, unlike ``hash``)."""
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) % n


def bucket_of(pos: tuple, n_files: int, n_buckets: int) -> int:
    """The output bucket of a position: buckets are contiguous ranges of shards."""
    return pos[0] * n_buckets // n_files


def _peak() -> int:
    """Peak traced Python memory of this task so far, in bytes (0 if tracing is off)."""
    import tracemalloc

    return tracemalloc.get_traced_memory()[1] if tracemalloc.is_tracing() else 0


def _start_trace(trace: bool) -> None:
    import tracemalloc

    if trace:
        tracemalloc.start()


def _stop_trace(trace: bool) -> int:
    import tracemalloc

    peak = _peak()
    if trace:
        tracemalloc.stop()
    return peak


def _rdf_body(triples: Iterable, fmt: str, base: str) -> bytes:
    """``triples`` serialized as the KG file writes them, without the prefix lines (a part)."""
    import pyoxigraph as ox

    from kgllm.kg.graph.rdf import RDF_FORMATS, serialize_prefixes

    pre = serialize_prefixes(base)
    data = ox.serialize(triples, format=getattr(ox.RdfFormat, RDF_FORMATS[fmt][1]), prefixes=pre)
    if fmt == "turtle" and data:
        data = data.split(b"\n", len(pre))[len(pre)]
    return data


# -- stage 1 ------------------------------------------------------------
def map_shard(fi: int, path: str, source: str, update: int, n_parts: int, fmt: str, base: str,
              live: dict | None = None, retracted: frozenset = frozenset()):
    """One record file's items, by partition (records whose document's live update is not
    ``update`` are skipped when ``live`` is given; retracted edges are dropped); returns
    ``(relations, documents.tsv rows, documents' RDF, part 0, ..., part n-1)`` with
    ``relations``: name -> [first position, count]. Positions are ``(file, record, item, k)``."""
    from kgllm.kg.graph.rdf import RdfTerms

    parts = [{"ent": [], "edge": [], "ment": [], "desc": []} for _ in range(n_parts)]
    relations: dict[str, list] = {}
    docs, doc_rows, terms = [], [], RdfTerms(base)

    def edge(head: str, rel: str, tail: str, pos: tuple, prov, conf: float, count: int) -> None:
        if retracted and (head, rel, tail) in retracted:
            return
        parts[partition_of(head, n_parts)]["edge"].append((head, rel, tail, pos, prov, conf, count))
        r = relations.setdefault(rel, [pos, 0])
        r[1] += count

    for ri, record in enumerate(iter_records([Path(path)])):
        doc = record["doc_id"]
        if live is not None and (doc not in live or live[doc][1] != update):
            continue
        if record.get("kind") == FACTS:
            keys = [e[0] for e in record["entities"]]
            for li, (key, label, etype, aliases, count, sources) in enumerate(record["entities"]):
                parts[partition_of(key, n_parts)]["ent"].append((key, (fi, ri, li, 0), label, etype, aliases, count,
                                                                 sources))
            for di, (i, text) in enumerate(record.get("descriptions", {}).items()):
                parts[partition_of(keys[int(i)], n_parts)]["desc"].append((keys[int(i)], (fi, ri, di, 0), text))
            for ei, (h, rel, t, count, conf, prov) in enumerate(record["edges"]):
                if not prov:
                    edge(keys[h], rel, keys[t], (fi, ri, ei, 0), None, conf, count)
                for k, row in enumerate(prov):  # one occurrence per provenance row, the rest counted on the first
                    edge(keys[h], rel, keys[t], (fi, ri, ei, k), tuple(row), conf,
                         (count - len(prov) + 1) if k == 0 else 1)
        else:
            keys = [entity_key(label, etype) for label, etype, _ in record["entities"]]
            counts = [0] * len(keys)
            mentions = [MentionRow._make(m) for m in record["mentions"]]
            for mi, m in enumerate(mentions):
                counts[m.entity] += 1
                parts[partition_of(keys[m.entity], n_parts)]["ment"].append(
                    ((fi, ri, mi, 0), keys[m.entity], doc, m.sentence, m.start, m.end, m.label, m.text))
            for li, ((label, etype, aliases), n) in enumerate(zip(record["entities"], counts)):
                parts[partition_of(keys[li], n_parts)]["ent"].append((keys[li], (fi, ri, li, 0), label, etype, aliases,
                                                                      n, (source,)))
            for ti, t in enumerate(map(TripleRow._make, record["triples"])):
                edge(keys[t.head], t.relation, keys[t.tail], (fi, ri, ti, 0),
                     (doc, t.sentence, t.start, t.end, t.confidence), t.confidence, 1)
        sha = record.get("sha256", "")
        doc_rows.append(document_line(doc, sha, update))
        docs.append((doc, sha))
    rdf = _rdf_body((t for doc, sha in docs for t in terms.document_triples(doc, sha, update)), fmt, base)
    return (relations, "".join(doc_rows).encode(), rdf, *parts)


# -- stage 2 ------------------------------------------------------------
def reduce_partition(p: int, n_files: int, n_buckets: int, n_prior: int, trace: bool, prior: list, *parts):
    """Assemble partition ``p``'s entities (``prior``: the previous version's ``(key, id, label,
    type)`` of this partition, whose ids stay) and edges. Entities go to ``2 x n_buckets`` buckets:
    the previous version's by id range (sorted by id), new ones by first position (sorted by it).
    Returns ``(rest, peak bytes, new buckets' sizes, bucket 0, ...)``; ``rest`` holds the edges and
    mentions for the joins."""
    marker = os.environ.get(KILL_REDUCER_ONCE_ENV)
    if marker and not os.path.exists(marker):  # test hook: die once, mid-merge
        Path(marker).write_text(str(os.getpid()))
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
    _start_trace(trace)
    # key -> [first position or prior id, label, type, count, aliases, sources, touched, prior?, description]
    ents: dict[str, list] = {key: [i, label, etype, 0, set(), set(), False, True, None] for key, i, label, etype in prior}
    edges: dict[tuple, list] = {}
    mentions = []
    for part in parts:  # the maps' parts in file order, each in position order: first seen = first position
        for key, pos, label, etype, aliases, n, sources in part["ent"]:
            e = ents.get(key)
            if e is None:
                ents[key] = e = [pos, label, etype, 0, set(), set(), True, False, None]
            elif not e[6]:  # a previous version's entity: its first live appearance decides label and type
                e[1], e[2], e[6] = label, etype, True
            e[3] += n
            e[4].update(aliases)
            e[4].add(label)
            e[5].update(sources)
        for key, pos, text in part["desc"]:
            if ents[key][8] is None:
                ents[key][8] = (pos, text)
        for head, rel, tail, pos, prov, conf, count in part["edge"]:
            e = edges.get((head, rel, tail))
            if e is None:
                edges[(head, rel, tail)] = e = [pos, 0, 0.0, []]
            e[1] += count
            e[2] = max(e[2], conf)
            if prov is not None:
                e[3].append(prov)
        mentions.extend(part["ment"])
    buckets: list[list] = [[] for _ in range(2 * n_buckets)]
    for key, (first, label, etype, count, aliases, sources, touched, was, desc) in ents.items():
        if was and not touched:  # retired: kept with its old label, nothing else
            row = (first, key, label, etype, 0, set(), set(), True, None)
        else:
            row = (first, key, label, etype, count, aliases, sources, False, desc)
        b = first * n_buckets // max(n_prior, 1) if was else n_buckets + bucket_of(first, n_files, n_buckets)
        buckets[b].append(row)
    for rows in buckets:
        rows.sort(key=lambda row: row[0])
    rest = {"edges": [(k, *v) for k, v in edges.items()], "mentions": mentions}
    return (rest, _stop_trace(trace), [len(rows) for rows in buckets[n_buckets:]], *buckets)


# -- stage 3 ------------------------------------------------------------
def _merged(lists) -> list:
    """Sorted lists (by their rows' first field) merged into one."""
    return list(heapq.merge(*lists, key=lambda row: row[0]))


def write_entities(offset: int | None, n_parts: int, fmt: str, base: str, *lists):
    """A bucket's entities (the reducers' sorted lists, merged here; ids from ``offset``, or the
    rows' own ids when ``None``): its ``entities.tsv``, ``retired.tsv``, ``descriptions.tsv`` and
    RDF parts and keys (JSON lines, for the KG's identity); returns ``(tsv, rdf, keys, retired,
    descriptions, [(description position, id, text)], table for partition 0, ...)`` with
    ``key -> id`` tables."""
    from kgllm.kg.graph.rdf import RdfTerms

    rows = _merged(lists)
    terms = RdfTerms(base)
    tables: list[dict] = [{} for _ in range(n_parts)]
    lines, keys, entities, retired, desc_lines, descs = [], [], [], [], [], []
    for k, (first, key, label, etype, count, aliases, sources, gone, desc) in enumerate(rows):
        i = first if offset is None else offset + k
        e = Entity(key, label, etype, count, aliases, sources)
        lines.append(entity_line(i, e))
        keys.append(json.dumps(key) + "\n")
        entities.append((i, e, gone))
        tables[partition_of(key, n_parts)][key] = i
        if gone:
            retired.append(f"{i}\n")
        if desc is not None:
            desc_lines.append(description_line(i, desc[1]))
            descs.append((desc[0], i, desc[1]))
    rdf = _rdf_body((t for i, e, gone in entities for t in terms.entity_triples(i, e, gone)), fmt, base)
    return ("".join(lines).encode(), rdf, "".join(keys).encode(), "".join(retired).encode(),
            "".join(desc_lines).encode(), descs, *tables)


# -- stage 4 ------------------------------------------------------------
def resolve_heads(rest: dict, n_parts: int, n_files: int, n_buckets: int, *tables):
    """Partition ``p``'s edge heads and mention entities as ids; returns ``(edges for the tail
    partitions 0..n-1, mentions for buckets 0..m-1)``."""
    ids = {k: v for table in tables for k, v in table.items()}
    out_edges: list[list] = [[] for _ in range(n_parts)]
    for (head, rel, tail), pos, count, conf, prov in rest["edges"]:
        out_edges[partition_of(tail, n_parts)].append((tail, pos, ids[head], rel, count, conf, prov))
    out_mentions: list[list] = [[] for _ in range(n_buckets)]
    for pos, key, doc, sentence, start, end, label, text in rest["mentions"]:
        out_mentions[bucket_of(pos, n_files, n_buckets)].append((pos, doc, sentence, start, end, ids[key], label, text))
    for rows in out_mentions:
        rows.sort(key=lambda row: row[0])
    return (*out_edges, *out_mentions)


def resolve_tails(n_parts: int, n_files: int, n_buckets: int, *args):
    """The tails of the edges sent to one partition (``args``: ``n_parts`` edge lists, then that
    partition's id tables); returns ``(counts, edges for buckets 0..m-1)``, each bucket
    position-sorted, with ``counts`` its (edges, edge occurrences, provenance rows)."""
    lists, tables = args[:n_parts], args[n_parts:]
    ids = {k: v for table in tables for k, v in table.items()}
    out: list[list] = [[] for _ in range(n_buckets)]
    for rows in lists:
        for tail, pos, head, rel, count, conf, prov in rows:
            out[bucket_of(pos, n_files, n_buckets)].append((pos, head, rel, ids[tail], count, conf, prov))
    for rows in out:
        rows.sort(key=lambda row: row[0])
    counts = [(len(rows), sum(r[4] for r in rows), sum(len(r[6]) for r in rows)) for rows in out]
    return (counts, *out)


def write_edges(first_statement: int, relation_ids: dict, extractor: str, fmt: str, base: str, *lists):
    """A bucket's edges (the partitions' position-sorted lists, merged here): its ``triples.tsv``,
    ``provenance.tsv`` and RDF parts (statements numbered from ``first_statement``)."""
    from kgllm.kg.graph.rdf import RdfTerms

    rows = _merged(lists)
    terms = RdfTerms(base)
    lit = terms.Literal(extractor)
    trip, prov, starts, n = [], [], [], first_statement
    for _, h, rel, t, count, conf, provenance in rows:
        r = relation_ids[rel]
        trip.append(triple_line(h, r, t, Edge(count, conf)))
        prov.extend(provenance_lines(h, r, t, provenance))
        starts.append(n)
        n += len(provenance)
    rdf = _rdf_body((x for (_, h, rel, t, _, _, provenance), n0 in zip(rows, starts)
                     for x in terms.edge_triples(h, rel, t, provenance, n0, lit)), fmt, base)
    return "".join(trip).encode(), "".join(prov).encode(), rdf


def write_mentions(*lists):
    """A bucket's ``mentions.tsv`` part."""
    rows = heapq.merge(*lists, key=lambda row: row[0])
    return "".join(mention_line(doc, s, a, b, i, label, text) for _, doc, s, a, b, i, label, text in rows).encode()


# -- the driver ---------------------------------------------------------
def _rdf_header(fmt: str, base: str) -> bytes:
    """The prefix lines the RDF file starts with (none for N-Triples)."""
    if fmt != "turtle":
        return b""
    import pyoxigraph as ox

    from kgllm.kg.graph.rdf import serialize_prefixes

    pre = serialize_prefixes(base)
    probe = ox.serialize([ox.Triple(ox.NamedNode(base + "x"), ox.NamedNode(base + "y"), ox.Literal("z"))],
                         format=ox.RdfFormat.TURTLE, prefixes=pre)
    return b"".join(line + b"\n" for line in probe.split(b"\n")[:len(pre)])


def sharded_merge(batches: list, folder: Path, meta: dict, rdf_format: str = "turtle", store: str = "memory",
                  reducers: int = 2, prior=None, live: dict | None = None, retracted: Iterable = (),
                  mentions_prefix: Path | None = None, max_retries: int = 3, trace_memory: bool = False) -> dict:
    """Write the KG of ``batches`` (:class:`~kgllm.kg.extraction.assemble.Batch`: record files, the
    source name their entities get, their update number) into ``folder`` with ``reducers``
    partitions on the running Ray instance (the caller starts it), exactly as
    :class:`~kgllm.kg.extraction.assemble.Assembler` (with ``prior``, ``live``, ``retracted`` and
    the ``mentions_prefix`` it copies first) and ``write_files`` would, except ``meta.json``
    (:func:`write_meta`). Returns ``{"counts", "identity"}``, and with ``trace_memory`` the reducers'
    peak traced Python memory (``reducer_peak_bytes``)."""
    import ray

    from kgllm.kg.graph.rdf import RDF_FORMATS, DEFAULT_BASE, RdfTerms, rdf_format as check_format

    fmt = check_format(rdf_format)
    if reducers < 1:
        raise ConfigError(f"reducers must be >= 1, got {reducers}")
    base = meta.get("base_iri", DEFAULT_BASE)
    files = [(str(path), batch.source, batch.update) for batch in batches for path in batch.files]
    n_files, R = max(len(files), 1), reducers
    B = R  # buckets of new entities (ranges of files) and of the previous version's (ranges of ids)
    n_prior = prior.num_entities if prior is not None else 0
    prior_parts: list[list] = [[] for _ in range(R)]
    for i, e in enumerate(prior.entities if prior is not None else ()):
        prior_parts[partition_of(e.key, R)].append((e.key, i, e.label, e.etype))
    prior_refs = [ray.put(part) for part in prior_parts]
    live_ref = ray.put(live) if live is not None else None
    retracted_ref = ray.put(frozenset(tuple(f) for f in retracted))

    def task(fn, returns: int):
        return ray.remote(num_cpus=1, num_returns=returns, max_retries=max_retries, retry_exceptions=False)(fn)

    maps = [task(map_shard, R + 3).remote(fi, path, source, update, R, fmt, base, live_ref, retracted_ref)
            for fi, (path, source, update) in enumerate(files)]
    reduced = [task(reduce_partition, 2 * B + 3).remote(p, n_files, B, n_prior, trace_memory, prior_refs[p],
                                                        *[m[3 + p] for m in maps]) for p in range(R)]
    # the distributed sort's only gather: each reducer's new-entity bucket sizes (R x B numbers)
    sizes = [sum(col) for col in zip(*ray.get([r[2] for r in reduced]))]
    offsets = [n_prior + sum(sizes[:b]) for b in range(B)]
    written = [task(write_entities, 6 + R).remote(None, R, fmt, base, *[r[3 + b] for r in reduced])
               for b in range(B) if n_prior]
    written += [task(write_entities, 6 + R).remote(offsets[b], R, fmt, base, *[r[3 + B + b] for r in reduced])
                for b in range(B)]
    heads = [task(resolve_heads, R + B).remote(reduced[p][0], R, n_files, B, *[w[6 + p] for w in written])
             for p in range(R)]
    tails = [task(resolve_tails, B + 1).remote(R, n_files, B, *[h[q] for h in heads], *[w[6 + q] for w in written])
             for q in range(R)]
    edge_counts = [tuple(map(sum, zip(*col))) for col in zip(*ray.get([t[0] for t in tails]))]
    rel_first: dict[str, list] = {}  # relation -> [first position, count]; a KG has few relations
    for rels in ray.get([m[0] for m in maps]):
        for name, (pos, n) in rels.items():
            cur = rel_first.setdefault(name, [tuple(pos), 0])
            cur[0] = min(cur[0], tuple(pos))
            cur[1] += n
    relations = list(prior.relations) if prior is not None else []  # the previous version's ids stay
    known = set(relations)
    relations += sorted((r for r in rel_first if r not in known), key=lambda name: rel_first[name][0])
    relation_ids = {name: i for i, name in enumerate(relations)}
    extractor = str(meta.get("extractor", {}).get("version", "unknown"))
    first_statement = [sum(c[2] for c in edge_counts[:b]) for b in range(B)]
    edge_parts = [task(write_edges, 3).remote(first_statement[b], relation_ids, extractor, fmt, base,
                                              *[t[1 + b] for t in tails]) for b in range(B)]
    mention_parts = [task(write_mentions, 1).remote(*[h[R + b] for h in heads]) for b in range(B)]

    def write(name: str, header: str, parts, keep_empty: bool = True, prefix: Path | None = None) -> bool:
        """Append the parts (one in memory at a time); drop the file if it has no rows and
        ``keep_empty`` is false."""
        wrote = False
        with open(folder / name, "wb") as fh:
            fh.write(header.encode())
            if prefix is not None:
                with open(prefix, "rb") as src:
                    next(src, None)
                    for line in src:
                        fh.write(line)
                        wrote = True
            for ref in parts:
                data = ref if isinstance(ref, bytes) else ray.get(ref)
                fh.write(data)
                wrote = wrote or bool(data)
        if not wrote and not keep_empty:
            os.unlink(folder / name)
        return wrote

    write("entities.tsv", ENTITIES_HEADER, [w[0] for w in written])
    descriptions = write("descriptions.tsv", DESCRIPTIONS_HEADER, [w[4] for w in written], keep_empty=False)
    write("mentions.tsv", MENTIONS_HEADER, mention_parts, prefix=mentions_prefix)
    n_retired = sum(len(ray.get(w[3]).splitlines()) for w in written)
    write(RETIRED, RETIRED_HEADER, [w[3] for w in written], keep_empty=False)
    write(DOCUMENTS, DOCUMENTS_HEADER, [m[1] for m in maps], keep_empty=False)
    write("relations.tsv", RELATIONS_HEADER,
          ["".join(relation_line(i, name, rel_first.get(name, [None, 0])[1]) for i, name in enumerate(relations)).encode()])
    write("triples.tsv", TRIPLES_HEADER, [e[0] for e in edge_parts])
    write("provenance.tsv", PROVENANCE_HEADER, [e[1] for e in edge_parts])
    identity = hashlib.sha256(b"entities\0")  # kg_identity, streamed over the buckets' keys
    for w in written:
        for line in ray.get(w[2]).splitlines():
            identity.update(json.loads(line).encode("utf-8", "surrogatepass") + b"\0")
    identity.update(b"relations\0")
    for name in relations:
        identity.update(name.encode("utf-8", "surrogatepass") + b"\0")
    terms = RdfTerms(base)
    # descriptions (imports only) in order of first appearance: gathered here
    descs = sorted(d for w in written for d in ray.get(w[5])) if descriptions else []
    desc_rdf = _rdf_body((t for _, i, text in descs for t in terms.description_triples(i, text)), fmt, base)
    rel_rdf = _rdf_body((t for name in relations for t in terms.relation_triples(name)), fmt, base)
    header, started = _rdf_header(fmt, base), False
    with open(folder / RDF_FORMATS[fmt][0], "wb") as fh:
        for chunk in [*(w[1] for w in written), desc_rdf, rel_rdf, *(m[2] for m in maps), *(e[2] for e in edge_parts)]:
            data = chunk if isinstance(chunk, bytes) else ray.get(chunk)
            if data and not started:
                fh.write(header)
                started = True
            fh.write(data)
    counts = {"entities": n_prior + sum(sizes), "relations": len(relations), "edges": sum(c[0] for c in edge_counts),
              "edge_occurrences": sum(c[1] for c in edge_counts)}
    if n_retired:
        counts["retired_entities"] = n_retired
    result = {"counts": counts, "identity": identity.hexdigest()[:32]}
    if trace_memory:
        result["reducer_peak_bytes"] = ray.get([r[1] for r in reduced])
    return result


def write_meta(folder: Path, meta: dict, merged: dict, rdf_format: str, store: str) -> None:
    """``meta.json`` of a KG written by :func:`sharded_merge` (``merged``: what it returned), as
    ``write_files`` writes it, and the on-disk Oxigraph store with ``store="oxigraph"``."""
    from kgllm.kg.graph.rdf import RDF_FORMATS, STORE_DIR, rdf_format as check_format

    fmt = check_format(rdf_format)
    meta["counts"] = merged["counts"]
    meta["identity"] = merged["identity"]
    meta["tsv_format"] = TSV_FORMAT
    meta["rdf_file"] = RDF_FORMATS[fmt][0]
    meta["rdf_store"] = store
    if store == "oxigraph":
        import pyoxigraph as ox

        db = ox.Store(str(folder / STORE_DIR))
        db.bulk_load(path=str(folder / RDF_FORMATS[fmt][0]), format=getattr(ox.RdfFormat, RDF_FORMATS[fmt][1]))
        db.flush()
        del db
    with open(folder / "meta.json", "w", encoding="utf-8") as fh:
        json.dump(meta, fh, indent=2, sort_keys=True, ensure_ascii=False)
        fh.write("\n")


def synthetic_records(folder: Path, n_shards: int, docs_per_shard: int, seed: int = 0, vocabulary: int = 2000,
                      relations: int = 12) -> list[Path]:
    """Write ``n_shards`` shard files of random extraction records (half the entities Pareto-distributed,
    so keys recur across shards, half uniform over ``vocabulary``; labels that differ only in case share a key; tabs and ``|`` in texts
    and aliases; a shard without records) for tests and the merge benchmark. Returns the files."""
    import random

    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    types = ["PER", "LOC", "ORG", "MISC"]
    files = []
    for k in range(n_shards):
        lines = []
        for d in range(docs_per_shard if k != n_shards // 2 else 0):
            n_ent = rng.randint(0, 8)
            ents = []
            for _ in range(n_ent):
                r = min(int(rng.paretovariate(1.1)), vocabulary) if rng.random() < 0.5 else rng.randrange(vocabulary)
                label = f"Entity {r}" if rng.random() < 0.8 else f"ENTITY {r}"
                ents.append([label, types[r % 4], [label] + ([f"E|{r}\t"] if rng.random() < 0.1 else [])])
            mentions = [[rng.randrange(n_ent), s, 0, 5, f"men\ttion {s}", "PERSON"]
                        for s in range(rng.randint(0, 6)) if n_ent]
            triples = [[rng.randrange(n_ent), f"rel_{min(int(rng.paretovariate(1.5)), relations)}",
                        rng.randrange(n_ent), rng.randint(0, 3), 0, 10, round(rng.random(), 3)]
                       for _ in range(rng.randint(0, 6)) if n_ent]
            lines.append(json.dumps({"doc_id": f"doc {k}-{d}", "entities": ents, "mentions": mentions,
                                     "triples": triples, "sha256": f"{k:04x}{d:04x}"}) + "\n")
        path = folder / f"shard-{k:05d}.jsonl"
        path.write_text("".join(lines), encoding="utf-8")
        files.append(path)
    return files
