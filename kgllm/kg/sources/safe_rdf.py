"""Parse RDF files without letting them reach outside: no XML entities, no remote JSON-LD contexts.

* RDF/XML is screened with defusedxml first: any entity declaration (the way an XXE
  attack names a local file such as ``/etc/passwd``) or external reference is refused
  before rdflib sees the file.
* JSON-LD whose ``@context`` (or ``@import``) is a reference rather than an inline
  object is refused, because rdflib would fetch it over the network or from disk.
* Turtle, N-Triples, N-Quads and TriG are parsed by pyoxigraph (Rust, linear time; rdflib's
  N-Triples parser is quadratic in literal length: a 4 MB literal took 37 s), named graphs merged.
* Empty, binary and non-UTF-8 files, documents nested too deeply, and syntax errors, raise
  :class:`~kgllm.util.errors.KGFormatError` naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kgllm.util.errors import KGFormatError

if TYPE_CHECKING:  # pragma: no cover
    import rdflib

EXTENSIONS = {".ttl": "turtle", ".turtle": "turtle", ".nt": "nt", ".ntriples": "nt", ".n3": "n3",
              ".rdf": "xml", ".xml": "xml", ".owl": "xml", ".jsonld": "json-ld", ".json": "json-ld",
              ".trig": "trig", ".nq": "nquads"}


def guess_format(path: Path) -> str:
    """The RDF format of a file from its extension; an unknown one is a one-line error."""
    fmt = EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise KGFormatError(f"{path}: cannot tell the RDF format from the name; pass a format "
                            f"({', '.join(sorted(set(EXTENSIONS.values())))})")
    return fmt


def _screen_xml(path: Path, data: bytes) -> None:
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    try:
        fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise KGFormatError(f"{path}: RDF/XML declares entities or external references ({exc}); refused, "
                            "so that no local file or URL named in the document is read") from exc
    except Exception as exc:  # ParseError and friends
        raise KGFormatError(f"{path}: malformed XML ({exc})") from exc


def _references(node: Any) -> list[str]:
    """Context references (strings) anywhere in a JSON-LD document."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("@context", "@import"):
                items = value if isinstance(value, list) else [value]
                found += [v for v in items if isinstance(v, str)]
                found += [r for v in items if isinstance(v, (dict, list)) for r in _references(v)]
            else:
                found += _references(value)
    elif isinstance(node, list):
        for value in node:
            found += _references(value)
    return found


def _screen_jsonld(path: Path, text: str) -> None:
    try:
        doc = json.loads(text)
        refs = _references(doc)
    except json.JSONDecodeError as exc:
        raise KGFormatError(f"{path}: malformed JSON ({exc.msg} at line {exc.lineno})") from exc
    except RecursionError:
        raise KGFormatError(f"{path}: JSON nested too deeply") from None
    if refs:
        raise KGFormatError(f"{path}: JSON-LD @context refers to {refs[0]!r}; remote or file contexts are "
                            "not fetched. Inline the context in the document.")


def parse_rdf_safely(path: str | Path, fmt: str | None = None) -> "rdflib.Graph":
    """An RDF file parsed with pyoxigraph: no external entities, no remote contexts, strict UTF-8."""
    from rdflib import Graph

    from kgllm.kg.extraction.corpus import decode
    from kgllm.kg.graph.rdf import add_parsed

    path = Path(path)
    fmt = fmt or guess_format(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KGFormatError(f"{path}: cannot read file ({exc.strerror})") from exc
    if not data.strip():
        raise KGFormatError(f"{path}: file is empty")
    try:
        text = decode(data, str(path))
    except Exception as exc:
        raise KGFormatError(str(exc)) from exc
    if fmt in ("xml", "application/rdf+xml"):
        _screen_xml(path, data)
    elif fmt == "json-ld":
        _screen_jsonld(path, text)
    g = Graph()
    try:
        if fmt in OXIGRAPH_FORMATS:
            add_parsed(g, data, OXIGRAPH_FORMATS[fmt], path.resolve().as_uri())
        else:
            g.parse(data=text, format=fmt, publicID=path.resolve().as_uri())
    except RecursionError:
        raise KGFormatError(f"{path}: RDF nested too deeply") from None
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise KGFormatError(f"{path}: malformed RDF ({type(exc).__name__}: {first[:200]})") from exc
    return g


#: rdflib format name -> pyoxigraph RdfFormat attribute
OXIGRAPH_FORMATS = {"turtle": "TURTLE", "nt": "N_TRIPLES", "nquads": "N_QUADS", "trig": "TRIG"}
