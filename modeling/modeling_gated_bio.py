"""Gated dual-input classifier: a post and its author's profile bio, read by one shared encoder.

```
post  = pool(encoder(post))                                     # (batch, hidden)
bio   = pool(encoder(bio))                                      # rows with a bio only
gated:  fused = post + sigmoid(W_g [post; bio]) * W_b bio       # gated_bio=True
concat: fused = [post; bio]                                     # gated_bio=False
logits = classifier(fused)
```

A row without a bio (none, empty or blank) takes the no-bio path exactly: the gate's contribution is left out (or the
bio half of the concatenation is zero), whatever the other rows of the batch carry.

The bio side can also be computed apart: `encode_bios` pools bios into vectors once, and `forward(..., bio_embeds=,
has_bio=)` reads them in place of the bios' ids, so an author's bio is encoded once for all their posts.
"""

from typing import Optional

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from .configuration_gated_bio import GatedBioConfig
from .modeling_hubheads import (
    WrappedEncoderMixin,
    classification_loss,
    encoder_input_names,
    init_head_weights,
    pool,
    symmetric_kl,
)
from .modeling_new_gte import encoder_from_config


class GatedBioPreTrainedModel(PreTrainedModel):
    """Sets the config class and the initialisation of the heads; the wrapped encoder initialises itself."""

    config_class = GatedBioConfig
    base_model_prefix = "encoder"
    supports_gradient_checkpointing = True  # the wrapped encoder's layers checkpoint themselves

    def _init_weights(self, module: nn.Module) -> None:
        init_head_weights(module, self.config.initializer_range)


