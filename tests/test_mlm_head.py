"""The shipped MiniLM MLM head loads, beats a fresh head on text it never saw, and refuses wrong shapes."""

import pytest
import torch
from transformers import BertConfig, BertForMaskedLM

from kgllm.util.errors import KGLLMError
from kgllm.nn.mlm_head import HEAD_KEYS, load_head, packaged_head
from kgllm.workflows.prepare_backbone import accuracy, masked_states


def test_head_round_trip_and_shape_check(tmp_path):
    from safetensors.torch import save_file

    cfg = dict(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    a, b = BertForMaskedLM(BertConfig(**cfg)), BertForMaskedLM(BertConfig(**cfg))
    save_file({k: a.state_dict()[k].contiguous() for k in HEAD_KEYS}, str(tmp_path / "h.safetensors"))
    assert load_head(b, tmp_path / "h.safetensors")
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in HEAD_KEYS)
    other = BertForMaskedLM(BertConfig(**{**cfg, "hidden_size": 32}))
    with pytest.raises(KGLLMError, match="not an MLM head for this backbone"):
        load_head(other, tmp_path / "h.safetensors")


@pytest.mark.skipif(packaged_head() is None, reason="no head shipped (run `kgllm prepare-backbone`)")
def test_shipped_head_beats_a_fresh_one_on_unseen_text(kg_dir):
    from kgllm.lit import MLMModule
    from kgllm.nn.backbone import load_tokenizer

    texts = ["The Eiffel Tower is a wrought-iron lattice tower in Paris , France .",
             "Angela Merkel served as chancellor of Germany from 2005 to 2021 .",
             "The river flows through the city before it reaches the sea ."] * 4
    heads = {}
    for fresh in (False, True):
        m = MLMModule(backbone="minilm", kg_dir=str(kg_dir), fusion="none", fresh_mlm_head=fresh)
        m.configure_model()
        heads[fresh] = m.model.hf
    states, targets = masked_states(heads[False].bert.eval(), load_tokenizer("minilm"), texts, seed=3)
    trained, fresh = accuracy(heads[False].cls, states, targets), accuracy(heads[True].cls, states, targets)
    assert len(targets) >= 10 and trained >= fresh + 0.2, (trained, fresh)
