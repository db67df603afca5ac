"""A "new"-format encoder (`NewModel`, `NewForSequenceClassification`), written for hubheads' tests from the public
description of the gte-multilingual-base architecture; see configuration.py.

Embeddings: word (+ token type) embeddings, LayerNorm, dropout; positions enter only through rotary embeddings of
queries and keys (base `rope_theta`; a fixed-NTK `rope_scaling` raises the base to
`rope_theta * factor ** (head_dim / (head_dim - 2))`). Each layer is post-LN: packed `qkv_proj`, scaled dot-product
attention, `o_proj`, residual + `attn_ln`; then a gated MLP (`up_gate_proj` split into up and gate halves,
`act(gate) * up`, dropout, `down_proj`), residual + `mlp_ln`. The pooler is dense + tanh on the first token; the
classifier is dropout + linear on the pooled vector.
"""

import math

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.activations import ACT2FN
from transformers.modeling_outputs import BaseModelOutputWithPooling, SequenceClassifierOutput

from .configuration import NewConfig


def _rotate_half(x):
    first, second = x.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


class NewRotaryEmbedding(nn.Module):
    """Rotary angles, precomputed for every position up to `max_position_embeddings`.

    As in the public code this stands in for, `inv_freq` and the cos/sin caches are non-persistent buffers computed in
    `__init__` and never restored by `_init_weights`: transformers 5 builds the model on the meta device and refills
    such buffers with uninitialised memory, so a load under 5.x gives garbage or NaN. Kept on purpose (tests see what
    consumers see).
    """

    def __init__(self, config):
        super().__init__()
        dim = config.hidden_size // config.num_attention_heads
        base = float(config.rope_theta)
        scaling = config.ntk_scaling or {}
        if scaling:
            if scaling.get("type") != "ntk":
                raise ValueError(f"this reference implements fixed NTK rope scaling only, got {scaling!r}")
            base = base * float(scaling["factor"]) ** (dim / (dim - 2))
        self.dim, self.base = dim, base
        self.register_buffer("inv_freq", self.compute_inv_freq(), persistent=False)
        self._set_cos_sin_cache(config.max_position_embeddings)

    def compute_inv_freq(self):
        return 1.0 / (self.base ** (torch.arange(0, self.dim, 2, dtype=torch.float32) / self.dim))

    def _set_cos_sin_cache(self, seq_len):
        positions = torch.arange(seq_len, dtype=torch.float32)
        freqs = torch.outer(positions, self.inv_freq)  # (seq, dim / 2)
        angles = torch.cat((freqs, freqs), dim=-1)  # (seq, dim)
        self.register_buffer("cos_cached", angles.cos(), persistent=False)
        self.register_buffer("sin_cached", angles.sin(), persistent=False)

    def forward(self, position_ids):
        return self.cos_cached[position_ids], self.sin_cached[position_ids]  # (seq, dim) each


class NewEmbeddings(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.token_type_embeddings = (
            nn.Embedding(config.type_vocab_size, config.hidden_size) if config.type_vocab_size > 0 else None
        )
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.rotary_emb = NewRotaryEmbedding(config)
        self.register_buffer("position_ids", torch.arange(config.max_position_embeddings), persistent=False)

    def forward(self, input_ids, token_type_ids=None):
        embeddings = self.word_embeddings(input_ids)
        if self.token_type_embeddings is not None:
            if token_type_ids is None:
                token_type_ids = torch.zeros_like(input_ids)
            embeddings = embeddings + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(embeddings))


class NewAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.qkv_proj = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.o_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def forward(self, hidden, additive_mask, cos, sin):
        batch, seq, _ = hidden.shape
        q, k, v = self.qkv_proj(hidden).chunk(3, dim=-1)
        q, k, v = (t.view(batch, seq, self.heads, self.head_dim).transpose(1, 2) for t in (q, k, v))
        q = q * cos + _rotate_half(q) * sin  # (batch, heads, seq, head_dim)
        k = k * cos + _rotate_half(k) * sin
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim) + additive_mask  # (batch, heads, seq, seq)
        context = self.dropout(scores.softmax(dim=-1)) @ v
        return self.o_proj(context.transpose(1, 2).reshape(batch, seq, -1))


class NewGatedMLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.intermediate_size = config.intermediate_size
        self.up_gate_proj = nn.Linear(config.hidden_size, 2 * config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size)
        self.act_fn = ACT2FN[config.hidden_act]
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden):
        up, gate = self.up_gate_proj(hidden).split(self.intermediate_size, dim=-1)
        return self.down_proj(self.dropout(self.act_fn(gate) * up))


class NewLayer(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.attention = NewAttention(config)
        self.mlp = NewGatedMLP(config)
        self.attn_ln = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp_ln = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.hidden_dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden, additive_mask, cos, sin):
        hidden = self.attn_ln(hidden + self.hidden_dropout(self.attention(hidden, additive_mask, cos, sin)))
        return self.mlp_ln(hidden + self.hidden_dropout(self.mlp(hidden)))


class NewEncoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.layer = nn.ModuleList(NewLayer(config) for _ in range(config.num_hidden_layers))


class NewPooler(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden):
        return torch.tanh(self.dense(hidden[:, 0]))


class NewPreTrainedModel(PreTrainedModel):
    config_class = NewConfig
    base_model_prefix = "new"

    def _init_weights(self, module):
        # Linear, Embedding and LayerNorm only, as in the public code: the rotary caches and `position_ids` are not
        # restored here (see NewRotaryEmbedding).
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=self.config.initializer_range)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
        if isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


class NewModel(NewPreTrainedModel):
    def __init__(self, config, add_pooling_layer=False):
        super().__init__(config)
        self.embeddings = NewEmbeddings(config)
        self.encoder = NewEncoder(config)
        self.pooler = NewPooler(config) if add_pooling_layer else None
        self.post_init()

    def get_input_embeddings(self):
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value):
        self.embeddings.word_embeddings = value

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, return_dict=None, **kwargs):
        hidden = self.embeddings(input_ids, token_type_ids)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        additive = (1.0 - attention_mask[:, None, None, :].to(hidden.dtype)) * torch.finfo(hidden.dtype).min
        position_ids = self.embeddings.position_ids[: input_ids.shape[1]]
        cos, sin = self.embeddings.rotary_emb(position_ids)
        for layer in self.encoder.layer:
            hidden = layer(hidden, additive, cos, sin)
        pooled = self.pooler(hidden) if self.pooler is not None else None
        return BaseModelOutputWithPooling(last_hidden_state=hidden, pooler_output=pooled)


class NewForSequenceClassification(NewPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.new = NewModel(config, add_pooling_layer=True)
        dropout = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, return_dict=None, **kw):
        pooled = self.new(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).pooler_output
        logits = self.classifier(self.dropout(pooled))
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits.view(-1, self.num_labels), labels.view(-1))
        return SequenceClassifierOutput(loss=loss, logits=logits)
