import torch

from kgllm.lit import ClassifierModule, MLMModule
from kgllm.lit.base import canonical_key
from kgllm.nn.kgbert import is_kg_parameter


def test_canonical_key():
    assert canonical_key("model.hf.bert.encoder.layer.3.base_layer.output.dense.weight") == \
        "encoder.layer.3.output.dense.weight"
    assert canonical_key("model.hf.encoder.layer.0.attention.self.query.bias") == \
        "encoder.layer.0.attention.self.query.bias"
    assert canonical_key("model.kg_encoder.node_emb.weight") == "kg_encoder.node_emb.weight"


def _mlm(kg_dir):
    m = MLMModule(backbone="tiny", kg_dir=str(kg_dir), fusion="gated", fusion_layers=[0], gnn_hidden=16, gnn_heads=2)
    m.configure_model()
    return m


def test_finetuning_starts_from_pretraining_checkpoint(tmp_path, kg_dir, tokenizer):
    mlm = _mlm(kg_dir)
    with torch.no_grad():
        for p in mlm.parameters():
            p.add_(torch.randn_like(p))  # make the weights recognisable
    ckpt = {"state_dict": mlm.state_dict(), "hyper_parameters": dict(mlm.hparams)}
    mlm.on_save_checkpoint(ckpt)
    assert ckpt["kg_meta"]["corpus"]["sha256"]
    torch.save(ckpt, tmp_path / "pre.ckpt")
    clf = ClassifierModule(backbone="tiny", kg_dir=str(kg_dir), fusion="gated", fusion_layers=[0], gnn_hidden=16,
                           gnn_heads=2, task="rel_cls", num_labels=3, vocab_size=len(tokenizer) + 4,
                           init_from=str(tmp_path / "pre.ckpt"))
    clf.configure_model()
    src, dst = mlm.model.hf.bert, clf.model.hf
    q = "encoder.layer.0.base_layer.attention.self.query.weight"
    assert torch.equal(src.get_parameter(q), dst.get_parameter(q))
    assert torch.equal(mlm.model.kg_encoder.node_emb.weight, clf.model.kg_encoder.node_emb.weight)
    emb_src, emb_dst = src.embeddings.word_embeddings.weight, dst.embeddings.word_embeddings.weight
    assert emb_dst.shape[0] == emb_src.shape[0] + 4 and torch.equal(emb_src, emb_dst[:-4])
    assert clf.init_report["loaded"] > 20


def test_fusion_off_model_loads_backbone_of_fused_checkpoint(tmp_path, kg_dir):
    mlm = _mlm(kg_dir)
    torch.save({"state_dict": mlm.state_dict(), "kg_meta": mlm.kg_meta}, tmp_path / "pre.ckpt")
    clf = ClassifierModule(backbone="tiny", kg_dir=str(kg_dir), fusion="none", task="seq_cls", num_labels=2,
                           vocab_size=mlm.model.hf.config.vocab_size, init_from=str(tmp_path / "pre.ckpt"))
    clf.configure_model()
    key = "encoder.layer.0.output.dense.weight"
    assert torch.equal(clf.model.hf.bert.get_parameter(key),
                       mlm.model.hf.bert.get_parameter(key.replace("layer.0.", "layer.0.base_layer.")))


def test_freeze_backbone_trains_only_kg_and_head(kg_dir, tokenizer):
    clf = ClassifierModule(backbone="tiny", kg_dir=str(kg_dir), fusion="gated", fusion_layers=[0], gnn_hidden=16,
                           gnn_heads=2, task="seq_cls", num_labels=2, vocab_size=len(tokenizer),
                           freeze_backbone=True)
    clf.configure_model()
    trainable = {n for n, p in clf.named_parameters() if p.requires_grad}
    assert trainable and all(is_kg_parameter(n) or ".classifier." in n for n in trainable)
    assert any(".classifier." in n for n in trainable)


def test_model_is_in_train_mode_after_building(kg_dir):
    m = _mlm(kg_dir)
    assert all(mod.training for mod in m.modules())
