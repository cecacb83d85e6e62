"""``kgllm inspect``: linked tokens, per-fusion-layer change and attended nodes of one text."""

import pytest
import torch

TEXT = "Barack Obama was born in Honolulu , Hawaii ."


def _checkpoint(tmp_path, kg_dir, data_dir, fusion: str, gate: float) -> str:
    import lightning as L

    from kgllm.data import KGDataModule
    from kgllm.lit import MLMModule

    dm = KGDataModule("redocred", str(kg_dir), backbone="tiny", data_dir=str(data_dir), batch_size=4,
                      dataset_args={"train_docs": "0:4", "val_docs": "4:6"})
    model = MLMModule(fusion=fusion, fusion_layers=[0], gnn_hidden=16, gnn_heads=2)
    trainer = L.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(tmp_path))
    trainer.fit(model, dm)
    with torch.no_grad():
        for i in model.model.fusion_layers:
            model.model.backbone.encoder.layer[i].kg_gate.fill_(gate)
    path = tmp_path / f"{fusion}-{gate}.ckpt"
    trainer.save_checkpoint(path)
    return str(path)


@pytest.mark.parametrize("fusion", ["gated", "xattn"])
def test_inspect_shows_links_layer_changes_and_attention(tmp_path, kg_dir, data_dir, fusion):
    from kgllm.workflows.inspect import format_result, inspect_text

    res = inspect_text(_checkpoint(tmp_path, kg_dir, data_dir, fusion, 1.0), TEXT)
    linked = {t["token"]: t["node"]["label"] for t in res["tokens"] if t["node"]}
    assert linked["obama"] == "Barack Obama" and linked["honolulu"] == "Honolulu"
    assert res["linked_tokens"] == len(linked) and res["fusion_layers"] == [0]
    assert res["gate_norms"][0] > 1.0
    for t in res["tokens"]:
        for i in (0,):
            change = t["layers"][i]["change"]
            if fusion == "gated" and t["node"] is None:
                assert change == 0.0  # gated fusion writes linked tokens only
            else:
                assert change > 0.0
        if fusion == "xattn":
            top = t["layers"][0]["top_nodes"]
            assert 1 <= len(top) <= 3 and all(0.0 <= n["weight"] <= 1.0 for n in top)
            assert [n["weight"] for n in top] == sorted((n["weight"] for n in top), reverse=True)
        else:
            assert "top_nodes" not in t["layers"][0]
    assert any(t["output_change"] > 0 for t in res["tokens"])
    table = format_result(res)
    assert "Δ layer 0" in table and "Δ output" in table and "Barack Obama" in table
    assert ("top nodes (layer 0)" in table) == (fusion == "xattn")


def test_closed_gates_change_nothing_and_masks_are_predicted(tmp_path, kg_dir, data_dir, capsys):
    from kgllm.cli import main

    ckpt = _checkpoint(tmp_path, kg_dir, data_dir, "xattn", 0.0)
    assert main(["inspect", ckpt, "--text", TEXT.replace("Honolulu", "[MASK]"), "--json"]) == 0
    import json

    res = json.loads(capsys.readouterr().out)
    assert all(t["output_change"] == 0.0 for t in res["tokens"])
    assert all(t["layers"]["0"]["change"] == 0.0 for t in res["tokens"]) and res["gate_norms"]["0"] == 0.0
    (mask,) = res["masks"]
    assert mask["with_kg"] == mask["fusion_off"] and len(mask["with_kg"]) == 5


def test_inspect_refuses_what_it_cannot_read(tmp_path):
    from kgllm.util.errors import KGLLMError
    from kgllm.workflows.inspect import inspect_text

    with pytest.raises(KGLLMError, match="checkpoint not found"):
        inspect_text(str(tmp_path / "missing.ckpt"), TEXT)
    torch.save({"state_dict": {}, "hyper_parameters": {"dim": 16}}, tmp_path / "linkpred.ckpt")
    with pytest.raises(KGLLMError, match="not a fused-BERT checkpoint"):
        inspect_text(str(tmp_path / "linkpred.ckpt"), TEXT)
