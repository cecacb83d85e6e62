from kgllm.kg.graph.normalize import coarse_type, entity_key, group_mentions, normalize_label


def test_normalize_label():
    assert normalize_label("  The  Beatles's ") == "beatles"
    assert normalize_label("“Paris”") == "paris"
    assert normalize_label("Ｐａｒｉｓ") == "paris"  # NFKC


def test_entity_key_uses_coarse_type():
    assert entity_key("Barack Obama", "PERSON") == "PER:barack obama"
    assert coarse_type("GPE") == coarse_type("FAC") == "LOC"


def test_surname_and_first_name_join_full_name():
    groups, clusters = group_mentions([("Barack Obama", "PER"), ("Obama", "PER"), ("Honolulu", "LOC"),
                                       ("Barack", "PER")])
    assert groups == [0, 0, 1, 0]
    assert clusters[0].label == "Barack Obama" and clusters[0].aliases == {"Barack Obama", "Obama", "Barack"}


def test_longer_name_later_becomes_canonical():
    groups, clusters = group_mentions([("Merkel", "PER"), ("Angela Merkel", "PER")])
    assert groups == [0, 0] and clusters[0].label == "Angela Merkel"


def test_acronym_joins_organisation_but_types_stay_apart():
    groups, _ = group_mentions([("National Aeronautics and Space Administration", "ORG"), ("NASA", "ORG"),
                                ("Paris", "LOC"), ("Paris", "PER")])
    assert groups == [0, 0, 1, 2]
