"""Building blocks shared by the hubheads architectures: pooling, losses, the wrapped encoder's inputs.

This file is copied verbatim into exported Hub repos: it imports only the standard library, torch and transformers.
"""

import inspect
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModel, PreTrainedModel


def pool(hidden_states: torch.Tensor, attention_mask: Optional[torch.Tensor], mode: str) -> torch.Tensor:
    """One vector per sequence: the first real token's state (`"cls"`; with left padding that is not position 0)
    or the mean over real tokens (`"mean"`)."""
    if mode == "cls":
        if attention_mask is None:
            return hidden_states[:, 0]  # (batch, hidden)
        first = attention_mask.long().argmax(dim=1)  # (batch,) index of the first real token
        return hidden_states[torch.arange(hidden_states.shape[0], device=hidden_states.device), first]
    if attention_mask is None:
        return hidden_states.mean(dim=1)
    mask = attention_mask.unsqueeze(-1).to(hidden_states.dtype)  # (batch, seq, 1)
    return (hidden_states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)  # (batch, hidden)


def init_head_weights(module: nn.Module, std: float) -> None:
    """The standard initialisers for the heads' linear layers (the wrapped encoder initialises its own modules)."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, mean=0.0, std=std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def symmetric_kl(logits: torch.Tensor, other_logits: torch.Tensor) -> torch.Tensor:
    """`(KL(p || q) + KL(q || p)) / 2` between the softmax distributions of two logit tensors, averaged over rows."""
    log_p, log_q = F.log_softmax(logits.float(), dim=-1), F.log_softmax(other_logits.float(), dim=-1)
    forward = F.kl_div(log_q, log_p, reduction="batchmean", log_target=True)  # KL(p || q)
    backward = F.kl_div(log_p, log_q, reduction="batchmean", log_target=True)  # KL(q || p)
    return (forward + backward) / 2


def encoder_input_names(encoder: nn.Module) -> frozenset:
    """The keyword arguments the wrapped encoder's `forward` accepts (DistilBERT takes no `token_type_ids`)."""
    return frozenset(inspect.signature(encoder.forward).parameters)


def focal_cross_entropy(
    logits: torch.Tensor,
    labels: torch.Tensor,
    gamma: float = 0.0,
    weight: Optional[torch.Tensor] = None,
    ignore_index: int = -100,
) -> torch.Tensor:
    """Cross-entropy with a focal term: `-w[y] * (1 - p_y) ** gamma * log p_y`, averaged like `F.cross_entropy`.

    With `gamma=0` it equals `F.cross_entropy(logits, labels, weight=weight, ignore_index=ignore_index)`: the sum
    is divided by the total weight of the rows that count.
    """
    keep = labels != ignore_index
    logits, labels = logits[keep], labels[keep]  # (rows, classes), (rows,)
    log_p = F.log_softmax(logits.float(), dim=-1).gather(1, labels.unsqueeze(1)).squeeze(1)  # (rows,)
    row_weight = weight.to(log_p.dtype)[labels] if weight is not None else torch.ones_like(log_p)
    modulating = (1.0 - log_p.exp()).clamp(min=0.0) ** gamma if gamma else torch.ones_like(log_p)
    return -(row_weight * modulating * log_p).sum() / row_weight.sum()


def classification_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    problem_type: Optional[str],
    class_weights: Optional[list] = None,
    focal_gamma: Optional[float] = None,
    name: str = "labels",
) -> Optional[torch.Tensor]:
    """The loss `config.problem_type` asks for, as `modeling_distilbert.py` picks it.

    Single-label rows labelled -100 are skipped; `None` when no row of the batch carries a label for this head.
    """
    num_labels = logits.shape[-1]
    if labels.shape[0] != logits.shape[0]:
        raise ValueError(f"`{name}` has {labels.shape[0]} rows but the batch has {logits.shape[0]}; pass one per row.")
    if problem_type is None:
        if num_labels == 1:
            problem_type = "regression"
        elif labels.dtype in (torch.long, torch.int):
            problem_type = "single_label_classification"
        else:
            problem_type = "multi_label_classification"
    if problem_type == "regression":
        return F.mse_loss(logits.squeeze(-1), labels.squeeze(-1).to(logits.dtype))
    if problem_type == "multi_label_classification":
        pos_weight = torch.tensor(class_weights, device=logits.device) if class_weights else None
        return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype), pos_weight=pos_weight)
    labels = labels.view(-1)
    if not (labels != -100).any():
        return None
    weight = torch.tensor(class_weights, dtype=torch.float, device=logits.device) if class_weights else None
    return focal_cross_entropy(logits.view(-1, num_labels), labels, gamma=focal_gamma or 0.0, weight=weight)


class WrappedEncoderMixin:
    """What a hubheads model that wraps any encoder as `self.encoder` adds to `PreTrainedModel`."""

    #: Loads a named encoder for `from_backbone` (`loader(backbone, revision=, allow_pickle=, trust_remote_code=)`).
    #: `None` here; the hubheads package, when imported, sets its own on its copy of this class.
    encoder_loader: Optional[Callable[..., PreTrainedModel]] = None

    @classmethod
    def from_backbone(cls, backbone, *, revision=None, allow_pickle=False, trust_remote_code=False, **config_kwargs):
        """The model with its encoder's weights taken from `backbone` and its heads freshly initialised;
        `config_kwargs` go to the model's config. A training-time constructor: loading a saved model never calls it.

        `backbone` is a loaded encoder (a `PreTrainedModel`), or the folder or Hub id of an `AutoModel` checkpoint of
        an architecture transformers ships. With the hubheads package imported, a name is loaded by its
        `encoder_loader` (`hubheads.sources.load_encoder`): any `revision` (a pull request's `"refs/pr/3"` too),
        pickle-only weights only with `allow_pickle=True` (read with `torch.load(weights_only=True)`),
        gte-multilingual-base's "new" format as transformers' native `gte`, and a clear refusal of remote-code
        encoders, which a consumer could not rebuild from `backbone_config`. Otherwise (this file's copy in a Hub
        repo), a name loads with `AutoModel.from_pretrained(backbone, revision=revision)`, safetensors only unless
        `allow_pickle=True`.
        """
        if isinstance(backbone, PreTrainedModel):
            encoder = backbone
        elif cls.encoder_loader is None:
            encoder = AutoModel.from_pretrained(backbone, revision=revision, use_safetensors=not allow_pickle)
        else:
            options = {"revision": revision, "allow_pickle": allow_pickle, "trust_remote_code": trust_remote_code}
            encoder = cls.encoder_loader(backbone, **options)
        model = cls(cls.config_class(backbone_config=encoder.config, **config_kwargs))
        model.encoder.load_state_dict(encoder.state_dict())
        return model

    def resize_token_embeddings(self, *args, **kwargs):
        """`PreTrainedModel.resize_token_embeddings`, recording the new size in `backbone_config`, which is what
        rebuilds the encoder when the model is loaded again."""
        embeddings = super().resize_token_embeddings(*args, **kwargs)  # type: ignore[misc]
        self.config.backbone_config.vocab_size = embeddings.num_embeddings  # type: ignore[attr-defined]
        return embeddings


__all__ = [
    "WrappedEncoderMixin",
    "classification_loss",
    "encoder_input_names",
    "focal_cross_entropy",
    "init_head_weights",
    "pool",
    "symmetric_kl",
]
