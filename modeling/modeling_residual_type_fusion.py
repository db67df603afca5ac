"""Residual type fusion: one shared encoder, a content-type head, and a trust head that reads the type prediction.

```
pooled  = pool(encoder(text))                                  # (batch, hidden)
type    = type_head(pooled)                                    # (batch, num_types)
trust   = trust_head(pooled + type_projection(softmax(type)))  # fusion="residual"
```

`logits` is the trust head, so even a bare stock pipeline shows trust; `type_logits` is the type head. Training
follows three phases (`set_training_phase`): the type head with the encoder, then the trust head with the fusion,
then everything jointly.
"""

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import ModelOutput

from .configuration_residual_type_fusion import ResidualTypeFusionConfig
from .modeling_hubheads import WrappedEncoderMixin, classification_loss, encoder_input_names, init_head_weights, pool
from .modeling_new_gte import encoder_from_config


@dataclass
class ResidualTypeFusionOutput(ModelOutput):
    """Output of [`ResidualTypeFusionForSequenceClassification`].

    Args:
        loss (`torch.FloatTensor`, *optional*): the weighted sum of the head losses of the current training phase.
        logits (`torch.FloatTensor` of shape `(batch, num_labels)`): the trust head.
        type_logits (`torch.FloatTensor` of shape `(batch, num_types)`): the type head.
        trust_loss (`torch.FloatTensor`, *optional*): the trust head's loss, when `labels` were given.
        type_loss (`torch.FloatTensor`, *optional*): the type head's loss, when `type_labels` were given.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*): the encoder's, when asked for.
        attentions (`tuple(torch.FloatTensor)`, *optional*): the encoder's, when asked for.
    """

    loss: Optional[torch.Tensor] = None
    logits: Optional[torch.FloatTensor] = None
    type_logits: Optional[torch.FloatTensor] = None
    trust_loss: Optional[torch.Tensor] = None
    type_loss: Optional[torch.Tensor] = None
    hidden_states: Optional[tuple] = None
    attentions: Optional[tuple] = None


class ResidualTypeFusionPreTrainedModel(PreTrainedModel):
    """Sets the config class and the initialisation of the heads; the wrapped encoder initialises itself."""

    config_class = ResidualTypeFusionConfig
    base_model_prefix = "encoder"
    supports_gradient_checkpointing = True  # the wrapped encoder's layers checkpoint themselves

    def _init_weights(self, module: nn.Module) -> None:
        init_head_weights(module, self.config.initializer_range)


class ResidualTypeFusionForSequenceClassification(WrappedEncoderMixin, ResidualTypeFusionPreTrainedModel):
    """Multi-task trust + type classifier with residual type fusion over any encoder.

    `labels` train the trust head and `type_labels` the type head; a row labelled -100 is skipped by that head, so
    one batch can mix rows annotated for either task. `from_backbone(path, **config_kwargs)` starts from a pretrained
    encoder.
    """

    PHASES = {
        1: "type head with the encoder (trust head and fusion frozen)",
        2: "trust head with the fusion projection (encoder and type head frozen)",
        3: "everything jointly",
    }

    def __init__(self, config: ResidualTypeFusionConfig):
        super().__init__(config)
        hidden_size = config.backbone_config.hidden_size
        num_types = len(config.type_label_names)
        self.encoder = encoder_from_config(config.backbone_config)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.type_head = nn.Linear(hidden_size, num_types)
        self.type_projection = nn.Linear(num_types, hidden_size) if config.fusion == "residual" else None
        self.trust_head = nn.Linear(hidden_size, int(config.num_labels or 2))
        self._encoder_inputs = encoder_input_names(self.encoder)
        self.training_phase: Optional[int] = None
        self.post_init()

    def set_training_phase(self, phase: Optional[int]) -> None:
        """Freeze and unfreeze parameters for one of the three training phases, and count only that phase's loss.

        - `1`: the encoder and the type head train on `type_labels`; the trust head and the fusion are frozen.
        - `2`: the trust head and the fusion projection train on `labels`; the encoder and the type head are frozen.
        - `3` (or `None`, the default): everything trains on the weighted sum of both losses.
        """
        if phase not in (None, 1, 2, 3):
            raise ValueError(f"`phase` must be 1, 2, 3 or None, got {phase!r}.")
        self.training_phase = phase
        trust_side: list[nn.Module] = [self.trust_head]
        if self.type_projection is not None:
            trust_side.append(self.type_projection)
        type_side: list[nn.Module] = [self.encoder, self.type_head]
        for module in trust_side:
            module.requires_grad_(phase != 1)
        for module in type_side:
            module.requires_grad_(phase != 2)

    def forward(
        self,
        input_ids: Optional[torch.Tensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        token_type_ids: Optional[torch.Tensor] = None,
        position_ids: Optional[torch.Tensor] = None,
        inputs_embeds: Optional[torch.Tensor] = None,
        labels: Optional[torch.Tensor] = None,
        type_labels: Optional[torch.Tensor] = None,
        output_attentions: Optional[bool] = None,
        output_hidden_states: Optional[bool] = None,
        return_dict: Optional[bool] = None,
        **kwargs,
    ):
        encoder_inputs = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "token_type_ids": token_type_ids,
            "position_ids": position_ids,
            "inputs_embeds": inputs_embeds,
            "output_attentions": output_attentions,
            "output_hidden_states": output_hidden_states,
        }
        encoder_inputs = {k: v for k, v in encoder_inputs.items() if v is not None and k in self._encoder_inputs}
        encoded = self.encoder(**encoder_inputs, return_dict=True)
        pooled = self.dropout(pool(encoded.last_hidden_state, attention_mask, self.config.pooling))  # (batch, hidden)
        type_logits = self.type_head(pooled)  # (batch, num_types)
        trust_input = pooled
        if self.type_projection is not None:
            trust_input = pooled + self.type_projection(type_logits.softmax(dim=-1))  # (batch, hidden)
        logits = self.trust_head(trust_input)  # (batch, num_labels)

        config = self.config
        trust_task, type_task = config.task_names
        gamma = config.focal_gamma if config.focal_loss else None
        trust_loss = type_loss = None
        if labels is not None:
            weights = config.class_weights.get(trust_task)
            trust_loss = classification_loss(logits, labels, config.problem_type, weights, gamma)
        if type_labels is not None:
            weights = config.class_weights.get(type_task)
            type_loss = classification_loss(
                type_logits, type_labels, "single_label_classification", weights, gamma, name="type_labels"
            )
        counted = []
        if trust_loss is not None and self.training_phase != 1:
            counted.append(config.loss_weights[0] * trust_loss)
        if type_loss is not None and self.training_phase != 2:
            counted.append(config.loss_weights[1] * type_loss)
        loss = torch.stack(counted).sum() if counted else None

        output = ResidualTypeFusionOutput(
            loss=loss,
            logits=logits,
            type_logits=type_logits,
            trust_loss=trust_loss,
            type_loss=type_loss,
            hidden_states=encoded.hidden_states if output_hidden_states else None,
            attentions=encoded.attentions if output_attentions else None,
        )
        return output if return_dict is not False else output.to_tuple()


__all__ = [
    "ResidualTypeFusionForSequenceClassification",
    "ResidualTypeFusionOutput",
    "ResidualTypeFusionPreTrainedModel",
]
