"""The Python API as it stands: ``ClassifierModule()`` with every default trains (gated fusion at
the layer below the last, which reaches the ``[CLS]`` head), and its fusion parameters get a
gradient from the task loss."""

import csv


def test_classifier_module_defaults_train(tmp_path, kg_dir):
    import lightning as L
    import torch

    from kgllm import ClassifierModule, KGDataModule

    rows = [("Angela Merkel met Emmanuel Macron in Berlin", "world"), ("Microsoft shares rose", "business"),
            ("Barack Obama visits Honolulu", "world"), ("Markets in Paris fall", "business")] * 2
    with open(tmp_path / "t.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        w.writerows(rows)
    dm = KGDataModule("hf", str(kg_dir), backbone="tiny", max_length=32, batch_size=4,
                      dataset_args={"source": str(tmp_path / "t.csv"), "task": "seq_cls", "split_fraction": 0.25})
    grads = {}

    class Record(L.Callback):
        def on_after_backward(self, trainer, module):
            grads.update({n: p.grad.detach().clone() for n, p in module.named_parameters() if p.grad is not None})

    model = ClassifierModule()
    trainer = L.Trainer(max_steps=1, callbacks=[Record()], accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(tmp_path))
    trainer.fit(model, dm)
    n = len(model.model.bert.encoder.layer) if hasattr(model.model, "bert") else None
    assert model.model.fusion_layers and all(i < (n or 99) - 1 for i in model.model.fusion_layers)
    fused = [name for name, p in model.named_parameters() if "kg_" in name and p.requires_grad]
    assert fused and all(name in grads for name in fused)  # every fusion parameter, from the task loss
    assert any(grads[name].abs().sum() > 0 for name in fused)
    assert all(torch.isfinite(grads[name]).all() for name in fused)


def test_module_signatures_are_typed_and_hide_no_options():
    """Every option of the modules is in its signature, typed, with no ``*args``/``**kwargs`` to hide
    one; the subclasses repeat KGLitModule's options with the same types and defaults."""
    import inspect

    from kgllm import ClassifierModule, DocREModule, MLMModule
    from kgllm.lit.base import KGLitModule

    shared = inspect.signature(KGLitModule.__init__).parameters
    for cls in (KGLitModule, MLMModule, ClassifierModule, DocREModule):
        params = inspect.signature(cls.__init__).parameters
        assert not [p for p in params.values() if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)], cls
        assert all(p.annotation is not p.empty for name, p in params.items() if name != "self"), cls
        for name, p in shared.items():
            assert params[name].default == p.default and params[name].annotation == p.annotation, (cls, name)
    assert DocREModule(backbone="tiny").hparams.task == "docre" and ClassifierModule().hparams.task is None
