"""The LAMA probe on a hand-made cloze set where the right answers are known."""

import torch

from kgllm.probe import load_cloze, probe


def test_cloze_items(data_dir, tokenizer):
    cloze = load_cloze(data_dir, tokenizer=tokenizer)
    assert set(cloze) == {"P19", "P36"}
    paris = next(it for it in cloze["P36"] if it["object"] == "Paris")
    assert paris["text"] == "The capital of France is [MASK] ."
    assert paris["text"][slice(*paris["subject"])] == "France" and paris["sub_key"] == "wd:Q142"
    assert all(len(tokenizer.tokenize(it["object"])) == 1 for items in cloze.values() for it in items)


def test_p_at_1_with_a_model_that_always_says_paris(tmp_path, data_dir, tokenizer):
    from kgllm.kg.imports import import_lama
    from kgllm.lit import MLMModule

    kg_dir = tmp_path / "lama"
    import_lama(data_dir / "lama_trex").save(kg_dir)
    model = MLMModule(backbone="tiny", kg_dir=str(kg_dir), fusion="gated", fusion_layers=[-1], gnn_hidden=16,
                      gnn_heads=2)
    model.configure_model()
    paris = tokenizer.convert_tokens_to_ids("paris")
    with torch.no_grad():
        model.model.hf.cls.predictions.bias.zero_()
        model.model.hf.cls.predictions.bias[paris] = 1e4
    ckpt = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
            "pytorch-lightning_version": "2.6.6"}
    model.on_save_checkpoint(ckpt)
    torch.save(ckpt, tmp_path / "m.ckpt")
    res = probe(str(tmp_path / "m.ckpt"), data_dir)
    p36 = res["relations"]["P36"]
    n36 = p36["facts"]
    assert p36["with_kg"] == p36["without_kg"] == 1 / n36  # only France -> Paris
    assert res["relations"]["P19"]["with_kg"] == 0.0
    facts = res["with_kg"]["facts"]
    assert res["with_kg"]["p_at_1_micro"] == 1 / facts
    assert res["with_kg"]["p_at_1"] == (1 / n36 + 0) / 2
