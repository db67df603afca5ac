"""A "new"-format encoder config, written for hubheads' tests from the public description of the gte-multilingual-base
architecture (the `Alibaba-NLP/new-impl` code repo that its config.json's `auto_map` points at).

The tests install this folder into an offline Hub cache as a code-only repo, so that checkpoints whose `auto_map`
reads `"new-impl--modeling.NewForSequenceClassification"` load exactly as on the Hub: through remote code.
"""

from transformers import PretrainedConfig


class NewConfig(PretrainedConfig):
    """A BERT-shaped encoder with rotary positions, packed qkv projections and a gated GELU MLP (post-LN)."""

    model_type = "new"

    def __init__(
        self,
        vocab_size=250048,
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        hidden_act="gelu",
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.0,
        max_position_embeddings=8192,
        type_vocab_size=1,
        initializer_range=0.02,
        layer_norm_type="layer_norm",
        layer_norm_eps=1e-12,
        position_embedding_type="rope",
        rope_theta=160000.0,
        rope_scaling=None,
        classifier_dropout=None,
        pack_qkv=True,
        unpad_inputs=False,
        use_memory_efficient_attention=False,
        logn_attention_scale=False,
        logn_attention_clip1=False,
        **kwargs,
    ):
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
        self.layer_norm_type = layer_norm_type
        self.layer_norm_eps = layer_norm_eps
        self.position_embedding_type = position_embedding_type
        self.rope_theta = rope_theta
        # Kept under another attribute: transformers 5 turns `rope_scaling` into its own rope parameters.
        self.ntk_scaling = rope_scaling
        self.classifier_dropout = classifier_dropout
        self.pack_qkv = pack_qkv
        self.unpad_inputs = unpad_inputs
        self.use_memory_efficient_attention = use_memory_efficient_attention
        self.logn_attention_scale = logn_attention_scale
        self.logn_attention_clip1 = logn_attention_clip1
        super().__init__(**kwargs)
