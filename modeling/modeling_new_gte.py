"""hubheads' implementation of the "new" encoder (gte-multilingual-base), written from the public description of the
architecture, with the weight names of the original checkpoints, so a fine-tune's safetensors load unchanged.

Embeddings: word (+ token type) embeddings, LayerNorm, dropout; positions enter only through rotary embeddings of the
queries and keys. Each layer is post-LN: packed `qkv_proj`, scaled dot-product attention, `o_proj`, residual and
`attn_ln`; then a gated MLP (`up_gate_proj` split into up and gate halves, `act(gate) * up`, dropout, `down_proj`),
residual and `mlp_ln`. The pooler is dense + tanh on the first token; the classifier reads the pooled vector.

The model keeps no buffers: the rotary angles are computed in `forward` from the config. transformers 5 builds models
on the meta device and refills non-persistent buffers with uninitialised memory unless `_init_weights` restores them;
the original code's buffers are lost that way, and a model without any cannot be.

This file is copied verbatim into exported Hub repos: it imports only the standard library, torch and transformers.
"""

from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModel, PreTrainedModel
from transformers.activations import ACT2FN
from transformers.modeling_outputs import BaseModelOutputWithPooling, SequenceClassifierOutput

from .configuration_new_gte import NewGteConfig
from .modeling_hubheads import classification_loss


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


