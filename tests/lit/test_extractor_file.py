"""The compact learned extractor: ``kgllm prepare-extractor`` trains it with no KG and writes one
small file that scores like its checkpoint, loads only over the backbone it was trained over,
never chooses code, and is what ``--extractor learned`` reads by default."""

from __future__ import annotations

import json

import pytest
import torch

from kgllm.util.errors import ConfigError, KGLLMError
from tests.conftest import FIXTURE_DATASET_ARGS


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, data_dir):
    """A tiny-backbone extractor trained by the command on the fixture documents (2 epochs)."""
    import os

    from kgllm.cli import main

    root = tmp_path_factory.mktemp("prepared")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        assert main(["prepare-extractor", "--out", "ex.safetensors", "--runs", "runs", "--",
                     "--data.init_args.backbone", "tiny", "--data.init_args.data_dir", str(data_dir),
                     "--data.init_args.dataset_args", json.dumps(FIXTURE_DATASET_ARGS["redocred_docre"]),
                     "--trainer.max_epochs", "2", "--trainer.precision", "32-true",
                     "--trainer.enable_progress_bar", "false"]) == 0
    finally:
        os.chdir(cwd)
    (ckpt,) = root.glob("runs/extractor_minilm/*/checkpoints/best.ckpt")
    return root / "ex.safetensors", ckpt


def _scores(re_model: str, text: str):
    from kgllm.kg.extraction.config import ExtractConfig
    from kgllm.kg.extraction.extract import load_pipeline, prepare_doc
    from kgllm.lit.learned_extractor import LearnedExtractor

    ex = LearnedExtractor(ExtractConfig(extractor="learned", re_model=re_model))
    _, mdoc = prepare_doc(load_pipeline()(text), "d", ex.cfg)
    (scored,) = ex.score_batch([mdoc])
    return ex, scored[-1]


def test_prepare_extractor_writes_a_small_file_that_scores_like_its_checkpoint(prepared, redocred_file, capsys):
    from kgllm.lit.extractor_file import FORMAT, read_extractor_meta
    from kgllm.workflows.eval_re import evaluate

    path, ckpt = prepared
    meta = read_extractor_meta(path)
    assert meta["format"] == FORMAT and len(meta["label_names"]) == 96 and "kg_dir" not in meta["hparams"]
    made = meta["made_from"]
    assert made["epochs"] == 2 and set(made["test"]) >= {"f1", "ign_f1"} and made["recipe"] == "extractor_minilm.yaml"
    assert made["datamodule"]["dataset_args"]["train_docs"] == "0:4"
    assert meta["holds_backbone"]  # the random test backbone cannot be rebuilt from its name
    assert path.stat().st_size < ckpt.stat().st_size / 1.5  # float16
    doc = json.loads(redocred_file.read_text())[4]
    text = " ".join(tok for sent in doc["sents"] for tok in sent)
    from_file, file_logits = _scores(str(path), text)
    from_ckpt, ckpt_logits = _scores(str(ckpt), text)
    assert from_file.relations == from_ckpt.relations and file_logits.shape == ckpt_logits.shape
    assert torch.allclose(file_logits, ckpt_logits, atol=0.05), (file_logits - ckpt_logits).abs().max()
    assert from_file.meta()["model"]["fusion"] == "none"
    # eval-re scores the file like a checkpoint; its training documents come from the file
    result = evaluate(str(path), f"redocred:{redocred_file}", docs="4:6", progress=False)
    assert result["documents"] == 2 and result["train_docs"] == "0:4"


