"""``dataset: hf``: Hugging Face ``datasets`` sources (CSV, TSV, JSON Lines, Parquet, save_to_disk) for
every task, their splits and label names, the tasks they bring (sequence pairs, multi-label), and
one-line errors naming the file and row on bad input."""

import csv
import json

import pytest
import torch

from kgllm.data.datasets import TextExample, load_dataset
from kgllm.util.errors import ConfigError, CorpusError

TOPICS = {
    "business": ["Stocks rally as markets open", "Oil prices fall again", "Bank profits beat forecasts",
                 "Retailer cuts jobs", "Shares of carmaker slide"],
    "science": ["New planet found near star", "Vaccine trial shows promise", "Ancient bones dated",
                "Rover drills into rock", "Physicists cool atoms"],
    "sports": ["Paris club wins cup final", "Sprinter breaks record", "Coach resigns after loss",
               "Tennis star returns", "Rugby side names captain"],
    "world": ["Leaders meet in Berlin", "Floods hit coastal towns", "Election results delayed",
              "Treaty signed in Geneva", "Protests spread across capital"],
}
ROWS = [(text, topic) for topic, texts in TOPICS.items() for text in texts]


def _csv(path, header, rows, delimiter=","):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter=delimiter)
        w.writerow(header)
        w.writerows(rows)
    return path


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture()
def news_csv(tmp_path):
    return _csv(tmp_path / "news.csv", ["headline", "topic"], ROWS)


def _load(source, **options):
    return load_dataset("hf", source=str(source), **options)


def test_csv_with_one_split_gets_seeded_val_and_test(news_csv):
    cols = {"text": "headline", "label": "topic"}
    splits, labels, task = _load(news_csv, columns=cols)
    assert task == "seq_cls" and labels == ["business", "science", "sports", "world"]
    assert {s: len(v) for s, v in splits.items()} == {"train": 16, "val": 2, "test": 2}
    assert sorted(e.text for v in splits.values() for e in v) == sorted(t for t, _ in ROWS)
    by_text = dict(ROWS)
    assert all(labels[e.label] == by_text[e.text] for v in splits.values() for e in v)
    again, _, _ = _load(news_csv, columns=cols)
    assert [e.text for e in again["val"]] == [e.text for e in splits["val"]]
    other, _, _ = _load(news_csv, columns=cols, split_seed=1)
    assert {e.text for e in other["val"] + other["test"]} != {e.text for e in splits["val"] + splits["test"]}


def test_folder_of_split_files_maps_dev_to_val_and_reads_pairs(tmp_path):
    rows = [("A man plays a guitar.", "A person makes music.", "entailment"),
            ("A dog runs in Paris.", "A cat sleeps.", "contradiction"),
            ("Two kids eat lunch.", "The kids are hungry.", "neutral")]
    for name in ("train", "dev", "test"):
        _csv(tmp_path / f"{name}.tsv", ["premise", "hypothesis", "label"], rows, delimiter="\t")
    splits, labels, task = _load(tmp_path, task="seq_pair", columns={"text": "premise", "text_pair": "hypothesis"})
    assert task == "seq_pair" and labels == ["contradiction", "entailment", "neutral"]
    ex = splits["val"][1]
    assert (ex.text, ex.text_pair, labels[ex.label]) == ("A dog runs in Paris.", "A cat sleeps.", "contradiction")
    assert ex.full_text == "A dog runs in Paris.\n\nA cat sleeps."


def test_a_pair_is_encoded_with_segments_and_links_in_both_texts(tokenizer):
    from kgllm.data.features import Featurizer
    from kgllm.linking import EntityLinker

    linker = EntityLinker(["LOC:paris", "LOC:berlin"], ["Paris", "Berlin"], [set(), set()], [1, 1])
    ex = TextExample("Paris is big.", 0, text_pair="Berlin is bigger.")
    start = len(ex.text) + 2
    (f,) = Featurizer(tokenizer, linker, "seq_pair", 32)(ex, [(0, 5, "GPE"), (start, start + 6, "GPE")])
    toks = tokenizer.convert_ids_to_tokens(f["input_ids"])
    assert toks.count("[SEP]") == 2
    node = dict(zip(toks, f["token_node"]))
    types = dict(zip(toks, f["token_type"]))
    assert node["paris"] == 0 and node["berlin"] == 1
    assert types["paris"] == 0 and types["berlin"] == 1 and types["bigger"] == 1


