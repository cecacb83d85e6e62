"""Corpus readers: plain text, JSONL with a text field, and Re-DocRED JSON.

Every reader yields :class:`Document` objects in a stable order and raises a
:class:`~kgllm.util.errors.CorpusError` naming the file when it is empty, not UTF-8,
or malformed.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from kgllm.util.errors import CorpusError

FORMATS = ("auto", "text", "jsonl", "redocred", "hf")


@dataclass
class Document:
    """One corpus document.

    Args:
        doc_id: stable identifier (file name, JSONL ``id`` field, or Re-DocRED title/index).
        text: the document text; character offsets of mentions refer to it.
        meta: format-specific extras (e.g. Re-DocRED gold annotations).
    """

    doc_id: str
    text: str
    meta: dict = field(default_factory=dict)


def decode(raw: bytes, where: str) -> str:
    """Strict UTF-8 decoding; binary content (NUL bytes) and bad bytes raise :class:`CorpusError`."""
    nul = raw.find(b"\0")
    if nul >= 0:
        raise CorpusError(f"{where}: binary content (NUL byte at offset {nul}), not text")
    try:
        return raw.decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{where}: not valid UTF-8 (byte {exc.start}: {raw[exc.start:exc.start + 1]!r})") from exc


def read_text_file(path: Path) -> str:
    """Read ``path`` as strict UTF-8; empty, binary or undecodable files raise :class:`CorpusError`."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read file ({exc.strerror})") from exc
    text = decode(raw, str(path))
    if not text.strip():
        raise CorpusError(f"{path}: file is empty")
    return text


def _fail(errors: list | None, exc: CorpusError) -> None:
    """Raise ``exc``, or record it when bad documents are being skipped (``errors`` is a list)."""
    if errors is None:
        raise exc
    errors.append(exc)


def detect_format(path: Path) -> str:
    """The corpus format of ``path`` from its name (``text`` for folders and .txt, ``jsonl``, ``redocred``, ``hf``)."""
    if path.is_dir() or path.suffix in {".txt", ".text"}:
        return "text"
    if path.suffix in {".jsonl", ".ndjson"}:
        return "jsonl"
    if path.suffix == ".json":
        return "redocred"
    raise CorpusError(f"{path}: cannot tell the corpus format from the name; pass --format text|jsonl|redocred")


def iter_text(path: Path, errors: list | None = None) -> Iterator[Document]:
    """A ``.txt`` file is one document; a folder yields each ``*.txt`` file in sorted order."""
    files = sorted(path.rglob("*.txt")) if path.is_dir() else [path]
    if not files:
        raise CorpusError(f"{path}: folder holds no .txt files")
    for file in files:
        doc_id = str(file.relative_to(path)) if path.is_dir() else file.name
        try:
            yield Document(doc_id, read_text_file(file), {"source": str(file)})
        except CorpusError as exc:
            _fail(errors, exc)


def _loads(line: str, where: str):
    """``json.loads`` whose every failure is a :class:`CorpusError`: syntax, nesting deeper than
    Python's recursion limit, and lone surrogates (``"\\ud800"``), which no UTF-8 output can hold."""
    try:
        obj = json.loads(line)
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except json.JSONDecodeError as exc:
        raise CorpusError(f"{where}: malformed JSON ({exc.msg} at column {exc.colno})") from exc
    except RecursionError:
        raise CorpusError(f"{where}: JSON nested too deeply") from None
    except UnicodeEncodeError as exc:
        raise CorpusError(f"{where}: text holds a lone surrogate ({exc.object[exc.start:exc.end]!r}), "
                          "which is not Unicode text") from None
    return obj


def iter_jsonl(path: Path, text_field: str = "text", id_field: str = "id",
               errors: list | None = None) -> Iterator[Document]:
    """One JSON object per line with a ``text_field``; ``id_field`` is optional (line number otherwise).

    The file is streamed line by line, so its size is not limited by memory.
    """
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read file ({exc.strerror})") from exc
    with fh:
        for lineno, raw in enumerate(fh, 1):
            where = f"{path}:{lineno}"
            try:
                line = decode(raw, where)
                if not line.strip():
                    continue
                obj = _loads(line, where)
                if not isinstance(obj, dict) or not isinstance(obj.get(text_field), str):
                    raise CorpusError(f"{where}: expected an object with a string field '{text_field}'")
                if not obj[text_field].strip():
                    raise CorpusError(f"{where}: field '{text_field}' is empty")
            except CorpusError as exc:
                _fail(errors, exc)
                continue
            doc_id = str(obj.get(id_field, f"{path.stem}:{lineno}"))
            meta = {k: v for k, v in obj.items() if k != text_field}
            yield Document(doc_id, obj[text_field], {**meta, "source": where})


def redocred_text(sents: list[list[str]]) -> tuple[str, list[list[tuple[int, int]]]]:
    """Join Re-DocRED tokens with single spaces; return the text and each token's (start, end)."""
    parts: list[str] = []
    offsets: list[list[tuple[int, int]]] = []
    pos = 0
    for sent in sents:
        spans = []
        for tok in sent:
            if parts:
                parts.append(" ")
                pos += 1
            spans.append((pos, pos + len(tok)))
            parts.append(tok)
            pos += len(tok)
        offsets.append(spans)
    return "".join(parts), offsets