def test_extractor_file_is_never_overwritten_and_refuses_tampering(prepared, tmp_path, capsys):
    from safetensors import safe_open
    from safetensors.torch import save_file

    from kgllm.cli import main
    from kgllm.lit import DocREModule
    from kgllm.lit.extractor_file import load_extractor_file

    path, ckpt = prepared
    before = path.read_bytes()
    assert main(["prepare-extractor", "--out", str(path), "--from-checkpoint", str(ckpt)]) == 2
    assert "ex.safetensors: exists; kgllm does not overwrite it" in capsys.readouterr().err
    assert path.read_bytes() == before
    with pytest.raises(SystemExit):
        main(["prepare-extractor", "--out", str(tmp_path / "x.ckpt"), "--from-checkpoint", str(ckpt)])
    assert not (tmp_path / "x.ckpt").exists()
    with safe_open(str(path), framework="pt") as f:
        meta, tensors = json.loads(f.metadata()["kgllm"]), {k: f.get_tensor(k) for k in f.keys()}

    def write(name, meta_, tensors_=tensors):
        out = tmp_path / name
        save_file(tensors_, str(out), metadata={"kgllm": json.dumps(meta_)})
        return out

    code = {**meta, "hparams": {**meta["hparams"], "task_args": {"class_path": "os.system"}}}
    with pytest.raises(KGLLMError, match="names code to load"):
        load_extractor_file(write("code.safetensors", code), DocREModule)
    other = {**meta, "backbone_fingerprint": "0" * 16, "holds_backbone": False}
    trainable = {k: v for k, v in tensors.items() if "lora_" in k or not k.startswith("model.")}
    with pytest.raises(KGLLMError, match="trained over another 'tiny' backbone"):
        load_extractor_file(write("other.safetensors", other, trainable), DocREModule)
    fewer = dict(list(tensors.items())[1:])
    with pytest.raises(KGLLMError, match="do not match the model's trainable weights"):
        load_extractor_file(write("fewer.safetensors", meta, fewer), DocREModule)
    unknown = {**meta, "hparams": {**meta["hparams"], "new_option": 1}}
    with pytest.raises(KGLLMError, match="does not know"):
        load_extractor_file(write("unknown.safetensors", unknown), DocREModule)
    (tmp_path / "junk.safetensors").write_bytes(b"not a file")
    with pytest.raises(KGLLMError, match="junk.safetensors: not a safetensors file"):
        load_extractor_file(tmp_path / "junk.safetensors", DocREModule)
    save_file(tensors, str(tmp_path / "plain.safetensors"))
    with pytest.raises(KGLLMError, match="not a kgllm extractor file"):
        load_extractor_file(tmp_path / "plain.safetensors", DocREModule)


def test_learned_extractor_reads_the_shipped_file_without_re_model(prepared, monkeypatch, tmp_path):
    import kgllm.lit.extractor_file as extractor_file
    from kgllm.kg.extraction.config import ExtractConfig
    from kgllm.lit.learned_extractor import LearnedExtractor
    from kgllm.util.io import sha256_file

    path, _ = prepared
    monkeypatch.setattr(extractor_file, "SHIPPED", path)
    ex = LearnedExtractor(ExtractConfig(extractor="learned"))
    assert ex.sha256 == sha256_file(path)
    monkeypatch.setattr(extractor_file, "SHIPPED", tmp_path / "absent.safetensors")
    with pytest.raises(ConfigError, match="needs --re-model"):
        LearnedExtractor(ExtractConfig(extractor="learned"))


def test_a_model_without_a_kg_folder_trains_only_if_it_reads_no_graph(data_dir):
    from kgllm.data import KGDataModule
    from kgllm.lit import DocREModule

    dm = KGDataModule("redocred_docre", None, backbone="tiny", data_dir=str(data_dir),
                      dataset_args=FIXTURE_DATASET_ARGS["redocred_docre"])
    dm.setup("fit")
    assert dm.kg_path is None and len(dm.kg.entities) == 0
    model = DocREModule(fusion="gated", kg_dir=None, backbone="tiny", num_labels=96, vocab_size=dm.spec().vocab_size)
    with pytest.raises(ConfigError, match="fusion 'gated' reads a graph, but no KG folder is set"):
        model.configure_model()
