"""``kgllm predict``: a classifier trained through ``dataset: hf`` on a CSV writes one JSON line per
new text with the label name, probabilities and the KG nodes the text was linked to."""

import csv
import json

import pytest

NEWS = [("Angela Merkel met Emmanuel Macron in Berlin", "world"), ("Microsoft shares rose in Redmond", "business"),
        ("Bill Gates funds a new lab", "business"), ("John Lennon songs top charts in Liverpool", "arts"),
        ("Paul McCartney tours Brazil", "arts"), ("Barack Obama visits Honolulu", "world"),
        ("Markets in Paris fall", "business"), ("The Beatles museum opens", "arts")]


def _csv(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def _train(tmp_path, kg_dir, task, rows, columns):
    import lightning as L

    from kgllm.data import KGDataModule
    from kgllm.lit import ClassifierModule

    source = _csv(tmp_path / "train.csv", list(columns.values()), rows)
    dm = KGDataModule("hf", str(kg_dir), backbone="tiny", max_length=32, batch_size=4,
                      dataset_args={"source": str(source), "task": task, "columns": columns, "label_sep": "|",
                                    "split_fraction": 0.25})
    model = ClassifierModule(fusion="gated", fusion_layers=[0], gnn_hidden=16, gnn_heads=2)
    trainer = L.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(tmp_path))
    trainer.fit(model, dm)
    ckpt = tmp_path / "model.ckpt"
    trainer.save_checkpoint(ckpt)
    return str(ckpt), model.label_names


@pytest.mark.parametrize("task", ["seq_cls", "multi_label"])
def test_predict_writes_names_probabilities_and_linked_nodes(tmp_path, kg_dir, task, capfd):
    from kgllm.cli import main

    columns = {"text": "headline", "label": "topic"}
    rows = [(t, lab if task == "seq_cls" else f"{lab}|news") for t, lab in NEWS]
    ckpt, labels = _train(tmp_path, kg_dir, task, rows, columns)
    new = _csv(tmp_path / "new.csv", ["headline"], [("Angela Merkel speaks in Paris",), ("Quiet day",)])
    out = tmp_path / "preds" / "p.jsonl"
    capfd.readouterr()  # training's own output
    assert main(["predict", ckpt, "--input", str(new), "--columns", '{"text": "headline"}', "--out", str(out),
                 "--accelerator", "cpu", "--no-progress"]) == 0
    said = "".join(capfd.readouterr())
    assert not any(noise in said for noise in ("GPU available", "litlogger", "LeafSpec", "jit.script", "Generating",
                                              "NER:")), said
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [x["text"] for x in lines] == ["Angela Merkel speaks in Paris", "Quiet day"]
    for x in lines:
        assert set(x["probs"]) == set(labels) and "gold" not in x
        if task == "seq_cls":
            assert x["label"] in labels and abs(sum(x["probs"].values()) - 1) < 1e-4
        else:
            assert set(x["labels"]) <= set(labels) and all(0 <= p <= 1 for p in x["probs"].values())
    assert {n["label"] for n in lines[0]["nodes"]} >= {"Angela Merkel", "Paris"} and lines[1]["nodes"] == []
    from kgllm.workflows.predict import predict  # no --columns: the training columns (headline), label optional

    assert predict(ckpt, str(new), str(tmp_path / "p2.jsonl"), accelerator="cpu", progress=False) == 2
    assert [json.loads(x) for x in (tmp_path / "p2.jsonl").read_text().splitlines()] == lines
    from kgllm import KGClassifier  # the same predictions from Python, in memory

    clf = KGClassifier.from_checkpoint(ckpt)
    assert clf.predict(["Angela Merkel speaks in Paris", "Quiet day"]) == lines
    with pytest.raises(TypeError, match="a list of texts"):
        clf.predict("Quiet day")


def test_predict_refuses_other_checkpoints_and_bad_columns(tmp_path, kg_dir):
    import torch

    from kgllm.util.errors import CorpusError, KGLLMError
    from kgllm.workflows.predict import predict

    torch.save({"state_dict": {}, "hyper_parameters": {"task": "docre"}}, tmp_path / "re.ckpt")
    with pytest.raises(KGLLMError, match="a docre checkpoint; this command reads .*--extractor learned"):
        predict(str(tmp_path / "re.ckpt"), "x.csv", str(tmp_path / "p.jsonl"))
    ckpt, _ = _train(tmp_path, kg_dir, "seq_cls", NEWS, {"text": "headline", "label": "topic"})
    new = _csv(tmp_path / "new.csv", ["title"], [("Angela Merkel speaks",)])
    with pytest.raises(CorpusError, match=r"new.csv \[train\]: no column 'headline' \(columns found: \['title'\]\)"):
        predict(ckpt, str(new), str(tmp_path / "p.jsonl"), accelerator="cpu", progress=False)
    assert not (tmp_path / "p.jsonl").exists()


def test_export_round_trips_through_plain_transformers_and_back_with_fusion(tmp_path, kg_dir):
    """``kgllm export``: plain transformers reproduces the model without a graph, and ``backbone: DIR``
    with fusion reproduces the fused model (graph encoder and fusion blocks loaded from the folder)."""
    import lightning as L
    import torch
    from transformers import AutoModelForSequenceClassification

    from kgllm.cli import main
    from kgllm.data import KGDataModule
    from kgllm.lit import ClassifierModule
    from kgllm.nn.kgbert import is_kg_parameter

    columns = {"text": "headline", "label": "topic"}
    source = _csv(tmp_path / "train.csv", list(columns.values()), NEWS)
    args = {"source": str(source), "columns": columns, "split_fraction": 0.25}
    dm = KGDataModule("hf", str(kg_dir), backbone="tiny", max_length=32, batch_size=4, dataset_args=args)
    model = ClassifierModule(fusion="gated", fusion_layers=[0], gnn_hidden=16, gnn_heads=2)
    trainer = L.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(tmp_path))
    trainer.fit(model, dm)
    with torch.no_grad():  # graph weights (and classifier) far from their initial zeros: the graph shows
        for name, p in model.named_parameters():
            if is_kg_parameter(name) or "classifier" in name:
                p.add_(torch.randn_like(p))
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    out = tmp_path / "exported"
    assert main(["export", str(tmp_path / "m.ckpt"), "--out", str(out)]) == 0
    assert (out / "config.json").is_file() and (out / "kgllm_extra.safetensors").is_file()

    model.eval()
    batch = next(iter(dm.train_dataloader()))
    assert (batch["token_node"] >= 0).any()
    with torch.no_grad():
        fused = model(batch)
        no_graph = model.model(batch["input_ids"], batch["attention_mask"]).logits
    assert (fused - no_graph).abs().max() > 1e-2

    plain = AutoModelForSequenceClassification.from_pretrained(str(out)).eval()
    assert plain.config.id2label == dict(enumerate(model.label_names))
    with torch.no_grad():
        assert torch.allclose(plain(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits,
                              no_graph, atol=1e-5)

    back = ClassifierModule(backbone=str(out), kg_dir=str(kg_dir), fusion="gated", fusion_layers=[0], gnn_hidden=16,
                            gnn_heads=2, task="seq_cls", num_labels=len(model.label_names),
                            vocab_size=model.hparams.vocab_size).eval()
    back.configure_model()
    with torch.no_grad():
        assert torch.allclose(back(batch), fused, atol=1e-5)
    assert main(["export", str(tmp_path / "m.ckpt"), "--out", str(out)]) == 1  # never replaced silently