def test_multi_label_from_parquet_lists_and_from_separated_strings(tmp_path):
    import pandas as pd

    rows = {"text": ["Paris wins cup", "Bank funds rover", "Floods hit Berlin", "Sprinter buys shares"] * 3,
            "tags": [["sports"], ["business", "science"], ["world"], ["sports", "business"]] * 3}
    pd.DataFrame(rows).to_parquet(tmp_path / "train.parquet")
    splits, labels, _ = _load(tmp_path / "train.parquet", task="multi_label", columns={"label": "tags"})
    assert labels == ["business", "science", "sports", "world"]
    found = {e.text: [labels[i] for i in e.label] for v in splits.values() for e in v}
    assert found["Bank funds rover"] == ["business", "science"]
    flat = _csv(tmp_path / "flat.csv", ["text", "label"], [(t, "|".join(g)) for t, g in zip(rows["text"], rows["tags"])])
    again, labels2, _ = _load(flat, task="multi_label", label_sep="|")
    assert labels2 == labels
    assert {e.text: e.label for v in again.values() for e in v} == {e.text: e.label for v in splits.values() for e in v}


def test_class_label_names_keep_their_order(tmp_path):
    import datasets

    feats = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["pos", "neg"])})
    part = datasets.Dataset.from_dict({"text": ["good", "bad", "fine", "awful"], "label": [0, 1, 0, 1]}, features=feats)
    datasets.DatasetDict({"train": part, "validation": part, "test": part}).save_to_disk(str(tmp_path / "saved"))
    splits, labels, _ = _load(tmp_path / "saved")
    assert labels == ["pos", "neg"] and [e.label for e in splits["test"]] == [0, 1, 0, 1]


def test_relation_spans_from_columns_or_from_markers(tmp_path):
    rows = [{"text": "Paris is the capital of France.", "head": [0, 5], "tail": [24, 30], "label": "capital_of"},
            {"text": "Berlin lies in Germany.", "head": {"start": 0, "end": 6}, "tail": [15, 22], "label": "located_in"}]
    splits, labels, _ = _load(_jsonl(tmp_path / "rc.jsonl", rows * 3), task="rel_cls", split_fraction=0.2)
    ex = next(e for e in splits["train"] if e.text.startswith("Berlin"))
    assert (ex.text[slice(*ex.head)], ex.text[slice(*ex.tail)], labels[ex.label]) == ("Berlin", "Germany", "located_in")
    marked = _csv(tmp_path / "semeval.csv", ["text", "label"],
                  [("<e1>Paris</e1> is the capital of <e2>France</e2>.", "capital_of"),
                   ("<e2>Germany</e2> holds <e1>Berlin</e1>.", "located_in")] * 3)
    splits, _, _ = _load(marked, task="rel_cls", split_fraction=0.2)
    ex = next(e for v in splits.values() for e in v if e.text.startswith("Germany"))
    assert ex.text == "Germany holds Berlin." and ex.text[slice(*ex.head)] == "Berlin"
    assert ex.text[slice(*ex.tail)] == "Germany" and ex.spans == [(0, 7, "MISC"), (14, 20, "MISC")]


def test_token_tags_become_typed_spans_and_bio_labels(tmp_path):
    rows = [{"tokens": ["Angela", "Merkel", "visited", "Paris", "."], "tags": ["B-PER", "I-PER", "O", "B-LOC", "O"]},
            {"tokens": ["Rome", "hosts", "FAO"], "tags": ["B-LOC", "O", "B-ORG"]}] * 3
    splits, labels, task = _load(_jsonl(tmp_path / "ner.jsonl", rows), task="token_cls", split_fraction=0.2)
    assert task == "token_cls" and labels == ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    ex = next(e for v in splits.values() for e in v if e.text.startswith("Angela"))
    assert ex.text == "Angela Merkel visited Paris ." and ex.spans == [(0, 13, "PER"), (22, 27, "LOC")]


def test_mlm_reads_the_text_column(news_csv):
    splits, labels, task = _load(news_csv, task="mlm", columns={"text": "headline"})
    assert task == "mlm" and labels == [] and len(splits["train"]) == 16


@pytest.mark.parametrize("options, message", [
    ({"columns": {"text": "title"}}, r"news.csv \[train\]: no column 'title', 'label' \(columns found: \['headline', 'topic'\]\)"),
    ({"columns": {"text": "headline", "label": "topic"}, "split_seed": "x"}, r"dataset 'hf': .*split_seed.*x"),
    ({"colums": {}}, "dataset 'hf' has no option 'colums'; its options: source: str = '', task: str = 'seq_cls'"),
    ({"task": "regression"}, "task must be one of"),
])
def test_bad_options_name_the_problem(news_csv, options, message):
    with pytest.raises((ConfigError, CorpusError), match=message):
        _load(news_csv, **options)


def test_a_label_unseen_in_training_names_the_file_and_row(tmp_path):
    _csv(tmp_path / "train.csv", ["text", "label"], [("good", "pos"), ("bad", "neg")])
    _csv(tmp_path / "validation.csv", ["text", "label"], [("fine", "pos"), ("meh", "mixed")])
    _csv(tmp_path / "test.csv", ["text", "label"], [("ok", "pos")])
    with pytest.raises(CorpusError, match=r"\[validation\] row 1: label 'mixed' does not occur in the training split"):
        _load(tmp_path)


