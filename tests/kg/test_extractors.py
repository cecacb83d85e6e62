"""The extractor registry: names, combinations, the contract's output shape, lazy imports."""

import subprocess
import sys

import pytest

from kgllm.kg.extraction.config import ExtractConfig
from kgllm.util.errors import ConfigError
from kgllm.kg.extraction.extract import COOCCURRENCE, extract_doc
from kgllm.kg.extraction.extractors import EXTRACTORS, Extractor, extractor_version, load_extractors, register_extractor

TEXT = "Barack Obama was born in Honolulu. Angela Merkel met Obama in Berlin."


def test_names_and_combinations():
    assert [e.name for e in load_extractors(ExtractConfig(extractor="dependency+cooccurrence"))] == [
        "dependency", "cooccurrence"]
    assert ExtractConfig(cooccurrence=True).extractor == "dependency+cooccurrence"
    assert extractor_version(ExtractConfig()) == "kgllm-dep-path/1"  # what older KGs recorded
    for bad in ("magic", "dependency+magic", "dependency+dependency", ""):
        with pytest.raises(ConfigError):
            ExtractConfig(extractor=bad)


def test_each_extractor_keeps_the_contract(nlp):
    doc = nlp(TEXT)
    by_name = {}
    for name in (n for n in EXTRACTORS if n != "learned"):  # learned needs a model: tests/lit/test_docre.py
        ex = extract_doc(doc, "d", ExtractConfig(extractor=name))
        n_ent = len(ex.entities)
        for h, rel, t, sent, start, end, conf in ex.triples:
            assert 0 <= h < n_ent and 0 <= t < n_ent and h != t and isinstance(rel, str)
            assert 0 < conf <= 1 and 0 <= start < end <= len(TEXT) and sent in (0, 1)
        by_name[name] = ex
    assert {r for _, r, *_ in by_name["cooccurrence"].triples} == {COOCCURRENCE}
    assert COOCCURRENCE not in {r for _, r, *_ in by_name["dependency"].triples}
    assert by_name["dependency"].mentions == by_name["cooccurrence"].mentions  # mentions are shared
    both = extract_doc(doc, "d", ExtractConfig(extractor="dependency+cooccurrence"))
    assert both.triples == by_name["dependency"].triples + by_name["cooccurrence"].triples


def test_a_registered_extractor_is_used_by_name(nlp, tmp_path, monkeypatch):
    import types

    class Everything(Extractor):
        name, version = "everything", "test/1"

        def extract(self, mdoc):
            return [[mdoc.owner[i], "related", mdoc.owner[j], 0, 0, 1, 1.0]
                    for i in mdoc.order for j in mdoc.order if mdoc.owner[i] < mdoc.owner[j]]

    module = types.ModuleType("kgllm_test_everything")
    module.Everything = Everything
    monkeypatch.setitem(sys.modules, "kgllm_test_everything", module)
    monkeypatch.setitem(EXTRACTORS, "everything", "kgllm_test_everything:Everything")
    ex = extract_doc(nlp(TEXT), "d", ExtractConfig(extractor="everything"))
    assert ex.triples and {r for _, r, *_ in ex.triples} == {"related"}
    with pytest.raises(ValueError, match="already registered"):
        register_extractor("dependency", "x:y")


def test_the_kg_builder_does_not_import_torch():
    code = ("import sys, kgllm.kg.extraction.build, kgllm.cli.kg, kgllm.kg.extraction.extractors.dependency, "
            "kgllm.kg.extraction.extractors.cooccurrence; assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
