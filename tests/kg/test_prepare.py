from kgllm.kg.extraction.build import build_kg
from kgllm.kg.extraction.corpus import Document
from kgllm.kg.extraction.prepare import PrepareConfig, PrepareReport, prepare, strip_markup

BASE = "Barack Obama was born in Honolulu and later served as the president of the United States for eight years."


def _run(texts, **cfg):
    report = PrepareReport()
    out = list(prepare([Document(str(i), t) for i, t in enumerate(texts)], PrepareConfig(**cfg), report))
    return out, report


def test_unicode_and_markup():
    out, rep = _run(["Ｐａｒｉｓ is nice", "<p>Paris &amp; <b>Berlin</b></p>\n\n\n<p>are   cities</p>", "plain"],
                    unicode=True, clean=True)
    assert out[0].text == "Paris is nice"
    assert out[1].text == "Paris & Berlin\n\nare cities"
    assert (rep.changed_unicode, rep.changed_clean, rep.documents_out) == (1, 1, 3)


def test_min_words_exact_and_near_duplicates():
    near = BASE.replace("eight", "8")
    texts = [BASE, "too short", BASE, near, "A completely different text about rivers, mountains and the sea, "
             "written for this test so that it shares nothing with the others."]
    out, rep = _run(texts, min_words=5, dedup="near", near_threshold=0.5)
    assert [d.doc_id for d in out] == ["0", "4"]
    assert (rep.removed_min_words, rep.removed_exact_duplicates, rep.removed_near_duplicates) == (1, 1, 1)
    assert rep.documents_in == 5 and "1 near duplicates" in rep.summary()
    out, rep = _run(texts, dedup="exact")
    assert len(out) == 4 and rep.removed_near_duplicates == 0


def test_strip_markup_keeps_plain_text():
    assert strip_markup("a  b\t c") == "a b c"


def test_build_reports_preparation(tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("\n".join(f'{{"text": "{t}"}}' for t in [BASE, BASE, "short"]) + "\n")
    kg = build_kg(corpus, tmp_path / "kg", prep=PrepareConfig(min_words=3, dedup="exact"), progress=False)
    report = kg.meta["preparation"]["report"]
    assert report["removed_exact_duplicates"] == 1 and report["removed_min_words"] == 1
    assert kg.meta["corpus"]["documents"] == 1