class GatedBioForSequenceClassification(WrappedEncoderMixin, GatedBioPreTrainedModel):
    """Post + bio classifier; `logits` is the decision head, so a bare stock pipeline runs it on posts alone.

    `from_backbone(path, **config_kwargs)` starts from a pretrained encoder; `hubheads.GatedBioCollator` turns
    (text, bio, lang, label) rows into batches for `transformers.Trainer`.
    """

    def __init__(self, config: GatedBioConfig):
        super().__init__(config)
        hidden_size = config.backbone_config.hidden_size
        self.encoder = encoder_from_config(config.backbone_config)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.bio_projection: Optional[nn.Linear] = None
        self.gate: Optional[nn.Linear] = None
        if config.use_bio and config.gated_bio:
            self.bio_projection = nn.Linear(hidden_size, hidden_size)
            self.gate = nn.Linear(2 * hidden_size, hidden_size)
        concatenated = config.use_bio and not config.gated_bio
        self.classifier = nn.Linear(2 * hidden_size if concatenated else hidden_size, int(config.num_labels or 2))
        self._encoder_inputs = encoder_input_names(self.encoder)
        self.post_init()

    def _pooled(self, input_ids, attention_mask, **extra) -> torch.Tensor:
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask, **extra}
        inputs = {k: v for k, v in inputs.items() if v is not None and k in self._encoder_inputs}
        hidden = self.encoder(**inputs, return_dict=True).last_hidden_state  # (batch, seq, hidden)
        return self.dropout(pool(hidden, attention_mask, self.config.pooling))  # (batch, hidden)

    def encode_bios(
        self, bio_input_ids: torch.Tensor, bio_attention_mask: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """The pooled bio vectors `forward` takes as `bio_embeds`, one per row: `(n, hidden)`.

        An author's bio comes with each of their posts: encode each distinct bio once and pass its vector with every
        post. In eval mode `forward(..., bio_embeds=..., has_bio=...)` then gives the logits of
        `forward(..., bio_input_ids=..., bio_attention_mask=...)`; in training each row gets its own dropout draw,
        as in `forward`.
        """
        mask = bio_attention_mask if bio_attention_mask is not None else torch.ones_like(bio_input_ids)
        return self._pooled(bio_input_ids, mask)  # (n, hidden)

    def _bio_from_ids(self, post, bio_input_ids, bio_attention_mask) -> tuple[torch.Tensor, torch.Tensor]:
        """(each row's pooled bio, zero where it has none; which rows have one) from the bios' token ids."""
        if bio_input_ids is None:
            return torch.zeros_like(post), torch.zeros(post.shape[0], dtype=torch.bool, device=post.device)
        if bio_input_ids.dim() != 2 or bio_input_ids.shape[0] != post.shape[0]:
            raise ValueError(
                f"`bio_input_ids` must have shape (batch, bio_length) with batch {post.shape[0]}, got "
                f"{tuple(bio_input_ids.shape)}; pass one bio row per post (an all-zero mask for no bio)."
            )
        mask = bio_attention_mask if bio_attention_mask is not None else torch.ones_like(bio_input_ids)
        if mask.shape != bio_input_ids.shape:
            raise ValueError(
                f"`bio_attention_mask` has shape {tuple(mask.shape)} but `bio_input_ids` has "
                f"{tuple(bio_input_ids.shape)}."
            )
        has_bio = mask.sum(dim=-1) > 0  # (batch,)
        bio = torch.zeros_like(post)  # (batch, hidden); stays zero for rows without a bio
        if has_bio.any():
            rows = has_bio.nonzero().squeeze(1)
            ids, ids_mask = bio_input_ids[rows], mask[rows]  # (rows, bio_seq)
            if self.training:
                pooled = self._pooled(ids, ids_mask)  # every row its own dropout draw
            else:
                # An author's bio comes with each of their posts: encode each distinct bio of the batch once.
                keys = torch.cat([ids, ids_mask.to(ids.dtype)], dim=-1)  # (rows, 2 * bio_seq)
                distinct, inverse = torch.unique(keys, dim=0, return_inverse=True)
                width = ids.shape[1]
                pooled = self._pooled(distinct[:, :width], distinct[:, width:])[inverse]
            bio = bio.index_copy(0, rows, pooled)
        return bio, has_bio

    @staticmethod
    def _bio_from_embeds(post, bio_embeds, has_bio) -> tuple[torch.Tensor, torch.Tensor]:
        """(each row's pooled bio, zero where it has none; which rows have one) from `encode_bios` vectors."""
        if bio_embeds.shape != post.shape:
            raise ValueError(
                f"`bio_embeds` must have shape (batch, hidden) = {tuple(post.shape)}, got {tuple(bio_embeds.shape)}; "
                "pass one `encode_bios` vector per post (any values, with `has_bio` False, for no bio)."
            )
        if has_bio is None:
            has_bio = torch.ones(post.shape[0], dtype=torch.bool, device=post.device)
        elif has_bio.shape != post.shape[:1]:
            raise ValueError(f"`has_bio` must have shape ({post.shape[0]},), got {tuple(has_bio.shape)}.")
        has_bio = has_bio.to(device=post.device, dtype=torch.bool)  # (batch,)
        bio = bio_embeds.to(device=post.device, dtype=post.dtype).masked_fill(
            ~has_bio.unsqueeze(-1), 0.0
        )  # (batch, hidden)
        return bio, has_bio

    def _logits(self, input_ids, attention_mask, extra, bio_inputs: dict) -> torch.Tensor:
        post = self._pooled(input_ids, attention_mask, **extra)  # (batch, hidden)
        if not self.config.use_bio:
            return self.classifier(post)
        if bio_inputs["bio_embeds"] is not None:
            bio, has_bio = self._bio_from_embeds(post, bio_inputs["bio_embeds"], bio_inputs["has_bio"])
        else:
            bio, has_bio = self._bio_from_ids(post, bio_inputs["bio_input_ids"], bio_inputs["bio_attention_mask"])
        if self.gate is None or self.bio_projection is None:
            return self.classifier(torch.cat([post, bio], dim=-1))  # (batch, 2 * hidden)
        gate = torch.sigmoid(self.gate(torch.cat([post, bio], dim=-1)))  # (batch, hidden)
        fused = torch.where(has_bio.unsqueeze(-1), post + gate * self.bio_projection(bio), post)
        return self.classifier(fused)

    def forward(
        self,
        input_ids: Optional[torch.Tensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        token_type_ids: Optional[torch.Tensor] = None,
        bio_input_ids: Optional[torch.Tensor] = None,
        bio_attention_mask: Optional[torch.Tensor] = None,
        bio_embeds: Optional[torch.Tensor] = None,
        has_bio: Optional[torch.Tensor] = None,
        labels: Optional[torch.Tensor] = None,
        return_dict: Optional[bool] = None,
        **kwargs,
    ):
        """`bio_input_ids` / `bio_attention_mask`: the bios, a row with an all-zero mask meaning "no bio".

        `bio_embeds` (`(batch, hidden)`) / `has_bio` (`(batch,)` bool, defaults to all True): the bios already pooled
        by `encode_bios`, instead of their ids, so a bio shared by many posts (across batches too) is encoded once.
        A row whose `has_bio` is False takes the no-bio path, whatever its vector holds.

        In training with `r_drop`, the loss is the mean of two dropout passes' losses plus `r_kl_alpha` times the
        symmetric KL between their distributions; `logits` are the first pass's.
        """
        if bio_embeds is not None and bio_input_ids is not None:
            raise ValueError("Pass the bios as `bio_input_ids` or as `bio_embeds`, not both.")
        if has_bio is not None and bio_embeds is None:
            raise ValueError("`has_bio` goes with `bio_embeds`; with `bio_input_ids`, an all-zero mask means no bio.")
        extra = {"token_type_ids": token_type_ids}
        bio_inputs = {
            "bio_input_ids": bio_input_ids,
            "bio_attention_mask": bio_attention_mask,
            "bio_embeds": bio_embeds,
            "has_bio": has_bio,
        }
        logits = self._logits(input_ids, attention_mask, extra, bio_inputs)
        loss = None
        if labels is not None:
            config = self.config
            gamma = config.focal_gamma if config.focal_loss else None
            loss = classification_loss(logits, labels, config.problem_type, config.class_weights, gamma)
            if self.training and config.r_drop and loss is not None:
                second = self._logits(input_ids, attention_mask, extra, bio_inputs)
                second_loss = classification_loss(second, labels, config.problem_type, config.class_weights, gamma)
                if second_loss is not None:
                    loss = (loss + second_loss) / 2 + config.r_kl_alpha * symmetric_kl(logits, second)
        output = SequenceClassifierOutput(loss=loss, logits=logits)
        return output if return_dict is not False else output.to_tuple()


__all__ = ["GatedBioForSequenceClassification", "GatedBioPreTrainedModel"]
