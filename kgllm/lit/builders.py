"""Build the pieces a fused LightningModule is configured with: graph encoder, LoRA adapters."""

from __future__ import annotations

import logging
from pathlib import Path

from torch import nn

from kgllm.nn.checkpoints import kg_keys
from kgllm.util.errors import KGFormatError
from kgllm.nn.graph_encoder import PrecomputedEncoder, RelGATEncoder

log = logging.getLogger(__name__)


def _exported_for(folder: str, kg_dir: str) -> dict:
    from kgllm.nn.exported import load_exported

    blob = load_exported(folder)
    if blob["entities"] != kg_keys(kg_dir)["entities"]:
        raise KGFormatError(f"{folder}: its entities are not those of {kg_dir}; train link prediction with "
                            f"data.dataset=kg and data.kg_dir={kg_dir}")
    return blob


def load_graph_encoder(encoder: RelGATEncoder, folder: str, kg_dir: str) -> None:
    """Load a link-prediction-trained encoder exported for the same KG (entity keys must match)."""
    blob = _exported_for(folder, kg_dir)
    own = encoder.state_dict()
    loaded = {k: v for k, v in blob["encoder"].items() if k in own and own[k].shape == v.shape}
    if len(loaded) != len(own):
        missing = sorted(set(own) - set(loaded))
        raise KGFormatError(f"{folder}: encoder shapes differ from this model's (gnn_hidden, gnn_layers, gnn_heads "
                            f"must match the exported ones); unmatched: {missing[:4]}")
    encoder.load_state_dict(loaded)
    log.info("graph encoder initialised from %s", folder)


def entity_labels(kg_dir: str) -> list[str]:
    """Each entity's label, in id order (the KG folder's ``entities.tsv``)."""
    from kgllm.kg.graph.folder import read_tsv

    return [row[2] for row in read_tsv(Path(kg_dir) / "entities.tsv", 7)]


def entity_texts(kg_dir: str) -> list[str]:
    """Every entity's text (label, type and description) of the KG at ``kg_dir``, for text node features."""
    from kgllm.kg.graph.folder import entity_texts as texts
    from kgllm.kg.graph.store import KnowledgeGraph

    return texts(KnowledgeGraph.load(kg_dir))


def build_graph_encoder(hp, kg_meta: dict, word_dim: int | None = None) -> nn.Module:
    """The graph encoder a fused model's hyper-parameters ask for (see ``KGLitModule``);
    ``word_dim``: the backbone's word-embedding width (``node_features="lm"``)."""
    counts = kg_meta.get("counts", {})
    if "entities" not in counts:
        raise KGFormatError(f"{hp.kg_dir}: meta.json has no entity counts; fusion needs a built KG")
    if hp.graph_encoder == "precomputed":
        if not hp.node_embeddings_from:
            raise KGFormatError("graph_encoder=precomputed needs node_embeddings_from (an exported folder)")
        blob = _exported_for(hp.node_embeddings_from, hp.kg_dir)
        return PrecomputedEncoder(blob["embeddings"], hp.gnn_hidden, counts["relations"])
    if hp.graph_encoder != "gat":
        raise KGFormatError(f"graph_encoder must be 'gat' or 'precomputed', got {hp.graph_encoder!r}")
    text = None
    if hp.node_features in ("text", "text_norm", "both"):
        from kgllm.nn.text_features import encode_texts

        text = encode_texts(entity_texts(hp.kg_dir), "minilm" if hp.backbone == "tiny" else hp.backbone)
    encoder = RelGATEncoder(counts["entities"], counts["relations"], hp.gnn_hidden, hp.gnn_layers, hp.gnn_heads,
                            hp.gnn_dropout, node_features=hp.node_features,
                            text_dim=text.size(1) if text is not None else word_dim)
    if text is not None:
        encoder.set_text_features(text)
    if hp.graph_encoder_from:
        load_graph_encoder(encoder, hp.graph_encoder_from, hp.kg_dir)
    return encoder


#: parameter-efficient fine-tuning methods (``--model.peft``): the backbone is frozen, these train
PEFT_METHODS = ("none", "lora", "ia3", "adapter")
#: names of the parameters the PEFT methods add (trainable while the backbone is frozen)
PEFT_MARKERS = ("lora_", "ia3_", "adapter_")
#: IA3 (Liu et al. 2022) on BERT: rescale keys, values and the FFN's inner activations (the input of
#: each layer's ``output.dense``); ``(base_layer.)?`` also matches layers wrapped for fusion
IA3_TARGETS = r".*layer\.\d+\.(base_layer\.)?(attention\.self\.(key|value)|output\.dense)$"
IA3_FEEDFORWARD = r".*layer\.\d+\.(base_layer\.)?output\.dense$"


def apply_peft(backbone: nn.Module, method: str, r: int = 8, alpha: int = 16) -> None:
    """Add the parameters of a PEFT method to ``backbone`` in place (each starts as the identity, so
    the adapted model starts as the original): ``lora`` (rank ``r``, scale ``alpha``) and ``ia3``
    through peft; ``adapter``, Houlsby bottleneck adapters of size ``r`` (:class:`BottleneckAdapter`)."""
    if method == "lora":
        apply_lora(backbone, r, alpha)
    elif method == "ia3":
        from peft import IA3Config, inject_adapter_in_model

        inject_adapter_in_model(IA3Config(target_modules=IA3_TARGETS, feedforward_modules=IA3_FEEDFORWARD), backbone)
    elif method == "adapter":
        for layer in backbone.encoder.layer:
            inner = getattr(layer, "base_layer", layer)  # a layer wrapped for fusion
            for block in (inner.attention.output, inner.output):
                block.dense = BottleneckAdapter(block.dense, r)
    elif method != "none":
        raise ValueError(f"unknown PEFT method {method!r}; choose one of {PEFT_METHODS}")


class BottleneckAdapter(nn.Module):
    """Houlsby et al. (2019) bottleneck adapter after a sub-layer's output projection:
    ``y = base(x); y + up(gelu(down(y)))``, ``up`` zero-initialised. Hand-written because peft has
    no bottleneck adapter; it wraps the projection as kgllm's fusion wrappers wrap layers, and its
    ``base_layer`` name lets checkpoints of the plain backbone load by canonical key.

    Shapes: input :math:`(*, H_{in})`, output :math:`(*, H)`.
    """

    def __init__(self, base_layer: nn.Linear, size: int) -> None:
        super().__init__()
        self.base_layer = base_layer
        hidden = base_layer.out_features
        self.adapter_down = nn.Linear(hidden, size)
        self.adapter_up = nn.Linear(size, hidden)
        nn.init.zeros_(self.adapter_up.weight)
        nn.init.zeros_(self.adapter_up.bias)

    def forward(self, x):
        from torch.nn import functional as F

        y = self.base_layer(x)
        return y + self.adapter_up(F.gelu(self.adapter_down(y)))


def apply_lora(backbone: nn.Module, r: int, alpha: int, dropout: float = 0.1) -> None:
    """Insert LoRA adapters (peft) into the attention query/value projections, in place.

    LoRA's B matrices start at zero, so the adapted model starts as the original.
    """
    from peft import LoraConfig, inject_adapter_in_model

    inject_adapter_in_model(LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout,
                                       target_modules=["query", "value"]), backbone)