def test_unreadable_files_name_the_file(tmp_path):
    bad = tmp_path / "latin1.csv"
    bad.write_bytes("text,label\ncaf\xe9,1\nok,0\n".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"latin1\.csv: not UTF-8 text"):
        _load(bad)
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("text,label\ngood,1\nbad,0,extra\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"ragged\.csv: cannot be read as a table \(.*line 3"):
        _load(ragged)
    empty = _csv(tmp_path / "empty.csv", ["text", "label"], [])
    with pytest.raises(CorpusError, match=r"empty\.csv"):
        _load(empty)
    _csv(tmp_path / "blank.csv", ["text", "label"], [("good", "pos"), ("", "neg"), ("bad", "neg"), ("ok", "pos")] * 2)
    with pytest.raises(CorpusError, match=r"blank\.csv \[train\] row \d+: column 'text' is empty"):
        _load(tmp_path / "blank.csv")


def test_a_hub_name_offline_says_what_to_download():
    with pytest.raises(ConfigError, match=r"nyu-mll/glue: not a local file or folder.*save_to_disk"):
        load_dataset("hf", source="nyu-mll/glue", config_name="sst2")


def test_sst2_through_hf_gives_the_builtin_loader_s_features(data_dir, tokenizer):
    from kgllm.data.features import Featurizer
    from kgllm.linking import EntityLinker

    builtin, names, _ = load_dataset("sst2", data_dir)
    generic, labels, _ = _load(data_dir / "sst2", columns={"text": "sentence"})
    assert labels == ["0", "1"] and len(names) == 2
    featurize = Featurizer(tokenizer, EntityLinker([], [], [], []), "seq_cls", 32)
    for split in ("train", "val", "test"):
        assert len(builtin[split]) == len(generic[split]) > 0
        for a, b in zip(builtin[split], generic[split]):
            assert a.text == b.text.strip() and a.label == b.label
            (fa,), (fb,) = featurize(a, []), featurize(b, [])
            assert fa["input_ids"] == fb["input_ids"]


def test_build_kg_reads_exactly_the_training_split(tmp_path, news_csv):
    from kgllm.kg.extraction.build import BuildSettings, run_build
    from kgllm.kg.graph.folder import read_meta

    splits, _, _ = _load(news_csv, columns={"text": "headline", "label": "topic"})
    out = tmp_path / "kg"
    run_build(BuildSettings(news_csv, out, "hf", text_field="headline", progress=False, hf={"split": "train"}))
    meta = read_meta(out)
    assert meta["corpus"]["format"] == "hf" and meta["corpus"]["split"] == "train"
    assert meta["corpus"]["documents"] == len(splits["train"]) == 16
    import hashlib

    h = hashlib.sha256()
    for i, ex in enumerate(splits["train"]):
        h.update(f"train:{i}".encode() + b"\0" + ex.text.encode() + b"\0")
    assert meta["corpus"]["sha256"] == h.hexdigest()


def test_new_tasks_learn_a_tiny_set(kg_dir, kg, tokenizer):
    """seq_pair and multi_label: the loss falls and the model fits four examples."""
    from kgllm.data.collate import KGCollator
    from kgllm.data.features import Featurizer
    from kgllm.data.subgraph import SubgraphSampler
    from kgllm.kg.graph.to_pyg import to_pyg
    from kgllm.linking import EntityLinker
    from kgllm.lit import ClassifierModule
    from kgllm.tasks import get_task

    cases = {
        "seq_pair": ([TextExample("a b", 0, text_pair="c d"), TextExample("a b", 1, text_pair="d c"),
                      TextExample("e f", 1, text_pair="c d"), TextExample("e f", 0, text_pair="d c")], 2),
        "multi_label": ([TextExample("red apple", [0]), TextExample("green apple", [1]),
                         TextExample("red green apple", [0, 1]), TextExample("plain apple", [])], 2),
    }
    for name, (examples, n_labels) in cases.items():
        task = get_task(name, **({"num_labels": n_labels} if name == "multi_label" else {}))
        feats = [f for ex in examples for f in Featurizer(tokenizer, EntityLinker.from_kg(kg), task, 16)(ex, [])]
        batch = KGCollator(tokenizer, SubgraphSampler(to_pyg(kg)), task)(feats)
        torch.manual_seed(0)
        model = ClassifierModule(backbone="tiny", kg_dir=str(kg_dir), fusion="gated", fusion_layers=[0],
                                 gnn_hidden=16, gnn_heads=2, task=name, num_labels=n_labels,
                                 vocab_size=len(tokenizer), backbone_dropout=0.0, head_dropout=0.0)
        model.configure_model()
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        losses = []
        for _ in range(150):
            loss, logits, labels = model.task_spec.loss(model(batch), batch)
            losses.append(float(loss))
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert losses[-1] < 0.2 * losses[0], (name, losses[0], losses[-1])
        if name == "seq_pair":
            assert batch["token_type_ids"].max() == 1
            assert logits.argmax(-1).tolist() == labels.tolist()
        else:
            assert ((logits > 0).long() == labels).all()
