"""Plain ``torch.nn`` modules: graph encoder, fusion blocks, the fused BERT. No Lightning here."""
