from kgllm.linking import EntityLinker, align_spans


def _linker():
    return EntityLinker(["PER:barack obama", "LOC:paris", "PER:paris", "ORG:nasa"],
                        ["Barack Obama", "Paris", "Paris", "NASA"],
                        [{"Obama"}, set(), set(), {"National Aeronautics and Space Administration"}], [5, 9, 1, 2])


def test_links_by_key_then_label():
    lk = _linker()
    assert lk.link_one("Barack Obama", "PERSON") == 0
    assert lk.link_one("Paris", "GPE") == 1
    assert lk.link_one("Paris", "PERSON") == 2
    assert lk.link_one("Paris", "ORG") == 1  # no ORG:paris: most frequent node with that label
    assert lk.link_one("the National Aeronautics and Space Administration", "ORG") == 3  # alias
    assert lk.link_one("Berlin", "GPE") == -1


def test_in_text_grouping_propagates_links():
    text = "Michelle and Barack Obama met. Obama spoke."
    spans = [(13, 25, "PERSON"), (31, 36, "PERSON")]
    m = _linker().link(text, spans)
    assert [x.node for x in m] == [0, 0]


def test_align_spans_with_offsets():
    offsets = [(0, 0), (0, 6), (7, 12), (12, 14), (15, 20), (0, 0)]  # [CLS] barack obama ##'s house [SEP]
    assert align_spans(offsets, [(0, 12)]) == [-1, 0, 0, -1, -1, -1]
    assert align_spans(offsets, [(15, 20), (0, 6)]) == [-1, 1, -1, -1, 0, -1]
    assert align_spans(offsets, [(8, 13)]) == [-1, -1, 0, 0, -1, -1]  # partial overlaps count
    assert align_spans(offsets, []) == [-1] * 6
