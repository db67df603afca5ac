"""A tiny classifier whose remote code breaks its outputs as real remote code does, on every transformers release:

- `"nan"`: a scale buffer allocated with `torch.empty` in `__init__` and never set: the logits are multiplied by
  whatever memory it got (NaN when uninitialised memory is filled, as hubheads fills it while loading);
- `"index"`: position ids allocated with `torch.empty` in `__init__` and never set, then used as indices into the
  position embeddings (an `IndexError` inside the model);
- `"random"`: a bias layer that the checkpoint does not hold, so every load initialises it at random: scores that
  change from one load to the next;
- `"none"`: none of these (`_init_weights` restores both buffers).
"""

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from .configuration import PlantedConfig


class PlantedForSequenceClassification(PreTrainedModel):
    config_class = PlantedConfig
    base_model_prefix = "planted"

    def __init__(self, config):
        super().__init__(config)
        self.embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.positions = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.register_buffer("scale", torch.empty(1) if config.fault == "nan" else torch.ones(1), persistent=False)
        ids = torch.empty(config.max_position_embeddings, dtype=torch.long)
        if config.fault != "index":
            ids = torch.arange(config.max_position_embeddings)
        self.register_buffer("position_ids", ids, persistent=False)
        if config.fault == "random":
            self.drift = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=1.0)
        if isinstance(module, nn.Linear):
            nn.init.zeros_(module.bias)
        if module is self:  # the buffers a fault leaves unset are restored here, as transformers 5 needs
            with torch.no_grad():
                if self.config.fault != "nan":
                    self.scale.fill_(1.0)
                if self.config.fault != "index":
                    self.position_ids.copy_(torch.arange(self.config.max_position_embeddings))

    def forward(self, input_ids=None, attention_mask=None, labels=None, **kwargs):
        positions = self.positions(self.position_ids[: input_ids.shape[1]])  # (seq, hidden)
        hidden = (self.embeddings(input_ids) + positions).mean(dim=1)  # (batch, hidden)
        logits = self.classifier(hidden) * self.scale
        if self.config.fault == "random":
            logits = logits + self.drift(hidden)
        return SequenceClassifierOutput(logits=logits)
