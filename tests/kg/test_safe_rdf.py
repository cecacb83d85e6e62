import pytest

from kgllm.util.errors import KGFormatError
from kgllm.kg.sources.imports import import_rdf


def test_xxe_is_refused_and_secret_not_read(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    doc = tmp_path / "evil.rdf"
    doc.write_text(f'''<?xml version="1.0"?>
<!DOCTYPE rdf:RDF [<!ENTITY xxe SYSTEM "file://{secret}">]>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:rdfs="http://www.w3.org/2000/01/rdf-schema#">
  <rdf:Description rdf:about="http://example.org/a"><rdfs:label>&xxe;</rdfs:label></rdf:Description>
</rdf:RDF>''')
    with pytest.raises(KGFormatError) as err:
        import_rdf(doc)
    assert "evil.rdf" in str(err.value) and "entities" in str(err.value)
    assert "TOP-SECRET-VALUE" not in str(err.value)


def test_plain_rdfxml_is_fine(tmp_path):
    doc = tmp_path / "ok.rdf"
    doc.write_text('''<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:ex="http://example.org/">
  <rdf:Description rdf:about="http://example.org/a"><ex:knows rdf:resource="http://example.org/b"/></rdf:Description>
</rdf:RDF>''')
    assert len(import_rdf(doc).edges) == 1


@pytest.mark.parametrize("context", ['"http://example.org/context.jsonld"', '["https://schema.org/", {"x": "y"}]',
                                     '{"@import": "http://example.org/c.jsonld"}'])
def test_remote_jsonld_context_is_not_fetched(tmp_path, context):
    doc = tmp_path / "remote.jsonld"
    doc.write_text('{"@context": %s, "@id": "http://example.org/a", "name": "A"}' % context)
    with pytest.raises(KGFormatError, match=r"remote.jsonld: JSON-LD @context refers to"):
        import_rdf(doc)


def test_inline_jsonld_context_is_fine(tmp_path):
    doc = tmp_path / "inline.jsonld"
    doc.write_text('{"@context": {"knows": {"@id": "http://example.org/knows", "@type": "@id"}}, '
                   '"@id": "http://example.org/a", "knows": "http://example.org/b"}')
    assert len(import_rdf(doc).edges) == 1


@pytest.mark.parametrize("name,content,problem", [
    ("empty.ttl", b"", "empty"),
    ("bin.ttl", b"\x00\x01\x02binary", "binary"),
    ("latin.ttl", "<a> <b> \"caf\xe9\" .".encode("latin-1"), "UTF-8"),
    ("broken.ttl", b"@prefix ex: <http://x/> .\nex:a ex:b", "malformed RDF"),
    ("broken.rdf", b"<rdf:RDF><unclosed>", "malformed XML"),
    ("broken.jsonld", b'{"@id": ', "malformed JSON"),
])
def test_bad_rdf_files(tmp_path, name, content, problem):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(KGFormatError) as err:
        import_rdf(path)
    assert name in str(err.value) and problem in str(err.value)
