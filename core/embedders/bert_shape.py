"""The sizes of a BERT encoder (`core.embedders.minilm` reads them, `core.embedders.bert_layers`
builds layers of them); no Keras here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.errors import WeightsUnavailableError


@dataclass(frozen=True)
class BertShape:
    """The sizes of a BERT encoder (from its ``config.json``)."""

    vocab: int = 30522
    hidden: int = 384
    layers: int = 6
    heads: int = 12
    intermediate: int = 1536
    positions: int = 512
    token_types: int = 2
    epsilon: float = 1e-12

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> BertShape:
        if config.get("hidden_act", "gelu") != "gelu":
            raise WeightsUnavailableError(f"unexpected activation {config['hidden_act']!r}")
        return cls(
            config["vocab_size"],
            config["hidden_size"],
            config["num_hidden_layers"],
            config["num_attention_heads"],
            config["intermediate_size"],
            config["max_position_embeddings"],
            config["type_vocab_size"],
            config["layer_norm_eps"],
        )
