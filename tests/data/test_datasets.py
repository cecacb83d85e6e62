import pytest

from kgllm.data.datasets import load_dataset, parse_range
from kgllm.util.errors import DatasetNotFoundError

ARGS = __import__("tests.conftest", fromlist=["x"]).FIXTURE_DATASET_ARGS


def test_redocred_rc_spans_point_at_entities(data_dir):
    splits, labels, task = load_dataset("redocred_rc", data_dir, **ARGS["redocred_rc"])
    assert task == "rel_cls" and "P19" in labels
    ex = splits["train"][0]
    assert ex.text[slice(*ex.head)] == "Barack Obama" and ex.text[slice(*ex.tail)] == "Honolulu"
    assert labels[ex.label] == "P19"


def test_fewrel_fixed_split_and_names(data_dir):
    splits, labels, task = load_dataset("fewrel", data_dir, **ARGS["fewrel"])
    assert [len(splits[s]) for s in ("train", "val", "test")] == [6, 2, 2]
    assert labels == ["P17:country", "P19:place of birth"]
    ex = splits["train"][0]
    assert ex.text[slice(*ex.head)] == "Paris" and ex.text[slice(*ex.tail)] == "France"


def test_sst2_and_caps(data_dir):
    splits, labels, task = load_dataset("sst2", data_dir, max_train=2, max_eval=1)
    assert task == "seq_cls" and labels == ["negative", "positive"]
    assert [len(splits[s]) for s in ("train", "val", "test")] == [2, 1, 1]


def test_missing_dataset_names_path_and_source(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("fewrel", tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "fewrel" / "val_wiki.json") in msg and "github.com/thunlp/FewRel" in msg


def test_missing_data_root(monkeypatch):
    monkeypatch.delenv("KGLLM_DATA")
    with pytest.raises(DatasetNotFoundError, match="KGLLM_DATA"):
        load_dataset("sst2")


def test_bad_range():
    assert parse_range("2:5") == slice(2, 5)
    with pytest.raises(ValueError, match="start:end"):
        parse_range("two")


def test_document_ranges_join_by_commas_and_round_trip():
    from kgllm.data.datasets import doc_indices, range_spec, select_docs

    assert doc_indices("0:2,5:7", 10) == [0, 1, 5, 6]
    assert doc_indices("8:", 10) == [8, 9] and doc_indices("3:3", 10) == []
    assert select_docs(list("abcdefgh"), "6:,0:1") == ["g", "h", "a"]
    assert range_spec([5, 0, 1, 2, 6, 9]) == "0:3,5:7,9:10" and range_spec([]) == "0:0"
    for spec in ("0:3,5:7,9:10", "4:8"):
        assert range_spec(doc_indices(spec, 20)) == spec
    with pytest.raises(ValueError, match="overlap"):
        doc_indices("0:5,4:6", 10)
    with pytest.raises(ValueError, match="start:end"):
        doc_indices("0:5,x", 10)


def test_fewrel_train_per_relation_keeps_val_and_test(data_dir):
    full, _, _ = load_dataset("fewrel", data_dir, n_train=3, n_val=1)
    small, labels, _ = load_dataset("fewrel", data_dir, n_train=3, n_val=1, train_per_relation=1)
    assert len(small["train"]) == 2 and {e.label for e in small["train"]} == {0, 1}
    assert [e.text for e in small["test"]] == [e.text for e in full["test"]]


def test_a_misspelt_loader_option_is_an_error(data_dir):
    from kgllm.util.errors import ConfigError

    with pytest.raises(ConfigError, match="dataset 'fewrel' has no option 'n_trian'; its options: n_train: int = 500, "
                                          "n_val: int = 100"):
        load_dataset("fewrel", data_dir, n_trian=3)


def test_a_loader_option_of_the_wrong_type_is_an_error(data_dir):
    from kgllm.util.errors import ConfigError

    with pytest.raises(ConfigError, match=r"dataset 'fewrel': Parser key \"n_train\": Expected a <class 'int'>\. Got value: three; its options: n_train"):
        load_dataset("fewrel", data_dir, n_train="three")
