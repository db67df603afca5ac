"""Configuration of hubheads' own implementation of the "new" encoder, the architecture of gte-multilingual-base.

gte-multilingual-base and its fine-tunes (the reclamation detectors among them) store `model_type: "new"` and load
through remote code in another repo, `Alibaba-NLP/new-impl`. That code keeps its rotary caches and position ids as
non-persistent buffers filled in `__init__`, which transformers 5 leaves uninitialised when it loads a model, so it
crashes or gives NaN on every 5.x release. hubheads exports such a checkpoint with this implementation instead
(`model_type: "new_gte"`, the same weights under the same names), written from the public description of the
architecture, and tested on every transformers release hubheads supports.

This file is copied verbatim into exported Hub repos: it imports only the standard library and transformers.
"""

import math
from collections.abc import Mapping
from typing import Any, Optional

from transformers import PretrainedConfig

#: Keys of the "new" format that select code paths of the original implementation, and the one value this
#: implementation (like transformers' native `gte`) implements; `None`: an execution option with the same arithmetic
#: either way (unpadded batches, xformers attention), accepted and ignored.
NEW_FORMAT_PATHS = {
    "position_embedding_type": "rope",
    "pack_qkv": True,
    "layer_norm_type": "layer_norm",
    "logn_attention_scale": False,
    "logn_attention_clip1": False,
    "unpad_inputs": None,
    "use_memory_efficient_attention": None,
}


def rotary_base(rope_theta: Any, rope_scaling: Any, head_dim: int) -> float:
    """The rotary base the "new" code computes: `rope_theta`, raised by a fixed-NTK `rope_scaling`
    (`{"type": "ntk", "factor": f}`) to `rope_theta * f ** (head_dim / (head_dim - 2))`; any other scaling is a
    `ValueError` naming the key."""
    if isinstance(rope_theta, bool) or not isinstance(rope_theta, (int, float)) or not rope_theta > 0:
        raise ValueError(f"`rope_theta` must be a positive number, got {rope_theta!r}.")
    base = float(rope_theta)
    if not rope_scaling:
        return base
    if not isinstance(rope_scaling, Mapping) or rope_scaling.get("type", rope_scaling.get("rope_type")) != "ntk":
        raise ValueError(
            f"`rope_scaling` {rope_scaling!r} is not a fixed-NTK scaling (`{{'type': 'ntk', 'factor': f}}`), the only "
            'kind the "new" architecture implements here.'
        )
    factor = rope_scaling.get("factor")
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not math.isfinite(factor) or factor <= 0:
        raise ValueError(f"`rope_scaling['factor']` must be a positive number, got {factor!r}.")
    return base * float(factor) ** (head_dim / (head_dim - 2))


class NewGteConfig(PretrainedConfig):
    """Configuration of [`NewGteModel`] and [`NewGteForSequenceClassification`]: a BERT-shaped, post-LayerNorm
    encoder with rotary positions, packed query/key/value projections and a gated MLP.

    Args:
        vocab_size (`int`, *optional*, defaults to 250048): the vocabulary size.
        hidden_size (`int`, *optional*, defaults to 768): the width of every layer.
        num_hidden_layers (`int`, *optional*, defaults to 12): the number of layers.
        num_attention_heads (`int`, *optional*, defaults to 12): heads per attention layer; divides `hidden_size`.
        intermediate_size (`int`, *optional*, defaults to 3072): the width of each gated MLP half.
        hidden_act (`str`, *optional*, defaults to `"gelu"`): the MLP's gate activation.
        hidden_dropout_prob (`float`, *optional*, defaults to 0.1): dropout on embeddings, MLP and residual branches.
        attention_probs_dropout_prob (`float`, *optional*, defaults to 0.0): dropout on attention weights.
        max_position_embeddings (`int`, *optional*, defaults to 8192): the longest input the model was trained for.
        type_vocab_size (`int`, *optional*, defaults to 1): token type ids; 0 for none.
        initializer_range (`float`, *optional*, defaults to 0.02): the std of the normal initialiser.
        layer_norm_eps (`float`, *optional*, defaults to 1e-12): LayerNorm's epsilon.
        rope_theta (`float`, *optional*, defaults to 160000.0): the rotary base.
        rope_scaling (`dict`, *optional*): a fixed-NTK scaling as the "new" format stores it; folded into
            `rope_theta` here, so the saved config holds the base the model uses and no `rope_scaling`.
        classifier_dropout (`float`, *optional*): dropout before the classifier; `hidden_dropout_prob` when `None`.

    The "new" format's code-path keys (`NEW_FORMAT_PATHS`) are accepted when they select what this implementation
    computes, and refused (a `ValueError` naming the key) otherwise.
    """

    model_type = "new_gte"

    def __init__(
        self,
        vocab_size: int = 250048,
        hidden_size: int = 768,
        num_hidden_layers: int = 12,
        num_attention_heads: int = 12,
        intermediate_size: int = 3072,
        hidden_act: str = "gelu",
        hidden_dropout_prob: float = 0.1,
        attention_probs_dropout_prob: float = 0.0,
        max_position_embeddings: int = 8192,
        type_vocab_size: int = 1,
        initializer_range: float = 0.02,
        layer_norm_eps: float = 1e-12,
        rope_theta: float = 160000.0,
        rope_scaling: Optional[dict] = None,
        classifier_dropout: Optional[float] = None,
        **kwargs,
    ):
        for key, supported in NEW_FORMAT_PATHS.items():
            value = kwargs.pop(key, supported)
            if supported is not None and value != supported:
                raise ValueError(
                    f'`{key}` is {value!r}, but the "new" architecture is implemented here for {supported!r} only; '
                    "this checkpoint can only run through its original remote code."
                )
        if hidden_size % num_attention_heads:
            raise ValueError(
                f"`hidden_size` ({hidden_size}) must be a multiple of `num_attention_heads` ({num_attention_heads})."
            )
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.initializer_range = initializer_range
        self.layer_norm_eps = layer_norm_eps
        self.rope_theta = rotary_base(rope_theta, rope_scaling, hidden_size // num_attention_heads)
        self.classifier_dropout = classifier_dropout
        super().__init__(**kwargs)


__all__ = ["NEW_FORMAT_PATHS", "NewGteConfig", "rotary_base"]