def rotary_angles(base: float, head_dim: int, seq_len: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The cos and sin of every position's rotary angles (rotary base `base`), `(seq_len, head_dim)` each, in
    float32."""
    exponents = torch.arange(0, head_dim, 2, dtype=torch.float32, device=device) / head_dim
    inv_freq = 1.0 / (base**exponents)  # (head_dim / 2,)
    freqs = torch.outer(torch.arange(seq_len, dtype=torch.float32, device=device), inv_freq)  # (seq, head_dim / 2)
    angles = torch.cat((freqs, freqs), dim=-1)  # (seq, head_dim)
    return angles.cos(), angles.sin()


class NewGteEmbeddings(nn.Module):
    def __init__(self, config: NewGteConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.token_type_embeddings = (
            nn.Embedding(config.type_vocab_size, config.hidden_size) if config.type_vocab_size > 0 else None
        )
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: torch.Tensor, token_type_ids: Optional[torch.Tensor] = None) -> torch.Tensor:
        embeddings = self.word_embeddings(input_ids)  # (batch, seq, hidden)
        if self.token_type_embeddings is not None:
            if token_type_ids is None:
                token_type_ids = torch.zeros_like(input_ids)
            embeddings = embeddings + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(embeddings))


class NewGteAttention(nn.Module):
    def __init__(self, config: NewGteConfig):
        super().__init__()
        self.heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.dropout = config.attention_probs_dropout_prob
        self.qkv_proj = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.o_proj = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        batch, seq, _ = hidden.shape
        q, k, v = (
            t.view(batch, seq, self.heads, self.head_dim).transpose(1, 2)  # (batch, heads, seq, head_dim)
            for t in self.qkv_proj(hidden).chunk(3, dim=-1)
        )
        cos, sin = cos.to(q.dtype), sin.to(q.dtype)
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        dropout = self.dropout if self.training else 0.0
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        return self.o_proj(context.transpose(1, 2).reshape(batch, seq, -1))


class NewGteMLP(nn.Module):
    def __init__(self, config: NewGteConfig):
        super().__init__()
        self.intermediate_size = config.intermediate_size
        self.up_gate_proj = nn.Linear(config.hidden_size, 2 * config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size)
        self.act_fn = ACT2FN[config.hidden_act]
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        up, gate = self.up_gate_proj(hidden).split(self.intermediate_size, dim=-1)
        return self.down_proj(self.dropout(self.act_fn(gate) * up))


class NewGteLayer(nn.Module):
    def __init__(self, config: NewGteConfig):
        super().__init__()
        self.attention = NewGteAttention(config)
        self.mlp = NewGteMLP(config)
        self.attn_ln = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp_ln = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.hidden_dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        hidden = self.attn_ln(hidden + self.hidden_dropout(self.attention(hidden, mask, cos, sin)))
        return self.mlp_ln(hidden + self.hidden_dropout(self.mlp(hidden)))


class NewGteEncoder(nn.Module):
    def __init__(self, config: NewGteConfig):
        super().__init__()
        self.layer = nn.ModuleList(NewGteLayer(config) for _ in range(config.num_hidden_layers))
        self.gradient_checkpointing = False

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        for layer in self.layer:
            if self.gradient_checkpointing and self.training:
                hidden = torch.utils.checkpoint.checkpoint(layer, hidden, mask, cos, sin, use_reentrant=False)
            else:
                hidden = layer(hidden, mask, cos, sin)
        return hidden


class NewGtePooler(nn.Module):
    def __init__(self, config: NewGteConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(hidden[:, 0]))  # (batch, hidden)


class NewGtePreTrainedModel(PreTrainedModel):
    """Sets the config class, the weight prefix of the original checkpoints (`new.`) and the initialisers."""

    config_class = NewGteConfig
    base_model_prefix = "new"
    supports_gradient_checkpointing = True
    _supports_sdpa = True

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=self.config.initializer_range)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
        if isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


class NewGteModel(NewGtePreTrainedModel):
    """The bare encoder: `last_hidden_state`, and `pooler_output` when built with a pooler.

    Args:
        config ([`NewGteConfig`]): the encoder's configuration.
        add_pooling_layer (`bool`, *optional*, defaults to `False`): build the dense + tanh pooler.
    """

    def __init__(self, config: NewGteConfig, add_pooling_layer: bool = False):
        super().__init__(config)
        self.embeddings = NewGteEmbeddings(config)
        self.encoder = NewGteEncoder(config)
        self.pooler = NewGtePooler(config) if add_pooling_layer else None
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.embeddings.word_embeddings = value  # type: ignore[assignment]

    def forward(
        self,
        input_ids: Optional[torch.Tensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        token_type_ids: Optional[torch.Tensor] = None,
        return_dict: Optional[bool] = None,
        **kwargs,
    ) -> BaseModelOutputWithPooling:
        if input_ids is None:
            raise ValueError("NewGteModel needs `input_ids`.")
        hidden = self.embeddings(input_ids, token_type_ids)  # (batch, seq, hidden)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        # 0 where a key is a real token, the dtype's minimum where it is padding: (batch, 1, 1, seq)
        mask = (1.0 - attention_mask[:, None, None, :].to(hidden.dtype)) * torch.finfo(hidden.dtype).min
        head_dim = self.config.hidden_size // self.config.num_attention_heads
        cos, sin = rotary_angles(self.config.rope_theta, head_dim, input_ids.shape[1], hidden.device)
        hidden = self.encoder(hidden, mask, cos, sin)
        pooled = self.pooler(hidden) if self.pooler is not None else None
        return BaseModelOutputWithPooling(last_hidden_state=hidden, pooler_output=pooled)


class NewGteForSequenceClassification(NewGtePreTrainedModel):
    """The encoder, its pooler and a linear classifier on the pooled first token, as gte-multilingual-base's
    sequence classifiers are built; the loss follows `config.problem_type`."""

    def __init__(self, config: NewGteConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.new = NewGteModel(config, add_pooling_layer=True)
        dropout = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(config.hidden_size, int(config.num_labels or 2))
        self.post_init()

    def forward(
        self,
        input_ids: Optional[torch.Tensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        token_type_ids: Optional[torch.Tensor] = None,
        labels: Optional[torch.Tensor] = None,
        return_dict: Optional[bool] = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        pooled = self.new(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).pooler_output
        logits = self.classifier(self.dropout(pooled))  # (batch, num_labels)
        loss = None
        if labels is not None:
            loss = classification_loss(logits, labels, self.config.problem_type)
        return SequenceClassifierOutput(loss=loss, logits=logits)


def encoder_from_config(config: Any) -> PreTrainedModel:
    """The encoder a hubheads architecture wraps, built from its `backbone_config`: `AutoModel.from_config`, except
    for a `new_gte` config, whose classes no transformers release ships (this file is their source)."""
    if isinstance(config, NewGteConfig) or getattr(config, "model_type", None) == NewGteConfig.model_type:
        return NewGteModel(config)
    return AutoModel.from_config(config)


__all__ = [
    "NewGteForSequenceClassification",
    "encoder_from_config",
    "NewGteModel",
    "NewGtePreTrainedModel",
    "rotary_angles",
]
