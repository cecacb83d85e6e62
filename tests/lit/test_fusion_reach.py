"""Every configured fusion gate gets a gradient from each task's real loss, on real batches; a
fused layer that cannot change what the head reads is refused when the model is built."""

import pytest
import torch

from kgllm.data import KGDataModule
from kgllm.lit import ClassifierModule, MLMModule
from tests.conftest import FIXTURE_DATASET_ARGS

TASK_DATA = {"seq_cls": "sst2", "rel_cls": "redocred_rc", "token_cls": "redocred_ner", "mlm": "redocred",
             "docre": "redocred_docre"}
#: the last layer (1 of the tiny 2-layer BERT) reaches the head only where the block writes what it reads
REACHES_LAST = {("gated", "token_cls"), ("interaction", "seq_cls"), *(("xattn", t) for t in TASK_DATA)}


@pytest.fixture(scope="module")
def batches(kg_dir, data_dir):
    out = {}
    for task, dataset in TASK_DATA.items():
        dm = KGDataModule(dataset, str(kg_dir), backbone="tiny", data_dir=str(data_dir), batch_size=4,
                          dataset_args=FIXTURE_DATASET_ARGS[dataset], data_seed=0)
        dm.setup("fit")
        linked = [b for b in dm.train_dataloader() if (b["token_node"] >= 0).any()]
        out[task] = (dm, linked[0] if linked else None)
    return out


def _module(task, fusion, layers, kg_dir, dm):
    common = dict(backbone="tiny", kg_dir=str(kg_dir), fusion=fusion, fusion_layers=layers, gnn_hidden=16,
                  gnn_heads=2, backbone_dropout=0.0, fusion_dropout=0.0, gnn_dropout=0.0)
    if task == "mlm":
        return MLMModule(entity_weight=0.5, **common)
    return ClassifierModule(task=task, num_labels=dm.num_labels, vocab_size=len(dm.tokenizer), head_dropout=0.0,
                            **common)


@pytest.mark.parametrize("task", list(TASK_DATA))
@pytest.mark.parametrize("fusion", ["gated", "xattn", "interaction"])
def test_every_gate_gets_a_gradient_from_the_task_loss(task, fusion, batches, kg_dir):
    dm, batch = batches[task]
    layers = [0, 1] if (fusion, task) in REACHES_LAST else [0]
    model = _module(task, fusion, layers, kg_dir, dm)
    model.configure_model()
    assert (batch["token_node"] >= 0).any()
    model._step(batch, "val").backward()  # the real loss (val: no step-level logging needed)
    for i in layers:
        grad = model.model.backbone.encoder.layer[i].kg_gate.grad
        assert grad is not None and grad.abs().sum() > 0, f"layer {i} gate got no gradient"


@pytest.mark.parametrize("task", list(TASK_DATA))
@pytest.mark.parametrize("fusion", ["gated", "interaction"])
def test_dead_last_layer_is_refused(task, fusion, batches, kg_dir):
    if (fusion, task) in REACHES_LAST:
        pytest.skip("this block reaches this head from the last layer")
    model = _module(task, fusion, [0, -1], kg_dir, batches[task][0])
    with pytest.raises(ValueError, match="cannot change what the head reads"):
        model.configure_model()


def test_fusion_stats_report_gates_and_linked_share(batches, kg_dir):
    dm, batch = batches["rel_cls"]
    model = _module("rel_cls", "gated", [0], kg_dir, dm)
    model.configure_model()
    with torch.no_grad():
        model.model.backbone.encoder.layer[0].kg_gate.fill_(0.5)
    stats = model.model.fusion_stats(batch["token_node"], batch["attention_mask"])
    assert stats["fusion/gate_norm_layer0"] == pytest.approx(0.5 * 32 ** 0.5)
    share = float((batch["token_node"] >= 0).sum() / batch["attention_mask"].sum())
    assert 0 < share < 1 and float(stats["fusion/linked_share"]) == pytest.approx(share)
