import math

import pytest
import torch

from kgllm.nn.decoders import DECODERS, RotatE, TransE, build_decoder


@pytest.mark.parametrize("name", sorted(DECODERS))
def test_shapes_and_pairs(name):
    torch.manual_seed(0)
    dec = build_decoder(name, num_relations=3, dim=8)
    h, cand = torch.randn(4, 8), torch.randn(10, 8)
    r = torch.tensor([0, 1, 5, 2])  # ids up to 2R-1 (reciprocal relations)
    s = dec.score(h, r, cand)
    assert s.shape == (4, 10)
    assert torch.allclose(dec.score_pairs(h, r, cand[:4]), torch.diagonal(s[:, :4]), atol=1e-5)


def test_distance_decoders_match_their_formulas():
    torch.manual_seed(0)
    h, t = torch.randn(2, 6), torch.randn(3, 6)
    r = torch.tensor([0, 1])
    te = TransE(2, 6, gamma=5.0)
    direct = 5.0 - ((h + te.rel(r)).unsqueeze(1) - t.unsqueeze(0)).pow(2).sum(-1)
    assert torch.allclose(te.score(h, r, t), direct, atol=1e-4)
    ro = RotatE(2, 6, gamma=5.0)
    phase = ro.rel(r)
    hc = torch.complex(h[:, :3], h[:, 3:]) * torch.exp(1j * phase)
    tc = torch.complex(t[:, :3], t[:, 3:])
    direct = 5.0 - (hc.unsqueeze(1) - tc.unsqueeze(0)).abs().pow(2).sum(-1)
    assert torch.allclose(ro.score(h, r, t), direct, atol=1e-4)
    assert ro.rel.weight.abs().max() <= math.pi


def test_bad_decoder_settings():
    with pytest.raises(ValueError, match="unknown decoder"):
        build_decoder("holE", 2, 4)
    with pytest.raises(ValueError, match="even"):
        RotatE(2, 5)
