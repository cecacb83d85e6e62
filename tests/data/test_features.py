import pytest

from kgllm.data.datasets import TextExample
from kgllm.data.features import Featurizer, merge_spans
from kgllm.linking import EntityLinker
from kgllm.tasks.rel_cls import MARKERS, add_markers


@pytest.fixture()
def linker():
    return EntityLinker(["PER:barack obama", "LOC:honolulu", "LOC:hawaii"], ["Barack Obama", "Honolulu", "Hawaii"],
                        [{"Obama"}, set(), set()], [3, 1, 1])


@pytest.fixture()
def marker_tokenizer():
    from kgllm.nn.backbone import load_tokenizer

    tok = load_tokenizer("tiny")
    add_markers(tok)
    return tok


TEXT = "Barack Obama was born in Honolulu, Hawaii."
SPANS = [(0, 12, "PERSON"), (25, 33, "GPE"), (35, 41, "GPE")]


def test_mlm_features_link_wordpieces(tokenizer, linker):
    (f,) = Featurizer(tokenizer, linker, "mlm", 32)(TextExample(TEXT), SPANS)
    toks = tokenizer.convert_ids_to_tokens(f["input_ids"])
    linked = {t: n for t, n in zip(toks, f["token_node"]) if n >= 0}
    assert linked == {"barack": 0, "obama": 0, "honolulu": 1, "hawaii": 2}
    assert f["span"][toks.index("barack")] == f["span"][toks.index("obama")]
    assert f["word"][0] == -1 and f["word"][-1] == -1  # [CLS], [SEP]


def test_long_mlm_text_is_windowed(tokenizer, linker):
    text = " ".join([TEXT] * 20)
    spans = [(s + k * (len(TEXT) + 1), e + k * (len(TEXT) + 1), lab) for k in range(20) for s, e, lab in SPANS]
    feats = Featurizer(tokenizer, linker, "mlm", 32)(TextExample(text), spans)
    assert len(feats) > 5 and all(len(f["input_ids"]) <= 32 for f in feats)
    assert sum(n >= 0 for f in feats for n in f["token_node"]) >= 60


def test_relation_markers_surround_head_and_tail(marker_tokenizer, linker):
    ex = TextExample(TEXT, label=1, head=(0, 12), tail=(25, 33), spans=[(0, 12, "PER"), (25, 33, "LOC")])
    (f,) = Featurizer(marker_tokenizer, linker, "rel_cls", 64)(ex, SPANS)
    toks = marker_tokenizer.convert_ids_to_tokens(f["input_ids"])
    assert toks[:6] == ["[CLS]", "[E1]", "barack", "obama", "[/E1]", "was"]
    assert toks[f["head_pos"]] == "[E1]" and toks[f["tail_pos"]] == "[E2]"
    assert toks[toks.index("[E2]") + 1] == "honolulu" and toks[toks.index("[/E2]") - 1] == "honolulu"
    assert all(n == -1 for t, n in zip(toks, f["token_node"]) if t in MARKERS)
    assert f["token_node"][toks.index("honolulu")] == 1 and f["label"] == 1


def test_adjacent_head_and_tail(marker_tokenizer, linker):
    text = "Honolulu Hawaii"
    ex = TextExample(text, 0, (0, 8), (9, 15), [(0, 8, "LOC"), (9, 15, "LOC")])
    (f,) = Featurizer(marker_tokenizer, linker, "rel_cls", 16)(ex, [])
    toks = marker_tokenizer.convert_ids_to_tokens(f["input_ids"])
    assert toks == ["[CLS]", "[E1]", "honolulu", "[/E1]", "[E2]", "hawaii", "[/E2]", "[SEP]"]


def test_entity_cut_by_max_length_is_dropped_and_counted(marker_tokenizer, linker):
    ex = TextExample("word " * 40 + "Hawaii", 0, (0, 4), (200, 206), [(0, 4, "MISC"), (200, 206, "LOC")])
    fz = Featurizer(marker_tokenizer, linker, "rel_cls", 16)
    assert fz(ex, []) == [] and fz.stats.dropped == 1


def test_markers_required(tokenizer, linker):
    with pytest.raises(ValueError, match="marker"):
        Featurizer(tokenizer, linker, "rel_cls")


def test_known_spans_win_over_overlapping_ner():
    assert merge_spans([(0, 12, "PER")], [(7, 12, "PERSON"), (20, 25, "GPE")]) == [(0, 12, "PER"), (20, 25, "GPE")]
