"""Parameter-efficient fine-tuning by name (``--model.peft lora|ia3|adapter``), combined with fusion:
each method starts as the original model, freezes the backbone, and every parameter it adds gets a
gradient from the task loss."""

import pytest
import torch

from kgllm.data.datasets import TextExample


@pytest.fixture(scope="module")
def batch(kg, tokenizer):
    from kgllm.data.collate import KGCollator
    from kgllm.data.features import Featurizer
    from kgllm.data.subgraph import SubgraphSampler
    from kgllm.kg.graph.to_pyg import to_pyg
    from kgllm.linking import EntityLinker

    examples = [TextExample("Angela Merkel met Emmanuel Macron in Berlin.", 0),
                TextExample("Bill Gates founded Microsoft in Albuquerque.", 1)]
    spans = [[(0, 13, "PERSON"), (18, 33, "PERSON"), (37, 43, "GPE")], [(0, 10, "PERSON"), (19, 28, "ORG")]]
    feats = [f for ex, sp in zip(examples, spans) for f in Featurizer(tokenizer, EntityLinker.from_kg(kg), "seq_cls", 32)(ex, sp)]
    out = KGCollator(tokenizer, SubgraphSampler(to_pyg(kg)), "seq_cls")(feats)
    assert (out["token_node"] >= 0).sum() >= 4
    return out


def _model(kg_dir, tokenizer, peft):
    from kgllm.lit import ClassifierModule

    torch.manual_seed(0)
    m = ClassifierModule(backbone="tiny", kg_dir=str(kg_dir), fusion="gated", fusion_layers=[0], gnn_hidden=16,
                         gnn_heads=2, task="seq_cls", num_labels=2, vocab_size=len(tokenizer), peft=peft, peft_r=4,
                         backbone_dropout=0.0, head_dropout=0.0, fusion_dropout=0.0, gnn_dropout=0.0)
    m.configure_model()
    return m


@pytest.mark.parametrize("peft, marker", [("lora", "lora_"), ("ia3", "ia3_"), ("adapter", "adapter_")])
def test_peft_methods_start_as_the_model_freeze_the_backbone_and_all_train(kg_dir, tokenizer, batch, peft, marker):
    from kgllm.nn.kgbert import is_kg_parameter

    base, model = _model(kg_dir, tokenizer, "none"), _model(kg_dir, tokenizer, peft)
    with torch.no_grad():
        assert torch.allclose(base(batch), model(batch), atol=1e-6)  # every method starts as the identity
    added = {n for n, _ in model.named_parameters() if marker in n}
    assert added and not any(marker in n for n, _ in base.named_parameters())
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert added <= trainable
    assert all(is_kg_parameter(n) or "classifier" in n or n in added for n in trainable)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(3):  # LoRA's A and an adapter's down projection see a gradient once B / up moved
        loss, _, _ = model.task_spec.loss(model(batch), batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    loss, _, _ = model.task_spec.loss(model(batch), batch)
    opt.zero_grad()
    loss.backward()
    dead = [n for n, p in model.named_parameters() if n in added and (p.grad is None or not p.grad.abs().sum())]
    assert not dead, dead


def test_unknown_peft_method_and_lora_r_clash_are_errors(kg_dir):
    from kgllm.util.errors import ConfigError
    from kgllm.lit import ClassifierModule

    with pytest.raises(ConfigError, match="is not a PEFT method"):
        ClassifierModule(backbone="tiny", kg_dir=str(kg_dir), peft="prefix")
    with pytest.raises(ConfigError, match="lora_r is LoRA's rank"):
        ClassifierModule(backbone="tiny", kg_dir=str(kg_dir), peft="ia3", lora_r=8)