def redocred_problem(doc: dict, sents: list) -> str | None:
    """What is wrong with a Re-DocRED document's annotations (``None`` if nothing): every mention
    needs a ``sent_id`` of an existing sentence and a ``pos`` token span inside it, every label
    ``h``/``t`` indices of existing entities and a string relation ``r``."""
    vertex_set, labels = doc.get("vertexSet", []), doc.get("labels", [])
    if not isinstance(vertex_set, list):
        return f"'vertexSet' must be a list of entities, got {type(vertex_set).__name__}"
    for e, entity in enumerate(vertex_set):
        if not isinstance(entity, list):
            return f"vertexSet[{e}] must be a list of mentions"
        for m in entity:
            if not isinstance(m, dict):
                return f"vertexSet[{e}] holds a {type(m).__name__}, not a mention object"
            sent, pos = m.get("sent_id"), m.get("pos")
            if not isinstance(sent, int) or isinstance(sent, bool) or not 0 <= sent < len(sents):
                return f"vertexSet[{e}]: sent_id {sent!r} is not a sentence index (0..{len(sents) - 1})"
            if not (isinstance(pos, list) and len(pos) == 2 and all(isinstance(x, int) for x in pos)
                    and 0 <= pos[0] < pos[1] <= len(sents[sent])):
                return f"vertexSet[{e}]: pos {pos!r} is not a token span of sentence {sent}"
            if not isinstance(m.get("name", ""), str):
                return f"vertexSet[{e}]: mention name must be a string"
    if not isinstance(labels, list):
        return f"'labels' must be a list, got {type(labels).__name__}"
    for j, lab in enumerate(labels):
        if not isinstance(lab, dict):
            return f"labels[{j}] must be an object"
        for end in ("h", "t"):
            v = lab.get(end)
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < len(vertex_set):
                return f"labels[{j}].{end} = {v!r} is not an entity index (0..{len(vertex_set) - 1})"
        if not isinstance(lab.get("r"), str):
            return f"labels[{j}].r must be a relation id string"
    return None


def iter_redocred(path: Path, errors: list | None = None) -> Iterator[Document]:
    """Re-DocRED / DocRED JSON: a list of ``{title, sents, vertexSet, labels}`` documents."""
    data = _loads(read_text_file(path), str(path))
    if not isinstance(data, list):
        raise CorpusError(f"{path}: expected a JSON list of Re-DocRED documents")
    for i, doc in enumerate(data):
        sents = doc.get("sents") if isinstance(doc, dict) else None
        if not isinstance(sents, list) or not all(isinstance(s, list) and all(isinstance(t, str) for t in s)
                                                  for s in sents):
            _fail(errors, CorpusError(f"{path}: document {i} has no 'sents' list of token lists "
                                      "(not Re-DocRED format)"))
            continue
        problem = redocred_problem(doc, sents)
        if problem:
            _fail(errors, CorpusError(f"{path}: document {i}: {problem}"))
            continue
        text, offsets = redocred_text(sents)
        meta = {"title": doc.get("title", ""), "token_offsets": offsets,
                "vertexSet": doc.get("vertexSet", []), "labels": doc.get("labels", [])}
        yield Document(f"{i}:{doc.get('title', '')}", text, meta)


def iter_hf(source: str, text_field: str = "text", hf: dict | None = None) -> Iterator[Document]:
    """The texts of one split of a Hugging Face ``datasets`` source, exactly the rows ``dataset: hf``
    trains on (``hf``: ``split`` -- ``train``, ``val``, ``test`` or a split name of the source --,
    ``split_fraction``, ``split_seed``, ``splits``, ``config_name``; see :func:`kgllm.kg.extraction.hf_sources.split_texts`)."""
    from kgllm.kg.extraction.hf_sources import split_texts

    opts = dict(hf or {})
    split = opts.pop("split", "train")
    texts, where = split_texts(str(source), split, text_field, **opts)
    if not texts:
        raise CorpusError(f"{source} [{where}]: the split holds no rows")
    for i, text in enumerate(texts):
        yield Document(f"{split}:{i}", text, {"source": f"{source} [{where}] row {i}"})


def read_corpus(path: str | Path, fmt: str = "auto", limit: int | None = None,
                text_field: str = "text", errors: list | None = None, hf: dict | None = None) -> Iterator[Document]:
    """Stream the documents of ``path`` (at most ``limit``).

    Bad documents raise :class:`CorpusError`; pass a list as ``errors`` to skip them
    instead (each skipped document's error is appended). ``fmt="hf"`` reads a Hugging Face
    ``datasets`` source (``hf``: which split, see :func:`iter_hf`).
    """
    if fmt == "hf":
        yield from itertools.islice(iter_hf(str(path), text_field, hf), limit)
        return
    path = Path(path)
    if not path.exists():
        raise CorpusError(f"{path}: corpus path does not exist")
    if fmt not in FORMATS:
        raise CorpusError(f"{path}: unknown corpus format {fmt!r}; choose one of {FORMATS}")
    if fmt == "auto":
        fmt = detect_format(path)
    readers = {"text": iter_text, "redocred": iter_redocred,
               "jsonl": lambda p, errors: iter_jsonl(p, text_field=text_field, errors=errors)}
    count = 0
    for doc in readers[fmt](path, errors=errors):
        if limit is not None and count >= limit:
            return
        count += 1
        yield doc
    if count == 0:
        raise CorpusError(f"{path}: corpus holds no {'usable ' if errors else ''}documents")


def corpus_hash(docs: Iterable[Document]) -> str:
    """sha256 over document ids and texts, in order."""
    h = hashlib.sha256()
    for doc in docs:
        h.update(doc.doc_id.encode("utf-8") + b"\0" + doc.text.encode("utf-8") + b"\0")
    return h.hexdigest()
